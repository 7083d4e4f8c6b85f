//! The telemetry pipeline: tracer, meter and logger providers built from a
//! list of [`Sink`]s (OTLP, Prometheus, the console tree) or handed over by an
//! embedding application, and the one way capabilities record a traced
//! operation ([`Operation`]). It knows nothing of WebAssembly: the guest-facing
//! `telemetry` import is a capability of its own (`crate::guest_telemetry`).
//! Every name a span, attribute or metric uses lives in [`semconv`].

mod config;
mod content;
mod export;
mod ids;
mod operation;
mod otlp_encoding;
mod otlp_exporter;
mod otlp_tls;
pub mod propagation;
mod scope;
pub mod semconv;
mod sinks;
mod steps;
mod tree;

pub use config::{OtlpProtocol, OtlpTarget, Signals, TelemetryConfig, TelemetryOverrides};
pub(crate) use content::{ContentCapture, json_or_text};
pub use content::{ContentConfig, DEFAULT_MAX_LENGTH, REDACTED};
pub use export::{BatchSettings, ExportStats};
pub use ids::AdoptingIdGenerator;
pub(crate) use operation::{ActiveSpan, Operation, OperationMetrics, seconds_histogram};
pub(crate) use scope::{GuestSpanKey, SpanScope};
pub use sinks::Sink;
use steps::StepRecorder;
pub use steps::{Step, StepError, StepSink};

