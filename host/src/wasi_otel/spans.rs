//! `wasi:otel/tracing`: the guest's SDK announces each span as it starts and
//! hands it over when it ends. A started span is the guest's current span
//! until it ends, so host spans opened meanwhile nest under it; an ended
//! one is recorded under the guest's id, beneath the span it names as
//! parent if the guest started that one too, else beneath the span that
//! was current when it started. Times are the host's, events kept within them.

use super::bindings::wasi::otel::tracing::{
    Host, Link as WitLink, SpanContext as WitSpanContext, SpanData, SpanKind as WitKind,
    Status as WitStatus,
};
use super::values::{key_values, span_context, span_id, time, wit_span_context};
use super::{WasiOtelView, bindings::wasi::otel::tracing::Event as WitEvent};
use crate::bindings::{Bounded, MAX_OPEN_SPANS, MAX_SPAN_BYTES, MAX_SPANS, attribute_bytes};
use crate::telemetry::{GuestSpanKey, semconv};
use opentelemetry::trace::{
    Event, Link, SpanBuilder, SpanContext, SpanId, SpanKind, Status, TraceContextExt,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use std::collections::{HashMap, HashSet};
use std::time::SystemTime;

/// Events and links one span may carry; the rest are dropped.
const MAX_EVENTS: usize = 128;
const MAX_LINKS: usize = 32;

/// A span the guest started and has not ended.
struct Started {
    /// The span current when it started: its parent unless it names another.
    parent: Context,
    start: SystemTime,
}

/// The spans of one instance, by the ids the guest gave them.
#[derive(Default)]
pub(super) struct GuestSpans {
    open: HashMap<SpanId, Started>,
    /// Every span started in this instance: the parents later spans may name.
    started: HashSet<SpanId>,
}

impl GuestSpans {
    /// Spans started and never ended.
    pub fn unfinished(&self) -> usize {
        self.open.len()
    }

    /// Whether the guest started span `id` in this instance.
    pub fn started(&self, id: SpanId) -> bool {
        self.started.contains(&id)
    }
}

impl Host for WasiOtelView<'_> {
    fn on_start(&mut self, context: WitSpanContext) -> wasmtime::Result<()> {
        if self.ctx.telemetry().is_none() {
            return Ok(());
        }
        let current = self.spans.current().clone();
        let host = current.span().span_context().clone();
        let Some(guest) = span_context(&context).filter(|guest| {
            guest.trace_id() == host.trace_id()
                && !self.ctx.spans.started.contains(&guest.span_id())
                && !self.spans.holds(guest.span_id())
        }) else {
            // Another trace, an id reused or one of the host's: not the guest's to start.
            self.ctx.recorded.refused_spans += 1;
            return Ok(());
        };
        let spans = &mut self.ctx.spans;
        if spans.open.len() >= MAX_OPEN_SPANS || spans.started.len() >= MAX_SPANS {
            self.ctx.recorded.dropped_spans += 1;
            return Ok(());
        }
        spans.started.insert(guest.span_id());
        self.spans.open(
            GuestSpanKey::Id(guest.span_id()),
            in_guest_span(&current, guest.span_id()),
        );
        spans.open.insert(
            guest.span_id(),
            Started {
                parent: current,
                start: SystemTime::now(),
            },
        );
        Ok(())
    }

    fn on_end(&mut self, span: SpanData) -> wasmtime::Result<()> {
        let Some(run) = self.ctx.run.clone() else {
            return Ok(());
        };
        let Some((id, started)) = span_id(&span.span_context.span_id)
            .and_then(|id| Some((id, self.ctx.spans.open.remove(&id)?)))
        else {
            self.ctx.recorded.refused_spans += 1;
            return Ok(());
        };
        self.spans.close(GuestSpanKey::Id(id));
        let end = SystemTime::now();
        let parent = match span_id(&span.parent_span_id) {
            Some(named) if named != id && self.ctx.spans.started.contains(&named) => {
                in_guest_span(&started.parent, named)
            }
            _ => started.parent,
        };
        let built = SpanBuilt::new(&self.ctx.component, span, started.start, end);
        if built.cut {
            self.ctx.recorded.dropped_items += 1;
        }
        let kept =
            run.telemetry()
                .record_span(id, built.scope, built.builder, built.status, &parent, end);
        self.ctx.recorded.ids_not_kept |= !kept;
        Ok(())
    }

    fn current_span_context(&mut self) -> wasmtime::Result<WitSpanContext> {
        Ok(wit_span_context(self.spans.current().span().span_context()))
    }

    fn outer_span_context(&mut self) -> wasmtime::Result<WitSpanContext> {
        self.current_span_context()
    }
}

