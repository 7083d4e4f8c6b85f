//! W3C Trace Context and Baggage across host boundaries: injected into every
//! request the host sends for a guest, extracted from every request it serves.
//! Baggage entries also go on the `invoke_agent` span of the run they reach,
//! so a backend can filter by them.

use opentelemetry::baggage::BaggageExt;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};

fn propagator() -> TextMapCompositePropagator {
    TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ])
}

/// Writes `cx`'s span (`traceparent`, `tracestate`) and baggage into `headers`.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    propagator().inject_context(cx, &mut HeaderInjector(headers));
}

/// The trace and baggage `headers` carry; an empty context when they carry none.
pub fn extract(headers: &http::HeaderMap) -> Context {
    propagator().extract(&HeaderExtractor(headers))
}

/// `cx`'s span and baggage as W3C fields (`traceparent`, `tracestate`,
/// `baggage`), for MCP's `params._meta`.
pub fn inject_fields(cx: &Context) -> std::collections::HashMap<String, String> {
    let mut fields = std::collections::HashMap::new();
    propagator().inject_context(cx, &mut fields);
    fields
}

/// The trace and baggage a map of W3C fields carries (`traceparent`,
/// `tracestate`, `baggage`), as MCP's `params._meta` does; empty when none.
pub fn extract_fields(fields: &std::collections::HashMap<String, String>) -> Context {
    propagator().extract(fields)
}

/// Reads a `traceparent` (and optional `baggage`) given as text, as the CLI
/// takes them. Refuses a `traceparent` that is not W3C.
pub fn parse(traceparent: &str, baggage: Option<&str>) -> Result<Context, String> {
    let mut headers = http::HeaderMap::new();
    let mut put = |name, value: &str| {
        http::HeaderValue::from_str(value.trim())
            .map(|value| headers.insert(name, value))
            .map_err(|_| format!("`{value}` is not a valid header value"))
    };
    put("traceparent", traceparent)?;
    if let Some(baggage) = baggage {
        put("baggage", baggage)?;
    }
    let cx = extract(&headers);
    if !cx.span().span_context().is_valid() {
        return Err(format!(
            "`{traceparent}` is not a valid W3C traceparent (expected 00-<32 hex>-<16 hex>-<2 hex>)"
        ));
    }
    Ok(cx)
}

/// The baggage of `cx` as span attributes, each under its own key.
pub(crate) fn baggage_attributes(cx: &Context) -> Vec<KeyValue> {
    cx.baggage()
        .iter()
        .map(|(key, (value, _))| KeyValue::new(key.clone(), value.clone()))
        .collect()
}
