//! Agents calling agents in one host: the callee's span is a child of the
//! caller's in the same trace, grants are enforced, conversations carry
//! through, and nesting stops at the limit. Remote hosts that are down or
//! hang give typed errors on a CLIENT span.

use crate::support::otlp::{int, string};
use crate::support::{artifacts, engine, only, outline, status, test_agent, with_agents};
use glassbox::agents::{AgentGrant, RemoteAgent};
use glassbox::llm::ScriptedProvider;
use glassbox::manifest::Manifest;
use glassbox::sandbox::{Budget, Policy};
use glassbox::{AgentDirectory, AgentEntry, LocalAgent};
use glassbox::{GuestError, RunError, RunRequest};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn granting(agents: &[&str]) -> Policy {
    Policy::default().granting(AgentGrant(
        agents.iter().map(|name| name.to_string()).collect(),
    ))
}

/// The test agent known as `name`, granted `agents`.
async fn local(name: &str, agents: &[&str]) -> AgentEntry {
    AgentEntry::Local(Box::new(LocalAgent {
        component: test_agent().await.named(name),
        policy: granting(agents),
        budget: Budget::default(),
    }))
}

fn directory(entries: Vec<(&str, AgentEntry)>) -> AgentDirectory {
    let mut directory = AgentDirectory::default();
    for (name, entry) in entries {
        directory.add(name, entry).unwrap();
    }
    directory
}

