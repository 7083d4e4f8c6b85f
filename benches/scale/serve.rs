//! `glassbox serve` under load (section 8): requests per second and latency
//! for the demo agent over HTTP with keep-alive, at 1, 8 and 64 concurrent
//! clients, against the scripted provider and against a loopback
//! OpenAI-compatible server.

use crate::receiver::CountingReceiver;
use crate::report::{Row, Section};
use crate::soak::{ask, manifest, serve as spawn_serve};
use std::time::{Duration, Instant};

const CLIENTS: [usize; 3] = [1, 8, 64];
const LENGTH: Duration = Duration::from_secs(3);
const WARM_UP: usize = 50;
/// What the loopback model answers, and so what each run answers.
const ANSWER: &str = "Lisbon is warmer.";

pub async fn serve() -> Section {
    let receiver = CountingReceiver::start();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let openai = openai_stub().await;
    let mut rows = Vec::new();
    for (label, llm, env) in [
        (
            "scripted provider",
            "[llm]\nprovider = \"scripted\"\n",
            vec![],
        ),
        (
            "loopback OpenAI-compatible server",
            "",
            vec![
                ("OPENAI_BASE_URL", format!("http://{openai}/v1")),
                ("OPENAI_API_KEY", "bench".to_owned()),
            ],
        ),
    ] {
        let manifest = manifest(dir.path(), llm);
        let (mut server, address, _stderr) =
            spawn_serve(&manifest, receiver.endpoint(), dir.path(), &env);
        let url = format!("http://{address}/v1/agents/react-agent/runs");
        let client = reqwest::Client::new();
        for _ in 0..WARM_UP {
            ask(&client, &url).await;
        }
        for clients in CLIENTS {
            let (served, latencies) = load(&client, &url, clients).await;
            rows.push(Row {
                measurement: format!(
                    "{label}, {clients} concurrent client{}",
                    if clients == 1 { "" } else { "s" }
                ),
                result: format!(
                    "{:.0} requests/s, p50 {:.2} ms, p99 {:.2} ms",
                    served as f64 / LENGTH.as_secs_f64(),
                    percentile(&latencies, 0.5) * 1e3,
                    percentile(&latencies, 0.99) * 1e3
                ),
                target: String::new(),
                met: None,
            });
        }
        let _ = server.kill();
        let _ = server.wait();
    }
    Section {
        title: "8. `glassbox serve`".into(),
        rows,
        notes: vec![format!(
            "`glassbox serve` (release build) of the demo manifest (react agent, weather and \
             calculator) exporting every span over OTLP/gRPC to a loopback receiver in a \
             process of its own; each client sends one request after another over a kept-alive \
             connection for {} s, after {WARM_UP} warm-up requests. With the scripted provider a \
             run is the demo's (3 model calls, 3 tool calls); with the loopback server (an HTTP \
             server in the benchmark's process answering every chat completion at once) it is \
             one model call over HTTP. Server, clients and receiver share the 2 cores.",
            LENGTH.as_secs()
        )],
    }
}

/// `clients` clients asking one after another for [`LENGTH`]: the requests
/// served and each one's latency in seconds.
async fn load(client: &reqwest::Client, url: &str, clients: usize) -> (usize, Vec<f64>) {
    let until = Instant::now() + LENGTH;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url) = (client.clone(), url.to_owned());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while Instant::now() < until {
                    let started = Instant::now();
                    assert!(ask(&client, &url).await, "a served run failed");
                    latencies.push(started.elapsed().as_secs_f64());
                }
                latencies
            })
        })
        .collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("a client panicked"));
    }
    (latencies.len(), latencies)
}

fn percentile(samples: &[f64], quantile: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() - 1) as f64 * quantile).round() as usize]
}

/// An OpenAI-compatible chat completions endpoint on loopback that answers
/// [`ANSWER`] at once; its address.
async fn openai_stub() -> std::net::SocketAddr {
    async fn complete() -> axum::Json<serde_json::Value> {
        axum::Json(serde_json::json!({
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "model": "bench",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": ANSWER},
                "finish_reason": "stop"
            }],
            "usage": {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
        }))
    }
    let app = axum::Router::new().route("/v1/chat/completions", axum::routing::post(complete));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let address = listener.local_addr().expect("an address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}
