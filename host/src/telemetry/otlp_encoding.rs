//! OTLP's `ExportTraceServiceRequest`, written as protobuf straight from the
//! SDK's span data. `opentelemetry-otlp`'s span exporters copy every batch,
//! convert it to `opentelemetry-proto`'s structures and have prost measure
//! each nested message again at every level; at full load that was a fifth
//! of the host's CPU time (benches/scale/bounds.md). Here each span is read
//! once and written once, and the resource, the same for every batch, is
//! encoded once. The bytes are the ones prost writes for the converted
//! request (a test compares them), so any collector reads them the same way.

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};
use std::time::{SystemTime, UNIX_EPOCH};

/// `SpanFlags.SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK`: whether the parent is remote is known.
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
/// `SpanFlags.SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK`: the parent is remote.
const FLAG_IS_REMOTE: u32 = 0x200;

/// Writes export requests for one resource.
#[derive(Debug, Default)]
pub(super) struct TraceEncoder {
    /// `ResourceSpans.resource` and `ResourceSpans.schema_url`, field keys included.
    resource: Vec<u8>,
    schema_url: Vec<u8>,
}

impl TraceEncoder {
    pub fn new(resource: &Resource) -> Self {
        let mut encoder = TraceEncoder::default();
        encoder.set_resource(resource);
        encoder
    }

    pub fn set_resource(&mut self, resource: &Resource) {
        self.resource.clear();
        message(&mut self.resource, 1, |out| {
            for (key, value) in resource.iter() {
                key_value(out, 1, key.as_str(), value);
            }
        });
        self.schema_url.clear();
        string(&mut self.schema_url, 3, resource.schema_url().unwrap_or(""));
    }

    /// The request carrying `spans`, grouped by instrumentation scope in the
    /// order each scope first appears.
    pub fn encode(&self, spans: &[SpanData]) -> Vec<u8> {
        let mut scopes: Vec<(&InstrumentationScope, Vec<&SpanData>)> = Vec::new();
        for span in spans {
            let scope = &span.instrumentation_scope;
            match scopes.iter_mut().find(|(known, _)| *known == scope) {
                Some((_, members)) => members.push(span),
                None => scopes.push((scope, vec![span])),
            }
        }
        // A few hundred bytes a span; reserving them saves growing a large buffer.
        let mut out = Vec::with_capacity(self.resource.len() + spans.len() * 512);
        message(&mut out, 1, |out| {
            out.extend_from_slice(&self.resource);
            for (scope, members) in &scopes {
                message(out, 2, |out| scope_spans(out, scope, members));
            }
            out.extend_from_slice(&self.schema_url);
        });
        out
    }
}

fn scope_spans(out: &mut Vec<u8>, scope: &InstrumentationScope, spans: &[&SpanData]) {
    message(out, 1, |out| {
        string(out, 1, scope.name());
        string(out, 2, scope.version().unwrap_or(""));
        for attribute in scope.attributes() {
            key_value(out, 3, attribute.key.as_str(), &attribute.value);
        }
    });
    for data in spans {
        message(out, 2, |out| span(out, data));
    }
    string(out, 3, scope.schema_url().unwrap_or(""));
}

fn span(out: &mut Vec<u8>, span: &SpanData) {
    let context = &span.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    string(out, 3, &context.trace_state().header());
    if span.parent_span_id != opentelemetry::trace::SpanId::INVALID {
        bytes(out, 4, &span.parent_span_id.to_bytes());
    }
    string(out, 5, &span.name);
    uint(out, 6, span_kind(&span.span_kind));
    fixed64(out, 7, nanos(span.start_time));
    fixed64(out, 8, nanos(span.end_time));
    attributes(out, 9, &span.attributes);
    uint(out, 10, span.dropped_attributes_count.into());
    for event in span.events.iter() {
        message(out, 11, |out| {
            fixed64(out, 1, nanos(event.timestamp));
            string(out, 2, &event.name);
            attributes(out, 3, &event.attributes);
            uint(out, 4, event.dropped_attributes_count.into());
        });
    }
    uint(out, 12, span.events.dropped_count.into());
    for link in span.links.iter() {
        message(out, 13, |out| {
            let linked = &link.span_context;
            bytes(out, 1, &linked.trace_id().to_bytes());
            bytes(out, 2, &linked.span_id().to_bytes());
            string(out, 3, &linked.trace_state().header());
            attributes(out, 4, &link.attributes);
            uint(out, 5, link.dropped_attributes_count.into());
            fixed32(
                out,
                6,
                flags(linked.is_remote(), linked.trace_flags().to_u8()),
            );
        });
    }
    uint(out, 14, span.links.dropped_count.into());
    message(out, 15, |out| {
        let (message, code) = match &span.status {
            Status::Unset => ("", 0),
            Status::Ok => ("", 1),
            Status::Error { description } => (description.as_ref(), 2),
        };
        string(out, 2, message);
        uint(out, 3, code);
    });
    fixed32(
        out,
        16,
        flags(span.parent_span_is_remote, context.trace_flags().to_u8()),
    );
}

