//! Anthropic's Messages API over HTTP, whole or streamed. System messages
//! become the `system` field, tool results become `tool_result` blocks of a
//! user turn, and consecutive turns of one role are merged, as the API wants.
//! The API key is sent only in the `x-api-key` header.

use super::http::{ApiClient, Connection, RetryPolicy, SseDecoder, header_value};
use super::model::*;
use super::openai::DEFAULT_TIMEOUT;
use crate::env::var as env_var;
use eventsource_stream::Event;
use reqwest::header::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
/// The API requires `max_tokens`; this is sent when a request sets none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;
const API_VERSION: &str = "2023-06-01";

/// Settings for [`AnthropicProvider`].
#[derive(Clone, Debug)]
pub struct AnthropicConfig {
    pub connection: Connection,
    pub model: String,
}

impl AnthropicConfig {
    /// `ANTHROPIC_BASE_URL`, `ANTHROPIC_API_KEY` and `ANTHROPIC_MODEL`, with Anthropic's defaults.
    pub fn from_env() -> Self {
        AnthropicConfig {
            connection: Connection {
                base_url: env_var("ANTHROPIC_BASE_URL")
                    .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
                api_key: env_var("ANTHROPIC_API_KEY"),
                timeout: DEFAULT_TIMEOUT,
                retry: RetryPolicy::default(),
            },
            model: env_var("ANTHROPIC_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
        }
    }
}

pub struct AnthropicProvider {
    api: ApiClient,
    messages_url: url::Url,
    config: AnthropicConfig,
}

impl AnthropicProvider {
    pub fn new(config: AnthropicConfig) -> Result<Self, LlmError> {
        let mut headers = HeaderMap::new();
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        if let Some(key) = &config.connection.api_key {
            headers.insert("x-api-key", header_value(key)?);
        }
        let api = ApiClient::new(&config.connection, headers)?;
        Ok(AnthropicProvider {
            messages_url: api.url("v1/messages")?,
            api,
            config,
        })
    }
}

#[async_trait::async_trait]
impl super::LlmProvider for AnthropicProvider {
    fn name(&self) -> &'static str {
        "anthropic"
    }

    fn endpoint(&self) -> Option<Endpoint> {
        Some(self.api.endpoint().clone())
    }

    fn default_model(&self) -> &str {
        &self.config.model
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let wire: WireResponse = self
            .api
            .post_json(&self.messages_url, &WireRequest::new(&request, false)?)
            .await?;
        Ok(wire.into_response())
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let decoder = StreamDecoder {
            model: request.model.clone(),
            ..StreamDecoder::default()
        };
        self.api
            .post_events(
                &self.messages_url,
                &WireRequest::new(&request, true)?,
                decoder,
            )
            .await
    }
}

// The wire format of the Messages API.

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    system: String,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireTool<'a> {
    name: &'a str,
    description: &'a str,
    input_schema: Value,
}

impl<'a> WireRequest<'a> {
    fn new(request: &'a ChatRequest, stream: bool) -> Result<Self, LlmError> {
        let system = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        let mut messages: Vec<WireMessage> = Vec::new();
        for message in request.messages.iter().filter(|m| m.role != Role::System) {
            let (role, blocks) = blocks(message)?;
            match messages.last_mut() {
                Some(last) if last.role == role => last.content.extend(blocks),
                _ => messages.push(WireMessage {
                    role,
                    content: blocks,
                }),
            }
        }
        let tools = request
            .tools
            .iter()
            .map(|t| {
                Ok(WireTool {
                    name: &t.name,
                    description: &t.description,
                    input_schema: parse_json(&t.parameters, || {
                        format!("the parameter schema of tool `{}`", t.name)
                    })?,
                })
            })
            .collect::<Result<_, LlmError>>()?;
        Ok(WireRequest {
            model: &request.model,
            max_tokens: request.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            system,
            messages,
            tools,
            temperature: request.temperature,
            top_p: request.top_p,
            stop_sequences: &request.stop_sequences,
            stream,
        })
    }
}

