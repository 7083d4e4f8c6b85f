//! The `llm` capability: a provider behind [`LlmProvider`], and the host side of
//! the `llm` import, which opens a `chat {model}` span and records GenAI
//! metrics around every call.

mod model;
mod openai;
mod pricing;
mod scripted;
mod settings;

pub use model::*;
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use pricing::{Price, Prices};
pub use scripted::{DEMO_SCRIPT, ScriptError, ScriptedProvider};
pub use settings::{LlmSettings, LlmSetupError, ProviderKind};

use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::{llm as wit, types};
use crate::runtime::{ComponentState, RunScope};
use crate::sandbox::RunBudget;
use crate::telemetry::{ActiveSpan, Telemetry, semconv};
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue, StringValue, Value};
use std::sync::Arc;
use std::time::Instant;

/// A source of chat completions and embeddings. Implementations know nothing of Wasm.
#[async_trait::async_trait]
pub trait LlmProvider: Send + Sync {
    /// `gen_ai.provider.name`: `openai`, `scripted`, ...
    fn name(&self) -> &'static str;
    /// Where requests go, when over the network.
    fn endpoint(&self) -> Option<Endpoint>;
    /// The chat model used when a request names none.
    fn default_model(&self) -> &str;
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError>;
    /// The embedding model used when a request names none; `None` when the provider cannot embed.
    fn default_embedding_model(&self) -> Option<&str> {
        None
    }
    async fn embeddings(
        &self,
        _request: EmbeddingsRequest,
    ) -> Result<EmbeddingsResponse, LlmError> {
        Err(LlmError::InvalidRequest(format!(
            "the {} provider offers no embeddings",
            self.name()
        )))
    }
}

/// The `llm` capability a runtime grants: a provider, and the prices of its
/// models where known.
#[derive(Clone)]
pub struct Llm {
    pub provider: SharedProvider,
    pub prices: Prices,
}

impl Llm {
    pub fn new(provider: SharedProvider) -> Self {
        Llm {
            provider,
            prices: Prices::default(),
        }
    }

    pub fn with_prices(self, prices: Prices) -> Self {
        Llm { prices, ..self }
    }
}

impl From<SharedProvider> for Llm {
    fn from(provider: SharedProvider) -> Self {
        Llm::new(provider)
    }
}

impl<P: LlmProvider + 'static> From<Arc<P>> for Llm {
    fn from(provider: Arc<P>) -> Self {
        Llm::new(provider)
    }
}

impl types::Host for ComponentState {}

/// Largest request a guest may send a model, in bytes of text: past it the
/// call is refused, never cut, since a cut prompt would change its meaning.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

