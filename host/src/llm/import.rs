//! The host side of the `llm` import: each call is admitted (model
//! allow-list, request size, budget), routed to the provider serving its
//! model and traced; a streamed answer lives in the `chat-stream` resource
//! until its last chunk. Also the conversions between WIT and
//! provider-neutral types.

use super::SharedProvider;
use super::call::{Call, OpenCall, Reported};
use super::context::{LlmRun, LlmView, ModelGrant};
use super::model::*;
use crate::bindings::agent::glassbox::agent::{llm as wit, types};
use crate::bindings::{Bounded, GuestError};
use crate::telemetry::{semconv, string_list};
use futures_util::StreamExt;
use opentelemetry::KeyValue;
use opentelemetry::trace::FutureExt as _;
use std::sync::atomic::Ordering;
use std::time::Instant;
use wasmtime::component::Resource;

impl types::Host for LlmView<'_> {}

/// Largest request a guest may send a model, in bytes of text: past it the
/// call is refused, never cut, since a cut prompt would change its meaning.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;

impl wit::Host for LlmView<'_> {
    async fn chat(
        &mut self,
        request: wit::ChatRequest,
    ) -> wasmtime::Result<Result<wit::ChatResponse, GuestError>> {
        let (call, provider, request, attributes) = match self.begin_chat(request, false) {
            Ok(begun) => begun,
            Err(refused) => return Ok(Err(refused)),
        };
        let result = call
            .traced(attributes, provider.chat(request), |response| Reported {
                attributes: response_attributes(&response.id, response.finish_reason),
                model: response.model.clone(),
                usage: response.usage,
                output: Some((response.message.clone(), response.finish_reason)),
            })
            .await;
        Ok(result.map(Into::into).map_err(Into::into))
    }

    async fn stream_chat(
        &mut self,
        request: wit::ChatRequest,
    ) -> wasmtime::Result<Result<Resource<wit::ChatStream>, GuestError>> {
        let (call, provider, request, attributes) = match self.begin_chat(request, true) {
            Ok(begun) => begun,
            Err(refused) => return Ok(Err(refused)),
        };
        let open = call.start(attributes);
        let started = provider
            .chat_stream(request)
            .with_context(open.context().clone())
            .await;
        match started {
            Ok(events) => {
                let stream = self.table.push(ChatStreamState::new(open, events))?;
                Ok(Ok(Resource::new_own(stream.rep())))
            }
            Err(error) => {
                open.fail(error.error_type(), error.to_string());
                Ok(Err(error.into()))
            }
        }
    }

    async fn embeddings(
        &mut self,
        request: wit::EmbeddingsRequest,
    ) -> wasmtime::Result<Result<wit::EmbeddingsResponse, GuestError>> {
        let request = request.bounded();
        let Some(run) = self.ctx.run.clone() else {
            return Ok(Err(not_during_loading()));
        };
        let provider = run
            .capability
            .llm
            .provider_for(request.model.as_deref())
            .clone();
        let request = EmbeddingsRequest {
            model: request
                .model
                .or_else(|| provider.default_embedding_model().map(str::to_owned))
                .unwrap_or_default(),
            inputs: request.inputs,
            dimensions: request.dimensions,
        };
        let call = Call::new(
            &run,
            provider.clone(),
            semconv::operation::EMBEDDINGS,
            request.model.clone(),
            self.spans.current(),
        );
        let size = request.inputs.iter().map(String::len).sum();
        if let Err((error_type, error)) = self.admit(&run, &request.model, size) {
            return Ok(Err(call.refuse(Vec::new(), error_type, error)));
        }
        let result = call
            .traced(Vec::new(), provider.embeddings(request), |response| {
                Reported {
                    attributes: Vec::new(),
                    model: response.model.clone(),
                    usage: response.usage,
                    output: None,
                }
            })
            .await;
        Ok(result.map(Into::into).map_err(Into::into))
    }
}

impl wit::HostChatStream for LlmView<'_> {
    async fn next(
        &mut self,
        stream: Resource<wit::ChatStream>,
    ) -> wasmtime::Result<Result<Option<wit::ChatChunk>, GuestError>> {
        let state = Resource::<ChatStreamState>::new_borrow(stream.rep());
        Ok(self.table.get_mut(&state)?.next().await)
    }

    async fn drop(&mut self, stream: Resource<wit::ChatStream>) -> wasmtime::Result<()> {
        self.table
            .delete(Resource::<ChatStreamState>::new_own(stream.rep()))?;
        Ok(())
    }
}

