//! The agent component: loading it, and running it as one trace rooted in an
//! `invoke_agent {name}` span.

use crate::agents::{self, CallDepth};
use crate::bindings::GuestError;
use crate::bindings::agent::exports::glassbox::agent::entrypoint;
use crate::bindings::agent::{AgentPre, glassbox::agent::types};
use crate::runtime::{
    Capabilities, ComponentState, Engine, LoadError, PoolingConfig, RunScope, World, new_store,
};
use crate::sandbox::{Budget, Fault, Policy, RunBudget, guard};
use crate::telemetry::{propagation, semconv};
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Context, KeyValue};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

pub use entrypoint::AgentInfo;

/// What to run the agent on.
#[derive(Clone, Debug)]
pub enum AgentInput {
    Text(String),
    Messages(Vec<types::ChatMessage>),
}

/// One run of the agent.
#[derive(Clone, Debug)]
pub struct RunRequest {
    pub input: AgentInput,
    pub conversation_id: Option<String>,
    /// The trace this run joins (from a W3C `traceparent`), with its baggage;
    /// empty for a new trace. Baggage entries are recorded on the run's span.
    pub parent: Context,
    /// What the agent's sandbox is granted for this run, and its limits.
    pub policy: Policy,
    /// What the run may spend, counting its tools' calls too.
    pub budget: Budget,
}

impl RunRequest {
    /// A run on `text` as a new trace, with nothing granted and no budget limit.
    pub fn text(text: impl Into<String>) -> Self {
        RunRequest {
            input: AgentInput::Text(text.into()),
            conversation_id: None,
            parent: Context::new(),
            policy: Policy::default(),
            budget: Budget::default(),
        }
    }
}

/// How a run failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The agent returned an error.
    #[error("the agent failed ({}): {}", .0.error_type(), .0.message())]
    Agent(GuestError),
    /// The host stopped the agent (a limit, or a trap); its instance was discarded.
    #[error("the agent was stopped: {0}")]
    Stopped(Fault),
    /// The agent's sandbox could not be set up (a granted directory is gone, say).
    #[error("cannot set up the agent's sandbox: {0}")]
    Sandbox(String),
}

impl RunError {
    pub fn error_type(&self) -> &'static str {
        match self {
            RunError::Agent(error) => error.error_type(),
            RunError::Stopped(fault) => fault.error_type(),
            RunError::Sandbox(_) => semconv::error_type::SANDBOX_SETUP,
        }
    }
}

/// A compiled agent that has described itself. Cheap to clone.
#[derive(Clone)]
pub struct AgentComponent {
    path: PathBuf,
    label: Arc<str>,
    pre: AgentPre<ComponentState>,
    info: AgentInfo,
    /// The engine's pool, whose slots bound what a run's policy may grant.
    pooling: Option<PoolingConfig>,
    /// The multi-agent flow each run of this agent is, when it orchestrates one.
    workflow: Option<String>,
}

