//! Where telemetry goes: each [`Sink`] attaches its exporters or readers to
//! the providers being built. OTLP exporters run on a runtime of their own,
//! so guests computing between yields on the host's workers cannot starve them.

use super::config::{
    OtlpProtocol, OtlpTarget, Signals, export_timeout, signal_protocol, with_signal_path,
};
use super::export::{BatchSettings, BoundedBatchProcessor, ExportCounts};
use super::ids::AdoptingIdGenerator;
use super::otlp_exporter::{OtlpSpanExporter, SpanExportConfig};
use super::otlp_tls::OtlpTls;
use super::semconv;
use super::tree::TraceTree;
use super::{INSTRUMENTATION_SCOPE, TelemetryError};
use crate::text::cause_chain;
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LoggerProviderBuilder, SdkLoggerProvider};
use opentelemetry_sdk::metrics::{MeterProviderBuilder, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{SdkTracerProvider, TracerProviderBuilder};
use std::sync::Arc;
use std::time::Duration;

/// One destination of the host's telemetry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sink {
    /// The signals `target` names, over OTLP.
    Otlp(OtlpTarget),
    /// Metrics kept for a Prometheus scrape ([`super::Telemetry::prometheus_text`]).
    Prometheus,
    /// Finished traces kept for printing as a tree ([`super::Telemetry::trace_tree`]).
    ConsoleTree,
    /// The signals printed to stdout as they are exported, in the
    /// OpenTelemetry SDK's console format.
    Console(Signals),
}

/// The providers being built, and what the sinks attached to them keep.
pub(super) struct Pipeline {
    pub tracer: TracerProviderBuilder,
    meter: MeterProviderBuilder,
    logger: LoggerProviderBuilder,
    batch: BatchSettings,
    export_counts: Arc<ExportCounts>,
    export_runtime: Option<tokio::runtime::Runtime>,
    prometheus: Option<prometheus::Registry>,
    tree: Option<TraceTree>,
    /// Spans are exported and their fate can be read as metrics.
    spans_exported: bool,
    metrics_read: bool,
}

/// What a [`Pipeline`] built.
pub(super) struct Built {
    pub tracer_provider: SdkTracerProvider,
    pub meter_provider: SdkMeterProvider,
    pub logger_provider: SdkLoggerProvider,
    pub export_counts: Arc<ExportCounts>,
    pub export_runtime: Option<tokio::runtime::Runtime>,
    pub prometheus: Option<prometheus::Registry>,
    pub tree: Option<TraceTree>,
}

impl Pipeline {
    pub fn new(resource: Resource, batch: BatchSettings) -> Self {
        Pipeline {
            tracer: SdkTracerProvider::builder()
                .with_resource(resource.clone())
                .with_id_generator(AdoptingIdGenerator::default()),
            meter: SdkMeterProvider::builder().with_resource(resource.clone()),
            logger: SdkLoggerProvider::builder().with_resource(resource),
            batch,
            export_counts: Arc::default(),
            export_runtime: None,
            prometheus: None,
            tree: None,
            spans_exported: false,
            metrics_read: false,
        }
    }

    pub fn build(mut self) -> Built {
        let tracer_provider = std::mem::take(&mut self.tracer).build();
        let meter_provider = std::mem::take(&mut self.meter).build();
        // A meter provider without a reader refuses observable instruments, loudly.
        if self.spans_exported && self.metrics_read {
            observe_export(
                &meter_provider.meter(INSTRUMENTATION_SCOPE),
                self.export_counts.clone(),
            );
        }
        Built {
            tracer_provider,
            meter_provider,
            logger_provider: std::mem::take(&mut self.logger).build(),
            export_counts: self.export_counts.clone(),
            export_runtime: self.export_runtime.take(),
            prometheus: self.prometheus.take(),
            tree: self.tree.take(),
        }
    }

    /// The runtime OTLP exporters run on, started with the first of them.
    fn export_runtime(&mut self) -> Result<&tokio::runtime::Runtime, TelemetryError> {
        if self.export_runtime.is_none() {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .thread_name("glassbox-otlp")
                .enable_all()
                .build()
                .map_err(|e| {
                    TelemetryError::Config(format!("cannot start the export runtime: {e}"))
                })?;
            self.export_runtime = Some(runtime);
        }
        Ok(self.export_runtime.as_ref().expect("started just above"))
    }
}

