//! Compiling and loading components: one Wasmtime engine (pooled instances,
//! compiled components cached on disk), a linker per world, and the checks
//! that a file is a component of the right world before anything runs it.

use super::cache::CompiledCache;
use super::component::AgentComponent;
use super::host::{AgentDirectory, AgentEntry, LocalAgent, ToolRegistry};
use super::pooling::{InstanceSlots, PoolingConfig, WASM_PAGE};
use super::state::{StoreState, ToolProvider, link, new_store};
use crate::agents::{AgentGrant, DuplicateAgent};
use crate::bindings::tool_plugin::ToolPluginPre;
use crate::bindings::{Bounded, MAX_GUEST_LIST};
use crate::files::{MAX_COMPONENT, read_bounded};
use crate::manifest::{AgentDecl, AgentSpec, Manifest};
use crate::mcp::client::{McpClient, McpConnectError, McpEndpoint, McpServerSpec};
use crate::sandbox::{Fault, Policy, guard};
use crate::text::{error_chain, list_or_none};
use crate::tools::{Plugin, PluginDirError, PluginSpec, RegistrationError};
use opentelemetry::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{InstancePre, Linker};
use wasmtime::{Config, Store};

/// A component file that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot set up the WebAssembly engine: {0}")]
    Engine(String),
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not a WebAssembly file (it does not start with `\\0asm`)", .path.display())]
    NotWasm { path: PathBuf },
    #[error("{}: a core WebAssembly module, not a component; build it with `--target wasm32-wasip2`", .path.display())]
    CoreModule { path: PathBuf },
    #[error("{}: invalid WebAssembly component: {reason}", .path.display())]
    Invalid { path: PathBuf, reason: String },
    #[error("{}: does not target the `{world}` world: {reason}", .path.display())]
    WrongWorld {
        path: PathBuf,
        world: &'static str,
        reason: String,
    },
    #[error("{}: `{call}` failed while loading: {reason}", .path.display())]
    Startup {
        path: PathBuf,
        call: &'static str,
        reason: String,
    },
    #[error("{}: cannot set up its sandbox: {reason}", .path.display())]
    Sandbox { path: PathBuf, reason: String },
    #[error("{}: too large for this host's instance pool: {reason}", .path.display())]
    PoolLimit { path: PathBuf, reason: String },
    #[error(transparent)]
    Tool(#[from] RegistrationError),
    #[error(transparent)]
    McpServer(#[from] McpConnectError),
    #[error(transparent)]
    PluginDir(#[from] PluginDirError),
    #[error(transparent)]
    DuplicateAgent(#[from] DuplicateAgent),
    #[error("agent `{agent}` is granted agent `{granted}`, which is not defined (defined: {})", list_or_none(.defined))]
    UnknownAgent {
        agent: String,
        granted: String,
        defined: Vec<String>,
    },
}

impl LoadError {
    /// For a guest call that the host stopped while loading `path`.
    pub(super) fn startup(path: &Path, call: &'static str) -> impl Fn(Fault) -> LoadError {
        move |fault| LoadError::Startup {
            path: path.into(),
            call,
            reason: fault.to_string(),
        }
    }
}

/// The world a component must target, and the export that proves it.
#[derive(Clone, Copy, Debug)]
pub(super) enum World {
    Agent,
    ToolPlugin,
}

impl World {
    fn name(self) -> &'static str {
        match self {
            World::Agent => "agent",
            World::ToolPlugin => "tool-plugin",
        }
    }

    /// "a `tool-plugin` component", for messages.
    fn a_component(self) -> &'static str {
        match self {
            World::Agent => "an `agent` component",
            World::ToolPlugin => "a `tool-plugin` component",
        }
    }

    fn export(self) -> &'static str {
        match self {
            World::Agent => "glassbox:agent/entrypoint@0.1.0",
            World::ToolPlugin => "glassbox:agent/tool@0.1.0",
        }
    }

    fn other(self) -> World {
        match self {
            World::Agent => World::ToolPlugin,
            World::ToolPlugin => World::Agent,
        }
    }
}

