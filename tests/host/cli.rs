//! The `glassbox` binary: output, exit codes, one-line errors, and telemetry
//! configured the standard way, through `OTEL_*` variables.

use crate::support::llm_server::{MockLlm, Reply};
use crate::support::otlp::{Intake, REJECTION, Receiver, hex, string};
use crate::support::pki::Pki;
use crate::support::{artifacts, assert_strings, manifest_in, only, workflow_manifest};
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::path::Path;
use std::process::{Command, Output};

const QUESTION: &str =
    "Which is warmer right now, Paris or Lisbon, and by how many degrees Fahrenheit?";

/// The binary with a clean environment: no provider, no OTLP settings, and a
/// component cache of the tests' own.
pub(crate) fn glassbox() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_glassbox"));
    command.env(
        "GLASSBOX_CACHE_DIR",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache"),
    );
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_")
            || name.starts_with("OPENAI_")
            || name.starts_with("ANTHROPIC_")
            || name == "TRACEPARENT"
            || name == "GLASSBOX_LOG"
        {
            command.env_remove(name);
        }
    }
    command
}

/// What one `glassbox run` printed.
pub(crate) struct Printed {
    pub succeeded: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `agent` (or `--manifest`, its file first in `args`) on `input` with
/// `args` added, exporting to `receiver`.
pub(crate) fn run_exporting(
    receiver: &Receiver,
    agent: &str,
    args: &[&str],
    input: &str,
) -> Printed {
    let output = glassbox()
        .args(["run", agent])
        .args(args)
        .args(["--input", input])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .output()
        .unwrap();
    Printed {
        succeeded: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn demo(command: &mut Command) -> &mut Command {
    command.arg("run").arg(artifacts::REACT_AGENT).args([
        "--tool",
        artifacts::WEATHER,
        "--tool",
        artifacts::CALCULATOR,
        "--input",
        QUESTION,
    ])
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn expect_failure(output: &Output, code: i32) -> String {
    assert_eq!(
        output.status.code(),
        Some(code),
        "stderr: {}",
        text(&output.stderr)
    );
    let stderr = text(&output.stderr);
    let last = stderr.lines().last().unwrap_or_default().to_owned();
    assert!(last.starts_with("glassbox: error: "), "{stderr}");
    last
}

#[test]
fn the_demo_prints_the_answer_and_the_trace_tree() {
    let output = demo(&mut glassbox()).output().unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        text(&output.stdout),
        "Lisbon is warmer: 19 °C and sunny, against 14 °C and clear in Paris, a difference of 9 °F.\n"
    );
    assert!(
        stderr.contains("LLM provider: scripted (offline"),
        "{stderr}"
    );
    let tree: Vec<&str> = stderr
        .lines()
        .skip_while(|l| !l.starts_with("invoke_agent"))
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(tree.len(), 10, "{stderr}");
    assert!(
        tree[0].starts_with("invoke_agent react-agent  "),
        "{stderr}"
    );
    assert!(tree[1].starts_with("├── react.step  "), "{stderr}");
    assert!(
        tree[2].starts_with("│   ├── chat scripted-demo  ")
            && tree[2].contains("tokens 55 in / 14 out"),
        "{stderr}"
    );
    assert!(tree[8].starts_with("└── react.step  "), "{stderr}");
}

/// `OTEL_TRACES_EXPORTER=console` prints each span on stdout, in the SDK's
/// console format, before the answer (the last line), instead of the tree on stderr; over
/// MCP's stdio, where stdout is the protocol, it is refused.
#[test]
fn the_console_exporter_prints_spans_before_the_answer() {
    let output = demo(&mut glassbox())
        .env("OTEL_TRACES_EXPORTER", "console")
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.ends_with("\nLisbon is warmer: 19 °C and sunny, against 14 °C and clear in Paris, a difference of 9 °F.\n"),
        "{stdout}"
    );
    for span in [
        "invoke_agent react-agent",
        "chat scripted-demo",
        "execute_tool get_weather",
    ] {
        assert!(
            stdout.contains(&format!("Name         : {span}\n")),
            "{stdout}"
        );
    }
    assert!(stdout.contains("gen_ai.usage.input_tokens"), "{stdout}");
    assert!(!stderr.contains("└── react.step"), "no tree: {stderr}");

    let refused = glassbox()
        .args(["mcp", "--tool", artifacts::CALCULATOR])
        .env("OTEL_TRACES_EXPORTER", "console")
        .output()
        .unwrap();
    assert_eq!(
        expect_failure(&refused, 2),
        "glassbox: error: OTEL_*_EXPORTER=console prints to stdout, which carries the MCP protocol over stdio: use `otlp`, or serve with --listen"
    );
}

#[test]
fn the_input_can_come_from_stdin() {
    use std::io::Write;
    let run = |input: &str| {
        let mut child = glassbox()
            .args([
                "run",
                artifacts::REACT_AGENT,
                "--tool",
                artifacts::WEATHER,
                "--tool",
                artifacts::CALCULATOR,
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let output = run(QUESTION);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).starts_with("Lisbon is warmer"));

    let line = expect_failure(&run("  \n"), 2);
    assert_eq!(line, "glassbox: error: no input: stdin was empty");
}

#[test]
fn help_shows_an_example() {
    let output = glassbox().args(["run", "--help"]).output().unwrap();
    let help = text(&output.stdout);
    assert!(output.status.success());
    assert!(
        help.contains("Example:")
            && help.contains("glassbox run react_agent.wasm --plugins plugins/"),
        "{help}"
    );
    assert!(
        help.contains("--otlp-endpoint") && help.contains("--script"),
        "{help}"
    );
}

#[test]
fn tools_lists_every_tool_with_its_schema() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(artifacts::WEATHER, dir.path().join("weather.wasm")).unwrap();
    std::fs::copy(artifacts::CALCULATOR, dir.path().join("calculator.wasm")).unwrap();
    std::fs::write(dir.path().join("README.txt"), "not a plugin").unwrap();
    let output = glassbox()
        .arg("tools")
        .arg("--plugins")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(stdout.starts_with("calculate  ("), "{stdout}");
    assert!(
        stdout.contains("get_weather  (")
            && stdout.contains("\"required\": [\n      \"city\"\n    ]"),
        "{stdout}"
    );
}

#[test]
fn components_that_cannot_load_exit_2_with_one_line() {
    let line = expect_failure(
        &glassbox()
            .args(["run", artifacts::WEATHER, "--input", "hi"])
            .output()
            .unwrap(),
        2,
    );
    assert_eq!(
        line,
        format!(
            "glassbox: error: {}: does not target the `agent` world: it is a `tool-plugin` component",
            artifacts::WEATHER
        )
    );

    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.wasm");
    std::fs::write(&bogus, "hello").unwrap();
    let line = expect_failure(
        &demo(&mut glassbox())
            .arg("--tool")
            .arg(&bogus)
            .output()
            .unwrap(),
        2,
    );
    assert!(
        line.ends_with("bogus.wasm: not a WebAssembly file (it does not start with `\\0asm`)"),
        "{line}"
    );

    let line = expect_failure(
        &glassbox()
            .args([
                "run",
                artifacts::REACT_AGENT,
                "--input",
                "x",
                "--plugins",
                "/no/such/dir",
            ])
            .output()
            .unwrap(),
        2,
    );
    assert!(
        line.starts_with("glassbox: error: /no/such/dir: cannot list plugins"),
        "{line}"
    );

    let line = expect_failure(
        &demo(&mut glassbox())
            .args(["--traceparent", "00-nope"])
            .output()
            .unwrap(),
        2,
    );
    assert!(line.contains("is not a valid W3C traceparent"), "{line}");
}

#[test]
fn a_failing_provider_exits_1_without_leaking_the_key() {
    let secret = "sk-cli-secret-9b8a7c6d5e4f";
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = demo(&mut glassbox())
        .env("OPENAI_API_KEY", secret)
        .env("OPENAI_BASE_URL", format!("http://127.0.0.1:{port}/v1"))
        .output()
        .unwrap();
    let line = expect_failure(&output, 1);
    assert!(
        line.starts_with("glassbox: error: the agent failed (provider_error): cannot connect to"),
        "{line}"
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("LLM provider: openai at http://127.0.0.1:"),
        "{stderr}"
    );
    assert!(
        stderr.contains("ERROR provider_error"),
        "the tree shows the failure: {stderr}"
    );
    assert!(!stderr.contains(secret) && !text(&output.stdout).contains(secret));
}

#[tokio::test(flavor = "multi_thread")]
async fn otel_variables_configure_the_exporter_and_traceparent_joins_a_trace() {
    let receiver = Receiver::start(OtlpProtocol::HttpProtobuf).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let mut command = glassbox();
    demo(&mut command)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_SERVICE_NAME", "weather-desk")
        .env(
            "OTEL_RESOURCE_ATTRIBUTES",
            "deployment.environment=test,team=agents",
        )
        .env(
            "OTEL_EXPORTER_OTLP_HEADERS",
            "Authorization=Basic cHVibGljOnNlY3JldA==",
        )
        .env("TRACEPARENT", traceparent);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        !stderr.contains("invoke_agent"),
        "no tree when exporting: {stderr}"
    );

    let spans = receiver.resource_spans();
    assert_eq!(
        spans.len(),
        10,
        "{:?}",
        spans.iter().map(|(_, s)| &s.name).collect::<Vec<_>>()
    );
    let (resource, root) = spans
        .iter()
        .find(|(_, s)| s.name == "invoke_agent react-agent")
        .unwrap();
    assert_eq!(
        string(resource, "service.name").as_deref(),
        Some("weather-desk")
    );
    assert_eq!(
        string(resource, "deployment.environment").as_deref(),
        Some("test")
    );
    assert_eq!(string(resource, "team").as_deref(), Some("agents"));
    let authorizations = receiver.authorizations();
    assert!(
        !authorizations.is_empty()
            && authorizations
                .iter()
                .all(|a| a == "Basic cHVibGljOnNlY3JldA=="),
        "{authorizations:?}"
    );
    assert_eq!(hex(&root.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(hex(&root.parent_span_id), "00f067aa0ba902b7");
    assert!(spans.iter().all(|(_, s)| s.trace_id == root.trace_id));
    assert!(receiver.metric("gen_ai.client.token.usage").is_some());
}

/// `OTEL_EXPORTER_OTLP_COMPRESSION=gzip` compresses every request of every
/// signal, over both protocols, and the collector gets everything.
#[tokio::test(flavor = "multi_thread")]
async fn gzip_compression_applies_to_every_signal_over_both_protocols() {
    for (protocol, name) in [
        (OtlpProtocol::Grpc, "grpc"),
        (OtlpProtocol::HttpProtobuf, "http/protobuf"),
    ] {
        let receiver = Receiver::start(protocol).await;
        let mut command = glassbox();
        demo(&mut command)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", name)
            .env("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip");
        let output = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(receiver.spans().len(), 10, "{name}");
        assert!(receiver.metric("gen_ai.client.token.usage").is_some());
        let encodings = receiver.encodings();
        for signal in ["traces", "metrics"] {
            assert!(
                encodings.iter().any(|(s, _)| *s == signal),
                "{name}: no {signal} request: {encodings:?}"
            );
        }
        assert!(
            encodings.iter().all(|(_, encoding)| encoding == "gzip"),
            "{name}: {encodings:?}"
        );
    }
}

/// A collector whose certificate comes from an authority of its own, and
/// that takes only clients showing a certificate: the TLS variables get
/// every signal to it, over both protocols; without them nothing arrives.
#[tokio::test(flavor = "multi_thread")]
async fn tls_variables_reach_a_collector_with_its_own_authority_and_client_certificates() {
    let pki = Pki::new();
    for (protocol, name) in [
        (OtlpProtocol::Grpc, "grpc"),
        (OtlpProtocol::HttpProtobuf, "http/protobuf"),
    ] {
        let receiver = Receiver::start_tls(protocol, &pki).await;
        let export = |trusting: bool| {
            let mut command = glassbox();
            demo(&mut command)
                .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
                .env("OTEL_EXPORTER_OTLP_PROTOCOL", name);
            if trusting {
                command
                    .env("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.path("ca.pem"))
                    .env(
                        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                        pki.path("client.pem"),
                    )
                    .env("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.path("client.key"));
            }
            tokio::task::spawn_blocking(move || command.output().unwrap())
        };
        export(false).await.unwrap();
        assert!(
            receiver.is_empty(),
            "{name}: a collector nobody trusts got telemetry"
        );

        let output = export(true).await.unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        assert_eq!(
            receiver.spans().len(),
            10,
            "{name}: {}",
            text(&output.stderr)
        );
        assert!(
            receiver.metric("gen_ai.client.token.usage").is_some(),
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn otel_sdk_disabled_sends_and_prints_nothing() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let mut command = glassbox();
    demo(&mut command)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_SDK_DISABLED", "true");
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success());
    assert!(!text(&output.stderr).contains("invoke_agent"));
    assert!(receiver.is_empty(), "{}", receiver.dump());
}

#[test]
fn guest_output_goes_to_the_host_log_tagged_with_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("shout.toml");
    std::fs::write(
        &script,
        "[[turn]]\ntool_calls = [{ name = \"shout\", arguments = { words = \"hello there\" } }]\n[[turn]]\ncontent = \"{{result:shout}}\"\n",
    )
    .unwrap();
    let output = glassbox()
        .args([
            "run",
            artifacts::REACT_AGENT,
            "--tool",
            artifacts::TEST_TOOLS,
            "--input",
            "Shout!",
            "--no-trace-tree",
        ])
        .arg("--script")
        .arg(&script)
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(text(&output.stdout), "HELLO THERE\n");
    assert!(
        stderr
            .lines()
            .any(|l| l.ends_with("INFO [test_tools.wasm stdout] shouting: hello there")),
        "{stderr}"
    );
}

/// Starts the demo against a model that never answers, exporting to
/// `endpoint` over gRPC, and returns it once the model call is in flight.
async fn demo_waiting_on_the_model(llm: &MockLlm, endpoint: &str) -> std::process::Child {
    let child = demo(&mut glassbox())
        .env("OPENAI_BASE_URL", &llm.base_url)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting_since = std::time::Instant::now();
    while llm.received().is_empty() {
        assert!(
            waiting_since.elapsed().as_secs() < 30,
            "the agent never called the model"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child
}

fn signal(child: &std::process::Child, signal: &str) {
    let sent = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Ctrl-C and SIGTERM (what `timeout`, CI and Kubernetes send) both stop the
/// run, export its trace and say so, each with its exit code.
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_the_run_and_still_exports_its_trace() {
    for (sent, code, said) in [("-INT", 130, "interrupted"), ("-TERM", 143, "terminated")] {
        let llm = MockLlm::start(vec![Reply::Hang]).await;
        let receiver = Receiver::start(OtlpProtocol::Grpc).await;
        let child = demo_waiting_on_the_model(&llm, receiver.endpoint()).await;
        signal(&child, sent);
        let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(code), "{stderr}");
        assert!(
            stderr.contains(&format!("{said}; the trace so far was exported")),
            "{stderr}"
        );

        let spans = receiver.spans();
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
        for name in ["invoke_agent react-agent", "react.step", "chat gpt-4o-mini"] {
            assert!(names.contains(&name), "{name} was not exported: {names:?}");
        }
        for span in spans.iter().filter(|s| s.name != "react.step") {
            assert_eq!(
                string(&span.attributes, "error.type").as_deref(),
                Some("cancelled"),
                "{}",
                span.name
            );
        }
    }
}

/// A collector that accepts connections and never answers.
fn hung_collector() -> (std::net::TcpListener, String) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    (listener, endpoint)
}

/// Stopped while its trace is stuck on a hung collector, a second signal
/// ends the run at once instead of after every export has timed out.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_ends_a_run_stuck_exporting() {
    let llm = MockLlm::start(vec![Reply::Hang]).await;
    let (_collector, endpoint) = hung_collector();
    let child = demo_waiting_on_the_model(&llm, &endpoint).await;
    signal(&child, "-TERM");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let second = std::time::Instant::now();
    signal(&child, "-TERM");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("glassbox: terminated again; exiting without waiting"),
        "{stderr}"
    );
    assert!(
        second.elapsed() < std::time::Duration::from_secs(4),
        "the exports' own timeouts were waited out: {stderr}"
    );
}

/// With its collector down or hung, a run's exit warning says how many spans
/// were lost and why, not only the last error.
#[tokio::test(flavor = "multi_thread")]
async fn the_exit_warning_counts_the_spans_a_dead_or_hung_collector_cost() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let (_collector, hung) = hung_collector();
    for (endpoint, lost) in [
        (
            closed.as_str(),
            "10 spans were not delivered (0 on a full queue, 10 in 1 failed exports); the last failure: ",
        ),
        (
            hung.as_str(),
            "10 spans were not delivered (0 on a full queue, 10 in 1 failed exports); the last failure: Operation timed out after 2s",
        ),
    ] {
        let output = demo(&mut glassbox())
            .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("OTEL_BSP_EXPORT_TIMEOUT", "2000")
            .output()
            .unwrap();
        let stderr = text(&output.stderr);
        assert!(
            output.status.success(),
            "a collector costs no run: {stderr}"
        );
        assert!(
            stderr.contains(&format!(
                "glassbox: warning: exporting telemetry failed: traces: {lost}"
            )),
            "{endpoint}: {stderr}"
        );
    }
}

/// A malformed OTLP endpoint, from the flag or any of the variables, is bad
/// usage named as such, for `run` and `serve` alike: never a panic.
#[test]
fn a_malformed_otlp_endpoint_is_a_usage_error() {
    for endpoint in ["localhost:4318", "garbage", "http://[::1:4318"] {
        let output = demo(&mut glassbox())
            .args(["--otlp-endpoint", endpoint])
            .output()
            .unwrap();
        assert_eq!(
            expect_failure(&output, 2),
            format!(
                "glassbox: error: --otlp-endpoint: `{endpoint}` is not an http(s) URL such as `http://localhost:4318`"
            )
        );
        for variable in [
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
            "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
        ] {
            let output = glassbox()
                .args(["serve", artifacts::REACT_AGENT, "--listen", "127.0.0.1:0"])
                .env(variable, endpoint)
                .output()
                .unwrap();
            assert_eq!(
                expect_failure(&output, 2),
                format!(
                    "glassbox: error: {variable}: `{endpoint}` is not an http(s) URL such as `http://localhost:4318`"
                )
            );
        }
    }
}

/// A span export setting the exporter cannot honour stops the host at
/// start, naming the variable and never quoting a header's value.
#[test]
fn a_bad_span_export_setting_is_a_usage_error() {
    for (variable, value, said) in [
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key=secret,broken",
            "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not `key=value`",
        ),
        (
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
            "-1",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=-1 is not a positive whole number of milliseconds",
        ),
        (
            "OTEL_EXPORTER_OTLP_COMPRESSION",
            "zstd",
            "OTEL_EXPORTER_OTLP_COMPRESSION=zstd: spans can be sent with `gzip` or `none`",
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            "/nowhere/ca.pem",
            "OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read /nowhere/ca.pem: No such file or directory (os error 2)",
        ),
        (
            "OTEL_EXPORTER_OTLP_CLIENT_KEY",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
            "OTEL_EXPORTER_OTLP_CLIENT_KEY is set without its pair: mutual TLS needs both \
             OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE and OTEL_EXPORTER_OTLP_CLIENT_KEY",
        ),
    ] {
        let output = demo(&mut glassbox())
            .args(["--otlp-endpoint", "http://127.0.0.1:9"])
            .env(variable, value)
            .output()
            .unwrap();
        let error = expect_failure(&output, 2);
        assert_eq!(
            error,
            format!("glassbox: error: telemetry configuration: OTLP traces: {said}")
        );
        assert!(!text(&output.stderr).contains("secret"));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_stops_a_guest_stuck_in_a_loop() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("spin.toml");
    std::fs::write(
        &script,
        "[[turn]]\ntool_calls = [{ name = \"spin\" }]\n[[turn]]\ncontent = \"never\"\n",
    )
    .unwrap();
    let mut child = glassbox()
        .args([
            "run",
            artifacts::REACT_AGENT,
            "--tool",
            artifacts::TEST_TOOLS,
            "--input",
            "Spin.",
        ])
        .arg("--script")
        .arg(&script)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (status, stderr) = tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, Read};
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut seen = String::new();
        // Interrupt once the tool says it is spinning.
        while !seen.contains("[test_tools.wasm stdout] spinning") {
            assert_ne!(
                stderr.read_line(&mut seen).unwrap(),
                0,
                "the tool never started: {seen}"
            );
        }
        Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        stderr.read_to_string(&mut seen).unwrap();
        (child.wait().unwrap(), seen)
    })
    .await
    .unwrap();
    assert_eq!(status.code(), Some(130), "{stderr}");

