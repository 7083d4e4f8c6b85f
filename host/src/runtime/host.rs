//! The composition root: a [`Host`] grants each run of its agent the
//! capabilities (model, tools, agents, telemetry) and starts the instances
//! capabilities ask for, through the launcher interfaces they define.
//! [`Host::from_manifest`] builds exactly what the `glassbox` command builds.

use super::component::{Admission, AgentComponent};
use super::loader::{EngineConfig, LoadError, Loader, World};
use super::off_fiber::OffFiber;
use super::pooling::{InstanceSlots, PoolingConfig, Reservation};
use super::state::{PluginComponent, StoreState, ToolProvider, new_store, refuel};
use crate::agents::{self, AgentGrant, AgentLauncher, AgentsCapability, RunError, RunRequest};
use crate::bindings::tool_plugin::ToolPlugin;
use crate::bindings::{Bounded, GuestError};
use crate::llm::{Llm, LlmCapability, LlmSetupError};
use crate::manifest::Manifest;
use crate::sandbox::{Budget, Policy, RunBudget, guard};
use crate::telemetry::{Telemetry, TelemetryConfig, TelemetryError};
use crate::tools::{
    self, Failure, InstanceScope, Invocation, Plugin, ToolLauncher, ToolsCapability,
};
use crate::wasi_otel::WasiOtelCapability;
use opentelemetry::Context;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};
use wasmtime::Store;

/// Every tool a run may call, by name, as this runtime compiles plugins.
pub type ToolRegistry = tools::ToolRegistry<ToolProvider>;
/// The agents of one host by name.
pub type AgentDirectory = agents::AgentDirectory<AgentComponent>;
/// An agent of an [`AgentDirectory`] that runs in this host.
pub type LocalAgent = agents::LocalAgent<AgentComponent>;
/// Where an agent of an [`AgentDirectory`] runs.
pub type AgentEntry = agents::AgentEntry<AgentComponent>;

/// The capabilities a host grants every component it runs.
pub(crate) struct Capabilities {
    pub llm: Arc<LlmCapability>,
    pub tools: Arc<ToolsCapability<ToolProvider>>,
    pub agents: Arc<AgentsCapability<AgentComponent>>,
    pub wasi_otel: Arc<WasiOtelCapability>,
    pub telemetry: Arc<Telemetry>,
}

/// One run in progress: the host's capabilities, the run's budget (shared
/// with the tool and agent calls it makes), how deep in agent calls it is,
/// and its conversation. It starts the instances its calls need.
pub(crate) struct RunScope {
    pub capabilities: Arc<Capabilities>,
    /// The pool's slots, which the run's tool calls wait for.
    pub slots: Option<Arc<InstanceSlots>>,
    pub budget: Arc<RunBudget>,
    pub depth: u32,
    pub conversation_id: Option<String>,
    /// The model and tool calls the run's agent made itself (not those of
    /// the tools or agents it called), for `gen_ai.invoke_agent.*_calls`.
    pub own_calls: OwnCalls,
    /// Instances of [`InstanceScope::PerRun`] plugins, kept for the run's
    /// later calls of them; each holds its pool slot until the run ends, or
    /// until the run needs a slot and finds none free.
    pub kept_tools: Mutex<Vec<ToolInstance>>,
    /// Where the run's guest hands the instances its imports start.
    pub off_fiber: OffFiber,
}

/// A tool plugin's instance with its store, and the pool slot it holds.
pub(crate) struct ToolInstance {
    /// The plugin's label, the same `Arc` for every call of the plugin.
    plugin: Arc<str>,
    store: Store<StoreState>,
    instance: ToolPlugin,
    slot: Option<Reservation>,
}

/// Calls an agent made itself, counted as its capabilities admit them.
#[derive(Default)]
pub(crate) struct OwnCalls {
    pub inference: Arc<AtomicU32>,
    pub tools: Arc<AtomicU32>,
}

