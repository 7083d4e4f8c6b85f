//! `wasi:otel` values as the host keeps them. Attribute values arrive as
//! JSON (an OpenTelemetry `AnyValue`, flattened because WIT has no recursive
//! types), ids as hexadecimal, times as WASI datetimes.

use super::bindings::wasi::clocks::wall_clock::Datetime;
use super::bindings::wasi::otel::tracing::{SpanContext as WitSpanContext, TraceFlags as WitFlags};
use super::bindings::wasi::otel::types::KeyValue as WitKeyValue;
use crate::bindings::{Bounded, MAX_GUEST_ATTRIBUTES, MAX_GUEST_LIST, MAX_SPAN_BYTES};
use crate::telemetry::{json_log_value, semconv};
use opentelemetry::logs::AnyValue;
use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use serde_json::Value as Json;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A guest's attributes: at most [`MAX_GUEST_ATTRIBUTES`], text bounded,
/// host-owned keys renamed.
pub(super) fn key_values(attributes: Vec<WitKeyValue>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .take(MAX_GUEST_ATTRIBUTES)
        .map(|WitKeyValue { key, value }| {
            KeyValue::new(semconv::guest_key(key.bounded()), attribute_value(value))
        })
        .collect()
}

/// An attribute value: a JSON scalar or a list of one kind of scalar as
/// itself, anything else as its JSON text.
fn attribute_value(json: String) -> Value {
    let Some(parsed) = parse(&json) else {
        return Value::from(json.bounded());
    };
    match parsed {
        Json::String(text) => Value::from(text.bounded()),
        Json::Bool(flag) => Value::Bool(flag),
        Json::Number(number) => number.as_i64().map_or_else(
            || Value::F64(number.as_f64().unwrap_or(f64::NAN)),
            Value::I64,
        ),
        Json::Array(items) => list_value(items).unwrap_or_else(|| Value::from(json.bounded())),
        Json::Null | Json::Object(_) => Value::from(json.bounded()),
    }
}

/// A list of strings, flags, whole or real numbers as an array attribute.
fn list_value(items: Vec<Json>) -> Option<Value> {
    let items: Vec<Json> = items.into_iter().take(MAX_GUEST_LIST).collect();
    let all = |kind: fn(&Json) -> bool| items.iter().all(kind);
    let array = if all(Json::is_string) {
        Array::String(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Json::String(text) => Some(StringValue::from(text.bounded())),
                    _ => None,
                })
                .collect(),
        )
    } else if all(Json::is_boolean) {
        Array::Bool(items.iter().filter_map(Json::as_bool).collect())
    } else if all(Json::is_i64) {
        Array::I64(items.iter().filter_map(Json::as_i64).collect())
    } else if all(Json::is_number) {
        Array::F64(items.iter().filter_map(Json::as_f64).collect())
    } else {
        return None;
    };
    Some(Value::Array(array))
}

/// A log record's body: JSON as the `AnyValue` it stands for.
pub(super) fn body(json: String) -> AnyValue {
    match parse(&json) {
        Some(parsed) => json_log_value(parsed, MAX_GUEST_LIST, &Bounded::bounded),
        None => AnyValue::from(json.bounded()),
    }
}

/// `json` parsed, unless it is too long to be worth it (it is then kept as text, cut).
fn parse(json: &str) -> Option<Json> {
    (json.len() <= MAX_SPAN_BYTES)
        .then(|| serde_json::from_str(json).ok())
        .flatten()
}

pub(super) fn span_id(hex: &str) -> Option<SpanId> {
    SpanId::from_hex(hex)
        .ok()
        .filter(|id| *id != SpanId::INVALID)
}

fn trace_id(hex: &str) -> Option<TraceId> {
    TraceId::from_hex(hex)
        .ok()
        .filter(|id| *id != TraceId::INVALID)
}

/// A guest's span context, when its ids are well formed.
pub(super) fn span_context(context: &WitSpanContext) -> Option<SpanContext> {
    Some(SpanContext::new(
        trace_id(&context.trace_id)?,
        span_id(&context.span_id)?,
        trace_flags(context.trace_flags),
        context.is_remote,
        TraceState::from_key_value(
            context
                .trace_state
                .iter()
                .take(32)
                .map(|(key, value)| (key.as_str(), value.as_str())),
        )
        .unwrap_or_default(),
    ))
}

fn trace_flags(flags: WitFlags) -> TraceFlags {
    TraceFlags::default().with_sampled(flags.contains(WitFlags::SAMPLED))
}

/// `context` as the guest sees it.
pub(super) fn wit_span_context(context: &SpanContext) -> WitSpanContext {
    WitSpanContext {
        trace_id: context.trace_id().to_string(),
        span_id: context.span_id().to_string(),
        trace_flags: if context.is_sampled() {
            WitFlags::SAMPLED
        } else {
            WitFlags::empty()
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

pub(super) fn time(datetime: Datetime) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::new(
            datetime.seconds,
            datetime.nanoseconds.min(999_999_999),
        ))
        .unwrap_or(UNIX_EPOCH)
}
