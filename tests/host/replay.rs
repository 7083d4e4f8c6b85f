//! Record and replay of model calls, and message content on spans: off by
//! default, on with secrets redacted and long values shortened as valid JSON.

use crate::support::llm_server::{MockLlm, Reply, answer, openai_text_stream, tool_calls};
use crate::support::otlp::{boolean, string};
use crate::support::{
    API_KEY, TestHost, only, openai, outline, react_agent, scripted, test_agent, tools,
};
use glassbox::llm::{Cassette, CassetteWriter, Llm};
use glassbox::telemetry::{ContentConfig, OtlpProtocol};
use glassbox::{GuestError, RunError, RunRequest};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;

const QUESTION: &str = "Which is warmer, Paris or Lisbon?";

/// An address where nothing answers: a replay must never need the network.
fn nowhere() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("http://127.0.0.1:{port}/v1")
}

/// Runs `input` on `agent` with `llm` and returns the result with the spans.
async fn run(
    agent: glassbox::AgentComponent,
    llm: Llm,
    input: &str,
) -> (Result<String, RunError>, Vec<Span>) {
    let host = TestHost::start(agent, tools().await, llm, OtlpProtocol::Grpc).await;
    let result = host.runtime.run(RunRequest::text(input)).await;
    host.flush().await;
    (result, host.receiver.spans())
}

