//! Exporting an agent, and helpers for what every agent does with its input.

use crate::{AgentInput, ChatMessage};

/// Exports `$agent`, the name of a type implementing [`Agent`](crate::Agent), as this
/// component's agent.
#[macro_export]
macro_rules! export_agent {
    ($agent:ident) => {
        $crate::bindings::agent::__export_agent_world!($agent with_types_in $crate::bindings::agent);
    };
}

/// The conversation an agent run starts from: the messages given, or the text
/// as a single user message.
pub fn input_messages(input: AgentInput) -> Vec<ChatMessage> {
    match input {
        AgentInput::Text(text) => vec![ChatMessage::user(text)],
        AgentInput::Messages(messages) => messages,
    }
}
