//! What the tests share: components compiled once per test binary, a runtime
//! wired to a real OTLP receiver, and a readable form of an exported span tree.

pub mod llm_server;
pub mod otlp;
pub mod pki;

use glassbox::llm::{
    AnthropicConfig, AnthropicProvider, Connection, Llm, OpenAiConfig, OpenAiProvider, RetryPolicy,
    ScriptedProvider, SharedProvider,
};
use glassbox::sandbox::{Limits, Policy};
use glassbox::telemetry::{ContentConfig, OtlpProtocol, OtlpTarget, TelemetryConfig};
use glassbox::tools::PluginSpec;
use glassbox::{AgentComponent, Host, Loader, RunError, RunRequest, Telemetry, ToolRegistry};
use llm_server::{MockLlm, Reply};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use otlp::Receiver;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::OnceCell;

pub use glassbox_test_artifacts as artifacts;

/// The API key given to the OpenAI provider in tests; it must never be exported.
pub const API_KEY: &str = "sk-test-7f3a9c0e2b5d4e6f8a1b";

/// One engine for the tests, metering fuel so fuel limits can be tested.
pub fn engine() -> &'static Loader {
    static ENGINE: OnceLock<Loader> = OnceLock::new();
    ENGINE.get_or_init(|| Loader::with_fuel_metering().unwrap())
}

/// The react agent, compiled once.
pub async fn react_agent() -> AgentComponent {
    static AGENT: OnceCell<AgentComponent> = OnceCell::const_new();
    load_once(&AGENT, artifacts::REACT_AGENT).await
}

/// The test agent, which does what its input says, compiled once.
pub async fn test_agent() -> AgentComponent {
    static AGENT: OnceCell<AgentComponent> = OnceCell::const_new();
    load_once(&AGENT, artifacts::TEST_AGENT).await
}

async fn load_once(cell: &'static OnceCell<AgentComponent>, path: &str) -> AgentComponent {
    cell.get_or_init(|| async { engine().load_agent(path.as_ref()).await.unwrap() })
        .await
        .clone()
}

/// The limits [`limited_tools`] run under.
pub const TOOL_LIMITS: Limits = Limits {
    memory: 64 * 1024 * 1024,
    timeout: std::time::Duration::from_secs(1),
    fuel: None,
};

/// The test tools held to [`TOOL_LIMITS`], compiled once.
pub async fn limited_tools() -> ToolRegistry {
    static TOOLS: OnceCell<ToolRegistry> = OnceCell::const_new();
    TOOLS
        .get_or_init(|| async {
            let plugin = PluginSpec {
                policy: Policy {
                    limits: TOOL_LIMITS,
                    ..Policy::default()
                },
                ..PluginSpec::new(artifacts::TEST_TOOLS)
            };
            engine().load_tools(&[plugin]).await.unwrap()
        })
        .await
        .clone()
}

/// Weather, calculator and the test tools, compiled once.
pub async fn tools() -> ToolRegistry {
    static TOOLS: OnceCell<ToolRegistry> = OnceCell::const_new();
    TOOLS
        .get_or_init(|| async {
            let plugins = [
                artifacts::WEATHER,
                artifacts::CALCULATOR,
                artifacts::TEST_TOOLS,
            ]
            .map(PluginSpec::new);
            engine().load_tools(&plugins).await.unwrap()
        })
        .await
        .clone()
}

pub fn scripted(script: &str) -> SharedProvider {
    Arc::new(ScriptedProvider::parse(script, "test script").unwrap())
}

/// Retries quick enough for tests: three attempts within 1.5 s.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        initial_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_elapsed: Duration::from_millis(1500),
    }
}

/// A connection to a mock server, with the test key and quick retries.
pub fn mock_connection(base_url: &str) -> Connection {
    Connection {
        base_url: base_url.to_owned(),
        api_key: Some(API_KEY.to_owned()),
        timeout: Duration::from_secs(10),
        retry: quick_retries(),
    }
}

pub fn openai(base_url: &str) -> SharedProvider {
    openai_over(mock_connection(base_url))
}

pub fn openai_over(connection: Connection) -> SharedProvider {
    Arc::new(
        OpenAiProvider::new(OpenAiConfig {
            provider_name: "openai",
            connection,
            model: "mock-model".to_owned(),
            embedding_model: "mock-embedder".to_owned(),
        })
        .unwrap(),
    )
}

pub fn anthropic(base_url: &str) -> SharedProvider {
    Arc::new(
        AnthropicProvider::new(AnthropicConfig {
            connection: mock_connection(base_url),
            model: "claude-sonnet-4-5".to_owned(),
        })
        .unwrap(),
    )
}

/// A finished run and everything its telemetry exported.
pub struct Outcome {
    pub result: Result<String, RunError>,
    pub receiver: Receiver,
}

/// A runtime exporting to its own receiver.
pub struct TestHost {
    pub runtime: Host,
    pub receiver: Receiver,
}

