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
//! - [`agents`]: agents calling agents, in this host or on another, and the
//!   `agents` import (`invoke_agent` spans, CLIENT when remote);
//! - [`telemetry`]: providers, OTLP export, the console tree, opt-in message
//!   content with redaction, and guest spans and logs;
//! - [`sandbox`]: what a component may touch and use (deny by default),
//!   its limits and the run's budget, and outbound HTTP;
//! - [`agent`]: the agent component and its run (`invoke_agent` spans);
//! - [`runtime`]: the engine (pooled instances, a disk cache of compiled
//!   components), linking and loading, composing the above;
//! - [`manifest`]: `glassbox.toml`, naming the components and their policies;
//! - [`serve`]: the agents over HTTP (`glassbox serve`).
//!
//! ## Embedding
//!
//! A program with telemetry of its own hands the runtime its tracer and meter
//! providers, so the host's spans and metrics go where the program's go, and
//! runs an agent inside one of its own spans, so both are one trace:
//!
//! ```no_run
//! # async fn handle() -> Result<(), Box<dyn std::error::Error>> {
//! use glassbox::manifest::Manifest;
//! use glassbox::telemetry::ContentConfig;
//! use glassbox::{Engine, RunRequest, Telemetry};
//! use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
//! use opentelemetry_sdk::metrics::SdkMeterProvider;
//! use opentelemetry_sdk::trace::SdkTracerProvider;
//! use std::sync::Arc;
//!
//! // The application's providers, exporting wherever it already exports.
//! let tracer_provider = SdkTracerProvider::builder().build();
//! let meter_provider = SdkMeterProvider::builder().build();
//! let telemetry = Telemetry::with_providers(
//!     tracer_provider.clone(),
//!     meter_provider.clone(),
//!     &ContentConfig::default(),
//! )?;
//!
//! // Components, policies and model from a manifest (or built in code, below).
//! let manifest = Manifest::load("glassbox.toml".as_ref())?;
//! let (llm, _) = manifest.llm.clone().build()?;
//! let runtime = Engine::new()?
//!     .load_manifest(&manifest)
//!     .await?
//!     .into_runtime(llm, Arc::new(telemetry));
//!
//! // A run under the application's span for the request it is handling.
//! let span = tracer_provider.tracer("my-service").start("POST /questions");
//! let request = RunRequest {
//!     parent: opentelemetry::Context::current_with_span(span),
//!     policy: manifest.agent.policy.clone(),
//!     budget: manifest.agent.budget,
//!     ..RunRequest::text("Which is warmer, Paris or Lisbon?")
//! };
//! let answer = runtime.run(request).await?;
//! println!("{answer}");
//! // `Telemetry::shutdown` (blocking) only flushes the application's
//! // providers: shutting them down stays the application's job.
//! # Ok(()) }
//! ```
//!
//! Or in code, with telemetry of the host's own making:
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
