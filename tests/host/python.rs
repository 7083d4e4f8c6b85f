//! Guests written in Python with the SDK (`sdk/python`), built from source by
//! the tests with componentize-py: tools and agents traced like any other, in
//! one trace with Rust guests, their exceptions never trapping an instance.

use crate::cli::{glassbox, run_exporting as run};
use crate::support::otlp::Receiver;
use crate::support::{artifacts, assert_strings, manifest_in, only, outline, parent_of, status};
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::trace::v1::Span;

/// Runs the Rust test agent, which reports what each tool call returned, with `tool`.
fn call_tool(receiver: &Receiver, tool: &str, input: &str) -> String {
    let printed = run(
        receiver,
        artifacts::TEST_AGENT,
        &["--tool", tool, "--llm", "scripted"],
        input,
    );
    assert!(printed.succeeded, "{}", printed.stderr);
    printed.stdout
}

/// The spans named `name` whose status description contains `text`.
fn failed_with<'a>(spans: &'a [Span], name: &str, text: &str) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.name == name && status(s).0 == 2 && status(s).1.contains(text))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_tool_runs_traced_its_schema_comes_from_type_hints_and_its_failures_are_tool_errors()
 {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let call = |input: &str| call_tool(&receiver, artifacts::PYTHON_TEST_TOOLS, input);

    assert_eq!(
        call(r#"call word_stats {"text":"the quick brown fox"}"#),
        "ok: {\"words\": 4, \"longest\": \"quick\"}\n"
    );
    // Defaults, an enum and a literal, all from the function's signature.
    assert_eq!(
        call(r#"call repeat {"text":"Ab"}"#),
        "ok: ab ab\n",
        "defaults apply"
    );
    assert_eq!(
        call(r#"call repeat {"text":"Ab","times":3,"case":"upper","separator":"-"}"#),
        "ok: AB-AB-AB\n",
        "the enum arrives as its member"
    );
    // The host checks arguments against the schema the SDK derived, before the tool runs.
    for wrong in [
        r#"call repeat {"text":"Ab","times":"3"}"#,
        r#"call repeat {"text":"Ab","case":"title"}"#,
        r#"call repeat {"text":"Ab","colour":"red"}"#,
        r#"call word_stats {"words":1}"#,
    ] {
        let answer = call(wrong);
        assert!(
            answer.starts_with("invalid arguments: the arguments do not match the tool's schema"),
            "{wrong}: {answer}"
        );
    }
    assert_eq!(call("call fail {}"), "tool failed: refused, as asked\n");
    // An exception does not trap the instance: the SDK reports it, and logs its traceback.
    let exploded = run(
        &receiver,
        artifacts::TEST_AGENT,
        &["--tool", artifacts::PYTHON_TEST_TOOLS, "--llm", "scripted"],
        "call explode {}",
    );
    assert_eq!(
        exploded.stdout,
        "tool failed: ValueError: the explode tool always raises\n"
    );
    assert!(
        exploded
            .stderr
            .contains("Traceback (most recent call last)"),
        "{}",
        exploded.stderr
    );

    let spans = receiver.spans();
    let counted = only(&spans, "word_stats.count");
    let stats = parent_of(&spans, counted).expect("the Python span nests under a span of the host");
    assert_eq!(stats.name, "execute_tool word_stats");
    assert_strings(
        &stats.attributes,
        &[("glassbox.component", "python_test_tools.wasm")],
    );
    assert_strings(&counted.attributes, &[("glassbox.span.origin", "guest")]);
    let exploded = only(&spans, "execute_tool explode");
    assert_strings(&exploded.attributes, &[("error.type", "tool_failed")]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_agent_calls_rust_and_python_tools_in_one_trace() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.toml");
    std::fs::write(
        &script,
        r#"
model = "scripted-analyst"

[[turn]]
tool_calls = [
    { name = "calculate", arguments = { expression = "2 * (3 + 4)" } },
    { name = "text_stats", arguments = { text = "The cat sat. The dog ran away." } },
]

[[turn]]
tool_calls = [{ name = "run_python", arguments = { code = "print('counting'); sum(range(101))" } }]

[[turn]]
content = "calculate: {{result:calculate}} | stats: {{result:text_stats}} | python: {{result:run_python}}"
"#,
    )
    .unwrap();
    let printed = run(
        &receiver,
        artifacts::PYTHON_ANALYST_AGENT,
        &[
            "--tool",
            artifacts::CALCULATOR,
            "--tool",
            artifacts::PYTHON_TEXT_TOOLS,
            "--tool",
            artifacts::PYTHON_CODE_RUNNER,
            "--llm",
            "scripted",
            "--script",
            script.to_str().unwrap(),
        ],
        "How many words, and what is 2 * (3 + 4)?",
    );
    assert!(printed.succeeded, "{}", printed.stderr);
    assert_eq!(
        printed.stdout,
        "calculate: 14 | stats: {\"words\": 7, \"sentences\": 2, \"words_per_sentence\": 3.5, \
         \"reading_seconds\": 2, \"flesch_reading_ease\": 106.6} | python: {\"stdout\": \"counting\\n\", \
         \"result\": \"5050\", \"error\": null}\n"
    );

    let spans = receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent analyst-agent [INTERNAL]
  analyst.step [INTERNAL]
    chat scripted-analyst [CLIENT]
    execute_tool calculate [INTERNAL]
    execute_tool text_stats [INTERNAL]
      text_stats.syllables [INTERNAL]
  analyst.step [INTERNAL]
    chat scripted-analyst [CLIENT]
    execute_tool run_python [INTERNAL]
      run_python.execute [INTERNAL]
  analyst.step [INTERNAL]
    chat scripted-analyst [CLIENT]
"
    );
    let agent = only(&spans, "invoke_agent analyst-agent");
    assert_strings(
        &agent.attributes,
        &[
            ("gen_ai.agent.name", "analyst-agent"),
            (
                "gen_ai.agent.description",
                "Answers questions about data and text by computing with tools.",
            ),
            ("glassbox.component", "analyst_agent.wasm"),
        ],
    );
    for (tool, component) in [
        ("calculate", "calculator.wasm"),
        ("text_stats", "text_tools.wasm"),
        ("run_python", "code_runner.wasm"),
    ] {
        let span = only(&spans, &format!("execute_tool {tool}"));
        assert_strings(&span.attributes, &[("glassbox.component", component)]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_agents_exceptions_fail_its_run_as_typed_errors_and_it_streams() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("script.toml");
    std::fs::write(&script, "[[turn]]\ncontent = \"Hello from the stream\"\n").unwrap();
    let agent = |input: &str| {
        run(
            &receiver,
            artifacts::PYTHON_TEST_AGENT,
            &[
                "--tool",
                artifacts::PYTHON_TEST_TOOLS,
                "--llm",
                "scripted",
                "--script",
                script.to_str().unwrap(),
            ],
            input,
        )
    };

    // An exception no code caught ends the run as `crashed`, with its traceback logged.
    let exploded = agent("explode");
    assert!(!exploded.succeeded);
    assert!(
        exploded
            .stderr
            .contains("the agent failed (trap): RuntimeError: told to explode"),
        "{}",
        exploded.stderr
    );
    assert!(
        exploded
            .stderr
            .contains("Traceback (most recent call last)"),
        "{}",
        exploded.stderr
    );
    // The SDK's exceptions reach the host as their WIT case.
    let refused = agent("refuse");
    assert!(!refused.succeeded);
    assert!(
        refused
            .stderr
            .contains("the agent failed (not_allowed): told to refuse"),
        "{}",
        refused.stderr
    );
    // Host errors reach Python as the SDK's exceptions.
    assert_eq!(
        agent("call no_such_tool {}").stdout,
        "NotFound: not found: no tool named `no_such_tool`; available: explode, fail, repeat, word_stats\n"
    );
    assert_eq!(
        agent(r#"call repeat {"text":"x","times":2}"#).stdout,
        "ok: x x\n"
    );
    let streamed = agent("stream hello there");
    assert!(streamed.succeeded, "{}", streamed.stderr);
    assert_eq!(streamed.stdout, "1 pieces: Hello from the stream (stop)\n");

    let spans = receiver.spans();
    assert_eq!(
        failed_with(
            &spans,
            "invoke_agent python-test-agent",
            "RuntimeError: told to explode"
        )
        .len(),
        1,
        "the failed run's span says why"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_code_runner_captures_output_and_errors_and_is_held_to_its_limits() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_in(
        dir.path(),
        &format!(
            "[agent]\npath = {:?}\n\n[[plugins]]\npath = {:?}\ntimeout = \"2s\"\nmemory = \"64 MiB\"\n",
            artifacts::TEST_AGENT,
            artifacts::PYTHON_CODE_RUNNER
        ),
    );
    let call = |code: &str| {
        let arguments = serde_json::json!({ "code": code }).to_string();
        let printed = run(
            &receiver,
            "--manifest",
            &[manifest.to_str().unwrap(), "--llm", "scripted"],
            &format!("call run_python {arguments}"),
        );
        assert!(printed.succeeded, "{}", printed.stderr);
        printed.stdout
    };

    assert_eq!(
        call("import math\nprint('roots'); [math.isqrt(n) for n in (4, 9, 16)]"),
        "ok: {\"stdout\": \"roots\\n\", \"result\": \"[2, 3, 4]\", \"error\": null}\n"
    );
    assert_eq!(
        call("import statistics, heapq\nstatistics.mean(heapq.nlargest(2, [1, 5, 3, 9]))"),
        "ok: {\"stdout\": \"\", \"result\": \"7\", \"error\": null}\n"
    );
    assert_eq!(
        call("print('before'); 1 / 0"),
        "ok: {\"stdout\": \"before\\n\", \"result\": null, \"error\": \"ZeroDivisionError: division by zero\"}\n"
    );
    assert_eq!(
        call("def broken(:"),
        "ok: {\"stdout\": \"\", \"result\": null, \"error\": \"SyntaxError: invalid syntax (<code>, line 1)\"}\n"
    );
    // No files and no state: each call is a fresh instance with nothing granted.
    let opened = call("open('/etc/passwd').read()");
    assert!(
        opened.contains("\"error\": \"FileNotFoundError"),
        "{opened}"
    );
    call("global_state = 1");
    assert!(call("global_state").contains("NameError"));
    // A loop without end is stopped at the time limit; a memory hog at the memory limit.
    let looped = call("while True: pass");
    assert!(looped.starts_with("timeout: "), "{looped}");
    let hog = call("chunks = []\nwhile True: chunks.append(bytearray(1 << 20))");
    assert!(
        hog.contains("MemoryError") || hog.starts_with("limit exceeded: "),
        "{hog}"
    );
    assert_eq!(
        call("6 * 7"),
        "ok: {\"stdout\": \"\", \"result\": \"42\", \"error\": null}\n"
    );

    // The code's own failure marks the code runner's span, not the tool call.
    let spans = receiver.spans();
    let failed = failed_with(&spans, "run_python.execute", "ZeroDivisionError");
    assert_eq!(failed.len(), 1);
    let call = parent_of(&spans, failed[0]).unwrap();
    assert_eq!(status(call).0, 0, "the call itself succeeded");
}

#[test]
fn python_and_javascript_components_of_the_wrong_world_are_refused_saying_what_they_are() {
    for (component, as_tool, expected) in [
        (
            artifacts::PYTHON_TEXT_TOOLS,
            false,
            "does not target the `agent` world: it is a `tool-plugin` component",
        ),
        (
            artifacts::JS_DATA_TOOLS,
            false,
            "does not target the `agent` world: it is a `tool-plugin` component",
        ),
        (
            artifacts::PYTHON_ANALYST_AGENT,
            true,
            "does not target the `tool-plugin` world: it is an `agent` component",
        ),
    ] {
        let mut command = glassbox();
        command.arg("run");
        if as_tool {
            command.args([artifacts::TEST_AGENT, "--tool", component]);
        } else {
            command.arg(component);
        }
        let output = command.args(["--input", "hi"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(&format!("{component}: {expected}")),
            "{stderr}"
        );
    }
}

#[test]
fn a_python_syntax_error_fails_the_build_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("app.py"),
        "from glassbox.tool import Tool, tool\n\n@tool\ndef broken(text: str) -> str:\n    return text +\n",
    )
    .unwrap();
    let output = std::process::Command::new(artifacts::COMPONENTIZE_PY)
        .args([
            "-w",
            "tool-plugin",
            "componentize",
            "-p",
            artifacts::PYTHON_SDK,
            "-p",
        ])
        .arg(dir.path())
        .args(["app", "-o"])
        .arg(dir.path().join("app.wasm"))
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("app.py\", line 5") && stderr.contains("SyntaxError"),
        "{stderr}"
    );
    assert!(!dir.path().join("app.wasm").exists());
}