#[async_trait::async_trait]
impl ToolLauncher<ToolProvider> for RunScope {
    async fn invoke(
        self: Arc<Self>,
        plugin: &Arc<Plugin<ToolProvider>>,
        parent: &Context,
        call: Invocation,
    ) -> Result<String, Failure> {
        let pre = match plugin.compiled() {
            ToolProvider::Component(pre) => pre.clone(),
            ToolProvider::Mcp(server) => {
                return Ok(server.call(&call.name, &call.arguments, parent).await?);
            }
        };
        let (plugin, parent) = (plugin.clone(), parent.clone());
        let run = self.clone();
        self.off_fiber
            .run(
                move || async move { Box::pin(run.call_instance(pre, plugin, parent, call)).await },
            )
            .await
    }
}

impl RunScope {
    /// Runs `call` in an instance of `plugin` (`pre`, instantiated): a fresh
    /// one, or the one the run kept if the plugin is [`InstanceScope::PerRun`].
    async fn call_instance(
        self: Arc<Self>,
        pre: PluginComponent,
        plugin: Arc<Plugin<ToolProvider>>,
        parent: Context,
        call: Invocation,
    ) -> Result<String, Failure> {
        let policy = plugin.policy();
        let kept = match plugin.instances() {
            InstanceScope::PerRun => self.take_kept(plugin.label()),
            InstanceScope::PerCall => None,
        };
        let (mut store, kept_instance, slot) = match kept {
            Some(mut kept) => {
                kept.store.data_mut().serve_call(parent);
                refuel(&mut kept.store, policy)
                    .map_err(|reason| sandbox_failed(&plugin, reason))?;
                (kept.store, Some(kept.instance), kept.slot)
            }
            None => {
                let slot = match &self.slots {
                    Some(slots) => Some(match slots.free_tool_call() {
                        Some(slot) => slot,
                        None => {
                            // The run's kept instances may hold the slots it now waits for.
                            self.give_back_kept();
                            slots.tool_call(policy.limits.timeout).await?
                        }
                    }),
                    None => None,
                };
                let store = new_store(
                    pre.engine(),
                    plugin.label(),
                    policy,
                    parent,
                    Some(&self),
                    World::ToolPlugin,
                )
                .map_err(|reason| sandbox_failed(&plugin, reason))?;
                (store, None, slot)
            }
        };
        // A trap or a timeout drops the store here: its instance is never reused.
        let (instance, returned) = guard(&policy.limits, async {
            let instance = match kept_instance {
                Some(instance) => instance,
                None => pre.instantiate_async(&mut store).await?,
            };
            let returned = instance
                .glassbox_agent_tool()
                .call_invoke(
                    &mut store,
                    &call.name,
                    &call.arguments,
                    call.call_id.as_deref(),
                )
                .await?;
            Ok((instance, returned))
        })
        .await?;
        if plugin.instances() == InstanceScope::PerRun {
            self.keep(ToolInstance {
                plugin: plugin.label().clone(),
                store,
                instance,
                slot,
            });
        }
        Ok(returned.bounded()?)
    }

    /// The instance of `plugin` kept from an earlier call of this run, if any
    /// is free (none while another call of the plugin runs).
    fn take_kept(&self, plugin: &Arc<str>) -> Option<ToolInstance> {
        let mut kept = self.kept_tools.lock().unwrap_or_else(|e| e.into_inner());
        let at = kept.iter().position(|k| Arc::ptr_eq(&k.plugin, plugin))?;
        Some(kept.swap_remove(at))
    }

    /// Keeps `instance` for the run's next call of its plugin, unless one is
    /// kept already.
    fn keep(&self, instance: ToolInstance) {
        let mut kept = self.kept_tools.lock().unwrap_or_else(|e| e.into_inner());
        if !kept
            .iter()
            .any(|k| Arc::ptr_eq(&k.plugin, &instance.plugin))
        {
            kept.push(instance);
        }
    }

    /// Drops the run's kept instances (outside the lock), giving their pool slots back.
    fn give_back_kept(&self) {
        let kept = std::mem::take(&mut *self.kept_tools.lock().unwrap_or_else(|e| e.into_inner()));
        drop(kept);
    }
}