/// How a [`Loader`]'s engine compiles, caches and allocates components.
#[derive(Clone, Debug, Default)]
pub struct EngineConfig {
    /// Meter fuel, so policies may set a fuel limit. Metering costs compile
    /// and run time (about a fifth more to compile the demo), so only ask for
    /// it when some policy sets `fuel`.
    pub fuel_metering: bool,
    /// Preallocate instance slots (the pooling allocator, with copy-on-write
    /// memory images), or `None` to map each instance's memory when it starts.
    pub pooling: Option<PoolingConfig>,
    /// Keep compiled components in this directory, so loading a component
    /// the engine has compiled before skips compilation.
    pub cache_dir: Option<PathBuf>,
}

impl EngineConfig {
    /// The per-user cache directory: `$XDG_CACHE_HOME/glassbox/components` or
    /// its platform equivalent, when the platform has one.
    pub fn default_cache_dir() -> Option<PathBuf> {
        dirs::cache_dir().map(|dir| dir.join("glassbox").join("components"))
    }
}

/// One Wasmtime engine and the linkers that give each world its imports.
/// Compiling is the expensive part; load each component once and run it many times.
pub struct Loader {
    engine: wasmtime::Engine,
    agent_linker: Linker<StoreState>,
    plugin_linker: Linker<StoreState>,
    cache: Option<CompiledCache>,
    pooling: Option<PoolingConfig>,
    /// The pool's instance slots, which runs reserve before they start.
    slots: Option<Arc<InstanceSlots>>,
}

impl Loader {
    /// An engine without fuel metering, pooling or cache.
    pub fn new() -> Result<Self, LoadError> {
        Self::with_config(&EngineConfig::default())
    }

    /// An engine that can hold components to a fuel limit.
    pub fn with_fuel_metering() -> Result<Self, LoadError> {
        Self::with_config(&EngineConfig {
            fuel_metering: true,
            ..EngineConfig::default()
        })
    }

