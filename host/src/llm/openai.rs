//! Any OpenAI-compatible Chat Completions endpoint (OpenAI, Ollama, vLLM,
//! llama.cpp server) over HTTP. The API key is sent only in the
//! `Authorization` header and scrubbed from every error message.

use super::model::*;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
pub const DEFAULT_MODEL: &str = "gpt-4o-mini";
pub const DEFAULT_EMBEDDING_MODEL: &str = "text-embedding-3-small";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest excerpt of an error body quoted back to the caller.
const MAX_ERROR_EXCERPT: usize = 300;

/// Settings for [`OpenAiProvider`].
#[derive(Clone)]
pub struct OpenAiConfig {
    pub base_url: String,
    pub api_key: Option<String>,
    pub model: String,
    pub embedding_model: String,
    pub timeout: Duration,
}

impl std::fmt::Debug for OpenAiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("model", &self.model)
            .field("embedding_model", &self.embedding_model)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl OpenAiConfig {
    /// `OPENAI_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_MODEL` and `OPENAI_EMBEDDING_MODEL`, with OpenAI's defaults.
    pub fn from_env() -> Self {
        let var = |name| {
            std::env::var(name)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        OpenAiConfig {
            base_url: var("OPENAI_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
            api_key: var("OPENAI_API_KEY"),
            model: var("OPENAI_MODEL").unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
            embedding_model: var("OPENAI_EMBEDDING_MODEL")
                .unwrap_or_else(|| DEFAULT_EMBEDDING_MODEL.to_owned()),
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

pub struct OpenAiProvider {
    client: reqwest::Client,
    chat_url: url::Url,
    embeddings_url: url::Url,
    endpoint: Endpoint,
    config: OpenAiConfig,
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let base = url::Url::parse(&config.base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
            .ok_or_else(|| {
                LlmError::InvalidRequest(format!(
                    "the LLM base URL `{}` is not an http(s) URL",
                    config.base_url
                ))
            })?;
        let endpoint_url = |path: &str| {
            url::Url::parse(&format!("{}/{path}", base.as_str().trim_end_matches('/'))).map_err(
                |e| {
                    LlmError::InvalidRequest(format!("the LLM base URL `{}`: {e}", config.base_url))
                },
            )
        };
        let (chat_url, embeddings_url) = (
            endpoint_url("chat/completions")?,
            endpoint_url("embeddings")?,
        );
        let endpoint = Endpoint {
            address: base.host_str().unwrap_or_default().to_owned(),
            port: base.port_or_known_default().unwrap_or(443),
        };
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("glassbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Provider(format!("cannot build the HTTP client: {e}")))?;
        Ok(OpenAiProvider {
            client,
            chat_url,
            embeddings_url,
            endpoint,
            config,
        })
    }

    /// `text` with the API key, should it appear, replaced.
    fn scrub(&self, text: String) -> String {
        match &self.config.api_key {
            Some(key) if !key.is_empty() && text.contains(key.as_str()) => {
                text.replace(key.as_str(), "<redacted>")
            }
            _ => text,
        }
    }

    fn error_for_status(
        &self,
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        body: &str,
    ) -> LlmError {
        let detail = serde_json::from_str::<ErrorBody>(body)
            .map(|b| b.error.message)
            .unwrap_or_else(|_| excerpt(body));
        let message = self.scrub(format!(
            "HTTP {status} from {}: {detail}",
            self.endpoint.address
        ));
        match status.as_u16() {
            429 => LlmError::RateLimited {
                message,
                retry_after,
            },
            401 | 403 => LlmError::NotAllowed(message),
            408 | 504 => LlmError::Timeout(message),
            400 | 404 | 409 | 413 | 422 => LlmError::InvalidRequest(message),
            _ => LlmError::Provider(message),
        }
    }
}

#[async_trait::async_trait]
impl super::LlmProvider for OpenAiProvider {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn endpoint(&self) -> Option<Endpoint> {
        Some(self.endpoint.clone())
    }

    fn default_model(&self) -> &str {
        &self.config.model
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let wire: WireResponse = self
            .post(&self.chat_url, &WireRequest::new(&request)?)
            .await?;
        wire.into_response(&request.model)
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
        let wire: WireEmbeddingsResponse = self.post(&self.embeddings_url, &body).await?;
        let mut data = wire.data;
        data.sort_by_key(|d| d.index);
        if data.len() != request.inputs.len() {
            return Err(LlmError::Provider(format!(
                "{} answered {} embeddings for {} inputs",
                self.endpoint.address,
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

impl OpenAiProvider {
    /// POSTs `body` as JSON to `url` and decodes the JSON answer, mapping
    /// transport failures, HTTP statuses and malformed bodies to [`LlmError`].
    async fn post<T: serde::de::DeserializeOwned>(
        &self,
        url: &url::Url,
        body: &impl Serialize,
    ) -> Result<T, LlmError> {
        let mut http = self.client.post(url.clone()).json(body);
        if let Some(key) = &self.config.api_key {
            http = http.bearer_auth(key);
        }
        let response = http
            .send()
            .await
            .map_err(|e| self.transport_error(url, e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs >= 0.0)
            .map(Duration::from_secs_f64);
        let body = response
            .text()
            .await
            .map_err(|e| self.transport_error(url, e))?;
        if !status.is_success() {
            return Err(self.error_for_status(status, retry_after, &body));
        }
        serde_json::from_str(&body).map_err(|e| {
            LlmError::Provider(self.scrub(format!(
                "malformed response from {}: {e}; body starts `{}`",
                self.endpoint.address,
                excerpt(&body)
            )))
        })
    }

    fn transport_error(&self, url: &url::Url, error: reqwest::Error) -> LlmError {
        // reqwest's message names the URL, never the headers; scrub anyway.
        let message = self.scrub(format!("{url}: {}", error_chain(&error)));
        if error.is_timeout() {
            LlmError::Timeout(format!(
                "no answer within {:?} from {message}",
                self.config.timeout
            ))
        } else if error.is_connect() {
            LlmError::Provider(format!("cannot connect to {message}"))
        } else {
            LlmError::Provider(message)
        }
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn excerpt(body: &str) -> String {
    let trimmed = body.trim();
    match trimmed.char_indices().nth(MAX_ERROR_EXCERPT) {
        Some((end, _)) => format!("{}…", &trimmed[..end]),
        None => trimmed.to_owned(),
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
    fn new(request: &'a ChatRequest) -> Result<Self, LlmError> {
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
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    message: String,
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
        let finish_reason = match choice.finish_reason.as_deref() {
            Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
            Some("content_filter") => FinishReason::ContentFilter,
            // Some servers omit the reason; tool calls speak for themselves.
            None if !message.tool_calls.is_empty() => FinishReason::ToolCalls,
            None => FinishReason::Stop,
            Some(_) => FinishReason::Other,
        };
        Ok(ChatResponse {
            id: self.id,
            model: self.model.unwrap_or_else(|| requested_model.to_owned()),
            message,
            finish_reason,
            usage: self.usage.map(|u| Usage {
                input_tokens: u.prompt_tokens,
                output_tokens: u.completion_tokens,
                cache_read_input_tokens: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
                cache_creation_input_tokens: None,
                reasoning_output_tokens: u
                    .completion_tokens_details
                    .and_then(|d| d.reasoning_tokens),
            }),
        })
    }
}