use export::ExportCounts;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{
    Span as _, SpanBuilder, SpanId, SpanKind, Status, TraceContextExt, Tracer as _,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use sinks::Pipeline;
use std::sync::Arc;
use std::time::SystemTime;
use tree::TraceTree;

const INSTRUMENTATION_SCOPE: &str = "glassbox";

/// A failure to set up or flush telemetry.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry configuration: {0}")]
    Config(String),
    #[error("cannot build the OTLP {signal} exporter: {source}")]
    Exporter {
        signal: &'static str,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    #[error("exporting telemetry failed: {}", .0.iter().map(|(signal, reason)| format!("{signal}: {reason}")).collect::<Vec<_>>().join("; "))]
    Flush(Vec<(&'static str, String)>),
}

impl TelemetryError {
    /// Whether only metrics or logs failed to export: the usual sign of a
    /// backend that takes traces alone.
    pub fn traces_exported(&self) -> bool {
        matches!(self, TelemetryError::Flush(failures) if failures.iter().all(|(signal, _)| *signal != "traces"))
    }
}

/// The providers behind one host process, through which capabilities trace and measure.
pub struct Telemetry {
    tracer: SdkTracer,
    logger: SdkLogger,
    meter: Meter,
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logger_provider: SdkLoggerProvider,
    /// Whether the providers are the host's own, to shut down with it, or an
    /// embedding application's, which the host only flushes.
    owns_providers: bool,
    /// Metrics for a Prometheus scrape, when asked for.
    prometheus: Option<prometheus::Registry>,
    tree: Option<TraceTree>,
    content: Option<ContentCapture>,
    conventions: semconv::GenAiConventions,
    export_counts: Arc<ExportCounts>,
    /// Where the OTLP exporters' connections run, when exporting.
    export_runtime: Option<tokio::runtime::Runtime>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which async contexts forbid; its threads
        // only carry exports, which `shutdown` has finished by now.
        if let Some(runtime) = self.export_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Telemetry {
    /// Builds providers and exporters for `config`. `agent_name` goes on the resource.
    pub fn new(config: &TelemetryConfig, agent_name: &str) -> Result<Self, TelemetryError> {
        Self::from_sinks(config.sinks(), config, agent_name)
    }

    /// Builds providers that deliver to each of `sinks`; `config` says what
    /// else applies to all of them (sampling, batching, content capture).
    pub fn from_sinks(
        sinks: Vec<Sink>,
        config: &TelemetryConfig,
        agent_name: &str,
    ) -> Result<Self, TelemetryError> {
        let content = ContentCapture::new(&config.content).map_err(TelemetryError::Config)?;
        let mut pipeline = Pipeline::new(resource(agent_name), config.batch);
        if config.disabled {
            pipeline.tracer = std::mem::take(&mut pipeline.tracer).with_sampler(Sampler::AlwaysOff);
        }
        for sink in sinks {
            sink.attach(&mut pipeline)?;
        }
        let built = pipeline.build();
        let mut telemetry = Self::assemble(
            built.tracer_provider,
            built.meter_provider,
            built.logger_provider,
            content,
        );
        telemetry.owns_providers = true;
        telemetry.conventions = config.conventions;
        telemetry.prometheus = built.prometheus;
        telemetry.tree = built.tree;
        telemetry.export_counts = built.export_counts;
        telemetry.export_runtime = built.export_runtime;
        Ok(telemetry)
    }

    /// Telemetry through an embedding application's providers: the host's
    /// spans and metrics go wherever the application's go, under its resource.
    /// [`Telemetry::shutdown`] then flushes them and leaves them running; the
    /// application shuts them down. Log records from guests go nowhere. The
    /// GenAI conventions are chosen by `OTEL_SEMCONV_STABILITY_OPT_IN`.
    pub fn with_providers(
        tracer_provider: SdkTracerProvider,
        meter_provider: SdkMeterProvider,
        content: &ContentConfig,
    ) -> Result<Self, TelemetryError> {
        let content = ContentCapture::new(content).map_err(TelemetryError::Config)?;
        let mut telemetry = Self::assemble(
            tracer_provider,
            meter_provider,
            SdkLoggerProvider::builder().build(),
            content,
        );
        telemetry.conventions = config::conventions(&|name| std::env::var(name).ok());
        Ok(telemetry)
    }

    fn assemble(
        tracer_provider: SdkTracerProvider,
        meter_provider: SdkMeterProvider,
        logger_provider: SdkLoggerProvider,
        content: Option<ContentCapture>,
    ) -> Self {
        Telemetry {
            tracer: tracer_provider.tracer(INSTRUMENTATION_SCOPE),
            logger: opentelemetry::logs::LoggerProvider::logger(
                &logger_provider,
                INSTRUMENTATION_SCOPE,
            ),
            meter: meter_provider.meter(INSTRUMENTATION_SCOPE),
            tracer_provider,
            meter_provider,
            logger_provider,
            owns_providers: false,
            prometheus: None,
            tree: None,
            content,
            conventions: semconv::GenAiConventions::default(),
            export_counts: Arc::default(),
            export_runtime: None,
        }
    }

    /// Telemetry that records nothing, for embedding and for loading components.
    pub fn disabled() -> Self {
        Self::new(
            &TelemetryConfig {
                disabled: true,
                ..TelemetryConfig::default()
            },
            "",
        )
        .expect("a configuration without exporters cannot fail to build")
    }

    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// Starts a span under `parent`. It ends when [`ActiveSpan::finish`] is
    /// called, or, marked cancelled, if it is dropped first.
    pub(crate) fn start_span(
        &self,
        name: String,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        parent: &Context,
    ) -> ActiveSpan {
        let step = StepRecorder::start(parent, &name);
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(&self.tracer, parent);
        ActiveSpan::new(parent.with_span(span), step)
    }

    /// Records a span that ran elsewhere (a guest's `wasi:otel` span) under
    /// `parent`, with the id `id` it was given there and as `scope` made it,
    /// ending at `end` with `status`.
    /// False when the tracer provider gave it another id: an embedding
    /// application's does unless built with [`AdoptingIdGenerator`].
    pub(crate) fn record_span(
        &self,
        id: SpanId,
        scope: InstrumentationScope,
        span: SpanBuilder,
        status: Status,
        parent: &Context,
        end: SystemTime,
    ) -> bool {
        let tracer = self.tracer_provider.tracer_with_scope(scope);
        let mut span = ids::with_span_id(id, || span.start_with_context(&tracer, parent));
        let kept = !span.is_recording() || span.span_context().span_id() == id;
        span.set_status(status);
        span.end_with_timestamp(end);
        kept
    }

    /// Starts a traced operation under `parent`; see [`Operation`].
    pub(crate) fn start_operation(
        &self,
        name: String,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
        parent: &Context,
    ) -> Operation {
        Operation::new(self.start_span(name, kind, attributes, parent))
    }

    /// The meter capabilities make their instruments with.
    pub(crate) fn meter(&self) -> &Meter {
        &self.meter
    }

    pub(crate) fn logger(&self) -> &SdkLogger {
        &self.logger
    }

    /// Which GenAI conventions to emit.
    pub(crate) fn conventions(&self) -> semconv::GenAiConventions {
        self.conventions
    }

    /// How to capture message content on spans, when it goes there.
    pub(crate) fn content(&self) -> Option<&ContentCapture> {
        self.content.as_ref().filter(|capture| capture.on_spans)
    }

    /// How to capture message content in events, when it goes there.
    pub(crate) fn content_events(&self) -> Option<&ContentCapture> {
        self.content.as_ref().filter(|capture| capture.as_events)
    }

    /// Exports everything still buffered and stops the exporters. Blocks the
    /// calling thread: call it from a blocking context, never from an async task.
    /// Every provider is shut down even when an earlier one fails.
    pub fn shutdown(&self) -> Result<(), TelemetryError> {
        let results = if self.owns_providers {
            [
                ("traces", self.tracer_provider.shutdown()),
                ("metrics", self.meter_provider.shutdown()),
                ("logs", self.logger_provider.shutdown()),
            ]
        } else {
            [
                ("traces", self.tracer_provider.force_flush()),
                ("metrics", self.meter_provider.force_flush()),
                ("logs", self.logger_provider.force_flush()),
            ]
        };
        let failures: Vec<(&'static str, String)> = results
            .into_iter()
            .filter_map(|(signal, result)| {
                let error = result.err()?;
                // Lost spans, counted and explained, say more than the SDK's wrapping of them.
                let reason = match signal {
                    "traces" => self.export_counts.lost_at_shutdown(),
                    _ => None,
                };
                Some((signal, reason.unwrap_or_else(|| error.to_string())))
            })
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(TelemetryError::Flush(failures))
        }
    }

    /// The current metrics in the Prometheus text format, when the
    /// configuration asked for a Prometheus registry.
    pub fn prometheus_text(&self) -> Option<Result<String, String>> {
        let registry = self.prometheus.as_ref()?;
        let mut text = Vec::new();
        let encoded = prometheus::Encoder::encode(
            &prometheus::TextEncoder::new(),
            &registry.gather(),
            &mut text,
        );
        Some(
            encoded
                .map_err(|e| format!("cannot encode the metrics: {e}"))
                .map(|()| String::from_utf8_lossy(&text).into_owned()),
        )
    }

    /// What has become of the spans exported over OTLP so far.
    pub fn export_stats(&self) -> ExportStats {
        self.export_counts.snapshot()
    }

    /// The finished spans as an indented tree, when the configuration asked for one.
    pub fn trace_tree(&self) -> Option<String> {
        self.tree.as_ref().map(TraceTree::render)
    }
}

/// A list of strings as one attribute value.
pub(crate) fn string_list(items: impl IntoIterator<Item = String>) -> opentelemetry::Value {
    opentelemetry::Value::Array(
        items
            .into_iter()
            .map(opentelemetry::StringValue::from)
            .collect::<Vec<_>>()
            .into(),
    )
}

/// An attribute value as a log record's attribute holds it.
pub(crate) fn log_value(value: opentelemetry::Value) -> opentelemetry::logs::AnyValue {
    use opentelemetry::{Value, logs::AnyValue};
    match value {
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::I64(n) => AnyValue::Int(n),
        Value::F64(x) => AnyValue::Double(x),
        other => AnyValue::String(other.as_str().into_owned().into()),
    }
}

/// How deep a JSON value's lists and maps may nest in a log record; deeper
/// parts are kept as JSON text.
const MAX_JSON_DEPTH: usize = 8;

/// A JSON value as a log record holds it: lists and maps as themselves, at
/// most `max_items` entries each, every string passed through `cut`.
pub(crate) fn json_log_value(
    json: serde_json::Value,
    max_items: usize,
    cut: &impl Fn(String) -> String,
) -> opentelemetry::logs::AnyValue {
    use opentelemetry::logs::AnyValue;
    use serde_json::Value as Json;
    fn convert(
        json: Json,
        depth: usize,
        max_items: usize,
        cut: &impl Fn(String) -> String,
    ) -> AnyValue {
        match json {
            Json::String(text) => AnyValue::from(cut(text)),
            Json::Bool(flag) => AnyValue::Boolean(flag),
            Json::Number(number) => number.as_i64().map_or_else(
                || AnyValue::Double(number.as_f64().unwrap_or(f64::NAN)),
                AnyValue::Int,
            ),
            Json::Null => AnyValue::from(String::new()),
            nested if depth >= MAX_JSON_DEPTH => AnyValue::from(cut(nested.to_string())),
            Json::Array(items) => AnyValue::ListAny(Box::new(
                items
                    .into_iter()
                    .take(max_items)
                    .map(|item| convert(item, depth + 1, max_items, cut))
                    .collect(),
            )),
            Json::Object(entries) => AnyValue::Map(Box::new(
                entries
                    .into_iter()
                    .take(max_items)
                    .map(|(key, value)| {
                        (
                            opentelemetry::Key::from(cut(key)),
                            convert(value, depth + 1, max_items, cut),
                        )
                    })
                    .collect(),
            )),
        }
    }
    convert(json, 0, max_items, cut)
}

/// `service.name` defaults to `glassbox` unless `OTEL_SERVICE_NAME` or
/// `OTEL_RESOURCE_ATTRIBUTES` (read by the SDK's detectors) names the service.
fn resource(agent_name: &str) -> Resource {
    let named_by_env = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.is_empty())
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES")
            .is_ok_and(|v| v.contains(semconv::SERVICE_NAME));
    let mut builder = Resource::builder();
    if !named_by_env {
        builder = builder.with_service_name(semconv::DEFAULT_SERVICE_NAME);
    }
    builder
        .with_attributes([
            KeyValue::new(semconv::SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
            KeyValue::new(semconv::GEN_AI_AGENT_NAME, agent_name.to_owned()),
        ])
        .build()
}
