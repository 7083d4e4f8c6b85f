//! # glassbox-sdk
//!
//! Write [Glassbox](https://github.com/glassbox) agents and tool plugins as plain
//! Rust, compiled to `wasm32-wasip2`. The host traces every model call, tool call
//! and custom span; a component contains no instrumentation code of its own.
//!
//! ## A tool plugin
//!
//! A tool is a function taking its deserialized arguments; [`export_tools!`]
//! names it, describes it for the model and exports it:
//!
//! ```
//! use glassbox_sdk::{export_tools, json, Error};
//! use serde::Deserialize;
//!
//! #[derive(Deserialize)]
//! struct Greeting {
//!     name: String,
//! }
//!
//! fn greet(args: Greeting) -> Result<String, Error> {
//!     if args.name.is_empty() {
//!         return Err(Error::ToolFailed("nobody to greet".into()));
//!     }
//!     Ok(format!("Hello, {}!", args.name))
//! }
//!
//! export_tools! {
//!     greet {
//!         description: "Greets someone by name.",
//!         parameters: json!({
//!             "type": "object",
//!             "properties": { "name": { "type": "string" } },
//!             "required": ["name"],
//!         }),
//!     }
//! }
//! ```
//!
//! ## An agent
//!
//! An agent implements [`Agent`] and is exported with [`export_agent!`]. It
//! reaches the model with [`llm::chat`], tools with [`tools::call`], the other
//! agents it is granted with [`agents::invoke`], and may open its own spans
//! with [`telemetry::Span`]:
//!
//! ```
//! use glassbox_sdk::{export_agent, llm, telemetry, Agent, AgentInfo, ChatMessage, Error, RunRequest};
//!
//! struct Echo;
//!
//! impl Agent for Echo {
//!     fn describe() -> AgentInfo {
//!         AgentInfo { name: "echo".into(), description: "Asks the model once.".into(), version: "0.1.0".into() }
//!     }
//!
//!     fn run(request: RunRequest) -> Result<String, Error> {
//!         let _span = telemetry::Span::new("echo.ask", &[telemetry::attribute("echo.attempt", 1)]);
//!         let messages = glassbox_sdk::input_messages(request.input);
//!         let response = llm::chat(&llm::ChatRequest::new(messages))?;
//!         Ok(response.message.content)
//!     }
//! }
//!
//! export_agent!(Echo);
//! ```
//!
//! Either may reach the web with [`http`], to the hosts the user grants it.
//!
//! Build either with `cargo build --target wasm32-wasip2 --release` and run it
//! with `glassbox run`.

#[doc(hidden)]
pub mod agents;
pub mod bindings;
pub mod http;
pub mod llm;
#[cfg(feature = "otel")]
pub mod otel;
pub mod telemetry;
pub mod tools;

mod agent;
mod error;
mod tool;

pub use agent::input_messages;
pub use bindings::agent::exports::glassbox::agent::entrypoint::{
    AgentInfo, Guest as Agent, RunRequest,
};
pub use bindings::agent::glassbox::agent::types::{
    AgentInput, ChatMessage, Error, FinishReason, RateLimit, Role, TokenUsage, ToolCall,
    ToolDefinition,
};
pub use serde_json::{Value as JsonValue, json};
pub use tool::ToolOutput;

#[doc(hidden)]
pub mod __private {
    pub use crate::tool::{definition, invoke};
}
