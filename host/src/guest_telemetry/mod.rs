//! The guest `telemetry` capability: spans and log records a guest makes
//! itself. Guest spans nest under the host span of the run or tool call, and
//! host spans opened meanwhile nest under them (the store's [`SpanScope`]).
//! What one instance may record is bounded (spans, bytes per span, log
//! records, log text shown), so a guest cannot grow the host's memory, its
//! export queue or its terminal without end; what is dropped is counted and
//! reported once, when the instance ends.

use crate::bindings::agent::glassbox::agent::telemetry::{
    Attribute, Host, HostSpan, Level, Span, StatusCode, Value as GuestValue,
};
use crate::bindings::{
    Bounded, MAX_GUEST_ATTRIBUTES, MAX_LOG_BYTES_SHOWN, MAX_LOG_RECORDS, MAX_OPEN_SPANS,
    MAX_SPAN_BYTES, MAX_SPANS, Tally, attribute_bytes, bounded_list,
};
use crate::telemetry::{GuestSpanKey, SpanScope, Telemetry, log_value, semconv};
use crate::text::printable;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use std::sync::Arc;
use wasmtime::component::{HasData, Resource, ResourceTable};

/// The host side of a span a guest opened, kept in the store's table under
/// the guest's `span` handle.
struct GuestSpan {
    /// Context holding the span; `None` when the span was not recorded.
    context: Option<Context>,
    /// Bytes of guest text the span holds so far.
    bytes: usize,
}

/// What one store's guest may record, as which component, and what it has.
pub(crate) struct GuestTelemetryCtx {
    component: Arc<str>,
    /// `None` while loading: nothing is recorded then, though logs still reach the host's log.
    telemetry: Option<Arc<Telemetry>>,
    recorded: Recorded,
}

/// What an instance recorded and what it lost to the bounds.
#[derive(Default)]
struct Recorded {
    spans: usize,
    log_records: Tally,
    log_bytes_shown: usize,
    dropped_spans: usize,
    dropped_items: usize,
    unshown_log_lines: usize,
}

impl GuestTelemetryCtx {
    pub fn new(component: Arc<str>, telemetry: Option<Arc<Telemetry>>) -> Self {
        GuestTelemetryCtx {
            component,
            telemetry,
            recorded: Recorded::default(),
        }
    }
}

impl Drop for GuestTelemetryCtx {
    /// Says once what the bounds cost, rather than at every refusal.
    fn drop(&mut self) {
        let r = &self.recorded;
        if r.dropped_spans + r.dropped_items + r.log_records.refused + r.unshown_log_lines > 0 {
            tracing::warn!(
                "[{}] telemetry past its bounds was dropped: {} spans (at most {MAX_SPANS}, {MAX_OPEN_SPANS} open), {} sets of attributes and events (at most {} KiB a span or record), {} log records (at most {MAX_LOG_RECORDS}); {} log lines not shown (at most {} KiB)",
                self.component,
                r.dropped_spans,
                r.dropped_items,
                MAX_SPAN_BYTES / 1024,
                r.log_records.refused,
                r.unshown_log_lines,
                MAX_LOG_BYTES_SHOWN / 1024,
            );
        }
    }
}

/// The parts of a store the `telemetry` import works on.
pub(crate) struct GuestTelemetryView<'a> {
    pub ctx: &'a mut GuestTelemetryCtx,
    pub table: &'a mut ResourceTable,
    pub spans: &'a mut SpanScope,
}

/// Links the `telemetry` import through [`GuestTelemetryView`].
pub(crate) struct GuestTelemetry;

impl HasData for GuestTelemetry {
    type Data<'a> = GuestTelemetryView<'a>;
}

impl GuestTelemetryView<'_> {
    fn guest_span(&self, span: &Resource<Span>) -> wasmtime::Result<Option<Context>> {
        let state = Resource::<GuestSpan>::new_borrow(span.rep());
        Ok(self.table.get(&state)?.context.clone())
    }

    /// The recorded span behind `span`, if `bytes` more of guest text fit in
    /// it; counts them, or the drop.
    fn span_with_room(
        &mut self,
        span: &Resource<Span>,
        bytes: usize,
    ) -> wasmtime::Result<Option<Context>> {
        let state = self
            .table
            .get_mut(&Resource::<GuestSpan>::new_borrow(span.rep()))?;
        let Some(context) = &state.context else {
            return Ok(None);
        };
        if state.bytes + bytes > MAX_SPAN_BYTES {
            self.ctx.recorded.dropped_items += 1;
            return Ok(None);
        }
        state.bytes += bytes;
        Ok(Some(context.clone()))
    }
}

