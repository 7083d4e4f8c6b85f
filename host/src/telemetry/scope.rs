//! The nesting rule inside one store: host spans a guest causes (model, tool
//! and agent calls, outbound requests, log records) attach to the innermost
//! span the guest has open, else to the host span the store was created under.

use opentelemetry::Context;

/// Where new spans attach in one store.
pub(crate) struct SpanScope {
    base: Context,
    /// Open guest spans, innermost last, by the guest's handle.
    open: Vec<(u32, Context)>,
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

    /// The guest opened span `handle`, which now holds new children.
    pub fn open(&mut self, handle: u32, cx: Context) {
        self.open.push((handle, cx));
    }

    /// The guest ended span `handle`, wherever it sits.
    pub fn close(&mut self, handle: u32) {
        self.open.retain(|(open, _)| *open != handle);
    }
}
