//! Span ids given elsewhere. A guest's own OpenTelemetry SDK (`wasi:otel`)
//! picks its spans' ids, and by the time a span ends its children and the
//! `traceparent` of its outgoing requests already name it: the host records
//! it under that id. The tracer provider's id generator hands out the id
//! asked for, once, on the thread that asks; every other id is random.

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator};
use std::cell::Cell;

thread_local! {
    static NEXT_SPAN_ID: Cell<Option<SpanId>> = const { Cell::new(None) };
}

/// Random ids, but for a span started in [`with_span_id`], which gets the
/// id given there. The host's own providers use it; an embedding
/// application that wants guests' `wasi:otel` spans under their own ids
/// builds its tracer provider with it.
#[derive(Debug, Default)]
pub struct AdoptingIdGenerator {
    random: RandomIdGenerator,
}

impl IdGenerator for AdoptingIdGenerator {
    fn new_trace_id(&self) -> TraceId {
        self.random.new_trace_id()
    }

    fn new_span_id(&self) -> SpanId {
        NEXT_SPAN_ID
            .take()
            .unwrap_or_else(|| self.random.new_span_id())
    }
}

/// Runs `start`, in which the first span started gets `id`.
pub(crate) fn with_span_id<R>(id: SpanId, start: impl FnOnce() -> R) -> R {
    NEXT_SPAN_ID.set(Some(id));
    let started = start();
    NEXT_SPAN_ID.set(None);
    started
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_span_gets_the_id_asked_for_and_the_next_a_random_one() {
        let ids = AdoptingIdGenerator::default();
        let wanted = SpanId::from(0x0123_4567_89ab_cdef);
        let (first, second) = with_span_id(wanted, || (ids.new_span_id(), ids.new_span_id()));
        assert_eq!(first, wanted);
        assert_ne!(second, wanted);
        assert_ne!(ids.new_span_id(), wanted);
    }
}