fn span_kind(kind: &SpanKind) -> u64 {
    match kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    }
}

fn flags(parent_is_remote: bool, trace_flags: u8) -> u32 {
    let remote = if parent_is_remote { FLAG_IS_REMOTE } else { 0 };
    u32::from(trace_flags) | FLAG_HAS_IS_REMOTE | remote
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos() as u64)
}

fn attributes(out: &mut Vec<u8>, tag: u32, attributes: &[KeyValue]) {
    for attribute in attributes {
        key_value(out, tag, attribute.key.as_str(), &attribute.value);
    }
}

/// A `KeyValue` message as field `tag`.
fn key_value(out: &mut Vec<u8>, tag: u32, key: &str, value: &Value) {
    message(out, tag, |out| {
        string(out, 1, key);
        message(out, 2, |out| any_value(out, value));
    });
}

/// The fields of an `AnyValue`: one of its `value` cases, written even when
/// it holds its type's default, as prost writes a set `oneof`.
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Bool(flag) => any_bool(out, *flag),
        Value::I64(number) => any_int(out, *number),
        Value::F64(number) => any_double(out, *number),
        Value::String(text) => any_string(out, text.as_str()),
        Value::Array(array) => message(out, 5, |out| array_values(out, array)),
        // A kind of value added to the API after this was written: its text.
        other => any_string(out, &other.to_string()),
    }
}

/// The `values` of an `ArrayValue`.
fn array_values(out: &mut Vec<u8>, array: &Array) {
    match array {
        Array::Bool(values) => values
            .iter()
            .for_each(|v| element(out, |o| any_bool(o, *v))),
        Array::I64(values) => values.iter().for_each(|v| element(out, |o| any_int(o, *v))),
        Array::F64(values) => values
            .iter()
            .for_each(|v| element(out, |o| any_double(o, *v))),
        Array::String(values) => values
            .iter()
            .for_each(|v| element(out, |o| any_string(o, v.as_str()))),
        other => element(out, |o| any_string(o, &other.to_string())),
    }
}

fn element(out: &mut Vec<u8>, value: impl FnOnce(&mut Vec<u8>)) {
    message(out, 1, value);
}

fn any_bool(out: &mut Vec<u8>, flag: bool) {
    encode_key(2, WireType::Varint, out);
    encode_varint(u64::from(flag), out);
}

fn any_int(out: &mut Vec<u8>, number: i64) {
    encode_key(3, WireType::Varint, out);
    // Two's complement, as protobuf's int64 is written.
    encode_varint(number as u64, out);
}

fn any_double(out: &mut Vec<u8>, number: f64) {
    encode_key(4, WireType::SixtyFourBit, out);
    out.extend_from_slice(&number.to_le_bytes());
}

fn any_string(out: &mut Vec<u8>, text: &str) {
    encode_key(1, WireType::LengthDelimited, out);
    length_delimited(out, text.as_bytes());
}

/// Field `tag` holding the message `write` writes. Its length goes before
/// it, so one byte is set aside for it and the message moved along in the
/// rare case its length needs more.
fn message(out: &mut Vec<u8>, tag: u32, write: impl FnOnce(&mut Vec<u8>)) {
    encode_key(tag, WireType::LengthDelimited, out);
    let length_at = out.len();
    out.push(0);
    write(out);
    let length = out.len() - length_at - 1;
    let width = encoded_len_varint(length as u64);
    if width > 1 {
        out.splice(
            length_at + 1..length_at + 1,
            std::iter::repeat_n(0, width - 1),
        );
    }
    let mut prefix = [0u8; 10];
    let mut slot = &mut prefix[..];
    encode_varint(length as u64, &mut slot);
    out[length_at..length_at + width].copy_from_slice(&prefix[..width]);
}

fn length_delimited(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A `string` field, left out when empty as proto3 does.
fn string(out: &mut Vec<u8>, tag: u32, text: &str) {
    bytes(out, tag, text.as_bytes());
}

/// A `bytes` field, left out when empty.
fn bytes(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
    if !bytes.is_empty() {
        encode_key(tag, WireType::LengthDelimited, out);
        length_delimited(out, bytes);
    }
}

/// A `uint32`, `uint64` or enum field, left out when zero.
fn uint(out: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::Varint, out);
        encode_varint(value, out);
    }
}