/// The role and content blocks of one message; tool results speak as the user.
fn blocks(message: &Message) -> Result<(&'static str, Vec<Block<'_>>), LlmError> {
    if message.role == Role::Tool {
        let id = message
            .tool_call_id
            .as_deref()
            .ok_or_else(|| LlmError::InvalidRequest("a tool message has no tool_call_id".into()))?;
        return Ok((
            "user",
            vec![Block::ToolResult {
                tool_use_id: id,
                content: &message.content,
            }],
        ));
    }
    // The API refuses empty text blocks.
    let mut blocks: Vec<Block> = (!message.content.is_empty())
        .then_some(Block::Text {
            text: &message.content,
        })
        .into_iter()
        .collect();
    for call in &message.tool_calls {
        blocks.push(Block::ToolUse {
            id: &call.id,
            name: &call.name,
            input: parse_json(&call.arguments, || {
                format!("the arguments of tool call `{}`", call.id)
            })?,
        });
    }
    let role = if message.role == Role::Assistant {
        "assistant"
    } else {
        "user"
    };
    Ok((role, blocks))
}

fn parse_json(text: &str, what: impl Fn() -> String) -> Result<Value, LlmError> {
    if text.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_str(text)
        .map_err(|e| LlmError::InvalidRequest(format!("{} is not JSON: {e}", what())))
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: String,
    model: String,
    content: Vec<WireBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlock {
    Text {
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        input: Value,
    },
    /// Thinking and other blocks the WIT types have no place for.
    #[serde(other)]
    Other,
}

#[derive(Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u32>,
    #[serde(default)]
    output_tokens: Option<u32>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u32>,
    #[serde(default)]
    cache_read_input_tokens: Option<u32>,
}

impl WireUsage {
    /// Anthropic counts cached input apart from `input_tokens`; the GenAI
    /// conventions count it in, so it is added back.
    fn into_usage(self) -> Usage {
        let cached = self.cache_read_input_tokens.unwrap_or(0)
            + self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0) + cached,
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_input_tokens: self.cache_read_input_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens,
            reasoning_output_tokens: None,
        }
    }
}

fn finish_reason(stop_reason: Option<&str>) -> FinishReason {
    match stop_reason {
        Some("end_turn" | "stop_sequence") | None => FinishReason::Stop,
        Some("max_tokens") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        Some(_) => FinishReason::Other,
    }
}

impl WireResponse {
    fn into_response(self) -> ChatResponse {
        let mut message = Message::assistant("");
        for block in self.content {
            match block {
                WireBlock::Text { text } => message.content.push_str(&text),
                WireBlock::ToolUse { id, name, input } => message.tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input.to_string(),
                }),
                WireBlock::Other => {}
            }
        }
        ChatResponse {
            id: self.id,
            model: self.model,
            message,
            finish_reason: finish_reason(self.stop_reason.as_deref()),
            usage: self.usage.map(WireUsage::into_usage),
        }
    }
}

// The streamed form: message_start, content blocks with their deltas,
// message_delta with the stop reason and output usage, message_stop.

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStart,
    },
    ContentBlockStart {
        index: u32,
        content_block: WireBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: WireDelta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        delta: WireStop,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Ping,
    Error {
        error: super::http::ErrorDetail,
    },
}