fn request(input: &str, agents: &[&str]) -> RunRequest {
    RunRequest {
        conversation_id: Some("conv-1".into()),
        policy: granting(agents),
        ..RunRequest::text(input)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_calls_another_in_the_same_trace_and_conversation() {
    let agents = directory(vec![
        ("callee", local("callee", &[]).await),
        ("bystander", local("bystander", &[]).await),
    ]);
    let host = with_agents(
        test_agent().await,
        agents,
        Arc::new(ScriptedProvider::demo()),
    )
    .await;
    let run = |input: &'static str| host.runtime.run(request(input, &["callee"]));
    assert_eq!(run("ask callee echo hello").await.unwrap(), "ok: hello");
    assert_eq!(run("ask callee conversation").await.unwrap(), "ok: conv-1");
    assert_eq!(
        run("agents").await.unwrap(),
        "callee: Does what its input says."
    );
    host.flush().await;

    let spans = host.receiver.spans();
    let callers: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "invoke_agent test-agent")
        .collect();
    let callees: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "invoke_agent callee")
        .collect();
    assert_eq!(
        (callers.len(), callees.len()),
        (3, 2),
        "{}",
        outline(&spans)
    );
    for callee in callees {
        let caller = callers
            .iter()
            .find(|c| c.span_id == callee.parent_span_id)
            .expect("the callee's parent is a caller's span");
        assert_eq!(caller.trace_id, callee.trace_id);
        assert_eq!(callee.kind, 1, "INTERNAL");
        assert_eq!(
            string(&callee.attributes, "gen_ai.agent.name").unwrap(),
            "callee"
        );
        assert_eq!(
            string(&callee.attributes, "gen_ai.conversation.id").unwrap(),
            "conv-1"
        );
        assert_eq!(status(callee).0, 1, "OK");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_not_granted_or_not_defined_are_refused_on_their_span() {
    let agents = directory(vec![("other", local("other", &[]).await)]);
    let host = with_agents(
        test_agent().await,
        agents,
        Arc::new(ScriptedProvider::demo()),
    )
    .await;
    assert_eq!(
        host.runtime
            .run(request("ask other echo hi", &[]))
            .await
            .unwrap(),
        "not allowed: agent `other` is not granted to this agent (granted: nothing)"
    );
    assert_eq!(
        host.runtime
            .run(request("ask ghost echo hi", &["ghost"]))
            .await
            .unwrap(),
        "not found: no agent named `ghost` (granted: ghost)"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    let other = only(&spans, "invoke_agent other");
    assert_eq!(
        string(&other.attributes, "error.type").unwrap(),
        "not_allowed"
    );
    let ghost = only(&spans, "invoke_agent ghost");
    assert_eq!(
        string(&ghost.attributes, "error.type").unwrap(),
        "agent_not_found"
    );
    assert_eq!(status(ghost).0, 2, "ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_calling_each_other_stop_at_the_depth_limit() {
    let agents = directory(vec![("looper", local("looper", &["looper"]).await)]).with_max_depth(3);
    let host = with_agents(
        test_agent().await.named("looper"),
        agents,
        Arc::new(ScriptedProvider::demo()),
    )
    .await;
    let result = host.runtime.run(request("again looper", &["looper"])).await;
    match result {
        Err(RunError::Agent(GuestError::LimitExceeded(message))) => assert_eq!(
            message,
            "calling agent `looper` would nest agent calls 4 deep; the limit is 3"
        ),
        other => panic!("expected the depth limit, got {other:?}"),
    }
    host.flush().await;

    // The root run, three nested runs, and the refused fourth call: a chain.
    let spans = host.receiver.spans();
    let mut chain: Vec<_> = spans
        .iter()
        .filter(|s| s.name == "invoke_agent looper")
        .collect();
    assert_eq!(chain.len(), 5, "{}", outline(&spans));
    let root = chain
        .iter()
        .position(|s| s.parent_span_id.is_empty())
        .unwrap();
    let mut parent = chain.remove(root);
    while let Some(next) = chain
        .iter()
        .position(|s| s.parent_span_id == parent.span_id)
    {
        parent = chain.remove(next);
        assert_eq!(parent.trace_id, spans[0].trace_id);
    }
    assert!(chain.is_empty(), "the calls form one chain");
    assert_eq!(
        string(&parent.attributes, "error.type").unwrap(),
        "limit_exceeded"
    );
}

/// A runtime whose agent may call `remote`, an agent on another host.
async fn calling_remote(remote: RemoteAgent) -> crate::support::TestHost {
    let agents = directory(vec![("remote", AgentEntry::Remote(remote))]);
    with_agents(
        test_agent().await,
        agents,
        Arc::new(ScriptedProvider::demo()),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_host_that_is_down_is_unavailable_on_a_client_span() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}").parse().unwrap();
    let host = calling_remote(RemoteAgent::new("remote", url, Duration::from_secs(5))).await;
    let answer = host
        .runtime
        .run(request("ask remote echo hi", &["remote"]))
        .await
        .unwrap();
    assert!(
        answer.starts_with(&format!(
            "unavailable: cannot reach agent `remote` at http://127.0.0.1:{port}/: "
        )),
        "{answer}"
    );
    host.flush().await;
    let spans = host.receiver.spans();
    let client = only(&spans, "invoke_agent remote");
    assert_eq!(client.kind, 3, "CLIENT");
    assert_eq!(
        string(&client.attributes, "error.type").unwrap(),
        "unavailable"
    );
    assert_eq!(
        string(&client.attributes, "server.address").unwrap(),
        "127.0.0.1"
    );
    assert_eq!(
        int(&client.attributes, "server.port").unwrap(),
        i64::from(port)
    );
    assert_eq!(status(client).0, 2, "ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_host_that_hangs_times_out() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((connection, _)) = listener.accept().await {
            held.push(connection);
        }
    });
    let url = format!("http://{address}").parse().unwrap();
    let host = calling_remote(RemoteAgent::new("remote", url, Duration::from_millis(300))).await;
    let started = Instant::now();
    let answer = host
        .runtime
        .run(request("ask remote echo hi", &["remote"]))
        .await
        .unwrap();
    assert_eq!(
        answer,
        format!("timeout: agent `remote` at http://{address}/ did not answer within 300ms")
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    silent.abort();
    host.flush().await;
    let spans = host.receiver.spans();
    let client = only(&spans, "invoke_agent remote");
    assert_eq!(string(&client.attributes, "error.type").unwrap(), "timeout");
    assert_eq!(status(client).0, 2, "ERROR");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_must_define_every_agent_it_grants_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("glassbox.toml");
    let load = |text: String| async {
        std::fs::write(&path, text).unwrap();
        let manifest = Manifest::load(&path).unwrap();
        engine()
            .load_manifest(&manifest)
            .await
            .err()
            .unwrap()
            .to_string()
    };
    let agent = format!("[agent]\npath = {:?}\n", artifacts::TEST_AGENT);
    assert_eq!(
        load(format!("{agent}allow_agents = [\"nobody\"]\n")).await,
        "agent `test-agent` is granted agent `nobody`, which is not defined (defined: test-agent)"
    );
    assert_eq!(
        load(format!(
            "{agent}\n[[agents]]\npath = {:?}\n",
            artifacts::TEST_AGENT
        ))
        .await,
        "two agents are named `test-agent`; give one of them another `name`"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_remote_host_answering_nonsense_or_too_much_is_unavailable() {
    let app = axum::Router::new()
        .route(
            "/v1/agents/nonsense/runs",
            axum::routing::post(|| async { "<html>welcome to nginx</html>" }),
        )
        .route(
            "/v1/agents/flood/runs",
            axum::routing::post(|| async { "x".repeat(17 << 20) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let url: url::Url = format!("http://{address}").parse().unwrap();
    let remote = |name: &str| {
        AgentEntry::Remote(RemoteAgent::new(name, url.clone(), Duration::from_secs(10)))
    };
    let agents = directory(vec![
        ("nonsense", remote("nonsense")),
        ("flood", remote("flood")),
    ]);
    let host = with_agents(
        test_agent().await,
        agents,
        Arc::new(ScriptedProvider::demo()),
    )
    .await;
    let ask = |input: &'static str| host.runtime.run(request(input, &["nonsense", "flood"]));
    assert_eq!(
        ask("ask nonsense echo hi").await.unwrap(),
        format!(
            "unavailable: agent `nonsense` at http://{address}/ answered HTTP 200 with something that is not a run's result: <html>welcome to nginx</html>"
        )
    );
    assert_eq!(
        ask("ask flood echo hi").await.unwrap(),
        format!(
            "unavailable: agent `flood` at http://{address}/ answered HTTP 200 with something that is not a run's result: an answer over 16 MiB"
        )
    );
    server.abort();
}
