//! `glassbox mcp` with a client we did not write, the official Python MCP SDK
//! (`tests/mcp/client.py`), over stdio and Streamable HTTP: the tools listed
//! with their schemas, each call one SERVER `execute_tool` span with the MCP
//! attributes in the client's trace, a tool's failure an `isError` result, an
//! unknown tool a protocol error, and the server alive through all of it.

use crate::cli::glassbox;
use crate::support::otlp::{Receiver, hex, string};
use crate::support::{artifacts, only};
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// The Python of the virtualenv `scripts/guest-toolchains.sh` makes, which has the `mcp` SDK.
fn python() -> PathBuf {
    let venv = std::env::var_os("GLASSBOX_GUEST_VENV").map_or_else(
        || dirs::home_dir().unwrap().join(".cache/glassbox/guest-venv"),
        PathBuf::from,
    );
    venv.join("bin/python")
}

/// Runs the client with `transport` arguments; returns what it printed, one JSON value a line.
fn client(transport: &[&str], receiver: &Receiver) -> Vec<Value> {
    let calls = json!([
        ["calculate", {"expression": "6 * 7"}, format!("00-{TRACE_ID}-{PARENT_ID}-01")],
        ["calculate", {"expression": 6}, null],
        ["explode", {}, null],
        ["no_such_tool", {}, null],
    ]);
    // The environment `glassbox()` gives the binary, for the server the client starts.
    let template = glassbox();
    let mut command = Command::new(python());
    command
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/mcp/client.py"
        ))
        .args(transport)
        .env("CLIENT_CALLS", calls.to_string())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    for (name, value) in template.get_envs() {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let output = command.output().expect("the MCP client runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// What every transport must show: the listing, the four calls, and their spans.
fn check(printed: &[Value], receiver: &Receiver, transport: &str) {
    let tools = &printed[0]["tools"];
    assert_eq!(tools["calculate"]["required"], json!(["expression"]));
    assert!(tools.get("explode").is_some(), "{tools}");
    assert_eq!(
        printed[1],
        json!({"tool": "calculate", "is_error": false, "text": "42"})
    );
    assert_eq!(printed[2]["is_error"], true);
    let invalid = printed[2]["text"].as_str().unwrap();
    assert!(
        invalid.starts_with("invalid_arguments: the arguments do not match the tool's schema"),
        "{invalid}"
    );
    assert_eq!(printed[3]["is_error"], true);
    assert!(
        printed[3]["text"].as_str().unwrap().starts_with("trap: "),
        "{}",
        printed[3]
    );
    let unknown = printed[4]["protocol_error"].as_str().unwrap_or_default();
    assert!(
        unknown.contains("no tool named `no_such_tool`"),
        "{}",
        printed[4]
    );

    let spans = receiver.spans();
    let calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "execute_tool calculate")
        .collect();
    assert_eq!(calls.len(), 2, "one span per call");
    let traced = calls
        .iter()
        .find(|s| hex(&s.trace_id) == TRACE_ID)
        .expect("the call with a traceparent continues the client's trace");
    assert_eq!(hex(&traced.parent_span_id), PARENT_ID);
    assert_eq!(traced.kind, SpanKind::Server as i32);
    for (key, value) in [
        ("mcp.method.name", "tools/call"),
        ("network.transport", transport),
        ("gen_ai.operation.name", "execute_tool"),
        ("gen_ai.tool.name", "calculate"),
    ] {
        assert_eq!(
            string(&traced.attributes, key).as_deref(),
            Some(value),
            "{key}"
        );
    }
    assert!(string(&traced.attributes, "jsonrpc.request.id").is_some());
    assert!(string(&traced.attributes, "mcp.protocol.version").is_some());
    let untraced = calls.iter().find(|s| s.span_id != traced.span_id).unwrap();
    assert_ne!(
        untraced.trace_id, traced.trace_id,
        "a call without a traceparent starts its own trace"
    );
    assert_eq!(
        string(&untraced.attributes, "error.type").as_deref(),
        Some("tool_error")
    );
    let trapped = only(&spans, "execute_tool explode");
    assert_eq!(
        string(&trapped.attributes, "error.type").as_deref(),
        Some("tool_error")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_client_lists_and_calls_tools_over_stdio_each_call_traced() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let printed = client(
        &[
            "stdio",
            env!("CARGO_BIN_EXE_glassbox"),
            "mcp",
            "--tool",
            artifacts::CALCULATOR,
            "--tool",
            artifacts::TEST_TOOLS,
        ],
        &receiver,
    );
    check(&printed, &receiver, "pipe");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_client_lists_and_calls_tools_over_streamable_http_each_call_traced() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let server = glassbox()
        .args(["mcp", "--listen", &listen, "--tool", artifacts::CALCULATOR])
        .args(["--tool", artifacts::TEST_TOOLS])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting_since = std::time::Instant::now();
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(
            waiting_since.elapsed().as_secs() < 60,
            "the server never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let printed = client(&["http", &format!("http://{listen}/mcp")], &receiver);
    let stopped = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let output = tokio::task::spawn_blocking(move || server.wait_with_output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    check(&printed, &receiver, "tcp");
}

#[test]
fn glassbox_mcp_refuses_to_listen_beyond_loopback() {
    let output = glassbox()
        .args([
            "mcp",
            "--listen",
            "0.0.0.0:0",
            "--tool",
            artifacts::CALCULATOR,
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("only a loopback address is allowed"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