    let spans = receiver.spans();
    let tool = spans
        .iter()
        .find(|s| s.name == "execute_tool spin")
        .expect("the tool span was exported");
    assert_strings(&tool.attributes, &[("error.type", "cancelled")]);
    let root = spans
        .iter()
        .find(|s| s.name == "invoke_agent react-agent")
        .unwrap();
    assert_strings(&root.attributes, &[("error.type", "cancelled")]);
}

/// A manifest in `dir` for the test agent (with `agent` keys) and the test
/// tools (with `tools` keys), granting the tools `dir/data` as `/data`.
fn granting_data_to_tools(dir: &Path, agent: &str, tools: &str) -> std::path::PathBuf {
    manifest_in(
        dir,
        &format!(
            "[agent]\npath = {:?}\n{agent}\n\n[[plugins]]\npath = {:?}\nallow_dirs = [{{ host = \"data\", guest = \"/data\" }}]\n{tools}\n",
            artifacts::TEST_AGENT,
            artifacts::TEST_TOOLS
        ),
    )
}

#[test]
fn a_manifest_grants_per_component_and_its_errors_name_the_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/notes.txt"), "for the tool only").unwrap();
    let manifest = granting_data_to_tools(dir.path(), "timeout = \"30s\"", "memory = \"64 MiB\"");
    let run = |input: &str| {
        glassbox()
            .args(["run", "--manifest"])
            .arg(&manifest)
            .args(["--input", input])
            .output()
            .unwrap()
    };
    let by_tool = run(r#"call read_file {"path":"/data/notes.txt"}"#);
    assert!(by_tool.status.success(), "{}", text(&by_tool.stderr));
    assert_eq!(text(&by_tool.stdout), "ok: for the tool only\n");
    let by_agent = run("read /data/notes.txt");
    assert!(text(&by_agent.stdout).starts_with("tool failed: "));

    std::fs::write(&manifest, "[agent]\npath = \"x.wasm\"\nallow_host = []\n").unwrap();
    let error = expect_failure(&run("hello"), 2);
    assert_eq!(
        error,
        format!(
            "glassbox: error: {}:3:1: unknown field `allow_host`, expected one of `name`, `path`, `url`, `description`, `allow_agents`, `workflow`, `env`, `allow_env`, `allow_dirs`, `allow_hosts`, `http_credentials`, `allow_models`, `memory`, `timeout`, `fuel`, `budget`, `token_env`, `instance`",
            manifest.display()
        )
    );
}

