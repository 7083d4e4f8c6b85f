//! `glassbox serve`: the HTTP API (JSON runs, Server-Sent Events, health,
//! errors), graceful shutdown, and one trace across two host processes, one
//! calling an agent on the other, both exporting to the same receiver.

use crate::cli::glassbox;
use crate::support::otlp::{Receiver, hex, string};
use crate::support::pki::Pki;
use crate::support::{Held, artifacts, only, outline, test_agent, with_agents};
use glassbox::llm::{Llm, ScriptedProvider};
use glassbox::sandbox::{Budget, Policy};
use glassbox::serve::{ServeOptions, Stopped, serve};
use glassbox::{AgentDirectory, AgentEntry, LocalAgent};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server in this process for `worker`, the test agent, exporting to its own receiver.
struct Served {
    receiver: Receiver,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<Stopped>>,
}

impl Served {
    async fn start(llm: impl Into<Llm>, drain: Duration) -> Self {
        let mut agents = AgentDirectory::default();
        let worker = LocalAgent {
            component: test_agent().await.named("worker"),
            policy: Policy::default(),
            budget: Budget::default(),
        };
        agents
            .add("worker", AgentEntry::Local(Box::new(worker)))
            .unwrap();
        let host = with_agents(test_agent().await, agents, llm).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel();
        let runtime = Arc::new(host.runtime);
        let server = tokio::spawn(async move {
            let options = ServeOptions {
                drain,
                ..ServeOptions::default()
            };
            let stopped = serve(
                runtime.clone(),
                listener,
                async move {
                    let _ = stopped.await;
                },
                options,
            )
            .await;
            let telemetry = runtime.telemetry().clone();
            tokio::task::spawn_blocking(move || telemetry.shutdown())
                .await
                .unwrap()
                .unwrap();
            stopped
        });
        Served {
            receiver: host.receiver,
            address,
            stop: Some(stop),
            server,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let response = reqwest::Client::new()
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn run(&self, body: Value) -> (u16, Value) {
        self.post("/v1/agents/worker/runs", body).await
    }

    /// Stops the server, waits for it, and flushes its telemetry.
    async fn shut_down(&mut self) -> Stopped {
        self.stop.take().unwrap().send(()).unwrap();
        (&mut self.server).await.unwrap().unwrap()
    }
}

fn demo() -> Arc<ScriptedProvider> {
    Arc::new(ScriptedProvider::demo())
}

#[tokio::test(flavor = "multi_thread")]
async fn runs_answer_in_json_and_join_the_callers_trace() {
    let mut served = Served::start(demo(), Duration::from_secs(5)).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(served.url(path)).send();
    let health: Value = get("/health").await.unwrap().json().await.unwrap();
    assert_eq!(health, json!({ "status": "ok", "runs_in_flight": 0 }));
    let agents: Value = get("/v1/agents").await.unwrap().json().await.unwrap();
    assert_eq!(
        agents,
        json!({ "agents": [{ "name": "worker", "description": "Does what its input says.", "version": "0.1.0" }] })
    );

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = client
        .post(served.url("/v1/agents/worker/runs"))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("baggage", "tenant=acme")
        .json(&json!({ "input": "conversation", "conversation_id": "c-1" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "output": "c-1", "trace_id": trace_id }));

    // A conversation given as messages (which the test agent refuses), with
    // no traceparent: a trace of its own.
    let (status, body) = served
        .run(json!({ "input": [{ "role": "user", "content": "echo hi" }] }))
        .await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["message"], "give a command as text");
    assert_ne!(body["trace_id"], json!(trace_id));

    assert_eq!(served.shut_down().await, Stopped::Drained);
    let spans = served.receiver.spans();
    let server = spans
        .iter()
        .find(|s| hex(&s.trace_id) == trace_id && s.kind == 2)
        .expect("a SERVER span in the caller's trace");
    assert_eq!(server.name, "POST /v1/agents/{name}/runs");
    assert_eq!(hex(&server.parent_span_id), "00f067aa0ba902b7");
    let run = spans
        .iter()
        .find(|s| s.name == "invoke_agent worker" && s.parent_span_id == server.span_id)
        .expect("the run under the SERVER span");
    assert_eq!(string(&run.attributes, "tenant").unwrap(), "acme");
    assert_eq!(
        string(&run.attributes, "gen_ai.conversation.id").unwrap(),
        "c-1"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_and_failed_runs_get_typed_json_errors() {
    let mut served = Served::start(demo(), Duration::from_secs(5)).await;
    let error_type = |body: &Value| body["error"]["type"].as_str().unwrap().to_owned();

    let (status, body) = served
        .post("/v1/agents/nobody/runs", json!({ "input": "echo hi" }))
        .await;
    assert_eq!((status, error_type(&body)), (404, "agent_not_found".into()));
    assert_eq!(
        body["error"]["message"],
        "no agent named `nobody` here (serving: worker)"
    );

    let (status, body) = served.run(json!({ "prompt": "echo hi" })).await;
    assert_eq!((status, error_type(&body)), (422, "invalid_request".into()));

    let malformed = reqwest::Client::new()
        .post(served.url("/v1/agents/worker/runs"))
        .header("content-type", "application/json")
        .body("{\"input\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);
    let body: Value = malformed.json().await.unwrap();
    assert_eq!(error_type(&body), "invalid_request");

    let deep = reqwest::Client::new()
        .post(served.url("/v1/agents/worker/runs"))
        .header("glassbox-agent-depth", "deep")
        .json(&json!({ "input": "echo hi" }))
        .send()
        .await
        .unwrap();
    assert_eq!(deep.status(), 400);

    let (status, body) = served.post("/v2/nothing", json!({})).await;
    assert_eq!((status, error_type(&body)), (404, "invalid_request".into()));

    // A wrong method and a name that is not UTF-8 are JSON errors too.
    let wrong_method = reqwest::Client::new()
        .delete(served.url("/v1/agents"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(error_type(&body), "invalid_request");
    let (status, body) = served
        .post("/v1/agents/%FF%FE/runs", json!({ "input": "x" }))
        .await;
    assert_eq!((status, error_type(&body)), (400, "invalid_request".into()));

    // The agent fails: 500 with its typed error and the trace to look at.
    let (status, body) = served.run(json!({ "input": "dance" })).await;
    assert_eq!(status, 500);
    assert_eq!(
        body["error"],
        json!({ "type": "invalid_request", "message": "unknown command `dance`" })
    );
    assert_eq!(body["trace_id"].as_str().unwrap().len(), 32);

    // The host stops the agent: the fault as the guest error a caller would see.
    let (status, body) = served.run(json!({ "input": "recurse" })).await;
    assert_eq!((status, error_type(&body)), (500, "trap".into()));
    assert_eq!(served.shut_down().await, Stopped::Drained);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_streamed_run_sends_each_step_then_its_answer() {
    let mut served = Served::start(demo(), Duration::from_secs(5)).await;
    let response = reqwest::Client::new()
        .post(served.url("/v1/agents/worker/runs"))
        .header("accept", "text/event-stream")
        .json(&json!({ "input": r#"call shout {"words":"hi"}"# }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let text = response.text().await.unwrap();
    let events: Vec<(String, Value)> = text
        .split("\n\n")
        .filter_map(|event| {
            let kind = event.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = event.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((kind.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect();
    let names: Vec<(&str, &str)> = events
        .iter()
        .map(|(kind, data)| {
            let name = data["name"].as_str().or(data["output"].as_str()).unwrap();
            (kind.as_str(), name)
        })
        .collect();
    assert_eq!(
        names,
        [
            ("step", "execute_tool shout"),
            ("step", "invoke_agent worker"),
            ("done", "ok: HI"),
        ],
        "{text}"
    );
    assert!(events[0].1["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(events[0].1["error"], Value::Null);

    let failing = reqwest::Client::new()
        .post(served.url("/v1/agents/worker/runs"))
        .header("accept", "text/event-stream")
        .json(&json!({ "input": "dance" }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(failing.contains("event: error\n"), "{failing}");
    assert!(failing.contains(r#""type":"invalid_request""#), "{failing}");
    assert_eq!(served.shut_down().await, Stopped::Drained);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_runs_in_flight_finish_within_the_drain_time() {
    let model = Arc::new(Held::default());
    let mut served = Served::start(model.clone(), Duration::from_secs(30)).await;
    let run = tokio::spawn({
        let url = served.url("/v1/agents/worker/runs");
        async move {
            reqwest::Client::new()
                .post(url)
                .json(&json!({ "input": "say hello" }))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    });
    model.until_waiting(1).await;
    let stop = served.stop.take().unwrap();
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!served.server.is_finished(), "the server waits for the run");
    // New connections are refused while draining.
    assert!(
        reqwest::Client::new()
            .get(served.url("/health"))
            .send()
            .await
            .is_err()
    );
    model.release.notify_one();
    assert_eq!(run.await.unwrap()["output"], "ok: released");
    assert_eq!(
        (&mut served.server).await.unwrap().unwrap(),
        Stopped::Drained
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_cancels_runs_still_going_after_the_drain_time() {
    let model = Arc::new(Held::default());
    let mut served = Served::start(model.clone(), Duration::from_millis(200)).await;
    let url = served.url("/v1/agents/worker/runs");
    let run = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .post(url)
            .json(&json!({ "input": "say hello" }))
            .send()
            .await
            .unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    });
    model.until_waiting(1).await;
    assert_eq!(served.shut_down().await, Stopped::Abandoned { runs: 1 });
    let (status, body) = run.await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(
        body["error"],
        json!({ "type": "unavailable", "message": "the host shut down before the run finished" })
    );
    let spans = served.receiver.spans();
    let cancelled = only(&spans, "invoke_agent worker");
    assert_eq!(
        string(&cancelled.attributes, "error.type").unwrap(),
        "cancelled",
        "{}",
        outline(&spans)
    );
}

/// The address a starting `glassbox serve` says it listens on; its stderr is
/// read on after that, so the server never blocks on a full pipe.
fn listening_address(child: &mut Child) -> String {
    listening_address_and_log(child).0
}

/// The address the server listens on (without its scheme), and what it
/// writes to stderr from then on, until it exits.
fn listening_address_and_log(child: &mut Child) -> (String, std::thread::JoinHandle<String>) {
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("the server exited before listening")
            .unwrap();
        let listening = line
            .split_once(" on http://")
            .or_else(|| line.split_once(" on https://"));
        if let Some((_, address)) = listening {
            break address.to_owned();
        }
    };
    let log =
        std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>().join("\n"));
    (address, log)
}

/// A manifest serving the test agent as `worker`, written into `dir`.
fn worker_manifest(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("worker.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nname = \"worker\"\npath = {:?}\n",
            artifacts::TEST_AGENT
        ),
    )
    .unwrap();
    path
}

/// A manifest serving the test agent as `front`, which may call `worker` on
/// the host at `worker_address`, its entry ending with `setting`; written into `dir`.
fn front_manifest(
    dir: &std::path::Path,
    worker_address: &str,
    setting: &str,
) -> std::path::PathBuf {
    let path = dir.join("front.toml");
    std::fs::write(
        &path,
        format!(
            "[agent]\nname = \"front\"\npath = {:?}\nallow_agents = [\"worker\"]\n\n\
             [[agents]]\nname = \"worker\"\nurl = \"http://{worker_address}\"\n{setting}\n",
            artifacts::TEST_AGENT
        ),
    )
    .unwrap();
    path
}

/// A `glassbox serve` process, and the address it listens on.
struct ServeProcess {
    child: Child,
    address: String,
}

impl ServeProcess {
    fn start(manifest: &std::path::Path, receiver: &Receiver) -> Self {
        Self::start_with(manifest, receiver, |_| {})
    }

    /// [`ServeProcess::start`], with `configure` adding to the command.
    fn start_with(
        manifest: &std::path::Path,
        receiver: &Receiver,
        configure: impl FnOnce(&mut std::process::Command),
    ) -> Self {
        let mut command = glassbox();
        command
            .args(["serve", "--manifest"])
            .arg(manifest)
            .args(["--listen", "127.0.0.1:0", "--llm", "scripted"])
            .args([
                "--otlp-endpoint",
                receiver.endpoint(),
                "--otlp-protocol",
                "grpc",
            ])
            .stderr(Stdio::piped());
        configure(&mut command);
        let mut child = command.spawn().unwrap();
        let address = listening_address(&mut child);
        ServeProcess { child, address }
    }

    fn stop(self) {
        terminate(self.child);
    }
}

/// Sends `child` SIGTERM, as an orchestrator stops a server.
fn sigterm(child: &Child) {
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
}

/// Stops a server with SIGTERM; it drains and flushes, then exits 0.
fn terminate(mut child: Child) {
    sigterm(&child);
    assert!(child.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn one_trace_across_two_host_processes() {
    let receiver = Receiver::start(glassbox::telemetry::OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let worker_manifest = worker_manifest(dir.path());
    let worker = ServeProcess::start(&worker_manifest, &receiver);
    let front_manifest = front_manifest(dir.path(), &worker.address, r#"timeout = "30s""#);
    let front = ServeProcess::start(&front_manifest, &receiver);

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = reqwest::Client::new()
        .post(format!("http://{}/v1/agents/front/runs", front.address))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .header("baggage", "tenant=acme")
        .json(&json!({ "input": "ask worker conversation", "conversation_id": "c-7" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "output": "ok: c-7", "trace_id": trace_id }));
    let (front_pid, worker_pid) = (front.child.id(), worker.child.id());
    front.stop();
    worker.stop();

    let spans = receiver.spans();
    assert!(
        spans.iter().all(|s| hex(&s.trace_id) == trace_id),
        "{}",
        outline(&spans)
    );
    let find = |name: &str, kind: i32, parent: &[u8]| {
        spans
            .iter()
            .find(|s| s.name == name && s.kind == kind && s.parent_span_id == parent)
            .unwrap_or_else(|| {
                panic!(
                    "no {name} (kind {kind}) under {}:\n{}",
                    hex(parent),
                    outline(&spans)
                )
            })
    };
    let caller_span: Vec<u8> = (0..16)
        .step_by(2)
        .map(|i| u8::from_str_radix(&"b7ad6b7169203331"[i..i + 2], 16).unwrap())
        .collect();
    let front_server = find("POST /v1/agents/{name}/runs", 2, &caller_span);
    let front_run = find("invoke_agent front", 1, &front_server.span_id);
    let client = find("invoke_agent worker", 3, &front_run.span_id);
    let worker_server = find("POST /v1/agents/{name}/runs", 2, &client.span_id);
    let worker_run = find("invoke_agent worker", 1, &worker_server.span_id);
    for run in [front_run, worker_run] {
        assert_eq!(string(&run.attributes, "tenant").unwrap(), "acme");
        assert_eq!(
            string(&run.attributes, "gen_ai.conversation.id").unwrap(),
            "c-7"
        );
    }
    assert_eq!(
        string(&client.attributes, "server.address").unwrap(),
        "127.0.0.1"
    );
    assert_ne!(front_pid, worker_pid);
}

/// A model that takes a moment over each answer, so runs overlap.
struct Deliberate(ScriptedProvider);

#[async_trait::async_trait]
impl glassbox::llm::LlmProvider for Deliberate {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn endpoint(&self) -> Option<glassbox::llm::Endpoint> {
        None
    }
    fn default_model(&self) -> &str {
        self.0.default_model()
    }
    async fn chat(
        &self,
        request: glassbox::llm::ChatRequest,
    ) -> Result<glassbox::llm::ChatResponse, glassbox::llm::LlmError> {
        tokio::time::sleep(Duration::from_millis(30)).await;
        self.0.chat(request).await
    }
}

/// More clients than instance slots: every run that is admitted finishes
/// with the right answer, and every other one is told at once to retry.
#[tokio::test(flavor = "multi_thread")]
async fn past_capacity_runs_are_refused_to_retry_and_admitted_runs_answer_right() {
    use crate::support::{react_agent_on, tools_on};
    let loader = glassbox::Loader::with_config(&glassbox::EngineConfig {
        pooling: Some(glassbox::PoolingConfig::new(4)),
        cache_dir: Some(concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache").into()),
        ..glassbox::EngineConfig::default()
    })
    .unwrap();
    let agent = react_agent_on(&loader).await;
    let mut agents = AgentDirectory::default();
    let react = LocalAgent {
        component: agent.clone(),
        policy: Policy::default(),
        budget: Budget::default(),
    };
    agents
        .add("react", AgentEntry::Local(Box::new(react)))
        .unwrap();
    let host = glassbox::Host::builder(agent, Arc::new(Deliberate(ScriptedProvider::demo())))
        .tools(tools_on(&loader).await)
        .agents(agents)
        .build();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(
        Arc::new(host),
        listener,
        async move {
            let _ = stopped.await;
        },
        ServeOptions {
            drain: Duration::from_secs(5),
            ..ServeOptions::default()
        },
    ));

    let client = reqwest::Client::new();
    let requests = (0..24).map(|_| {
        let client = client.clone();
        async move {
            let response = client
                .post(format!("http://{address}/v1/agents/react/runs"))
                .json(&json!({"input": "Which is warmer, Paris or Lisbon?"}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            (status, retry_after, body)
        }
    });
    let answers = futures_util::future::join_all(requests).await;
    let mut admitted = 0;
    let mut refused = 0;
    for (status, retry_after, body) in &answers {
        match status {
            200 => {
                admitted += 1;
                assert!(
                    body["output"]
                        .as_str()
                        .unwrap()
                        .starts_with("Lisbon is warmer"),
                    "an admitted run answers right: {body}"
                );
            }
            503 => {
                refused += 1;
                assert_eq!(body["error"]["type"], "unavailable", "{body}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("the host is at capacity: the run may need 1 of the pool's 4 agent instances at once"),
                    "{body}"
                );
                assert_eq!(retry_after.as_deref(), Some("1"));
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert!(
        admitted >= 1 && refused >= 1,
        "{admitted} admitted, {refused} refused"
    );
    stop.send(()).unwrap();
    assert_eq!(server.await.unwrap().unwrap(), Stopped::Drained);
}

/// `glassbox serve` of the test agent started with a soft limit of `files`
/// open files, and its address.
fn serve_with_few_files(files: u32) -> (Child, String) {
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -Sn {files} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_glassbox"))
        .args([
            "serve",
            artifacts::TEST_AGENT,
            "--listen",
            "127.0.0.1:0",
            "--llm",
            "scripted",
        ])
        .env(
            "GLASSBOX_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/component-cache"),
        )
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let address = listening_address(&mut child);
    (child, address)
}

/// Clients that send half a request and wait hold a file descriptor each:
/// more of them than the soft limit the server was started with neither
/// locks other clients out nor holds up shutdown for the drain time; idle
/// kept-alive connections are closed.
#[tokio::test(flavor = "multi_thread")]
async fn half_sent_requests_neither_lock_others_out_nor_hold_shutdown() {
    use tokio::io::AsyncWriteExt;
    let (mut child, address) = serve_with_few_files(256);
    let mut stalled = Vec::new();
    for _ in 0..300 {
        let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
        connection
            .write_all(b"POST /v1/agents/test-agent/runs HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        stalled.push(connection);
    }
    let health = reqwest::Client::new()
        .get(format!("http://{address}/health"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the server still answers");
    assert_eq!(health.status(), 200);

    // A kept-alive connection that sends nothing more is closed after the
    // header-read time, like a half-sent request.
    use tokio::io::AsyncReadExt;
    let mut idle = tokio::net::TcpStream::connect(&address).await.unwrap();
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0; 1024];
    assert!(idle.read(&mut answer).await.unwrap() > 0);
    let idle_since = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        while idle.read(&mut answer).await.unwrap_or(0) > 0 {}
    })
    .await;
    assert!(closed.is_ok(), "an idle connection was kept open");
    assert!(
        idle_since.elapsed() >= Duration::from_secs(9),
        "{:?}",
        idle_since.elapsed()
    );

    let stopping = std::time::Instant::now();
    sigterm(&child);
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    assert!(
        stopping.elapsed() < Duration::from_secs(20),
        "half-sent requests held shutdown for {:?}, near the 30 s drain time",
        stopping.elapsed()
    );
    drop(stalled);
}

/// `glassbox serve` of the test agent on a free loopback port, with the
/// scripted model and stderr piped (for [`listening_address`]); add options.
fn serving_test_agent() -> std::process::Command {
    let mut command = glassbox();
    command
        .args(["serve", artifacts::TEST_AGENT, "--listen", "127.0.0.1:0"])
        .args(["--llm", "scripted"])
        .stderr(Stdio::piped());
    command
}

/// `curl` against a served host: the body and the status code.
fn curl(url: &str, token: Option<&str>, body: Option<&str>) -> (String, u16) {
    curl_with(&[], url, token, body)
}

/// [`curl`] with more of curl's options.
fn curl_with(
    options: &[&str],
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (String, u16) {
    let mut command = std::process::Command::new("curl");
    command.args(["-s", "-w", "\n%{http_code}"]).args(options);
    if let Some(token) = token {
        command.args(["-H", &format!("Authorization: Bearer {token}")]);
    }
    if let Some(body) = body {
        command.args(["-H", "content-type: application/json", "-d", body]);
    }
    let output = command.arg(url).output().expect("curl runs");
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), status.parse().unwrap())
}

/// With `--tokens`, only a token's holder gets in, and only to its agents;
/// `/health` stays open; a refusal says nothing about the agents or any trace;
/// without tokens, a non-loopback address is refused.
#[tokio::test(flavor = "multi_thread")]
async fn tokens_admit_their_holders_to_their_agents_only() {
    let token = |agents: &str| {
        let output = glassbox()
            .args(["token", "--agents", agents])
            .output()
            .unwrap();
        assert!(output.status.success());
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim().to_owned();
        (text(&output.stdout), text(&output.stderr))
    };
    let (agent_token, agent_line) = token("test-agent");
    let (other_token, other_line) = token("someone-else");
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("{agent_line}\n{other_line}\n")).unwrap();
    assert!(
        !std::fs::read_to_string(&tokens)
            .unwrap()
            .contains(&agent_token)
    );

    let mut child = serving_test_agent()
        .arg("--tokens")
        .arg(&tokens)
        .spawn()
        .unwrap();
    let address = listening_address(&mut child);
    let url = move |path: &str| format!("http://{address}{path}");
    let run = Some(r#"{"input": "echo hello"}"#);
    tokio::task::spawn_blocking(move || {
        assert_eq!(curl(&url("/health"), None, None).1, 200);
        for presented in [None, Some("gbx_not-a-token")] {
            for (path, body) in [("/v1/agents", None), ("/v1/agents/test-agent/runs", run)] {
                let (answer, status) = curl(&url(path), presented, body);
                assert_eq!(status, 401, "{path}: {answer}");
                let answer: Value = serde_json::from_str(&answer).unwrap();
                assert_eq!(answer["error"]["type"], "not_allowed");
                assert!(answer.get("trace_id").is_none(), "{answer}");
                assert!(!answer.to_string().contains("test-agent"), "{answer}");
            }
        }
        let (answer, status) = curl(&url("/v1/agents/test-agent/runs"), Some(&agent_token), run);
        assert_eq!(
            (status, answer.contains("\"output\":\"hello\"")),
            (200, true),
            "{answer}"
        );
        let (answer, _) = curl(&url("/v1/agents"), Some(&other_token), None);
        assert_eq!(
            serde_json::from_str::<Value>(&answer).unwrap()["agents"],
            json!([])
        );
        let (answer, status) = curl(&url("/v1/agents/test-agent/runs"), Some(&other_token), run);
        assert_eq!(
            status, 404,
            "a token's holder sees only its agents: {answer}"
        );
    })
    .await
    .unwrap();
    terminate(child);

    let output = glassbox()
        .args(["serve", artifacts::TEST_AGENT, "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(
            "glassbox: error: refusing to serve 0.0.0.0:0 without tokens: anyone who can reach it could run the agents"
        ),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A remote agent whose host asks for a token is called with the token its
/// manifest entry names; without it, the call is refused as not allowed.
#[tokio::test(flavor = "multi_thread")]
async fn a_remote_agent_behind_tokens_is_called_with_its_token() {
    let receiver = Receiver::start(glassbox::telemetry::OtlpProtocol::Grpc).await;
    let dir = tempfile::tempdir().unwrap();
    let made = glassbox()
        .args(["token", "--agents", "worker"])
        .output()
        .unwrap();
    let token = String::from_utf8_lossy(&made.stdout).trim().to_owned();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, &made.stderr).unwrap();
    let worker_manifest = worker_manifest(dir.path());
    let worker = ServeProcess::start_with(&worker_manifest, &receiver, |command| {
        command.arg("--tokens").arg(&tokens);
    });
    let front_manifest =
        front_manifest(dir.path(), &worker.address, r#"token_env = "WORKER_TOKEN""#);
    let ask = |front: &ServeProcess| {
        let url = format!("http://{}/v1/agents/front/runs", front.address);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .json(&json!({ "input": "ask worker echo hi" }))
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()["output"].clone()
        }
    };
    let with_token = ServeProcess::start_with(&front_manifest, &receiver, |command| {
        command.env("WORKER_TOKEN", &token);
    });
    assert_eq!(ask(&with_token).await, json!("ok: hi"));
    with_token.stop();
    let without = ServeProcess::start_with(&front_manifest, &receiver, |command| {
        command.env("WORKER_TOKEN", "gbx_wrong");
    });
    let refused = ask(&without).await;
    assert!(
        refused
            .as_str()
            .unwrap()
            .starts_with("not allowed: agent `worker` at http://"),
        "{refused}"
    );
    without.stop();
    worker.stop();
}

/// The front door with everything on: HTTPS from certificate files (checked
/// by curl against the certificate), tokens with one run each at once, and
/// request limits, each refusal in JSON; nothing a client sends in a
/// malformed header reaches the log.
#[tokio::test(flavor = "multi_thread")]
async fn tls_tokens_and_request_limits_hold_at_the_front_door() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::new();
    let (certificate, key) = (pki.path("server.pem"), pki.path("server.key"));
    let output = glassbox().arg("token").output().unwrap();
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, &output.stderr).unwrap();

    let mut child = serving_test_agent()
        .args(["--timeout", "2s", "--max-body", "1 KiB"])
        .args(["--runs-per-token", "1", "--tokens"])
        .arg(&tokens)
        .arg("--tls-cert")
        .arg(&certificate)
        .arg("--tls-key")
        .arg(&key)
        .spawn()
        .unwrap();
    let (address, log) = listening_address_and_log(&mut child);
    let port = address.rsplit_once(':').unwrap().1.to_owned();
    let url = move |path: &str| format!("https://localhost:{port}{path}");
    let cacert = pki.path("ca.pem").to_str().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        let trusted = ["--cacert", cacert.as_str()];
        let json = |answer: &str| serde_json::from_str::<Value>(answer).unwrap();
        assert_eq!(curl_with(&trusted, &url("/health"), None, None).1, 200);
        // A client that does not trust the certificate gets no answer at all.
        assert_eq!(curl(&url("/health"), None, None).1, 0);
        let (answer, status) = curl_with(&trusted, &url("/v1/agents"), None, None);
        assert_eq!(
            (status, json(&answer)["error"]["type"].clone()),
            (401, json!("not_allowed"))
        );

        let echo = Some(r#"{"input": "echo hello"}"#);
        let runs = url("/v1/agents/test-agent/runs");
        let (answer, status) = curl_with(&trusted, &runs, Some(&token), echo);
        assert_eq!(
            (status, json(&answer)["output"].clone()),
            (200, json!("hello"))
        );

        let big = format!(r#"{{"input": "echo {}"}}"#, "x".repeat(2048));
        let (answer, status) = curl_with(&trusted, &runs, Some(&token), Some(&big));
        assert_eq!(status, 413, "{answer}");
        assert_eq!(json(&answer)["error"]["type"], "invalid_request");

        let mut crowded = trusted.to_vec();
        let headers: Vec<String> = (0..101).map(|i| format!("x-filler-{i}: x")).collect();
        for header in &headers {
            crowded.extend(["-H", header.as_str()]);
        }
        let (answer, status) = curl_with(&crowded, &url("/health"), None, None);
        assert_eq!(status, 431, "{answer}");
        assert!(
            json(&answer)["error"]["message"]
                .as_str()
                .unwrap()
                .contains("the most accepted are 100 fields"),
            "{answer}"
        );

        // The token's one run spins until its time limit; a second is refused meanwhile.
        let spinning = std::thread::spawn({
            let (runs, token, cacert) = (runs.clone(), token.clone(), trusted[1].to_owned());
            move || {
                curl_with(
                    &["--cacert", &cacert],
                    &runs,
                    Some(&token),
                    Some(r#"{"input": "spin"}"#),
                )
            }
        });
        std::thread::sleep(Duration::from_millis(700));
        let marked = ["-H", "baggage: leaked-secret-7731=%%%;;=="];
        let options = [trusted.as_slice(), marked.as_slice(), ["-i"].as_slice()].concat();
        let (answer, status) = curl_with(&options, &runs, Some(&token), echo);
        assert_eq!(status, 429, "{answer}");
        assert!(answer.to_lowercase().contains("retry-after: 1"), "{answer}");
        assert_eq!(spinning.join().unwrap().1, 500, "stopped at its time limit");
        let options = [trusted.as_slice(), marked.as_slice()].concat();
        let (answer, status) = curl_with(&options, &runs, Some(&token), echo);
        assert_eq!(status, 200, "the token's run ended: {answer}");
    })
    .await
    .unwrap();
    terminate(child);
    let log = log.join().unwrap();
    assert!(log.contains("no new runs"), "the log was read: {log}");
    assert!(!log.contains("leaked-secret-7731"), "{log}");
}
