//! Guests written in Python (componentize-py), built from source by the
//! tests: a Python tool plugin called by a Rust agent, traced like any other.

use crate::cli::glassbox;
use crate::support::otlp::{Receiver, string};
use crate::support::{artifacts, assert_strings, only};
use glassbox::telemetry::OtlpProtocol;

#[tokio::test(flavor = "multi_thread")]
async fn a_python_tool_runs_traced_and_its_failures_are_tool_errors() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let call = |input: &str| {
        let output = glassbox()
            .args([
                "run",
                artifacts::TEST_AGENT,
                "--tool",
                artifacts::PYTHON_TEXT_TOOLS,
            ])
            .args(["--llm", "scripted", "--input", input])
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
    };

    let (answer, _) = call(r#"call word_stats {"text":"the quick brown fox"}"#);
    assert_eq!(answer, "ok: {\"words\": 4, \"longest\": \"quick\"}\n");
    let (answer, _) = call("call fail {}");
    assert_eq!(answer, "tool failed: refused, as asked\n");
    // An exception does not trap the instance: the plugin reports it, and logs its traceback.
    let (answer, stderr) = call("call explode {}");
    assert_eq!(
        answer,
        "tool failed: ValueError: the explode tool always raises\n"
    );
    assert!(
        stderr.contains("Traceback (most recent call last)"),
        "{stderr}"
    );
    // The host checks arguments against the Python tool's schema before it runs.
    let (answer, _) = call(r#"call word_stats {"words":1}"#);
    assert!(
        answer.starts_with("invalid arguments: the arguments do not match the tool's schema"),
        "{answer}"
    );

    let spans = receiver.spans();
    let stats = spans
        .iter()
        .find(|s| {
            s.name == "execute_tool word_stats" && string(&s.attributes, "error.type").is_none()
        })
        .expect("the successful call's span");
    assert_strings(
        &stats.attributes,
        &[("glassbox.component", "text_tools.wasm")],
    );
    let counted = only(&spans, "word_stats.count");
    assert_eq!(
        counted.parent_span_id, stats.span_id,
        "the Python span nests under the call"
    );
    assert_strings(&counted.attributes, &[("glassbox.span.origin", "guest")]);
    let exploded = only(&spans, "execute_tool explode");
    assert_strings(&exploded.attributes, &[("error.type", "tool_failed")]);
}