impl LlmView<'_> {
    /// Resolves a chat request against the run: the provider serving its
    /// model, the call to record and its span attributes; or the refusal.
    fn begin_chat(
        &self,
        request: wit::ChatRequest,
        stream: bool,
    ) -> Result<(Call, SharedProvider, ChatRequest, Vec<KeyValue>), GuestError> {
        let request = request.bounded();
        let run = self.ctx.run.clone().ok_or_else(not_during_loading)?;
        let provider = run
            .capability
            .llm
            .provider_for(request.model.as_deref())
            .clone();
        let request = model_request(request, provider.default_model());
        let mut call = Call::new(
            &run,
            provider.clone(),
            semconv::operation::CHAT,
            request.model.clone(),
            self.spans.current(),
        );
        let attributes = call.chat_attributes(&request, stream);
        if let Err((error_type, error)) = self.admit(&run, &request.model, request.text_len()) {
            return Err(call.refuse(attributes, error_type, error));
        }
        Ok((call, provider, request, attributes))
    }

    /// Whether this component may make a model call now: the model is allowed,
    /// the request is not too large and the run's budget allows another call.
    /// A refusal comes with its `error.type`.
    fn admit(
        &self,
        run: &LlmRun,
        model: &str,
        request_bytes: usize,
    ) -> Result<(), (&'static str, GuestError)> {
        use semconv::error_type;
        if let Err(allowed) = ModelGrant::check(&self.ctx.policy, model) {
            return Err((
                error_type::SANDBOX_DENIED,
                GuestError::NotAllowed(format!(
                    "{} may not use model `{model}`; allowed: {allowed}",
                    self.ctx.component
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
            .map_err(|error| (error_type::BUDGET_EXCEEDED, error))?;
        if let Some(own_calls) = &run.own_calls {
            own_calls.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

fn not_during_loading() -> GuestError {
    GuestError::NotAllowed("models can only be called during a run".into())
}

fn response_attributes(id: &str, finish_reason: FinishReason) -> Vec<KeyValue> {
    vec![
        KeyValue::new(semconv::GEN_AI_RESPONSE_ID, id.to_owned()),
        KeyValue::new(
            semconv::GEN_AI_RESPONSE_FINISH_REASONS,
            string_list([finish_reason.as_str().to_owned()]),
        ),
    ]
}

/// A streamed answer in progress, kept in the store's table under the
/// guest's `chat-stream` handle: the provider's events, the open call, and
/// the answer assembled so far. Its span ends with the last chunk, an error,
/// or, when the guest drops the stream early, as abandoned.
pub(crate) struct ChatStreamState {
    events: ChatStream,
    /// `None` once the span has ended.
    call: Option<OpenCall>,
    last_chunk: Option<Instant>,
    chunks: u64,
    answer: Message,
}

impl ChatStreamState {
    fn new(call: OpenCall, events: ChatStream) -> Self {
        ChatStreamState {
            events,
            call: Some(call),
            last_chunk: None,
            chunks: 0,
            answer: Message::assistant(""),
        }
    }

    async fn next(&mut self) -> Result<Option<wit::ChatChunk>, GuestError> {
        let Some(call) = &self.call else {
            return Ok(None);
        };
        let event = self
            .events
            .next()
            .with_context(call.context().clone())
            .await;
        match event {
            Some(Ok(StreamEvent::Text(text))) => {
                self.count_chunk();
                self.answer.content.push_str(&text);
                Ok(Some(wit::ChatChunk::Text(text)))
            }
            Some(Ok(StreamEvent::ToolCall(tool_call))) => {
                self.count_chunk();
                self.answer.tool_calls.push(tool_call.clone());
                Ok(Some(wit::ChatChunk::ToolCall(tool_call.into())))
            }
            Some(Ok(StreamEvent::End(end))) => {
                let response = ChatResponse {
                    id: end.id,
                    model: end.model,
                    message: std::mem::replace(&mut self.answer, Message::assistant("")),
                    finish_reason: end.finish_reason,
                    usage: end.usage,
                };
                if let Some(call) = self.call.take() {
                    let mut attributes = response_attributes(&response.id, response.finish_reason);
                    attributes.push(self.chunk_count());
                    call.succeed(Reported {
                        attributes,
                        model: response.model.clone(),
                        usage: response.usage,
                        output: Some((response.message.clone(), response.finish_reason)),
                    });
                }
                Ok(Some(wit::ChatChunk::Done(response.into())))
            }
            Some(Err(error)) => {
                self.end(error.error_type(), error.to_string());
                Err(error.into())
            }
            None => {
                let error = LlmError::Provider(format!(
                    "the stream ended after {} chunks, before the answer was complete",
                    self.chunks
                ));
                self.end(error.error_type(), error.to_string());
                Err(error.into())
            }
        }
    }

    fn count_chunk(&mut self) {
        let now = Instant::now();
        if let Some(call) = &self.call {
            match self.last_chunk {
                None => call.first_chunk(),
                Some(previous) => call.next_chunk(now - previous),
            }
        }
        self.last_chunk = Some(now);
        self.chunks += 1;
    }

    fn chunk_count(&self) -> KeyValue {
        KeyValue::new(
            semconv::GLASSBOX_LLM_STREAM_CHUNKS,
            i64::try_from(self.chunks).unwrap_or(i64::MAX),
        )
    }

    /// Ends the span as failed, with what was known.
    fn end(&mut self, error_type: &'static str, message: String) {
        if let Some(call) = self.call.take() {
            call.set_attribute(self.chunk_count());
            call.record_output(&self.answer, FinishReason::Other);
            call.fail(error_type, message);
        }
    }
}

impl Drop for ChatStreamState {
    fn drop(&mut self) {
        let message = format!(
            "the guest dropped the stream after {} chunks, before the answer was complete",
            self.chunks
        );
        self.end(semconv::error_type::CANCELLED, message);
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
            tool_calls: message.tool_calls.into_iter().map(Into::into).collect(),
            tool_call_id: message.tool_call_id,
        }
    }
}

impl From<ToolCall> for types::ToolCall {
    fn from(call: ToolCall) -> Self {
        types::ToolCall {
            id: call.id,
            name: call.name,
            arguments: call.arguments,
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