/// A guest that panics while loading costs one line, not its Wasm backtrace.
#[test]
fn a_panic_while_loading_is_one_line() {
    let output = glassbox()
        .args(["run", artifacts::TEST_AGENT, "--input", "hello"])
        .args(["--env", "TEST_AGENT_PANIC_IN_DESCRIBE=1"])
        .output()
        .unwrap();
    let error = expect_failure(&output, 2);
    assert_eq!(
        error,
        format!(
            "glassbox: error: {}: `describe` failed while loading: it trapped: wasm trap: wasm `unreachable` instruction executed",
            artifacts::TEST_AGENT
        )
    );
    let stderr = text(&output.stderr);
    assert!(!stderr.contains("wasm backtrace"), "{stderr}");
}

/// A tool stuck in a host call that never returns (opening a FIFO no one
/// writes to) is stopped at its time limit, and the process still exits.
#[test]
fn a_guest_stuck_in_a_blocking_host_call_does_not_hold_the_exit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("data")).unwrap();
    let made = Command::new("mkfifo")
        .arg(dir.path().join("data/pipe"))
        .status()
        .unwrap();
    assert!(made.success());
    let manifest = granting_data_to_tools(dir.path(), "", "timeout = \"1s\"");
    let mut child = glassbox()
        .args(["run", "--manifest"])
        .arg(&manifest)
        .args(["--input", r#"call read_file {"path":"/data/pipe"}"#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            child.kill().unwrap();
            panic!("the host did not exit after its guest's time limit");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        text(&output.stdout),
        "timeout: test_tools.wasm was stopped: it exceeded its time limit of 1s\n"
    );
}