#[derive(Deserialize)]
struct WireStart {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireStop {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Assembles a streamed message: text passes straight through, a tool call
/// leaves whole when its block stops.
#[derive(Default)]
struct StreamDecoder {
    /// The requested model, until `message_start` names the one answering.
    model: String,
    id: String,
    tool_calls: BTreeMap<u32, ToolCall>,
    usage: WireUsage,
    stop_reason: Option<String>,
    done: bool,
}

impl SseDecoder for StreamDecoder {
    fn decode(&mut self, event: &Event) -> Result<Vec<StreamEvent>, String> {
        let event: WireEvent = serde_json::from_str(&event.data).map_err(|e| e.to_string())?;
        Ok(match event {
            WireEvent::MessageStart { message } => {
                self.id = message.id;
                if !message.model.is_empty() {
                    self.model = message.model;
                }
                self.usage = message.usage;
                vec![]
            }
            WireEvent::ContentBlockStart {
                index,
                content_block: WireBlock::ToolUse { id, name, .. },
            } => {
                self.tool_calls.insert(
                    index,
                    ToolCall {
                        id,
                        name,
                        arguments: String::new(),
                    },
                );
                vec![]
            }
            WireEvent::ContentBlockStart { .. } => vec![],
            WireEvent::ContentBlockDelta { index, delta } => match delta {
                WireDelta::TextDelta { text } if !text.is_empty() => vec![StreamEvent::Text(text)],
                WireDelta::InputJsonDelta { partial_json } => {
                    let call = self
                        .tool_calls
                        .get_mut(&index)
                        .ok_or_else(|| format!("input for block {index}, which is no tool call"))?;
                    call.arguments.push_str(&partial_json);
                    vec![]
                }
                _ => vec![],
            },
            WireEvent::ContentBlockStop { index } => match self.tool_calls.remove(&index) {
                Some(mut call) => {
                    if call.arguments.trim().is_empty() {
                        call.arguments = "{}".into();
                    }
                    vec![StreamEvent::ToolCall(call)]
                }
                None => vec![],
            },
            WireEvent::MessageDelta { delta, usage } => {
                self.stop_reason = delta.stop_reason.or(self.stop_reason.take());
                if usage.output_tokens.is_some() {
                    self.usage.output_tokens = usage.output_tokens;
                }
                vec![]
            }
            WireEvent::MessageStop => {
                self.done = true;
                vec![StreamEvent::End(StreamEnd {
                    id: std::mem::take(&mut self.id),
                    model: std::mem::take(&mut self.model),
                    finish_reason: finish_reason(self.stop_reason.as_deref()),
                    usage: Some(std::mem::take(&mut self.usage).into_usage()),
                })]
            }
            WireEvent::Ping => vec![],
            WireEvent::Error { error } => return Err(error.message),
        })
    }

    fn finished(&self) -> bool {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_messages_lift_out_and_tool_results_join_one_user_turn() {
        let request = ChatRequest {
            model: "claude".into(),
            messages: vec![
                Message::text(Role::System, "Be brief."),
                Message::text(Role::User, "Weather?"),
                Message {
                    tool_calls: vec![
                        ToolCall {
                            id: "t1".into(),
                            name: "get_weather".into(),
                            arguments: r#"{"city":"Paris"}"#.into(),
                        },
                        ToolCall {
                            id: "t2".into(),
                            name: "get_weather".into(),
                            arguments: String::new(),
                        },
                    ],
                    ..Message::text(Role::Assistant, "")
                },
                Message {
                    tool_call_id: Some("t1".into()),
                    ..Message::text(Role::Tool, "14 °C")
                },
                Message {
                    tool_call_id: Some("t2".into()),
                    ..Message::text(Role::Tool, "19 °C")
                },
            ],
            tools: vec![],
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop_sequences: vec![],
            seed: Some(7),
        };
        let wire = serde_json::to_value(WireRequest::new(&request, false).unwrap()).unwrap();
        assert_eq!(
            wire,
            serde_json::json!({
                "model": "claude",
                "max_tokens": DEFAULT_MAX_TOKENS,
                "system": "Be brief.",
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
                    {"role": "assistant", "content": [
                        {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"city": "Paris"}},
                        {"type": "tool_use", "id": "t2", "name": "get_weather", "input": {}},
                    ]},
                    {"role": "user", "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "14 °C"},
                        {"type": "tool_result", "tool_use_id": "t2", "content": "19 °C"},
                    ]},
                ],
            })
        );
    }
}
