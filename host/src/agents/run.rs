//! One run of an agent as callers see it: what it is asked ([`RunRequest`]),
//! and how it can fail ([`RunError`]).

use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::types;
use crate::sandbox::{Budget, Fault, Policy};
use crate::telemetry::semconv;
use opentelemetry::Context;

/// What to run the agent on.
#[derive(Clone, Debug)]
pub enum AgentInput {
    Text(String),
    Messages(Vec<types::ChatMessage>),
}

/// One run of the agent.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub input: AgentInput,
    pub conversation_id: Option<String>,
    /// The trace this run joins (from a W3C `traceparent`), with its baggage;
    /// empty for a new trace. Baggage entries are recorded on the run's span.
    pub parent: Context,
    /// What the agent's sandbox is granted for this run, and its limits.
    pub policy: Policy,
    /// What the run may spend, counting its tools' calls too.
    pub budget: Budget,
}

impl RunRequest {
    /// A run on `text` as a new trace, with nothing granted and no budget limit.
    pub fn text(text: impl Into<String>) -> Self {
        RunRequest {
            input: AgentInput::Text(text.into()),
            conversation_id: None,
            parent: Context::new(),
            policy: Policy::default(),
            budget: Budget::default(),
        }
    }
}

/// How a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The agent returned an error.
    #[error("the agent failed ({}): {}", .0.error_type(), .0.message())]
    Agent(GuestError),
    /// The host stopped the agent (a limit, or a trap); its instance was discarded.
    #[error("the agent was stopped: {0}")]
    Stopped(Fault),
    /// The agent's sandbox could not be set up (a granted directory is gone, say).
    #[error("cannot set up the agent's sandbox: {0}")]
    Sandbox(String),
}

impl RunError {
    pub fn error_type(&self) -> &'static str {
        match self {
            RunError::Agent(error) => error.error_type(),
            RunError::Stopped(fault) => fault.error_type(),
            RunError::Sandbox(_) => semconv::error_type::SANDBOX_SETUP,
        }
    }

    /// The error the caller of agent `name` sees, when that caller is another agent.
    pub(crate) fn into_guest_error(self, name: &str) -> GuestError {
        match self {
            RunError::Agent(error) => error,
            RunError::Stopped(fault) => fault.to_guest_error(name),
            RunError::Sandbox(reason) => GuestError::NotAllowed(format!(
                "the sandbox of agent `{name}` cannot be set up: {reason}"
            )),
        }
    }
}

impl From<types::AgentInput> for AgentInput {
    fn from(input: types::AgentInput) -> Self {
        match input {
            types::AgentInput::Text(text) => AgentInput::Text(text),
            types::AgentInput::Messages(messages) => AgentInput::Messages(messages),
        }
    }
}

impl From<AgentInput> for types::AgentInput {
    fn from(input: AgentInput) -> Self {
        match input {
            AgentInput::Text(text) => types::AgentInput::Text(text),
            AgentInput::Messages(messages) => types::AgentInput::Messages(messages),
        }
    }
}
