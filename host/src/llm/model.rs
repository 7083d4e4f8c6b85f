//! Provider-neutral chat types. Providers speak only these; the Wasm layer
//! converts to and from the WIT types at the import boundary. They serialize
//! as the records of a cassette (see `cassette.rs`).

use futures_util::stream::BoxStream;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// JSON object, encoded.
    pub arguments: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub tool_call_id: Option<String>,
}

impl Message {
    /// A message of text only.
    pub fn text(role: Role, content: impl Into<String>) -> Self {
        Message {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// An assistant message holding `content` and no tool calls.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::text(Role::Assistant, content)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON Schema, encoded.
    pub parameters: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<Message>,
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f32>,
    pub max_tokens: Option<u32>,
    pub top_p: Option<f32>,
    pub stop_sequences: Vec<String>,
    pub seed: Option<i64>,
}

impl ChatRequest {
    /// Bytes of text the request carries: messages, tool calls and tool definitions.
    pub fn text_len(&self) -> usize {
        let messages: usize = self
            .messages
            .iter()
            .map(|m| {
                m.content.len()
                    + m.tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.len())
                        .sum::<usize>()
            })
            .sum();
        let tools: usize = self
            .tools
            .iter()
            .map(|t| t.name.len() + t.description.len() + t.parameters.len())
            .sum();
        messages + tools
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
    ToolCalls,
    ContentFilter,
    Other,
}

impl FinishReason {
    /// The value recorded in `gen_ai.response.finish_reasons`.
    pub fn as_str(self) -> &'static str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other => "other",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u32,
    pub output_tokens: u32,
    pub cache_read_input_tokens: Option<u32>,
    pub cache_creation_input_tokens: Option<u32>,
    pub reasoning_output_tokens: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub id: String,
    pub model: String,
    pub message: Message,
    pub finish_reason: FinishReason,
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsRequest {
    pub model: String,
    pub inputs: Vec<String>,
    pub dimensions: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingsResponse {
    pub model: String,
    pub embeddings: Vec<Vec<f32>>,
    pub usage: Option<Usage>,
}

/// Why a provider call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmError {
    #[error("rate limited: {message}")]
    RateLimited {
        message: String,
        #[serde(with = "optional_millis", rename = "retry_after_ms")]
        retry_after: Option<Duration>,
    },
    #[error("timed out: {0}")]
    Timeout(String),
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("not allowed: {0}")]
    NotAllowed(String),
    #[error("provider error: {0}")]
    Provider(String),
}

impl LlmError {
    /// The `error.type` recorded for this failure.
    pub fn error_type(&self) -> &'static str {
        use crate::telemetry::semconv::error_type;
        match self {
            LlmError::RateLimited { .. } => error_type::RATE_LIMITED,
            LlmError::Timeout(_) => error_type::TIMEOUT,
            LlmError::InvalidRequest(_) => error_type::INVALID_REQUEST,
            LlmError::NotAllowed(_) => error_type::NOT_ALLOWED,
            LlmError::Provider(_) => error_type::PROVIDER,
        }
    }
}

/// Durations as whole milliseconds, readable in a cassette.
mod optional_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(value: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        let millis = value.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        serde::Serialize::serialize(&millis, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}

/// One step of a streamed answer, as a provider delivers it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamEvent {
    /// Text the model added to its answer.
    Text(String),
    /// A tool call, complete: providers assemble the argument fragments.
    ToolCall(ToolCall),
    /// The end of the answer.
    End(StreamEnd),
}

/// What a stream reports once the answer is complete.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamEnd {
    pub id: String,
    pub model: String,
    pub finish_reason: FinishReason,
    pub usage: Option<Usage>,
}

/// A streamed answer: events in order, ending with [`StreamEvent::End`] or an error.
pub type ChatStream = BoxStream<'static, Result<StreamEvent, LlmError>>;

impl ChatResponse {
    /// The answer as the events a stream would have delivered.
    pub fn into_events(self) -> Vec<StreamEvent> {
        let mut events = Vec::new();
        if !self.message.content.is_empty() {
            events.push(StreamEvent::Text(self.message.content));
        }
        events.extend(
            self.message
                .tool_calls
                .into_iter()
                .map(StreamEvent::ToolCall),
        );
        events.push(StreamEvent::End(StreamEnd {
            id: self.id,
            model: self.model,
            finish_reason: self.finish_reason,
            usage: self.usage,
        }));
        events
    }
}

/// The address a provider talks to, for `server.address` and `server.port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub address: String,
    pub port: u16,
}