fn fixed64(out: &mut Vec<u8>, tag: u32, value: u64) {
    if value != 0 {
        encode_key(tag, WireType::SixtyFourBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

fn fixed32(out: &mut Vec<u8>, tag: u32, value: u32) {
    if value != 0 {
        encode_key(tag, WireType::ThirtyTwoBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Event, Link, SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message;
    use std::borrow::Cow;
    use std::time::Duration;

    fn context(trace: u128, span: u64, remote: bool) -> SpanContext {
        SpanContext::new(
            TraceId::from(trace),
            SpanId::from(span),
            TraceFlags::SAMPLED,
            remote,
            TraceState::from_key_value([("vendor", "value")]).unwrap(),
        )
    }

    fn span(scope: &InstrumentationScope, name: &'static str, status: Status) -> SpanData {
        let start = UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789);
        let mut events = SpanEvents::default();
        events.events.push(Event::new(
            "gen_ai.client.inference.operation.details",
            start + Duration::from_micros(3),
            vec![KeyValue::new("gen_ai.output.messages", "[]")],
            1,
        ));
        events.dropped_count = 2;
        let mut links = SpanLinks::default();
        links.links.push(Link::new(
            context(7, 8, true),
            vec![KeyValue::new("link.kind", "follows")],
            0,
        ));
        SpanData {
            span_context: context(0x0102_0304, 0x0506, false),
            parent_span_id: SpanId::from(0x0a0b),
            parent_span_is_remote: true,
            span_kind: SpanKind::Client,
            name: Cow::Borrowed(name),
            start_time: start,
            end_time: start + Duration::from_millis(2),
            attributes: vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.request.model", String::from("gpt-4o")),
                KeyValue::new("gen_ai.usage.input_tokens", 42_i64),
                KeyValue::new("gen_ai.usage.negative", -3_i64),
                KeyValue::new("gen_ai.request.temperature", 0.0_f64),
                KeyValue::new("gen_ai.request.top_p", 0.25_f64),
                KeyValue::new("gen_ai.request.stream", false),
                KeyValue::new("empty", ""),
                KeyValue::new(
                    "gen_ai.response.finish_reasons",
                    Value::Array(Array::String(vec!["stop".into(), "".into()])),
                ),
                KeyValue::new("counts", Value::Array(Array::I64(vec![0, 1, -1]))),
                KeyValue::new("flags", Value::Array(Array::Bool(vec![true, false]))),
                KeyValue::new("ratios", Value::Array(Array::F64(vec![0.5]))),
                KeyValue::new("none", Value::Array(Array::String(Vec::new()))),
                KeyValue::new("long", "x".repeat(300)),
            ],
            dropped_attributes_count: 1,
            events,
            links,
            status,
            instrumentation_scope: scope.clone(),
        }
    }

    /// What `opentelemetry-otlp` sends for the same spans.
    fn reference(resource: &Resource, spans: Vec<SpanData>) -> Vec<u8> {
        ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans, &resource.into()),
        }
        .encode_to_vec()
    }

    #[test]
    fn writes_the_bytes_prost_writes_for_the_converted_request() {
        let resource = Resource::builder_empty()
            .with_attributes([
                KeyValue::new("service.name", "glassbox"),
                KeyValue::new("service.instance.id", 7_i64),
            ])
            .with_schema_url(
                Vec::<KeyValue>::new(),
                "https://opentelemetry.io/schemas/1.38.0",
            )
            .build();
        let host = InstrumentationScope::builder("glassbox")
            .with_version("0.1.0")
            .build();
        let guest = InstrumentationScope::builder("guest-agent")
            .with_schema_url("https://example.com/schema")
            .with_attributes([KeyValue::new("scope.kind", "guest")])
            .build();
        let spans = vec![
            span(&host, "chat gpt-4o", Status::Ok),
            span(&guest, "react.step", Status::Unset),
            span(
                &host,
                "execute_tool calculate",
                Status::error("tool failed"),
            ),
            SpanData {
                parent_span_id: SpanId::INVALID,
                parent_span_is_remote: false,
                attributes: Vec::new(),
                events: SpanEvents::default(),
                links: SpanLinks::default(),
                span_kind: SpanKind::Internal,
                ..span(&host, "invoke_agent", Status::Unset)
            },
        ];
        let encoder = TraceEncoder::new(&resource);
        assert_eq!(encoder.encode(&spans), reference(&resource, spans));
    }

    #[test]
    fn writes_an_empty_batch_and_a_large_one_as_prost_does() {
        let resource = Resource::builder_empty().build();
        let scope = InstrumentationScope::builder("glassbox").build();
        let encoder = TraceEncoder::new(&resource);
        assert_eq!(encoder.encode(&[]), reference(&resource, Vec::new()));
        // Past 16 KiB a message's length takes three bytes.
        let many: Vec<SpanData> = (0..200).map(|_| span(&scope, "chat", Status::Ok)).collect();
        assert_eq!(encoder.encode(&many), reference(&resource, many));
    }
}