impl TestHost {
    pub async fn start(
        agent: AgentComponent,
        tools: ToolRegistry,
        llm: impl Into<Llm>,
        protocol: OtlpProtocol,
    ) -> Self {
        Self::start_with_content(agent, tools, llm, protocol, ContentConfig::default()).await
    }

    /// The test agent with every test tool, exporting over gRPC.
    pub async fn test_agent(llm: impl Into<Llm>) -> Self {
        Self::start(test_agent().await, tools().await, llm, OtlpProtocol::Grpc).await
    }

    /// A host capturing message content as `content` says.
    pub async fn start_with_content(
        agent: AgentComponent,
        tools: ToolRegistry,
        llm: impl Into<Llm>,
        protocol: OtlpProtocol,
        content: ContentConfig,
    ) -> Self {
        let receiver = Receiver::start(protocol).await;
        let config = TelemetryConfig {
            content,
            ..exporting_to(&receiver, protocol)
        };
        Self::with_telemetry(agent, tools, llm, receiver, &config)
    }

    /// A host exporting to `receiver` as `config` says.
    pub fn with_telemetry(
        agent: AgentComponent,
        tools: ToolRegistry,
        llm: impl Into<Llm>,
        receiver: Receiver,
        config: &TelemetryConfig,
    ) -> Self {
        let telemetry = Arc::new(Telemetry::new(config, &agent.info().name).unwrap());
        TestHost {
            runtime: Host::builder(agent, llm)
                .tools(tools)
                .telemetry(telemetry)
                .build(),
            receiver,
        }
    }

    /// Exports everything recorded so far; later runs still work but export nothing.
    pub async fn flush(&self) {
        self.shut_down().await.unwrap();
    }

    /// Exports everything recorded so far and says how that went.
    pub async fn shut_down(&self) -> Result<(), glassbox::telemetry::TelemetryError> {
        let telemetry = self.runtime.telemetry().clone();
        tokio::task::spawn_blocking(move || telemetry.shutdown())
            .await
            .unwrap()
    }

    /// Checks that the host still serves an ordinary run, after an attack.
    pub async fn still_serves(&self) {
        assert_eq!(
            self.runtime
                .run(RunRequest::text(r#"call shout {"words":"still here"}"#))
                .await
                .unwrap(),
            "ok: STILL HERE"
        );
    }
}

/// Every signal to `receiver`, nothing else.
pub fn exporting_to(receiver: &Receiver, protocol: OtlpProtocol) -> TelemetryConfig {
    TelemetryConfig {
        otlp: Some(OtlpTarget::new(receiver.endpoint(), protocol)),
        ..TelemetryConfig::default()
    }
}

/// Runs the react agent with every test tool, exporting to a fresh receiver,
/// and waits until telemetry is flushed.
pub async fn run_agent(
    provider: SharedProvider,
    protocol: OtlpProtocol,
    request: RunRequest,
) -> Outcome {
    let host = TestHost::start(react_agent().await, tools().await, provider, protocol).await;
    let result = host.runtime.run(request).await;
    host.flush().await;
    Outcome {
        result,
        receiver: host.receiver,
    }
}

/// Runs the react agent against a mock OpenAI server answering `replies`, and
/// returns the server (to see what it was sent) with the outcome.
pub async fn run_against_mock(
    replies: Vec<Reply>,
    protocol: OtlpProtocol,
    input: &str,
) -> (MockLlm, Outcome) {
    let llm = MockLlm::start(replies).await;
    let outcome = run_agent(openai(&llm.base_url), protocol, RunRequest::text(input)).await;
    (llm, outcome)
}

/// The exported spans as an indented outline, `name [KIND]` per line, children
/// in start order; checks on the way that they share one trace.
pub fn outline(spans: &[Span]) -> String {
    let trace_ids: std::collections::HashSet<_> =
        spans.iter().map(|s| s.trace_id.clone()).collect();
    assert_eq!(
        trace_ids.len(),
        1,
        "the spans belong to {} traces",
        trace_ids.len()
    );
    let ids: std::collections::HashSet<_> = spans.iter().map(|s| s.span_id.clone()).collect();
    let mut children: HashMap<Vec<u8>, Vec<&Span>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        if ids.contains(&span.parent_span_id) {
            children
                .entry(span.parent_span_id.clone())
                .or_default()
                .push(span);
        } else {
            roots.push(span);
        }
    }
    let mut text = String::new();
    fn walk(span: &Span, depth: usize, children: &HashMap<Vec<u8>, Vec<&Span>>, text: &mut String) {
        let kind = match span.kind {
            1 => "INTERNAL",
            2 => "SERVER",
            3 => "CLIENT",
            other => panic!("unexpected span kind {other}"),
        };
        text.push_str(&format!("{}{} [{kind}]\n", "  ".repeat(depth), span.name));
        let mut kids = children.get(&span.span_id).cloned().unwrap_or_default();
        kids.sort_by_key(|s| s.start_time_unix_nano);
        for kid in kids {
            walk(kid, depth + 1, children, text);
        }
    }
    roots.sort_by_key(|s| s.start_time_unix_nano);
    for root in roots {
        walk(root, 0, &children, &mut text);
    }
    text
}

/// The span `span` nests under, among `spans`.
pub fn parent_of<'a>(spans: &'a [Span], span: &Span) -> Option<&'a Span> {
    spans.iter().find(|s| s.span_id == span.parent_span_id)
}

