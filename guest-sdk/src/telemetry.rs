//! Custom spans and log records. Spans nest under the host's span for the
//! current run or tool call; model and tool calls made while a span is open
//! nest under it. A span ends when `end` is called or when it is dropped.

pub use crate::bindings::agent::glassbox::agent::telemetry::{
    Attribute, Level, Span, StatusCode, Value, log,
};

/// An attribute for a span, an event or a log record.
pub fn attribute(key: impl Into<String>, value: impl Into<Value>) -> Attribute {
    Attribute {
        key: key.into(),
        value: value.into(),
    }
}

impl From<&str> for Value {
    fn from(value: &str) -> Self {
        Value::String(value.to_owned())
    }
}

impl From<String> for Value {
    fn from(value: String) -> Self {
        Value::String(value)
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Self {
        Value::Boolean(value)
    }
}

impl From<i64> for Value {
    fn from(value: i64) -> Self {
        Value::S64(value)
    }
}

impl From<i32> for Value {
    fn from(value: i32) -> Self {
        Value::S64(value.into())
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Self {
        Value::S64(value.into())
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Self {
        Value::F64(value)
    }
}

impl From<Vec<String>> for Value {
    fn from(value: Vec<String>) -> Self {
        Value::StringList(value)
    }
}
