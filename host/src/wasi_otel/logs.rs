//! `wasi:otel/logs`: log records from the guest's SDK, exported with the
//! host's, correlated with the guest span they name if the guest started it,
//! else with the current span. The guest's resource and scope give way to the
//! host's resource and the component's name.

use super::WasiOtelView;
use super::bindings::wasi::otel::logs::{Host, LogRecord};
use super::values::{body, key_values, span_id, time};
use crate::bindings::{Bounded, MAX_LOG_RECORDS, MAX_SPAN_BYTES, attribute_bytes};
use crate::telemetry::{log_value, semconv};
use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, Severity};
use opentelemetry::trace::TraceContextExt;
use std::time::SystemTime;

/// The attribute a record's event name travels in: the SDK takes event names
/// only as static text, and a guest's are not.
const EVENT_NAME: &str = "event.name";

impl Host for WasiOtelView<'_> {
    fn on_emit(&mut self, data: LogRecord) -> wasmtime::Result<()> {
        let Some(telemetry) = self.ctx.telemetry().cloned() else {
            return Ok(());
        };
        let recorded = &mut self.ctx.recorded;
        if !recorded.log_records.take(MAX_LOG_RECORDS) {
            return Ok(());
        }
        let logger = telemetry.logger();
        let mut record = logger.create_log_record();
        record.set_observed_timestamp(SystemTime::now());
        if let Some(at) = data.timestamp {
            record.set_timestamp(time(at));
        }
        // The SDK takes severity text only as static text: it is the number's name.
        let severity = (data.severity_number.and_then(severity)).or_else(|| {
            let text = data.severity_text?.to_ascii_uppercase();
            (1..=24).filter_map(severity).find(|s| s.name() == text)
        });
        if let Some(severity) = severity {
            record.set_severity_number(severity);
            record.set_severity_text(severity.name());
        }
        record.add_attribute(semconv::GLASSBOX_COMPONENT, self.ctx.component.to_string());
        let mut room = MAX_SPAN_BYTES;
        if let Some(body_json) = data.body {
            room = room.saturating_sub(body_json.len());
            record.set_body(body(body_json));
        }
        let mut attributes = key_values(data.attributes.unwrap_or_default());
        if let Some(name) = data.event_name {
            attributes.push(KeyValue::new(EVENT_NAME, name.bounded()));
        }
        if attribute_bytes(&attributes) <= room {
            for KeyValue { key, value, .. } in attributes {
                record.add_attribute(key, log_value(value));
            }
        } else {
            self.ctx.recorded.dropped_items += 1;
        }
        let current = self.spans.current().span().span_context().clone();
        let span = data
            .span_id
            .as_deref()
            .and_then(span_id)
            .filter(|id| self.ctx.spans.started(*id))
            .unwrap_or(current.span_id());
        if current.is_valid() {
            record.set_trace_context(current.trace_id(), span, Some(current.trace_flags()));
        }
        logger.emit(record);
        Ok(())
    }
}

/// OpenTelemetry's severity numbers, 1 (TRACE) to 24 (FATAL4).
fn severity(number: u8) -> Option<Severity> {
    use Severity::*;
    const BY_NUMBER: [Severity; 24] = [
        Trace, Trace2, Trace3, Trace4, Debug, Debug2, Debug3, Debug4, Info, Info2, Info3, Info4,
        Warn, Warn2, Warn3, Warn4, Error, Error2, Error3, Error4, Fatal, Fatal2, Fatal3, Fatal4,
    ];
    BY_NUMBER.get(usize::from(number).checked_sub(1)?).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_numbers_map_one_to_twenty_four() {
        assert_eq!(severity(0), None);
        assert_eq!(severity(1), Some(Severity::Trace));
        assert_eq!(severity(9), Some(Severity::Info));
        assert_eq!(severity(17), Some(Severity::Error));
        assert_eq!(severity(24), Some(Severity::Fatal4));
        assert_eq!(severity(25), None);
    }
}
