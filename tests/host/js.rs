//! Guests written in JavaScript with the SDK (`sdk/js`), built from source by
//! the tests with its build command (rolldown, then componentize-qjs, or
//! componentize-js for the StarlingMonkey engine): tools and agents traced like
//! any other, in one trace with Rust and Python guests.

use crate::cli::run_exporting;
use crate::support::llm_server::{MockLlm, Reply};
use crate::support::otlp::Receiver;
use crate::support::{artifacts, assert_strings, manifest_in, only, outline, parent_of};
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;

/// The value of `span`'s attribute `key`.
fn value(span: &Span, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.clone())
        .and_then(|v| v.value)
}

/// Runs `agent` on `input` with `args` and the scripted model, exporting to
/// `receiver`; returns stdout, or panics with stderr.
fn run(receiver: &Receiver, agent: &str, args: &[&str], input: &str) -> String {
    let args = [args, &["--llm", "scripted"]].concat();
    let printed = run_exporting(receiver, agent, &args, input);
    assert!(printed.succeeded, "{}", printed.stderr);
    printed.stdout
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_tool_runs_traced_and_its_failures_are_tool_errors_on_quickjs() {
    check_test_tools(artifacts::JS_TEST_TOOLS).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_tool_runs_traced_and_its_failures_are_tool_errors_on_starlingmonkey() {
    check_test_tools(artifacts::JS_TEST_TOOLS_STARLINGMONKEY).await;
}

/// The JavaScript test tools, built with one engine, behave as the SDK promises.
async fn check_test_tools(component: &str) {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let call = |input: &str| {
        run(
            &receiver,
            artifacts::TEST_AGENT,
            &["--tool", component],
            input,
        )
    };

    assert_eq!(call(r#"call shout {"text":"quiet"}"#), "ok: QUIET\n");
    assert_eq!(call("call fail {}"), "tool failed: refused, as asked\n");
    // A thrown error does not trap the instance: the SDK reports it.
    assert_eq!(
        call("call explode {}"),
        "tool failed: TypeError: the explode tool always throws\n"
    );
    let wrong = call(r#"call shout {"text":1}"#);
    assert!(
        wrong.starts_with("invalid arguments: the arguments do not match the tool's schema"),
        "{wrong}"
    );

    let spans = receiver.spans();
    let upper = only(&spans, "shout.upper");
    let call =
        parent_of(&spans, upper).expect("the JavaScript span nests under a span of the host");
    assert_eq!(call.name, "execute_tool shout");
    let file_name = std::path::Path::new(component).file_name().unwrap();
    assert_strings(
        &call.attributes,
        &[("glassbox.component", file_name.to_str().unwrap())],
    );
    assert_eq!(value(upper, "text.length"), Some(Value::IntValue(5)));
    assert_eq!(
        value(upper, "text.big"),
        Some(Value::IntValue(1 << 60)),
        "a BigInt attribute arrives as a 64-bit integer"
    );
    let exploded = only(&spans, "execute_tool explode");
    assert_strings(&exploded.attributes, &[("error.type", "tool_failed")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_agent_calls_javascript_python_and_rust_tools_in_one_trace_and_streams() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.toml");
    std::fs::write(
        &script,
        r#"
model = "scripted-report"

[[turn]]
tool_calls = [
    { name = "csv_summary", arguments = { csv = "city,temp\nParis,14\nLisbon,19" } },
    { name = "text_stats", arguments = { text = "Lisbon is warmer." } },
    { name = "calculate", arguments = { expression = "19 - 14" } },
]

[[turn]]
content = "Temperatures {{result:csv_summary}}; difference {{result:calculate}}; words {{result:text_stats}}"
"#,
    )
    .unwrap();
    let answer = run(
        &receiver,
        artifacts::JS_REPORT_AGENT,
        &[
            // The agent runs on QuickJS, its JavaScript tools on StarlingMonkey.
            "--tool",
            artifacts::JS_DATA_TOOLS_STARLINGMONKEY,
            "--tool",
            artifacts::PYTHON_TEXT_TOOLS,
            "--tool",
            artifacts::CALCULATOR,
            "--script",
            script.to_str().unwrap(),
        ],
        "Report on the temperatures.",
    );
    assert_eq!(
        answer,
        "Temperatures {\"city\":{\"type\":\"text\",\"count\":2,\"distinct\":2},\"temp\":{\"type\":\"number\",\
         \"count\":2,\"min\":14,\"max\":19,\"mean\":16.5}}; difference 5; words {\"words\": 3, \"sentences\": 1, \
         \"words_per_sentence\": 3.0, \"reading_seconds\": 1, \"flesch_reading_ease\": 62.8}\n"
    );

    let spans = receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent report-agent [INTERNAL]
  report.gather [INTERNAL]
    chat scripted-report [CLIENT]
    execute_tool csv_summary [INTERNAL]
      csv_summary.columns [INTERNAL]
    execute_tool text_stats [INTERNAL]
      text_stats.syllables [INTERNAL]
    execute_tool calculate [INTERNAL]
  report.gather [INTERNAL]
    chat scripted-report [CLIENT]
  report.write [INTERNAL]
    chat scripted-report [CLIENT]
"
    );
    for (tool, component) in [
        ("csv_summary", "data_tools_starlingmonkey.wasm"),
        ("text_stats", "text_tools.wasm"),
        ("calculate", "calculator.wasm"),
    ] {
        let span = only(&spans, &format!("execute_tool {tool}"));
        assert_strings(&span.attributes, &[("glassbox.component", component)]);
    }
    // The report is streamed: its model call is the one under `report.write`.
    let write = only(&spans, "report.write");
    let streamed = spans
        .iter()
        .find(|s| s.parent_span_id == write.span_id)
        .unwrap();
    assert_eq!(
        value(streamed, "gen_ai.request.stream"),
        Some(Value::BoolValue(true))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_agent_invokes_a_python_agent_that_invokes_a_rust_one_in_one_trace() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_in(
        dir.path(),
        &format!(
            r#"
[agent]
path = {javascript:?}
allow_agents = ["python-test-agent"]

[[agents]]
path = {python:?}
allow_agents = ["callee"]

[[agents]]
name = "callee"
path = {rust:?}
"#,
            javascript = artifacts::JS_TEST_AGENT,
            python = artifacts::PYTHON_TEST_AGENT,
            rust = artifacts::TEST_AGENT,
        ),
    );
    let ask = |input: &str| {
        run(
            &receiver,
            "--manifest",
            &[manifest.to_str().unwrap()],
            input,
        )
    };

    assert_eq!(
        ask("agents"),
        "python-test-agent: Does what its input says.\n"
    );
    assert_eq!(
        ask("invoke python-test-agent invoke callee echo hello"),
        "answered: answered: hello\n"
    );
    // The Python agent lists what it is granted; neither grants what it was not given.
    assert_eq!(
        ask("invoke python-test-agent agents"),
        "answered: callee: Does what its input says.\n"
    );
    let refused = ask("invoke callee echo hello");
    assert!(refused.starts_with("NotAllowed: "), "{refused}");
    // An error the agent does not catch fails its run, and says what it was.
    let exploded = run_exporting(
        &receiver,
        "--manifest",
        &[manifest.to_str().unwrap()],
        "explode",
    );
    assert!(!exploded.succeeded);
    assert!(
        exploded.stderr.contains("RangeError: told to explode"),
        "{}",
        exploded.stderr
    );

    let spans = receiver.spans();
    let rust = spans
        .iter()
        .find(|s| s.name == "invoke_agent callee")
        .expect("the Rust agent ran");
    let python = parent_of(&spans, rust).expect("the Rust agent runs under the Python one");
    assert_eq!(python.name, "invoke_agent python-test-agent");
    let javascript =
        parent_of(&spans, python).expect("the Python agent runs under the JavaScript one");
    assert_eq!(javascript.name, "invoke_agent js-test-agent");
    assert_eq!(
        (rust.trace_id.clone(), python.trace_id.clone()),
        (javascript.trace_id.clone(), javascript.trace_id.clone())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn python_and_javascript_agents_embed_texts_traced() {
    for agent in [artifacts::PYTHON_TEST_AGENT, artifacts::JS_TEST_AGENT] {
        let llm = MockLlm::start(vec![Reply::Json(serde_json::json!({
            "object": "list",
            "model": "mock-embedder-v2",
            "data": [
                {"object": "embedding", "index": 1, "embedding": [0.5, 0.25]},
                {"object": "embedding", "index": 0, "embedding": [0.125, 1.0]},
            ],
            "usage": {"prompt_tokens": 2, "total_tokens": 2},
        }))])
        .await;
        let receiver = Receiver::start(OtlpProtocol::Grpc).await;
        let printed = run_exporting(
            &receiver,
            agent,
            &["--llm", "openai", "--llm-base-url", &llm.base_url],
            "embed red blue",
        );
        assert!(printed.succeeded, "{}", printed.stderr);
        let (shape, first) = printed
            .stdout
            .trim()
            .split_once(", first ")
            .unwrap_or_else(|| panic!("{agent}: {}", printed.stdout));
        assert_eq!(shape, "2 vectors of 2 dimensions", "{agent}");
        let first: Vec<f64> = serde_json::from_str(first).unwrap();
        assert_eq!(
            first,
            [0.125, 1.0],
            "{agent}: vectors come back in input order"
        );
        assert_eq!(
            llm.received()[0].body["input"],
            serde_json::json!(["red", "blue"])
        );

        let spans = receiver.spans();
        let embeddings = spans
            .iter()
            .find(|s| s.name.starts_with("embeddings "))
            .unwrap_or_else(|| panic!("{agent}: no embeddings span"));
        let run = parent_of(&spans, embeddings).expect("the embeddings span nests under the run");
        assert!(run.name.starts_with("invoke_agent "), "{}", run.name);
        assert_eq!(
            value(embeddings, "gen_ai.usage.input_tokens"),
            Some(Value::IntValue(2))
        );
    }
}

/// The SDK's build command refuses an app with an import that resolves
/// nowhere, naming it, before an engine runs and fails with less to say.
#[test]
fn building_an_app_whose_import_resolves_nowhere_fails_naming_the_import() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app.js");
    std::fs::write(
        &app,
        "import { agent } from 'glassbox-sdk/agent';\n\
         import { nothing } from 'no-such-package';\n\
         export const entrypoint = agent({ name: 'x', description: 'y', run: () => nothing() });\n",
    )
    .unwrap();
    let out = dir.path().join("app.wasm");
    let output = std::process::Command::new("node")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../sdk/js/bin/componentize.js"
        ))
        .arg(&app)
        .args(["--world", "agent", "-o"])
        .arg(&out)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("glassbox-componentize: Build failed with 1 error")
            && stderr.contains("Could not resolve 'no-such-package'"),
        "{stderr}"
    );
    assert!(!out.exists());
}
