//! Bounds on what a guest hands the host, applied once where it crosses into
//! the host (an import's arguments, an export's results): every name, id,
//! description and error message is cut to [`MAX_GUEST_TEXT`] bytes with a
//! marker, and lists of them to [`MAX_GUEST_LIST`] items, so nothing a guest
//! writes lands in a span, log line or error at a size of its choosing.
//! What is meant for the model (message content, tool arguments, a tool's
//! result) is not cut here: the model request and the tool result have
//! bounds of their own.

use super::GuestError;
use super::agent::exports::glassbox::agent::entrypoint::AgentInfo;
use super::agent::glassbox::agent::llm::{ChatRequest, EmbeddingsRequest};
use super::agent::glassbox::agent::types::{AgentInput, ChatMessage, ToolCall, ToolDefinition};
use crate::text::cap_text;
use opentelemetry::KeyValue;

/// The longest name, id, description or message a guest may hand the host.
pub const MAX_GUEST_TEXT: usize = 4096;
/// The most items of a list of names a guest may hand the host (stop
/// sequences, tool definitions, string attributes); the rest are dropped.
pub const MAX_GUEST_LIST: usize = 128;

// What one instance may record through either telemetry import
// (`glassbox:agent/telemetry`, `wasi:otel`), each counted apart.

/// Guest spans open at once per instance; past this, new spans are not recorded.
pub const MAX_OPEN_SPANS: usize = 256;
/// Guest spans one instance may record in all.
pub const MAX_SPANS: usize = 1000;
/// Bytes of guest text one span (name, attributes, events, status) or log
/// record (message, attributes) may hold: past it, further attributes and
/// events are dropped. It keeps an export batch of guest spans within what
/// collectors take in one message.
pub const MAX_SPAN_BYTES: usize = 16 * 1024;
/// Log records one instance may export.
pub const MAX_LOG_RECORDS: usize = 1000;
/// Bytes of guest log messages one instance may write to the host's log,
/// as its stdout and stderr may.
pub const MAX_LOG_BYTES_SHOWN: usize = 256 * 1024;
/// Attributes a guest may give one span, event or log record at once: well
/// under the SDK's limit per span, so the host's own attributes always fit.
pub const MAX_GUEST_ATTRIBUTES: usize = 64;

/// How many of something an instance recorded, and how many a bound refused.
#[derive(Default)]
pub(crate) struct Tally {
    pub taken: usize,
    pub refused: usize,
}

impl Tally {
    /// Takes one more if fewer than `bound` were taken; else counts the refusal.
    pub fn take(&mut self, bound: usize) -> bool {
        let fits = self.taken < bound;
        if fits {
            self.taken += 1;
        } else {
            self.refused += 1;
        }
        fits
    }
}

/// Bytes of guest text in `attributes`, as they count against a span's room.
pub(crate) fn attribute_bytes(attributes: &[KeyValue]) -> usize {
    attributes
        .iter()
        .map(|KeyValue { key, value, .. }| key.as_str().len() + value.as_str().len())
        .sum()
}

/// A value from a guest, as the host keeps it.
pub(crate) trait Bounded: Sized {
    fn bounded(self) -> Self;
}

impl Bounded for String {
    fn bounded(self) -> Self {
        cap_text(self, MAX_GUEST_TEXT).0
    }
}

impl<T: Bounded> Bounded for Option<T> {
    fn bounded(self) -> Self {
        self.map(Bounded::bounded)
    }
}

/// The first [`MAX_GUEST_LIST`] items of `items`, each bounded.
pub(crate) fn bounded_list<T: Bounded>(items: Vec<T>) -> Vec<T> {
    items
        .into_iter()
        .take(MAX_GUEST_LIST)
        .map(Bounded::bounded)
        .collect()
}

