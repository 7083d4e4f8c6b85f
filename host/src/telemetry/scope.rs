//! The nesting rule inside one store: host spans a guest causes (model, tool
//! and agent calls, outbound requests, log records) attach to the innermost
//! span the guest has open, else to the host span the store was created under.

use opentelemetry::Context;
use opentelemetry::trace::{SpanId, TraceContextExt};

/// How a guest names a span it opened: by the handle of a
/// `glassbox:agent/telemetry` span, or by the id its own OpenTelemetry SDK
/// gave a `wasi:otel` span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GuestSpanKey {
    Handle(u32),
    Id(SpanId),
}

/// Where new spans attach in one store.
pub(crate) struct SpanScope {
    base: Context,
    /// Open guest spans, innermost last.
    open: Vec<(GuestSpanKey, Context)>,
}

impl SpanScope {
    pub fn new(base: Context) -> Self {
        SpanScope {
            base,
            open: Vec::new(),
        }
    }

    /// The context new spans and log records belong to.
    pub fn current(&self) -> &Context {
        self.open.last().map_or(&self.base, |(_, cx)| cx)
    }

    /// How many guest spans are open.
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    /// Whether `id` is the span the store was created under or one now open.
    pub fn holds(&self, id: SpanId) -> bool {
        std::iter::once(&self.base)
            .chain(self.open.iter().map(|(_, cx)| cx))
            .any(|cx| cx.span().span_context().span_id() == id)
    }

    /// The guest opened span `key`, which now holds new children.
    pub fn open(&mut self, key: GuestSpanKey, cx: Context) {
        self.open.push((key, cx));
    }

    /// The guest ended span `key`, wherever it sits.
    pub fn close(&mut self, key: GuestSpanKey) {
        self.open.retain(|(open, _)| *open != key);
    }
}
