//! Message content on spans, or in the `gen_ai.client.inference.operation.details`
//! event, or both. Off unless asked for (the GenAI conventions say content
//! SHOULD NOT be captured by default); when on, secrets are redacted before
//! anything leaves the host and long values are shortened with the JSON kept
//! valid.

use regex::{Regex, RegexSet};
use serde_json::Value;

/// Longest captured attribute value, in bytes, unless configured.
pub const DEFAULT_MAX_LENGTH: usize = 16 * 1024;
/// What a redacted secret becomes.
pub const REDACTED: &str = "[REDACTED]";

/// Secrets recognised without configuration: API keys of the common
/// providers and platforms, bearer tokens, JSON Web Tokens.
const BUILTIN_SECRETS: [&str; 7] = [
    r"\bsk-[A-Za-z0-9_\-]{16,}",
    r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*",
    r"\bAKIA[0-9A-Z]{16}\b",
    r"\bgh[pousr]_[A-Za-z0-9]{30,}",
    r"\bxox[abprs]-[A-Za-z0-9\-]{10,}",
    r"\bAIza[0-9A-Za-z\-_]{35}",
    r"\beyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]{8,}",
];

/// Whether and how message content is captured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContentConfig {
    /// Content on the spans.
    pub capture: bool,
    /// Content in a `gen_ai.client.inference.operation.details` log record
    /// per model call.
    pub events: bool,
    /// Longest attribute value in bytes; longer ones are shortened.
    pub max_length: usize,
    /// Regular expressions for further secrets to redact.
    pub redact: Vec<String>,
}

impl Default for ContentConfig {
    fn default() -> Self {
        ContentConfig {
            capture: false,
            events: false,
            max_length: DEFAULT_MAX_LENGTH,
            redact: Vec::new(),
        }
    }
}

impl ContentConfig {
    /// Reads `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (`true`/`false`,
    /// or the newer `NO_CONTENT`, `SPAN_ONLY`, `EVENT_ONLY`, `SPAN_AND_EVENT`)
    /// and `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` for the length.
    pub(super) fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        const SWITCH: &str = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT";
        let (capture, events) = match var(SWITCH)
            .map(|v| v.trim().to_ascii_uppercase())
            .as_deref()
        {
            None | Some("FALSE" | "NO_CONTENT") => (false, false),
            Some("TRUE" | "SPAN_ONLY") => (true, false),
            Some("EVENT_ONLY") => (false, true),
            Some("SPAN_AND_EVENT") => (true, true),
            Some(other) => {
                return Err(format!(
                    "{SWITCH}: `{other}` is not one of true, false, NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT"
                ));
            }
        };
        let max_length = match var("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT") {
            Some(limit) => limit.trim().parse().map_err(|_| {
                format!("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT: `{limit}` is not a number of bytes")
            })?,
            None => DEFAULT_MAX_LENGTH,
        };
        Ok(ContentConfig {
            capture,
            events,
            max_length,
            redact: Vec::new(),
        })
    }
}

/// Turns captured content into attribute values.
#[derive(Debug)]
pub(crate) struct ContentCapture {
    /// Where the content goes: on spans, in events, or both.
    pub on_spans: bool,
    pub as_events: bool,
    max_length: usize,
    /// Matches any secret, so text without one is passed over in one scan.
    any_secret: RegexSet,
    secrets: Vec<Regex>,
}

