//! What a guest observes of the host: nothing that was not granted, and a
//! grant reaches only the component it was made for.

use crate::support::{outline, run_agent, scripted};
use glassbox::sandbox::Policy;
use glassbox::telemetry::OtlpProtocol;
use glassbox::{GuestError, RunError, RunRequest};
use std::sync::Arc;

const PROBE: &str = r#"
    [[turn]]
    tool_calls = [{ name = "probe" }]
    [[turn]]
    content = "{{result:probe}}"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_reaches_no_file_socket_variable_or_input_of_the_host() {
    let request = RunRequest {
        // A grant to the agent does not reach the tools it calls.
        policy: Policy {
            env: vec![("AGENT_ONLY".into(), "secret".into())],
            ..Policy::default()
        },
        ..RunRequest::text("What can you see?")
    };
    let outcome = run_agent(scripted(PROBE), OtlpProtocol::Grpc, request).await;
    let seen: serde_json::Value = serde_json::from_str(&outcome.result.unwrap()).unwrap();

    assert_eq!(
        seen["env"],
        serde_json::json!([]),
        "no environment variable is visible"
    );
    assert_eq!(
        seen["args"],
        serde_json::json!([]),
        "no command-line argument is visible"
    );
    for denied in [
        "read_root",
        "read_passwd",
        "write_tmp",
        "tcp",
        "dns",
        "stdin",
    ] {
        assert!(
            seen[denied].is_string(),
            "{denied} should fail, the tool saw {seen}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_grant_reaches_the_agent() {
    // The react agent reads REACT_MAX_STEPS; with one step, the demo cannot finish.
    let request = RunRequest {
        policy: Policy {
            env: vec![("REACT_MAX_STEPS".into(), "1".into())],
            ..Policy::default()
        },
        ..RunRequest::text("Paris or Lisbon?")
    };
    let outcome = run_agent(
        Arc::new(glassbox::llm::ScriptedProvider::demo()),
        OtlpProtocol::Grpc,
        request,
    )
    .await;
    let Err(RunError::Agent(GuestError::Timeout(message))) = &outcome.result else {
        panic!("{:?}", outcome.result)
    };
    assert_eq!(message, "no final answer within 1 steps");
    let spans: Vec<_> = outcome.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent react-agent [INTERNAL]
  react.step [INTERNAL]
    chat scripted-demo [CLIENT]
    execute_tool get_weather [INTERNAL]
    execute_tool get_weather [INTERNAL]
"
    );
}
