//! The soak test: a `glassbox serve` process under steady load for a minute,
//! its collector killed a third of the way in and back a third later. Every
//! run must succeed, every span must be received or reported lost at exit,
//! and the process must not grow.

use crate::receiver::CountingReceiver;
use crate::report::{Row, Section};
use crate::workload::{memory_of, mib};
use glassbox_test_artifacts as artifacts;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LENGTH: Duration = Duration::from_secs(60);
const OUTAGE: (Duration, Duration) = (Duration::from_secs(20), Duration::from_secs(40));
/// Requests started per second.
const RATE: u64 = 100;
/// Spans of one served demo run: the SERVER span and the run's ten.
const SPANS_PER_RUN: u64 = 11;

pub async fn soak() -> Section {
    let mut receiver = CountingReceiver::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let manifest = manifest(dir.path(), "[llm]\nprovider = \"scripted\"\n");
    let (mut server, address, stderr) = serve(&manifest, receiver.endpoint(), dir.path(), &[]);
    let client = reqwest::Client::new();
    let url = format!("http://{address}/v1/agents/react-agent/runs");
    for _ in 0..50 {
        ask(&client, &url).await;
    }
    let warm = (receiver.spans(), 50);
    let rss_start = resident(&server);

    let (succeeded, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let started = Instant::now();
    let mut requests = Vec::new();
    let mut ticks = tokio::time::interval(Duration::from_millis(1000 / RATE));
    let (mut stopped, mut restarted) = (false, false);
    while started.elapsed() < LENGTH {
        ticks.tick().await;
        if !stopped && started.elapsed() >= OUTAGE.0 {
            receiver.stop();
            stopped = true;
        }
        if !restarted && started.elapsed() >= OUTAGE.1 {
            receiver.restart();
            restarted = true;
        }
        let (client, url) = (client.clone(), url.clone());
        let (succeeded, failed) = (succeeded.clone(), failed.clone());
        requests.push(tokio::spawn(async move {
            let counter = if ask(&client, &url).await {
                succeeded
            } else {
                failed
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }));
    }
    for request in requests {
        let _ = request.await;
    }
    let rss_end = resident(&server);
    let terminated = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .expect("cannot signal the server");
    assert!(terminated.success());
    let exited = server.wait().expect("the server exits");
    let lost = lost_at_exit(&stderr.lock().unwrap());
    let (succeeded, failed) = (
        succeeded.load(Ordering::Relaxed),
        failed.load(Ordering::Relaxed),
    );
    let produced = (succeeded + failed + warm.1) * SPANS_PER_RUN;
    let received = receiver.spans();
    Section {
        title: "6. Soak".into(),
        rows: vec![
            Row {
                measurement: format!(
                    "Runs failed, of {} over {} s at {RATE}/s, collector down from {} s to {} s",
                    succeeded + failed,
                    LENGTH.as_secs(),
                    OUTAGE.0.as_secs(),
                    OUTAGE.1.as_secs()
                ),
                result: failed.to_string(),
                target: "0".into(),
                met: Some(failed == 0 && exited.success()),
            },
            Row {
                measurement: "Spans produced = received + reported lost at exit".into(),
                result: format!("{produced} = {received} + {lost}"),
                target: "equal".into(),
                met: Some(produced == received + lost),
            },
            Row {
                measurement: "Server resident memory, after warm-up and at the end".into(),
                result: format!("{:.1} MiB, {:.1} MiB", mib(rss_start), mib(rss_end)),
                target: String::new(),
                met: None,
            },
        ],
        notes: vec![
            "`glassbox serve` (release build) of the demo manifest (react agent, weather and \
             calculator, scripted model), exporting traces over OTLP/gRPC to a loopback receiver \
             in a process of its own, which is stopped (port closed, connections dropped) and \
             started again on the same port. A request starts every 10 ms; 50 warm-up runs \
             come first. Lost spans are read from the server's exit warning."
                .into(),
        ],
    }
}

/// One run; whether it answered 200 with the demo's answer.
pub async fn ask(client: &reqwest::Client, url: &str) -> bool {
    let Ok(response) = client
        .post(url)
        .json(&serde_json::json!({"input": "Which is warmer, Paris or Lisbon?"}))
        .send()
        .await
    else {
        return false;
    };
    if !response.status().is_success() {
        return false;
    }
    let body: serde_json::Value = response.json().await.unwrap_or_default();
    body["output"]
        .as_str()
        .is_some_and(|output| output.starts_with("Lisbon is warmer"))
}

/// The demo's manifest (react agent, weather and calculator) in `dir`, with
/// `llm` (a `[llm]` table, or nothing); its path.
pub fn manifest(dir: &std::path::Path, llm: &str) -> std::path::PathBuf {
    let manifest = dir.join("glassbox.toml");
    std::fs::write(
        &manifest,
        format!(
            "[agent]\npath = {:?}\n\n[[plugins]]\npath = {:?}\n\n[[plugins]]\npath = {:?}\n\n{llm}",
            artifacts::REACT_AGENT,
            artifacts::WEATHER,
            artifacts::CALCULATOR
        ),
    )
    .expect("cannot write the manifest");
    manifest
}

/// `glassbox serve` of `manifest` with `env` set, exporting traces to
/// `endpoint`: the process, its address, and its stderr as it comes.
pub fn serve(
    manifest: &std::path::Path,
    endpoint: &str,
    cache: &std::path::Path,
    env: &[(&str, String)],
) -> (Child, String, Arc<Mutex<Vec<String>>>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_glassbox"))
        .envs(env.iter().map(|(name, value)| (name, value)))
        .args(["serve", "--manifest"])
        .arg(manifest)
        .args(["--listen", "127.0.0.1:0"])
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "2000")
        .env("GLASSBOX_CACHE_DIR", cache)
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start glassbox serve");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .expect("readable stderr");
        if let Some((_, address)) = line.split_once(" on http://") {
            break address.to_owned();
        }
    };
    let stderr = Arc::new(Mutex::new(Vec::new()));
    let kept = stderr.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            kept.lock().unwrap().push(line);
        }
    });
    (child, address, stderr)
}

fn resident(child: &Child) -> u64 {
    memory_of(&child.id().to_string()).0
}

/// The spans the server's exit warning says were lost: `N spans were not delivered`.
fn lost_at_exit(stderr: &[String]) -> u64 {
    stderr
        .iter()
        .find_map(|line| {
            let (before, _) = line.split_once(" spans were not delivered")?;
            before.rsplit(' ').next()?.parse().ok()
        })
        .unwrap_or(0)
}
