//! `wasi:otel/metrics`: what the guest SDK's reader collected, recorded
//! through the host's meter, so guest metrics leave with the host's, under
//! its resource, to every metrics sink. Each guest metric becomes an
//! instrument of the host's meter, which keeps it for the host's lifetime:
//! how many a host takes from guests is bounded, and so is what one data
//! point may carry. Totals since the start (cumulative temporality) become
//! changes against what the instance exported before; a histogram point
//! becomes observations at the middle of each bucket, so its counts and
//! buckets arrive exact and its sum close. Exponential histograms are refused.

use super::WasiOtelView;
use super::bindings::wasi::otel::metrics::{
    Error as ExportError, Gauge as WitGauge, Histogram as WitHistogram, Host, Metric, MetricData,
    MetricNumber, ResourceMetrics, Sum as WitSum, Temporality,
};
use super::values::key_values;
use crate::bindings::{Bounded, attribute_bytes};
use crate::telemetry::{Telemetry, semconv};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, UpDownCounter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Metrics guests may create in one host's lifetime.
const MAX_GUEST_METRICS: usize = 64;
/// Bytes of attributes one data point may carry: the meter keeps every
/// attribute set it sees until the host stops.
const MAX_POINT_ATTRIBUTE_BYTES: usize = 1024;
/// Data points, and histogram observations, one instance may hand over.
const MAX_POINTS: usize = 10_000;
/// Bucket bounds a guest histogram may have.
const MAX_BOUNDS: usize = 64;

/// What the host keeps for guest metrics: their instruments, by name.
pub(crate) struct WasiOtelCapability {
    telemetry: Arc<Telemetry>,
    instruments: Mutex<HashMap<String, Instrument>>,
}

impl WasiOtelCapability {
    pub fn new(telemetry: Arc<Telemetry>) -> Self {
        WasiOtelCapability {
            telemetry,
            instruments: Mutex::default(),
        }
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    /// The instrument for `metric`, made on first use; `None` when the name
    /// has another shape already or the host has all the guest metrics it takes.
    fn instrument(&self, name: &str, metric: &Metric, shape: Shape) -> Option<Instrument> {
        let mut instruments = self
            .instruments
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = instruments.get(name) {
            return (existing.shape() == shape).then(|| existing.clone());
        }
        if instruments.len() >= MAX_GUEST_METRICS {
            return None;
        }
        let made = Instrument::new(self.telemetry.meter(), name.to_owned(), metric, shape);
        instruments.insert(name.to_owned(), made.clone());
        Some(made)
    }
}

/// How a guest metric is recorded.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    F64Gauge,
    U64Gauge,
    I64Gauge,
    F64Counter,
    U64Counter,
    F64UpDown,
    I64UpDown,
    F64Histogram,
    U64Histogram,
}

#[derive(Clone)]
enum Instrument {
    F64Gauge(Gauge<f64>),
    U64Gauge(Gauge<u64>),
    I64Gauge(Gauge<i64>),
    F64Counter(Counter<f64>),
    U64Counter(Counter<u64>),
    F64UpDown(UpDownCounter<f64>),
    I64UpDown(UpDownCounter<i64>),
    F64Histogram(Histogram<f64>),
    U64Histogram(Histogram<u64>),
}

impl Instrument {
    fn new(meter: &Meter, name: String, metric: &Metric, shape: Shape) -> Self {
        let description = metric.description.clone().bounded();
        let unit = metric.unit.clone().bounded();
        macro_rules! build {
            ($make:ident) => {
                meter
                    .$make(name)
                    .with_description(description)
                    .with_unit(unit)
                    .build()
            };
        }
        let bounds = match &metric.data {
            MetricData::F64Histogram(h)
            | MetricData::U64Histogram(h)
            | MetricData::S64Histogram(h) => h
                .data_points
                .first()
                .map(|point| histogram_bounds(&point.bounds)),
            _ => None,
        }
        .unwrap_or_default();
        match shape {
            Shape::F64Gauge => Instrument::F64Gauge(build!(f64_gauge)),
            Shape::U64Gauge => Instrument::U64Gauge(build!(u64_gauge)),
            Shape::I64Gauge => Instrument::I64Gauge(build!(i64_gauge)),
            Shape::F64Counter => Instrument::F64Counter(build!(f64_counter)),
            Shape::U64Counter => Instrument::U64Counter(build!(u64_counter)),
            Shape::F64UpDown => Instrument::F64UpDown(build!(f64_up_down_counter)),
            Shape::I64UpDown => Instrument::I64UpDown(build!(i64_up_down_counter)),
            Shape::F64Histogram => Instrument::F64Histogram(
                meter
                    .f64_histogram(name)
                    .with_description(description)
                    .with_unit(unit)
                    .with_boundaries(bounds)
                    .build(),
            ),
            Shape::U64Histogram => Instrument::U64Histogram(
                meter
                    .u64_histogram(name)
                    .with_description(description)
                    .with_unit(unit)
                    .with_boundaries(bounds)
                    .build(),
            ),
        }
    }