fn sandbox_failed(plugin: &Plugin<ToolProvider>, reason: String) -> GuestError {
    GuestError::NotAllowed(format!(
        "the sandbox of {} cannot be set up: {reason}",
        plugin.label()
    ))
}

#[async_trait::async_trait]
impl AgentLauncher<AgentComponent> for RunScope {
    async fn run(
        self: Arc<Self>,
        agent: &LocalAgent,
        request: RunRequest,
    ) -> Result<String, RunError> {
        let component = agent.component.clone();
        let (capabilities, budget) = (self.capabilities.clone(), self.budget.clone());
        self.off_fiber
            .run(move || async move {
                Box::pin(component.run(capabilities, budget, request, Admission::Covered)).await
            })
            .await
    }
}

/// An agent ready to run, with its tools, the agents it may call, model and telemetry.
pub struct Host {
    capabilities: Arc<Capabilities>,
    agent: AgentComponent,
    /// What a run of `agent` is granted and may spend unless a request says otherwise.
    policy: Policy,
    budget: Budget,
}

/// How [`Host::from_manifest`] builds a host.
#[derive(Default)]
pub struct HostOptions {
    /// Agent instances in flight at once: runs and the local agents they
    /// call. `None`: enough for one run whose agent calls nest as deep as allowed.
    pub agents: Option<u32>,
    /// Tool calls in flight at once, shared by all runs. `None`: one.
    pub tool_calls: Option<u32>,
    /// Keep compiled components here between runs.
    pub cache_dir: Option<PathBuf>,
    pub telemetry: TelemetrySetup,
}

/// Where a host's telemetry comes from.
pub enum TelemetrySetup {
    /// Providers of the host's own making; the resource names the main agent.
    Config(TelemetryConfig),
    /// Telemetry already built, such as an embedding application's providers.
    Shared(Arc<Telemetry>),
}

impl TelemetrySetup {
    /// The telemetry this setup makes; a resource of its own names `service`.
    pub(super) fn build(self, service: &str) -> Result<Arc<Telemetry>, TelemetryError> {
        Ok(match self {
            TelemetrySetup::Config(config) => Arc::new(Telemetry::new(&config, service)?),
            TelemetrySetup::Shared(telemetry) => telemetry,
        })
    }
}

impl Default for TelemetrySetup {
    fn default() -> Self {
        TelemetrySetup::Shared(Arc::new(Telemetry::disabled()))
    }
}

/// Why a host cannot be built from a manifest.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error(transparent)]
    Llm(#[from] LlmSetupError),
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
}

/// Assembles a [`Host`] from parts loaded in code. A capability left out
/// offers nothing (no tools, no other agents) or, for telemetry, records nothing.
pub struct HostBuilder {
    agent: AgentComponent,
    llm: Llm,
    tools: ToolRegistry,
    agents: AgentDirectory,
    telemetry: Option<Arc<Telemetry>>,
    policy: Policy,
    budget: Budget,
}

impl HostBuilder {
    /// The tools runs may call.
    pub fn tools(mut self, tools: ToolRegistry) -> Self {
        self.tools = tools;
        self
    }

    /// The agents runs may call, as their policies grant.
    pub fn agents(mut self, agents: AgentDirectory) -> Self {
        self.agents = agents;
        self
    }

    pub fn telemetry(mut self, telemetry: Arc<Telemetry>) -> Self {
        self.telemetry = Some(telemetry);
        self
    }

    /// What a run of the agent is granted and may spend, unless its request says otherwise.
    pub fn policy(mut self, policy: Policy, budget: Budget) -> Self {
        self.policy = policy;
        self.budget = budget;
        self
    }

    /// Composes the capabilities.
    pub fn build(self) -> Host {
        let telemetry = self
            .telemetry
            .unwrap_or_else(|| Arc::new(Telemetry::disabled()));
        Host {
            capabilities: Arc::new(Capabilities {
                llm: Arc::new(LlmCapability::new(self.llm, telemetry.clone())),
                tools: Arc::new(ToolsCapability::new(self.tools, telemetry.clone())),
                agents: Arc::new(AgentsCapability::new(self.agents, telemetry.clone())),
                wasi_otel: Arc::new(WasiOtelCapability::new(telemetry.clone())),
                telemetry,
            }),
            agent: self.agent,
            policy: self.policy,
            budget: self.budget,
        }
    }
}

