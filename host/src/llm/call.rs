//! One model call as the host records it: a `{operation} {model}` CLIENT span
//! opened before the provider is asked, then the answer or the error, the
//! duration, token usage, cost, stream timings and, when captured, the content.

use super::context::LlmRun;
use super::model::{ChatRequest, FinishReason, LlmError, Message, Usage};
use super::{SharedProvider, content};
use crate::bindings::GuestError;
use crate::telemetry::{Operation, semconv, string_list};
use opentelemetry::trace::{FutureExt as _, SpanKind};
use opentelemetry::{Context, KeyValue};
use std::time::{Duration, SystemTime};

/// A call about to be made, on behalf of one run.
pub(super) struct Call {
    run: LlmRun,
    provider: SharedProvider,
    operation: &'static str,
    model: String,
    parent: Context,
}

/// What a successful call reports on its span and metrics.
pub(super) struct Reported {
    pub attributes: Vec<KeyValue>,
    pub model: String,
    pub usage: Option<Usage>,
    /// The answer, for content capture.
    pub output: Option<(Message, FinishReason)>,
}

/// A call under way: its span is open and its clock running.
pub(super) struct OpenCall {
    call: Call,
    operation: Operation,
}

impl Call {
    pub fn new(
        run: &LlmRun,
        provider: SharedProvider,
        operation: &'static str,
        model: String,
        parent: &Context,
    ) -> Self {
        Call {
            run: run.clone(),
            provider,
            operation,
            model,
            parent: parent.clone(),
        }
    }

    /// The attributes every span and metric point of the call carries.
    fn common_attributes(&self) -> Vec<KeyValue> {
        let mut common = vec![
            KeyValue::new(semconv::GEN_AI_OPERATION_NAME, self.operation),
            KeyValue::new(semconv::GEN_AI_PROVIDER_NAME, self.provider.name()),
            KeyValue::new(semconv::GEN_AI_REQUEST_MODEL, self.model.clone()),
        ];
        if let Some(endpoint) = self.provider.endpoint() {
            common.push(KeyValue::new(semconv::SERVER_ADDRESS, endpoint.address));
            common.push(KeyValue::new(
                semconv::SERVER_PORT,
                i64::from(endpoint.port),
            ));
        }
        common
    }

    /// The span attributes of a chat request: parameters, streaming, and the
    /// content when it is captured.
    pub fn chat_attributes(&self, request: &ChatRequest, stream: bool) -> Vec<KeyValue> {
        let mut attributes = vec![KeyValue::new(semconv::GEN_AI_REQUEST_STREAM, stream)];
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
            attributes.push(KeyValue::new(
                semconv::GEN_AI_REQUEST_STOP_SEQUENCES,
                string_list(request.stop_sequences.iter().cloned()),
            ));
        }
        if let Some(capture) = self.run.capability.telemetry.content() {
            attributes.extend(content::input_attributes(capture, request));
        }
        attributes
    }

    /// Opens the span.
    pub fn start(self, request_attributes: Vec<KeyValue>) -> OpenCall {
        let common = self.common_attributes();
        let name = format!("{} {}", self.operation, self.model);
        let mut attributes: Vec<KeyValue> =
            common.iter().cloned().chain(request_attributes).collect();
        if self.run.capability.llm.replaying() {
            attributes.push(KeyValue::new(semconv::GLASSBOX_LLM_REPLAYED, true));
        }
        let capability = &self.run.capability;
        let operation = capability
            .telemetry
            .start_operation(
                name.trim_end().to_owned(),
                SpanKind::Client,
                attributes,
                &self.parent,
            )
            .measured(&capability.metrics.operation, common);
        OpenCall {
            call: self,
            operation,
        }
    }

    /// Records a call the host refused before it reached the provider.
    pub fn refuse(
        self,
        request_attributes: Vec<KeyValue>,
        error_type: &'static str,
        error: GuestError,
    ) -> GuestError {
        self.start(request_attributes)
            .operation
            .fail(error_type, error.message().to_owned());
        error
    }

    /// Runs `call` inside the span (so retries can record their attempts on
    /// it), then records what it answered.
    pub async fn traced<T>(
        self,
        request_attributes: Vec<KeyValue>,
        call: impl Future<Output = Result<T, LlmError>>,
        report: impl FnOnce(&T) -> Reported,
    ) -> Result<T, LlmError> {
        let open = self.start(request_attributes);
        let result = call.with_context(open.context().clone()).await;
        match &result {
            Ok(response) => open.succeed(report(response)),
            Err(error) => open.fail(error.error_type(), error.to_string()),
        }
        result
    }
}

