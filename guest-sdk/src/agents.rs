//! Listing and calling the other agents the host grants this agent, in this
//! host or on another Glassbox host.

pub use crate::bindings::agent::glassbox::agent::agents::{AgentCard, invoke, list};

/// Runs the agent `name` on `text`, in the caller's conversation.
pub fn ask(name: &str, text: &str) -> Result<String, crate::Error> {
    invoke(name, &crate::AgentInput::Text(text.to_owned()), None)
}