impl ContentCapture {
    /// `None` when capture is off. Fails on a redaction pattern that is not a regular expression.
    pub fn new(config: &ContentConfig) -> Result<Option<Self>, String> {
        if !config.capture && !config.events {
            return Ok(None);
        }
        let patterns: Vec<&str> = BUILTIN_SECRETS
            .iter()
            .copied()
            .chain(config.redact.iter().map(String::as_str))
            .collect();
        let secrets = patterns
            .iter()
            .map(|pattern| {
                Regex::new(pattern).map_err(|e| format!("redaction pattern `{pattern}`: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(ContentCapture {
            on_spans: config.capture,
            as_events: config.events,
            max_length: config.max_length,
            any_secret: RegexSet::new(&patterns).map_err(|e| e.to_string())?,
            secrets,
        }))
    }

    /// `value` as JSON text: secrets redacted, then shortened to the limit.
    pub fn render(&self, mut value: Value) -> String {
        self.redact(&mut value);
        fit(value, self.max_length)
    }

    /// Text that may hold JSON (tool arguments and results): as the value it
    /// encodes when it does, else as a string.
    pub fn render_text(&self, text: &str) -> String {
        self.render(json_or_text(text))
    }

    fn redact(&self, value: &mut Value) {
        match value {
            Value::String(text) => {
                let matched = self.any_secret.matches(text);
                if matched.matched_any() {
                    for index in matched.iter() {
                        *text = self.secrets[index].replace_all(text, REDACTED).into_owned();
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.redact(v)),
            Value::Object(fields) => fields.values_mut().for_each(|v| self.redact(v)),
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }
}

/// JSON text as the value it encodes; anything else as a string.
pub(crate) fn json_or_text(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// Strings this short (types, roles, names, ids) carry the structure and are never cut.
const SHORT_STRING: usize = 32;

/// `value` encoded in at most `max` bytes where possible: long strings are cut
/// (the same cap for every one, the largest that fits, found by bisection),
/// and if that is not enough, trailing array items go.
fn fit(value: Value, max: usize) -> String {
    let full = value.to_string();
    if full.len() <= max {
        return full;
    }
    let (mut low, mut too_long) = (SHORT_STRING, longest_string(&value).max(SHORT_STRING));
    let mut fits = None;
    while low < too_long {
        let cap = (low + too_long) / 2;
        let text = shorten(&value, cap).to_string();
        if text.len() <= max {
            fits = Some(text);
            low = cap + 1;
        } else {
            too_long = cap;
        }
    }
    if let Some(text) = fits {
        return text;
    }
    let mut items = match shorten(&value, SHORT_STRING) {
        Value::Array(items) => items,
        other => vec![other],
    };
    while !items.is_empty() && Value::Array(items.clone()).to_string().len() > max {
        items.pop();
    }
    Value::Array(items).to_string()
}

fn longest_string(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(fields) => fields.values().map(longest_string).max().unwrap_or(0),
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
    }
}

/// A copy of `value` with every string longer than `cap` bytes cut to it, with a marker.
fn shorten(value: &Value, cap: usize) -> Value {
    match value {
        Value::String(text) if text.len() > cap => {
            let mut end = cap;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Value::String(format!(
                "{}…[truncated {} bytes]",
                &text[..end],
                text.len() - end
            ))
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| shorten(v, cap)).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| (k.clone(), shorten(v, cap)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capture(max_length: usize, redact: &[&str]) -> ContentCapture {
        ContentCapture::new(&ContentConfig {
            capture: true,
            max_length,
            redact: redact.iter().map(|p| p.to_string()).collect(),
            ..ContentConfig::default()
        })
        .unwrap()
        .unwrap()
    }

    #[test]
    fn secrets_are_redacted_wherever_they_sit() {
        let rendered = capture(10_000, &[r"ticket-\d+"]).render(json!([{
            "role": "user",
            "parts": [{"type": "text", "content": "key sk-proj-abcdefghijklmnop1234 and Authorization: Bearer abc.def-ghi_jkl"}],
            "note": "see ticket-4411",
        }]));
        assert!(!rendered.contains("sk-proj"), "{rendered}");
        assert!(!rendered.contains("abc.def"), "{rendered}");
        assert!(!rendered.contains("4411"), "{rendered}");
        assert_eq!(rendered.matches(REDACTED).count(), 3, "{rendered}");
        assert!(rendered.contains("Authorization: [REDACTED]"), "{rendered}");
    }

    #[test]
    fn long_content_is_shortened_and_stays_json() {
        let value = json!([
            {"role": "user", "parts": [{"type": "text", "content": "é".repeat(5000)}]},
            {"role": "assistant", "parts": [{"type": "text", "content": "short"}]},
        ]);
        let rendered = capture(400, &[]).render(value);
        assert!(rendered.len() <= 400, "{}", rendered.len());
        let parsed: Value = serde_json::from_str(&rendered).unwrap();
        assert_eq!(parsed[1]["parts"][0]["content"], "short");
        let cut = parsed[0]["parts"][0]["content"].as_str().unwrap();
        assert!(
            cut.starts_with("éé") && cut.contains("…[truncated"),
            "{cut}"
        );

        let many = Value::Array((0..100).map(|n| json!({"n": n})).collect());
        let rendered = capture(50, &[]).render(many);
        assert!(rendered.len() <= 50, "{rendered}");
        assert!(serde_json::from_str::<Value>(&rendered).unwrap().is_array());
    }

    #[test]
    fn the_switch_reads_old_and_new_values() {
        let read = |value: &str| {
            let value = value.to_owned();
            ContentConfig::from_lookup(&move |name: &str| {
                (name == "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
                    .then(|| value.clone())
            })
        };
        let places = |value: &str| {
            let config = read(value).unwrap();
            (config.capture, config.events)
        };
        assert_eq!(places("true"), (true, false));
        assert_eq!(places("SPAN_ONLY"), (true, false));
        assert_eq!(places("EVENT_ONLY"), (false, true));
        assert_eq!(places("span_and_event"), (true, true));
        assert_eq!(places("NO_CONTENT"), (false, false));
        assert_eq!(places("false"), (false, false));
        assert!(read("maybe").is_err());
        assert!(
            ContentCapture::new(&ContentConfig::default())
                .unwrap()
                .is_none()
        );
        let bad = ContentConfig {
            capture: true,
            redact: vec!["(".into()],
            ..ContentConfig::default()
        };
        assert!(ContentCapture::new(&bad).unwrap_err().contains("`(`"));
    }
}
