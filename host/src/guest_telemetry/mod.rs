//! The guest `telemetry` capability: spans and log records a guest makes
//! itself. Guest spans nest under the host span of the run or tool call, and
//! host spans opened meanwhile nest under them (the store's [`SpanScope`]).

use crate::bindings::agent::glassbox::agent::telemetry::{
    Attribute, Host, HostSpan, Level, Span, StatusCode, Value as GuestValue,
};
use crate::telemetry::{SpanScope, Telemetry, semconv};
use crate::text::{cap_text, printable};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value};
use std::sync::Arc;
use wasmtime::component::{HasData, Resource, ResourceTable};

/// Guest spans open at once per store; past this, new spans are not recorded,
/// so a hostile guest cannot grow host memory without bound.
const MAX_OPEN_SPANS: usize = 256;
/// Attributes a guest may give one span, event or log record at once: well
/// under the SDK's limit per span, so the host's own attributes always fit.
const MAX_GUEST_ATTRIBUTES: usize = 64;
/// Longest string a guest may put in a span name, attribute or log record.
const MAX_TEXT_LEN: usize = 4096;

/// The host side of a span a guest opened, kept in the store's table under
/// the guest's `span` handle.
struct GuestSpan {
    /// Context holding the span; `None` when the span was not recorded.
    context: Option<Context>,
}

/// What one store's guest may record, and as which component.
pub(crate) struct GuestTelemetryCtx {
    component: Arc<str>,
    /// `None` while loading: nothing is recorded then, though logs still reach the host's log.
    telemetry: Option<Arc<Telemetry>>,
}

impl GuestTelemetryCtx {
    pub fn new(component: Arc<str>, telemetry: Option<Arc<Telemetry>>) -> Self {
        GuestTelemetryCtx {
            component,
            telemetry,
        }
    }
}

/// The parts of a store the `telemetry` import works on.
pub(crate) struct GuestTelemetryView<'a> {
    pub ctx: &'a GuestTelemetryCtx,
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
}

impl HostSpan for GuestTelemetryView<'_> {
    fn new(
        &mut self,
        name: String,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<Resource<Span>> {
        let context = match &self.ctx.telemetry {
            Some(telemetry) if self.spans.depth() < MAX_OPEN_SPANS => {
                let parent = self.spans.current();
                // The host's attributes first: the SDK keeps the first it is given.
                let mut host_attributes = vec![
                    KeyValue::new(semconv::GLASSBOX_COMPONENT, self.ctx.component.to_string()),
                    KeyValue::new(semconv::GLASSBOX_SPAN_ORIGIN, semconv::SPAN_ORIGIN_GUEST),
                ];
                host_attributes.extend(key_values(attributes));
                let attributes = host_attributes;
                let span = telemetry
                    .tracer()
                    .span_builder(truncate(name))
                    .with_kind(SpanKind::Internal)
                    .with_attributes(attributes)
                    .start_with_context(telemetry.tracer(), parent);
                Some(parent.with_span(span))
            }
            Some(_) => {
                tracing::warn!(
                    "[{}] more than {MAX_OPEN_SPANS} open spans; not recording more",
                    self.ctx.component
                );
                None
            }
            None => None,
        };
        let resource = self.table.push(GuestSpan {
            context: context.clone(),
        })?;
        if let Some(context) = context {
            self.spans.open(resource.rep(), context);
        }
        Ok(Resource::new_own(resource.rep()))
    }

    fn set_attributes(
        &mut self,
        span: Resource<Span>,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<()> {
        if let Some(cx) = self.guest_span(&span)? {
            cx.span().set_attributes(key_values(attributes));
        }
        Ok(())
    }

    fn add_event(
        &mut self,
        span: Resource<Span>,
        name: String,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<()> {
        if let Some(cx) = self.guest_span(&span)? {
            cx.span().add_event(truncate(name), key_values(attributes));
        }
        Ok(())
    }

    fn set_status(
        &mut self,
        span: Resource<Span>,
        code: StatusCode,
        description: Option<String>,
    ) -> wasmtime::Result<()> {
        if let Some(cx) = self.guest_span(&span)? {
            cx.span().set_status(match code {
                StatusCode::Unset => Status::Unset,
                StatusCode::Ok => Status::Ok,
                StatusCode::Error => Status::error(truncate(description.unwrap_or_default())),
            });
        }
        Ok(())
    }

    fn end(&mut self, span: Resource<Span>) -> wasmtime::Result<()> {
        if let Some(cx) = self.guest_span(&span)? {
            cx.span().end();
        }
        self.spans.close(span.rep());
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
        self.spans.close(rep);
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
        let message = truncate(message);
        let component = &*self.ctx.component;
        let shown = printable(&message);
        match level {
            Level::Trace => tracing::trace!("[{component}] {shown}"),
            Level::Debug => tracing::debug!("[{component}] {shown}"),
            Level::Info => tracing::info!("[{component}] {shown}"),
            Level::Warn => tracing::warn!("[{component}] {shown}"),
            Level::Error => tracing::error!("[{component}] {shown}"),
        }
        let Some(telemetry) = &self.ctx.telemetry else {
            return Ok(());
        };
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
        record.set_body(AnyValue::from(message));
        record.add_attribute(semconv::GLASSBOX_COMPONENT, component.to_owned());
        for KeyValue { key, value, .. } in key_values(attributes) {
            record.add_attribute(key, any_value(value));
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
/// [`MAX_GUEST_ATTRIBUTES`], text cut, and host-owned keys renamed.
fn key_values(attributes: Vec<Attribute>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .take(MAX_GUEST_ATTRIBUTES)
        .map(|Attribute { key, value }| {
            let value = match value {
                GuestValue::String(s) => Value::from(truncate(s)),
                GuestValue::Boolean(b) => Value::Bool(b),
                GuestValue::S64(n) => Value::I64(n),
                GuestValue::F64(x) => Value::F64(x),
                GuestValue::StringList(list) => Value::Array(Array::String(
                    list.into_iter()
                        .map(|s| StringValue::from(truncate(s)))
                        .collect(),
                )),
            };
            KeyValue::new(guest_key(truncate(key)), value)
        })
        .collect()
}

/// `key`, or `guest.key` when backends would read `key` as the host's word.
fn guest_key(key: String) -> String {
    let host_owned = semconv::HOST_OWNED_KEYS.contains(&key.as_str())
        || semconv::HOST_OWNED_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix));
    if host_owned {
        format!("{}{key}", semconv::GUEST_KEY_PREFIX)
    } else {
        key
    }
}

fn any_value(value: Value) -> AnyValue {
    match value {
        Value::Bool(b) => AnyValue::Boolean(b),
        Value::I64(n) => AnyValue::Int(n),
        Value::F64(x) => AnyValue::Double(x),
        other => AnyValue::String(other.as_str().into_owned().into()),
    }
}

/// Cuts `text` to [`MAX_TEXT_LEN`] bytes, with a marker when it was longer.
fn truncate(text: String) -> String {
    cap_text(text, MAX_TEXT_LEN).0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_owned_keys_are_renamed_and_others_kept() {
        for key in [
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.cost",
            "gen_ai.operation.name",
            "openinference.span.kind",
            "langfuse.observation.type",
            "glassbox.component",
        ] {
            assert_eq!(guest_key(key.into()), format!("guest.{key}"));
        }
        for key in ["app.step", "gen_ai.request.model", "retrieval.documents"] {
            assert_eq!(guest_key(key.into()), key);
        }
    }
}
