//! The runtime, the layer that composes capabilities: compiling and loading
//! components ([`Loader`]), the state each store carries (one context per
//! capability), agent components and their runs, and the [`Host`] that
//! grants runs their capabilities and starts the instances they ask for.

mod cache;
mod component;
mod host;
mod loader;
mod off_fiber;
mod pooling;
mod state;
mod tool_host;

pub use component::{AgentComponent, AgentInfo};
pub use host::{
    AgentDirectory, AgentEntry, Host, HostBuilder, HostError, HostOptions, LocalAgent,
    TelemetrySetup, ToolRegistry,
};
pub use loader::{Components, EngineConfig, LoadError, Loader};
pub use pooling::PoolingConfig;
pub use state::{PluginComponent, StoreState, ToolProvider};
pub use tool_host::ToolHost;
