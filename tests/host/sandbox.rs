//! What a guest observes of the host: nothing that was not granted, a grant
//! reaches only the component it was made for, and every refusal is in the trace.

use crate::support::otlp::{hex, string, strings};
use crate::support::{
    TestHost, assert_strings, limited_tools, only, outline, run_agent, scripted, status, test_agent,
};
use axum::http::HeaderMap;
use glassbox::llm::ModelGrant;
use glassbox::sandbox::{DirGrant, Policy};
use glassbox::telemetry::OtlpProtocol;
use glassbox::{GuestError, RunError, RunRequest};
use std::sync::{Arc, Mutex};

async fn host() -> TestHost {
    TestHost::start(
        test_agent().await,
        limited_tools().await,
        scripted("[[turn]]\ncontent = \"hello\""),
        OtlpProtocol::Grpc,
    )
    .await
}

fn granted(input: impl Into<String>, policy: Policy) -> RunRequest {
    RunRequest {
        policy,
        ..RunRequest::text(input)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn files_are_reachable_only_as_granted() {
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("notes.txt"), "granted text").unwrap();
    let read_only = Policy {
        dirs: vec![DirGrant {
            host: data.path().into(),
            guest: "/data".into(),
            writable: false,
        }],
        ..Policy::default()
    };
    let read_write = Policy {
        dirs: vec![DirGrant {
            writable: true,
            ..read_only.dirs[0].clone()
        }],
        ..Policy::default()
    };
    let host = host().await;
    let repository = env!("CARGO_MANIFEST_DIR");
    let cases = [
        ("read /data/notes.txt", &read_only, "ok: granted text"),
        ("read /data/notes.txt", &Policy::default(), "tool failed: "),
        ("read /etc/passwd", &read_only, "tool failed: "),
        (
            "read /data/../../../../etc/passwd",
            &read_only,
            "tool failed: ",
        ),
        (
            &format!("read {repository}/Cargo.toml"),
            &read_only,
            "tool failed: ",
        ),
        ("write /data/new.txt written", &read_only, "tool failed: "),
        ("write /data/new.txt written", &read_write, "ok: "),
        // The agent's grant does not reach the tools it calls.
        (
            r#"call read_file {"path":"/data/notes.txt"}"#,
            &read_only,
            "tool failed: /data/notes.txt: ",
        ),
    ];
    for (input, policy, seen) in cases {
        let output = host
            .runtime
            .run(granted(input, policy.clone()))
            .await
            .unwrap();
        assert!(output.starts_with(seen), "{input}: the agent saw {output}");
    }
    assert_eq!(
        std::fs::read_to_string(data.path().join("new.txt")).unwrap(),
        "written"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    let granted_dirs: Vec<Vec<String>> = spans
        .iter()
        .filter(|s| s.name == "invoke_agent test-agent")
        .map(|s| strings(&s.attributes, "glassbox.sandbox.dirs").unwrap())
        .collect();
    assert!(granted_dirs.contains(&vec!["/data (ro)".to_owned()]));
    assert!(granted_dirs.contains(&vec!["/data (rw)".to_owned()]));
    assert!(granted_dirs.contains(&vec![]));
    host.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn environment_variables_are_visible_only_by_name() {
    let host = host().await;
    let nothing = host.runtime.run(RunRequest::text("env")).await.unwrap();
    assert_eq!(nothing, "[]", "HOME, PATH and every key stay hidden");

    let mut policy = Policy::default();
    policy.pass_env("PATH");
    let path = host.runtime.run(granted("env", policy)).await.unwrap();
    let seen: Vec<(String, String)> = serde_json::from_str(&path).unwrap();
    assert_eq!(seen, [("PATH".to_owned(), std::env::var("PATH").unwrap())]);
    host.flush().await;
    let spans = host.receiver.spans();
    let names: Vec<Vec<String>> = spans
        .iter()
        .map(|s| strings(&s.attributes, "glassbox.sandbox.env").unwrap())
        .collect();
    assert_eq!(
        names,
        [vec![], vec!["PATH".to_owned()]],
        "names, never values"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_socket_is_refused_and_the_attempt_recorded() {
    let host = host().await;
    let output = host
        .runtime
        .run(RunRequest::text(
            r#"call connect {"address":"127.0.0.1:9"}"#,
        ))
        .await
        .unwrap();
    assert_eq!(
        output,
        "not allowed: connecting to 127.0.0.1:9 failed: access-denied"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    let tool = only(&spans, "execute_tool connect");
    let denials: Vec<_> = tool
        .events
        .iter()
        .filter(|e| e.name == "glassbox.sandbox.denied")
        .map(|e| string(&e.attributes, "glassbox.sandbox.resource").unwrap())
        .collect();
    assert_eq!(denials, ["TCP connect 127.0.0.1:9"]);
    host.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_not_allowed_is_refused_on_its_span() {
    let host = host().await;
    let policy = Policy::default().granting(ModelGrant(vec!["scripted".into()]));
    let allowed = host
        .runtime
        .run(granted("model scripted", policy.clone()))
        .await
        .unwrap();
    assert_eq!(allowed, "ok: hello");
    let refused = host
        .runtime
        .run(granted("model gpt-5", policy))
        .await
        .unwrap();
    assert_eq!(
        refused,
        "not allowed: test_agent.wasm may not use model `gpt-5`; allowed: scripted"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    let span = only(&spans, "chat gpt-5");
    assert_strings(&span.attributes, &[("error.type", "sandbox_denied")]);
}

/// A web server on loopback that answers `hello` and keeps each request's `traceparent`.
async fn web_server() -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    web_server_keeping("traceparent").await
}

/// A web server on loopback that answers `hello` and keeps each request's `header`.
async fn web_server_keeping(header: &'static str) -> (String, Arc<Mutex<Vec<Option<String>>>>) {
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/hello",
        axum::routing::get(move |headers: HeaderMap| async move {
            let value = headers.get(header).map(|v| v.to_str().unwrap().to_owned());
            record.lock().unwrap().push(value);
            "hello from the web"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("127.0.0.1:{}", address.port()), seen)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_to_an_allowed_host_is_traced_and_carries_the_trace() {
    let (address, seen) = web_server().await;
    let host = host().await;
    let policy = Policy {
        hosts: vec![address.parse().unwrap()],
        ..Policy::default()
    };
    let output = host
        .runtime
        .run(granted(
            format!("fetch http://{address}/hello?key=sk-secret"),
            policy,
        ))
        .await
        .unwrap();
    assert_eq!(output, "ok: 200 hello from the web");
    host.flush().await;
    let spans = host.receiver.spans();
    assert_eq!(
        outline(&spans),
        "invoke_agent test-agent [INTERNAL]\n  GET [CLIENT]\n"
    );
    let get = only(&spans, "GET");
    let port = address.rsplit_once(':').unwrap().1;
    assert_strings(
        &get.attributes,
        &[
            ("http.request.method", "GET"),
            ("server.address", "127.0.0.1"),
            (
                "url.full",
                &format!("http://127.0.0.1:{port}/hello?key=REDACTED"),
            ),
            ("glassbox.component", "test_agent.wasm"),
        ],
    );
    assert_eq!(
        crate::support::otlp::int(&get.attributes, "http.response.status_code"),
        Some(200)
    );
    let expected = format!("00-{}-{}-01", hex(&get.trace_id), hex(&get.span_id));
    assert_eq!(*seen.lock().unwrap(), [Some(expected)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn http_to_a_host_not_allowed_never_leaves_and_is_recorded() {
    let (address, seen) = web_server().await;
    let host = host().await;
    let elsewhere = Policy {
        hosts: vec!["api.example.com".parse().unwrap()],
        ..Policy::default()
    };
    let url = format!("http://{address}/hello");
    let by_agent = host
        .runtime
        .run(granted(format!("fetch {url}"), elsewhere))
        .await
        .unwrap();
    assert_eq!(
        by_agent,
        format!("not allowed: the host denied the request to {url}")
    );
    let by_tool = host
        .runtime
        .run(RunRequest::text(format!(r#"call fetch {{"url":"{url}"}}"#)))
        .await
        .unwrap();
    assert_eq!(
        by_tool,
        format!("not allowed: the host denied the request to {url}")
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the server"
    );

    host.flush().await;
    let spans = host.receiver.spans();
    let denied: Vec<_> = spans.iter().filter(|s| s.name == "GET").collect();
    assert_eq!(denied.len(), 2);
    for (span, component) in denied.iter().zip(["test_agent.wasm", "test_tools.wasm"]) {
        assert_strings(
            &span.attributes,
            &[
                ("error.type", "sandbox_denied"),
                ("server.address", "127.0.0.1"),
            ],
        );
        assert_eq!(
            status(span),
            (
                2,
                format!("http://{address} is not on the allow-list of {component}")
            )
        );
    }
    host.still_serves().await;
}

/// A credential grant adds its header to requests to its host, replacing
/// the guest's, and the secret appears nowhere the guest or the trace can see.
#[tokio::test(flavor = "multi_thread")]
async fn a_credential_reaches_its_host_and_nothing_else_sees_it() {
    const SECRET: &str = "sk-never-shown-4417";
    let (address, seen) = web_server_keeping("authorization").await;

    let allowed: glassbox::sandbox::HostPattern = address.parse().unwrap();
    let mut value = http::HeaderValue::from_str(&format!("Bearer {SECRET}")).unwrap();
    value.set_sensitive(true);
    let policy = Policy {
        hosts: vec![allowed.clone()],
        credentials: vec![glassbox::sandbox::HttpCredential {
            host: allowed,
            header: http::header::AUTHORIZATION,
            value,
        }],
        ..Policy::default()
    };
    let host = host().await;
    let output = host
        .runtime
        .run(granted(format!("fetch http://{address}/hello"), policy))
        .await
        .unwrap();
    assert_eq!(output, "ok: 200 hello from the web");
    assert_eq!(*seen.lock().unwrap(), [Some(format!("Bearer {SECRET}"))]);
    host.flush().await;
    let spans = host.receiver.spans();
    let get = only(&spans, "GET");
    assert_strings(
        &get.attributes,
        &[("glassbox.http.credential", "authorization")],
    );
    assert!(
        !format!("{spans:?}").contains(SECRET),
        "the secret is on no span"
    );
}

/// An allowed name that resolves to this machine (here, its own host name)
/// is not a way in: only a grant naming the address reaches it.
#[tokio::test(flavor = "multi_thread")]
async fn an_allowed_name_that_resolves_inside_the_host_is_refused() {
    use std::net::ToSocketAddrs;
    let (address, seen) = web_server().await;
    let port = address.rsplit_once(':').unwrap().1;
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_ascii_lowercase();
    let resolved: Vec<_> = (name.as_str(), 80).to_socket_addrs().unwrap().collect();
    assert!(
        resolved.iter().all(|a| a.ip().is_loopback()
            || matches!(a.ip(), std::net::IpAddr::V4(v4) if v4.is_private())),
        "this test needs the host name to resolve inside the machine: {resolved:?}"
    );
    let host = host().await;
    let policy = Policy {
        hosts: vec![format!("{name}:{port}").parse().unwrap()],
        ..Policy::default()
    };
    let url = format!("http://{name}:{port}/hello");
    let output = host
        .runtime
        .run(granted(format!("fetch {url}"), policy))
        .await
        .unwrap();
    assert_eq!(
        output,
        "tool failed: the request failed: ErrorCode::DestinationIpProhibited"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the server"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    let get = only(&spans, "GET");
    assert_strings(&get.attributes, &[("error.type", "sandbox_denied")]);
    assert!(
        status(get)
            .1
            .contains("allow_hosts must name the address itself"),
        "{:?}",
        status(get)
    );
}

const PROBE: &str = r#"
    [[turn]]
    tool_calls = [{ name = "probe" }]
    [[turn]]
    content = "{{result:probe}}"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_reaches_no_file_socket_variable_or_input_of_the_host() {
    let request = RunRequest {
        // A grant to the agent does not reach the tools it calls.
        policy: Policy {
            env: vec![("AGENT_ONLY".into(), "secret".into())],
            ..Policy::default()
        },
        ..RunRequest::text("What can you see?")
    };
    let outcome = run_agent(scripted(PROBE), OtlpProtocol::Grpc, request).await;
    let seen: serde_json::Value = serde_json::from_str(&outcome.result.unwrap()).unwrap();

    assert_eq!(
        seen["env"],
        serde_json::json!([]),
        "no environment variable is visible"
    );
    assert_eq!(
        seen["args"],
        serde_json::json!([]),
        "no command-line argument is visible"
    );
    for denied in [
        "read_root",
        "read_passwd",
        "write_tmp",
        "tcp",
        "dns",
        "stdin",
    ] {
        assert!(
            seen[denied].is_string(),
            "{denied} should fail, the tool saw {seen}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_grant_reaches_the_agent() {
    // The react agent reads REACT_MAX_STEPS; with one step, the demo cannot finish.
    let request = RunRequest {
        policy: Policy {
            env: vec![("REACT_MAX_STEPS".into(), "1".into())],
            ..Policy::default()
        },
        ..RunRequest::text("Paris or Lisbon?")
    };
    let outcome = run_agent(
        Arc::new(glassbox::llm::ScriptedProvider::demo()),
        OtlpProtocol::Grpc,
        request,
    )
    .await;
    let Err(RunError::Agent(GuestError::Timeout(message))) = &outcome.result else {
        panic!("{:?}", outcome.result)
    };
    assert_eq!(message, "no final answer within 1 steps");
    let spans: Vec<_> = outcome.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent react-agent [INTERNAL]
  react.step [INTERNAL]
    chat scripted-demo [CLIENT]
    execute_tool get_weather [INTERNAL]
    execute_tool get_weather [INTERNAL]
"
    );
}
