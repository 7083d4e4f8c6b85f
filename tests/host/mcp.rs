//! MCP both ways, against parts we did not write. `glassbox mcp` with the
//! official Python MCP SDK as its client (`tests/mcp/client.py`), over stdio
//! and Streamable HTTP: the tools listed with their schemas, each call one
//! SERVER `execute_tool` span with the MCP attributes in the client's trace, a
//! tool's failure an `isError` result, an unknown tool a protocol error, and
//! the server alive through all of it. And a FastMCP server
//! (`tests/mcp/server.py`) as a tool source of an agent, over both transports:
//! CLIENT spans whose context reaches the server, typed errors, timeouts.

use crate::cli::{glassbox, run_exporting};
use crate::support::otlp::{Receiver, hex, string};
use crate::support::{artifacts, manifest_in, only};
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::trace::v1::Span;
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

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Returns once a server listens on loopback `port`.
async fn listening(port: u16) {
    let waiting_since = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            waiting_since.elapsed().as_secs() < 60,
            "the server never listened"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Runs the client with `transport` arguments, presenting `token` over HTTP;
/// returns what it printed, one JSON value a line.
fn client(transport: &[&str], receiver: &Receiver, token: Option<&str>) -> Vec<Value> {
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
        .env("CLIENT_TOKEN", token.unwrap_or_default())
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
async fn an_mcp_client_lists_and_calls_a_manifests_tools_over_stdio_each_call_traced() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_in(
        dir.path(),
        &format!(
            "[agent]\npath = {:?}\n\n[[plugins]]\npath = {:?}\ntimeout = \"5s\"\n\n[[plugins]]\npath = {:?}\nmemory = \"64 MiB\"\n",
            artifacts::TEST_AGENT,
            artifacts::CALCULATOR,
            artifacts::TEST_TOOLS
        ),
    );
    let printed = client(
        &[
            "stdio",
            env!("CARGO_BIN_EXE_glassbox"),
            "mcp",
            "--manifest",
            manifest.to_str().unwrap(),
        ],
        &receiver,
        None,
    );
    check(&printed, &receiver, "pipe");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_client_lists_and_calls_tools_over_streamable_http_with_a_token_each_call_traced() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let made = glassbox().arg("token").output().unwrap();
    let token = String::from_utf8(made.stdout).unwrap().trim().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, &made.stderr).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let server = glassbox()
        .args(["mcp", "--listen", &listen, "--tool", artifacts::CALCULATOR])
        .args(["--tool", artifacts::TEST_TOOLS])
        .arg("--tokens")
        .arg(&tokens)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    listening(port).await;
    let url = format!("http://{listen}/mcp");
    // Without a token, or with a wrong one, nothing gets through.
    for authorization in [None, Some("Bearer not-a-token")] {
        let mut curl = Command::new("curl");
        curl.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            &url,
        ])
        .args(["-H", "content-type: application/json"])
        .args(["-H", "accept: application/json, text/event-stream"])
        .args(["-d", r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#]);
        if let Some(authorization) = authorization {
            curl.args(["-H", &format!("authorization: {authorization}")]);
        }
        let status = curl.output().unwrap();
        assert_eq!(String::from_utf8_lossy(&status.stdout), "401");
    }
    let printed = client(&["http", &url], &receiver, Some(&token));
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
fn glassbox_mcp_refuses_to_listen_beyond_loopback_without_tokens() {
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
        String::from_utf8_lossy(&output.stderr)
            .contains("without tokens: anyone who can reach it could call the tools"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The FastMCP server, started by `glassbox` on stdio or by the test on HTTP.
const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/mcp/server.py");

/// A manifest for the test agent with the MCP server `entry` (TOML keys).
fn manifest_with(dir: &tempfile::TempDir, entry: &str) -> String {
    let path = manifest_in(
        dir.path(),
        &format!(
            "[agent]\npath = {:?}\n\n[[mcp_servers]]\nname = \"weather-facts\"\nprefix = \"facts_\"\n{entry}",
            artifacts::TEST_AGENT
        ),
    );
    path.to_str().unwrap().to_owned()
}

/// Runs the test agent of `manifest` on `input`; returns what it answered.
fn ask(receiver: &Receiver, manifest: &str, input: &str) -> String {
    let printed = run_exporting(
        receiver,
        "--manifest",
        &[manifest, "--llm", "scripted"],
        input,
    );
    assert!(printed.succeeded, "{}", printed.stderr);
    printed.stdout.trim_end().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_uses_a_fastmcp_servers_tools_over_stdio_in_its_trace() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("server.pid");
    let manifest = manifest_with(
        &dir,
        &format!(
            "command = {:?}\nargs = [{SERVER:?}, \"stdio\"]\ntimeout = \"3s\"\n\
             env = {{ GREETING = \"hello\", PID_FILE = {:?}, OTEL_EXPORTER_OTLP_ENDPOINT = {:?} }}\n",
            python().display().to_string(),
            pid_file.display().to_string(),
            receiver.endpoint()
        ),
    );
    let ask = |input: &str| ask(&receiver, &manifest, input);

    assert_eq!(ask(r#"call facts_temperature {"city":"Paris"}"#), "ok: 14");
    let refused = ask("call facts_refuse {}");
    assert!(
        refused.starts_with("tool failed: ") && refused.contains("refused, as asked"),
        "{refused}"
    );
    let invalid = ask(r#"call facts_temperature {"city":5}"#);
    assert!(invalid.starts_with("invalid arguments: "), "{invalid}");
    let late = ask("call facts_slow {}");
    assert_eq!(
        late,
        "timeout: MCP server `weather-facts` did not answer in 3s"
    );
    // The server, still busy with the call, does not outlive the host.
    let pid = std::fs::read_to_string(&pid_file).unwrap();
    let alive = Command::new("kill")
        .args(["-0", pid.trim()])
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!alive.success(), "the MCP server {pid} outlived glassbox");
    // The server runs outside the sandbox, with only what the manifest passes.
    let environment = ask("call facts_environment {}");
    assert!(environment.contains("GREETING"), "{environment}");
    assert!(
        !environment.contains("PATH") && !environment.contains("HOME"),
        "{environment}"
    );
    let carried = ask("call facts_trace_context {}");
    let died = ask("call facts_die {}");
    assert!(
        died.starts_with("unavailable: MCP server `weather-facts`"),
        "{died}"
    );

    let spans = receiver.spans();
    let call = only(&spans, "execute_tool facts_trace_context");
    assert_eq!(
        carried,
        format!("ok: 00-{}-{}-01", hex(&call.trace_id), hex(&call.span_id)),
        "the call's span is the server's parent"
    );
    let temperature = spans
        .iter()
        .find(|s| {
            s.name == "execute_tool facts_temperature"
                && string(&s.attributes, "error.type").is_none()
        })
        .expect("the call that answered");
    assert_eq!(temperature.kind, SpanKind::Client as i32);
    for (key, value) in [
        ("mcp.method.name", "tools/call"),
        ("network.transport", "pipe"),
        ("glassbox.sandbox", "none"),
        ("glassbox.component", "mcp:weather-facts"),
    ] {
        assert_eq!(
            string(&temperature.attributes, key).as_deref(),
            Some(value),
            "{key}"
        );
    }
    served_under(&spans, temperature);
    let refused = only(&spans, "execute_tool facts_refuse");
    assert_eq!(
        string(&refused.attributes, "error.type").as_deref(),
        Some("tool_failed")
    );
}

/// The instrumented server's own span of `call` is its child, in the run's trace.
fn served_under(spans: &[Span], call: &Span) {
    let served: Vec<_> = spans
        .iter()
        .filter(|s| s.parent_span_id == call.span_id)
        .map(|s| s.name.as_str())
        .collect();
    assert!(
        served.iter().any(|name| name.contains("temperature")),
        "FastMCP's span of the call does not continue the trace: children {served:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_uses_a_fastmcp_servers_tools_over_streamable_http_and_a_dead_server_is_an_error()
{
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let port = free_port();
    let mut server = Command::new(python())
        .args([SERVER, "http", &port.to_string()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    listening(port).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with(&dir, &format!("url = \"http://127.0.0.1:{port}/mcp\"\n"));

    assert_eq!(
        ask(
            &receiver,
            &manifest,
            r#"call facts_temperature {"city":"Lisbon"}"#
        ),
        "ok: 19"
    );
    let spans = receiver.spans();
    let call = only(&spans, "execute_tool facts_temperature");
    assert_eq!(call.kind, SpanKind::Client as i32);
    assert_eq!(
        string(&call.attributes, "network.transport").as_deref(),
        Some("tcp")
    );
    assert_eq!(
        string(&call.attributes, "server.address").as_deref(),
        Some("127.0.0.1")
    );
    served_under(&spans, call);

    server.kill().unwrap();
    server.wait().unwrap();
    let error = fails_to_load_naming_the_server(&receiver, &manifest);
    assert!(
        error.contains(": cannot send initialize request: ") && !error.contains("rmcp::"),
        "{error}"
    );
}

/// `glassbox run` of `manifest` stops at the load with one error naming its
/// MCP server, which it returns.
fn fails_to_load_naming_the_server(receiver: &Receiver, manifest: &str) -> String {
    let printed = run_exporting(
        receiver,
        "--manifest",
        &[manifest],
        "call facts_temperature {}",
    );
    assert!(!printed.succeeded);
    let errors: Vec<_> = printed
        .stderr
        .lines()
        .filter(|line| line.to_lowercase().contains("error"))
        .collect();
    assert!(
        errors.len() == 1
            && errors[0].starts_with("glassbox: error: MCP server `weather-facts`: ")
            && printed.stderr.ends_with(&format!("{}\n", errors[0])),
        "{}",
        printed.stderr
    );
    errors[0].to_owned()
}

#[test]
fn an_mcp_server_over_plain_http_elsewhere_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with(&dir, "url = \"http://mcp.example.com/mcp\"\n");
    let output = glassbox()
        .args(["run", "--manifest", &manifest, "--input", "hi"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("an MCP server's URL must be https (http only on this machine)"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_mcp_server_that_answers_garbage_fails_the_load_naming_it() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest_with(
        &dir,
        "command = \"sh\"\nargs = [\"-c\", \"echo 'this is not JSON-RPC'; sleep 2\"]\n",
    );
    fails_to_load_naming_the_server(&receiver, &manifest);
}
