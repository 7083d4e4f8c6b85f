//! A mock model server on loopback, speaking OpenAI's Chat Completions and
//! Anthropic's Messages APIs: answers each request with the next scripted
//! reply (JSON, an error status, Server-Sent Events whole or cut off) and
//! records what it was sent.

use axum::Router;
use axum::body::Body;
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
    /// 200 with these Server-Sent Events (each a `data:` payload, or a whole
    /// `event: ...\ndata: ...` message).
    Events(Vec<String>),
    /// These events, then the connection breaks.
    EventsCut(Vec<String>),
}

/// A request the server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// `/v1/chat/completions`, `/v1/embeddings` or `/v1/messages`.
    pub path: String,
    pub authorization: Option<String>,
    /// Anthropic's key header, and its version header.
    pub api_key: Option<String>,
    pub anthropic_version: Option<String>,
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
                    authorization: header_text(&headers, header::AUTHORIZATION.as_str()),
                    api_key: header_text(&headers, "x-api-key"),
                    anthropic_version: header_text(&headers, "anthropic-version"),
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
                Some(Reply::Events(events)) => event_stream(events, false),
                Some(Reply::EventsCut(events)) => event_stream(events, true),
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
            .route("/v1/embeddings", post(answer.clone()))
            .route("/v1/messages", post(answer));
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

    /// The base URL as Anthropic's clients take it, without `/v1`.
    pub fn anthropic_base_url(&self) -> &str {
        self.base_url.trim_end_matches("/v1")
    }
}

fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).map(|v| v.to_str().unwrap().to_owned())
}

/// An `text/event-stream` answer; `cut` breaks the connection after the events.
fn event_stream(events: &[String], cut: bool) -> Response {
    use futures_util::StreamExt;
    let chunks: Vec<Result<String, std::io::Error>> = events
        .iter()
        .map(|event| {
            Ok(if event.starts_with("event:") {
                format!("{event}\n\n")
            } else {
                format!("data: {event}\n\n")
            })
        })
        .collect();
    // The break comes once the events are surely on the wire, as in life.
    let the_break = futures_util::stream::once(async move {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        Err(std::io::Error::other("the connection broke"))
    })
    .take(usize::from(cut));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(
            futures_util::stream::iter(chunks).chain(the_break),
        ))
        .unwrap()
}

/// OpenAI streamed text: one chunk per piece, then the usage and `[DONE]`.
pub fn openai_text_stream(pieces: &[&str], usage: (u32, u32)) -> Vec<String> {
    let mut events: Vec<String> = pieces
        .iter()
        .map(|piece| {
            json!({"id": "chatcmpl-s1", "object": "chat.completion.chunk", "model": "mock-model-2025",
                   "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]})
            .to_string()
        })
        .collect();
    events.push(
        json!({"id": "chatcmpl-s1", "model": "mock-model-2025",
               "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        .to_string(),
    );
    events.push(
        json!({"id": "chatcmpl-s1", "model": "mock-model-2025", "choices": [],
               "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1}})
        .to_string(),
    );
    events.push("[DONE]".into());
    events
}

/// An Anthropic message answering `text`, with cache use reported.
pub fn anthropic_answer(text: &str) -> Reply {
    Reply::Json(json!({
        "id": "msg_2", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 20, "output_tokens": 10, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 5},
    }))
}

/// An Anthropic message calling one tool.
pub fn anthropic_tool_call(id: &str, name: &str, input: Value) -> Reply {
    Reply::Json(json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Let me check."}, {"type": "tool_use", "id": id, "name": name, "input": input}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 50, "output_tokens": 15},
    }))
}

/// Anthropic streamed events: some text, then a tool call whose input arrives in two fragments.
pub fn anthropic_tool_stream() -> Vec<String> {
    [
        json!({"type": "message_start", "message": {"id": "msg_s1", "model": "claude-haiku-4-5", "usage": {"input_tokens": 30, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Let me "}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "check."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 22}}),
        json!({"type": "message_stop"}),
    ]
    .iter()
    .map(|event| format!("event: {}\ndata: {event}", event["type"].as_str().unwrap()))
    .collect()
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
