//! Guests in each language (section 7): what a tool plugin written in Rust, Python
//! (componentize-py) or JavaScript (componentize-qjs or componentize-js) costs the host.

use crate::measure::time_per_call;
use crate::report::{Row, Section, Summary};
use crate::workload::{self, mib};
use glassbox::tools::{InstanceScope, PluginSpec};
use glassbox::{AgentComponent, EngineConfig, Host, Loader, PoolingConfig};
use glassbox_test_artifacts as artifacts;
use std::time::Instant;

/// (language, component, tool, arguments, target for a call into a fresh instance in µs)
const GUESTS: [(&str, &str, &str, &str, f64); 4] = [
    (
        "Rust",
        artifacts::CALCULATOR,
        "calculate",
        r#"{"expression":"6 * 7"}"#,
        20.0,
    ),
    (
        "Python",
        artifacts::PYTHON_TEXT_TOOLS,
        "text_stats",
        r#"{"text":"The cat sat. The dog ran."}"#,
        200.0,
    ),
    (
        "JavaScript (QuickJS)",
        artifacts::JS_DATA_TOOLS,
        "convert_units",
        r#"{"value":19,"from":"C","to":"F"}"#,
        200.0,
    ),
    (
        "JavaScript (StarlingMonkey)",
        artifacts::JS_DATA_TOOLS_STARLINGMONKEY,
        "convert_units",
        r#"{"value":19,"from":"C","to":"F"}"#,
        200.0,
    ),
];
const CALLS: u32 = 50;
const SAMPLES: usize = 7;

pub async fn languages() -> Section {
    let cache = tempfile::tempdir().expect("a temporary directory");
    let pooled = |cache_dir: Option<std::path::PathBuf>| {
        Loader::with_config(&EngineConfig {
            pooling: Some(PoolingConfig::new(4)),
            cache_dir,
            ..EngineConfig::default()
        })
        .expect("cannot build the engine")
    };
    let cached = pooled(Some(cache.path().into()));
    let agent = workload::test_agent(&cached).await;
    let mut rows = Vec::new();
    for (language, component, tool, arguments, target) in GUESTS {
        let row = |what: &str, result: String| Row {
            measurement: format!("{language}: {what}"),
            result,
            target: String::new(),
            met: None,
        };
        let size = std::fs::metadata(component).expect("the component").len();
        rows.push(row("component size", format!("{:.1} MiB", mib(size))));

        let started = Instant::now();
        pooled(None)
            .load_tools(&[PluginSpec::new(component)])
            .await
            .expect("the component loads");
        rows.push(row(
            "first compile (one sample)",
            format!("{:.2} s", started.elapsed().as_secs_f64()),
        ));

        let input = format!("calls {CALLS} {tool} {arguments}");
        let (before, _) = workload::memory();
        let fresh =
            time_per_call_of(&cached, &agent, component, InstanceScope::PerCall, &input).await;
        let (after, _) = workload::memory();
        rows.push(Row {
            target: format!("< {target} µs"),
            met: Some(fresh.median * 1e6 < target),
            ..row(
                "per tool call, a fresh instance each, tracing off",
                fresh.show(1e6, 0, "µs"),
            )
        });
        rows.push(row(
            "resident memory added by loading it once and calling it",
            format!("{:.1} MiB", mib(after.saturating_sub(before))),
        ));
        let kept =
            time_per_call_of(&cached, &agent, component, InstanceScope::PerRun, &input).await;
        rows.push(row(
            "per tool call, one instance for the run's calls (`instance = \"per-run\"`)",
            kept.show(1e6, 0, "µs"),
        ));

        let mut loads = Vec::new();
        for _ in 0..SAMPLES {
            let started = Instant::now();
            cached
                .load_tools(&[PluginSpec::new(component)])
                .await
                .expect("the component loads");
            loads.push(started.elapsed().as_secs_f64());
        }
        rows.push(row(
            "load, compiled component cached",
            Summary::of(&loads).show(1e3, 1, "ms"),
        ));
    }
    Section {
        title: "7. Guest languages".into(),
        rows,
        notes: vec![
            format!(
                "One tool plugin per language, built from source by the tests: the Rust \
                 calculator, the Python text tools (componentize-py 0.25.1, CPython 3.14) and the \
                 JavaScript data tools built for each engine (componentize-qjs 0.4.5, the SDK's \
                 default; componentize-js 0.23, StarlingMonkey). First compile: \
                 Cranelift with no cache, pooled engine; cached load: deserialising the compiled \
                 component from the cache, {SAMPLES} samples."
            ),
            format!(
                "Per call: the test agent makes {CALLS} calls of the tool in one run (instant \
                 provider, tracing off), each in a fresh pooled instance; the time is the run's \
                 over its calls, {SAMPLES} runs after one warm-up; with `instance = \"per-run\"` \
                 the first call of each run starts the instance and the other {} reuse it. Memory: \
                 this process's resident memory after loading once and calling, less before (the \
                 compiled code mapped and the instances' pages touched).",
                CALLS - 1
            ),
        ],
    }
}

/// The time per call of runs making `input`'s calls of `component`, loaded
/// with `instances`, tracing off: `SAMPLES` runs after one warm-up.
async fn time_per_call_of(
    engine: &Loader,
    agent: &AgentComponent,
    component: &str,
    instances: InstanceScope,
    input: &str,
) -> Summary {
    let tools = engine
        .load_tools(&[PluginSpec {
            instances,
            ..PluginSpec::new(component)
        }])
        .await
        .expect("the component loads");
    let host = Host::builder(agent.clone(), workload::shared(workload::instant()))
        .tools(tools)
        .telemetry(workload::disabled())
        .build();
    time_per_call(&host, input, CALLS).await; // warm-up
    let mut per_call = Vec::new();
    for _ in 0..SAMPLES {
        per_call.push(time_per_call(&host, input, CALLS).await);
    }
    Summary::of(&per_call)
}