/// A guest's finished span as the host records it.
struct SpanBuilt {
    builder: SpanBuilder,
    status: Status,
    scope: InstrumentationScope,
    /// Attributes, events or links were dropped for room.
    cut: bool,
}

impl SpanBuilt {
    fn new(component: &str, span: SpanData, start: SystemTime, end: SystemTime) -> Self {
        let name = span.name.bounded();
        let mut room = MAX_SPAN_BYTES.saturating_sub(name.len());
        let mut cut = false;
        let mut fits = |bytes: usize| {
            let fits = bytes <= room;
            if fits {
                room -= bytes;
            } else {
                cut = true;
            }
            fits
        };
        // The host's attributes first: the SDK keeps the first it is given.
        let mut attributes = vec![
            KeyValue::new(semconv::GLASSBOX_COMPONENT, component.to_owned()),
            KeyValue::new(semconv::GLASSBOX_SPAN_ORIGIN, semconv::SPAN_ORIGIN_GUEST),
        ];
        let guest_attributes = key_values(span.attributes);
        if fits(attribute_bytes(&guest_attributes)) {
            attributes.extend(guest_attributes);
        }
        let events: Vec<Event> = span
            .events
            .into_iter()
            .take(MAX_EVENTS)
            .filter_map(
                |WitEvent {
                     name,
                     time: at,
                     attributes,
                 }| {
                    let (name, attributes) = (name.bounded(), key_values(attributes));
                    fits(name.len() + attribute_bytes(&attributes))
                        .then(|| Event::new(name, time(at).clamp(start, end), attributes, 0))
                },
            )
            .collect();
        let links: Vec<Link> = span
            .links
            .into_iter()
            .take(MAX_LINKS)
            .filter_map(
                |WitLink {
                     span_context: linked,
                     attributes,
                 }| {
                    let linked = span_context(&linked)?;
                    let attributes = key_values(attributes);
                    fits(attribute_bytes(&attributes)).then(|| Link::new(linked, attributes, 0))
                },
            )
            .collect();
        let status = match span.status {
            WitStatus::Unset => Status::Unset,
            WitStatus::Ok => Status::Ok,
            WitStatus::Error(description) => Status::error(description.bounded()),
        };
        let scope = span.instrumentation_scope;
        let mut scope_builder = InstrumentationScope::builder(scope.name.bounded());
        if let Some(version) = scope.version {
            scope_builder = scope_builder.with_version(version.bounded());
        }
        let builder = SpanBuilder::from_name(name)
            .with_kind(kind(span.span_kind))
            .with_start_time(start)
            .with_attributes(attributes)
            .with_events(events)
            .with_links(links);
        SpanBuilt {
            builder,
            status,
            scope: scope_builder.build(),
            cut,
        }
    }
}

/// `context` with the guest's span `id`, in the same trace, as its current span.
fn in_guest_span(context: &Context, id: SpanId) -> Context {
    let host = context.span().span_context().clone();
    context.with_remote_span_context(SpanContext::new(
        host.trace_id(),
        id,
        host.trace_flags(),
        false,
        host.trace_state().clone(),
    ))
}

fn kind(kind: WitKind) -> SpanKind {
    match kind {
        WitKind::Client => SpanKind::Client,
        WitKind::Server => SpanKind::Server,
        WitKind::Producer => SpanKind::Producer,
        WitKind::Consumer => SpanKind::Consumer,
        WitKind::Internal => SpanKind::Internal,
    }
}