#[test]
fn flags_grant_variables_by_name_and_limit_time() {
    let output = glassbox()
        .args(["run", artifacts::TEST_AGENT, "--llm", "scripted"])
        .args(["--allow-env", "HOME", "--input", "env"])
        .env("OPENAI_API_KEY", "sk-never-seen")
        .env("HOME", "/home/someone")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "[[\"HOME\",\"/home/someone\"]]\n");

    let spin = glassbox()
        .args(["run", artifacts::TEST_AGENT, "--timeout", "300ms"])
        .args(["--input", "spin"])
        .output()
        .unwrap();
    assert_eq!(
        expect_failure(&spin, 1),
        "glassbox: error: the agent was stopped: it exceeded its time limit of 300ms"
    );
}

#[test]
fn a_guest_printing_megabytes_is_capped_in_the_log() {
    let output = glassbox()
        .args([
            "run",
            artifacts::TEST_AGENT,
            "--tool",
            artifacts::TEST_TOOLS,
        ])
        .args([
            "--no-trace-tree",
            "--input",
            r#"call flood {"bytes":4000000}"#,
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    assert_eq!(text(&output.stdout), "ok: flooded\n");
    let stderr = text(&output.stderr);
    assert!(stderr.len() < 400_000, "{} bytes of log", stderr.len());
    assert!(
        stderr.contains("[glassbox: further stdout output not logged: over 256 KiB]"),
        "{}",
        &stderr[stderr.len() - 300..]
    );
}

#[test]
fn the_example_manifest_runs_the_demo() {
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../glassbox.toml")).unwrap();
    let built = std::path::Path::new(artifacts::REACT_AGENT)
        .parent()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_in(
        dir.path(),
        &example.replace(
            "\"target/wasm32-wasip2/release/",
            &format!("\"{}/", built.display()),
        ),
    );
    let output = glassbox()
        .args(["run", "--manifest"])
        .arg(&manifest)
        .args(["--input", QUESTION])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(text(&output.stdout).starts_with("Lisbon is warmer"));
    assert!(stderr.contains("execute_tool calculate"), "{stderr}");
}

#[test]
fn a_recorded_run_replays_without_a_provider() {
    let dir = tempfile::tempdir().unwrap();
    let cassette = dir.path().join("demo.jsonl");
    let recorded = demo(&mut glassbox())
        .arg("--record")
        .arg(&cassette)
        .output()
        .unwrap();
    assert!(recorded.status.success(), "{}", text(&recorded.stderr));
    assert_eq!(
        std::fs::read_to_string(&cassette).unwrap().lines().count(),
        3
    );

    // The provider named for the replay is never reached: nothing listens
    // there. Its default model must be the recorded one, as requests must match.
    let replayed = demo(&mut glassbox())
        .arg("--replay")
        .arg(&cassette)
        .args(["--llm", "openai", "--llm-base-url", "http://127.0.0.1:9/v1"])
        .args(["--model", "scripted-demo"])
        .output()
        .unwrap();
    let stderr = text(&replayed.stderr);
    assert!(replayed.status.success(), "{stderr}");
    assert_eq!(text(&replayed.stdout), text(&recorded.stdout));
    assert!(stderr.contains("replaying"), "{stderr}");

    let changed = glassbox()
        .args(["run", artifacts::REACT_AGENT, "--tool", artifacts::WEATHER])
        .args(["--input", "Is Rome warmer?", "--replay"])
        .arg(&cassette)
        .output()
        .unwrap();
    let last = expect_failure(&changed, 1);
    assert!(
        last.contains("replay: model call 1 differs from the cassette"),
        "{last}"
    );

    let both = demo(&mut glassbox())
        .arg("--record")
        .arg(&cassette)
        .arg("--replay")
        .arg(&cassette)
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2));
}

