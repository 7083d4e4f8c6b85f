//! Calling the model the host provides.

pub use crate::bindings::agent::glassbox::agent::llm::{
    ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, chat, embeddings,
};
use crate::{ChatMessage, Role, ToolCall, ToolDefinition};

impl ChatRequest {
    /// A request for `messages` with the host's default model and settings.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        ChatRequest {
            model: None,
            messages,
            tools: Vec::new(),
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop_sequences: Vec::new(),
            seed: None,
        }
    }

    /// Offers `tools` to the model.
    pub fn with_tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = tools;
        self
    }
}

impl EmbeddingsRequest {
    /// A request to embed `inputs` with the host's default embedding model.
    pub fn new(inputs: Vec<String>) -> Self {
        EmbeddingsRequest {
            model: None,
            inputs,
            dimensions: None,
        }
    }
}

impl ChatMessage {
    fn text(role: Role, content: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system instruction.
    pub fn system(content: impl Into<String>) -> Self {
        Self::text(Role::System, content)
    }

    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::text(Role::User, content)
    }

    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::text(Role::Assistant, content)
    }

    /// The result of the tool call `call`, to send back to the model.
    pub fn tool_result(call: &ToolCall, content: impl Into<String>) -> Self {
        ChatMessage {
            tool_call_id: Some(call.id.clone()),
            ..Self::text(Role::Tool, content)
        }
    }
}
