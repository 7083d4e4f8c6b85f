//! Listing and calling the tools the host grants this run.

pub use crate::bindings::agent::glassbox::agent::tools::{call, list};
