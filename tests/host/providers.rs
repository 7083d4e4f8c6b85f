//! The network providers over real HTTP on loopback: Anthropic's Messages API
//! mapped both ways, providers chosen by model, retries visible per attempt,
//! and cost from the bundled prices.

use crate::support::llm_server::{
    MockLlm, Reply, answer, anthropic_answer, anthropic_tool_call, openai_text_stream,
};
use crate::support::otlp::{double, int, string, strings};
use crate::support::{
    API_KEY, TestHost, anthropic, assert_strings, mock_connection, only, openai, openai_over,
    run_against_mock, run_agent, status,
};
use glassbox::llm::{Connection, Llm};
use glassbox::telemetry::OtlpProtocol;
use glassbox::{GuestError, RunError, RunRequest};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test(flavor = "multi_thread")]
async fn anthropic_maps_system_prompts_tool_calls_usage_and_cost() {
    let mock = MockLlm::start(vec![
        anthropic_tool_call("toolu_1", "get_weather", json!({"city": "Paris"})),
        anthropic_answer("Paris is 14 °C."),
    ])
    .await;
    let outcome = run_agent(
        anthropic(mock.anthropic_base_url()),
        OtlpProtocol::Grpc,
        RunRequest::text("Weather in Paris?"),
    )
    .await;
    assert_eq!(outcome.result.unwrap(), "Paris is 14 °C.");

    let received = mock.received();
    assert_eq!(received.len(), 2);
    let first = &received[0];
    assert_eq!(first.path, "/v1/messages");
    assert_eq!(first.api_key.as_deref(), Some(API_KEY));
    assert_eq!(first.authorization, None, "the key goes only in x-api-key");
    assert_eq!(first.anthropic_version.as_deref(), Some("2023-06-01"));
    assert!(
        first.body["system"]
            .as_str()
            .unwrap()
            .starts_with("You are a helpful assistant"),
        "{}",
        first.body
    );
    assert_eq!(first.body["max_tokens"], 4096);
    assert_eq!(first.body["messages"][0]["role"], "user");
    let weather = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "get_weather")
        .unwrap();
    assert_eq!(weather["input_schema"]["type"], "object");
    // The second request carries the tool call and its result as Anthropic blocks.
    let messages = received[1].body["messages"].as_array().unwrap();
    assert_eq!(
        messages[1]["content"],
        json!([{"type": "text", "text": "Let me check."},
               {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}])
    );
    assert_eq!(messages[2]["role"], "user");
    assert_eq!(messages[2]["content"][0]["type"], "tool_result");
    assert_eq!(messages[2]["content"][0]["tool_use_id"], "toolu_1");

    let spans = outcome.receiver.spans();
    let chats: Vec<&Span> = spans
        .iter()
        .filter(|s| s.name == "chat claude-sonnet-4-5")
        .collect();
    assert_eq!(chats.len(), 2);
    let (calling, answering) = (chats[0], chats[1]);
    assert_strings(
        &calling.attributes,
        &[
            ("gen_ai.provider.name", "anthropic"),
            ("gen_ai.response.model", "claude-sonnet-4-5-20250929"),
            ("gen_ai.response.id", "msg_1"),
            ("server.address", "127.0.0.1"),
        ],
    );
    assert_eq!(
        strings(&calling.attributes, "gen_ai.response.finish_reasons").unwrap(),
        ["tool_calls"]
    );
    assert_eq!(
        strings(&answering.attributes, "gen_ai.response.finish_reasons").unwrap(),
        ["stop"]
    );
    // Cached input counts as input, as the conventions want.
    assert_eq!(
        int(&answering.attributes, "gen_ai.usage.input_tokens"),
        Some(125)
    );
    assert_eq!(
        int(
            &answering.attributes,
            "gen_ai.usage.cache_read.input_tokens"
        ),
        Some(100)
    );
    assert_eq!(
        int(
            &answering.attributes,
            "gen_ai.usage.cache_creation.input_tokens"
        ),
        Some(5)
    );
    // Bundled price of claude-sonnet-4-5: 20 fresh at 3, 100 read at 0.30,
    // 5 written at 3.75, 10 out at 15, per million.
    let cost = double(&answering.attributes, "gen_ai.usage.cost").unwrap();
    assert!(
        (cost - (60.0 + 30.0 + 18.75 + 150.0) / 1e6).abs() < 1e-12,
        "{cost}"
    );
    let Some(Data::Sum(spent)) = outcome.receiver.metric("glassbox.llm.cost").unwrap().data else {
        panic!("the cost metric is a sum")
    };
    let total: f64 = spent.data_points.iter().map(|p| p.value_double()).sum();
    let first_cost = double(&calling.attributes, "gen_ai.usage.cost").unwrap();
    assert!((total - (cost + first_cost)).abs() < 1e-12, "{total}");
}

