//! Failure paths: every one gives a typed error, the right span status and
//! `error.type`, and leaves the host running.

use crate::support::llm_server::{Reply, answer, tool_calls};
use crate::support::otlp::string;
use crate::support::{
    artifacts, assert_strings, engine, only, openai, run_against_mock, run_agent, status,
};
use glassbox::telemetry::OtlpProtocol;
use glassbox::tools::{PluginSpec, RegistrationError};
use glassbox::{GuestError, LoadError, RunError, RunRequest};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::path::Path;

#[tokio::test(flavor = "multi_thread")]
async fn bad_tool_calls_come_back_to_the_agent_as_typed_errors() {
    let (llm, outcome) = run_against_mock(
        vec![
            tool_calls(
                "chatcmpl-1",
                &[
                    ("c1", "no_such_tool", "{}"),
                    ("c2", "get_weather", r#"{"town":"Paris"}"#),
                    ("c3", "calculate", "not json"),
                    ("c4", "explode", "{}"),
                    ("c5", "calculate", r#"{"expression":"2 +* 3"}"#),
                    ("c6", "get_weather", r#"{"city":"Paris"}"#),
                ],
                (90, 40),
            ),
            answer("chatcmpl-2", "Paris is 14 °C.", (200, 8)),
        ],
        OtlpProtocol::Grpc,
        "Try everything.",
    )
    .await;
    assert_eq!(
        outcome.result.unwrap(),
        "Paris is 14 °C.",
        "the run survives every bad call"
    );

    // The agent saw each failure as text it could react to.
    let messages = llm.received()[1].body["messages"]
        .as_array()
        .unwrap()
        .clone();
    let result_of = |id: &str| {
        messages.iter().find(|m| m["tool_call_id"] == id).unwrap()["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for (id, expected) in [
        (
            "c1",
            "no tool named `no_such_tool`; available: ask_model, bad_utf8, calculate, connect, count_calls, embed, explode, fetch, flood, get_weather, hog, huge, probe, read_file, recurse, shout, spin, write_file",
        ),
        ("c2", "do not match the tool's schema"),
        ("c3", "not valid JSON"),
        ("c4", "test_tools.wasm was stopped: it trapped"),
        ("c5", "unexpected `*` at position 4"),
    ] {
        let result = result_of(id);
        assert!(result.contains(expected), "{id}: {result}");
    }
    assert!(
        result_of("c6").contains(r#""city":"Paris""#),
        "the plugin works after another plugin trapped"
    );

    let spans: Vec<_> = outcome.receiver.spans();
    let tool_span = |id: &str| {
        spans
            .iter()
            .find(|s| string(&s.attributes, "gen_ai.tool.call.id").as_deref() == Some(id))
            .unwrap()
            .clone()
    };
    for (id, error_type) in [
        ("c1", "tool_not_found"),
        ("c2", "invalid_arguments"),
        ("c3", "invalid_arguments"),
        ("c4", "trap"),
        ("c5", "invalid_arguments"),
    ] {
        let span = tool_span(id);
        assert_eq!(status(&span).0, 2, "{id} is an error");
        assert_eq!(
            string(&span.attributes, "error.type").as_deref(),
            Some(error_type),
            "{id}"
        );
    }
    assert!(
        status(&tool_span("c4")).1.contains("wasm trap"),
        "{:?}",
        status(&tool_span("c4"))
    );
    assert_eq!(status(&tool_span("c6")).0, 0);
    assert_eq!(string(&tool_span("c6").attributes, "error.type"), None);
    assert_eq!(status(only(&spans, "invoke_agent react-agent")).0, 1);

    let Some(Data::Sum(errors)) = outcome
        .receiver
        .metric("glassbox.tool.errors")
        .unwrap()
        .data
    else {
        panic!()
    };
    let count = |error_type: &str| {
        errors
            .data_points
            .iter()
            .filter(|p| string(&p.attributes, "error.type").as_deref() == Some(error_type))
            .map(|p| match p.value {
                Some(opentelemetry_proto::tonic::metrics::v1::number_data_point::Value::AsInt(
                    n,
                )) => n,
                _ => panic!("not an integer count"),
            })
            .sum::<i64>()
    };
    assert_eq!(
        (
            count("tool_not_found"),
            count("invalid_arguments"),
            count("trap")
        ),
        (1, 3, 1)
    );
}

/// Runs the agent against a provider that answers `reply` and returns the
/// run's error with the chat span's status and `error.type`.
async fn failing_provider(replies: Vec<Reply>) -> (RunError, (i32, String), Option<String>) {
    let (_llm, outcome) = run_against_mock(replies, OtlpProtocol::HttpProtobuf, "Hello?").await;
    let error = outcome.result.unwrap_err();
    let spans: Vec<_> = outcome.receiver.spans();
    let chat = only(&spans, "chat mock-model");
    let root = only(&spans, "invoke_agent react-agent");
    assert_eq!(status(root).0, 2, "the run's span records the failure");
    assert_eq!(
        string(&root.attributes, "error.type"),
        string(&chat.attributes, "error.type")
    );
    let Some(Data::Histogram(duration)) = outcome
        .receiver
        .metric("gen_ai.client.operation.duration")
        .unwrap()
        .data
    else {
        panic!()
    };
    assert_eq!(
        string(&duration.data_points[0].attributes, "error.type"),
        string(&chat.attributes, "error.type")
    );
    (error, status(chat), string(&chat.attributes, "error.type"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_answering_500_fails_the_run_with_a_provider_error() {
    // Every attempt fails the same way, so the retries give up.
    let overloaded = Reply::Status(
        500,
        r#"{"error":{"message":"the model is overloaded"}}"#,
        None,
    );
    let (error, status, error_type) = failing_provider(vec![overloaded; 3]).await;
    let RunError::Agent(GuestError::Provider(message)) = &error else {
        panic!("{error:?}")
    };
    assert!(
        message.contains("HTTP 500") && message.contains("the model is overloaded"),
        "{message}"
    );
    assert_eq!(error_type.as_deref(), Some("provider_error"));
    assert_eq!(status.0, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_answering_malformed_json_fails_the_run_with_a_provider_error() {
    let (error, _, error_type) = failing_provider(vec![Reply::Status(
        200,
        "{\"id\": \"x\", \"choices\": [",
        None,
    )])
    .await;
    assert!(
        error
            .to_string()
            .contains("malformed response from 127.0.0.1"),
        "{error}"
    );
    assert_eq!(error_type.as_deref(), Some("provider_error"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limited_provider_says_how_long_to_wait() {
    // Waiting 2 s would overrun the 1.5 s the test provider gives retries, so
    // the guest hears at once, with the wait.
    let (error, _, error_type) =
        failing_provider(vec![Reply::Status(429, "slow down", Some("2"))]).await;
    let RunError::Agent(GuestError::RateLimited(limit)) = &error else {
        panic!("{error:?}")
    };
    assert_eq!(limit.retry_after_ms, Some(2000));
    assert_eq!(error_type.as_deref(), Some("rate_limited"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_provider_is_a_provider_error_naming_it() {
    // Bind then drop a listener so nothing answers on that port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = openai(&format!("http://127.0.0.1:{port}/v1"));
    let error = run_agent(provider, OtlpProtocol::Grpc, RunRequest::text("Hi"))
        .await
        .result
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot connect to http://127.0.0.1:"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_without_embeddings_refuses_them_as_an_invalid_request() {
    let script = r#"
        [[turn]]
        tool_calls = [{ name = "embed", arguments = { texts = ["x"] } }]
        [[turn]]
        content = "No embeddings here."
    "#;
    let outcome = run_agent(
        crate::support::scripted(script),
        OtlpProtocol::Grpc,
        RunRequest::text("Embed x."),
    )
    .await;
    assert_eq!(outcome.result.unwrap(), "No embeddings here.");
    let spans: Vec<_> = outcome.receiver.spans();
    let embeddings = only(&spans, "embeddings");
    assert_eq!(
        status(embeddings),
        (
            2,
            "invalid request: the scripted provider offers no embeddings".into()
        )
    );
    assert_strings(&embeddings.attributes, &[("error.type", "invalid_request")]);
    let tool = only(&spans, "execute_tool embed");
    assert_strings(&tool.attributes, &[("error.type", "invalid_request")]);
}

async fn load_agent_error(path: &Path) -> String {
    let Err(error) = engine().load_agent(path).await else {
        panic!("{} loaded as an agent", path.display())
    };
    error.to_string()
}

#[tokio::test]
async fn files_that_are_not_components_of_the_right_world_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "just some text").unwrap();
    assert_eq!(
        load_agent_error(&text).await,
        format!(
            "{}: not a WebAssembly file (it does not start with `\\0asm`)",
            text.display()
        )
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    assert!(load_agent_error(&core).await.ends_with(
        "a core WebAssembly module, not a component; build it with `--target wasm32-wasip2`"
    ));

    let truncated = dir.path().join("truncated.wasm");
    std::fs::write(
        &truncated,
        &std::fs::read(artifacts::WEATHER).unwrap()[..100],
    )
    .unwrap();
    assert!(
        load_agent_error(&truncated)
            .await
            .contains("invalid WebAssembly component")
    );

    let missing = dir.path().join("missing.wasm");
    assert!(
        load_agent_error(&missing)
            .await
            .starts_with(&format!("{}: cannot read", missing.display()))
    );

    assert_eq!(
        load_agent_error(artifacts::WEATHER.as_ref()).await,
        format!(
            "{}: does not target the `agent` world: it is a `tool-plugin` component",
            artifacts::WEATHER
        )
    );
    let Err(error) = engine()
        .load_tools(&[PluginSpec::new(artifacts::REACT_AGENT)])
        .await
    else {
        panic!()
    };
    assert_eq!(
        error.to_string(),
        format!(
            "{}: does not target the `tool-plugin` world: it is an `agent` component",
            artifacts::REACT_AGENT
        )
    );
}

#[tokio::test]
async fn two_plugins_providing_the_same_tool_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("weather-copy.wasm");
    std::fs::copy(artifacts::WEATHER, &copy).unwrap();
    let Err(error) = engine()
        .load_tools(&[PluginSpec::new(artifacts::WEATHER), PluginSpec::new(&copy)])
        .await
    else {
        panic!()
    };
    assert!(matches!(
        error,
        LoadError::Tool(RegistrationError::DuplicateTool { .. })
    ));
    assert_eq!(
        error.to_string(),
        format!(
            "tool `get_weather` is provided by both {} and {}",
            artifacts::WEATHER,
            copy.display()
        )
    );
}
