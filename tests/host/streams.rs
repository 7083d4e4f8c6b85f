//! Streamed answers through the `chat-stream` resource: both providers' Server-
//! Sent Events, the timings and usage on the span and metrics, and streams
//! that break, are malformed or are abandoned by the guest.

use crate::support::llm_server::{MockLlm, Reply, anthropic_tool_stream, openai_text_stream};
use crate::support::otlp::{boolean, double, int, string};
use crate::support::{TestHost, anthropic, assert_strings, openai, scripted, status};
use glassbox::RunRequest;
use glassbox::llm::SharedProvider;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;

/// Runs the test agent's `input` against `provider` and returns its output
/// with the one chat span, once exported.
async fn stream(provider: SharedProvider, input: &str) -> (String, Span, TestHost) {
    let host = TestHost::test_agent(provider).await;
    let output = host.runtime.run(RunRequest::text(input)).await.unwrap();
    host.flush().await;
    let spans = host.receiver.spans();
    let chat = spans
        .iter()
        .find(|s| s.name.starts_with("chat "))
        .expect("a chat span")
        .clone();
    (output, chat, host)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_openai_stream_reports_its_first_chunk_chunks_and_usage() {
    let mock = MockLlm::start(vec![Reply::Events(openai_text_stream(
        &["Hel", "lo", " there"],
        (12, 3),
    ))])
    .await;
    let (output, chat, host) = stream(openai(&mock.base_url), "stream").await;
    assert_eq!(output, "ok: Hel|lo| there [FinishReason::Stop]");

    let body = &mock.received()[0].body;
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);

    assert_eq!(status(&chat).0, 0);
    assert_eq!(
        boolean(&chat.attributes, "gen_ai.request.stream"),
        Some(true)
    );
    assert_eq!(int(&chat.attributes, "glassbox.llm.stream.chunks"), Some(3));
    assert_eq!(int(&chat.attributes, "gen_ai.usage.input_tokens"), Some(12));
    assert_eq!(int(&chat.attributes, "gen_ai.usage.output_tokens"), Some(3));
    assert_strings(
        &chat.attributes,
        &[
            ("gen_ai.response.id", "chatcmpl-s1"),
            ("gen_ai.response.model", "mock-model-2025"),
        ],
    );
    let first = double(&chat.attributes, "gen_ai.response.time_to_first_chunk").unwrap();
    let duration = (chat.end_time_unix_nano - chat.start_time_unix_nano) as f64 / 1e9;
    assert!(first > 0.0 && first <= duration, "{first} of {duration}");

    let histogram = |name: &str| {
        let Some(Data::Histogram(histogram)) = host.receiver.metric(name).unwrap().data else {
            panic!("{name} is a histogram")
        };
        histogram.data_points.iter().map(|p| p.count).sum::<u64>()
    };
    assert_eq!(histogram("gen_ai.client.operation.time_to_first_chunk"), 1);
    assert_eq!(
        histogram("gen_ai.client.operation.time_per_output_chunk"),
        2
    );
    assert_eq!(histogram("gen_ai.client.token.usage"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_anthropic_stream_assembles_tool_calls_from_fragments() {
    let mock = MockLlm::start(vec![Reply::Events(anthropic_tool_stream())]).await;
    let (output, chat, _host) = stream(anthropic(mock.anthropic_base_url()), "stream").await;
    assert_eq!(
        output,
        r#"ok: Let me |check.|get_weather({"city": "Paris"}) [FinishReason::ToolCalls]"#
    );
    assert_eq!(mock.received()[0].body["stream"], true);
    assert_strings(
        &chat.attributes,
        &[
            ("gen_ai.provider.name", "anthropic"),
            ("gen_ai.response.model", "claude-haiku-4-5"),
            ("gen_ai.response.id", "msg_s1"),
        ],
    );
    assert_eq!(int(&chat.attributes, "glassbox.llm.stream.chunks"), Some(3));
    assert_eq!(int(&chat.attributes, "gen_ai.usage.input_tokens"), Some(30));
    assert_eq!(
        int(&chat.attributes, "gen_ai.usage.output_tokens"),
        Some(22)
    );
    // Priced from the bundled table.
    assert!(double(&chat.attributes, "gen_ai.usage.cost").unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_cut_mid_way_ends_its_span_with_what_was_known() {
    let mut events = openai_text_stream(&["Hel", "lo"], (4, 2));
    events.truncate(1);
    let mock = MockLlm::start(vec![Reply::EventsCut(events)]).await;
    let (output, chat, _host) = stream(openai(&mock.base_url), "stream").await;
    assert!(
        output.starts_with("provider error: the stream from 127.0.0.1 broke after 1 events"),
        "{output}"
    );
    assert_eq!(status(&chat).0, 2);
    assert_eq!(
        string(&chat.attributes, "error.type").as_deref(),
        Some("provider_error")
    );
    assert_eq!(int(&chat.attributes, "glassbox.llm.stream.chunks"), Some(1));
    assert!(double(&chat.attributes, "gen_ai.response.time_to_first_chunk").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_events_fail_the_stream_clearly() {
    let mock = MockLlm::start(vec![Reply::Events(vec![
        "{\"choices\": [{\"delta\": {\"content\": \"ok\"}}]}".into(),
        "{not json".into(),
    ])])
    .await;
    let (output, chat, _host) = stream(openai(&mock.base_url), "stream").await;
    assert!(
        output.contains("malformed stream event 2 from 127.0.0.1: key must be a string"),
        "{output}"
    );
    assert_eq!(status(&chat).0, 2);

    // A stream that ends without its last event broke, too.
    let mut events = openai_text_stream(&["Hel"], (4, 2));
    events.pop();
    let mock = MockLlm::start(vec![Reply::Events(events)]).await;
    let (output, _, _host) = stream(openai(&mock.base_url), "stream").await;
    assert!(
        output.contains("ended after 3 events, before the answer was complete"),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_the_guest_abandons_ends_its_span_as_cancelled() {
    let mock = MockLlm::start(vec![Reply::Events(openai_text_stream(
        &["one", "two", "three"],
        (4, 3),
    ))])
    .await;
    let (output, chat, _host) = stream(openai(&mock.base_url), "stream-first").await;
    assert_eq!(output, r#"first: Some(Ok(ChatChunk::Text("one")))"#);
    assert_eq!(status(&chat).0, 2);
    assert_eq!(
        string(&chat.attributes, "error.type").as_deref(),
        Some("cancelled")
    );
    assert_eq!(int(&chat.attributes, "glassbox.llm.stream.chunks"), Some(1));
    assert!(
        status(&chat)
            .1
            .contains("the guest dropped the stream after 1 chunks"),
        "{:?}",
        status(&chat)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_cannot_stream_answers_in_one_piece() {
    let (output, chat, _host) = stream(scripted("[[turn]]\ncontent = \"whole\"\n"), "stream").await;
    assert_eq!(output, "ok: whole [FinishReason::Stop]");
    assert_eq!(int(&chat.attributes, "glassbox.llm.stream.chunks"), Some(1));
}
