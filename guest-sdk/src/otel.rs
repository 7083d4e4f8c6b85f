//! The plain OpenTelemetry API in a component, through `wasi:otel` (the
//! WASI OpenTelemetry proposal), with the `otel` feature. [`init`] sets the
//! global tracer and meter providers to ones that hand every finished span,
//! log record and metric to the host, which nests them under its own spans
//! and exports them with its own. Code instrumented with the `opentelemetry`
//! crate, yours or a library's, is traced as written:
//!
//! ```no_run
//! use opentelemetry::{global, trace::{Tracer, TraceContextExt}, KeyValue};
//!
//! let otel = glassbox_sdk::otel::init();
//! let tracer = global::tracer("my-agent");
//! tracer.in_span("plan", |cx| {
//!     cx.span().set_attribute(KeyValue::new("plan.steps", 3));
//!     global::meter("my-agent").u64_counter("plan.runs").build().add(1, &[]);
//! });
//! otel.flush_metrics().ok(); // also done when `otel` is dropped
//! ```
//!
//! A span started with no parent joins the host's trace under the host's
//! current span (the run, the tool call, or an open `telemetry::Span`).

use opentelemetry::logs::{AnyValue, Severity};
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceId};
use opentelemetry::{Array, Context, InstrumentationScope, KeyValue, Value, global};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::metrics::data::{
    AggregatedMetrics, Gauge, Histogram, MetricData, ResourceMetrics, Sum,
};
use opentelemetry_sdk::metrics::reader::MetricReader;
use opentelemetry_sdk::metrics::{
    InstrumentKind, ManualReader, Pipeline, SdkMeterProvider, Temporality,
};
use opentelemetry_sdk::trace::{
    IdGenerator, RandomIdGenerator, SdkTracerProvider, Span, SpanData, SpanProcessor,
};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The `wasi:otel` interfaces themselves, for what the OpenTelemetry SDK does not do.
pub mod wit {
    wit_bindgen::generate!({
        world: "wasi:otel/imports",
        path: "wit/wasi-otel",
        generate_all,
    });
    pub use wasi::otel::{logs, metrics, tracing, types};
}

use wit::wasi::clocks::wall_clock::Datetime;
use wit::{logs, metrics, tracing, types};

/// The providers [`init`] installed. Dropping it hands the host the metrics
/// not yet exported.
pub struct Otel {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    logger_provider: SdkLoggerProvider,
    reader: Arc<ManualReader>,
}

/// Installs providers that report to the host as the global tracer and
/// meter providers, and returns them; log records go through
/// [`Otel::logger_provider`].
pub fn init() -> Otel {
    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(HostSpans)
        .with_id_generator(HostTraceIds::default())
        .build();
    // Delta: each export carries what changed since the last, which is what
    // the host records.
    let reader = Arc::new(
        ManualReader::builder()
            .with_temporality(Temporality::Delta)
            .build(),
    );
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(SharedReader(reader.clone()))
        .build();
    let logger_provider = SdkLoggerProvider::builder()
        .with_log_processor(HostLogs)
        .build();
    global::set_tracer_provider(tracer_provider.clone());
    global::set_meter_provider(meter_provider.clone());
    Otel {
        tracer_provider,
        meter_provider,
        logger_provider,
        reader,
    }
}

impl Otel {
    pub fn tracer_provider(&self) -> &SdkTracerProvider {
        &self.tracer_provider
    }

    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.meter_provider
    }

    /// Where log records go: a `Logger` of it, or a log bridge built on it.
    pub fn logger_provider(&self) -> &SdkLoggerProvider {
        &self.logger_provider
    }

    /// Hands the host what the meters measured since the last export. The
    /// error is the host's word on what it refused.
    pub fn flush_metrics(&self) -> Result<(), String> {
        let mut collected = ResourceMetrics::default();
        self.reader
            .collect(&mut collected)
            .map_err(|e| e.to_string())?;
        metrics::export(&resource_metrics(&collected))
    }
}

