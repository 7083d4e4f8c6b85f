//! What the backends make of the host's spans, by their own ingestion rules.
//! No Langfuse server runs here, so its documented mapping (the observation
//! type registry and the completion start time of its OTLP ingestion) is
//! applied to the spans exactly as they arrive over OTLP.

use crate::support::llm_server::{MockLlm, Reply, openai_text_stream};
use crate::support::otlp::{Receiver, attribute, string};
use crate::support::{TestHost, exporting_to, only, openai, run_workflow};
use glassbox::RunRequest;
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::time::{Duration, UNIX_EPOCH};

/// Langfuse's observation type for `span`: the first of its mappers, in
/// priority order, that knows an attribute the span has.
fn langfuse_observation_type(span: &Span) -> &'static str {
    let text = |key: &str| string(&span.attributes, key);
    if let Some(kind) = text("langfuse.observation.type") {
        return match kind.as_str() {
            "generation" => "GENERATION",
            "agent" => "AGENT",
            "tool" => "TOOL",
            "chain" => "CHAIN",
            "embedding" => "EMBEDDING",
            _ => "SPAN",
        };
    }
    let openinference = match text("openinference.span.kind").as_deref() {
        Some("CHAIN") => Some("CHAIN"),
        Some("LLM") => Some("GENERATION"),
        Some("AGENT") => Some("AGENT"),
        Some("TOOL") => Some("TOOL"),
        Some("EMBEDDING") => Some("EMBEDDING"),
        _ => None,
    };
    let operation = match text("gen_ai.operation.name").as_deref() {
        Some("chat" | "text_completion" | "generate_content") => Some("GENERATION"),
        Some("embeddings") => Some("EMBEDDING"),
        Some("invoke_agent" | "create_agent") => Some("AGENT"),
        Some("execute_tool") => Some("TOOL"),
        _ => None,
    };
    let tool = ["gen_ai.tool.name", "gen_ai.tool.call.id"]
        .iter()
        .any(|key| attribute(&span.attributes, key).is_some())
        .then_some("TOOL");
    let model = ["gen_ai.request.model", "gen_ai.response.model"]
        .iter()
        .any(|key| attribute(&span.attributes, key).is_some())
        .then_some("GENERATION");
    openinference
        .or(operation)
        .or(tool)
        .or(model)
        .unwrap_or("SPAN")
}

/// The planner workflow, as `glassbox run --manifest workflow.toml` runs it.
#[tokio::test(flavor = "multi_thread")]
async fn langfuse_maps_every_span_of_a_workflow_to_its_observation_type() {
    let receiver = Receiver::start(OtlpProtocol::HttpProtobuf).await;
    run_workflow(&exporting_to(&receiver, OtlpProtocol::HttpProtobuf)).await;

    let spans = receiver.spans();
    let workflow = only(&spans, "invoke_workflow day-planner");
    assert_eq!(langfuse_observation_type(workflow), "CHAIN");
    assert_eq!(
        string(&workflow.attributes, "openinference.span.kind").as_deref(),
        Some("CHAIN"),
        "what Phoenix shows as the workflow's kind"
    );
    let mut seen = std::collections::BTreeSet::new();
    for span in &spans {
        let operation = span.name.split(' ').next().unwrap();
        let expected = match operation {
            "invoke_workflow" => "CHAIN",
            "invoke_agent" => "AGENT",
            "chat" => "GENERATION",
            "execute_tool" => "TOOL",
            _ => "SPAN",
        };
        assert_eq!(langfuse_observation_type(span), expected, "{}", span.name);
        seen.insert(expected);
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        ["AGENT", "CHAIN", "GENERATION", "SPAN", "TOOL"]
    );
}

/// Langfuse's time to first token comes from
/// `langfuse.observation.completion_start_time` alone, an RFC 3339 instant.
#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_chat_gives_langfuse_its_completion_start_time() {
    let mock = MockLlm::start(vec![Reply::Events(openai_text_stream(
        &["Hel", "lo"],
        (4, 2),
    ))])
    .await;
    let host = TestHost::test_agent(openai(&mock.base_url)).await;
    host.runtime.run(RunRequest::text("stream")).await.unwrap();
    host.flush().await;
    let spans = host.receiver.spans();
    let chat = spans.iter().find(|s| s.name.starts_with("chat ")).unwrap();
    assert_eq!(langfuse_observation_type(chat), "GENERATION");
    let started = string(
        &chat.attributes,
        "langfuse.observation.completion_start_time",
    )
    .expect("the first chunk's time");
    assert!(
        started.ends_with('Z') && started.len() == "2025-07-13T05:20:00.500Z".len(),
        "{started}"
    );
    let at = humantime::parse_rfc3339(&started).unwrap();
    let nanos = |at: std::time::SystemTime| at.duration_since(UNIX_EPOCH).unwrap();
    let (start, end) = (
        Duration::from_nanos(chat.start_time_unix_nano),
        Duration::from_nanos(chat.end_time_unix_nano),
    );
    // Milliseconds: the instant may read up to 1 ms before the span's start.
    assert!(
        start.saturating_sub(Duration::from_millis(1)) <= nanos(at) && nanos(at) <= end,
        "{started} is not within the span"
    );
}
