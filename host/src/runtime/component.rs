//! The agent component: loading it (it describes itself), and running it as
//! one trace rooted in an `invoke_agent {name}` span, in a fresh store.

use super::host::{Capabilities, RunScope};
use super::loader::{LoadError, Loader, World};
use super::off_fiber::{self, Handed};
use super::pooling::{InstanceSlots, PoolingConfig, Reservation};
use super::state::StoreState;
use super::state::new_store;
use crate::agents::{CallDepth, DescribedAgent, RunError, RunRequest};
use crate::bindings::Bounded;
use crate::bindings::agent::AgentPre;
use crate::bindings::agent::exports::glassbox::agent::entrypoint;
use crate::sandbox::{Fault, Policy, RunBudget, guard};
use crate::telemetry::semconv::GenAiConventions;
use crate::telemetry::{propagation, semconv};
use opentelemetry::trace::Status;
use opentelemetry::{Context, KeyValue};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use entrypoint::AgentInfo;

/// How a run gets its instances from a pooled engine.
pub(super) enum Admission {
    /// A run from outside the host: it reserves this many instance slots,
    /// enough for itself and every call it may make, or is refused.
    Reserve(u32),
    /// A run another run started: its caller's reservation covers it.
    Covered,
}

/// A compiled agent that has described itself. Cheap to clone.
#[derive(Clone)]
pub struct AgentComponent {
    path: PathBuf,
    label: Arc<str>,
    pre: AgentPre<StoreState>,
    info: AgentInfo,
    /// The engine's pool, whose slots bound what a run's policy may grant.
    pooling: Option<PoolingConfig>,
    /// The pool's slots, which a run from outside reserves before it starts.
    slots: Option<Arc<InstanceSlots>>,
    /// The multi-agent flow each run of this agent is, when it orchestrates one.
    workflow: Option<String>,
}

impl DescribedAgent for AgentComponent {
    fn info(&self) -> &AgentInfo {
        &self.info
    }
}

impl AgentComponent {
    pub(super) async fn load(
        loader: &Loader,
        path: &Path,
        policy: &Policy,
    ) -> Result<Self, LoadError> {
        let (label, pre) = loader.prepare(path, World::Agent, policy, AgentPre::new)?;
        let policy = Arc::new(policy.clone());
        let mut store = loader.loading_store(path, &label, &policy)?;
        let info = guard(&policy.limits, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance
                .glassbox_agent_entrypoint()
                .call_describe(&mut store)
                .await
        })
        .await
        .map_err(LoadError::startup(path, "describe"))?
        .bounded();
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
            pooling: loader.pooling(),
            slots: loader.slots(),
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

    /// Runs the agent with `capabilities`, spending `budget` (its own, or
    /// that of the run that called it), once `admission` allows.
    pub(super) async fn run(
        &self,
        capabilities: Arc<Capabilities>,
        budget: Arc<RunBudget>,
        mut request: RunRequest,
        admission: Admission,
    ) -> Result<String, RunError> {
        let Some(workflow) = &self.workflow else {
            return self
                .run_agent(capabilities, budget, request, admission)
                .await;
        };
        let operation = capabilities.agents.start_workflow(
            workflow,
            request.conversation_id.as_deref(),
            &request.parent,
        );
        request.parent = operation.context().clone();
        let result = self
            .run_agent(capabilities, budget, request, admission)
            .await;
        if result.is_ok() {
            operation.span().set_status(Status::Ok);
        }
        operation.end_with(&result, |error| (error.error_type(), error.to_string()));
        result
    }

    /// The run itself, as an `invoke_agent` span.
    async fn run_agent(
        &self,
        capabilities: Arc<Capabilities>,
        budget: Arc<RunBudget>,
        request: RunRequest,
        admission: Admission,
    ) -> Result<String, RunError> {
        let mut attributes = vec![
            KeyValue::new(
                semconv::GEN_AI_AGENT_DESCRIPTION,
                self.info.description.clone(),
            ),
            KeyValue::new(semconv::GLASSBOX_COMPONENT, self.label.to_string()),
        ];
        // v0.1.0 took the provider and the version off the internal agent span.
        if capabilities.telemetry.conventions() == GenAiConventions::V1_41 {
            attributes.extend([
                KeyValue::new(
                    semconv::GEN_AI_PROVIDER_NAME,
                    capabilities.llm.llm().default_provider().name(),
                ),
                KeyValue::new(semconv::GEN_AI_AGENT_VERSION, self.info.version.clone()),
            ]);
        }
        attributes.extend(request.policy.span_attributes());
        attributes.extend(propagation::baggage_attributes(&request.parent));
        let operation = capabilities.agents.start_run(
            &self.info.name,
            request.conversation_id.as_deref(),
            attributes,
            &request.parent,
        );
        let (off_fiber, handed) = off_fiber::channel();
        let run = Arc::new(RunScope {
            depth: CallDepth::of(&request.parent),
            conversation_id: request.conversation_id.clone(),
            capabilities,
            slots: self.slots.clone(),
            budget,
            own_calls: Default::default(),
            kept_tools: Default::default(),
            off_fiber,
        });
        let result = self
            .call_run(&run, operation.context(), request, &admission, handed)
            .await;
        run.capabilities.agents.record_own_calls(
            &self.info.name,
            run.own_calls.inference.load(Ordering::Relaxed),
            run.own_calls.tools.load(Ordering::Relaxed),
        );
        operation
            .span()
            .set_attributes(run.budget.span_attributes());
        if result.is_ok() {
            operation.span().set_status(Status::Ok);
        }
        operation.end_with(&result, |error| (error.error_type(), error.to_string()));
        result
    }

    /// The pool's slots for a run from outside; a nested run lives on its caller's.
    fn admit(&self, admission: &Admission) -> Result<Option<Reservation>, Fault> {
        match (admission, &self.slots) {
            (Admission::Reserve(needed), Some(slots)) => slots.reserve(*needed).map(Some),
            _ => Ok(None),
        }
    }

    /// Runs the agent in a fresh store under the request's policy, once
    /// `admission` allows, doing the work its imports hand over.
    async fn call_run(
        &self,
        run: &Arc<RunScope>,
        cx: &Context,
        request: RunRequest,
        admission: &Admission,
        handed: Handed,
    ) -> Result<String, RunError> {
        let policy = Arc::new(request.policy);
        if let Some(pooling) = &self.pooling {
            pooling.check(&policy.limits).map_err(RunError::Sandbox)?;
        }
        // Held until the run and every call it makes are done.
        let _reserved = self.admit(admission).map_err(RunError::Stopped)?;
        let mut store = new_store(
            self.pre.engine(),
            &self.label,
            &policy,
            cx.clone(),
            Some(run),
            World::Agent,
        )
        .map_err(RunError::Sandbox)?;
        let wit_request = entrypoint::RunRequest {
            input: request.input.into(),
            conversation_id: request.conversation_id,
        };
        handed
            .drive(guard(&policy.limits, async {
                let instance = self.pre.instantiate_async(&mut store).await?;
                instance
                    .glassbox_agent_entrypoint()
                    .call_run(&mut store, &wit_request)
                    .await
            }))
            .await
            .map_err(RunError::Stopped)?
            .bounded()
            .map_err(RunError::Agent)
    }
}