    fn shape(&self) -> Shape {
        match self {
            Instrument::F64Gauge(_) => Shape::F64Gauge,
            Instrument::U64Gauge(_) => Shape::U64Gauge,
            Instrument::I64Gauge(_) => Shape::I64Gauge,
            Instrument::F64Counter(_) => Shape::F64Counter,
            Instrument::U64Counter(_) => Shape::U64Counter,
            Instrument::F64UpDown(_) => Shape::F64UpDown,
            Instrument::I64UpDown(_) => Shape::I64UpDown,
            Instrument::F64Histogram(_) => Shape::F64Histogram,
            Instrument::U64Histogram(_) => Shape::U64Histogram,
        }
    }

    /// Records `value`: a gauge's reading, or a sum's change.
    fn record(&self, value: f64, attributes: &[KeyValue]) {
        match self {
            Instrument::F64Gauge(g) => g.record(value, attributes),
            Instrument::U64Gauge(g) => g.record(value as u64, attributes),
            Instrument::I64Gauge(g) => g.record(value as i64, attributes),
            Instrument::F64Counter(c) => c.add(value, attributes),
            Instrument::U64Counter(c) => c.add(value as u64, attributes),
            Instrument::F64UpDown(c) => c.add(value, attributes),
            Instrument::I64UpDown(c) => c.add(value as i64, attributes),
            Instrument::F64Histogram(h) => h.record(value, attributes),
            // Rounded up, so a value just above a bucket's lower bound stays in the bucket.
            Instrument::U64Histogram(h) => h.record(value.ceil() as u64, attributes),
        }
    }
}

/// A histogram's bounds as the host's histogram takes them: finite, ascending, at most [`MAX_BOUNDS`].
fn histogram_bounds(bounds: &[f64]) -> Vec<f64> {
    let mut kept: Vec<f64> = Vec::new();
    for bound in bounds
        .iter()
        .copied()
        .filter(|b| b.is_finite())
        .take(MAX_BOUNDS)
    {
        if kept.last().is_none_or(|last| bound > *last) {
            kept.push(bound);
        }
    }
    kept
}

/// What one instance exported before, for turning totals into changes.
#[derive(Default)]
pub(super) struct Streams {
    previous: HashMap<String, Previous>,
    /// Data points and observations handed over so far.
    points: usize,
}

enum Previous {
    Total(f64),
    Buckets(Vec<u64>),
}

/// A stream's name: its metric and attribute set.
fn stream_key(name: &str, attributes: &[KeyValue]) -> String {
    let mut key = name.to_owned();
    for KeyValue { key: k, value, .. } in attributes {
        key.push('\0');
        key.push_str(k.as_str());
        key.push('=');
        key.push_str(&value.as_str());
    }
    key
}

