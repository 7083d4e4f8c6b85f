//! Many runs on one pooled engine: runs wait on their models at once without
//! holding threads, each keeps its own complete trace, and a pool that is full
//! or too small for a policy says so.

use crate::support::otlp::string;
use crate::support::{Held, TestHost, artifacts, status};
use glassbox::agents::AgentGrant;
use glassbox::llm::{ChatRequest, ChatResponse, Endpoint, LlmError, LlmProvider, ScriptedProvider};
use glassbox::sandbox::{Limits, Policy};
use glassbox::telemetry::OtlpProtocol;
use glassbox::tools::PluginSpec;
use glassbox::{
    AgentComponent, AgentDirectory, AgentEntry, EngineConfig, Host, Loader, LocalAgent,
    PoolingConfig, RunError, RunRequest, ToolRegistry,
};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::{Barrier, OnceCell};

const DEMO_ANSWER: &str =
    "Lisbon is warmer: 19 °C and sunny, against 14 °C and clear in Paris, a difference of 9 °F.";

/// A pooled engine with room for a few hundred runs, sharing the tests' cache.
fn pooled_engine() -> &'static Loader {
    static ENGINE: OnceLock<Loader> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Loader::with_config(&EngineConfig {
            pooling: Some(PoolingConfig::new(512)),
            cache_dir: Some(concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache").into()),
            ..EngineConfig::default()
        })
        .unwrap()
    })
}

/// A pool of two agent instances and one tool call, each held to 64 MiB.
fn two_slot_engine() -> &'static Loader {
    static ENGINE: OnceLock<Loader> = OnceLock::new();
    ENGINE.get_or_init(|| small_engine(2, 1))
}

/// A pool of one instance, held to 64 MiB, for tests that never get to run.
fn one_slot_engine() -> &'static Loader {
    static ENGINE: OnceLock<Loader> = OnceLock::new();
    ENGINE.get_or_init(|| small_engine(1, 0))
}

fn small_engine(agents: u32, tool_calls: u32) -> Loader {
    Loader::with_config(&EngineConfig {
        pooling: Some(PoolingConfig {
            agents,
            tool_calls,
            max_memory: SLOT_MEMORY,
            ..PoolingConfig::new(1)
        }),
        ..EngineConfig::default()
    })
    .unwrap()
}

const SLOT_MEMORY: u64 = 64 * 1024 * 1024;

fn slot_policy() -> Policy {
    Policy {
        limits: Limits {
            memory: SLOT_MEMORY,
            ..Limits::default()
        },
        ..Policy::default()
    }
}

/// The test agent and tools on the two-slot engine, loaded once.
async fn two_slot_host(llm: Arc<dyn LlmProvider>) -> TestHost {
    static LOADED: OnceCell<(AgentComponent, ToolRegistry)> = OnceCell::const_new();
    small_host(&LOADED, two_slot_engine(), llm).await
}

/// The test agent and tools on the one-slot engine, loaded once.
async fn one_slot_host(llm: Arc<dyn LlmProvider>) -> TestHost {
    static LOADED: OnceCell<(AgentComponent, ToolRegistry)> = OnceCell::const_new();
    small_host(&LOADED, one_slot_engine(), llm).await
}

async fn small_host(
    loaded: &'static OnceCell<(AgentComponent, ToolRegistry)>,
    engine: &'static Loader,
    llm: Arc<dyn LlmProvider>,
) -> TestHost {
    let (agent, tools) = loaded
        .get_or_init(|| async {
            let agent = engine
                .load_agent_with(artifacts::TEST_AGENT.as_ref(), &slot_policy())
                .await
                .unwrap();
            let tools = engine
                .load_tools(&[PluginSpec {
                    policy: slot_policy(),
                    ..PluginSpec::new(artifacts::TEST_TOOLS)
                }])
                .await
                .unwrap();
            (agent, tools)
        })
        .await
        .clone();
    TestHost::start(agent, tools, llm, OtlpProtocol::Grpc).await
}

/// The demo's answers, given only once every run has asked its first question:
/// if runs held threads while they wait, they could never all be waiting.
struct AllAtOnce {
    runs: usize,
    arrived: AtomicUsize,
    barrier: Barrier,
    answers: ScriptedProvider,
}