impl Host {
    /// A host for `agent`, answered by `llm`; see [`HostBuilder`] for the rest.
    pub fn builder(agent: AgentComponent, llm: impl Into<Llm>) -> HostBuilder {
        HostBuilder {
            agent,
            llm: llm.into(),
            tools: ToolRegistry::default(),
            agents: AgentDirectory::default(),
            telemetry: None,
            policy: Policy::default(),
            budget: Budget::default(),
        }
    }

    /// Everything `manifest` names, loaded as `glassbox run` and `glassbox
    /// serve` load it: an engine metering fuel when a policy sets some, its
    /// pool sized for the largest memory limit, the model providers, and
    /// telemetry as `options` say.
    pub async fn from_manifest(
        manifest: &Manifest,
        options: HostOptions,
    ) -> Result<Self, HostError> {
        let (llm, description) = manifest.llm.clone().build()?;
        tracing::info!("LLM provider: {description}");
        let max_depth = manifest
            .max_agent_depth
            .unwrap_or(agents::DEFAULT_MAX_DEPTH);
        let loader = Loader::with_config(&EngineConfig {
            fuel_metering: manifest.limits().any(|limits| limits.fuel.is_some()),
            pooling: Some(PoolingConfig {
                // Each level of nesting holds an agent; a run in one chain
                // makes one tool call at a time.
                agents: options.agents.unwrap_or(max_depth + 1),
                tool_calls: options.tool_calls.unwrap_or(1),
                max_memory: manifest
                    .limits()
                    .map(|limits| limits.memory)
                    .max()
                    .unwrap_or_default(),
                ..PoolingConfig::new(1)
            }),
            cache_dir: options.cache_dir,
        })?;
        let components = loader.load_manifest(manifest).await?;
        let telemetry = options.telemetry.build(&components.agent.info().name)?;
        Ok(Self::builder(components.agent, llm)
            .tools(components.tools)
            .agents(components.agents)
            .telemetry(telemetry)
            .policy(manifest.agent.policy.clone(), manifest.agent.budget)
            .build())
    }

    pub fn agent(&self) -> &AgentComponent {
        &self.agent
    }

    pub fn agents(&self) -> &AgentDirectory {
        self.capabilities.agents.directory()
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.capabilities.telemetry
    }

    /// A request to run the agent on `text` as a new trace, under the
    /// agent's own policy and budget.
    pub fn request(&self, text: impl Into<String>) -> RunRequest {
        RunRequest {
            policy: self.policy.clone(),
            budget: self.budget,
            ..RunRequest::text(text)
        }
    }

    /// Ends the sessions with the MCP servers the tools come from, stopping
    /// the local ones. Call it before exiting: a process the host started
    /// must not outlive it.
    pub async fn close_tool_servers(&self) {
        let servers = self
            .capabilities
            .tools
            .registry()
            .sources()
            .into_iter()
            .filter_map(|source| match source {
                ToolProvider::Mcp(server) => Some(server.close()),
                ToolProvider::Component(_) => None,
            });
        futures_util::future::join_all(servers).await;
    }

    /// Runs the agent once, in a fresh store, as one trace.
    pub async fn run(&self, request: RunRequest) -> Result<String, RunError> {
        self.run_component(&self.agent, request).await
    }

    /// Runs `agent` (one of [`Host::agents`], say) once, with this host's
    /// capabilities, on the request's budget.
    pub async fn run_component(
        &self,
        agent: &AgentComponent,
        request: RunRequest,
    ) -> Result<String, RunError> {
        let budget = Arc::new(RunBudget::new(request.budget));
        let below = self
            .agents()
            .agent_instances_below(AgentGrant::of(&request.policy));
        agent
            .run(
                self.capabilities.clone(),
                budget,
                request,
                Admission::Reserve(1 + below),
            )
            .await
    }
}