impl Drop for Otel {
    fn drop(&mut self) {
        if let Err(refused) = self.flush_metrics() {
            eprintln!("metrics export: {refused}");
        }
    }
}

/// Spans, announced to the host as they start and handed over as they end.
#[derive(Debug)]
struct HostSpans;

impl SpanProcessor for HostSpans {
    fn on_start(&self, span: &mut Span, _cx: &Context) {
        tracing::on_start(&span_context(opentelemetry::trace::Span::span_context(
            span,
        )));
    }

    fn on_end(&self, span: SpanData) {
        tracing::on_end(&span_data(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// Random span ids, and the host's trace for new traces: a span without a
/// parent joins the trace the host is recording, under its current span.
#[derive(Debug, Default)]
struct HostTraceIds {
    random: RandomIdGenerator,
}

impl IdGenerator for HostTraceIds {
    fn new_trace_id(&self) -> TraceId {
        TraceId::from_hex(&tracing::current_span_context().trace_id)
            .ok()
            .filter(|id| *id != TraceId::INVALID)
            .unwrap_or_else(|| self.random.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.random.new_span_id()
    }
}

/// Log records, handed to the host as they are emitted.
#[derive(Debug)]
struct HostLogs;

impl LogProcessor for HostLogs {
    fn emit(&self, record: &mut SdkLogRecord, scope: &InstrumentationScope) {
        logs::on_emit(&log_record(record, scope));
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }
}

/// The manual reader, registered with the meter provider and kept for [`Otel::flush_metrics`].
#[derive(Debug)]
struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

fn datetime(time: SystemTime) -> Datetime {
    let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    Datetime {
        seconds: since.as_secs(),
        nanoseconds: since.subsec_nanos(),
    }
}

fn span_context(context: &SpanContext) -> tracing::SpanContext {
    tracing::SpanContext {
        trace_id: context.trace_id().to_string(),
        span_id: context.span_id().to_string(),
        trace_flags: if context.is_sampled() {
            tracing::TraceFlags::SAMPLED
        } else {
            tracing::TraceFlags::empty()
        },
        is_remote: context.is_remote(),
        trace_state: context
            .trace_state()
            .header()
            .split(',')
            .filter_map(|entry| entry.split_once('='))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect(),
    }
}

fn span_data(span: SpanData) -> tracing::SpanData {
    tracing::SpanData {
        span_context: span_context(&span.span_context),
        parent_span_id: if span.parent_span_id == SpanId::INVALID {
            String::new()
        } else {
            span.parent_span_id.to_string()
        },
        span_kind: match span.span_kind {
            opentelemetry::trace::SpanKind::Client => tracing::SpanKind::Client,
            opentelemetry::trace::SpanKind::Server => tracing::SpanKind::Server,
            opentelemetry::trace::SpanKind::Producer => tracing::SpanKind::Producer,
            opentelemetry::trace::SpanKind::Consumer => tracing::SpanKind::Consumer,
            opentelemetry::trace::SpanKind::Internal => tracing::SpanKind::Internal,
        },
        name: span.name.into_owned(),
        start_time: datetime(span.start_time),
        end_time: datetime(span.end_time),
        attributes: key_values(&span.attributes),
        events: span
            .events
            .events
            .iter()
            .map(|event| tracing::Event {
                name: event.name.to_string(),
                time: datetime(event.timestamp),
                attributes: key_values(&event.attributes),
            })
            .collect(),
        links: span
            .links
            .links
            .iter()
            .map(|link| tracing::Link {
                span_context: span_context(&link.span_context),
                attributes: key_values(&link.attributes),
            })
            .collect(),
        status: match span.status {
            Status::Unset => tracing::Status::Unset,
            Status::Ok => tracing::Status::Ok,
            Status::Error { description } => tracing::Status::Error(description.into_owned()),
        },
        instrumentation_scope: scope(&span.instrumentation_scope),
        dropped_attributes: span.dropped_attributes_count,
        dropped_events: span.events.dropped_count,
        dropped_links: span.links.dropped_count,
    }
}

fn scope(scope: &InstrumentationScope) -> types::InstrumentationScope {
    types::InstrumentationScope {
        name: scope.name().to_owned(),
        version: scope.version().map(str::to_owned),
        schema_url: scope.schema_url().map(str::to_owned),
        attributes: key_values(&scope.attributes().cloned().collect::<Vec<_>>()),
    }
}

fn key_values(attributes: &[KeyValue]) -> Vec<types::KeyValue> {
    attributes
        .iter()
        .map(|KeyValue { key, value, .. }| types::KeyValue {
            key: key.to_string(),
            value: json_value(value).to_string(),
        })
        .collect()
}

/// An attribute value as the JSON `wasi:otel` carries it in.
fn json_value(value: &Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Value::Bool(flag) => Json::from(*flag),
        Value::I64(number) => Json::from(*number),
        Value::F64(number) => Json::from(*number),
        Value::String(text) => Json::from(text.as_str()),
        Value::Array(Array::Bool(items)) => Json::from(items.clone()),
        Value::Array(Array::I64(items)) => Json::from(items.clone()),
        Value::Array(Array::F64(items)) => Json::from(items.clone()),
        Value::Array(Array::String(items)) => {
            Json::from(items.iter().map(|item| item.as_str()).collect::<Vec<_>>())
        }
        other => Json::from(other.to_string()),
    }
}

fn any_json(value: &AnyValue) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        AnyValue::Int(number) => Json::from(*number),
        AnyValue::Double(number) => Json::from(*number),
        AnyValue::String(text) => Json::from(text.as_str()),
        AnyValue::Boolean(flag) => Json::from(*flag),
        AnyValue::ListAny(items) => Json::Array(items.iter().map(any_json).collect()),
        AnyValue::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(key, value)| (key.to_string(), any_json(value)))
                .collect(),
        ),
        other => Json::from(format!("{other:?}")),
    }
}