#[test]
fn a_second_run_loads_compiled_components_and_a_damaged_entry_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let run = || {
        let output = demo(&mut glassbox())
            .arg("--cache-dir")
            .arg(&cache)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", text(&output.stderr));
        (text(&output.stdout), text(&output.stderr))
    };
    let entries = || {
        let mut entries: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                (entry.path(), entry.metadata().unwrap().modified().unwrap())
            })
            .collect();
        entries.sort();
        entries
    };

    let (first_answer, _) = run();
    let compiled = entries();
    assert_eq!(compiled.len(), 3, "the agent and two plugins: {compiled:?}");
    let (second_answer, stderr) = run();
    assert_eq!(second_answer, first_answer);
    assert!(!stderr.contains("compiling"), "{stderr}");
    assert_eq!(entries(), compiled, "loaded, not rewritten");

    // `glassbox tools` loads plugins as `run` does, from the same entries.
    let listed = glassbox()
        .args(["tools", "--tool", artifacts::WEATHER, "--cache-dir"])
        .arg(&cache)
        .output()
        .unwrap();
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(
        !text(&listed.stderr).contains("compiling"),
        "{}",
        text(&listed.stderr)
    );
    assert_eq!(entries(), compiled, "shared with run");

    let (damaged, _) = &compiled[0];
    let mut bytes = std::fs::read(damaged).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(damaged, &bytes).unwrap();
    let (answer, stderr) = run();
    assert_eq!(answer, first_answer);
    assert!(
        stderr.contains("the cache entry is corrupt (its checksum does not match); compiling the component again"),
        "{stderr}"
    );
    let (_, stderr) = run();
    assert!(!stderr.contains("compiling"), "rebuilt whole: {stderr}");

    let uncached = tempfile::tempdir().unwrap();
    let output = demo(&mut glassbox())
        .env("GLASSBOX_CACHE_DIR", uncached.path())
        .arg("--no-cache")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_dir(uncached.path()).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_planner_example_delegates_to_two_workers_in_one_workflow_trace() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let mut command = glassbox();
    command
        .args(["run", "--manifest"])
        .arg(workflow_manifest(dir.path()))
        .args(["--conversation-id", "trip-42", "--input"])
        .arg("Plan a day out in Lisbon for three: the weather, and the museum tickets at 24 euros each?")
        .args(["--otlp-endpoint", receiver.endpoint(), "--otlp-protocol", "grpc"]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let answer = text(&output.stdout);
    assert!(
        answer.starts_with("Weather: Lisbon today: ")
            && answer.contains("Tickets: three tickets cost 72 euros."),
        "{answer}"
    );

    let spans: Vec<_> = receiver
        .resource_spans()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let workflow = only(&spans, "invoke_workflow day-planner");
    assert!(
        workflow.parent_span_id.is_empty(),
        "the workflow is the root"
    );
    assert_eq!(
        string(&workflow.attributes, "gen_ai.operation.name").as_deref(),
        Some("invoke_workflow")
    );
    assert_eq!(
        string(&workflow.attributes, "gen_ai.workflow.name").as_deref(),
        Some("day-planner")
    );
    let planner = only(&spans, "invoke_agent planner");
    assert_eq!(planner.parent_span_id, workflow.span_id);
    for worker in ["weather-worker", "math-worker"] {
        let run = only(&spans, &format!("invoke_agent {worker}"));
        assert_eq!(
            run.parent_span_id, planner.span_id,
            "{worker} runs under the planner"
        );
        assert_eq!(
            string(&run.attributes, "gen_ai.conversation.id").as_deref(),
            Some("trip-42")
        );
        let within_run = |span: &&Span| {
            let mut parent = &span.parent_span_id;
            while let Some(up) = spans.iter().find(|s| &s.span_id == parent) {
                if up.span_id == run.span_id {
                    return true;
                }
                parent = &up.parent_span_id;
            }
            false
        };
        assert_eq!(
            spans
                .iter()
                .filter(|s| s.name.starts_with("execute_tool"))
                .filter(within_run)
                .count(),
            1,
            "{worker} makes its one tool call within its run"
        );
    }
    assert!(spans.iter().all(|s| s.trace_id == workflow.trace_id));
    assert_eq!(
        string(&planner.attributes, "gen_ai.conversation.id").as_deref(),
        Some("trip-42")
    );
}