impl Drop for Pipeline {
    /// A pipeline dropped before it was built (a sink failed to attach) may
    /// hold the export runtime, which must not block an async caller as it goes.
    fn drop(&mut self) {
        if let Some(runtime) = self.export_runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Sink {
    pub(super) fn attach(self, pipeline: &mut Pipeline) -> Result<(), TelemetryError> {
        match self {
            Sink::Otlp(target) => {
                // Exporters bind their connections to the runtime current as they are built.
                let export_runtime = pipeline.export_runtime()?.handle().clone();
                let _entered = export_runtime.enter();
                if target.traces {
                    let exporter = SpanExportConfig::from_env(&target)
                        .and_then(|config| OtlpSpanExporter::new(&config, export_runtime.clone()))
                        .map_err(|e| TelemetryError::Config(format!("OTLP traces: {e}")))?;
                    let processor = BoundedBatchProcessor::new(
                        exporter,
                        pipeline.batch,
                        pipeline.export_counts.clone(),
                    );
                    pipeline.tracer =
                        std::mem::take(&mut pipeline.tracer).with_span_processor(processor);
                    pipeline.spans_exported = true;
                }
                if target.metrics {
                    let reader = PeriodicReader::builder(metric_exporter(&target)?).build();
                    pipeline.meter = std::mem::take(&mut pipeline.meter).with_reader(reader);
                    pipeline.metrics_read = true;
                }
                if target.logs {
                    let exporter = log_exporter(&target)?;
                    pipeline.logger =
                        std::mem::take(&mut pipeline.logger).with_batch_exporter(exporter);
                }
            }
            Sink::Prometheus => {
                let registry = prometheus::Registry::new();
                let exporter = opentelemetry_prometheus::exporter()
                    .with_registry(registry.clone())
                    .build()
                    .map_err(|e| {
                        TelemetryError::Config(format!("cannot set up Prometheus metrics: {e}"))
                    })?;
                pipeline.meter = std::mem::take(&mut pipeline.meter).with_reader(exporter);
                pipeline.prometheus = Some(registry);
                pipeline.metrics_read = true;
            }
            Sink::Console(signals) => {
                if signals.traces {
                    pipeline.tracer = std::mem::take(&mut pipeline.tracer)
                        .with_batch_exporter(opentelemetry_stdout::SpanExporter::default());
                }
                if signals.metrics {
                    let reader =
                        PeriodicReader::builder(opentelemetry_stdout::MetricExporter::default())
                            .build();
                    pipeline.meter = std::mem::take(&mut pipeline.meter).with_reader(reader);
                    pipeline.metrics_read = true;
                }
                if signals.logs {
                    pipeline.logger = std::mem::take(&mut pipeline.logger)
                        .with_batch_exporter(opentelemetry_stdout::LogExporter::default());
                }
            }
            Sink::ConsoleTree => {
                let tree = TraceTree::default();
                pipeline.tracer =
                    std::mem::take(&mut pipeline.tracer).with_span_processor(tree.clone());
                pipeline.tree = Some(tree);
            }
        }
        Ok(())
    }
}

/// For HTTP, an explicit base endpoint gets the signal's path, as the
/// specification does for `OTEL_EXPORTER_OTLP_ENDPOINT`.
fn signal_endpoint(target: &OtlpTarget, path: &str) -> Option<String> {
    let endpoint = target.endpoint.as_deref()?;
    Some(match target.protocol {
        Some(OtlpProtocol::HttpProtobuf) => with_signal_path(endpoint, path),
        _ => endpoint.to_owned(),
    })
}

/// Builds one signal's exporter (`$variables`: the signal as the variables spell it) from
/// a builder that has not chosen a transport yet: over the protocol given,
/// else the one the environment names, trusting and presenting what the
/// environment's TLS settings add.
macro_rules! otlp_exporter {
    ($builder:expr, $target:expr, $signal:literal, $variables:literal, $path:literal) => {{
        use opentelemetry_otlp::{WithHttpConfig as _, WithTonicConfig as _};
        let target: &OtlpTarget = $target;
        let config_error = |e: String| TelemetryError::Config(format!("OTLP {}: {e}", $signal));
        let var = &crate::env::var;
        let protocol = signal_protocol(target, $variables, var).map_err(config_error)?;
        let tls = OtlpTls::resolve($variables, var).map_err(config_error)?;
        let endpoint = signal_endpoint(target, $path);
        let built = match protocol {
            OtlpProtocol::Grpc => {
                let mut builder = $builder
                    .with_tonic()
                    .with_protocol(opentelemetry_otlp::Protocol::Grpc);
                if !tls.is_default() {
                    builder = builder.with_tls_config(tls.tonic());
                }
                match endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
            OtlpProtocol::HttpProtobuf => {
                let mut builder = $builder
                    .with_http()
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
                if !tls.is_default() {
                    let timeout = export_timeout($variables, var).map_err(config_error)?;
                    let client = blocking_http_client(&tls, timeout).map_err(config_error)?;
                    builder = builder.with_http_client(client);
                }
                match endpoint {
                    Some(endpoint) => builder.with_endpoint(endpoint).build(),
                    None => builder.build(),
                }
            }
        };
        built.map_err(|source| TelemetryError::Exporter {
            signal: $signal,
            source,
        })
    }};
}

/// The HTTP client of a metrics or logs exporter whose TLS goes beyond the
/// system's roots. Blocking, as `opentelemetry-otlp`'s own is, since those
/// exporters run on threads of their own; built on a thread of its own, as a
/// blocking client starts a runtime, which a runtime's thread may not.
fn blocking_http_client(
    tls: &OtlpTls,
    timeout: Duration,
) -> Result<reqwest::blocking::Client, String> {
    let (authority, identity) = tls.reqwest();
    std::thread::spawn(move || {
        let mut builder = reqwest::blocking::Client::builder().timeout(timeout);
        for certificate in authority {
            builder = builder.add_root_certificate(certificate);
        }
        if let Some(identity) = identity {
            builder = builder.identity(identity);
        }
        builder
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", cause_chain(&e)))
    })
    .join()
    .unwrap_or_else(|_| Err("setting up the HTTP client failed".to_owned()))
}

fn metric_exporter(
    target: &OtlpTarget,
) -> Result<opentelemetry_otlp::MetricExporter, TelemetryError> {
    otlp_exporter!(
        opentelemetry_otlp::MetricExporter::builder(),
        target,
        "metrics",
        "METRICS",
        "v1/metrics"
    )
}

fn log_exporter(target: &OtlpTarget) -> Result<opentelemetry_otlp::LogExporter, TelemetryError> {
    otlp_exporter!(
        opentelemetry_otlp::LogExporter::builder(),
        target,
        "logs",
        "LOGS",
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
