//! The runtime: one Wasmtime engine (pooled instances, compiled components
//! cached on disk), a linker per world, the state each store carries, loading
//! of component files, and [`Runtime`], which composes the capabilities (llm,
//! tools, telemetry, sandbox) for agent runs.

mod cache;
mod pooling;

pub use pooling::PoolingConfig;

use crate::agent::{AgentComponent, RunError, RunRequest};
use crate::agents::{AgentDirectory, AgentEntry, DuplicateAgent, LocalAgent};
use crate::bindings;
use crate::llm::Llm;
use crate::manifest::{AgentDecl, AgentSpec, Manifest};
use crate::sandbox::{self, Fault, HttpGate, MemoryLimiter, Policy, RunBudget};
use crate::telemetry::{SpanScope, Telemetry};
use crate::tools::{PluginSpec, ToolRegistry};
use cache::CompiledCache;
use opentelemetry::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, InstancePre, Linker, ResourceTable};
use wasmtime::{Config, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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
    #[error("{}: tool `{tool}`: {reason}", .path.display())]
    BadTool {
        path: PathBuf,
        tool: String,
        reason: String,
    },
    #[error("tool `{tool}` is provided by both {} and {}", .first.display(), .second.display())]
    DuplicateTool {
        tool: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{}: cannot list plugins: {source}", .path.display())]
    PluginDir {
        path: PathBuf,
        source: std::io::Error,
    },
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
    pub(crate) fn startup(path: &Path, call: &'static str) -> impl Fn(Fault) -> LoadError {
        move |fault| LoadError::Startup {
            path: path.into(),
            call,
            reason: fault.to_string(),
        }
    }
}

/// The world a component must target, and the export that proves it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum World {
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

/// How an [`Engine`] compiles, caches and allocates components.
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
pub struct Engine {
    engine: wasmtime::Engine,
    agent_linker: Linker<ComponentState>,
    plugin_linker: Linker<ComponentState>,
    cache: Option<CompiledCache>,
    pooling: Option<PoolingConfig>,
}

impl Engine {
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
        if let Some(pooling) = &settings.pooling {
            pooling.apply(&mut config);
        }
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| LoadError::Engine(error_chain(&e)))?;
        start_epoch_ticker(&engine);
        let mut agent_linker = Linker::new(&engine);
        let mut plugin_linker = Linker::new(&engine);
        let add = |linker: &mut Linker<ComponentState>, with_tools: bool| -> wasmtime::Result<()> {
            use bindings::agent::glassbox::agent as api;
            wasmtime_wasi::p2::add_to_linker_async(linker)?;
            wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
            api::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
            api::llm::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
            api::telemetry::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
            // Only agents may call tools and agents: a plugin calling them could recurse without end.
            if with_tools {
                api::tools::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
                api::agents::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
            }
            Ok(())
        };
        add(&mut agent_linker, true).map_err(|e| LoadError::Engine(e.to_string()))?;
        add(&mut plugin_linker, false).map_err(|e| LoadError::Engine(e.to_string()))?;
        let cache = settings
            .cache_dir
            .clone()
            .map(|dir| CompiledCache::new(dir, &engine));
        Ok(Engine {
            engine,
            agent_linker,
            plugin_linker,
            cache,
            pooling: settings.pooling,
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
        ToolRegistry::load(self, plugins).await
    }

    /// Loads every component `manifest` names: the agent, its plugins and the
    /// agents it may call, and checks that every granted agent is defined.
    pub async fn load_manifest(&self, manifest: &Manifest) -> Result<Components, LoadError> {
        let main = &manifest.agent;
        let agent = self.load_agent_with(&main.path, &main.policy).await?;
        let tools = self.load_tools(&manifest.plugins).await?;
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
            if let Some(granted) = local
                .policy
                .agents
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
    pub(crate) fn prepare<P>(
        &self,
        path: &Path,
        world: World,
        typed: impl FnOnce(InstancePre<ComponentState>) -> wasmtime::Result<P>,
    ) -> Result<(Arc<str>, P), LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
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
        let component = compiled.map_err(|e| LoadError::Invalid {
            path: path.into(),
            reason: error_chain(&e),
        })?;
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
    pub(crate) fn pooling(&self) -> Option<PoolingConfig> {
        self.pooling
    }

    /// A store for calls made while loading, when no capability is granted yet.
    pub(crate) fn loading_store(
        &self,
        path: &Path,
        component: &Arc<str>,
        policy: &Arc<Policy>,
    ) -> Result<Store<ComponentState>, LoadError> {
        let sandbox_error = |reason| LoadError::Sandbox {
            path: path.into(),
            reason,
        };
        if let Some(pooling) = &self.pooling {
            pooling.check(&policy.limits).map_err(sandbox_error)?;
        }
        new_store(&self.engine, component, None, Context::new(), policy).map_err(sandbox_error)
    }
}

/// Everything a manifest names, compiled and described: what a [`Runtime`]
/// is made of, less the model and telemetry.
pub struct Components {
    /// The manifest's `[agent]`, which `glassbox run` runs.
    pub agent: AgentComponent,
    pub tools: ToolRegistry,
    /// Every agent by name, the main one included.
    pub agents: AgentDirectory,
}

impl Components {
    pub fn into_runtime(self, llm: impl Into<Llm>, telemetry: Arc<Telemetry>) -> Runtime {
        Runtime::with_agents(self.agent, self.tools, self.agents, llm, telemetry)
    }
}

/// The capabilities a runtime grants every component it runs.
pub(crate) struct Capabilities {
    pub llm: Llm,
    pub tools: ToolRegistry,
    pub agents: AgentDirectory,
    pub telemetry: Arc<Telemetry>,
}

/// What a store running for an agent run may use: the runtime's capabilities,
/// the run's budget (shared with the tool and agent calls the run makes), how
/// deep in agent calls the run is, and its conversation.
#[derive(Clone)]
pub(crate) struct RunScope {
    pub capabilities: Arc<Capabilities>,
    pub budget: Arc<RunBudget>,
    pub depth: u32,
    pub conversation_id: Option<String>,
}

/// What each store carries: the component's sandbox and its view of the capabilities.
pub(crate) struct ComponentState {
    /// The component's file name, used in logs and on spans.
    pub(crate) component: Arc<str>,
    pub(crate) policy: Arc<Policy>,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    http_gate: HttpGate,
    pub(crate) table: ResourceTable,
    /// `None` while loading: imports then refuse politely.
    run: Option<RunScope>,
    pub(crate) spans: SpanScope,
    limiter: MemoryLimiter,
}

impl ComponentState {
    /// The state of a store under `parent` (the span of the run or tool call).
    /// Fails when a granted directory cannot be opened.
    fn new(
        component: Arc<str>,
        run: Option<RunScope>,
        parent: Context,
        policy: Arc<Policy>,
    ) -> Result<Self, String> {
        let telemetry = run.as_ref().map(|r| r.capabilities.telemetry.clone());
        Ok(ComponentState {
            wasi: sandbox::wasi_ctx(&component, &policy, &parent)?,
            http: WasiHttpCtx::new(),
            http_gate: HttpGate::new(component.clone(), policy.clone(), telemetry),
            limiter: MemoryLimiter::new(&policy.limits),
            component,
            policy,
            table: ResourceTable::new(),
            run,
            spans: SpanScope::new(parent),
        })
    }

    pub(crate) fn run(&self) -> Option<&RunScope> {
        self.run.as_ref()
    }

    pub(crate) fn capabilities(&self) -> Option<&Arc<Capabilities>> {
        self.run.as_ref().map(|run| &run.capabilities)
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for ComponentState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        // Requests made now belong to the guest's innermost open span.
        self.http_gate.parent = self.spans.current().clone();
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_gate,
        }
    }
}

/// An agent ready to run, with its tools, the agents it may call, model and telemetry.
pub struct Runtime {
    capabilities: Arc<Capabilities>,
    agent: AgentComponent,
}

impl Runtime {
    /// A runtime for `agent` alone: it may call no other agent.
    pub fn new(
        agent: AgentComponent,
        tools: ToolRegistry,
        llm: impl Into<Llm>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Self::with_agents(agent, tools, AgentDirectory::default(), llm, telemetry)
    }

    /// A runtime for `agent`, whose runs may call the agents of `agents` that
    /// their policies grant.
    pub fn with_agents(
        agent: AgentComponent,
        tools: ToolRegistry,
        agents: AgentDirectory,
        llm: impl Into<Llm>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Runtime {
            capabilities: Arc::new(Capabilities {
                llm: llm.into(),
                tools,
                agents,
                telemetry,
            }),
            agent,
        }
    }

    pub fn agent(&self) -> &AgentComponent {
        &self.agent
    }

    pub fn agents(&self) -> &AgentDirectory {
        &self.capabilities.agents
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.capabilities.telemetry
    }

    /// Runs the agent once, in a fresh store, as one trace.
    pub async fn run(&self, request: RunRequest) -> Result<String, RunError> {
        self.agent.run(&self.capabilities, request).await
    }

    /// Runs `agent` (one of [`Runtime::agents`], say) once, with this
    /// runtime's capabilities.
    pub async fn run_component(
        &self,
        agent: &AgentComponent,
        request: RunRequest,
    ) -> Result<String, RunError> {
        agent.run(&self.capabilities, request).await
    }
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

/// A store for one instance of `component` under `parent` (the span of the
/// run or tool call), sandboxed and held to `policy`'s memory and fuel limits,
/// yielding to the executor at every epoch tick. Fails when a granted
/// directory cannot be opened or a fuel limit cannot be metered.
pub(crate) fn new_store(
    engine: &wasmtime::Engine,
    component: &Arc<str>,
    run: Option<RunScope>,
    parent: Context,
    policy: &Arc<Policy>,
) -> Result<Store<ComponentState>, String> {
    let state = ComponentState::new(component.clone(), run, parent, policy.clone())?;
    let mut store = Store::new(engine, state);
    store.limiter(|state| &mut state.limiter);
    // Reading the fuel fails exactly when the engine does not meter it.
    let metered = store.get_fuel().is_ok();
    match (policy.limits.fuel, metered) {
        (Some(fuel), true) => store.set_fuel(fuel).map_err(|e| e.to_string())?,
        (Some(_), false) => {
            return Err(
                "a fuel limit needs an engine that meters fuel (`Engine::with_fuel_metering`)"
                    .into(),
            );
        }
        (None, true) => store.set_fuel(u64::MAX).map_err(|e| e.to_string())?,
        (None, false) => {}
    }
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    Ok(store)
}

/// A Wasmtime error with its causes, on one line.
pub(crate) fn error_chain(error: &wasmtime::Error) -> String {
    error
        .chain()
        .map(|cause| cause.to_string())
        .collect::<Vec<_>>()
        .join(": ")
}

fn component_label(path: &Path) -> Arc<str> {
    path.file_name()
        .map_or_else(
            || path.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
        .into()
}

/// `a, b, c`, or `nothing`, for messages.
pub(crate) fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "nothing".to_owned()
    } else {
        names.join(", ")
    }
}