/// Files named on the command line are read only when they are regular
/// files of a sensible size: `/dev/zero` and a FIFO get a clear error at once
/// instead of growing the process or blocking it.
#[test]
fn special_and_oversized_input_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let huge = dir.path().join("huge.toml");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(17 * 1024 * 1024)
        .unwrap();
    for special in [Path::new("/dev/zero"), fifo.as_path()] {
        let name = special.display();
        for (flag, says) in [
            (
                "--manifest",
                format!("{name}: cannot read: it is not a regular file (a FIFO, socket or device)"),
            ),
            (
                "--script",
                format!("script {name}: it is not a regular file (a FIFO, socket or device)"),
            ),
            (
                "--replay",
                format!("cassette {name}: it is not a regular file (a FIFO, socket or device)"),
            ),
            (
                "--prices",
                format!("price file {name}: it is not a regular file (a FIFO, socket or device)"),
            ),
            (
                "--tool",
                format!("{name}: cannot read: it is not a regular file (a FIFO, socket or device)"),
            ),
        ] {
            let mut command = glassbox();
            command.arg("run");
            if flag != "--manifest" {
                command.arg(artifacts::REACT_AGENT);
            }
            if flag == "--script" {
                command.args(["--llm", "scripted"]);
            }
            let output = command
                .arg(flag)
                .arg(special)
                .args(["--input", "hello"])
                .output()
                .unwrap();
            assert_eq!(
                expect_failure(&output, 2),
                format!("glassbox: error: {says}"),
                "{flag}"
            );
        }
    }
    let output = glassbox()
        .args(["run", "--input", "hello", "--manifest"])
        .arg(&huge)
        .output()
        .unwrap();
    assert_eq!(
        expect_failure(&output, 2),
        format!(
            "glassbox: error: {}: cannot read: it holds 17.0 MiB, over the limit of 16.0 MiB",
            huge.display()
        )
    );
}