#[async_trait::async_trait]
impl LlmProvider for AllAtOnce {
    fn name(&self) -> &'static str {
        "all-at-once"
    }

    fn endpoint(&self) -> Option<Endpoint> {
        None
    }

    fn default_model(&self) -> &str {
        self.answers.default_model()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        if self.arrived.fetch_add(1, Ordering::SeqCst) < self.runs {
            tokio::time::timeout(Duration::from_secs(30), self.barrier.wait())
                .await
                .map_err(|_| LlmError::Provider("the runs were never all in flight".into()))?;
        }
        self.answers.chat(request).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_runs_wait_on_the_model_at_once_on_two_threads() {
    const RUNS: usize = 200;
    let engine = pooled_engine();
    let agent = engine
        .load_agent(artifacts::REACT_AGENT.as_ref())
        .await
        .unwrap();
    let tools = engine
        .load_tools(&[
            PluginSpec::new(artifacts::WEATHER),
            PluginSpec::new(artifacts::CALCULATOR),
        ])
        .await
        .unwrap();
    let provider = Arc::new(AllAtOnce {
        runs: RUNS,
        arrived: AtomicUsize::new(0),
        barrier: Barrier::new(RUNS),
        answers: ScriptedProvider::demo(),
    });
    let host = Arc::new(TestHost::start(agent, tools, provider, OtlpProtocol::Grpc).await);

    let runs: Vec<_> = (0..RUNS)
        .map(|i| {
            let host = host.clone();
            tokio::spawn(async move {
                let request = RunRequest {
                    conversation_id: Some(format!("conversation-{i}")),
                    ..RunRequest::text("Which is warmer, Paris or Lisbon?")
                };
                host.runtime.run(request).await
            })
        })
        .collect();
    for run in runs {
        assert_eq!(run.await.unwrap().unwrap(), DEMO_ANSWER);
    }
    host.flush().await;

    // Every run is one whole trace of its own: the agent span and its nine descendants.
    let spans = host.receiver.spans();
    let mut traces: HashMap<Vec<u8>, Vec<_>> = HashMap::new();
    for span in &spans {
        traces.entry(span.trace_id.clone()).or_default().push(span);
    }
    assert_eq!(traces.len(), RUNS);
    let mut conversations = std::collections::HashSet::new();
    for spans in traces.values() {
        assert_eq!(spans.len(), 10, "{spans:#?}");
        let agent = spans
            .iter()
            .find(|s| s.name == "invoke_agent react-agent")
            .unwrap();
        conversations.insert(string(&agent.attributes, "gen_ai.conversation.id").unwrap());
    }
    assert_eq!(conversations.len(), RUNS);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_pool_refuses_a_run_at_once_and_an_admitted_run_always_gets_its_tool() {
    let provider = Arc::new(Held::default());
    let host = Arc::new(two_slot_host(provider.clone()).await);
    let slot_request = |input: &str| RunRequest {
        policy: slot_policy(),
        ..RunRequest::text(input)
    };
    let spawn_run = |input: &'static str| {
        let host = host.clone();
        tokio::spawn(async move { host.runtime.run(slot_request(input)).await })
    };

    // Two runs share the one tool-call slot: while the first run's tool waits
    // on the model, the second run's tool call waits for the slot, and gets it.
    let asking = spawn_run(r#"call ask_model {"question":"hello?"}"#);
    provider.until_waiting(1).await;
    let shouting = spawn_run(r#"call shout {"words":"hi"}"#);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!shouting.is_finished(), "the tool call waits for the slot");

    // A third run while both agent slots are held is refused before it
    // starts, as worth retrying.
    let third = host.runtime.run(slot_request("say hello")).await;
    let Err(RunError::Stopped(fault @ glassbox::sandbox::Fault::AtCapacity(_))) = &third else {
        panic!("{third:?}");
    };
    assert_eq!(
        fault.to_string(),
        "the host is at capacity: the run may need 1 of the pool's 2 agent instances at once and 0 are free; retry later"
    );
    provider.release.notify_one();
    assert_eq!(asking.await.unwrap().unwrap(), "ok: released");
    assert_eq!(shouting.await.unwrap().unwrap(), "ok: HI");

    // A run stopped while its tool call runs stops the call with it: the one
    // slot is free for the next run at once, not when the tool's own five
    // minutes are up.
    let stopped = host
        .runtime
        .run(RunRequest {
            policy: Policy {
                limits: Limits {
                    timeout: Duration::from_millis(300),
                    ..slot_policy().limits
                },
                ..slot_policy()
            },
            ..RunRequest::text("call spin {}")
        })
        .await;
    assert!(
        matches!(
            stopped,
            Err(RunError::Stopped(glassbox::sandbox::Fault::Timeout(_)))
        ),
        "{stopped:?}"
    );
    let next = tokio::time::timeout(
        Duration::from_secs(10),
        host.runtime
            .run(slot_request(r#"call shout {"words":"again"}"#)),
    )
    .await
    .expect("the stopped run's tool call gave its slot back");
    assert_eq!(next.unwrap(), "ok: AGAIN");

    // A run that may call a helper that may call itself, two deep, needs
    // three agent instances: more than this pool has.
    let helping = || slot_policy().granting(AgentGrant(vec!["helper".into()]));
    let calling = RunRequest {
        policy: helping(),
        ..RunRequest::text("say hello")
    };
    let mut agents = AgentDirectory::default().with_max_depth(2);
    agents
        .add(
            "helper",
            AgentEntry::Local(Box::new(LocalAgent {
                component: host.runtime.agent().clone(),
                policy: helping(),
                budget: Default::default(),
            })),
        )
        .unwrap();
    let with_helper = Host::builder(
        host.runtime.agent().clone(),
        provider.clone() as Arc<dyn LlmProvider>,
    )
    .agents(agents)
    .build();
    let error = with_helper.run(calling).await.unwrap_err();
    assert_eq!(
        error.to_string(),
        "the agent was stopped: the host is at capacity: the run may need 3 agent instances at once, more than the pool's 2; give the host more instance slots"
    );
    host.flush().await;

    let spans = host.receiver.spans();
    let refused: Vec<_> = spans
        .iter()
        .filter(|s| string(&s.attributes, "error.type").as_deref() == Some("at_capacity"))
        .map(|s| (s.name.as_str(), status(s).0))
        .collect();
    assert_eq!(
        refused,
        [("invoke_agent test-agent", 2)],
        "the third run alone"
    );
    assert!(
        spans.iter().all(
            |s| s.name != "execute_tool shout" || string(&s.attributes, "error.type").is_none()
        ),
        "no tool call met a full pool"
    );
}

/// A component with more core instances than the pool allows each is refused
/// when it loads, saying what it needs, rather than failing every run.
#[tokio::test(flavor = "multi_thread")]
async fn a_component_larger_than_a_pool_slot_is_refused_with_what_it_needs() {
    let narrow = Loader::with_config(&EngineConfig {
        pooling: Some(PoolingConfig {
            core_instances_per_component: 2,
            ..PoolingConfig::new(1)
        }),
        ..EngineConfig::default()
    })
    .unwrap();
    let error = narrow
        .load_tools(&[PluginSpec::new(artifacts::TEST_TOOLS)])
        .await
        .err()
        .unwrap()
        .to_string();
    let expected = format!(
        "{}: too large for this host's instance pool: it needs ",
        artifacts::TEST_TOOLS
    );
    assert!(error.starts_with(&expected), "{error}");
    assert!(
        error.ends_with(" core instances; this host's pool allows 2 per component"),
        "{error}"
    );

    // A componentize-py component has 14: the default pool takes it.
    let python = pooled_engine()
        .load_tools(&[PluginSpec::new(artifacts::PYTHON_TEXT_TOOLS)])
        .await
        .unwrap();
    assert!(
        python
            .definitions()
            .iter()
            .any(|tool| tool.name == "text_stats")
    );

    // Its memory at start is more than a small limit: refused at load, saying both.
    let small = PluginSpec {
        policy: Policy {
            limits: Limits {
                memory: 8 * 1024 * 1024,
                ..Limits::default()
            },
            ..Policy::default()
        },
        ..PluginSpec::new(artifacts::PYTHON_TEXT_TOOLS)
    };
    let error = pooled_engine()
        .load_tools(&[small])
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("cannot set up its sandbox: it needs ")
            && error.ends_with(" of memory at start; its limit is 8.0 MiB"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_policy_granting_more_memory_than_a_slot_holds_is_refused() {
    let host = one_slot_host(Arc::new(ScriptedProvider::demo())).await;
    let error = host
        .runtime
        .run(RunRequest::text("echo hi"))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "cannot set up the agent's sandbox: its memory limit of 256.0 MiB is more than the 64.0 MiB each pooled instance has; raise the pool's max_memory"
    );

    let error = one_slot_engine()
        .load_tools(&[PluginSpec::new(artifacts::TEST_TOOLS)])
        .await
        .err()
        .unwrap();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: cannot set up its sandbox: its memory limit of 256.0 MiB is more than the 64.0 MiB each pooled instance has; raise the pool's max_memory",
            artifacts::TEST_TOOLS
        )
    );
}
