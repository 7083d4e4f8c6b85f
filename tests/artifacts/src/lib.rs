//! Paths of the guest components the tests run, built from source by `build.rs`.

include!(concat!(env!("OUT_DIR"), "/artifacts.rs"));