impl Bounded for GuestError {
    fn bounded(self) -> Self {
        match self {
            GuestError::RateLimited(mut limit) => {
                limit.message = limit.message.bounded();
                GuestError::RateLimited(limit)
            }
            GuestError::Timeout(m) => GuestError::Timeout(m.bounded()),
            GuestError::InvalidRequest(m) => GuestError::InvalidRequest(m.bounded()),
            GuestError::NotAllowed(m) => GuestError::NotAllowed(m.bounded()),
            GuestError::NotFound(m) => GuestError::NotFound(m.bounded()),
            GuestError::InvalidArguments(m) => GuestError::InvalidArguments(m.bounded()),
            GuestError::ToolFailed(m) => GuestError::ToolFailed(m.bounded()),
            GuestError::Crashed(m) => GuestError::Crashed(m.bounded()),
            GuestError::Provider(m) => GuestError::Provider(m.bounded()),
            GuestError::BudgetExceeded(m) => GuestError::BudgetExceeded(m.bounded()),
            GuestError::LimitExceeded(m) => GuestError::LimitExceeded(m.bounded()),
            GuestError::Unavailable(m) => GuestError::Unavailable(m.bounded()),
        }
    }
}

/// A guest's answer: the value as it is (bounded elsewhere if at all), the error bounded.
impl<T> Bounded for Result<T, GuestError> {
    fn bounded(self) -> Self {
        self.map_err(Bounded::bounded)
    }
}

impl Bounded for AgentInfo {
    fn bounded(self) -> Self {
        AgentInfo {
            name: self.name.bounded(),
            description: self.description.bounded(),
            version: self.version.bounded(),
        }
    }
}

impl Bounded for ToolDefinition {
    fn bounded(self) -> Self {
        ToolDefinition {
            name: self.name.bounded(),
            description: self.description.bounded(),
            // A JSON Schema cut short is no schema: it is checked as JSON when loaded.
            parameters: self.parameters,
        }
    }
}

impl Bounded for ToolCall {
    fn bounded(self) -> Self {
        ToolCall {
            id: self.id.bounded(),
            name: self.name.bounded(),
            arguments: self.arguments,
        }
    }
}

impl Bounded for ChatMessage {
    fn bounded(self) -> Self {
        ChatMessage {
            tool_calls: bounded_list(self.tool_calls),
            tool_call_id: self.tool_call_id.bounded(),
            ..self
        }
    }
}

impl Bounded for AgentInput {
    fn bounded(self) -> Self {
        match self {
            AgentInput::Text(text) => AgentInput::Text(text),
            AgentInput::Messages(messages) => {
                AgentInput::Messages(messages.into_iter().map(Bounded::bounded).collect())
            }
        }
    }
}

impl Bounded for ChatRequest {
    fn bounded(self) -> Self {
        ChatRequest {
            model: self.model.bounded(),
            messages: self.messages.into_iter().map(Bounded::bounded).collect(),
            tools: bounded_list(self.tools),
            stop_sequences: bounded_list(self.stop_sequences),
            ..self
        }
    }
}

impl Bounded for EmbeddingsRequest {
    fn bounded(self) -> Self {
        EmbeddingsRequest {
            model: self.model.bounded(),
            ..self
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_messages_are_cut_and_lists_shortened_but_content_is_not() {
        let long = "n".repeat(MAX_GUEST_TEXT * 2);
        let request = ChatRequest {
            model: Some(long.clone()),
            messages: vec![ChatMessage {
                role: super::super::agent::glassbox::agent::types::Role::User,
                content: long.clone(),
                tool_calls: Vec::new(),
                tool_call_id: Some(long.clone()),
            }],
            tools: Vec::new(),
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop_sequences: vec![long.clone(); MAX_GUEST_LIST + 10],
            seed: None,
        }
        .bounded();
        let cut = |text: &str| {
            text.starts_with(&long[..MAX_GUEST_TEXT])
                && text.ends_with(&format!(
                    "[truncated by glassbox: {} bytes, limit {MAX_GUEST_TEXT}]",
                    long.len()
                ))
        };
        assert!(cut(request.model.as_deref().unwrap()));
        assert!(cut(request.messages[0].tool_call_id.as_deref().unwrap()));
        assert_eq!(request.messages[0].content, long, "content is the model's");
        assert_eq!(request.stop_sequences.len(), MAX_GUEST_LIST);
        assert!(request.stop_sequences.iter().all(|s| cut(s)));

        let GuestError::ToolFailed(message) = GuestError::ToolFailed(long.clone()).bounded() else {
            unreachable!()
        };
        assert!(cut(&message));
    }
}