impl wit::Host for ComponentState {
    async fn chat(
        &mut self,
        request: wit::ChatRequest,
    ) -> wasmtime::Result<Result<wit::ChatResponse, GuestError>> {
        let Some(run) = self.run().cloned() else {
            return Ok(Err(not_during_loading()));
        };
        let llm = &run.capabilities.llm;
        let request = model_request(request, llm.provider.default_model());
        let call = Call {
            llm,
            telemetry: &run.capabilities.telemetry,
            budget: &run.budget,
            parent: self.spans.current(),
            operation: semconv::operation::CHAT,
            model: request.model.clone(),
        };
        if let Err((error_type, error)) = self.admit(&run, &request.model, request.text_len()) {
            return Ok(Err(call.refuse(
                request_attributes(&request),
                error_type,
                error,
            )));
        }
        let result = call
            .traced(
                request_attributes(&request),
                llm.provider.chat(request),
                |response| Reported {
                    attributes: vec![
                        KeyValue::new(semconv::GEN_AI_RESPONSE_ID, response.id.clone()),
                        KeyValue::new(
                            semconv::GEN_AI_RESPONSE_FINISH_REASONS,
                            Value::Array(
                                vec![StringValue::from(response.finish_reason.as_str())].into(),
                            ),
                        ),
                    ],
                    model: response.model.clone(),
                    usage: response.usage,
                },
            )
            .await;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn embeddings(
        &mut self,
        request: wit::EmbeddingsRequest,
    ) -> wasmtime::Result<Result<wit::EmbeddingsResponse, GuestError>> {
        let Some(run) = self.run().cloned() else {
            return Ok(Err(not_during_loading()));
        };
        let llm = &run.capabilities.llm;
        let request = EmbeddingsRequest {
            model: request
                .model
                .or_else(|| llm.provider.default_embedding_model().map(str::to_owned))
                .unwrap_or_default(),
            inputs: request.inputs,
            dimensions: request.dimensions,
        };
        let call = Call {
            llm,
            telemetry: &run.capabilities.telemetry,
            budget: &run.budget,
            parent: self.spans.current(),
            operation: semconv::operation::EMBEDDINGS,
            model: request.model.clone(),
        };
        let size = request.inputs.iter().map(String::len).sum();
        if let Err((error_type, error)) = self.admit(&run, &request.model, size) {
            return Ok(Err(call.refuse(Vec::new(), error_type, error)));
        }
        let result = call
            .traced(Vec::new(), llm.provider.embeddings(request), |response| {
                Reported {
                    attributes: Vec::new(),
                    model: response.model.clone(),
                    usage: response.usage,
                }
            })
            .await;
        Ok(result.map(Into::into).map_err(Into::into))
    }
}

impl ComponentState {
    /// Whether this component may make a model call now: the model is allowed,
    /// the request is not too large and the run's budget allows another call.
    /// A refusal comes with its `error.type`.
    fn admit(
        &self,
        run: &RunScope,
        model: &str,
        request_bytes: usize,
    ) -> Result<(), (&'static str, GuestError)> {
        use semconv::error_type;
        if !self.policy.allows_model(model) {
            let allowed = self.policy.models.as_deref().unwrap_or_default().join(", ");
            return Err((
                error_type::SANDBOX_DENIED,
                GuestError::NotAllowed(format!(
                    "{} may not use model `{model}`; allowed: {allowed}",
                    self.component
                )),
            ));
        }
        if request_bytes > MAX_REQUEST_BYTES {
            return Err((
                error_type::INVALID_REQUEST,
                GuestError::InvalidRequest(format!(
                    "the request holds {request_bytes} bytes of text, over the host's limit of {MAX_REQUEST_BYTES}"
                )),
            ));
        }
        run.budget
            .start_llm_call()
            .map_err(|error| (error_type::BUDGET_EXCEEDED, error))
    }
}

fn not_during_loading() -> GuestError {
    GuestError::NotAllowed("models can only be called during a run".into())
}

/// One provider call to trace and account for.
struct Call<'a> {
    llm: &'a Llm,
    telemetry: &'a Telemetry,
    budget: &'a RunBudget,
    parent: &'a Context,
    operation: &'static str,
    model: String,
}

/// What a successful call reports on its span and metrics.
struct Reported {
    attributes: Vec<KeyValue>,
    model: String,
    usage: Option<Usage>,
}