impl AgentComponent {
    pub(crate) async fn load(
        engine: &Engine,
        path: &Path,
        policy: &Policy,
    ) -> Result<Self, LoadError> {
        let (label, pre) = engine.prepare(path, World::Agent, AgentPre::new)?;
        let policy = Arc::new(policy.clone());
        let mut store = engine.loading_store(path, &label, &policy)?;
        let info = guard(&policy.limits, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .glassbox_agent_entrypoint()
                .call_describe(&mut store)
                .await
        })
        .await
        .map_err(LoadError::startup(path, "describe"))?;
        if info.name.trim().is_empty() {
            return Err(LoadError::Startup {
                path: path.into(),
                call: "describe",
                reason: "the agent describes itself with an empty name".into(),
            });
        }
        Ok(AgentComponent {
            path: path.into(),
            label,
            pre,
            info,
            pooling: engine.pooling(),
            workflow: None,
        })
    }

    pub fn info(&self) -> &AgentInfo {
        &self.info
    }

    /// The same agent known as `name`: on its spans, and to agents calling it.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.info.name = name.into();
        self
    }

    /// The same agent, described to callers as `description`.
    pub fn described(mut self, description: impl Into<String>) -> Self {
        self.info.description = description.into();
        self
    }

    /// The same agent, each run of which is the workflow `name`: an
    /// `invoke_workflow {name}` span over the run and every agent it calls.
    pub fn in_workflow(mut self, name: impl Into<String>) -> Self {
        self.workflow = Some(name.into());
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs the agent for a caller outside the host, on the request's budget.
    pub(crate) async fn run(
        &self,
        capabilities: &Arc<Capabilities>,
        request: RunRequest,
    ) -> Result<String, RunError> {
        let budget = Arc::new(RunBudget::new(request.budget));
        self.run_in(capabilities.clone(), budget, request).await
    }

    /// Runs the agent for another agent's run, spending that run's budget.
    pub(crate) async fn run_nested(
        &self,
        caller: &RunScope,
        request: RunRequest,
    ) -> Result<String, RunError> {
        self.run_in(caller.capabilities.clone(), caller.budget.clone(), request)
            .await
    }

    async fn run_in(
        &self,
        capabilities: Arc<Capabilities>,
        budget: Arc<RunBudget>,
        mut request: RunRequest,
    ) -> Result<String, RunError> {
        let Some(workflow) = &self.workflow else {
            return self.run_agent(capabilities, budget, request).await;
        };
        let mut attributes = vec![
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::operation::INVOKE_WORKFLOW,
            ),
            KeyValue::new(semconv::GEN_AI_WORKFLOW_NAME, workflow.clone()),
        ];
        if let Some(id) = &request.conversation_id {
            attributes.push(KeyValue::new(semconv::GEN_AI_CONVERSATION_ID, id.clone()));
        }
        let name = format!("{} {workflow}", semconv::operation::INVOKE_WORKFLOW);
        let mut span = capabilities.telemetry.start_span(
            name,
            SpanKind::Internal,
            attributes,
            &request.parent,
        );
        request.parent = span.context().clone();
        let result = self.run_agent(capabilities, budget, request).await;
        match &result {
            Ok(_) => span.span().set_status(Status::Ok),
            Err(error) => span.fail(error.error_type(), error.to_string()),
        }
        span.finish();
        result
    }

    /// The run itself, as an `invoke_agent` span.
    async fn run_agent(
        &self,
        capabilities: Arc<Capabilities>,
        budget: Arc<RunBudget>,
        request: RunRequest,
    ) -> Result<String, RunError> {
        let telemetry = &capabilities.telemetry;
        let mut attributes =
            agents::agent_attributes(&self.info.name, request.conversation_id.as_deref());
        attributes.extend([
            KeyValue::new(
                semconv::GEN_AI_PROVIDER_NAME,
                capabilities.llm.default_provider().name(),
            ),
            KeyValue::new(
                semconv::GEN_AI_AGENT_DESCRIPTION,
                self.info.description.clone(),
            ),
            KeyValue::new(semconv::GEN_AI_AGENT_VERSION, self.info.version.clone()),
            KeyValue::new(semconv::GLASSBOX_COMPONENT, self.label.to_string()),
        ]);
        attributes.extend(request.policy.span_attributes());
        attributes.extend(propagation::baggage_attributes(&request.parent));
        let name = format!("{} {}", semconv::operation::INVOKE_AGENT, self.info.name);
        let mut span = telemetry.start_span(name, SpanKind::Internal, attributes, &request.parent);
        let started = Instant::now();

        let run = RunScope {
            capabilities: capabilities.clone(),
            budget,
            depth: CallDepth::of(&request.parent),
            conversation_id: request.conversation_id.clone(),
        };
        let result = self.call_run(&run, span.context(), request).await;
        span.span().set_attributes(run.budget.span_attributes());

        let mut metric_attributes = vec![KeyValue::new(
            semconv::GEN_AI_AGENT_NAME,
            self.info.name.clone(),
        )];
        let instruments = telemetry.instruments();
        match &result {
            Ok(_) => span.span().set_status(Status::Ok),
            Err(error) => {
                span.fail(error.error_type(), error.to_string());
                metric_attributes.push(KeyValue::new(semconv::ERROR_TYPE, error.error_type()));
                instruments.agent_errors.add(1, &metric_attributes);
            }
        }
        instruments
            .agent_duration
            .record(started.elapsed().as_secs_f64(), &metric_attributes);
        span.finish();
        result
    }

    /// Runs the agent in a fresh store under the request's policy.
    async fn call_run(
        &self,
        run: &RunScope,
        cx: &Context,
        request: RunRequest,
    ) -> Result<String, RunError> {
        let policy = Arc::new(request.policy);
        if let Some(pooling) = &self.pooling {
            pooling.check(&policy.limits).map_err(RunError::Sandbox)?;
        }
        let mut store = new_store(
            self.pre.engine(),
            &self.label,
            Some(run.clone()),
            cx.clone(),
            &policy,
        )
        .map_err(RunError::Sandbox)?;
        let wit_request = entrypoint::RunRequest {
            input: match request.input {
                AgentInput::Text(text) => types::AgentInput::Text(text),
                AgentInput::Messages(messages) => types::AgentInput::Messages(messages),
            },
            conversation_id: request.conversation_id,
        };
        guard(&policy.limits, async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance
                .glassbox_agent_entrypoint()
                .call_run(&mut store, &wit_request)
                .await
        })
        .await
        .map_err(RunError::Stopped)?
        .map_err(RunError::Agent)
    }
}