impl HostSpan for GuestTelemetryView<'_> {
    fn new(
        &mut self,
        name: String,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<Resource<Span>> {
        let name = name.bounded();
        let attributes = key_values(attributes);
        let bytes = name.len() + attribute_bytes(&attributes);
        let recorded = &mut self.ctx.recorded;
        let context = match &self.ctx.telemetry {
            Some(_) if self.spans.depth() >= MAX_OPEN_SPANS || recorded.spans >= MAX_SPANS => {
                recorded.dropped_spans += 1;
                None
            }
            Some(telemetry) => {
                recorded.spans += 1;
                let parent = self.spans.current();
                // The host's attributes first: the SDK keeps the first it is given.
                let mut host_attributes = vec![
                    KeyValue::new(semconv::GLASSBOX_COMPONENT, self.ctx.component.to_string()),
                    KeyValue::new(semconv::GLASSBOX_SPAN_ORIGIN, semconv::SPAN_ORIGIN_GUEST),
                ];
                if bytes <= MAX_SPAN_BYTES {
                    host_attributes.extend(attributes);
                } else {
                    recorded.dropped_items += 1;
                }
                let span = telemetry
                    .tracer()
                    .span_builder(name)
                    .with_kind(SpanKind::Internal)
                    .with_attributes(host_attributes)
                    .start_with_context(telemetry.tracer(), parent);
                Some(parent.with_span(span))
            }
            None => None,
        };
        let resource = self.table.push(GuestSpan {
            context: context.clone(),
            bytes: bytes.min(MAX_SPAN_BYTES),
        })?;
        if let Some(context) = context {
            self.spans
                .open(GuestSpanKey::Handle(resource.rep()), context);
        }
        Ok(Resource::new_own(resource.rep()))
    }

    fn set_attributes(
        &mut self,
        span: Resource<Span>,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<()> {
        let attributes = key_values(attributes);
        if let Some(cx) = self.span_with_room(&span, attribute_bytes(&attributes))? {
            cx.span().set_attributes(attributes);
        }
        Ok(())
    }

    fn add_event(
        &mut self,
        span: Resource<Span>,
        name: String,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<()> {
        let (name, attributes) = (name.bounded(), key_values(attributes));
        let bytes = name.len() + attribute_bytes(&attributes);
        if let Some(cx) = self.span_with_room(&span, bytes)? {
            cx.span().add_event(name, attributes);
        }
        Ok(())
    }

    fn set_status(
        &mut self,
        span: Resource<Span>,
        code: StatusCode,
        description: Option<String>,
    ) -> wasmtime::Result<()> {
        let description = description.unwrap_or_default().bounded();
        if let Some(cx) = self.span_with_room(&span, description.len())? {
            cx.span().set_status(match code {
                StatusCode::Unset => Status::Unset,
                StatusCode::Ok => Status::Ok,
                StatusCode::Error => Status::error(description),
            });
        }
        Ok(())
    }

    fn end(&mut self, span: Resource<Span>) -> wasmtime::Result<()> {
        if let Some(cx) = self.guest_span(&span)? {
            cx.span().end();
        }
        self.spans.close(GuestSpanKey::Handle(span.rep()));
        Ok(())
    }

    fn drop(&mut self, span: Resource<Span>) -> wasmtime::Result<()> {
        let rep = span.rep();
        if let Some(cx) = self
            .table
            .delete(Resource::<GuestSpan>::new_own(rep))?
            .context
        {
            cx.span().end();
        }
        self.spans.close(GuestSpanKey::Handle(rep));
        Ok(())
    }
}

impl Host for GuestTelemetryView<'_> {
    fn log(
        &mut self,
        level: Level,
        message: String,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<()> {
        let message = message.bounded();
        let component = &*self.ctx.component;
        let recorded = &mut self.ctx.recorded;
        if recorded.log_bytes_shown + message.len() <= MAX_LOG_BYTES_SHOWN {
            recorded.log_bytes_shown += message.len();
            let shown = printable(&message);
            match level {
                Level::Trace => tracing::trace!("[{component}] {shown}"),
                Level::Debug => tracing::debug!("[{component}] {shown}"),
                Level::Info => tracing::info!("[{component}] {shown}"),
                Level::Warn => tracing::warn!("[{component}] {shown}"),
                Level::Error => tracing::error!("[{component}] {shown}"),
            }
        } else {
            recorded.unshown_log_lines += 1;
        }
        let Some(telemetry) = &self.ctx.telemetry else {
            return Ok(());
        };
        if !recorded.log_records.take(MAX_LOG_RECORDS) {
            return Ok(());
        }
        let logger = telemetry.logger();
        let mut record = logger.create_log_record();
        let (severity, text) = match level {
            Level::Trace => (Severity::Trace, "TRACE"),
            Level::Debug => (Severity::Debug, "DEBUG"),
            Level::Info => (Severity::Info, "INFO"),
            Level::Warn => (Severity::Warn, "WARN"),
            Level::Error => (Severity::Error, "ERROR"),
        };
        record.set_severity_number(severity);
        record.set_severity_text(text);
        let message_bytes = message.len();
        record.set_body(AnyValue::from(message));
        record.add_attribute(semconv::GLASSBOX_COMPONENT, component.to_owned());
        let attributes = key_values(attributes);
        if message_bytes + attribute_bytes(&attributes) <= MAX_SPAN_BYTES {
            for KeyValue { key, value, .. } in attributes {
                record.add_attribute(key, log_value(value));
            }
        } else {
            recorded.dropped_items += 1;
        }
        let span_context = self.spans.current().span().span_context().clone();
        if span_context.is_valid() {
            record.set_trace_context(
                span_context.trace_id(),
                span_context.span_id(),
                Some(span_context.trace_flags()),
            );
        }
        logger.emit(record);
        Ok(())
    }
}

/// A guest's attributes as the host records them: at most
/// [`MAX_GUEST_ATTRIBUTES`], text and lists bounded, and host-owned keys renamed.
fn key_values(attributes: Vec<Attribute>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .take(MAX_GUEST_ATTRIBUTES)
        .map(|Attribute { key, value }| {
            let value = match value {
                GuestValue::String(s) => Value::from(s.bounded()),
                GuestValue::Boolean(b) => Value::Bool(b),
                GuestValue::S64(n) => Value::I64(n),
                GuestValue::F64(x) => Value::F64(x),
                GuestValue::StringList(list) => Value::Array(Array::String(
                    bounded_list(list)
                        .into_iter()
                        .map(StringValue::from)
                        .collect(),
                )),
            };
            KeyValue::new(semconv::guest_key(key.bounded()), value)
        })
        .collect()
}