/// Every span's name with its GenAI attributes, the shape a replay must keep
/// (timings are compared by presence only).
fn shapes(spans: &[Span]) -> Vec<(String, Vec<(String, String)>)> {
    let mut shapes: Vec<_> = spans
        .iter()
        .map(|span| {
            let mut attributes: Vec<(String, String)> = span
                .attributes
                .iter()
                .filter(|kv| kv.key.starts_with("gen_ai.") && kv.key != "gen_ai.tool.call.id")
                .map(|kv| {
                    let value = if kv.key.contains("time_to_first_chunk") {
                        "a duration".to_owned()
                    } else {
                        format!("{:?}", kv.value)
                    };
                    (kv.key.clone(), value)
                })
                .collect();
            attributes.sort();
            (span.name.clone(), attributes)
        })
        .collect();
    shapes.sort();
    shapes
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_run_replays_offline_with_the_same_output_and_spans() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("run.jsonl");
    let mock = MockLlm::start(vec![
        tool_calls(
            "chatcmpl-1",
            &[
                ("c1", "get_weather", r#"{"city":"Paris"}"#),
                ("c2", "get_weather", r#"{"city":"Lisbon"}"#),
            ],
            (80, 30),
        ),
        answer("chatcmpl-2", "Lisbon, by 5 °C.", (150, 9)),
    ])
    .await;
    let recording =
        Llm::new(openai(&mock.base_url)).recording(CassetteWriter::create(&cassette).unwrap());
    let (recorded, recorded_spans) = run(react_agent().await, recording, QUESTION).await;
    assert_eq!(recorded.unwrap(), "Lisbon, by 5 °C.");
    let lines = std::fs::read_to_string(&cassette).unwrap();
    assert_eq!(lines.lines().count(), 2);
    assert!(
        !lines.contains(API_KEY),
        "the cassette holds no credentials"
    );

    let replaying = Llm::new(openai(&nowhere())).replaying_from(Cassette::load(&cassette).unwrap());
    let (replayed, replayed_spans) = run(react_agent().await, replaying, QUESTION).await;
    assert_eq!(replayed.unwrap(), "Lisbon, by 5 °C.");
    assert_eq!(mock.received().len(), 2, "the replay sent nothing");
    assert_eq!(outline(&replayed_spans), outline(&recorded_spans));
    assert_eq!(shapes(&replayed_spans), shapes(&recorded_spans));
    for chat in replayed_spans
        .iter()
        .filter(|s| s.name.starts_with("chat "))
    {
        assert_eq!(
            boolean(&chat.attributes, "glassbox.llm.replayed"),
            Some(true)
        );
    }
    assert!(
        recorded_spans
            .iter()
            .all(|s| boolean(&s.attributes, "glassbox.llm.replayed").is_none())
    );

    // A different question is a different first request.
    let replaying = Llm::new(openai(&nowhere())).replaying_from(Cassette::load(&cassette).unwrap());
    let (changed, _) = run(react_agent().await, replaying, "Is Rome warmer?").await;
    let Err(RunError::Agent(GuestError::InvalidRequest(message))) = changed else {
        panic!("{changed:?}")
    };
    assert!(
        message.contains("replay: model call 1 differs from the cassette")
            && message.contains(
                "/messages/1/content is \"Which is warmer, Paris or Lisbon?\" in the cassette, \"Is Rome warmer?\" now"
            ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_stream_replays_chunk_by_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("stream.jsonl");
    let mock = MockLlm::start(vec![Reply::Events(openai_text_stream(
        &["Hel", "lo"],
        (4, 2),
    ))])
    .await;
    let recording =
        Llm::new(openai(&mock.base_url)).recording(CassetteWriter::create(&cassette).unwrap());
    let (recorded, recorded_spans) = run(test_agent().await, recording, "stream").await;
    let replaying = Llm::new(openai(&nowhere())).replaying_from(Cassette::load(&cassette).unwrap());
    let (replayed, replayed_spans) = run(test_agent().await, replaying, "stream").await;
    assert_eq!(recorded.unwrap(), "ok: Hel|lo [FinishReason::Stop]");
    assert_eq!(replayed.unwrap(), "ok: Hel|lo [FinishReason::Stop]");
    assert_eq!(shapes(&replayed_spans), shapes(&recorded_spans));
}

/// Every string attribute value of every span.
fn all_strings(spans: &[Span]) -> String {
    spans
        .iter()
        .flat_map(|s| &s.attributes)
        .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(text) => Some(text.clone()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn json_attribute(span: &Span, key: &str) -> serde_json::Value {
    let text = string(&span.attributes, key).unwrap_or_else(|| panic!("no {key}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{key} is not JSON ({e}): {text}"))
}

const SECRET_INPUT: &str = "say use sk-test-7f3a9c0e2b5d4e6f8a1b and ticket-4411";

#[tokio::test(flavor = "multi_thread")]
async fn content_is_not_captured_by_default() {
    let (result, spans) = run(
        test_agent().await,
        Llm::new(scripted("[[turn]]\ncontent = \"noted\"\n")),
        SECRET_INPUT,
    )
    .await;
    assert_eq!(result.unwrap(), "ok: noted");
    let exported = all_strings(&spans);
    for text in ["Be brief", "ticket-4411", API_KEY, "noted"] {
        assert!(!exported.contains(text), "`{text}` was exported");
    }
    assert!(!exported.contains("gen_ai.input.messages"));
}

#[tokio::test(flavor = "multi_thread")]
async fn captured_content_follows_the_schemas_with_secrets_redacted() {
    let content = ContentConfig {
        capture: true,
        redact: vec![r"ticket-\d+".into()],
        ..ContentConfig::default()
    };
    let host = TestHost::start_with_content(
        test_agent().await,
        tools().await,
        scripted("[[turn]]\ncontent = \"noted\"\n"),
        OtlpProtocol::Grpc,
        content.clone(),
    )
    .await;
    assert_eq!(
        host.runtime
            .run(RunRequest::text(SECRET_INPUT))
            .await
            .unwrap(),
        "ok: noted"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    assert!(!all_strings(&spans).contains(API_KEY));
    let chat = only(&spans, "chat scripted");
    assert_eq!(
        json_attribute(chat, "gen_ai.input.messages"),
        json!([{"role": "user", "parts": [{"type": "text", "content": "use [REDACTED] and [REDACTED]"}]}])
    );
    assert_eq!(
        json_attribute(chat, "gen_ai.system_instructions"),
        json!([{"type": "text", "content": "Be brief."}])
    );
    assert_eq!(
        json_attribute(chat, "gen_ai.output.messages"),
        json!([{"role": "assistant", "parts": [{"type": "text", "content": "noted"}], "finish_reason": "stop"}])
    );

    // A tool-calling run: definitions, arguments and results, and a length cap.
    let short = ContentConfig {
        max_length: 600,
        ..content
    };
    let mock = MockLlm::start(vec![
        tool_calls(
            "chatcmpl-1",
            &[("c1", "get_weather", r#"{"city":"Paris"}"#)],
            (80, 30),
        ),
        answer("chatcmpl-2", "14 °C.", (150, 9)),
    ])
    .await;
    let host = TestHost::start_with_content(
        react_agent().await,
        tools().await,
        openai(&mock.base_url),
        OtlpProtocol::Grpc,
        short,
    )
    .await;
    host.runtime.run(RunRequest::text(QUESTION)).await.unwrap();
    host.flush().await;
    let spans = host.receiver.spans();
    let tool = only(&spans, "execute_tool get_weather");
    assert_eq!(
        json_attribute(tool, "gen_ai.tool.call.arguments"),
        json!({"city": "Paris"})
    );
    let result = json_attribute(tool, "gen_ai.tool.call.result");
    assert_eq!(result["city"], "Paris", "{result}");
    let chats: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "chat mock-model")
        .collect();
    for key in [
        "gen_ai.tool.definitions",
        "gen_ai.input.messages",
        "gen_ai.system_instructions",
    ] {
        let text = string(&chats[1].attributes, key).unwrap();
        assert!(text.len() <= 600, "{key} is {} bytes", text.len());
        json_attribute(chats[1], key);
    }
    let definitions = json_attribute(chats[0], "gen_ai.tool.definitions");
    assert_eq!(definitions[0]["type"], "function");
    let input = json_attribute(chats[1], "gen_ai.input.messages");
    assert_eq!(input[1]["parts"][0]["type"], "tool_call");
    assert_eq!(input[1]["parts"][0]["name"], "get_weather");
    assert_eq!(input[2]["parts"][0]["type"], "tool_call_response");
    assert_eq!(input[2]["parts"][0]["id"], "c1");
}
