//! # Glassbox
//!
//! A Wasmtime host for AI agents and their tools. Agents and tool plugins are
//! WebAssembly components (see `wit/`); the host gives them a model, tools and
//! telemetry and nothing else, and traces every call with OpenTelemetry spans
//! and metrics that follow the GenAI semantic conventions.
//!
//! The crate is laid out by capability (see `ARCHITECTURE.md` for the layers
//! and what may import what):
//!
//! - [`telemetry`]: the pipeline (providers from sinks: OTLP, Prometheus, the
//!   console tree, or an embedder's), traced operations, propagation, names;
//! - [`sandbox`]: what a component may touch and use (deny by default), its
//!   limits, the run's budget, and outbound HTTP;
//! - the capabilities a guest imports, each owning its host context and view,
//!   its spans and its metrics: [`llm`] (model providers, `chat` spans),
//!   [`tools`] (`execute_tool` spans), [`agents`] (agents calling agents,
//!   `invoke_agent` spans) and `guest_telemetry` (guest spans and logs);
//! - [`manifest`]: `glassbox.toml`, naming the components and their grants;
//! - [`runtime`]: loading components and composing the capabilities into a
//!   [`Host`], which [`Host::from_manifest`] builds exactly as the CLI does;
//! - [`serve`]: a host's agents over HTTP (`glassbox serve`).
//!
//! ## Embedding
//!
//! A program with telemetry of its own hands the host its tracer and meter
//! providers, so the host's spans and metrics go where the program's go, and
//! runs an agent inside one of its own spans, so both are one trace. The
//! manifest's limits (`memory`, `timeout`, `fuel`) and the agents it names
//! apply exactly as under `glassbox run`:
//!
//! ```no_run
//! # async fn handle() -> Result<(), Box<dyn std::error::Error>> {
//! use glassbox::manifest::Manifest;
//! use glassbox::telemetry::ContentConfig;
//! use glassbox::{Host, HostOptions, RunRequest, Telemetry, TelemetrySetup};
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
//! // Components, grants, limits and models from a manifest.
//! let manifest = Manifest::load("glassbox.toml".as_ref())?;
//! let options = HostOptions {
//!     telemetry: TelemetrySetup::Shared(Arc::new(telemetry)),
//!     ..HostOptions::default()
//! };
//! let host = Host::from_manifest(&manifest, options).await?;
//!
//! // A run under the application's span for the request it is handling.
//! let span = tracer_provider.tracer("my-service").start("POST /questions");
//! let request = RunRequest {
//!     parent: opentelemetry::Context::current_with_span(span),
//!     ..host.request("Which is warmer, Paris or Lisbon?")
//! };
//! let answer = host.run(request).await?;
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
//! use glassbox::{Host, Loader, RunRequest, Telemetry, llm::ScriptedProvider, tools::PluginSpec};
//! use std::sync::Arc;
//!
//! let loader = Loader::new()?;
//! let agent = loader.load_agent("react_agent.wasm".as_ref()).await?;
//! let tools = loader.load_tools(&[PluginSpec::new("weather.wasm")]).await?;
//! let host = Host::builder(agent, Arc::new(ScriptedProvider::demo()))
//!     .tools(tools)
//!     .telemetry(Arc::new(Telemetry::disabled()))
//!     .build();
//! let answer = host.run(RunRequest::text("Which is warmer, Paris or Lisbon?")).await?;
//! println!("{answer}");
//! # Ok(()) }
//! ```

pub mod agents;
mod bindings;
mod env;
mod files;
mod guest_telemetry;
pub mod llm;
pub mod manifest;
pub mod mcp;
pub mod runtime;
pub mod sandbox;
pub mod serve;
pub mod telemetry;
mod text;
pub mod tools;
mod wasi_otel;

pub use agents::{AgentInput, RunError, RunRequest};
pub use bindings::GuestError;
pub use bindings::agent::glassbox::agent::types::{ChatMessage, Role, ToolCall, ToolDefinition};
pub use runtime::{
    AgentComponent, AgentDirectory, AgentEntry, AgentInfo, EngineConfig, Host, HostBuilder,
    HostError, HostOptions, LoadError, Loader, LocalAgent, PoolingConfig, TelemetrySetup,
    ToolRegistry,
};
pub use telemetry::Telemetry;
pub use text::{cause_chain, printable};
