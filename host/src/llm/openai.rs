//! Any OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama, vLLM,
//! llama.cpp server) over HTTP, whole or streamed. The API key is sent only in
//! the `Authorization` header and scrubbed from every error message.

use super::http::{ApiClient, Connection, RetryPolicy, SseDecoder, header_value};
use super::model::*;
use crate::env::var as env_var;
use eventsource_stream::Event;
use reqwest::header::{AUTHORIZATION, HeaderMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Settings for [`OpenAiProvider`].
#[derive(Clone, Debug)]
pub struct OpenAiConfig {
    /// `gen_ai.provider.name`: `openai`, or `ollama`, `vllm`, ... for other servers of the same API.
    pub provider_name: &'static str,
    pub connection: Connection,
    pub model: String,
    pub embedding_model: String,
}

impl OpenAiConfig {
    /// `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_MODEL` and `OPENAI_EMBEDDING_MODEL`, with OpenAI's defaults.
    pub fn from_env() -> Self {
        OpenAiConfig {
            provider_name: "openai",
            connection: Connection {
                base_url: env_var("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
                api_key: env_var("OPENAI_API_KEY"),
                timeout: DEFAULT_TIMEOUT,
                retry: RetryPolicy::default(),
            },
            model: env_var("OPENAI_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            embedding_model: env_var("OPENAI_EMBEDDING_MODEL")
                .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL.to_owned()),
        }
    }
}

pub struct OpenAiProvider {
    api: ApiClient,
    chat_url: url::Url,
    embeddings_url: url::Url,
    config: OpenAiConfig,
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let mut headers = HeaderMap::new();
        if let Some(key) = &config.connection.api_key {
            headers.insert(AUTHORIZATION, header_value(&format!("Bearer {key}"))?);
        }
        let api = ApiClient::new(&config.connection, headers)?;
        Ok(OpenAiProvider {
            chat_url: api.url("chat/completions")?,
            embeddings_url: api.url("embeddings")?,
            api,
            config,
        })
    }
}

#[async_trait::async_trait]
impl super::LlmProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        self.config.provider_name
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
            .post_json(&self.chat_url, &WireRequest::new(&request, false)?)
            .await?;
        wire.into_response(&request.model)
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let decoder = StreamDecoder {
            model: request.model.clone(),
            ..StreamDecoder::default()
        };
        self.api
            .post_events(&self.chat_url, &WireRequest::new(&request, true)?, decoder)
            .await
    }

    fn default_embedding_model(&self) -> Option<&str> {
        Some(&self.config.embedding_model)
    }

    async fn embeddings(&self, request: EmbeddingsRequest) -> Result<EmbeddingsResponse, LlmError> {
        let body = WireEmbeddingsRequest {
            model: &request.model,
            input: &request.inputs,
            dimensions: request.dimensions,
            encoding_format: "float",
        };
        let wire: WireEmbeddingsResponse = self.api.post_json(&self.embeddings_url, &body).await?;
        let mut data = wire.data;
        data.sort_by_key(|d| d.index);
        if data.len() != request.inputs.len() {
            return Err(LlmError::Provider(format!(
                "{} answered {} embeddings for {} inputs",
                self.api.endpoint().address,
                data.len(),
                request.inputs.len()
            )));
        }
        Ok(EmbeddingsResponse {
            model: wire.model.unwrap_or(request.model),
            embeddings: data.into_iter().map(|d| d.embedding).collect(),
            usage: wire.usage.map(|u| Usage {
                input_tokens: u.prompt_tokens,
                ..Usage::default()
            }),
        })
    }
}

// The wire format of the Chat Completions API.

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    /// Asks for a last chunk with the usage, which streams otherwise lack.
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    /// `null` for an assistant message that only calls tools, as the API expects.
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<WireToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct WireToolCallOut<'a> {
    id: &'a str,
    r#type: &'static str,
    function: WireFunctionOut<'a>,
}

#[derive(Serialize)]
struct WireFunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    r#type: &'static str,
    function: WireToolFunction<'a>,
}

#[derive(Serialize)]
struct WireToolFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: serde_json::Value,
}

impl<'a> WireRequest<'a> {
    fn new(request: &'a ChatRequest, stream: bool) -> Result<Self, LlmError> {
        let tools = request
            .tools
            .iter()
            .map(|t| {
                // Guests may offer tools the registry never saw, so check the schema here too.
                let parameters = serde_json::from_str(&t.parameters).map_err(|e| {
                    LlmError::InvalidRequest(format!(
                        "the parameter schema of tool `{}` is not JSON: {e}",
                        t.name
                    ))
                })?;
                Ok(WireTool {
                    r#type: "function",
                    function: WireToolFunction {
                        name: &t.name,
                        description: &t.description,
                        parameters,
                    },
                })
            })
            .collect::<Result<_, LlmError>>()?;
        Ok(WireRequest {
            model: &request.model,
            messages: request
                .messages
                .iter()
                .map(|m| WireMessage {
                    role: match m.role {
                        Role::System => "system",
                        Role::User => "user",
                        Role::Assistant => "assistant",
                        Role::Tool => "tool",
                    },
                    content: (!m.content.is_empty() || m.tool_calls.is_empty())
                        .then_some(m.content.as_str()),
                    tool_calls: m
                        .tool_calls
                        .iter()
                        .map(|c| WireToolCallOut {
                            id: &c.id,
                            r#type: "function",
                            function: WireFunctionOut {
                                name: &c.name,
                                arguments: &c.arguments,
                            },
                        })
                        .collect(),
                    tool_call_id: m.tool_call_id.as_deref(),
                })
                .collect(),
            tools,
            temperature: request.temperature,
            max_tokens: request.max_tokens,
            top_p: request.top_p,
            stop: &request.stop_sequences,
            seed: request.seed,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        })
    }
}

