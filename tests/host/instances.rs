//! Which tool calls share an instance: none by default; with `instance =
//! "per-run"`, the calls one run makes of a plugin, until one of them traps
//! or times out. Runs never share one, and each call is still traced, and its
//! sandbox denials recorded, on its own span.

use crate::support::{
    TOOL_LIMITS, TestHost, artifacts, engine, manifest_in, outline, scripted, test_agent, tools,
};
use glassbox::manifest::Manifest;
use glassbox::sandbox::Policy;
use glassbox::telemetry::OtlpProtocol;
use glassbox::tools::{InstanceScope, PluginSpec};
use glassbox::{EngineConfig, Host, Loader, PoolingConfig, RunRequest, ToolRegistry};

/// The test tools, their instance kept for each run's later calls.
fn kept_per_run() -> PluginSpec {
    PluginSpec {
        policy: Policy {
            limits: TOOL_LIMITS,
            ..Policy::default()
        },
        instances: InstanceScope::PerRun,
        ..PluginSpec::new(artifacts::TEST_TOOLS)
    }
}

async fn tools_kept_per_run() -> ToolRegistry {
    engine().load_tools(&[kept_per_run()]).await.unwrap()
}

async fn ask(host: &Host, input: &str) -> String {
    host.run(RunRequest::text(input)).await.unwrap()
}

/// A model the runs here never call.
const NEVER_ASKED: &str = "[[turn]]\ncontent = \"unused\"\n";

const THREE_COUNTS: &str = "sequence count_calls {}; count_calls {}; count_calls {}";

#[tokio::test(flavor = "multi_thread")]
async fn every_call_gets_a_fresh_instance_by_default() {
    let host = Host::builder(test_agent().await, scripted(NEVER_ASKED))
        .tools(tools().await)
        .build();
    assert_eq!(ask(&host, THREE_COUNTS).await, "ok: 1 | ok: 1 | ok: 1");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_plugin_kept_per_run_serves_the_runs_calls_from_one_instance_and_no_other_runs() {
    let host = Host::builder(test_agent().await, scripted(NEVER_ASKED))
        .tools(tools_kept_per_run().await)
        .build();
    assert_eq!(ask(&host, THREE_COUNTS).await, "ok: 1 | ok: 2 | ok: 3");
    // The next run starts from a fresh instance.
    assert_eq!(ask(&host, THREE_COUNTS).await, "ok: 1 | ok: 2 | ok: 3");

    // An instance that trapped, or ran out of time, is never called again.
    for attack in ["explode", "spin"] {
        let outcome = ask(
            &host,
            &format!("sequence count_calls {{}}; {attack} {{}}; count_calls {{}}"),
        )
        .await;
        let parts: Vec<&str> = outcome.split(" | ").collect();
        assert_eq!(parts[0], "ok: 1", "{attack}: {outcome}");
        assert!(
            parts[1].starts_with("crashed: ") || parts[1].starts_with("timeout: "),
            "{attack}: {outcome}"
        );
        assert_eq!(parts[2], "ok: 1", "{attack}: {outcome}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_short_of_tool_slots_gives_back_the_instances_it_kept() {
    // One tool-call slot: the kept instance holds it when the calculator's turn comes.
    let engine = Loader::with_config(&EngineConfig {
        pooling: Some(PoolingConfig {
            tool_calls: 1,
            ..PoolingConfig::new(1)
        }),
        ..EngineConfig::default()
    })
    .unwrap();
    let agent = engine
        .load_agent(artifacts::TEST_AGENT.as_ref())
        .await
        .unwrap();
    let kept = kept_per_run();
    let calculator = PluginSpec {
        policy: kept.policy.clone(),
        ..PluginSpec::new(artifacts::CALCULATOR)
    };
    let tools = engine.load_tools(&[kept, calculator]).await.unwrap();
    let host = Host::builder(agent, scripted(NEVER_ASKED))
        .tools(tools)
        .build();
    assert_eq!(
        ask(
            &host,
            r#"sequence count_calls {}; count_calls {}; calculate {"expression":"6 * 7"}; count_calls {}"#
        )
        .await,
        "ok: 1 | ok: 2 | ok: 42 | ok: 1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn each_call_of_a_kept_instance_is_traced_under_its_own_span() {
    let script = "[[turn]]\ncontent = \"42\"\n";
    let host = TestHost::start(
        test_agent().await,
        tools_kept_per_run().await,
        scripted(script),
        OtlpProtocol::Grpc,
    )
    .await;
    let question = r#"ask_model {"question":"Six times seven?"}"#;
    let connect = r#"connect {"address":"127.0.0.1:9"}"#;
    assert_eq!(
        ask(
            &host.runtime,
            &format!("sequence {question}; {question}; {connect}")
        )
        .await,
        "ok: 42 | ok: 42 | not allowed: connecting to 127.0.0.1:9 failed: access-denied"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent test-agent [INTERNAL]
  execute_tool ask_model [INTERNAL]
    ask_model.consult [INTERNAL]
      chat scripted [CLIENT]
  execute_tool ask_model [INTERNAL]
    ask_model.consult [INTERNAL]
      chat scripted [CLIENT]
  execute_tool connect [INTERNAL]
"
    );
    // The sandbox records what it refused on the span of the call it served.
    let denials: Vec<&str> = spans
        .iter()
        .flat_map(|span| span.events.iter().map(move |event| (span, event)))
        .filter(|(_, event)| event.name == "glassbox.sandbox.denied")
        .map(|(span, _)| span.name.as_str())
        .collect();
    assert_eq!(denials, ["execute_tool connect"]);
}

#[test]
fn the_manifest_says_which_calls_share_an_instance() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = |instance: &str| {
        format!(
            "[agent]\npath = \"{}\"\n[[plugins]]\npath = \"{}\"\n{instance}",
            artifacts::TEST_AGENT,
            artifacts::TEST_TOOLS
        )
    };
    let read = |text: String| Manifest::parse(&text, &manifest_in(dir.path(), &text));
    assert_eq!(
        read(plugin("")).unwrap().plugins[0].instances,
        InstanceScope::PerCall
    );
    assert_eq!(
        read(plugin("instance = \"per-run\"")).unwrap().plugins[0].instances,
        InstanceScope::PerRun
    );
    let wrong = read(plugin("instance = \"per-day\""))
        .unwrap_err()
        .to_string();
    assert!(
        wrong.contains("per-call") && wrong.contains("per-run"),
        "{wrong}"
    );
    let agent = format!(
        "[agent]\npath = \"{}\"\ninstance = \"per-run\"\n",
        artifacts::TEST_AGENT
    );
    let refused = read(agent).unwrap_err().to_string();
    assert!(refused.contains("`instance` is for plugins"), "{refused}");
}
