//! One model call as the host records it: a `{operation} {model}` CLIENT span
//! opened before the provider is asked, then the answer or the error, the
//! duration, token usage, cost, stream timings and, when captured, the
//! content: on the span, or in a `gen_ai.client.inference.operation.details`
//! log record correlated with it, or both.

use super::context::LlmRun;
use super::model::{ChatRequest, FinishReason, LlmError, Message, Usage};
use super::{SharedProvider, content};
use crate::bindings::GuestError;
use crate::telemetry::semconv::GenAiConventions;
use crate::telemetry::{Operation, json_log_value, json_or_text, log_value, semconv, string_list};
use opentelemetry::logs::{LogRecord as _, Logger as _, Severity};
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
    /// The request's content for the details event, when content goes to events.
    details: Vec<KeyValue>,
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
            details: Vec::new(),
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
    pub fn chat_attributes(&mut self, request: &ChatRequest, stream: bool) -> Vec<KeyValue> {
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
        let telemetry = &self.run.capability.telemetry;
        if let Some(capture) = telemetry.content() {
            attributes.extend(content::input_attributes(capture, request));
        }
        if let Some(capture) = telemetry.content_events() {
            self.details = content::input_attributes(capture, request);
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
            .measured(capability.metrics.duration(self.operation), common);
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
        let output_details = reported
            .output
            .as_ref()
            .zip(capability.telemetry.content_events())
            .map(|((message, finish_reason), capture)| {
                content::output_attribute(capture, message, *finish_reason)
            });
        self.operation.add_metric_attribute(KeyValue::new(
            semconv::GEN_AI_RESPONSE_MODEL,
            reported.model.clone(),
        ));
        if let Some(usage) = &reported.usage {
            let span = self.operation.span();
            span.set_attributes(usage_attributes(
                usage,
                self.call.operation,
                capability.telemetry.conventions(),
            ));
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
            capability
                .metrics
                .record_tokens(self.call.operation, usage, common);
        }
        self.emit_details(output_details, None);
        self.operation.succeed();
    }

    /// Records a failure, with its `error.type`.
    pub fn fail(self, error_type: &'static str, message: String) {
        self.emit_details(None, Some(error_type));
        self.operation.fail(error_type, message);
    }

    /// The opt-in `gen_ai.client.inference.operation.details` event of a chat
    /// call whose content goes to events: the request's content, the
    /// answer's or the `error.type`, structured, on the call's span.
    fn emit_details(&self, output: Option<KeyValue>, error_type: Option<&'static str>) {
        let telemetry = &self.call.run.capability.telemetry;
        if self.call.operation != semconv::operation::CHAT || telemetry.content_events().is_none() {
            return;
        }
        let logger = telemetry.logger();
        let mut record = logger.create_log_record();
        record.set_event_name(semconv::EVENT_INFERENCE_DETAILS);
        record.set_severity_number(Severity::Info);
        for KeyValue { key, value, .. } in self.call.common_attributes() {
            record.add_attribute(key, log_value(value));
        }
        if let Some(error_type) = error_type {
            record.add_attribute(semconv::ERROR_TYPE, error_type);
        }
        // Content is JSON text as rendered for spans (redacted, fitted): as structure here.
        for KeyValue { key, value, .. } in self.call.details.iter().cloned().chain(output) {
            let json = json_or_text(&value.as_str());
            record.add_attribute(key, json_log_value(json, usize::MAX, &|text| text));
        }
        let span = self.operation.span().span_context().clone();
        record.set_trace_context(span.trace_id(), span.span_id(), Some(span.trace_flags()));
        logger.emit(record);
    }
}

/// Embeddings produce no output tokens; reporting zero would skew the metric.
pub(super) fn token_counts(usage: &Usage, operation: &str) -> Vec<(&'static str, u32)> {
    let mut counts = vec![(semconv::TOKEN_TYPE_INPUT, usage.input_tokens)];
    if operation != semconv::operation::EMBEDDINGS {
        counts.push((semconv::TOKEN_TYPE_OUTPUT, usage.output_tokens));
    }
    counts
}

/// The usage a call reports on its span. Cache writes keep v1.41.0's name in
/// both versions, since Langfuse and Phoenix read only that one (with
/// `cache_write` alone, Langfuse overstates cost).
fn usage_attributes(
    usage: &Usage,
    operation: &str,
    conventions: GenAiConventions,
) -> Vec<KeyValue> {
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
        (
            semconv::GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS,
            usage
                .cache_creation_input_tokens
                .filter(|_| conventions == GenAiConventions::Latest),
        ),
    ] {
        if let Some(count) = count {
            attributes.push(KeyValue::new(key, i64::from(count)));
        }
    }
    attributes
}