#[derive(Serialize)]
struct WireEmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<u32>,
    encoding_format: &'static str,
}

#[derive(Deserialize)]
struct WireEmbeddingsResponse {
    #[serde(default)]
    model: Option<String>,
    data: Vec<WireEmbedding>,
    #[serde(default)]
    usage: Option<WireEmbeddingsUsage>,
}

#[derive(Deserialize)]
struct WireEmbedding {
    index: usize,
    embedding: Vec<f32>,
}

#[derive(Deserialize)]
struct WireEmbeddingsUsage {
    prompt_tokens: u32,
}

#[derive(Deserialize)]
struct WireResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: Option<String>,
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessageIn,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireMessageIn {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCallIn>,
}

#[derive(Deserialize)]
struct WireToolCallIn {
    id: String,
    function: WireFunctionIn,
}

#[derive(Deserialize)]
struct WireFunctionIn {
    name: String,
    #[serde(default)]
    arguments: String,
}

#[derive(Deserialize)]
struct WireUsage {
    prompt_tokens: u32,
    completion_tokens: u32,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(default)]
    completion_tokens_details: Option<CompletionDetails>,
}

#[derive(Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u32>,
}

#[derive(Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u32>,
}

impl WireResponse {
    fn into_response(self, requested_model: &str) -> Result<ChatResponse, LlmError> {
        let choice = self
            .choices
            .into_iter()
            .next()
            .ok_or_else(|| LlmError::Provider("the response has no choices".into()))?;
        let message = Message {
            role: Role::Assistant,
            content: choice.message.content.unwrap_or_default(),
            tool_calls: choice
                .message
                .tool_calls
                .into_iter()
                .map(|c| ToolCall {
                    id: c.id,
                    name: c.function.name,
                    arguments: c.function.arguments,
                })
                .collect(),
            tool_call_id: None,
        };
        let finish_reason = finish_reason(
            choice.finish_reason.as_deref(),
            !message.tool_calls.is_empty(),
        );
        Ok(ChatResponse {
            id: self.id,
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
            message,
            finish_reason,
            usage: self.usage.map(WireUsage::into_usage),
        })
    }
}

fn finish_reason(reason: Option<&str>, called_tools: bool) -> FinishReason {
    match reason {
        Some("stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        // Some servers omit the reason; tool calls speak for themselves.
        None if called_tools => FinishReason::ToolCalls,
        None => FinishReason::Stop,
        Some(_) => FinishReason::Other,
    }
}

impl WireUsage {
    fn into_usage(self) -> Usage {
        Usage {
            input_tokens: self.prompt_tokens,
            output_tokens: self.completion_tokens,
            cache_read_input_tokens: self.prompt_tokens_details.and_then(|d| d.cached_tokens),
            cache_creation_input_tokens: None,
            reasoning_output_tokens: self
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens),
        }
    }
}

// The streamed form: `chat.completion.chunk` objects, then `[DONE]`.

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    delta: WireDelta,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Default, Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCallDelta>,
}

#[derive(Deserialize)]
struct WireToolCallDelta {
    index: u32,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Assembles a streamed completion: text passes straight through, tool calls
/// gather their fragments by index and leave whole when the choice finishes.
#[derive(Default)]
struct StreamDecoder {
    /// The requested model, until a chunk names the one answering.
    model: String,
    id: String,
    tool_calls: BTreeMap<u32, ToolCall>,
    finish_reason: Option<FinishReason>,
    usage: Option<Usage>,
    done: bool,
}

impl SseDecoder for StreamDecoder {
    fn decode(&mut self, event: &Event) -> Result<Vec<StreamEvent>, String> {
        if event.data.trim() == "[DONE]" {
            self.done = true;
            let finish_reason = self.finish_reason.unwrap_or(FinishReason::Stop);
            return Ok(vec![StreamEvent::End(StreamEnd {
                id: std::mem::take(&mut self.id),
                model: std::mem::take(&mut self.model),
                finish_reason,
                usage: self.usage,
            })]);
        }
        let chunk: WireChunk = serde_json::from_str(&event.data).map_err(|e| e.to_string())?;
        if let Some(id) = chunk.id.filter(|id| !id.is_empty()) {
            self.id = id;
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = model;
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(usage.into_usage());
        }
        let mut events = Vec::new();
        for choice in chunk.choices {
            if let Some(text) = choice.delta.content.filter(|t| !t.is_empty()) {
                events.push(StreamEvent::Text(text));
            }
            for fragment in choice.delta.tool_calls {
                let call = self
                    .tool_calls
                    .entry(fragment.index)
                    .or_insert_with(|| ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    });
                if let Some(id) = fragment.id {
                    call.id = id;
                }
                if let Some(function) = fragment.function {
                    call.name
                        .push_str(function.name.as_deref().unwrap_or_default());
                    call.arguments
                        .push_str(function.arguments.as_deref().unwrap_or_default());
                }
            }
            if let Some(reason) = choice.finish_reason {
                let calls = std::mem::take(&mut self.tool_calls);
                self.finish_reason = Some(finish_reason(Some(&reason), !calls.is_empty()));
                events.extend(calls.into_values().map(StreamEvent::ToolCall));
            }
        }
        Ok(events)
    }

    fn finished(&self) -> bool {
        self.done
    }
}