impl Host for WasiOtelView<'_> {
    fn export(&mut self, metrics: ResourceMetrics) -> wasmtime::Result<Result<(), ExportError>> {
        let Some(run) = self.ctx.run.clone() else {
            return Ok(Ok(()));
        };
        let mut refused: Vec<String> = Vec::new();
        for metric in metrics
            .scope_metrics
            .into_iter()
            .flat_map(|scope| scope.metrics)
        {
            let name = semconv::guest_metric_name(metric.name.clone().bounded());
            let Some(shape) = shape(&metric.data) else {
                refused.push(format!("{name}: exponential histograms are not supported"));
                continue;
            };
            let Some(instrument) = run.instrument(&name, &metric, shape) else {
                refused.push(format!(
                    "{name}: another kind of metric has this name, or this host has all the {MAX_GUEST_METRICS} guest metrics it takes"
                ));
                continue;
            };
            let lost = self.record(&name, &instrument, metric.data);
            if lost > 0 {
                self.ctx.recorded.dropped_metric_points += lost;
                refused.push(format!(
                    "{name}: {lost} data points past the bounds (at most {MAX_POINTS} points and observations an instance, {MAX_POINT_ATTRIBUTE_BYTES} bytes of attributes a point)"
                ));
            }
        }
        Ok(if refused.is_empty() {
            Ok(())
        } else {
            Err(refused.join("; ").bounded())
        })
    }
}

impl WasiOtelView<'_> {
    /// Records `data` with `instrument`; returns how many points or observations were dropped.
    fn record(&mut self, name: &str, instrument: &Instrument, data: MetricData) -> usize {
        let component = KeyValue::new(semconv::GLASSBOX_COMPONENT, self.ctx.component.to_string());
        let streams = &mut self.ctx.metrics;
        let mut lost = 0;
        // A point's attributes, the component's added, when they fit and the
        // instance has room for the point; otherwise the point counts as lost.
        let admit = |guest: Vec<_>, streams: &mut Streams, lost: &mut usize| {
            let mut attributes = key_values(guest);
            let admitted =
                attribute_bytes(&attributes) <= MAX_POINT_ATTRIBUTE_BYTES && streams.take(1);
            if !admitted {
                *lost += 1;
                return None;
            }
            attributes.push(component.clone());
            Some(attributes)
        };
        match data {
            MetricData::F64Gauge(WitGauge { data_points, .. })
            | MetricData::U64Gauge(WitGauge { data_points, .. })
            | MetricData::S64Gauge(WitGauge { data_points, .. }) => {
                for point in data_points {
                    if let Some(attributes) = admit(point.attributes, streams, &mut lost) {
                        instrument.record(number(point.value), &attributes);
                    }
                }
            }
            MetricData::F64Sum(sum) | MetricData::U64Sum(sum) | MetricData::S64Sum(sum) => {
                let WitSum {
                    data_points,
                    temporality,
                    is_monotonic,
                    ..
                } = sum;
                // Low-memory temporality is delta for monotonic sums, cumulative otherwise.
                let totals = match temporality {
                    Temporality::Cumulative => true,
                    Temporality::Delta => false,
                    Temporality::LowMemory => !is_monotonic,
                };
                for point in data_points {
                    let Some(attributes) = admit(point.attributes, streams, &mut lost) else {
                        continue;
                    };
                    let value = number(point.value);
                    let change = if totals {
                        streams.change(stream_key(name, &attributes), value)
                    } else {
                        value
                    };
                    // A monotonic sum never goes down; a change below zero is a reset, already taken as the new total.
                    if !(is_monotonic && change < 0.0) {
                        instrument.record(change, &attributes);
                    }
                }
            }
            MetricData::F64Histogram(histogram)
            | MetricData::U64Histogram(histogram)
            | MetricData::S64Histogram(histogram) => {
                let WitHistogram {
                    data_points,
                    temporality,
                    ..
                } = histogram;
                let totals = matches!(temporality, Temporality::Cumulative);
                for point in data_points {
                    let Some(attributes) = admit(point.attributes, streams, &mut lost) else {
                        continue;
                    };
                    let counts = if totals {
                        streams.bucket_changes(stream_key(name, &attributes), point.bucket_counts)
                    } else {
                        point.bucket_counts
                    };
                    let bounds = histogram_bounds(&point.bounds);
                    for (bucket, count) in counts.into_iter().enumerate() {
                        let value = bucket_value(
                            &bounds,
                            bucket,
                            point.min.map(number),
                            point.max.map(number),
                        );
                        let taken = streams.take_up_to(count);
                        lost += usize::try_from(count - taken).unwrap_or(usize::MAX);
                        for _ in 0..taken {
                            instrument.record(value, &attributes);
                        }
                    }
                }
            }
            MetricData::F64ExponentialHistogram(_)
            | MetricData::U64ExponentialHistogram(_)
            | MetricData::S64ExponentialHistogram(_) => {}
        }
        lost
    }
}