trait PointValue {
    fn value_double(&self) -> f64;
}

impl PointValue for opentelemetry_proto::tonic::metrics::v1::NumberDataPoint {
    fn value_double(&self) -> f64 {
        use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value;
        match self.value {
            Some(Value::AsDouble(v)) => v,
            other => panic!("not a double: {other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unpriced_model_has_no_cost() {
    let (_mock, outcome) = run_against_mock(
        vec![answer("chatcmpl-1", "Hi.", (10, 2))],
        OtlpProtocol::Grpc,
        "Hi",
    )
    .await;
    outcome.result.unwrap();
    let spans = outcome.receiver.spans();
    let chat = only(&spans, "chat mock-model");
    assert_eq!(int(&chat.attributes, "gen_ai.usage.input_tokens"), Some(10));
    assert_eq!(double(&chat.attributes, "gen_ai.usage.cost"), None);
    assert!(outcome.receiver.metric("glassbox.llm.cost").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_go_to_the_provider_serving_their_model() {
    let openai_mock = MockLlm::start(vec![answer("chatcmpl-1", "from openai", (3, 2))]).await;
    let anthropic_mock = MockLlm::start(vec![anthropic_answer("from anthropic")]).await;
    let llm = Llm::new(openai(&openai_mock.base_url)).with_route(
        vec!["claude-*".into()],
        anthropic(anthropic_mock.anthropic_base_url()),
    );
    let host = TestHost::test_agent(llm).await;
    let run = |input: &str| host.runtime.run(RunRequest::text(input));
    assert_eq!(
        run("model claude-haiku-4-5").await.unwrap(),
        "ok: from anthropic"
    );
    assert_eq!(run("model gpt-4.1").await.unwrap(), "ok: from openai");
    host.flush().await;
    assert_eq!(
        anthropic_mock.received()[0].body["model"],
        "claude-haiku-4-5"
    );
    assert_eq!(openai_mock.received()[0].body["model"], "gpt-4.1");
    let spans = host.receiver.spans();
    assert_strings(
        &only(&spans, "chat claude-haiku-4-5").attributes,
        &[("gen_ai.provider.name", "anthropic")],
    );
    assert_strings(
        &only(&spans, "chat gpt-4.1").attributes,
        &[("gen_ai.provider.name", "openai")],
    );
}

/// The failed attempts recorded on a span: (attempt, status, error.type, delay).
fn failed_attempts(span: &Span) -> Vec<(i64, Option<i64>, String, Option<f64>)> {
    span.events
        .iter()
        .filter(|e| e.name == "glassbox.llm.attempt_failed")
        .map(|e| {
            (
                int(&e.attributes, "glassbox.llm.attempt").unwrap(),
                int(&e.attributes, "http.response.status_code"),
                string(&e.attributes, "error.type").unwrap(),
                double(&e.attributes, "glassbox.llm.retry.delay"),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rate_limit_is_retried_after_the_time_the_provider_asked_for() {
    let started = Instant::now();
    let replies = vec![
        Reply::Status(429, r#"{"error":{"message":"slow down"}}"#, Some("1")),
        answer("chatcmpl-1", "Done.", (5, 1)),
    ];
    let (mock, outcome) = run_against_mock(replies, OtlpProtocol::Grpc, "Hi").await;
    assert_eq!(outcome.result.unwrap(), "Done.");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(mock.received().len(), 2);
    let spans = outcome.receiver.spans();
    let chat = only(&spans, "chat mock-model");
    assert_eq!(status(chat).0, 0, "the call succeeded in the end");
    assert_eq!(int(&chat.attributes, "glassbox.llm.attempts"), Some(2));
    assert_eq!(
        failed_attempts(chat),
        [(1, Some(429), "rate_limited".into(), Some(1.0))]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn server_errors_are_retried_with_backoff_until_the_attempts_run_out() {
    let overloaded = Reply::Status(503, r#"{"error":{"message":"overloaded"}}"#, None);
    let replies = vec![
        Reply::Status(500, "oops", None),
        answer("chatcmpl-1", "Recovered.", (5, 1)),
    ];
    let (_mock, outcome) = run_against_mock(replies, OtlpProtocol::Grpc, "Hi").await;
    assert_eq!(outcome.result.unwrap(), "Recovered.");
    let spans = outcome.receiver.spans();
    let attempts = failed_attempts(only(&spans, "chat mock-model"));
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].1, Some(500));
    let delay = attempts[0].3.unwrap();
    assert!((0.0..=0.1).contains(&delay), "{delay}");

    // Three attempts in all, the last one not followed by a wait.
    let (_mock, outcome) = run_against_mock(vec![overloaded; 3], OtlpProtocol::Grpc, "Hi").await;
    let Err(RunError::Agent(GuestError::Provider(message))) = &outcome.result else {
        panic!("{:?}", outcome.result)
    };
    assert!(message.contains("HTTP 503") && message.contains("overloaded"));
    let spans = outcome.receiver.spans();
    let chat = only(&spans, "chat mock-model");
    assert_eq!(int(&chat.attributes, "glassbox.llm.attempts"), Some(3));
    let attempts = failed_attempts(chat);
    assert_eq!(
        attempts.iter().map(|a| (a.0, a.1)).collect::<Vec<_>>(),
        [(1, Some(503)), (2, Some(503)), (3, Some(503))]
    );
    assert!(attempts[1].3.is_some() && attempts[2].3.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refusal_is_not_retried() {
    let refusal = Reply::Status(401, r#"{"error":{"message":"bad key"}}"#, None);
    let (mock, outcome) = run_against_mock(vec![refusal], OtlpProtocol::Grpc, "Hi").await;
    assert!(matches!(
        outcome.result,
        Err(RunError::Agent(GuestError::NotAllowed(_)))
    ));
    assert_eq!(mock.received().len(), 1);
    let spans = outcome.receiver.spans();
    let chat = only(&spans, "chat mock-model");
    assert_eq!(failed_attempts(chat).len(), 1);
    assert_eq!(int(&chat.attributes, "glassbox.llm.attempts"), Some(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stream_is_retried_only_before_it_starts() {
    let mock = MockLlm::start(vec![
        Reply::Status(502, "bad gateway", None),
        Reply::Events(openai_text_stream(&["Hel", "lo"], (4, 2))),
    ])
    .await;
    let host = TestHost::test_agent(openai(&mock.base_url)).await;
    let output = host.runtime.run(RunRequest::text("stream")).await.unwrap();
    assert_eq!(output, "ok: Hel|lo [FinishReason::Stop]");
    host.flush().await;
    let spans = host.receiver.spans();
    let chat = only(&spans, "chat mock-model");
    assert_eq!(int(&chat.attributes, "glassbox.llm.attempts"), Some(2));
    assert_eq!(failed_attempts(chat)[0].1, Some(502));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_provider_that_does_not_answer_times_out_on_every_attempt() {
    let mock = MockLlm::start(vec![Reply::Hang; 6]).await;
    let provider = openai_over(Connection {
        timeout: Duration::from_millis(200),
        ..mock_connection(&mock.base_url)
    });
    let host = TestHost::test_agent(provider).await;
    // Whole and streamed: the wait for the first byte is bounded either way.
    for input in ["model gpt-4.1", "stream gpt-4.1"] {
        let output = host.runtime.run(RunRequest::text(input)).await.unwrap();
        assert!(
            output.starts_with("timeout: ") && output.contains("within 200ms"),
            "{input}: {output}"
        );
    }
    host.flush().await;
    let spans = host.receiver.spans();
    let chats: Vec<&Span> = spans.iter().filter(|s| s.name == "chat gpt-4.1").collect();
    assert_eq!(chats.len(), 2);
    for chat in chats {
        assert_eq!(
            string(&chat.attributes, "error.type").as_deref(),
            Some("timeout")
        );
        let attempts = failed_attempts(chat);
        assert_eq!(attempts.len(), 3, "{attempts:?}");
        assert!(attempts.iter().all(|a| a.2 == "timeout" && a.1.is_none()));
    }
    assert_eq!(mock.received().len(), 6);
}
