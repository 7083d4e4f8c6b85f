//! One way to record a traced operation, used by model calls, tool calls,
//! agent calls and runs alike: a span (ended, or marked cancelled when its
//! future is dropped), the step reported to a run's follower, and, for
//! operations that have them, a duration histogram and an error counter whose
//! points carry the operation's metric attributes and its `error.type`.

use super::semconv;
use super::steps::StepRecorder;
use opentelemetry::metrics::{Counter, Histogram, Meter};
use opentelemetry::trace::{SpanRef, Status, TraceContextExt};
use opentelemetry::{Context, KeyValue, StringValue};
use std::time::{Duration, Instant};

/// The metrics one kind of operation records: its duration and, when the
/// kind counts them apart, its failures.
#[derive(Clone)]
pub(crate) struct OperationMetrics {
    duration: Histogram<f64>,
    errors: Option<Counter<u64>>,
}

impl OperationMetrics {
    /// A duration histogram `name` in seconds, with the conventions' buckets.
    pub fn new(meter: &Meter, name: &'static str, description: &'static str) -> Self {
        OperationMetrics {
            duration: seconds_histogram(meter, name, description),
            errors: None,
        }
    }

    /// Also counts failures in the counter `name`, by `error.type`.
    pub fn counting_errors(
        mut self,
        meter: &Meter,
        name: &'static str,
        description: &'static str,
    ) -> Self {
        self.errors = Some(
            meter
                .u64_counter(name)
                .with_description(description)
                .build(),
        );
        self
    }
}

/// A histogram of durations in seconds, with the GenAI conventions' buckets.
pub(crate) fn seconds_histogram(
    meter: &Meter,
    name: &'static str,
    description: &'static str,
) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(semconv::metric::DURATION_BUCKETS.to_vec())
        .build()
}

/// A host span in progress. Dropping it unfinished means the future that owned
/// it was abandoned (Ctrl-C, or a caller giving up), which the span then records.
pub(crate) struct ActiveSpan {
    cx: Context,
    /// When the run is followed: the step reported as the span ends.
    step: Option<StepRecorder>,
    finished: bool,
}

impl ActiveSpan {
    pub(super) fn new(cx: Context, step: Option<StepRecorder>) -> Self {
        ActiveSpan {
            cx,
            step,
            finished: false,
        }
    }

    /// The context holding the span, for children.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    pub fn span(&self) -> SpanRef<'_> {
        self.cx.span()
    }

    /// Records a failure: status ERROR with `message`, and `error.type`.
    pub fn fail(&mut self, error_type: impl Into<StringValue>, message: String) {
        let error_type = error_type.into();
        if let Some(step) = &mut self.step {
            step.fail(error_type.as_str(), &message);
        }
        self.span()
            .set_attribute(KeyValue::new(semconv::ERROR_TYPE, error_type));
        self.span().set_status(Status::error(message));
    }

    pub fn finish(mut self) {
        self.end();
    }

    fn end(&mut self) {
        self.finished = true;
        self.cx.span().end();
        if let Some(step) = self.step.take() {
            step.report();
        }
    }
}

impl Drop for ActiveSpan {
    fn drop(&mut self) {
        if !self.finished {
            self.fail(
                semconv::error_type::CANCELLED,
                "cancelled before it finished".into(),
            );
            self.end();
        }
    }
}

/// A traced operation in progress: its span, its clock and its metrics.
pub(crate) struct Operation {
    span: ActiveSpan,
    started: Instant,
    metrics: Option<OperationMetrics>,
    /// The attributes of every metric point, growing as the operation reports.
    metric_attributes: Vec<KeyValue>,
}

impl Operation {
    pub(super) fn new(span: ActiveSpan) -> Self {
        Operation {
            span,
            started: Instant::now(),
            metrics: None,
            metric_attributes: Vec::new(),
        }
    }

    /// Records `metrics` when the operation ends, with `attributes` on every point.
    pub fn measured(mut self, metrics: &OperationMetrics, attributes: Vec<KeyValue>) -> Self {
        self.metrics = Some(metrics.clone());
        self.metric_attributes = attributes;
        self
    }

    pub fn context(&self) -> &Context {
        self.span.context()
    }

    pub fn span(&self) -> SpanRef<'_> {
        self.span.span()
    }

    /// Time since the operation started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn metric_attributes(&self) -> &[KeyValue] {
        &self.metric_attributes
    }

    /// Adds an attribute known only along the way to every metric point.
    pub fn add_metric_attribute(&mut self, attribute: KeyValue) {
        self.metric_attributes.push(attribute);
    }

    /// Ends the operation as done. The span's status stays unset, as the
    /// conventions advise for client calls; runs set it to OK themselves.
    pub fn succeed(self) {
        self.end();
    }

    /// Records a failure: on the span, and as `error.type` on the metrics.
    pub fn fail(mut self, error_type: &'static str, message: String) {
        self.span.fail(error_type, message);
        self.metric_attributes
            .push(KeyValue::new(semconv::ERROR_TYPE, error_type));
        if let Some(errors) = self.metrics.as_ref().and_then(|m| m.errors.as_ref()) {
            errors.add(1, &self.metric_attributes);
        }
        self.end();
    }

    /// Succeeds or fails as `outcome` says; `classify` gives a failure's
    /// `error.type` and message.
    pub fn end_with<T, E>(
        self,
        outcome: &Result<T, E>,
        classify: impl FnOnce(&E) -> (&'static str, String),
    ) {
        match outcome {
            Ok(_) => self.succeed(),
            Err(error) => {
                let (error_type, message) = classify(error);
                self.fail(error_type, message);
            }
        }
    }

    fn end(self) {
        if let Some(metrics) = &self.metrics {
            metrics.duration.record(
                self.started.elapsed().as_secs_f64(),
                &self.metric_attributes,
            );
        }
        self.span.finish();
    }
}
