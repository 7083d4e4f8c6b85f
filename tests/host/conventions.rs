//! The two versions of the GenAI semantic conventions, name by name: those
//! of semantic conventions v1.41.0 by default, and the GenAI conventions'
//! release v0.1.0 with `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`.

use crate::support::llm_server::{MockLlm, Reply, anthropic_answer, anthropic_tool_stream};
use crate::support::otlp::{Receiver, attribute, int, string};
use crate::support::{TestHost, anthropic, exporting_to, only, run_workflow, test_agent, tools};
use glassbox::RunRequest;
use glassbox::telemetry::semconv::GenAiConventions;
use glassbox::telemetry::{ContentConfig, OtlpProtocol, TelemetryConfig};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::collections::BTreeSet;

/// The planner workflow run once under `conventions`: the spans and the
/// names of the metrics exported, with the receiver for the rest.
async fn workflow_under(conventions: GenAiConventions) -> (Vec<Span>, BTreeSet<String>, Receiver) {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let config = TelemetryConfig {
        conventions,
        ..exporting_to(&receiver, OtlpProtocol::Grpc)
    };
    run_workflow(&config).await;
    (receiver.spans(), metric_names(&receiver), receiver)
}

/// Which of the GenAI and Glassbox metric names of either version `receiver` got.
fn metric_names(receiver: &Receiver) -> BTreeSet<String> {
    [
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.duration",
        "gen_ai.client.operation.time_to_first_chunk",
        "glassbox.agent.duration",
        "glassbox.tool.duration",
        "glassbox.agent.errors",
        "glassbox.llm.cost",
        "gen_ai.client.inference.duration",
        "gen_ai.client.inference.time_to_first_chunk",
        "gen_ai.client.inference.usage.input_tokens",
        "gen_ai.client.inference.usage.output_tokens",
        "gen_ai.client.inference.usage.cache_read.input_tokens",
        "gen_ai.client.inference.usage.cache_write.input_tokens",
        "gen_ai.client.inference.operation.input_tokens",
        "gen_ai.client.inference.operation.output_tokens",
        "gen_ai.invoke_agent.duration",
        "gen_ai.invoke_agent.inference_calls",
        "gen_ai.invoke_agent.tool_calls",
        "gen_ai.execute_tool.duration",
    ]
    .into_iter()
    .filter(|name| receiver.metric(name).is_some())
    .map(str::to_owned)
    .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|name| name.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn by_default_the_host_emits_the_names_of_semantic_conventions_1_41() {
    let (spans, metrics, _) = workflow_under(GenAiConventions::V1_41).await;
    assert_eq!(
        metrics,
        names(&[
            "gen_ai.client.operation.duration",
            "gen_ai.client.token.usage",
            "glassbox.agent.duration",
            "glassbox.tool.duration",
        ])
    );
    let workflow = only(&spans, "invoke_workflow day-planner");
    assert_eq!(
        string(&workflow.attributes, "gen_ai.workflow.name").as_deref(),
        Some("day-planner")
    );
    assert!(attribute(&workflow.attributes, "gen_ai.agent.name").is_none());
    let planner = only(&spans, "invoke_agent planner");
    assert!(attribute(&planner.attributes, "gen_ai.agent.version").is_some());
    assert!(attribute(&planner.attributes, "gen_ai.provider.name").is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn opted_in_the_host_emits_the_names_of_gen_ai_conventions_0_1_0() {
    let (spans, metrics, receiver) = workflow_under(GenAiConventions::Latest).await;
    assert_eq!(
        metrics,
        names(&[
            "gen_ai.client.inference.duration",
            "gen_ai.client.inference.operation.input_tokens",
            "gen_ai.client.inference.operation.output_tokens",
            "gen_ai.client.inference.usage.input_tokens",
            "gen_ai.client.inference.usage.output_tokens",
            "gen_ai.execute_tool.duration",
            "gen_ai.invoke_agent.duration",
            "gen_ai.invoke_agent.inference_calls",
            "gen_ai.invoke_agent.tool_calls",
        ])
    );
    // The workflow is an agent invocation whose operation is `invoke_workflow`.
    let workflow = only(&spans, "invoke_workflow day-planner");
    assert_eq!(
        string(&workflow.attributes, "gen_ai.agent.name").as_deref(),
        Some("day-planner")
    );
    assert_eq!(
        string(&workflow.attributes, "gen_ai.operation.name").as_deref(),
        Some("invoke_workflow")
    );
    assert!(attribute(&workflow.attributes, "gen_ai.workflow.name").is_none());
    let planner = only(&spans, "invoke_agent planner");
    assert!(attribute(&planner.attributes, "gen_ai.agent.version").is_none());
    assert!(attribute(&planner.attributes, "gen_ai.provider.name").is_none());
    assert_eq!(
        string(&planner.attributes, "gen_ai.agent.name").as_deref(),
        Some("planner")
    );

    let Some(Data::Histogram(runs)) = receiver
        .metric("gen_ai.invoke_agent.duration")
        .and_then(|m| m.data)
    else {
        panic!("gen_ai.invoke_agent.duration is a histogram");
    };
    let mut recorded: Vec<(String, String)> = runs
        .data_points
        .iter()
        .map(|point| {
            (
                string(&point.attributes, "gen_ai.operation.name").unwrap(),
                string(&point.attributes, "gen_ai.agent.name").unwrap(),
            )
        })
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        [
            ("invoke_agent", "math-worker"),
            ("invoke_agent", "planner"),
            ("invoke_agent", "weather-worker"),
            ("invoke_workflow", "day-planner"),
        ]
        .map(|(operation, agent)| (operation.to_owned(), agent.to_owned()))
    );
    // One point per agent run: the calls the agent made itself, not those of
    // the agents it called.
    let calls = |name: &str| -> Vec<(String, u64, f64)> {
        let Some(Data::Histogram(calls)) = receiver.metric(name).and_then(|m| m.data) else {
            panic!("{name} is a histogram");
        };
        let mut points: Vec<_> = calls
            .data_points
            .iter()
            .map(|point| {
                (
                    string(&point.attributes, "gen_ai.agent.name").unwrap(),
                    point.count,
                    point.sum.unwrap(),
                )
            })
            .collect();
        points.sort_by(|a, b| a.0.cmp(&b.0));
        points
    };
    let model_calls = calls("gen_ai.invoke_agent.inference_calls");
    let tool_calls = calls("gen_ai.invoke_agent.tool_calls");
    let agents: Vec<&str> = model_calls
        .iter()
        .map(|(agent, ..)| agent.as_str())
        .collect();
    assert_eq!(agents, ["math-worker", "planner", "weather-worker"]);
    let chats = spans.iter().filter(|s| s.name.starts_with("chat ")).count() as f64;
    assert_eq!(
        model_calls.iter().map(|(_, _, sum)| sum).sum::<f64>(),
        chats,
        "every model call counted once, by the agent that made it: {model_calls:?}"
    );
    let tool_spans = spans
        .iter()
        .filter(|s| s.name.starts_with("execute_tool "))
        .count() as f64;
    assert_eq!(
        tool_calls.iter().map(|(_, _, sum)| sum).sum::<f64>(),
        tool_spans,
        "{tool_calls:?}"
    );
    assert_eq!(
        tool_calls[1],
        ("planner".to_owned(), 1, 0.0),
        "the planner calls agents, not tools"
    );

    let input = receiver.sum("gen_ai.client.inference.usage.input_tokens");
    assert!(!input.is_empty());
    for (attributes, tokens) in &input {
        assert_eq!(
            string(attributes, "gen_ai.token.modality").as_deref(),
            Some("text")
        );
        assert!(*tokens > 0);
    }
}

/// Cache use and streaming, opted in: the usage counters by kind, cache
/// writes under both names on the span, and the inference streaming metrics.
#[tokio::test(flavor = "multi_thread")]
async fn opted_in_cache_use_and_streams_are_counted_by_kind() {
    let mock = MockLlm::start(vec![
        anthropic_answer("hi"),
        Reply::Events(anthropic_tool_stream()),
    ])
    .await;
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let config = TelemetryConfig {
        conventions: GenAiConventions::Latest,
        ..exporting_to(&receiver, OtlpProtocol::Grpc)
    };
    let host = TestHost::with_telemetry(
        test_agent().await,
        tools().await,
        anthropic(mock.anthropic_base_url()),
        receiver,
        &config,
    );
    host.runtime.run(RunRequest::text("say hi")).await.unwrap();
    host.runtime.run(RunRequest::text("stream")).await.unwrap();
    host.flush().await;

    let spans = host.receiver.spans();
    let answered = spans
        .iter()
        .find(|s| {
            s.name.starts_with("chat ")
                && int(&s.attributes, "gen_ai.usage.cache_read.input_tokens").is_some()
        })
        .expect("the chat span with cache use");
    for key in [
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
    ] {
        assert_eq!(int(&answered.attributes, key), Some(5), "{key}");
    }
    let total = |name: &str| -> i64 { host.receiver.sum(name).iter().map(|(_, n)| n).sum() };
    assert_eq!(
        total("gen_ai.client.inference.usage.cache_read.input_tokens"),
        100
    );
    assert_eq!(
        total("gen_ai.client.inference.usage.cache_write.input_tokens"),
        5
    );
    assert!(total("gen_ai.client.inference.usage.output_tokens") >= 10);
    assert!(
        host.receiver
            .metric("gen_ai.client.inference.time_to_first_chunk")
            .is_some()
    );
    assert!(
        host.receiver
            .metric("gen_ai.client.operation.time_to_first_chunk")
            .is_none()
    );
    assert!(host.receiver.metric("gen_ai.client.token.usage").is_none());
}

/// Content capture asking for events (`EVENT_ONLY`) puts each model call's
/// content in one `gen_ai.client.inference.operation.details` log record,
/// structured and correlated with the call's span, and none on the span.
#[tokio::test(flavor = "multi_thread")]
async fn content_as_events_is_one_structured_details_record_per_call() {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    let host = TestHost::start_with_content(
        test_agent().await,
        tools().await,
        crate::support::scripted("[[turn]]\ncontent = \"Brief it is.\"\n"),
        OtlpProtocol::Grpc,
        ContentConfig {
            events: true,
            ..ContentConfig::default()
        },
    )
    .await;
    host.runtime
        .run(RunRequest::text("say my key is sk-abcdefghijklmnopqrstuv"))
        .await
        .unwrap();
    host.flush().await;

    let spans = host.receiver.spans();
    let chat = spans.iter().find(|s| s.name.starts_with("chat ")).unwrap();
    assert!(attribute(&chat.attributes, "gen_ai.input.messages").is_none());
    let records: Vec<_> = host
        .receiver
        .logs()
        .into_iter()
        .filter(|record| record.event_name == "gen_ai.client.inference.operation.details")
        .collect();
    assert_eq!(records.len(), 1);
    let details = &records[0];
    assert_eq!(
        (&details.trace_id, &details.span_id),
        (&chat.trace_id, &chat.span_id)
    );
    assert_eq!(
        string(&details.attributes, "gen_ai.operation.name").as_deref(),
        Some("chat")
    );
    let structured = |key: &str| attribute(&details.attributes, key).cloned();
    let Some(Value::ArrayValue(input)) = structured("gen_ai.input.messages") else {
        panic!("the input messages are a list: {details:?}");
    };
    let text = format!("{input:?}");
    assert!(
        text.contains("[REDACTED]") && !text.contains("sk-abcdefghij"),
        "{text}"
    );
    let Some(Value::ArrayValue(output)) = structured("gen_ai.output.messages") else {
        panic!("the output messages are a list");
    };
    assert!(format!("{output:?}").contains("Brief it is."));
    let Some(Value::ArrayValue(_)) = structured("gen_ai.system_instructions") else {
        panic!("the system instructions are a list");
    };
}