impl Call<'_> {
    /// The attributes every span and metric point of the call carries.
    fn common_attributes(&self) -> Vec<KeyValue> {
        let provider = &self.llm.provider;
        let mut common = vec![
            KeyValue::new(semconv::GEN_AI_OPERATION_NAME, self.operation),
            KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, provider.name()),
            KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, self.model.clone()),
        ];
        if let Some(endpoint) = provider.endpoint() {
            common.push(KeyValue::new(semconv::SERVER_ADDRESS, endpoint.address));
            common.push(KeyValue::new(
                semconv::SERVER_PORT,
                i64::from(endpoint.port),
            ));
        }
        common
    }

    fn start_span(&self, common: &[KeyValue], request_attributes: Vec<KeyValue>) -> ActiveSpan {
        let name = format!("{} {}", self.operation, self.model);
        let attributes = common.iter().cloned().chain(request_attributes).collect();
        self.telemetry.start_span(
            name.trim_end().to_owned(),
            SpanKind::Client,
            attributes,
            self.parent,
        )
    }

    /// Records a call the host refused before it reached the provider.
    fn refuse(
        self,
        request_attributes: Vec<KeyValue>,
        error_type: &'static str,
        error: GuestError,
    ) -> GuestError {
        let span = self.start_span(&self.common_attributes(), request_attributes);
        span.fail(error_type, error.message().to_owned());
        span.finish();
        error
    }

    /// Runs `call` inside a `{operation} {model}` CLIENT span, recording the
    /// response or the error, the duration, the token usage and its cost.
    async fn traced<T>(
        self,
        request_attributes: Vec<KeyValue>,
        call: impl Future<Output = Result<T, LlmError>>,
        report: impl FnOnce(&T) -> Reported,
    ) -> Result<T, LlmError> {
        let mut common = self.common_attributes();
        let span = self.start_span(&common, request_attributes);
        let started = Instant::now();
        let result = call.await;
        let instruments = self.telemetry.instruments();
        match &result {
            Ok(response) => {
                let reported = report(response);
                span.span().set_attributes(reported.attributes);
                span.span().set_attribute(KeyValue::new(
                    semconv::GEN_AI_RESPONSE_MODEL,
                    reported.model.clone(),
                ));
                common.push(KeyValue::new(
                    semconv::GEN_AI_RESPONSE_MODEL,
                    reported.model.clone(),
                ));
                if let Some(usage) = &reported.usage {
                    span.span()
                        .set_attributes(usage_attributes(usage, self.operation));
                    let cost = self
                        .llm
                        .prices
                        .cost(&reported.model, usage)
                        .or_else(|| self.llm.prices.cost(&self.model, usage));
                    if let Some(cost) = cost {
                        span.span()
                            .set_attribute(KeyValue::new(semconv::GEN_AI_USAGE_COST, cost));
                    }
                    self.budget.record_usage(
                        u64::from(usage.input_tokens) + u64::from(usage.output_tokens),
                        cost,
                    );
                    for (kind, count) in token_counts(usage, self.operation) {
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
        result
    }
}

/// Embeddings produce no output tokens; reporting zero would skew the metric.
fn token_counts(usage: &Usage, operation: &str) -> Vec<(&'static str, u32)> {
    let mut counts = vec![(semconv::TOKEN_TYPE_INPUT, usage.input_tokens)];
    if operation != semconv::operation::EMBEDDINGS {
        counts.push((semconv::TOKEN_TYPE_OUTPUT, usage.output_tokens));
    }
    counts
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

fn usage_attributes(usage: &Usage, operation: &str) -> Vec<KeyValue> {
    let mut attributes: Vec<KeyValue> = token_counts(usage, operation)
        .into_iter()
        .map(|(kind, count)| {
            let key = if kind == semconv::TOKEN_TYPE_INPUT {
                semconv::GEN_AI_USAGE_INPUT_TOKENS
            } else {
                semconv::GEN_AI_USAGE_OUTPUT_TOKENS
            };
            KeyValue::new(key, i64::from(count))
        })
        .collect();
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
            usage: response.usage.map(Into::into),
        }
    }
}

impl From<Usage> for types::TokenUsage {
    fn from(usage: Usage) -> Self {
        types::TokenUsage {
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_input_tokens: usage.cache_read_input_tokens,
            cache_creation_input_tokens: usage.cache_creation_input_tokens,
            reasoning_output_tokens: usage.reasoning_output_tokens,
        }
    }
}

impl From<EmbeddingsResponse> for wit::EmbeddingsResponse {
    fn from(response: EmbeddingsResponse) -> Self {
        wit::EmbeddingsResponse {
            model: response.model,
            embeddings: response.embeddings,
            usage: response.usage.map(Into::into),
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
