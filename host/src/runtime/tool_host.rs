//! The host's tools served on their own, with no agent: the [`ToolService`]
//! `glassbox mcp` offers MCP clients. A call runs exactly as an agent's call
//! does (arguments checked against the schema, a fresh instance under the
//! plugin's policy and limits, the result cap), traced as a SERVER
//! `execute_tool` span in the client's trace.

use super::component::AgentComponent;
use super::host::{Capabilities, HostError, HostOptions, RunScope, ToolRegistry};
use super::loader::{EngineConfig, Loader};
use super::off_fiber::OffFiber;
use super::pooling::{InstanceSlots, PoolingConfig};
use crate::agents::{AgentDirectory, AgentsCapability};
use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::types::ToolDefinition;
use crate::llm::{Llm, LlmCapability};
use crate::mcp::ToolService;
use crate::sandbox::{Budget, RunBudget};
use crate::telemetry::{Telemetry, semconv};
use crate::tools::{CallSpan, PluginSpec, ToolsCapability, ToolsRun};
use crate::wasi_otel::WasiOtelCapability;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use std::sync::Arc;

/// Tools ready to be called from outside any run.
pub struct ToolHost {
    capabilities: Arc<Capabilities>,
    /// The pool's slots, which calls wait for.
    slots: Option<Arc<InstanceSlots>>,
}

impl ToolHost {
    /// `plugins`, loaded as `glassbox mcp` loads them: an engine metering fuel
    /// when a policy sets some, its pool sized for the largest memory limit
    /// and `options.tool_calls` calls at once (default one), telemetry as
    /// `options` say (the resource is `glassbox-mcp`).
    pub async fn load(
        plugins: &[PluginSpec],
        llm: Llm,
        options: HostOptions,
    ) -> Result<Self, HostError> {
        let loader = Loader::with_config(&EngineConfig {
            fuel_metering: plugins.iter().any(|p| p.policy.limits.fuel.is_some()),
            pooling: Some(PoolingConfig {
                agents: 0,
                tool_calls: options.tool_calls.unwrap_or(1),
                max_memory: plugins
                    .iter()
                    .map(|p| p.policy.limits.memory)
                    .max()
                    .unwrap_or_default(),
                ..PoolingConfig::new(1)
            }),
            cache_dir: options.cache_dir,
        })?;
        let tools = loader.load_tools(plugins).await?;
        let telemetry = options.telemetry.build("glassbox-mcp")?;
        Ok(Self::new(&loader, tools, llm, telemetry))
    }

    /// Serves `tools`, loaded by `loader`, whose calls to the model go to `llm`.
    /// Each call counts against a budget of its own.
    pub fn new(loader: &Loader, tools: ToolRegistry, llm: Llm, telemetry: Arc<Telemetry>) -> Self {
        let capabilities = Arc::new(Capabilities {
            llm: Arc::new(LlmCapability::new(llm, telemetry.clone())),
            tools: Arc::new(ToolsCapability::new(tools, telemetry.clone())),
            agents: Arc::new(AgentsCapability::new(
                AgentDirectory::<AgentComponent>::default(),
                telemetry.clone(),
            )),
            wasi_otel: Arc::new(WasiOtelCapability::new(telemetry.clone())),
            telemetry,
        });
        ToolHost {
            capabilities,
            slots: loader.slots(),
        }
    }

    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.capabilities.telemetry
    }
}

#[async_trait::async_trait]
impl ToolService for ToolHost {
    fn definitions(&self) -> Vec<ToolDefinition> {
        self.capabilities.tools.definitions()
    }

    fn has(&self, name: &str) -> bool {
        self.capabilities.tools.has(name)
    }

    async fn call(
        &self,
        name: String,
        arguments: String,
        parent: Context,
        attributes: Vec<KeyValue>,
    ) -> Result<String, GuestError> {
        let span = CallSpan {
            kind: Some(SpanKind::Server),
            attributes,
            failure_type: Some(semconv::error_type::MCP_TOOL_ERROR),
        };
        // Each call is a run of its own, with a budget of its own.
        let budget = Arc::new(RunBudget::new(Budget::default()));
        let run = ToolsRun {
            capability: self.capabilities.tools.clone(),
            budget: budget.clone(),
            own_calls: None,
            launcher: Arc::new(RunScope {
                capabilities: self.capabilities.clone(),
                slots: self.slots.clone(),
                budget,
                depth: 0,
                conversation_id: None,
                own_calls: Default::default(),
                kept_tools: Default::default(),
                off_fiber: OffFiber::inline(),
            }),
        };
        run.capability
            .call(&run, &parent, span, name, arguments, None)
            .await
    }
}
