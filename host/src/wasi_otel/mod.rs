//! The `wasi:otel` capability: spans, log records and metrics from a guest's
//! own OpenTelemetry SDK, per the WASI OpenTelemetry proposal
//! (`wasi:otel@0.2.0-rc.2`), so a component written against the plain
//! OpenTelemetry API is traced here as on other hosts of the proposal.
//!
//! Guest spans keep the ids the guest gave them and nest as
//! `glassbox:agent/telemetry`'s do: under the host span of the run or tool
//! call, with host spans opened meanwhile under them ([`SpanScope`]). A
//! guest names only spans it started; its metrics go through the host's
//! meter, renamed out of the host's namespace; everything is bounded per
//! instance, and what is cut is reported once, when the instance ends.

mod logs;
mod metrics;
mod spans;
mod values;

pub(crate) use metrics::WasiOtelCapability;

use crate::bindings::Tally;
use crate::telemetry::{SpanScope, Telemetry};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        world: "wasi:otel/imports",
        path: "../wit/wasi-otel",
        imports: { default: trappable },
    });
}

use bindings::wasi::otel;

/// What one store's guest may record through `wasi:otel`, and what it has.
pub(crate) struct WasiOtelCtx {
    component: Arc<str>,
    /// `None` while loading, when nothing is recorded.
    run: Option<Arc<WasiOtelCapability>>,
    spans: spans::GuestSpans,
    metrics: metrics::Streams,
    recorded: Recorded,
}

/// What an instance lost to the bounds, reported when it ends.
#[derive(Default)]
struct Recorded {
    log_records: Tally,
    dropped_spans: usize,
    /// Spans ended without having started here, or naming ids that are not theirs.
    refused_spans: usize,
    dropped_items: usize,
    dropped_metric_points: usize,
    /// The tracer provider did not keep guest span ids (an embedder's, built
    /// without `AdoptingIdGenerator`).
    ids_not_kept: bool,
}

impl WasiOtelCtx {
    pub fn new(component: Arc<str>, run: Option<Arc<WasiOtelCapability>>) -> Self {
        WasiOtelCtx {
            component,
            run,
            spans: spans::GuestSpans::default(),
            metrics: metrics::Streams::default(),
            recorded: Recorded::default(),
        }
    }

    fn telemetry(&self) -> Option<&Arc<Telemetry>> {
        self.run.as_ref().map(|run| run.telemetry())
    }
}

impl Drop for WasiOtelCtx {
    /// Says once what the bounds cost, rather than at every refusal.
    fn drop(&mut self) {
        let r = &self.recorded;
        let unfinished = self.spans.unfinished();
        if r.dropped_spans
            + r.refused_spans
            + r.dropped_items
            + r.log_records.refused
            + r.dropped_metric_points
            + unfinished
            > 0
        {
            tracing::warn!(
                "[{}] wasi:otel telemetry was cut: {} spans past the bounds, {} spans refused (unknown, foreign or malformed ids), {} spans never ended, {} sets of attributes, events and links past a span's room, {} log records, {} metric data points",
                self.component,
                r.dropped_spans,
                r.refused_spans,
                unfinished,
                r.dropped_items,
                r.log_records.refused,
                r.dropped_metric_points,
            );
        }
        if r.ids_not_kept {
            tracing::warn!(
                "[{}] wasi:otel spans were recorded under new ids, so their children lost their parents: build the tracer provider with glassbox::telemetry::AdoptingIdGenerator",
                self.component
            );
        }
    }
}

/// The parts of a store the `wasi:otel` imports work on.
pub(crate) struct WasiOtelView<'a> {
    pub ctx: &'a mut WasiOtelCtx,
    pub spans: &'a mut SpanScope,
}

/// Links the `wasi:otel` imports through [`WasiOtelView`].
pub(crate) struct WasiOtel;

impl HasData for WasiOtel {
    type Data<'a> = WasiOtelView<'a>;
}

impl WasiOtel {
    /// Gives `linker` the `wasi:otel` interfaces, through `view`.
    pub fn add_to_linker<T: Send + 'static>(
        linker: &mut Linker<T>,
        view: fn(&mut T) -> WasiOtelView<'_>,
    ) -> wasmtime::Result<()> {
        otel::types::add_to_linker::<T, WasiOtel>(linker, view)?;
        otel::tracing::add_to_linker::<T, WasiOtel>(linker, view)?;
        otel::metrics::add_to_linker::<T, WasiOtel>(linker, view)?;
        otel::logs::add_to_linker::<T, WasiOtel>(linker, view)?;
        Ok(())
    }
}

impl otel::types::Host for WasiOtelView<'_> {}
