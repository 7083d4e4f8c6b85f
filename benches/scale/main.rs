//! Glassbox at scale: the measurements of the scale and reliability issues, each in a
//! process of its own (this binary run again with `--only NAME`), so memory and
//! instance pools do not carry over. Throughput is measured twice, without and
//! with `RUST_BACKTRACE=1`: nothing on a run's path may capture a backtrace.
//! `--write FILE` writes the report as Markdown (BENCHMARKS.md);
//! `./scripts/bench.sh` does that.

mod languages;
mod measure;
mod receiver;
mod report;
mod serve;
mod soak;
mod workload;

use report::Section;

/// The allocator the `glassbox` binary uses, so the figures are its figures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::path::PathBuf;
use std::process::Command;

/// Each measurement, and the `RUST_BACKTRACE` it runs under when it matters.
const MEASUREMENTS: [(&str, Option<&str>); 9] = [
    ("per-call", None),
    ("start", None),
    ("throughput", Some("0")),
    ("throughput", Some("1")),
    ("concurrency", None),
    ("export", None),
    ("soak", None),
    ("languages", None),
    ("serve", None),
];

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut only, mut write) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            receiver::RECEIVE_FLAG => {
                let address = args.next().expect("an address to receive on");
                return receiver::receive(&address);
            }
            "--only" => only = args.next(),
            "--write" => write = args.next().map(PathBuf::from),
            // `cargo bench` passes `--bench`; a filter picks measurements.
            _ => {}
        }
    }
    match only {
        Some(name) => measure_one(&name),
        None => measure_all(write),
    }
}

fn measure_one(name: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot start the async runtime");
    let section = runtime.block_on(async {
        match name {
            "per-call" => measure::per_call().await,
            "start" => measure::start().await,
            "throughput" => measure::throughput().await,
            "concurrency" => measure::concurrency().await,
            "export" => measure::export().await,
            "soak" => soak::soak().await,
            "languages" => languages::languages().await,
            "serve" => serve::serve().await,
            other => panic!("no measurement named {other}; try one of {MEASUREMENTS:?}"),
        }
    });
    println!(
        "{}",
        serde_json::to_string(&section).expect("a section serialises")
    );
}

fn measure_all(write: Option<PathBuf>) {
    let this = std::env::current_exe().expect("cannot find this program");
    let mut sections: Vec<Section> = Vec::new();
    for (name, backtrace) in MEASUREMENTS {
        eprintln!("measuring {name}…");
        let mut command = Command::new(&this);
        command.args(["--only", name]);
        if let Some(backtrace) = backtrace {
            command.env("RUST_BACKTRACE", backtrace);
        }
        let output = command.output().expect("cannot run a measurement");
        if !output.status.success() {
            panic!(
                "measurement {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let section: Section = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("measurement {name} reported `{line}`: {e}"));
        eprint!("{}", report::plain(std::slice::from_ref(&section)));
        // The same measurement again, under other settings: one section.
        match sections.last_mut() {
            Some(last) if last.title == section.title => {
                last.rows.extend(section.rows);
                let new_notes: Vec<String> = section
                    .notes
                    .into_iter()
                    .filter(|note| !last.notes.contains(note))
                    .collect();
                last.notes.extend(new_notes);
            }
            _ => sections.push(section),
        }
    }
    let machine = report::machine();
    println!("{machine}{}", report::plain(&sections));
    if let Some(path) = write {
        std::fs::write(&path, report::markdown(&sections, &machine))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
}