    pub fn with_config(settings: &EngineConfig) -> Result<Self, LoadError> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        config.consume_fuel(settings.fuel_metering);
        // The contract is WASI 0.2, synchronous: without the async component
        // model's machinery, dropping a store has no fibers to look for.
        config.concurrency_support(false);
        if let Some(pooling) = &settings.pooling {
            pooling.apply(&mut config);
        }
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| LoadError::Engine(error_chain(&e)))?;
        start_epoch_ticker(&engine);
        let mut agent_linker = Linker::new(&engine);
        let mut plugin_linker = Linker::new(&engine);
        link(&mut agent_linker, World::Agent).map_err(|e| LoadError::Engine(e.to_string()))?;
        link(&mut plugin_linker, World::ToolPlugin)
            .map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache = settings
            .cache_dir
            .clone()
            .map(|dir| CompiledCache::new(dir, &engine));
        Ok(Loader {
            engine,
            agent_linker,
            plugin_linker,
            cache,
            pooling: settings.pooling,
            slots: settings
                .pooling
                .map(|pooling| Arc::new(InstanceSlots::new(&pooling))),
        })
    }

    /// Compiles the agent at `path`, checks it targets the `agent` world and asks it to describe itself.
    pub async fn load_agent(&self, path: &Path) -> Result<AgentComponent, LoadError> {
        self.load_agent_with(path, &Policy::default()).await
    }

    /// Compiles the agent at `path`, checks it targets the `agent` world and
    /// asks it to describe itself, under `policy`.
    pub async fn load_agent_with(
        &self,
        path: &Path,
        policy: &Policy,
    ) -> Result<AgentComponent, LoadError> {
        AgentComponent::load(self, path, policy).await
    }

    /// Compiles the tool plugins, each to run under its own policy, and indexes
    /// their tools by name.
    pub async fn load_tools(&self, plugins: &[PluginSpec]) -> Result<ToolRegistry, LoadError> {
        let mut registry = ToolRegistry::default();
        for PluginSpec {
            path,
            policy,
            instances,
        } in plugins
        {
            let (label, pre) = self.prepare(path, World::ToolPlugin, policy, ToolPluginPre::new)?;
            let policy = Arc::new(policy.clone());
            let mut store = self.loading_store(path, &label, &policy)?;
            let definitions = guard(&policy.limits, async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .glassbox_agent_tool()
                    .call_definitions(&mut store)
                    .await
            })
            .await
            .map_err(LoadError::startup(path, "definitions"))?;
            let refused = |reason: String| LoadError::Startup {
                path: path.clone(),
                call: "definitions",
                reason,
            };
            if definitions.is_empty() {
                return Err(refused("the plugin provides no tools".into()));
            }
            if definitions.len() > MAX_GUEST_LIST {
                return Err(refused(format!(
                    "the plugin defines {} tools; a plugin may define at most {MAX_GUEST_LIST}",
                    definitions.len()
                )));
            }
            let plugin = Arc::new(Plugin::new(
                path.clone(),
                label,
                policy,
                *instances,
                ToolProvider::Component(pre),
            ));
            for definition in definitions {
                registry.register(definition.bounded(), &plugin)?;
            }
        }
        Ok(registry)
    }

    /// Loads every component `manifest` names: the agent, its plugins and the
    /// agents it may call, and checks that every granted agent is defined.
    pub async fn load_manifest(&self, manifest: &Manifest) -> Result<Components, LoadError> {
        let main = &manifest.agent;
        let agent = self.load_agent_with(&main.path, &main.policy).await?;
        let mut tools = self.load_tools(&manifest.plugins).await?;
        for spec in &manifest.mcp_servers {
            add_mcp_server(&mut tools, spec.clone()).await?;
        }
        let mut agents = AgentDirectory::default();
        if let Some(max_depth) = manifest.max_agent_depth {
            agents = agents.with_max_depth(max_depth);
        }
        // Named, described and placed in its workflow as the manifest says.
        let declared = |mut component: AgentComponent, spec: &AgentSpec| {
            if let Some(name) = &spec.name {
                component = component.named(name);
            }
            if let Some(description) = &spec.description {
                component = component.described(description);
            }
            if let Some(workflow) = &spec.workflow {
                component = component.in_workflow(workflow);
            }
            component
        };
        let local = |component: &AgentComponent, spec: &AgentSpec| {
            AgentEntry::Local(Box::new(LocalAgent {
                component: component.clone(),
                policy: spec.policy.clone(),
                budget: spec.budget,
            }))
        };
        let agent = declared(agent, main);
        agents.add(agent.info().name.clone(), local(&agent, main))?;
        for decl in &manifest.agents {
            match decl {
                AgentDecl::Local(spec) => {
                    let component = self.load_agent_with(&spec.path, &spec.policy).await?;
                    let component = declared(component, spec);
                    agents.add(component.info().name.clone(), local(&component, spec))?;
                }
                AgentDecl::Remote(remote) => {
                    agents.add(remote.name.clone(), AgentEntry::Remote(remote.clone()))?;
                }
            }
        }
        let defined: Vec<String> = agents.iter().map(|(name, _)| name.to_owned()).collect();
        for (name, local) in agents.locals() {
            if let Some(granted) = AgentGrant::of(&local.policy)
                .iter()
                .find(|granted| !defined.contains(granted))
            {
                return Err(LoadError::UnknownAgent {
                    agent: name.to_owned(),
                    granted: granted.clone(),
                    defined,
                });
            }
        }
        Ok(Components {
            agent,
            tools,
            agents,
        })
    }

    /// Reads, compiles and links the component at `path` for `world`, then
    /// checks its exports with the world's typed bindings (`typed`).
    pub(super) fn prepare<P>(
        &self,
        path: &Path,
        world: World,
        policy: &Policy,
        typed: impl FnOnce(InstancePre<StoreState>) -> wasmtime::Result<P>,
    ) -> Result<(Arc<str>, P), LoadError> {
        let bytes = read_bounded(path, MAX_COMPONENT).map_err(|source| LoadError::Read {
            path: path.into(),
            source,
        })?;
        if !bytes.starts_with(b"\0asm") {
            return Err(LoadError::NotWasm { path: path.into() });
        }
        if wasmparser::Parser::is_core_wasm(&bytes) {
            return Err(LoadError::CoreModule { path: path.into() });
        }
        let compiled = match &self.cache {
            Some(cache) => cache.load_or_compile(&self.engine, &bytes),
            None => wasmtime::component::Component::from_binary(&self.engine, &bytes),
        };
        // Only a component that failed to compile is counted: Wasmtime refuses
        // one past the pool's limits, in terms of its own.
        let component = compiled.map_err(|e| {
            match self.pooling.map(|pooling| pooling.check_component(&bytes)) {
                Some(Err(reason)) => LoadError::PoolLimit {
                    path: path.into(),
                    reason,
                },
                _ => LoadError::Invalid {
                    path: path.into(),
                    reason: error_chain(&e),
                },
            }
        })?;
        let memory_at_start = component
            .resources_required()
            .and_then(|needed| needed.max_initial_memory_size)
            .map_or(0, |pages| pages.saturating_mul(WASM_PAGE));
        if memory_at_start > policy.limits.memory {
            return Err(LoadError::Sandbox {
                path: path.into(),
                reason: format!(
                    "it needs {} of memory at start; its limit is {}",
                    bytesize::ByteSize(memory_at_start).display().iec(),
                    bytesize::ByteSize(policy.limits.memory).display().iec()
                ),
            });
        }
        let exports: Vec<String> = component
            .component_type()
            .exports(&self.engine)
            .map(|(name, _)| name.to_owned())
            .collect();
        if !exports.iter().any(|name| name == world.export()) {
            let reason = if exports.iter().any(|name| name == world.other().export()) {
                format!("it is {}", world.other().a_component())
            } else {
                format!(
                    "it does not export `{}` (it exports: {})",
                    world.export(),
                    list_or_none(&exports)
                )
            };
            return Err(LoadError::WrongWorld {
                path: path.into(),
                world: world.name(),
                reason,
            });
        }
        let linker = match world {
            World::Agent => &self.agent_linker,
            World::ToolPlugin => &self.plugin_linker,
        };
        let pre = linker
            .instantiate_pre(&component)
            .and_then(typed)
            .map_err(|e| LoadError::WrongWorld {
                path: path.into(),
                world: world.name(),
                reason: error_chain(&e),
            })?;
        Ok((component_label(path), pre))
    }

    /// How the engine pools instances, if it does.
    pub(super) fn slots(&self) -> Option<Arc<InstanceSlots>> {
        self.slots.clone()
    }

    pub(super) fn pooling(&self) -> Option<PoolingConfig> {
        self.pooling
    }

    /// A store for calls made while loading, when no capability is granted yet.
    pub(super) fn loading_store(
        &self,
        path: &Path,
        component: &Arc<str>,
        policy: &Arc<Policy>,
    ) -> Result<Store<StoreState>, LoadError> {
        let sandbox_error = |reason| LoadError::Sandbox {
            path: path.into(),
            reason,
        };
        if let Some(pooling) = &self.pooling {
            pooling.check(&policy.limits).map_err(sandbox_error)?;
        }
        new_store(
            &self.engine,
            component,
            policy,
            Context::new(),
            None,
            World::Agent,
        )
        .map_err(sandbox_error)
    }
}

