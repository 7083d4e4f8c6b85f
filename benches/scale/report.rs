//! Results: summaries of samples, rows of the report, the machine they were
//! measured on, and BENCHMARKS.md.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A median and the spread around it (10th to 90th percentile; the extremes
/// when there are fewer than ten samples).
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Summary {
    pub median: f64,
    pub low: f64,
    pub high: f64,
    pub samples: usize,
}

impl Summary {
    pub fn of(samples: &[f64]) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
        let (low, high) = if sorted.len() < 10 {
            (sorted[0], sorted[sorted.len() - 1])
        } else {
            (at(0.1), at(0.9))
        };
        Summary {
            median: at(0.5),
            low,
            high,
            samples: sorted.len(),
        }
    }

    /// `12.3 µs (11.9–13.0, n=15)` with values scaled by `scale` and printed with `decimals`.
    pub fn show(&self, scale: f64, decimals: usize, unit: &str) -> String {
        format!(
            "{:.d$} {unit} ({:.d$}–{:.d$}, n={})",
            self.median * scale,
            self.low * scale,
            self.high * scale,
            self.samples,
            d = decimals
        )
    }
}

/// One line of the report.
#[derive(Debug, Serialize, Deserialize)]
pub struct Row {
    pub measurement: String,
    pub result: String,
    pub target: String,
    /// Whether the target is met; `None` for figures given for context.
    pub met: Option<bool>,
}

/// What one benchmark found: its rows, and what bounds them.
#[derive(Debug, Serialize, Deserialize)]
pub struct Section {
    pub title: String,
    pub rows: Vec<Row>,
    pub notes: Vec<String>,
}

fn verdict(met: Option<bool>) -> &'static str {
    match met {
        Some(true) => "met",
        Some(false) => "**missed**",
        None => "",
    }
}

/// The sections as Markdown tables.
pub fn markdown(sections: &[Section], machine: &str) -> String {
    let mut text = String::from("# Benchmarks\n\n");
    let _ = writeln!(
        text,
        "Written by `./scripts/bench.sh` (`cargo bench -p glassbox --bench scale`), \
         which measures everything below in one run. Results are medians with the \
         10th–90th percentile in brackets (the extremes under ten samples).\n\n{machine}\n"
    );
    for section in sections {
        let _ = writeln!(text, "## {}\n", section.title);
        text.push_str("| Measurement | Result | Target | |\n|---|---|---|---|\n");
        for row in &section.rows {
            let _ = writeln!(
                text,
                "| {} | {} | {} | {} |",
                row.measurement,
                row.result,
                row.target,
                verdict(row.met)
            );
        }
        text.push('\n');
        for note in &section.notes {
            let _ = writeln!(text, "- {note}");
        }
        if !section.notes.is_empty() {
            text.push('\n');
        }
    }
    // What the figures cannot say: a profile's reading, kept beside the code.
    text.push_str(include_str!("bounds.md"));
    text
}

/// The same, for a terminal.
pub fn plain(sections: &[Section]) -> String {
    let mut text = String::new();
    for section in sections {
        let _ = writeln!(text, "\n{}", section.title);
        for row in &section.rows {
            let _ = writeln!(
                text,
                "  {:<58} {:<44} target {:<16} {}",
                row.measurement,
                row.result,
                row.target,
                verdict(row.met).trim_matches('*')
            );
        }
    }
    text
}

/// The machine and the moment, read from the system.
pub fn machine() -> String {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpu = read("/proc/cpuinfo")
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory_kib: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or(0);
    let kernel = read("/proc/sys/kernel/osrelease");
    format!(
        "Measured on {}, on {cpu} with {cores} cores and {:.0} GiB of memory, Linux {}, glassbox {} (release build).",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        memory_kib as f64 / (1024.0 * 1024.0),
        kernel.trim(),
        env!("CARGO_PKG_VERSION"),
    )
}