/// Nothing a guest says reaches the terminal raw: escape sequences, carriage
/// returns and newlines in its output, its spans and its errors are shown as
/// escapes, so it can neither recolour the screen nor forge lines.
#[test]
fn guest_text_reaches_the_terminal_escaped() {
    let output = glassbox()
        .args([
            "run",
            artifacts::TEST_AGENT,
            "--tool",
            artifacts::TEST_TOOLS,
        ])
        .args([
            "--input",
            "call shout {\"words\":\"\\u001b[2Jcleared\\rINFO fake\"}",
        ])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("shouting: \\u{1b}[2Jcleared\\rINFO fake"),
        "{stderr}"
    );
    assert!(
        !stderr.contains('\u{1b}') && !stderr.contains('\r'),
        "{stderr:?}"
    );

    let output = glassbox()
        .args([
            "run",
            artifacts::TEST_AGENT,
            "--input",
            "forge",
            "--trace-tree",
        ])
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("chat gpt-4o\\n└── chat gpt-4o  0.1ms  tokens 999999 in / 1 out\\r"),
        "{stderr}"
    );
    assert!(
        !stderr
            .lines()
            .any(|line| line.trim_start().starts_with("└── chat gpt-4o  0.1ms")),
        "a guest forged a line of the tree: {stderr}"
    );
}

