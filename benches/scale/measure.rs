//! The five measurements. Each returns its section of the report.

use crate::receiver::CountingReceiver;
use crate::report::{Row, Section, Summary};
use crate::workload::{self, ANSWER, QUESTION, SPANS_PER_RUN, Slow, Stopwatch, mib};
use glassbox::telemetry::BatchSettings;
use glassbox::{Host, RunRequest};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 1. What tracing adds to one `llm` and one `tools` host call.
pub async fn per_call() -> Section {
    const CHATS: u32 = 2000;
    const TOOL_CALLS: u32 = 500;
    const SAMPLES: usize = 15;
    let engine = workload::engine(Some(64));
    let agent = workload::test_agent(&engine).await;
    let tools = workload::calculator(&engine).await;
    let receiver = CountingReceiver::start();
    let traced = Host::builder(agent.clone(), workload::shared(workload::instant()))
        .tools(tools.clone())
        .telemetry(workload::traced(&receiver, BatchSettings::default()))
        .build();
    let unexported = Host::builder(agent.clone(), workload::shared(workload::instant()))
        .tools(tools.clone())
        .telemetry(workload::recording_only())
        .build();
    let untraced = Host::builder(agent, workload::shared(workload::instant()))
        .tools(tools)
        .telemetry(workload::disabled())
        .build();
    let chats = format!("chats {CHATS}");
    let tool_calls = format!(r#"calls {TOOL_CALLS} calculate {{"expression":"6 * 7"}}"#);
    let mut rows = Vec::new();
    for (what, input, calls) in [
        ("`llm` chat", &chats, CHATS),
        ("`tools` call", &tool_calls, TOOL_CALLS),
    ] {
        // Warm both up, then alternate so drift affects both alike.
        time_per_call(&traced, input, calls).await;
        time_per_call(&untraced, input, calls).await;
        time_per_call(&unexported, input, calls).await;
        let (mut on, mut off, mut added, mut recording) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for _ in 0..SAMPLES {
            let with = time_per_call(&traced, input, calls).await;
            let without = time_per_call(&untraced, input, calls).await;
            let unexported = time_per_call(&unexported, input, calls).await;
            on.push(with);
            off.push(without);
            added.push(with - without);
            recording.push(unexported - without);
        }
        rows.push(Row {
            measurement: format!("{what}, full tracing"),
            result: Summary::of(&on).show(1e6, 2, "µs"),
            target: String::new(),
            met: None,
        });
        rows.push(Row {
            measurement: format!("{what}, `OTEL_SDK_DISABLED=true`"),
            result: Summary::of(&off).show(1e6, 2, "µs"),
            target: String::new(),
            met: None,
        });
        let added = Summary::of(&added);
        rows.push(Row {
            measurement: format!("{what}: time tracing adds"),
            result: added.show(1e6, 2, "µs"),
            target: "≤ 2 µs".into(),
            met: Some(added.median <= 2e-6),
        });
        rows.push(Row {
            measurement: format!("{what}: of which recording the span and metrics (no exporter)"),
            result: Summary::of(&recording).show(1e6, 2, "µs"),
            target: String::new(),
            met: None,
        });
    }
    workload::shut_down(traced.telemetry()).await;
    Section {
        title: "1. Per intercepted call".into(),
        rows,
        notes: vec![
            format!(
                "The test agent makes {CHATS} `llm.chat` calls (instant in-process provider) or {TOOL_CALLS} \
                 `tools.call` calls (the calculator plugin, a fresh instance each) in one run; a sample is \
                 the run's time over its calls. Traced and untraced runs alternate on one engine; \
                 the added time is the median of the paired differences."
            ),
            format!(
                "Full tracing: the span with its GenAI attributes, the duration and token metrics, and \
                 export over OTLP/gRPC to a loopback receiver, which got {} spans.",
                receiver.spans()
            ),
        ],
    }
}

/// One run of `input`, which makes `calls` calls: its time per call, in seconds.
pub(crate) async fn time_per_call(runtime: &Host, input: &str, calls: u32) -> f64 {
    let started = Instant::now();
    runtime
        .run(RunRequest::text(input))
        .await
        .expect("the benchmark run failed");
    started.elapsed().as_secs_f64() / f64::from(calls)
}

/// 2. From a compiled component to the agent's first host call, and a whole second `glassbox run`.
pub async fn start() -> Section {
    const RUNS: usize = 2000;
    let receiver = CountingReceiver::start();
    let mut rows = Vec::new();
    for (label, pooling) in [("pooled", Some(64)), ("on demand", None)] {
        let engine = workload::engine(pooling);
        let agent = workload::test_agent(&engine).await;
        let provider = Arc::new(Stopwatch {
            answers: workload::instant(),
            first_call: Mutex::new(None),
        });
        let runtime = Host::builder(agent, provider.clone() as glassbox::llm::SharedProvider)
            .telemetry(workload::traced(&receiver, BatchSettings::default()))
            .build();
        let mut samples = Vec::with_capacity(RUNS);
        for _ in 0..RUNS + 100 {
            let started = Instant::now();
            runtime
                .run(RunRequest::text("chats 1"))
                .await
                .expect("the benchmark run failed");
            let first = provider.take().expect("the agent called its model");
            samples.push(first.duration_since(started).as_secs_f64());
        }
        let summary = Summary::of(&samples[100..]);
        rows.push(Row {
            measurement: format!("Run start to first host call, {label}"),
            result: summary.show(1e6, 1, "µs"),
            target: if pooling.is_some() {
                "< 25 µs".into()
            } else {
                String::new()
            },
            met: pooling.map(|_| summary.median < 25e-6),
        });
        workload::shut_down(runtime.telemetry()).await;
    }

    let cli = cli_second_run();
    rows.push(Row {
        measurement: "`glassbox run` of the demo, whole process, compiled components cached".into(),
        result: cli.show(1e3, 1, "ms"),
        target: "< 50 ms".into(),
        met: Some(cli.median < 0.050),
    });
    Section {
        title: "2. Start".into(),
        rows,
        notes: vec![
            "In process: from `Host::run` to the model provider receiving the agent's first \
             `llm.chat`: the run's span, a store with its sandbox, instantiation, the guest's own \
             start, and the host side of the call with its span. Components were compiled once \
             and loaded from the cache; the first 100 runs are warm-up."
                .into(),
            "Whole process: `glassbox run` of the demo (react agent, weather and calculator, \
             scripted provider, no trace tree) after a first run filled the cache, timed from \
             spawn to exit, 20 runs."
                .into(),
        ],
    }
}

fn cli_second_run() -> Summary {
    let cache = tempfile::tempdir().expect("a temporary directory");
    let run = || {
        let started = Instant::now();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_glassbox"))
            .arg("run")
            .arg(glassbox_test_artifacts::REACT_AGENT)
            .args(["--tool", glassbox_test_artifacts::WEATHER])
            .args(["--tool", glassbox_test_artifacts::CALCULATOR])
            .args([
                "--input",
                "Which is warmer, Paris or Lisbon?",
                "--no-trace-tree",
            ])
            .arg("--cache-dir")
            .arg(cache.path())
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("ANTHROPIC_API_KEY")
            .output()
            .expect("cannot run glassbox");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed().as_secs_f64()
    };
    run();
    let samples: Vec<f64> = (0..20).map(|_| run()).collect();
    Summary::of(&samples)
}

/// Batching for runs that must lose nothing: room for every span of a burst.
fn roomy_batch() -> BatchSettings {
    BatchSettings {
        max_queue_size: 1 << 17,
        ..BatchSettings::default()
    }
}

/// Runs `question` on `runtime` from `tasks` tasks at once until `until`; returns the runs completed.
async fn run_until(runtime: &Arc<Host>, tasks: usize, until: Instant) -> u64 {
    let workers: Vec<_> = (0..tasks)
        .map(|_| {
            let runtime = runtime.clone();
            tokio::spawn(async move {
                let mut done = 0u64;
                while Instant::now() < until {
                    let answer = runtime.run(RunRequest::text(QUESTION)).await;
                    assert_eq!(answer.expect("the benchmark run failed"), ANSWER);
                    done += 1;
                }
                done
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.expect("a benchmark task panicked");
    }
    total
}

/// 3. Complete runs per second with full tracing.
pub async fn throughput() -> Section {
    const TASKS: usize = 64;
    const SAMPLE: Duration = Duration::from_secs(2);
    let engine = workload::engine(Some(256));
    let agent = workload::react_agent(&engine).await;
    let tools = workload::calculator(&engine).await;
    let receiver = CountingReceiver::start();
    let runtime = Arc::new(
        Host::builder(agent, workload::shared(workload::instant()))
            .tools(tools)
            .telemetry(workload::traced(&receiver, roomy_batch()))
            .build(),
    );
    run_until(&runtime, TASKS, Instant::now() + Duration::from_millis(500)).await;
    let mut rates = Vec::new();
    let mut runs = 0;
    let cpu_before = workload::cpu_by_thread(&receiver);
    for _ in 0..5 {
        let started = Instant::now();
        let done = run_until(&runtime, TASKS, started + SAMPLE).await;
        rates.push(done as f64 / started.elapsed().as_secs_f64());
        runs += done;
    }
    let cpu = cpu_per_run(&cpu_before, &workload::cpu_by_thread(&receiver), runs);
    let before = runtime.telemetry().export_stats();
    workload::shut_down(runtime.telemetry()).await;
    let stats = runtime.telemetry().export_stats();
    let rate = Summary::of(&rates);
    let backtrace = std::env::var("RUST_BACKTRACE").unwrap_or_else(|_| "unset".into());
    Section {
        title: "3. Throughput".into(),
        rows: vec![Row {
            measurement: format!(
                "Complete runs per second (2 `llm` calls and 1 `tools` call each), full tracing, \
                 `RUST_BACKTRACE={backtrace}`"
            ),
            result: rate.show(1.0, 0, "runs/s"),
            target: "≥ 20,000 runs/s".into(),
            met: Some(rate.median >= 20_000.0),
        }],
        notes: vec![
            format!(
                "The react agent with the calculator plugin and an instant in-process provider, \
                 {TASKS} runs in flight on a 2-thread Tokio runtime, pooled engine; five samples of \
                 {} s after warm-up. Each run is two component instances (the agent, and a fresh \
                 one for its tool call) and {SPANS_PER_RUN} spans, every one exported \
                 over OTLP/gRPC to a receiver on loopback in another process.",
                SAMPLE.as_secs()
            ),
            format!(
                "`RUST_BACKTRACE={backtrace}`: {runs} measured runs; CPU time per run {cpu}. \
                 {} spans received, {} dropped (queue of {} spans), {} exported before shutdown.",
                receiver.spans(),
                stats.dropped(),
                roomy_batch().max_queue_size,
                before.exported
            ),
        ],
    }
}

/// The CPU time per run between two samples of [`workload::cpu_by_thread`], in words.
fn cpu_per_run(
    before: &std::collections::BTreeMap<&'static str, u64>,
    after: &std::collections::BTreeMap<&'static str, u64>,
    runs: u64,
) -> String {
    let per_run = |group: &str| {
        let used = after.get(group).copied().unwrap_or(0);
        used.saturating_sub(before.get(group).copied().unwrap_or(0)) as f64
            / runs.max(1) as f64
            / 1e3
    };
    let total: f64 = after.keys().map(|group| per_run(group)).sum();
    let parts: Vec<String> = after
        .keys()
        .map(|group| format!("{:.1} µs {group}", per_run(group)))
        .collect();
    format!("{total:.1} µs in all: {}", parts.join("; "))
}

/// 4. Ten thousand runs waiting on a slow model at once.
pub async fn concurrency() -> Section {
    const RUNS: usize = 10_000;
    // An agent instance for each run; their tool calls share the default 256.
    let engine = workload::engine(Some(RUNS as u32));
    let agent = workload::react_agent(&engine).await;
    let tools = workload::calculator(&engine).await;
    let receiver = CountingReceiver::start();
    let runtime = Arc::new(
        Host::builder(
            agent,
            workload::shared(Slow {
                delay: Duration::from_secs(1),
                answers: workload::instant(),
            }),
        )
        .tools(tools)
        .telemetry(workload::traced(&receiver, roomy_batch()))
        .build(),
    );
    let (before, _) = workload::memory();
    workload::reset_peak_memory();
    let started = Instant::now();
    let runs: Vec<_> = (0..RUNS)
        .map(|_| {
            let runtime = runtime.clone();
            tokio::spawn(async move { runtime.run(RunRequest::text(QUESTION)).await })
        })
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        match run.await.expect("a run panicked") {
            Ok(answer) => assert_eq!(answer, ANSWER),
            Err(error) => failures.push(error.to_string()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (_, peak) = workload::memory();
    workload::shut_down(runtime.telemetry()).await;
    let stats = runtime.telemetry().export_stats();
    let expected = (RUNS - failures.len()) as u64 * SPANS_PER_RUN;
    let complete = failures.is_empty() && receiver.spans() == expected && stats.dropped() == 0;
    let mut notes = vec![
        format!(
            "{RUNS} react-agent runs started at once on a 2-thread Tokio runtime and a pool of \
             {RUNS} agent instances and 256 tool-call instances; each makes two model calls that \
             each answer after 1 s, and one tool call, so a run cannot take less than 2 s."
        ),
        format!(
            "Resident memory was {:.0} MiB before the runs (engine, compiled components, pool \
             reservations touched so far); the peak includes it.",
            mib(before)
        ),
        format!(
            "Traces: {} of {expected} spans received, {} dropped.",
            receiver.spans(),
            stats.dropped()
        ),
    ];
    if let Some(first) = failures.first() {
        notes.push(format!(
            "{} runs failed; the first: {first}",
            failures.len()
        ));
    }
    Section {
        title: "4. Concurrency".into(),
        rows: vec![
            Row {
                measurement: format!("{RUNS} runs in flight: all complete with full traces"),
                result: format!("{} of {RUNS}", RUNS - failures.len()),
                target: format!("{RUNS} of {RUNS}"),
                met: Some(complete),
            },
            Row {
                measurement: "Wall time until the last run completes".into(),
                result: format!("{elapsed:.2} s"),
                target: "< 3 s".into(),
                met: Some(elapsed < 3.0),
            },
            Row {
                measurement: "Peak resident memory of the process".into(),
                result: format!("{:.0} MiB", mib(peak)),
                target: "< 512 MiB".into(),
                met: Some(peak < 512 << 20),
            },
        ],
        notes,
    }
}

/// 5. Spans delivered per second, and a stopped receiver.
pub async fn export() -> Section {
    const TASKS: usize = 64;
    const HEALTHY: Duration = Duration::from_secs(10);
    const STOPPED: Duration = Duration::from_secs(5);
    let engine = workload::engine(Some(256));
    let agent = workload::react_agent(&engine).await;
    let tools = workload::calculator(&engine).await;
    let run_runtime = |receiver: &CountingReceiver, batch: BatchSettings| {
        Arc::new(
            Host::builder(agent.clone(), workload::shared(workload::instant()))
                .tools(tools.clone())
                .telemetry(workload::traced(receiver, batch))
                .build(),
        )
    };
    // Room for the bursts between batches at this rate (`OTEL_BSP_MAX_QUEUE_SIZE=16384`).
    let healthy_batch = BatchSettings {
        max_queue_size: 16_384,
        ..BatchSettings::default()
    };

    // Healthy: runs at full speed for ten seconds.
    let receiver = CountingReceiver::start();
    let runtime = run_runtime(&receiver, healthy_batch);
    let started = Instant::now();
    let runs = run_until(&runtime, TASKS, started + HEALTHY).await;
    workload::shut_down(runtime.telemetry()).await;
    let elapsed = started.elapsed().as_secs_f64();
    let stats = runtime.telemetry().export_stats();
    let produced = runs * SPANS_PER_RUN;
    let delivered = receiver.spans();
    let rate = delivered as f64 / elapsed;
    drop(receiver);

    // Stopped: the receiver goes away after a second; runs go on for five more.
    let mut receiver = CountingReceiver::start();
    let runtime = run_runtime(&receiver, BatchSettings::default());
    let started = Instant::now();
    let mut stopped_runs = run_until(&runtime, TASKS, started + Duration::from_secs(1)).await;
    receiver.stop();
    let (rss_at_stop, _) = workload::memory();
    let mut rss = Vec::new();
    let phase_end = Instant::now() + STOPPED;
    while Instant::now() < phase_end {
        stopped_runs +=
            run_until(&runtime, TASKS, Instant::now() + Duration::from_millis(500)).await;
        rss.push(workload::memory().0);
    }
    workload::shut_down(runtime.telemetry()).await;
    let down = runtime.telemetry().export_stats();
    let stopped_produced = stopped_runs * SPANS_PER_RUN;
    let undelivered = stopped_produced - receiver.spans();
    let highest = rss.iter().copied().max().unwrap_or(0);
    let growth = highest.saturating_sub(rss_at_stop);
    Section {
        title: "5. Export".into(),
        rows: vec![
            Row {
                measurement: "Spans delivered per second to a loopback OTLP receiver for 10 s"
                    .into(),
                result: format!("{rate:.0} spans/s"),
                target: String::new(),
                met: None,
            },
            Row {
                measurement: "Spans lost over those 10 s (produced − received)".into(),
                result: format!(
                    "{} of {produced} (drop counter {})",
                    produced - delivered,
                    stats.dropped()
                ),
                target: "0".into(),
                met: Some(produced == delivered && stats.dropped() == 0),
            },
            Row {
                measurement: "Receiver stopped: resident memory growth over 5 s of runs".into(),
                result: format!("{:+.1} MiB (peak {:.0} MiB)", mib(growth), mib(highest)),
                target: "bounded".into(),
                met: Some(growth < 64 << 20),
            },
            Row {
                measurement: "Receiver stopped: drop counter against spans not delivered".into(),
                result: format!("{} counted, {undelivered} not delivered", down.dropped()),
                target: "equal".into(),
                met: Some(down.dropped() == undelivered && down.exported == receiver.spans()),
            },
        ],
        notes: vec![
            format!(
                "Healthy: {runs} react-agent runs ({TASKS} in flight, instant provider) for 10 s, \
                 batches of 512 sent when full or every 5 s, a queue of {} spans \
                 (`OTEL_BSP_MAX_QUEUE_SIZE`; the default 2048 lost about 0.2% of the spans at this \
                 rate in some runs); {delivered} spans received, counted at the receiver after \
                 shutdown. The runs and the receiver share the 2 cores, so the rate is what the \
                 host produces and delivers at once, not the exporter's ceiling.",
                healthy_batch.max_queue_size
            ),
            format!(
                "Stopped, default batching (queue 2048): {stopped_runs} runs; the receiver's runtime \
                 was shut down after 1 s, closing its port and connections. Dropped: {} on a full queue, {} in failed exports \
                 ({} of {} requests failed). Memory is bounded by the queue (2048 spans) and one batch.",
                down.dropped_queue_full,
                down.dropped_export_failed,
                down.export_failures,
                down.export_attempts
            ),
        ],
    }
}
