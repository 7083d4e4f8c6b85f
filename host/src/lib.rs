//! # Glassbox
//!
//! A Wasmtime host for AI agents and their tools. Agents and tool plugins are
//! WebAssembly components (see `wit/`); the host gives them a model, tools and
//! telemetry and nothing else, and traces every call with OpenTelemetry spans
//! and metrics that follow the GenAI semantic conventions.
//!
//! The crate is laid out by capability, each owning its host binding, its
//! configuration and its instrumentation:
//!
//! - [`llm`]: model providers (OpenAI-compatible, Anthropic, scripted) chosen by
//!   model, retries, streams, record and replay, prices, and the `llm` import
//!   (`chat` spans);
//! - [`tools`]: the tool registry and the `tools` import (`execute_tool` spans);
//! - [`telemetry`]: providers, OTLP export, the console tree, opt-in message
//!   content with redaction, and guest spans and logs;
//! - [`sandbox`]: what a component may touch and use (deny by default),
//!   its limits and the run's budget, and outbound HTTP;
//! - [`agent`]: the agent component and its run (`invoke_agent` spans);
//! - [`runtime`]: the engine (pooled instances, a disk cache of compiled
//!   components), linking and loading, composing the above;
//! - [`manifest`]: `glassbox.toml`, naming the components and their policies.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use glassbox::{Engine, Runtime, RunRequest, Telemetry, llm::ScriptedProvider, tools::PluginSpec};
//! use std::sync::Arc;
//!
//! let engine = Engine::new()?;
//! let agent = engine.load_agent("react_agent.wasm".as_ref()).await?;
//! let tools = engine.load_tools(&[PluginSpec::new("weather.wasm")]).await?;
//! let runtime = Runtime::new(agent, tools, Arc::new(ScriptedProvider::demo()), Arc::new(Telemetry::disabled()));
//! let answer = runtime.run(RunRequest::text("Which is warmer, Paris or Lisbon?")).await?;
//! println!("{answer}");
//! # Ok(()) }
//! ```

pub mod agent;
pub mod agents;
mod bindings;
pub mod llm;
pub mod manifest;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod telemetry;
pub mod tools;

pub use agent::{AgentComponent, AgentInfo, AgentInput, RunError, RunRequest};
pub use bindings::GuestError;
pub use bindings::agent::glassbox::agent::types::{ChatMessage, Role, ToolCall, ToolDefinition};
pub use runtime::{Engine, EngineConfig, LoadError, PoolingConfig, Runtime};
pub use telemetry::Telemetry;
