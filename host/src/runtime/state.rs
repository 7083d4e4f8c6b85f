//! What a store carries: one context per capability, composed. Each
//! capability's imports are linked through its own view of the store, so no
//! capability sees this type; adding a capability adds a field, a view and a
//! line in [`link`].

use super::component::AgentComponent;
use super::host::RunScope;
use super::loader::World;
use crate::agents::{AgentsCtx, AgentsImport, AgentsRun, AgentsView};
use crate::bindings::agent::glassbox::agent as api;
use crate::bindings::tool_plugin::ToolPluginPre;
use crate::guest_telemetry::{GuestTelemetry, GuestTelemetryCtx, GuestTelemetryView};
use crate::llm::{LlmCtx, LlmImport, LlmRun, LlmView};
use crate::mcp::client::McpClient;
use crate::sandbox::{Policy, SandboxCtx};
use crate::telemetry::SpanScope;
use crate::tools::{ToolsCtx, ToolsImport, ToolsRun, ToolsView};
use crate::wasi_otel::{WasiOtel, WasiOtelCtx, WasiOtelView};
use opentelemetry::Context;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtxView, WasiHttpView};

/// A tool plugin as the runtime compiles it.
pub type PluginComponent = ToolPluginPre<StoreState>;

/// What answers a tool's calls: a plugin, in an instance of its own (fresh
/// for each call unless the plugin says otherwise), or an MCP server outside
/// the host.
pub enum ToolProvider {
    Component(PluginComponent),
    Mcp(Arc<McpClient>),
}

/// The state of one store: each capability's context, and what they share
/// (the resource table and where spans attach).
pub struct StoreState {
    /// Resources every capability hands the guest (streams, spans, files).
    table: ResourceTable,
    /// Where spans the guest causes attach.
    spans: SpanScope,
    sandbox: SandboxCtx,
    llm: LlmCtx,
    tools: ToolsCtx<ToolProvider>,
    agents: AgentsCtx<AgentComponent>,
    guest_telemetry: GuestTelemetryCtx,
    wasi_otel: WasiOtelCtx,
}

impl StoreState {
    /// The store's instance serves another call, traced under `parent`: what
    /// it causes from now on nests there. Spans the last call left open are
    /// forgotten.
    pub(super) fn serve_call(&mut self, parent: Context) {
        self.sandbox.serve_call(&parent);
        self.spans = SpanScope::new(parent);
    }

    fn llm(&mut self) -> LlmView<'_> {
        LlmView {
            ctx: &self.llm,
            table: &mut self.table,
            spans: &self.spans,
        }
    }

    fn tools(&mut self) -> ToolsView<'_, ToolProvider> {
        ToolsView {
            ctx: &self.tools,
            spans: &self.spans,
        }
    }

    fn agents(&mut self) -> AgentsView<'_, AgentComponent> {
        AgentsView {
            ctx: &self.agents,
            spans: &self.spans,
        }
    }

    fn guest_telemetry(&mut self) -> GuestTelemetryView<'_> {
        GuestTelemetryView {
            ctx: &mut self.guest_telemetry,
            table: &mut self.table,
            spans: &mut self.spans,
        }
    }

    fn wasi_otel(&mut self) -> WasiOtelView<'_> {
        WasiOtelView {
            ctx: &mut self.wasi_otel,
            spans: &mut self.spans,
        }
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.sandbox.wasi(&mut self.table)
    }
}

impl WasiHttpView for StoreState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        self.sandbox.http(&mut self.table, self.spans.current())
    }
}

/// Gives `linker` the imports of `world`: WASI and `wasi:http` (the sandbox
/// decides what they reach), the model, telemetry and, for agents only,
/// tools and agents (a plugin calling them could recurse without end).
pub(super) fn link(linker: &mut Linker<StoreState>, world: World) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    api::types::add_to_linker::<_, LlmImport>(linker, StoreState::llm)?;
    api::llm::add_to_linker::<_, LlmImport>(linker, StoreState::llm)?;
    api::telemetry::add_to_linker::<_, GuestTelemetry>(linker, StoreState::guest_telemetry)?;
    WasiOtel::add_to_linker(linker, StoreState::wasi_otel)?;
    if let World::Agent = world {
        api::tools::add_to_linker::<_, ToolsImport<ToolProvider>>(linker, StoreState::tools)?;
        api::agents::add_to_linker::<_, AgentsImport<AgentComponent>>(linker, StoreState::agents)?;
    }
    Ok(())
}

/// A store for one instance of `component` of `world` under `parent` (the
/// span of the run or tool call), sandboxed and held to `policy`'s memory and
/// fuel limits, yielding to the executor at every epoch tick. `run` is `None`
/// while loading, when every capability refuses. Fails when a granted
/// directory cannot be opened or a fuel limit cannot be metered.
pub(super) fn new_store(
    engine: &wasmtime::Engine,
    component: &Arc<str>,
    policy: &Arc<Policy>,
    parent: Context,
    run: Option<&Arc<RunScope>>,
    world: World,
) -> Result<Store<StoreState>, String> {
    let telemetry = run.map(|run| run.capabilities.telemetry.clone());
    let calls_out = matches!(world, World::Agent);
    let state = StoreState {
        sandbox: SandboxCtx::new(component, policy, &parent, telemetry.clone())?,
        llm: LlmCtx::new(
            component.clone(),
            policy.clone(),
            run.map(|run| LlmRun {
                capability: run.capabilities.llm.clone(),
                budget: run.budget.clone(),
                own_calls: calls_out.then(|| run.own_calls.inference.clone()),
            }),
        ),
        tools: ToolsCtx::new(run.filter(|_| calls_out).map(|run| ToolsRun {
            capability: run.capabilities.tools.clone(),
            budget: run.budget.clone(),
            launcher: run.clone(),
            own_calls: Some(run.own_calls.tools.clone()),
        })),
        agents: AgentsCtx::new(
            policy.clone(),
            run.filter(|_| calls_out).map(|run| AgentsRun {
                capability: run.capabilities.agents.clone(),
                launcher: run.clone(),
                depth: run.depth,
                conversation_id: run.conversation_id.clone(),
            }),
        ),
        guest_telemetry: GuestTelemetryCtx::new(component.clone(), telemetry),
        wasi_otel: WasiOtelCtx::new(
            component.clone(),
            run.map(|run| run.capabilities.wasi_otel.clone()),
        ),
        table: ResourceTable::new(),
        spans: SpanScope::new(parent),
    };
    let mut store = Store::new(engine, state);
    store.limiter(|state| state.sandbox.limiter());
    refuel(&mut store, policy)?;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|_| Ok(UpdateDeadline::Yield(1)));
    Ok(store)
}

/// Gives `store` the fuel of one call under `policy`, when its engine meters fuel.
pub(super) fn refuel(store: &mut Store<StoreState>, policy: &Policy) -> Result<(), String> {
    // Asked of the engine: `get_fuel` would build (and capture a backtrace
    // for) an error on every store of an engine that does not meter fuel.
    let metered = store.engine().get_consume_fuel();
    match (policy.limits.fuel, metered) {
        (Some(fuel), true) => store.set_fuel(fuel).map_err(|e| e.to_string()),
        (Some(_), false) => Err(
            "a fuel limit needs an engine that meters fuel (`Loader::with_fuel_metering`)".into(),
        ),
        (None, true) => store.set_fuel(u64::MAX).map_err(|e| e.to_string()),
        (None, false) => Ok(()),
    }
}
