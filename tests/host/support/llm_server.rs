//! A mock OpenAI-compatible server on loopback: answers each chat or embeddings
//! request with the next scripted reply and records what it was sent.

use axum::Router;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

/// One scripted answer.
#[derive(Clone)]
pub enum Reply {
    /// 200 with this JSON body.
    Json(Value),
    /// This status and raw body, with an optional `retry-after` header.
    Status(u16, &'static str, Option<&'static str>),
    /// No answer for a minute: a provider still thinking.
    Hang,
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `/v1/chat/completions` or `/v1/embeddings`.
    pub path: String,
    pub authorization: Option<String>,
    pub body: Value,
}

pub struct MockLlm {
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for MockLlm {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl MockLlm {
    pub async fn start(replies: Vec<Reply>) -> Self {
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        let answer = move |uri: Uri, headers: HeaderMap, body: String| async move {
            let index = {
                let mut log = log.lock().unwrap();
                log.push(Received {
                    path: uri.path().to_owned(),
                    authorization: headers
                        .get(header::AUTHORIZATION)
                        .map(|v| v.to_str().unwrap().to_owned()),
                    body: serde_json::from_str(&body).unwrap(),
                });
                log.len() - 1
            };
            match replies.get(index) {
                Some(Reply::Json(value)) => axum::Json(value.clone()).into_response(),
                Some(Reply::Status(status, body, retry_after)) => {
                    let mut response: Response =
                        (StatusCode::from_u16(*status).unwrap(), *body).into_response();
                    if let Some(seconds) = retry_after {
                        response
                            .headers_mut()
                            .insert(header::RETRY_AFTER, seconds.parse().unwrap());
                    }
                    response
                }
                Some(Reply::Hang) => {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    StatusCode::GATEWAY_TIMEOUT.into_response()
                }
                None => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the mock has no reply left",
                )
                    .into_response(),
            }
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(answer.clone()))
            .route("/v1/embeddings", post(answer));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}/v1", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        MockLlm {
            base_url,
            received,
            server,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

/// A completion asking for `calls` as (id, name, arguments).
pub fn tool_calls(id: &str, calls: &[(&str, &str, &str)], usage: (u32, u32)) -> Reply {
    let calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, arguments)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}))
        .collect();
    Reply::Json(json!({
        "id": id,
        "object": "chat.completion",
        "model": "mock-model-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": null, "tool_calls": calls}, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1},
    }))
}

/// A completion answering `text`.
pub fn answer(id: &str, text: &str, usage: (u32, u32)) -> Reply {
    Reply::Json(json!({
        "id": id,
        "object": "chat.completion",
        "model": "mock-model-2025",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {
            "prompt_tokens": usage.0,
            "completion_tokens": usage.1,
            "total_tokens": usage.0 + usage.1,
            "prompt_tokens_details": {"cached_tokens": 7},
            "completion_tokens_details": {"reasoning_tokens": 3},
        },
    }))
}