impl Streams {
    /// Takes room for `n` points; false, taking none, when there is not room for all.
    fn take(&mut self, n: usize) -> bool {
        let fits = self.points + n <= MAX_POINTS;
        if fits {
            self.points += n;
        }
        fits
    }

    /// Takes room for as many of `n` observations as fit; returns how many.
    fn take_up_to(&mut self, n: u64) -> u64 {
        let room = (MAX_POINTS - self.points) as u64;
        let taken = n.min(room);
        self.points += taken as usize;
        taken
    }

    /// The change of a total since the last export, which the total replaces.
    /// The first total, and a total below the last (a reset), count whole.
    fn change(&mut self, stream: String, total: f64) -> f64 {
        let previous = self.remember(stream, Previous::Total(total));
        match previous {
            Some(Previous::Total(before)) if total >= before => total - before,
            _ => total,
        }
    }

    /// Bucket counts since the last export, as [`Streams::change`] does for totals.
    fn bucket_changes(&mut self, stream: String, totals: Vec<u64>) -> Vec<u64> {
        match self.remember(stream, Previous::Buckets(totals.clone())) {
            Some(Previous::Buckets(before))
                if before.len() == totals.len()
                    && totals.iter().zip(&before).all(|(now, then)| now >= then) =>
            {
                totals
                    .iter()
                    .zip(&before)
                    .map(|(now, then)| now - then)
                    .collect()
            }
            _ => totals,
        }
    }

    /// Keeps `now` for `stream`, returning what was kept before; a new stream
    /// past [`MAX_POINTS`] streams is not kept, so its next total counts whole.
    fn remember(&mut self, stream: String, now: Previous) -> Option<Previous> {
        if self.previous.len() >= MAX_POINTS && !self.previous.contains_key(&stream) {
            return None;
        }
        self.previous.insert(stream, now)
    }
}

/// How metric `data` is recorded; `None` for exponential histograms.
fn shape(data: &MetricData) -> Option<Shape> {
    Some(match data {
        MetricData::F64Gauge(_) => Shape::F64Gauge,
        MetricData::U64Gauge(_) => Shape::U64Gauge,
        MetricData::S64Gauge(_) => Shape::I64Gauge,
        MetricData::F64Sum(sum) if sum.is_monotonic => Shape::F64Counter,
        MetricData::F64Sum(_) => Shape::F64UpDown,
        MetricData::U64Sum(sum) | MetricData::S64Sum(sum) if sum.is_monotonic => Shape::U64Counter,
        MetricData::U64Sum(_) | MetricData::S64Sum(_) => Shape::I64UpDown,
        MetricData::F64Histogram(_) | MetricData::S64Histogram(_) => Shape::F64Histogram,
        MetricData::U64Histogram(_) => Shape::U64Histogram,
        MetricData::F64ExponentialHistogram(_)
        | MetricData::U64ExponentialHistogram(_)
        | MetricData::S64ExponentialHistogram(_) => return None,
    })
}

fn number(value: MetricNumber) -> f64 {
    match value {
        MetricNumber::F64(x) => x,
        MetricNumber::S64(n) => n as f64,
        MetricNumber::U64(n) => n as f64,
    }
}

/// A value that falls in bucket `bucket` of `bounds` (upper bounds,
/// inclusive): the middle of a bounded bucket, the minimum or maximum seen
/// for the open ones when it lies there, else their bound.
fn bucket_value(bounds: &[f64], bucket: usize, min: Option<f64>, max: Option<f64>) -> f64 {
    match (
        bucket.checked_sub(1).and_then(|i| bounds.get(i)),
        bounds.get(bucket),
    ) {
        (Some(low), Some(high)) => low + (high - low) / 2.0,
        (None, Some(high)) => min.filter(|m| m <= high).unwrap_or(*high),
        (Some(low), None) => max.filter(|m| m > low).unwrap_or(low.next_up()),
        (None, None) => min.or(max).unwrap_or(0.0),
    }
}
