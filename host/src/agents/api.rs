//! The JSON of `glassbox serve`'s HTTP API, shared by the server and by the
//! hosts that call its agents. Every error, whatever the status, is an
//! [`ErrorBody`] whose `type` is one of the guest error types.

use super::run::AgentInput;
use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::types::{ChatMessage, RateLimit, Role, ToolCall};
use crate::telemetry::semconv::error_type;
use serde::{Deserialize, Serialize};

/// How many agent calls deep the run a request starts is: the caller's depth
/// plus one. Absent for a run started from outside any agent.
pub const CALL_DEPTH_HEADER: &str = "glassbox-agent-depth";
/// `error.type` of a request naming no agent the host serves.
pub const AGENT_NOT_FOUND: &str = error_type::AGENT_NOT_FOUND;

/// The path, below the base URL, that starts runs of `agent`.
pub fn runs_path(agent: &str) -> String {
    let mut path = url::Url::parse("http://host/v1/agents").expect("a valid base URL");
    path.path_segments_mut()
        .expect("an http URL has path segments")
        .push(agent)
        .push("runs");
    path.path().trim_start_matches('/').to_owned()
}

/// `POST /v1/agents/{name}/runs`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    pub input: InputBody,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
}

/// Text, or a conversation, oldest message first.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
pub enum InputBody {
    Text(String),
    Messages(Vec<MessageBody>),
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub role: RoleBody,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallBody>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoleBody {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCallBody {
    pub id: String,
    pub name: String,
    /// A JSON object, encoded as a string.
    pub arguments: String,
}

/// A run's answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct RunOutput {
    pub output: String,
    /// The trace the run was recorded in, as 32 hex digits.
    pub trace_id: String,
}

/// `GET /v1/agents`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AgentList {
    pub agents: Vec<AgentSummary>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AgentSummary {
    pub name: String,
    pub description: String,
    pub version: String,
}

/// Every failure the API reports.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
    /// The run's trace, when a run was started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// A guest error type (`timeout`, `tool_failed`, `limit_exceeded`, ...).
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
    /// For `rate_limited`: how long the caller was asked to wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorDetail {
    pub fn new(error_type: &str, message: impl Into<String>) -> Self {
        ErrorDetail {
            error_type: error_type.to_owned(),
            message: message.into(),
            retry_after_ms: None,
        }
    }

    /// The guest error this stands for, its message prefixed with `origin`
    /// (which agent, where). A type this host does not know is `unavailable`.
    pub(crate) fn to_guest_error(&self, origin: &str) -> GuestError {
        let message = format!("{origin}: {}", self.message);
        match self.error_type.as_str() {
            error_type::RATE_LIMITED => GuestError::RateLimited(RateLimit {
                message,
                retry_after_ms: self.retry_after_ms,
            }),
            error_type::TIMEOUT => GuestError::Timeout(message),
            error_type::INVALID_REQUEST => GuestError::InvalidRequest(message),
            error_type::NOT_ALLOWED => GuestError::NotAllowed(message),
            error_type::NOT_FOUND | error_type::TOOL_NOT_FOUND | error_type::AGENT_NOT_FOUND => {
                GuestError::NotFound(message)
            }
            error_type::INVALID_ARGUMENTS => GuestError::InvalidArguments(message),
            error_type::TOOL_FAILED => GuestError::ToolFailed(message),
            error_type::TRAP => GuestError::Crashed(message),
            error_type::PROVIDER => GuestError::Provider(message),
            error_type::BUDGET_EXCEEDED => GuestError::BudgetExceeded(message),
            error_type::LIMIT_EXCEEDED => GuestError::LimitExceeded(message),
            error_type::UNAVAILABLE => GuestError::Unavailable(message),
            other => GuestError::Unavailable(format!(
                "{origin} answered an error of unknown type `{other}`: {}",
                self.message
            )),
        }
    }
}

impl From<&GuestError> for ErrorDetail {
    fn from(error: &GuestError) -> Self {
        ErrorDetail {
            error_type: error.error_type().to_owned(),
            message: error.message().to_owned(),
            retry_after_ms: match error {
                GuestError::RateLimited(limit) => limit.retry_after_ms,
                _ => None,
            },
        }
    }
}

impl From<&AgentInput> for InputBody {
    fn from(input: &AgentInput) -> Self {
        match input {
            AgentInput::Text(text) => InputBody::Text(text.clone()),
            AgentInput::Messages(messages) => {
                InputBody::Messages(messages.iter().map(MessageBody::from).collect())
            }
        }
    }
}

impl From<InputBody> for AgentInput {
    fn from(input: InputBody) -> Self {
        match input {
            InputBody::Text(text) => AgentInput::Text(text),
            InputBody::Messages(messages) => {
                AgentInput::Messages(messages.into_iter().map(ChatMessage::from).collect())
            }
        }
    }
}

impl From<&ChatMessage> for MessageBody {
    fn from(message: &ChatMessage) -> Self {
        MessageBody {
            role: match message.role {
                Role::System => RoleBody::System,
                Role::User => RoleBody::User,
                Role::Assistant => RoleBody::Assistant,
                Role::Tool => RoleBody::Tool,
            },
            content: message.content.clone(),
            tool_calls: message
                .tool_calls
                .iter()
                .map(|call| ToolCallBody {
                    id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                })
                .collect(),
            tool_call_id: message.tool_call_id.clone(),
        }
    }
}

impl From<MessageBody> for ChatMessage {
    fn from(message: MessageBody) -> Self {
        ChatMessage {
            role: match message.role {
                RoleBody::System => Role::System,
                RoleBody::User => Role::User,
                RoleBody::Assistant => Role::Assistant,
                RoleBody::Tool => Role::Tool,
            },
            content: message.content,
            tool_calls: message
                .tool_calls
                .into_iter()
                .map(|call| ToolCall {
                    id: call.id,
                    name: call.name,
                    arguments: call.arguments,
                })
                .collect(),
            tool_call_id: message.tool_call_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_names_are_escaped_in_the_path() {
        assert_eq!(runs_path("planner"), "v1/agents/planner/runs");
        assert_eq!(runs_path("a b/c"), "v1/agents/a%20b%2Fc/runs");
    }

    #[test]
    fn a_guest_error_survives_the_wire() {
        let error = GuestError::RateLimited(RateLimit {
            message: "slow down".into(),
            retry_after_ms: Some(1500),
        });
        let detail = ErrorDetail::from(&error);
        let json = serde_json::to_string(&detail).unwrap();
        let back: ErrorDetail = serde_json::from_str(&json).unwrap();
        match back.to_guest_error("agent `w`") {
            GuestError::RateLimited(limit) => {
                assert_eq!(limit.message, "agent `w`: slow down");
                assert_eq!(limit.retry_after_ms, Some(1500));
            }
            other => panic!("expected rate-limited, got {other:?}"),
        }
        let unknown = ErrorDetail::new("gremlins", "oh no").to_guest_error("x");
        assert!(matches!(unknown, GuestError::Unavailable(m) if m.contains("`gremlins`")));
    }
}
