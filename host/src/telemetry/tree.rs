//! The console view of a trace: finished spans collected in memory and printed
//! as an indented tree with durations, token counts and errors.

use super::semconv;
use crate::text::printable;
use opentelemetry::Value;
use opentelemetry::trace::{SpanId, Status};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use termtree::Tree;

/// Spans the tree keeps; past them, it counts. A screenful is a few dozen,
/// and a guest may make spans without end.
const MAX_TREE_SPANS: usize = 10_000;

/// A span processor that keeps the first [`MAX_TREE_SPANS`] finished spans
/// for [`TraceTree::render`], and counts the rest.
#[derive(Clone, Debug, Default)]
pub struct TraceTree {
    spans: Arc<Mutex<Kept>>,
}

#[derive(Debug, Default)]
struct Kept {
    spans: Vec<SpanData>,
    left_out: usize,
}

impl SpanProcessor for TraceTree {
    fn on_start(&self, _span: &mut Span, _cx: &opentelemetry::Context) {}

    fn on_end(&self, span: SpanData) {
        let mut kept = self
            .spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if kept.spans.len() < MAX_TREE_SPANS {
            kept.spans.push(span);
        } else {
            kept.left_out += 1;
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

impl TraceTree {
    /// Renders the finished spans, one tree per root, children in start order.
    pub fn render(&self) -> String {
        let kept = self
            .spans
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let spans = &kept.spans;
        let known: HashMap<SpanId, &SpanData> = spans
            .iter()
            .map(|s| (s.span_context.span_id(), s))
            .collect();
        let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
        let mut roots = Vec::new();
        for span in spans.iter() {
            if known.contains_key(&span.parent_span_id) {
                children.entry(span.parent_span_id).or_default().push(span);
            } else {
                roots.push(span);
            }
        }
        roots.sort_by_key(|s| s.start_time);
        let mut rendered: String = roots
            .iter()
            .map(|root| build(root, &children).to_string())
            .collect();
        if kept.left_out > 0 {
            rendered.push_str(&format!(
                "… and {} more spans, not shown (the tree keeps the first {MAX_TREE_SPANS}; the exporters get them all)\n",
                kept.left_out
            ));
        }
        rendered
    }
}

fn build(span: &SpanData, children: &HashMap<SpanId, Vec<&SpanData>>) -> Tree<String> {
    let mut kids = children
        .get(&span.span_context.span_id())
        .cloned()
        .unwrap_or_default();
    kids.sort_by_key(|s| s.start_time);
    Tree::new(label(span)).with_leaves(kids.into_iter().map(|kid| build(kid, children)))
}

fn label(span: &SpanData) -> String {
    let attribute = |key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| &kv.value)
    };
    let duration = span
        .end_time
        .duration_since(span.start_time)
        .unwrap_or_default();
    let mut label = format!("{}  {}", printable(&span.name), format_duration(duration));
    if let (Some(Value::I64(input)), Some(Value::I64(output))) = (
        attribute(semconv::GEN_AI_USAGE_INPUT_TOKENS),
        attribute(semconv::GEN_AI_USAGE_OUTPUT_TOKENS),
    ) {
        label.push_str(&format!("  tokens {input} in / {output} out"));
    }
    if let Status::Error { description } = &span.status {
        let class = attribute(semconv::ERROR_TYPE)
            .map(|v| v.as_str().into_owned())
            .unwrap_or_default();
        label.push_str(&format!(
            "  ERROR {}: {}",
            printable(&class),
            printable(description)
        ));
    }
    label
}

fn format_duration(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.2}s", duration.as_secs_f64())
    } else {
        format!("{:.1}ms", duration.as_secs_f64() * 1000.0)
    }
}
