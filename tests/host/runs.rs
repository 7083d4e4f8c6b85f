//! Successful runs: the exact span tree, GenAI attributes, metrics and logs
//! that reach an OTLP receiver, over gRPC and over HTTP/protobuf.

use crate::support::llm_server::{Reply, answer, tool_calls};
use crate::support::otlp::{int, string, strings};
use crate::support::{API_KEY, assert_strings, only, outline, run_against_mock, run_agent, status};
use glassbox::RunRequest;
use glassbox::llm::{DEMO_SCRIPT, ScriptedProvider};
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use std::sync::Arc;

const QUESTION: &str =
    "Which is warmer right now, Paris or Lisbon, and by how many degrees Fahrenheit?";

#[tokio::test(flavor = "multi_thread")]
async fn the_scripted_demo_exports_one_trace_over_grpc() {
    let request = RunRequest {
        conversation_id: Some("conv-42".into()),
        ..RunRequest::text(QUESTION)
    };
    let outcome = run_agent(
        Arc::new(ScriptedProvider::demo()),
        OtlpProtocol::Grpc,
        request,
    )
    .await;

    assert_eq!(
        outcome.result.unwrap(),
        "Lisbon is warmer: 19 °C and sunny, against 14 °C and clear in Paris, a difference of 9 °F."
    );
    let exported = outcome.receiver.resource_spans();
    let spans = outcome.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent react-agent [INTERNAL]
  react.step [INTERNAL]
    chat scripted-demo [CLIENT]
    execute_tool get_weather [INTERNAL]
    execute_tool get_weather [INTERNAL]
  react.step [INTERNAL]
    chat scripted-demo [CLIENT]
    execute_tool calculate [INTERNAL]
  react.step [INTERNAL]
    chat scripted-demo [CLIENT]
"
    );

    let (resource, _) = &exported[0];
    assert_eq!(
        string(resource, "service.name").as_deref(),
        Some("glassbox")
    );
    assert_eq!(
        string(resource, "gen_ai.agent.name").as_deref(),
        Some("react-agent")
    );
    assert!(string(resource, "service.version").is_some());

    let root = only(&spans, "invoke_agent react-agent");
    assert!(
        root.parent_span_id.is_empty(),
        "the run is the root of a new trace"
    );
    assert_strings(
        &root.attributes,
        &[
            ("gen_ai.operation.name", "invoke_agent"),
            ("gen_ai.agent.version", "0.1.0"),
            ("gen_ai.conversation.id", "conv-42"),
            ("gen_ai.provider.name", "scripted"),
        ],
    );
    assert_eq!(status(root).0, 1, "the run ended OK");

    let chats: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "chat scripted-demo")
        .collect();
    for chat in &chats {
        assert_strings(
            &chat.attributes,
            &[
                ("gen_ai.operation.name", "chat"),
                ("gen_ai.provider.name", "scripted"),
                ("gen_ai.request.model", "scripted-demo"),
            ],
        );
        assert!(int(&chat.attributes, "gen_ai.usage.input_tokens").unwrap() > 0);
    }
    assert_eq!(
        strings(&chats[0].attributes, "gen_ai.response.finish_reasons"),
        Some(vec!["tool_calls".into()])
    );
    assert_eq!(
        strings(&chats[2].attributes, "gen_ai.response.finish_reasons"),
        Some(vec!["stop".into()])
    );
    assert_eq!(
        string(&chats[2].attributes, "gen_ai.response.id").as_deref(),
        Some("scripted-3")
    );

    let weather_ids: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "execute_tool get_weather")
        .map(|s| string(&s.attributes, "gen_ai.tool.call.id").unwrap())
        .collect();
    assert_eq!(weather_ids, ["call_1_1", "call_1_2"]);
    let calculate = only(&spans, "execute_tool calculate");
    assert_strings(
        &calculate.attributes,
        &[
            ("gen_ai.tool.name", "calculate"),
            ("gen_ai.tool.type", "function"),
            ("gen_ai.tool.call.id", "call_2_1"),
            ("glassbox.component", "calculator.wasm"),
        ],
    );
    let steps: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "react.step")
        .map(|s| int(&s.attributes, "react.step").unwrap())
        .collect();
    assert_eq!(steps, [1, 2, 3], "guest span attributes arrive as set");

    // Metrics: token usage by type, one duration point per call, with the spec's buckets.
    let usage = outcome
        .receiver
        .metric("gen_ai.client.token.usage")
        .expect("token usage metric");
    assert_eq!(usage.unit, "{token}");
    let Some(Data::Histogram(histogram)) = usage.data else {
        panic!("token usage is not a histogram")
    };
    let input_tokens: i64 = chats
        .iter()
        .map(|c| int(&c.attributes, "gen_ai.usage.input_tokens").unwrap())
        .sum();
    let by_type = |kind: &str| {
        histogram
            .data_points
            .iter()
            .find(|p| string(&p.attributes, "gen_ai.token.type").as_deref() == Some(kind))
            .unwrap_or_else(|| panic!("no {kind} token data point"))
            .clone()
    };
    let input = by_type("input");
    assert_eq!((input.count, input.sum), (3, Some(input_tokens as f64)));
    assert_strings(
        &input.attributes,
        &[
            ("gen_ai.provider.name", "scripted"),
            ("gen_ai.response.model", "scripted-demo"),
        ],
    );
    assert_eq!(by_type("output").count, 3);
    assert_eq!(
        input.explicit_bounds,
        glassbox::telemetry::semconv::metric::TOKEN_BUCKETS
    );

    let duration = outcome
        .receiver
        .metric("gen_ai.client.operation.duration")
        .expect("duration metric");
    assert_eq!(duration.unit, "s");
    let Some(Data::Histogram(histogram)) = duration.data else {
        panic!("duration is not a histogram")
    };
    assert_eq!(
        histogram.data_points.iter().map(|p| p.count).sum::<u64>(),
        3
    );
    assert_eq!(
        histogram.data_points[0].explicit_bounds,
        glassbox::telemetry::semconv::metric::DURATION_BUCKETS
    );

    let tools = outcome
        .receiver
        .metric("glassbox.tool.duration")
        .expect("tool duration metric");
    let Some(Data::Histogram(histogram)) = tools.data else {
        panic!("tool duration is not a histogram")
    };
    let count = |tool: &str| {
        histogram
            .data_points
            .iter()
            .filter(|p| string(&p.attributes, "gen_ai.tool.name").as_deref() == Some(tool))
            .map(|p| p.count)
            .sum::<u64>()
    };
    assert_eq!((count("get_weather"), count("calculate")), (2, 1));
    assert!(outcome.receiver.metric("glassbox.agent.duration").is_some());
    assert!(
        outcome.receiver.metric("glassbox.tool.errors").is_none(),
        "no tool failed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_provider_maps_tool_calls_and_usage_and_exports_over_http() {
    let (llm, outcome) = run_against_mock(
        vec![
            tool_calls(
                "chatcmpl-1",
                &[("call_a", "get_weather", r#"{"city":"Tokyo"}"#)],
                (80, 12),
            ),
            answer("chatcmpl-2", "It is 18 °C and humid in Tokyo.", (120, 9)),
        ],
        OtlpProtocol::HttpProtobuf,
        "Weather in Tokyo?",
    )
    .await;
    assert_eq!(outcome.result.unwrap(), "It is 18 °C and humid in Tokyo.");

    // What went over the wire to the provider.
    let received = llm.received();
    assert_eq!(received.len(), 2);
    assert_eq!(
        received[0].authorization.as_deref(),
        Some(format!("Bearer {API_KEY}").as_str())
    );
    assert_eq!(received[0].body["model"], "mock-model");
    let offered: Vec<&str> = received[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        offered,
        [
            "ask_model",
            "bad_utf8",
            "calculate",
            "connect",
            "count_calls",
            "embed",
            "explode",
            "fetch",
            "flood",
            "get_weather",
            "hog",
            "huge",
            "probe",
            "read_file",
            "recurse",
            "shout",
            "spin",
            "write_file"
        ]
    );
    assert_eq!(
        received[0].body["tools"][9]["function"]["parameters"]["required"][0],
        "city"
    );
    let second = received[1].body["messages"].as_array().unwrap();
    let assistant = &second[second.len() - 2];
    assert_eq!(assistant["tool_calls"][0]["id"], "call_a");
    assert_eq!(assistant["content"], serde_json::Value::Null);
    let result = &second[second.len() - 1];
    assert_eq!(
        (result["role"].as_str(), result["tool_call_id"].as_str()),
        (Some("tool"), Some("call_a"))
    );
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains(r#""temperature_c":18"#)
    );

    // What was exported.
    let spans: Vec<_> = outcome.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent react-agent [INTERNAL]
  react.step [INTERNAL]
    chat mock-model [CLIENT]
    execute_tool get_weather [INTERNAL]
  react.step [INTERNAL]
    chat mock-model [CLIENT]
"
    );
    let chats: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "chat mock-model")
        .collect();
    let port = url::Url::parse(&llm.base_url).unwrap().port().unwrap();
    for chat in &chats {
        assert_strings(
            &chat.attributes,
            &[
                ("gen_ai.provider.name", "openai"),
                ("server.address", "127.0.0.1"),
            ],
        );
        assert_eq!(int(&chat.attributes, "server.port"), Some(i64::from(port)));
        assert_strings(
            &chat.attributes,
            &[("gen_ai.response.model", "mock-model-2025")],
        );
    }
    assert_eq!(
        string(&chats[0].attributes, "gen_ai.response.id").as_deref(),
        Some("chatcmpl-1")
    );
    assert_eq!(
        (
            int(&chats[0].attributes, "gen_ai.usage.input_tokens"),
            int(&chats[0].attributes, "gen_ai.usage.output_tokens")
        ),
        (Some(80), Some(12))
    );
    assert_eq!(
        int(&chats[1].attributes, "gen_ai.usage.cache_read.input_tokens"),
        Some(7)
    );
    assert_eq!(
        int(&chats[1].attributes, "gen_ai.usage.reasoning.output_tokens"),
        Some(3)
    );
    assert_eq!(
        int(&chats[0].attributes, "gen_ai.usage.cache_read.input_tokens"),
        None,
        "absent counts stay absent"
    );
    let root = only(&spans, "invoke_agent react-agent");
    assert_eq!(
        int(&root.attributes, "gen_ai.usage.input_tokens"),
        None,
        "usage is never summed onto parents"
    );
    assert_eq!(
        string(
            &only(&spans, "execute_tool get_weather").attributes,
            "gen_ai.tool.call.id"
        )
        .as_deref(),
        Some("call_a")
    );

    assert!(
        !outcome.receiver.dump().contains(API_KEY),
        "the API key was exported"
    );
    let Some(Data::Histogram(usage)) = outcome
        .receiver
        .metric("gen_ai.client.token.usage")
        .unwrap()
        .data
    else {
        panic!()
    };
    let input: f64 = usage
        .data_points
        .iter()
        .filter(|p| string(&p.attributes, "gen_ai.token.type").as_deref() == Some("input"))
        .filter_map(|p| p.sum)
        .sum();
    assert_eq!(input, 200.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_that_calls_the_model_nests_its_chat_span_under_its_tool_span() {
    let (llm, outcome) = run_against_mock(
        vec![
            tool_calls(
                "chatcmpl-1",
                &[(
                    "call_q",
                    "ask_model",
                    r#"{"question":"What is six times seven?"}"#,
                )],
                (50, 10),
            ),
            answer("chatcmpl-2", "42", (8, 1)),
            answer("chatcmpl-3", "The model says 42.", (70, 6)),
        ],
        OtlpProtocol::Grpc,
        "Ask the model.",
    )
    .await;
    assert_eq!(outcome.result.unwrap(), "The model says 42.");
    assert_eq!(
        llm.received()[1].body["messages"][0]["content"],
        "What is six times seven?"
    );

    let spans: Vec<_> = outcome.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent react-agent [INTERNAL]
  react.step [INTERNAL]
    chat mock-model [CLIENT]
    execute_tool ask_model [INTERNAL]
      ask_model.consult [INTERNAL]
        chat mock-model [CLIENT]
  react.step [INTERNAL]
    chat mock-model [CLIENT]
"
    );
    let consult = only(&spans, "ask_model.consult");
    assert_strings(
        &consult.attributes,
        &[("glassbox.component", "test_tools.wasm")],
    );
    assert_eq!(int(&consult.attributes, "question.length"), Some(24));
}

#[tokio::test(flavor = "multi_thread")]
async fn embeddings_are_traced_with_input_tokens_only() {
    let (llm, outcome) = run_against_mock(
        vec![
            tool_calls(
                "chatcmpl-1",
                &[("call_e", "embed", r#"{"texts":["red","blue"]}"#)],
                (40, 8),
            ),
            Reply::Json(serde_json::json!({
                "object": "list",
                "model": "mock-embedder-v2",
                "data": [
                    {"object": "embedding", "index": 1, "embedding": [0.5, 0.25, 0.0]},
                    {"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]},
                ],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            })),
            answer("chatcmpl-2", "Two vectors came back.", (60, 5)),
        ],
        OtlpProtocol::Grpc,
        "Embed red and blue.",
    )
    .await;
    assert_eq!(outcome.result.unwrap(), "Two vectors came back.");

    let received = llm.received();
    assert_eq!(received[1].path, "/v1/embeddings");
    assert_eq!(
        received[1].body,
        serde_json::json!({"model": "mock-embedder", "input": ["red", "blue"], "encoding_format": "float"})
    );
    let tool_result = received[2].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(tool_result["content"], "2 vectors of 3 dimensions");

    let spans: Vec<_> = outcome.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent react-agent [INTERNAL]
  react.step [INTERNAL]
    chat mock-model [CLIENT]
    execute_tool embed [INTERNAL]
      embeddings mock-embedder [CLIENT]
  react.step [INTERNAL]
    chat mock-model [CLIENT]
"
    );
    let embeddings = only(&spans, "embeddings mock-embedder");
    assert_strings(
        &embeddings.attributes,
        &[
            ("gen_ai.operation.name", "embeddings"),
            ("gen_ai.provider.name", "openai"),
            ("gen_ai.request.model", "mock-embedder"),
            ("gen_ai.response.model", "mock-embedder-v2"),
        ],
    );
    assert_eq!(
        int(&embeddings.attributes, "gen_ai.usage.input_tokens"),
        Some(4)
    );
    assert_eq!(
        int(&embeddings.attributes, "gen_ai.usage.output_tokens"),
        None
    );

    let Some(Data::Histogram(usage)) = outcome
        .receiver
        .metric("gen_ai.client.token.usage")
        .unwrap()
        .data
    else {
        panic!()
    };
    let embedding_points: Vec<_> = usage
        .data_points
        .iter()
        .filter(|p| string(&p.attributes, "gen_ai.operation.name").as_deref() == Some("embeddings"))
        .map(|p| string(&p.attributes, "gen_ai.token.type").unwrap())
        .collect();
    assert_eq!(embedding_points, ["input"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_logs_are_exported_with_their_span() {
    // A failing tool makes the react agent log a warning inside its step span.
    let script = r#"
        [[turn]]
        tool_calls = [{ name = "get_weather", arguments = { city = "Atlantis" } }]
        [[turn]]
        content = "I could not find it."
    "#;
    let outcome = run_agent(
        crate::support::scripted(script),
        OtlpProtocol::HttpProtobuf,
        RunRequest::text("Atlantis?"),
    )
    .await;
    assert_eq!(outcome.result.unwrap(), "I could not find it.");
    let logs = outcome.receiver.logs();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let record = &logs[0];
    assert_eq!(record.severity_text, "WARN");
    let body = format!("{:?}", record.body);
    assert!(
        body.contains("tool `get_weather` failed") && body.contains("Atlantis"),
        "{body}"
    );
    assert_strings(&record.attributes, &[("gen_ai.tool.call.id", "call_1_1")]);
    let spans: Vec<_> = outcome.receiver.spans();
    let step = spans.iter().find(|s| s.name == "react.step").unwrap();
    assert_eq!(
        (&record.trace_id, &record.span_id),
        (&step.trace_id, &step.span_id)
    );
}

#[test]
fn the_bundled_demo_script_is_the_one_documented() {
    assert!(
        DEMO_SCRIPT.contains(QUESTION),
        "the demo script documents the demo question"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_in_a_row_each_get_their_own_span() {
    let host = crate::support::TestHost::test_agent(Arc::new(ScriptedProvider::demo())).await;
    let chats = host.runtime.run(RunRequest::text("chats 3")).await;
    let calls = host
        .runtime
        .run(RunRequest::text(
            r#"calls 2 calculate {"expression":"6 * 7"}"#,
        ))
        .await;
    let refused = host.runtime.run(RunRequest::text("chats many")).await;
    host.flush().await;

    assert_eq!(chats.unwrap(), "3 chats");
    assert_eq!(calls.unwrap(), "2 calls");
    assert_eq!(
        refused.unwrap_err().to_string(),
        "the agent failed (invalid_request): `many` is not a count"
    );
    let spans = host.receiver.spans();
    let named = |name: &str| spans.iter().filter(|s| s.name == name).count();
    assert_eq!(named("chat scripted-demo"), 3);
    assert_eq!(named("execute_tool calculate"), 2);
}