/// Runs the demo exporting each span in a batch of its own over gRPC to
/// `endpoint`, so that each is a request; what it wrote to stderr.
fn demo_exporting_span_by_span(endpoint: &str) -> String {
    let output = demo(&mut glassbox())
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// A collector that stays down costs one warning for the outage, however
/// many exports fail, and the count at exit.
#[test]
fn a_long_outage_is_logged_once_and_counted() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let stderr = demo_exporting_span_by_span(&closed);
    let warnings = stderr
        .lines()
        .filter(|line| line.contains("spans failed"))
        .count();
    assert_eq!(warnings, 1, "{stderr}");
    assert!(
        stderr.contains("further failures are counted, not logged, until an export succeeds"),
        "{stderr}"
    );
    // Each failed export retries first, so some batches may still be waiting at exit.
    assert!(
        stderr.contains("traces: 10 spans were not delivered (0 on a full queue, "),
        "{stderr}"
    );
}

/// A collector that takes every batch but rejects some of its spans (an
/// OTLP partial success) is warned of once, however many batches it answers so.
#[tokio::test(flavor = "multi_thread")]
async fn a_collector_rejecting_spans_is_warned_of_once() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    receiver.set_intake(Intake::RejectOne);
    let stderr = demo_exporting_span_by_span(receiver.endpoint());
    assert_eq!(receiver.spans().len(), 10, "every batch was taken");
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains("the collector rejected"))
        .collect();
    assert_eq!(warnings.len(), 1, "{stderr}");
    assert!(
        warnings[0].contains(&format!(
            "the collector rejected 1 of the spans sent: {REJECTION}; further rejections are not logged"
        )),
        "{stderr}"
    );
}

/// A guest that makes spans, events and log records without end, each far
/// larger than the host keeps, costs the host a bounded number of each, a
/// bounded log, and a bounded amount of memory; what was dropped is said once.
#[tokio::test(flavor = "multi_thread")]
async fn a_guest_flooding_telemetry_is_held_to_its_bounds() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let mut child = glassbox()
        .args(["run", artifacts::TEST_AGENT, "--input", "flood 1500"])
        .args(["--llm", "scripted", "--no-trace-tree"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let (output, peak) = tokio::task::spawn_blocking(move || {
        let status = format!("/proc/{}/status", child.id());
        let stderr = child.stderr.take().unwrap();
        let reading = std::thread::spawn(move || {
            let mut text = Vec::new();
            std::io::Read::read_to_end(&mut { stderr }, &mut text).unwrap();
            text
        });
        // The high-water mark of resident memory, as the kernel keeps it.
        let mut peak_kib = 0;
        while child.try_wait().unwrap().is_none() {
            if let Ok(text) = std::fs::read_to_string(&status)
                && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
            {
                peak_kib = line.split_whitespace().nth(1).unwrap().parse().unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let mut output = child.wait_with_output().unwrap();
        output.stderr = reading.join().unwrap();
        (output, peak_kib / 1024)
    })
    .await
    .unwrap();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "1500 flooded\n");

    let spans = receiver.spans();
    let guest: Vec<_> = spans
        .iter()
        .filter(|s| string(&s.attributes, "glassbox.span.origin").as_deref() == Some("guest"))
        .collect();
    assert_eq!(guest.len(), 1000, "spans an instance may record");
    for span in &guest {
        let bytes: usize = span
            .attributes
            .iter()
            .chain(span.events.iter().flat_map(|e| e.attributes.iter()))
            .map(|a| a.key.len() + format!("{:?}", a.value).len())
            .sum();
        assert!(bytes < 20 * 1024, "{} bytes on one span", bytes);
    }
    assert_eq!(
        receiver.logs().len(),
        1000,
        "records an instance may export"
    );

    let stderr = text(&output.stderr);
    assert!(stderr.len() < 512 * 1024, "{} bytes of log", stderr.len());
    let summaries: Vec<_> = stderr
        .lines()
        .filter(|l| l.contains("telemetry past its bounds was dropped"))
        .collect();
    assert_eq!(summaries.len(), 1, "said once: {summaries:?}");
    assert!(
        summaries[0].contains("500 spans (at most 1000, 256 open)")
            && summaries[0].contains("500 log records (at most 1000)"),
        "{}",
        summaries[0]
    );
    // The agent's 256 MiB memory limit plus a fixed margin (README, Security).
    assert!(peak < 256 + 192, "peak resident memory {peak} MiB");
}
