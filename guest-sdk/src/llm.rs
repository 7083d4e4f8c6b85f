//! Calling the model the host provides, whole ([`chat`]) or streamed
//! ([`stream`], an iterator over the answer's chunks).

use crate::bindings::agent::glassbox::agent::llm::{self as wit, stream_chat};
pub use crate::bindings::agent::glassbox::agent::llm::{
    ChatChunk, ChatRequest, ChatResponse, EmbeddingsRequest, EmbeddingsResponse, chat, embeddings,
};
use crate::{ChatMessage, Error, Role, ToolCall, ToolDefinition};

/// Sends `request` and returns the answer as it arrives: text pieces and tool
/// calls, then [`ChatChunk::Done`] with the whole response.
///
/// ```no_run
/// # use glassbox_sdk::{llm, ChatMessage};
/// # fn demo() -> Result<(), glassbox_sdk::Error> {
/// let request = llm::ChatRequest::new(vec![ChatMessage::user("Tell me a story")]);
/// for chunk in llm::stream(&request)? {
///     match chunk? {
///         llm::ChatChunk::Text(text) => print!("{text}"),
///         llm::ChatChunk::ToolCall(call) => println!("\n(calls {})", call.name),
///         llm::ChatChunk::Done(response) => println!("\n({:?})", response.usage),
///     }
/// }
/// # Ok(())
/// # }
/// ```
pub fn stream(request: &ChatRequest) -> Result<ChatStream, Error> {
    Ok(ChatStream {
        stream: Some(stream_chat(request)?),
    })
}

/// A streamed answer. Dropping it early abandons the call.
pub struct ChatStream {
    /// `None` once the answer is complete or failed.
    stream: Option<wit::ChatStream>,
}

impl ChatStream {
    /// Reads the rest of the answer and returns it whole.
    pub fn response(self) -> Result<ChatResponse, Error> {
        for chunk in self {
            if let ChatChunk::Done(response) = chunk? {
                return Ok(response);
            }
        }
        Err(Error::Provider("the stream ended without an answer".into()))
    }
}

impl Iterator for ChatStream {
    type Item = Result<ChatChunk, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        let result = self.stream.as_ref()?.next();
        if !matches!(
            result,
            Ok(Some(ChatChunk::Text(_) | ChatChunk::ToolCall(_)))
        ) {
            self.stream = None;
        }
        result.transpose()
    }
}

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