/// Everything a manifest names, compiled and described: what a
/// [`Host`](super::Host) is made of, less the model and telemetry.
pub struct Components {
    /// The manifest's `[agent]`, which `glassbox run` runs.
    pub agent: AgentComponent,
    pub tools: ToolRegistry,
    /// Every agent by name, the main one included.
    pub agents: AgentDirectory,
}

/// How often the engine's epoch advances: the longest a guest runs before
/// yielding to the async executor, so other runs progress and a dropped run
/// (Ctrl-C) stops even a guest stuck in a loop.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// One ticker thread per engine; it stops once the engine is dropped.
fn start_epoch_ticker(engine: &wasmtime::Engine) {
    let engine = engine.weak();
    let ticker = std::thread::Builder::new()
        .name("glassbox-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        });
    if let Err(error) = ticker {
        tracing::warn!(
            "cannot start the epoch ticker, guests will not yield while computing: {error}"
        );
    }
}

fn component_label(path: &Path) -> Arc<str> {
    path.file_name()
        .map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
        .into()
}

/// Connects to the MCP server `spec` names and adds its tools to `registry`.
async fn add_mcp_server(registry: &mut ToolRegistry, spec: McpServerSpec) -> Result<(), LoadError> {
    let location = match &spec.endpoint {
        McpEndpoint::Http { url, .. } => PathBuf::from(url.as_str()),
        McpEndpoint::Stdio { command, .. } => command.clone(),
    };
    let client = McpClient::connect(spec).await?;
    let label: Arc<str> = format!("mcp:{}", client.name()).into();
    let attributes = client.span_attributes().to_vec();
    let definitions = client.definitions().to_vec();
    let source = Arc::new(Plugin::remote(
        location,
        label,
        attributes,
        ToolProvider::Mcp(Arc::new(client)),
    ));
    for definition in definitions {
        registry.register(definition, &source)?;
    }
    Ok(())
}