fn log_record(record: &SdkLogRecord, scope_of: &InstrumentationScope) -> logs::LogRecord {
    let trace = record.trace_context();
    logs::LogRecord {
        timestamp: record.timestamp().map(datetime),
        observed_timestamp: record.observed_timestamp().map(datetime),
        severity_text: record.severity_text().map(str::to_owned),
        severity_number: record.severity_number().map(|s: Severity| s as u8),
        body: record.body().map(|body| any_json(body).to_string()),
        attributes: Some(
            record
                .attributes_iter()
                .map(|(key, value)| types::KeyValue {
                    key: key.to_string(),
                    value: any_json(value).to_string(),
                })
                .collect(),
        ),
        event_name: record.event_name().map(str::to_owned),
        resource: None,
        instrumentation_scope: Some(scope(scope_of)),
        trace_id: trace.map(|t| t.trace_id.to_string()),
        span_id: trace.map(|t| t.span_id.to_string()),
        trace_flags: trace.and_then(|t| t.trace_flags).map(|flags| {
            if flags.is_sampled() {
                tracing::TraceFlags::SAMPLED
            } else {
                tracing::TraceFlags::empty()
            }
        }),
    }
}

/// A number as `wasi:otel` carries a measurement.
trait Measurement: Copy {
    fn number(self) -> metrics::MetricNumber;
}

impl Measurement for f64 {
    fn number(self) -> metrics::MetricNumber {
        metrics::MetricNumber::F64(self)
    }
}

impl Measurement for u64 {
    fn number(self) -> metrics::MetricNumber {
        metrics::MetricNumber::U64(self)
    }
}

impl Measurement for i64 {
    fn number(self) -> metrics::MetricNumber {
        metrics::MetricNumber::S64(self)
    }
}

