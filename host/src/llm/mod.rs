//! The `llm` capability: a provider behind [`LlmProvider`], and the host side of
//! the `llm` import, which opens a `chat {model}` span and records GenAI
//! metrics around every call.

mod model;
mod openai;
mod scripted;

pub use model::*;
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use scripted::{DEMO_SCRIPT, ScriptError, ScriptedProvider};

use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::{llm as wit, types};
use crate::runtime::ComponentState;
use crate::telemetry::{Telemetry, semconv};
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;
use std::time::Instant;

/// A source of chat completions. Implementations know nothing of Wasm.
#[async_trait::async_trait]
pub trait LlmProvider: Send + Sync {
    /// `gen_ai.provider.name`: `openai`, `scripted`, ...
    fn name(&self) -> &'static str;
    /// Where requests go, when over the network.
    fn endpoint(&self) -> Option<Endpoint>;
    /// The model used when a request names none.
    fn default_model(&self) -> &str;
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError>;
}

impl types::Host for ComponentState {}

impl wit::Host for ComponentState {
    async fn chat(
        &mut self,
        request: wit::ChatRequest,
    ) -> wasmtime::Result<Result<wit::ChatResponse, GuestError>> {
        let Some(capabilities) = self.capabilities().cloned() else {
            return Ok(Err(GuestError::NotAllowed(
                "models can only be called during a run".into(),
            )));
        };
        let parent = self.spans.current().clone();
        let request = model_request(request, capabilities.llm.default_model());
        Ok(chat(
            capabilities.llm.as_ref(),
            &capabilities.telemetry,
            &parent,
            request,
        )
        .await
        .map(Into::into))
    }
}

/// One traced call: span, provider call, usage and duration metrics.
async fn chat(
    provider: &dyn LlmProvider,
    telemetry: &Telemetry,
    parent: &Context,
    request: ChatRequest,
) -> Result<ChatResponse, GuestError> {
    let mut common = vec![
        KeyValue::new(semconv::GEN_AI_OPERATION_NAME, semconv::operation::CHAT),
        KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, provider.name()),
        KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, request.model.clone()),
    ];
    if let Some(endpoint) = provider.endpoint() {
        common.push(KeyValue::new(semconv::SERVER_ADDRESS, endpoint.address));
        common.push(KeyValue::new(
            semconv::SERVER_PORT,
            i64::from(endpoint.port),
        ));
    }
    let name = format!("{} {}", semconv::operation::CHAT, request.model);
    let mut attributes = common.clone();
    attributes.extend(request_attributes(&request));
    let span = telemetry.start_span(name, SpanKind::Client, attributes, parent);
    let started = Instant::now();
    let result = provider.chat(request).await;
    let instruments = telemetry.instruments();
    match &result {
        Ok(response) => {
            span.span().set_attributes([
                KeyValue::new(semconv::GEN_AI_RESPONSE_ID, response.id.clone()),
                KeyValue::new(semconv::GEN_AI_RESPONSE_MODEL, response.model.clone()),
                KeyValue::new(
                    semconv::GEN_AI_RESPONSE_FINISH_REASONS,
                    opentelemetry::Value::Array(
                        vec![opentelemetry::StringValue::from(
                            response.finish_reason.as_str(),
                        )]
                        .into(),
                    ),
                ),
            ]);
            common.push(KeyValue::new(
                semconv::GEN_AI_RESPONSE_MODEL,
                response.model.clone(),
            ));
            if let Some(usage) = &response.usage {
                span.span().set_attributes(usage_attributes(usage));
                for (kind, count) in [
                    (semconv::TOKEN_TYPE_INPUT, usage.input_tokens),
                    (semconv::TOKEN_TYPE_OUTPUT, usage.output_tokens),
                ] {
                    let mut attributes = common.clone();
                    attributes.push(KeyValue::new(semconv::GEN_AI_TOKEN_TYPE, kind));
                    instruments
                        .token_usage
                        .record(u64::from(count), &attributes);
                }
            }
        }
        Err(error) => {
            let error_type = error_type(error);
            span.fail(error_type, error.to_string());
            common.push(KeyValue::new(semconv::ERROR_TYPE, error_type));
        }
    }
    instruments
        .operation_duration
        .record(started.elapsed().as_secs_f64(), &common);
    span.finish();
    result.map_err(Into::into)
}

fn request_attributes(request: &ChatRequest) -> Vec<KeyValue> {
    let mut attributes = Vec::new();
    if let Some(t) = request.temperature {
        attributes.push(KeyValue::new(
            semconv::GEN_AI_REQUEST_TEMPERATURE,
            f64::from(t),
        ));
    }
    if let Some(n) = request.max_tokens {
        attributes.push(KeyValue::new(
            semconv::GEN_AI_REQUEST_MAX_TOKENS,
            i64::from(n),
        ));
    }
    if let Some(p) = request.top_p {
        attributes.push(KeyValue::new(semconv::GEN_AI_REQUEST_TOP_P, f64::from(p)));
    }
    if let Some(seed) = request.seed {
        attributes.push(KeyValue::new(semconv::GEN_AI_REQUEST_SEED, seed));
    }
    if !request.stop_sequences.is_empty() {
        let stops = request
            .stop_sequences
            .iter()
            .cloned()
            .map(opentelemetry::StringValue::from)
            .collect::<Vec<_>>();
        attributes.push(KeyValue::new(
            semconv::GEN_AI_REQUEST_STOP_SEQUENCES,
            opentelemetry::Value::Array(stops.into()),
        ));
    }
    attributes
}