/// The one span named `name`.
pub fn only<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let found: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one `{name}` span, found {}",
        found.len()
    );
    found[0]
}

/// Asserts that each `(key, value)` is among the string `attributes`.
pub fn assert_strings(attributes: &[KeyValue], expected: &[(&str, &str)]) {
    for (key, value) in expected {
        assert_eq!(
            otlp::string(attributes, key).as_deref(),
            Some(*value),
            "{key}"
        );
    }
}

/// Status code of a span: 0 unset, 1 ok, 2 error.
pub fn status(span: &Span) -> (i32, String) {
    let status = span.status.clone().unwrap_or_default();
    (status.code, status.message)
}

/// A model that answers "released" once told to, so a run can be held in flight.
#[derive(Default)]
pub struct Held {
    pub waiting: std::sync::atomic::AtomicUsize,
    pub release: tokio::sync::Notify,
}

impl Held {
    /// Waits until `count` calls are waiting on the model.
    pub async fn until_waiting(&self, count: usize) {
        while self.waiting.load(std::sync::atomic::Ordering::SeqCst) < count {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

#[async_trait::async_trait]
impl glassbox::llm::LlmProvider for Held {
    fn name(&self) -> &'static str {
        "held"
    }

    fn endpoint(&self) -> Option<glassbox::llm::Endpoint> {
        None
    }

    fn default_model(&self) -> &str {
        "held-model"
    }

    async fn chat(
        &self,
        _request: glassbox::llm::ChatRequest,
    ) -> Result<glassbox::llm::ChatResponse, glassbox::llm::LlmError> {
        self.waiting
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.release.notified().await;
        Ok(glassbox::llm::ChatResponse {
            id: "held-1".into(),
            model: "held-model".into(),
            message: glassbox::llm::Message::assistant("released"),
            finish_reason: glassbox::llm::FinishReason::Stop,
            usage: None,
        })
    }
}

/// A runtime for `agent` that may call the agents of `agents`, with every
/// test tool, exporting over gRPC to its own receiver.
pub async fn with_agents(
    agent: AgentComponent,
    agents: glassbox::AgentDirectory,
    llm: impl Into<Llm>,
) -> TestHost {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let config = exporting_to(&receiver, OtlpProtocol::Grpc);
    let telemetry = Arc::new(Telemetry::new(&config, &agent.info().name).unwrap());
    TestHost {
        runtime: Host::builder(agent, llm)
            .tools(tools().await)
            .agents(agents)
            .telemetry(telemetry)
            .build(),
        receiver,
    }
}

/// The planner example as shipped (`workflow.toml`), pointed at the components
/// built for the tests, written into `dir`.
pub fn workflow_manifest(dir: &Path) -> PathBuf {
    let components = Path::new(artifacts::PLANNER_AGENT).parent().unwrap();
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let manifest = std::fs::read_to_string(repository.join("workflow.toml"))
        .unwrap()
        .replace("target/wasm32-wasip2/release", components.to_str().unwrap())
        .replace(
            "plugins/planner-agent",
            repository.join("plugins/planner-agent").to_str().unwrap(),
        );
    let path = dir.join("workflow.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

/// `text` written as `dir/glassbox.toml`, whose path it returns.
pub fn manifest_in(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("glassbox.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs the planner example (`workflow.toml`) once, exactly as `glassbox run
/// --manifest` runs it, exporting as `config` says, and returns when
/// everything is exported.
pub async fn run_workflow(config: &TelemetryConfig) {
    let telemetry = Arc::new(Telemetry::new(config, "planner").unwrap());
    let dir = tempfile::tempdir().unwrap();
    let manifest = glassbox::manifest::Manifest::load(&workflow_manifest(dir.path())).unwrap();
    let options = glassbox::runtime::HostOptions {
        telemetry: glassbox::runtime::TelemetrySetup::Shared(telemetry.clone()),
        ..glassbox::runtime::HostOptions::default()
    };
    let host = Host::from_manifest(&manifest, options).await.unwrap();
    host.run(host.request(
        "Plan a day out in Lisbon for three: the weather, and the museum tickets at 24 euros each?",
    ))
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .unwrap()
        .unwrap();
}

/// The react agent, loaded by `loader`.
pub async fn react_agent_on(loader: &Loader) -> AgentComponent {
    loader
        .load_agent(artifacts::REACT_AGENT.as_ref())
        .await
        .unwrap()
}

/// Weather and calculator, loaded by `loader`.
pub async fn tools_on(loader: &Loader) -> ToolRegistry {
    let plugins = [artifacts::WEATHER, artifacts::CALCULATOR].map(PluginSpec::new);
    loader.load_tools(&plugins).await.unwrap()
}