impl OpenCall {
    pub fn context(&self) -> &Context {
        self.operation.context()
    }

    /// The first chunk of a streamed answer arrived now: time to first chunk
    /// counts from the call's start, the request and its retries included.
    pub fn first_chunk(&self) {
        let after = self.operation.elapsed();
        let span = self.operation.span();
        span.set_attribute(KeyValue::new(
            semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
            after.as_secs_f64(),
        ));
        span.set_attribute(KeyValue::new(
            semconv::LANGFUSE_COMPLETION_START_TIME,
            humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        ));
        self.call
            .run
            .capability
            .metrics
            .time_to_first_chunk
            .record(after.as_secs_f64(), self.operation.metric_attributes());
    }

    /// A later chunk arrived `gap` after the one before it.
    pub fn next_chunk(&self, gap: Duration) {
        self.call
            .run
            .capability
            .metrics
            .time_per_output_chunk
            .record(gap.as_secs_f64(), self.operation.metric_attributes());
    }

    /// Sets attributes known only along the way (a stream's chunk count).
    pub fn set_attribute(&self, attribute: KeyValue) {
        self.operation.span().set_attribute(attribute);
    }

    /// Records the answer's content, when content is captured.
    pub fn record_output(&self, message: &Message, finish_reason: FinishReason) {
        if let Some(capture) = self.call.run.capability.telemetry.content() {
            self.operation
                .span()
                .set_attribute(content::output_attribute(capture, message, finish_reason));
        }
    }

    /// Records the answer: its attributes, usage, cost and duration.
    pub fn succeed(mut self, reported: Reported) {
        let capability = self.call.run.capability.clone();
        let span = self.operation.span();
        span.set_attributes(reported.attributes);
        span.set_attribute(KeyValue::new(
            semconv::GEN_AI_RESPONSE_MODEL,
            reported.model.clone(),
        ));
        if let Some((message, finish_reason)) = &reported.output {
            self.record_output(message, *finish_reason);
        }
        self.operation.add_metric_attribute(KeyValue::new(
            semconv::GEN_AI_RESPONSE_MODEL,
            reported.model.clone(),
        ));
        if let Some(usage) = &reported.usage {
            let span = self.operation.span();
            span.set_attributes(usage_attributes(usage, self.call.operation));
            let prices = &capability.llm.prices;
            let cost = prices
                .cost(&reported.model, usage)
                .or_else(|| prices.cost(&self.call.model, usage));
            let common = self.operation.metric_attributes();
            if let Some(cost) = cost {
                span.set_attribute(KeyValue::new(semconv::GEN_AI_USAGE_COST, cost));
                capability.metrics.cost.add(cost, common);
            }
            self.call.run.budget.record_usage(
                u64::from(usage.input_tokens) + u64::from(usage.output_tokens),
                cost,
            );
            for (kind, count) in token_counts(usage, self.call.operation) {
                let mut attributes = common.to_vec();
                attributes.push(KeyValue::new(semconv::GEN_AI_TOKEN_TYPE, kind));
                capability
                    .metrics
                    .token_usage
                    .record(u64::from(count), &attributes);
            }
        }
        self.operation.succeed();
    }

    /// Records a failure, with its `error.type`.
    pub fn fail(self, error_type: &'static str, message: String) {
        self.operation.fail(error_type, message);
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