fn resource_metrics(collected: &ResourceMetrics) -> metrics::ResourceMetrics {
    metrics::ResourceMetrics {
        resource: types::Resource {
            attributes: key_values(
                &collected
                    .resource()
                    .iter()
                    .map(|(key, value)| KeyValue::new(key.clone(), value.clone()))
                    .collect::<Vec<_>>(),
            ),
            schema_url: collected.resource().schema_url().map(str::to_owned),
        },
        scope_metrics: collected
            .scope_metrics()
            .map(|scoped| metrics::ScopeMetrics {
                scope: scope(scoped.scope()),
                metrics: scoped
                    .metrics()
                    .filter_map(|metric| {
                        Some(metrics::Metric {
                            name: metric.name().to_owned(),
                            description: metric.description().to_owned(),
                            unit: metric.unit().to_owned(),
                            data: metric_data(metric.data())?,
                        })
                    })
                    .collect(),
            })
            .collect(),
    }
}

/// `data` as `wasi:otel` carries it; `None` for exponential histograms,
/// which this SDK's default aggregation never makes.
fn metric_data(data: &AggregatedMetrics) -> Option<metrics::MetricData> {
    use metrics::MetricData as Wit;
    Some(match data {
        AggregatedMetrics::F64(MetricData::Gauge(g)) => Wit::F64Gauge(gauge(g)),
        AggregatedMetrics::U64(MetricData::Gauge(g)) => Wit::U64Gauge(gauge(g)),
        AggregatedMetrics::I64(MetricData::Gauge(g)) => Wit::S64Gauge(gauge(g)),
        AggregatedMetrics::F64(MetricData::Sum(s)) => Wit::F64Sum(sum(s)),
        AggregatedMetrics::U64(MetricData::Sum(s)) => Wit::U64Sum(sum(s)),
        AggregatedMetrics::I64(MetricData::Sum(s)) => Wit::S64Sum(sum(s)),
        AggregatedMetrics::F64(MetricData::Histogram(h)) => Wit::F64Histogram(histogram(h)),
        AggregatedMetrics::U64(MetricData::Histogram(h)) => Wit::U64Histogram(histogram(h)),
        AggregatedMetrics::I64(MetricData::Histogram(h)) => Wit::S64Histogram(histogram(h)),
        _ => return None,
    })
}

fn temporality(temporality: Temporality) -> metrics::Temporality {
    match temporality {
        Temporality::Cumulative => metrics::Temporality::Cumulative,
        Temporality::LowMemory => metrics::Temporality::LowMemory,
        _ => metrics::Temporality::Delta,
    }
}

fn gauge<T: Measurement>(gauge: &Gauge<T>) -> metrics::Gauge {
    metrics::Gauge {
        data_points: gauge
            .data_points()
            .map(|point| metrics::GaugeDataPoint {
                attributes: key_values(&point.attributes().cloned().collect::<Vec<_>>()),
                value: point.value().number(),
                exemplars: Vec::new(),
            })
            .collect(),
        start_time: gauge.start_time().map(datetime),
        time: datetime(gauge.time()),
    }
}

fn sum<T: Measurement>(sum: &Sum<T>) -> metrics::Sum {
    metrics::Sum {
        data_points: sum
            .data_points()
            .map(|point| metrics::SumDataPoint {
                attributes: key_values(&point.attributes().cloned().collect::<Vec<_>>()),
                value: point.value().number(),
                exemplars: Vec::new(),
            })
            .collect(),
        start_time: datetime(sum.start_time()),
        time: datetime(sum.time()),
        temporality: temporality(sum.temporality()),
        is_monotonic: sum.is_monotonic(),
    }
}

fn histogram<T: Measurement>(histogram: &Histogram<T>) -> metrics::Histogram {
    metrics::Histogram {
        data_points: histogram
            .data_points()
            .map(|point| metrics::HistogramDataPoint {
                attributes: key_values(&point.attributes().cloned().collect::<Vec<_>>()),
                count: point.count(),
                bounds: point.bounds().collect(),
                bucket_counts: point.bucket_counts().collect(),
                min: point.min().map(Measurement::number),
                max: point.max().map(Measurement::number),
                sum: point.sum().number(),
                exemplars: Vec::new(),
            })
            .collect(),
        start_time: datetime(histogram.start_time()),
        time: datetime(histogram.time()),
        temporality: temporality(histogram.temporality()),
    }
}