fn usage_attributes(usage: &Usage) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(
            semconv::GEN_AI_USAGE_INPUT_TOKENS,
            i64::from(usage.input_tokens),
        ),
        KeyValue::new(
            semconv::GEN_AI_USAGE_OUTPUT_TOKENS,
            i64::from(usage.output_tokens),
        ),
    ];
    for (key, count) in [
        (
            semconv::GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS,
            usage.cache_read_input_tokens,
        ),
        (
            semconv::GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS,
            usage.cache_creation_input_tokens,
        ),
        (
            semconv::GEN_AI_USAGE_REASONING_OUTPUT_TOKENS,
            usage.reasoning_output_tokens,
        ),
    ] {
        if let Some(count) = count {
            attributes.push(KeyValue::new(key, i64::from(count)));
        }
    }
    attributes
}

fn error_type(error: &LlmError) -> &'static str {
    use semconv::error_type;
    match error {
        LlmError::RateLimited { .. } => error_type::RATE_LIMITED,
        LlmError::Timeout(_) => error_type::TIMEOUT,
        LlmError::InvalidRequest(_) => error_type::INVALID_REQUEST,
        LlmError::NotAllowed(_) => error_type::NOT_ALLOWED,
        LlmError::Provider(_) => error_type::PROVIDER,
    }
}

/// The provider-neutral request for a guest's request; no model named means the provider's default.
fn model_request(request: wit::ChatRequest, default_model: &str) -> ChatRequest {
    ChatRequest {
        model: request.model.unwrap_or_else(|| default_model.to_owned()),
        messages: request.messages.into_iter().map(Into::into).collect(),
        tools: request
            .tools
            .into_iter()
            .map(|t| ToolSpec {
                name: t.name,
                description: t.description,
                parameters: t.parameters,
            })
            .collect(),
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        top_p: request.top_p,
        stop_sequences: request.stop_sequences,
        seed: request.seed,
    }
}

impl From<types::ChatMessage> for Message {
    fn from(message: types::ChatMessage) -> Self {
        Message {
            role: match message.role {
                types::Role::System => Role::System,
                types::Role::User => Role::User,
                types::Role::Assistant => Role::Assistant,
                types::Role::Tool => Role::Tool,
            },
            content: message.content,
            tool_calls: message
                .tool_calls
                .into_iter()
                .map(|c| ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: c.arguments,
                })
                .collect(),
            tool_call_id: message.tool_call_id,
        }
    }
}

impl From<Message> for types::ChatMessage {
    fn from(message: Message) -> Self {
        types::ChatMessage {
            role: match message.role {
                Role::System => types::Role::System,
                Role::User => types::Role::User,
                Role::Assistant => types::Role::Assistant,
                Role::Tool => types::Role::Tool,
            },
            content: message.content,
            tool_calls: message
                .tool_calls
                .into_iter()
                .map(|c| types::ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments: c.arguments,
                })
                .collect(),
            tool_call_id: message.tool_call_id,
        }
    }
}

impl From<ChatResponse> for wit::ChatResponse {
    fn from(response: ChatResponse) -> Self {
        wit::ChatResponse {
            id: response.id,
            model: response.model,
            message: response.message.into(),
            finish_reason: match response.finish_reason {
                FinishReason::Stop => types::FinishReason::Stop,
                FinishReason::Length => types::FinishReason::Length,
                FinishReason::ToolCalls => types::FinishReason::ToolCalls,
                FinishReason::ContentFilter => types::FinishReason::ContentFilter,
                FinishReason::Other => types::FinishReason::Other,
            },
            usage: response.usage.map(|u| types::TokenUsage {
                input_tokens: u.input_tokens,
                output_tokens: u.output_tokens,
                cache_read_input_tokens: u.cache_read_input_tokens,
                cache_creation_input_tokens: u.cache_creation_input_tokens,
                reasoning_output_tokens: u.reasoning_output_tokens,
            }),
        }
    }
}

impl From<LlmError> for GuestError {
    fn from(error: LlmError) -> Self {
        match error {
            LlmError::RateLimited {
                message,
                retry_after,
            } => GuestError::RateLimited(types::RateLimit {
                message,
                retry_after_ms: retry_after.map(|d| d.as_millis().try_into().unwrap_or(u64::MAX)),
            }),
            LlmError::Timeout(m) => GuestError::Timeout(m),
            LlmError::InvalidRequest(m) => GuestError::InvalidRequest(m),
            LlmError::NotAllowed(m) => GuestError::NotAllowed(m),
            LlmError::Provider(m) => GuestError::Provider(m),
        }
    }
}

/// Shared handle to the provider every component of a runtime uses.
pub type SharedProvider = Arc<dyn LlmProvider>;
