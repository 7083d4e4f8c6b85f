//! Telemetry: the tracer, meter and logger providers, their OTLP exporters, the
//! console trace tree, and the guest-facing `telemetry` capability. Capability
//! modules open their own spans through [`Telemetry`]; every name they use
//! lives in [`semconv`].

mod config;
mod content;
mod export;
mod guest;
pub mod propagation;
pub mod semconv;
mod steps;
mod tree;

pub use config::{OtlpProtocol, OtlpTarget, TelemetryConfig, TelemetryOverrides};
pub(crate) use content::{ContentCapture, json_or_text};
pub use content::{ContentConfig, DEFAULT_MAX_LENGTH, REDACTED};
pub use export::{BatchSettings, ExportStats};
pub use guest::GuestSpan;
pub(crate) use guest::SpanScope;
use steps::StepRecorder;
pub use steps::{Step, StepError, StepSink};

use export::{BoundedBatchProcessor, ExportCounts};
use opentelemetry::metrics::{Counter, Histogram, Meter, MeterProvider as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::trace::{SpanKind, SpanRef, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{SdkLogger, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use std::sync::Arc;
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

/// The providers behind one host process, and the instruments capability modules record into.
pub struct Telemetry {
    tracer: SdkTracer,
    logger: SdkLogger,
    instruments: Instruments,
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
        let content = ContentCapture::new(&config.content).map_err(TelemetryError::Config)?;
        let resource = resource(agent_name);
        let mut tracer_provider = SdkTracerProvider::builder().with_resource(resource.clone());
        let mut meter_provider = SdkMeterProvider::builder().with_resource(resource.clone());
        let mut logger_provider = SdkLoggerProvider::builder().with_resource(resource);
        if config.disabled {
            tracer_provider = tracer_provider.with_sampler(Sampler::AlwaysOff);
        }
        let export_counts = Arc::new(ExportCounts::default());
        let mut export_runtime = None;
        if let Some(target) = &config.otlp {
            // The exporters' connections run on a runtime of their own: on the
            // host's workers, guests computing between yields would starve them.
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("glassbox-otlp")
                .enable_all()
                .build()
                .map_err(|e| {
                    TelemetryError::Config(format!("cannot start the export runtime: {e}"))
                })?;
            let entered = runtime.enter();
            if target.traces {
                tracer_provider = tracer_provider.with_span_processor(BoundedBatchProcessor::new(
                    span_exporter(target)?,
                    config.batch,
                    export_counts.clone(),
                ));
            }
            if target.metrics {
                meter_provider = meter_provider
                    .with_reader(PeriodicReader::builder(metric_exporter(target)?).build());
            }
            if target.logs {
                logger_provider = logger_provider.with_batch_exporter(log_exporter(target)?);
            }
            drop(entered);
            export_runtime = Some(runtime);
        }
        let prometheus = if config.prometheus {
            let registry = prometheus::Registry::new();
            let exporter = opentelemetry_prometheus::exporter()
                .with_registry(registry.clone())
                .build()
                .map_err(|e| {
                    TelemetryError::Config(format!("cannot set up Prometheus metrics: {e}"))
                })?;
            meter_provider = meter_provider.with_reader(exporter);
            Some(registry)
        } else {
            None
        };
        let tree = config.trace_tree.then(TraceTree::default);
        if let Some(tree) = &tree {
            tracer_provider = tracer_provider.with_span_processor(tree.clone());
        }
        let (tracer_provider, meter_provider, logger_provider) = (
            tracer_provider.build(),
            meter_provider.build(),
            logger_provider.build(),
        );
        let meter = meter_provider.meter(INSTRUMENTATION_SCOPE);
        // A meter provider without a reader refuses observable instruments, loudly.
        let traces_exported = config.otlp.as_ref().is_some_and(|target| target.traces);
        let metrics_read =
            config.otlp.as_ref().is_some_and(|target| target.metrics) || prometheus.is_some();
        if traces_exported && metrics_read {
            observe_export(&meter, export_counts.clone());
        }
        let mut telemetry =
            Self::assemble(tracer_provider, meter_provider, logger_provider, content);
        telemetry.owns_providers = true;
        telemetry.prometheus = prometheus;
        telemetry.tree = tree;
        telemetry.export_counts = export_counts;
        telemetry.export_runtime = export_runtime;
        Ok(telemetry)
    }

    /// Telemetry through an embedding application's providers: the host's
    /// spans and metrics go wherever the application's go, under its resource.
    /// [`Telemetry::shutdown`] then flushes them and leaves them running; the
    /// application shuts them down. Log records from guests go nowhere.
    pub fn with_providers(
        tracer_provider: SdkTracerProvider,
        meter_provider: SdkMeterProvider,
        content: &ContentConfig,
    ) -> Result<Self, TelemetryError> {
        let content = ContentCapture::new(content).map_err(TelemetryError::Config)?;
        Ok(Self::assemble(
            tracer_provider,
            meter_provider,
            SdkLoggerProvider::builder().build(),
            content,
        ))
    }

    fn assemble(
        tracer_provider: SdkTracerProvider,
        meter_provider: SdkMeterProvider,
        logger_provider: SdkLoggerProvider,
        content: Option<ContentCapture>,
    ) -> Self {
        let meter = meter_provider.meter(INSTRUMENTATION_SCOPE);
        Telemetry {
            tracer: tracer_provider.tracer(INSTRUMENTATION_SCOPE),
            logger: opentelemetry::logs::LoggerProvider::logger(
                &logger_provider,
                INSTRUMENTATION_SCOPE,
            ),
            instruments: Instruments::new(&meter),
            tracer_provider,
            meter_provider,
            logger_provider,
            owns_providers: false,
            prometheus: None,
            tree: None,
            content,
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
        ActiveSpan {
            cx: parent.with_span(span),
            step,
            finished: false,
        }
    }

    pub(crate) fn logger(&self) -> &SdkLogger {
        &self.logger
    }

    /// How to capture message content, when it is captured at all.
    pub(crate) fn content(&self) -> Option<&ContentCapture> {
        self.content.as_ref()
    }

    pub(crate) fn instruments(&self) -> &Instruments {
        &self.instruments
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
            .filter_map(|(signal, result)| result.err().map(|e| (signal, e.to_string())))
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

/// A host span in progress. Dropping it unfinished means the future that owned
/// it was abandoned (Ctrl-C, or a caller giving up), which the span then records.
pub(crate) struct ActiveSpan {
    cx: Context,
    /// When the run is followed: the step reported as the span ends.
    step: Option<StepRecorder>,
    finished: bool,
}

impl ActiveSpan {
    /// The context holding the span, for children.
    pub fn context(&self) -> &Context {
        &self.cx
    }

    pub fn span(&self) -> SpanRef<'_> {
        self.cx.span()
    }

    /// Records a failure: status ERROR with `message`, and `error.type`.
    pub fn fail(&mut self, error_type: impl Into<opentelemetry::StringValue>, message: String) {
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

/// For HTTP, an explicit base endpoint gets the signal's path, as the
/// specification does for `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn signal_endpoint(target: &OtlpTarget, path: &str) -> Option<String> {
    let endpoint = target.endpoint.as_deref()?;
    Some(match target.protocol {
        Some(OtlpProtocol::HttpProtobuf) => format!("{}/{path}", endpoint.trim_end_matches('/')),
        _ => endpoint.to_owned(),
    })
}

/// Builds one signal's exporter from a builder that has not chosen a
/// transport yet: the protocol given, else the one the environment names.
macro_rules! otlp_exporter {
    ($builder:expr, $target:expr, $signal:literal, $path:literal) => {{
        let target: &OtlpTarget = $target;
        let endpoint = signal_endpoint(target, $path);
        let built = match target.protocol {
            Some(OtlpProtocol::Grpc) => {
                let builder = $builder
                    .with_tonic()
                    .with_protocol(opentelemetry_otlp::Protocol::Grpc);
                match endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
            Some(OtlpProtocol::HttpProtobuf) => {
                let builder = $builder
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                match endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
            None => $builder.build(),
        };
        built.map_err(|source| TelemetryError::Exporter {
            signal: $signal,
            source,
        })
    }};
}

fn span_exporter(target: &OtlpTarget) -> Result<opentelemetry_otlp::SpanExporter, TelemetryError> {
    otlp_exporter!(
        opentelemetry_otlp::SpanExporter::builder(),
        target,
        "traces",
        "v1/traces"
    )
}

fn metric_exporter(
    target: &OtlpTarget,
) -> Result<opentelemetry_otlp::MetricExporter, TelemetryError> {
    otlp_exporter!(
        opentelemetry_otlp::MetricExporter::builder(),
        target,
        "metrics",
        "v1/metrics"
    )
}

fn log_exporter(target: &OtlpTarget) -> Result<opentelemetry_otlp::LogExporter, TelemetryError> {
    otlp_exporter!(
        opentelemetry_otlp::LogExporter::builder(),
        target,
        "logs",
        "v1/logs"
    )
}

/// Reports what became of every span: exported, or dropped and why, and how
/// export requests fared. Read when metrics are collected, so counting costs
/// the export path nothing but atomic increments.
fn observe_export(meter: &Meter, counts: Arc<ExportCounts>) {
    use semconv::metric;
    let read = |counts: &Arc<ExportCounts>,
                field: fn(&ExportCounts) -> &std::sync::atomic::AtomicU64| {
        let counts = counts.clone();
        move || ExportCounts::get(field(&counts))
    };
    let exported = read(&counts, |c| &c.exported);
    meter
        .u64_observable_counter(metric::SPANS_EXPORTED)
        .with_unit("{span}")
        .with_description("Spans the exporter delivered")
        .with_callback(move |observer| observer.observe(exported(), &[]))
        .build();
    let dropped = [
        (
            metric::DROP_QUEUE_FULL,
            read(&counts, |c| &c.dropped_queue_full),
        ),
        (
            metric::DROP_EXPORT_FAILED,
            read(&counts, |c| &c.dropped_export_failed),
        ),
        (
            metric::DROP_AFTER_SHUTDOWN,
            read(&counts, |c| &c.dropped_after_shutdown),
        ),
    ];
    meter
        .u64_observable_counter(metric::SPANS_DROPPED)
        .with_unit("{span}")
        .with_description("Spans that were never delivered, by reason")
        .with_callback(move |observer| {
            for (reason, count) in &dropped {
                observer.observe(count(), &[KeyValue::new(semconv::ERROR_TYPE, *reason)]);
            }
        })
        .build();
    let attempts = read(&counts, |c| &c.export_attempts);
    meter
        .u64_observable_counter(metric::EXPORT_ATTEMPTS)
        .with_unit("{request}")
        .with_description("Span export requests made")
        .with_callback(move |observer| observer.observe(attempts(), &[]))
        .build();
    let failures = read(&counts, |c| &c.export_failures);
    meter
        .u64_observable_counter(metric::EXPORT_FAILURES)
        .with_unit("{request}")
        .with_description("Span export requests that failed or timed out; their spans are dropped")
        .with_callback(move |observer| observer.observe(failures(), &[]))
        .build();
}

/// The metric instruments; capability modules record into them beside their spans.
pub(crate) struct Instruments {
    pub token_usage: Histogram<u64>,
    pub operation_duration: Histogram<f64>,
    pub time_to_first_chunk: Histogram<f64>,
    pub time_per_output_chunk: Histogram<f64>,
    pub cost: Counter<f64>,
    pub tool_duration: Histogram<f64>,
    pub tool_errors: Counter<u64>,
    pub agent_duration: Histogram<f64>,
    pub agent_errors: Counter<u64>,
}

impl Instruments {
    fn new(meter: &Meter) -> Self {
        use semconv::metric;
        let seconds = |name: &'static str, description: &'static str| {
            meter
                .f64_histogram(name)
                .with_unit("s")
                .with_description(description)
                .with_boundaries(metric::DURATION_BUCKETS.to_vec())
                .build()
        };
        Instruments {
            token_usage: meter
                .u64_histogram(metric::TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Tokens used per LLM call, by token type")
                .with_boundaries(metric::TOKEN_BUCKETS.to_vec())
                .build(),
            operation_duration: seconds(metric::OPERATION_DURATION, "Duration of LLM calls"),
            time_to_first_chunk: seconds(
                metric::TIME_TO_FIRST_CHUNK,
                "Time from a streamed LLM call's start to its first chunk",
            ),
            time_per_output_chunk: seconds(
                metric::TIME_PER_OUTPUT_CHUNK,
                "Time between the chunks of a streamed LLM answer, after the first",
            ),
            cost: meter
                .f64_counter(metric::COST)
                .with_unit("USD")
                .with_description("What LLM calls cost, for models with a known price")
                .build(),
            tool_duration: seconds(metric::TOOL_DURATION, "Duration of tool calls"),
            tool_errors: meter
                .u64_counter(metric::TOOL_ERRORS)
                .with_description("Tool calls that failed, by error.type")
                .build(),
            agent_duration: seconds(metric::AGENT_DURATION, "Duration of agent runs"),
            agent_errors: meter
                .u64_counter(metric::AGENT_ERRORS)
                .with_description("Agent runs that failed, by error.type")
                .build(),
        }
    }
}
