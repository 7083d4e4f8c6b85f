//! Glassbox at scale: the measurements of the scale and reliability issues, each in a
//! process of its own (this binary run again with `--only NAME`), so memory and
//! instance pools do not carry over. `--write FILE` writes the report as
//! Markdown (BENCHMARKS.md); `./scripts/bench.sh` does that.

mod languages;
mod measure;
mod receiver;
mod report;
mod soak;
mod workload;

use report::Section;
use std::path::PathBuf;
use std::process::Command;

const MEASUREMENTS: [&str; 7] = [
    "per-call",
    "start",
    "throughput",
    "concurrency",
    "export",
    "soak",
    "languages",
];

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut only, mut write) = (None, None);
    while let Some(arg) = args.next() {
        match arg.as_str() {
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
    for name in MEASUREMENTS {
        eprintln!("measuring {name}…");
        let output = Command::new(&this)
            .args(["--only", name])
            .output()
            .expect("cannot run a measurement");
        if !output.status.success() {
            panic!(
                "measurement {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout.lines().last().unwrap_or_default();
        let section = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("measurement {name} reported `{line}`: {e}"));
        sections.push(section);
        eprint!("{}", report::plain(&sections[sections.len() - 1..]));
    }
    let machine = report::machine();
    println!("{machine}{}", report::plain(&sections));
    if let Some(path) = write {
        std::fs::write(&path, report::markdown(&sections, &machine))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
}
