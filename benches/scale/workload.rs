//! What the benchmarks run: engines, components built from source, instant
//! and slow model providers, and telemetry exporting to a counting receiver.

use crate::receiver::CountingReceiver;
use glassbox::llm::{
    ChatRequest, ChatResponse, Endpoint, LlmError, LlmProvider, ScriptedProvider, SharedProvider,
};
use glassbox::telemetry::{BatchSettings, OtlpProtocol, OtlpTarget, TelemetryConfig};
use glassbox::tools::PluginSpec;
use glassbox::{AgentComponent, EngineConfig, Loader, PoolingConfig, Telemetry, ToolRegistry};
use glassbox_test_artifacts as artifacts;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Two model calls and one tool call: the model asks for a calculation, then answers.
const TWO_CALLS_AND_A_TOOL: &str = r#"
model = "instant"

[[turn]]
tool_calls = [{ name = "calculate", arguments = { expression = "6 * 7" } }]

[[turn]]
content = "The answer is {{result:calculate}}."
"#;

/// Spans in one such run of the react agent: the run, two steps, two chats, one tool call.
pub const SPANS_PER_RUN: u64 = 6;

pub const QUESTION: &str = "What is six times seven?";
pub const ANSWER: &str = "The answer is 42.";

/// An engine pooling `agents` instances (and tool calls up to 256), with compiled components cached beside the build.
pub fn engine(pooling: Option<u32>) -> Loader {
    Loader::with_config(&EngineConfig {
        pooling: pooling.map(PoolingConfig::new),
        cache_dir: Some(concat!(env!("CARGO_TARGET_TMPDIR"), "/bench-component-cache").into()),
        ..EngineConfig::default()
    })
    .expect("cannot build the engine")
}

pub async fn react_agent(engine: &Loader) -> AgentComponent {
    engine
        .load_agent(artifacts::REACT_AGENT.as_ref())
        .await
        .expect("cannot load the react agent")
}

pub async fn test_agent(engine: &Loader) -> AgentComponent {
    engine
        .load_agent(artifacts::TEST_AGENT.as_ref())
        .await
        .expect("cannot load the test agent")
}

pub async fn calculator(engine: &Loader) -> ToolRegistry {
    engine
        .load_tools(&[PluginSpec::new(artifacts::CALCULATOR)])
        .await
        .expect("cannot load the calculator")
}

/// An in-process provider that answers at once.
pub fn instant() -> ScriptedProvider {
    ScriptedProvider::parse(TWO_CALLS_AND_A_TOOL, "benchmark script").expect("a valid script")
}

/// Full tracing: every signal over OTLP/gRPC to `receiver`, batched as `batch` says.
pub fn traced(receiver: &CountingReceiver, batch: BatchSettings) -> Arc<Telemetry> {
    let config = TelemetryConfig {
        otlp: Some(OtlpTarget::new(receiver.endpoint(), OtlpProtocol::Grpc)),
        batch,
        ..TelemetryConfig::default()
    };
    Arc::new(Telemetry::new(&config, "bench").expect("cannot set up telemetry"))
}

/// Spans and metrics recorded as usual, with nowhere to export them.
pub fn recording_only() -> Arc<Telemetry> {
    Arc::new(Telemetry::new(&TelemetryConfig::default(), "bench").expect("cannot set up telemetry"))
}

/// What `OTEL_SDK_DISABLED=true` gives.
pub fn disabled() -> Arc<Telemetry> {
    let config = TelemetryConfig {
        disabled: true,
        ..TelemetryConfig::default()
    };
    Arc::new(Telemetry::new(&config, "bench").expect("cannot set up telemetry"))
}

/// Exports what is left and stops telemetry, off the async workers.
pub async fn shut_down(telemetry: &Arc<Telemetry>) {
    let telemetry = telemetry.clone();
    let result = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    if let Ok(Err(error)) = result {
        eprintln!("telemetry: {error}");
    }
}

/// The instant provider's answers, each after `delay`.
pub struct Slow {
    pub delay: Duration,
    pub answers: ScriptedProvider,
}

#[async_trait::async_trait]
impl LlmProvider for Slow {
    fn name(&self) -> &'static str {
        "slow"
    }

    fn endpoint(&self) -> Option<Endpoint> {
        None
    }

    fn default_model(&self) -> &str {
        self.answers.default_model()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        tokio::time::sleep(self.delay).await;
        self.answers.chat(request).await
    }
}

/// The instant provider, noting when it was first called since the last `take`.
pub struct Stopwatch {
    pub answers: ScriptedProvider,
    pub first_call: Mutex<Option<Instant>>,
}

impl Stopwatch {
    pub fn take(&self) -> Option<Instant> {
        self.first_call.lock().unwrap().take()
    }
}

#[async_trait::async_trait]
impl LlmProvider for Stopwatch {
    fn name(&self) -> &'static str {
        "stopwatch"
    }

    fn endpoint(&self) -> Option<Endpoint> {
        None
    }

    fn default_model(&self) -> &str {
        self.answers.default_model()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let now = Instant::now();
        self.first_call.lock().unwrap().get_or_insert(now);
        self.answers.chat(request).await
    }
}

pub fn shared(provider: impl LlmProvider + 'static) -> SharedProvider {
    Arc::new(provider)
}

/// Resident memory now and at its peak since the last [`reset_peak_memory`], in bytes.
pub fn memory() -> (u64, u64) {
    memory_of("self")
}

/// Resident and peak resident memory of process `pid` (`self` for this one), in bytes.
pub fn memory_of(pid: &str) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches(" kB").parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts measuring peak resident memory afresh (Linux: `/proc/self/clear_refs`).
pub fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// CPU time used so far, in nanoseconds, by what it was spent on: this
/// process's threads grouped by name (`/proc/self/task/*/schedstat`; threads
/// that have ended are not counted), and the receiver's process.
pub fn cpu_by_thread(receiver: &CountingReceiver) -> std::collections::BTreeMap<&'static str, u64> {
    let mut by_group = std::collections::BTreeMap::new();
    by_group.insert(
        "the OTLP receiver, a process of its own (the benchmark's, not the host's)",
        receiver.cpu_time(),
    );
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_group;
    };
    for task in tasks.flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        let running: u64 = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|ns| ns.parse().ok())
            .unwrap_or(0);
        *by_group
            .entry(thread_group(read("comm").trim()))
            .or_default() += running;
    }
    by_group
}

/// What a thread named `name` (cut to 15 characters by the kernel) works on.
fn thread_group(name: &str) -> &'static str {
    match name {
        "tokio-rt-worker" => "the runs: the host and its guests",
        "glassbox-span-e" => "the span export thread: batching and OTLP encoding",
        "glassbox-otlp" => "the OTLP client's connections",
        _ => "other threads",
    }
}
