//! The `agents` capability: agents calling agents. An [`AgentDirectory`] names
//! every agent a run may reach, local (a component in this host, run in a
//! fresh store under its own policy, its `invoke_agent` span a child of the
//! caller's) or remote (another Glassbox host, called over HTTP under a CLIENT
//! `invoke_agent` span whose context travels as `traceparent` and `baggage`).
//! Every call counts one level of nesting; past the directory's limit the call
//! is refused, so agents calling each other cannot recurse without end.
//!
//! Local runs are started by the runtime through [`AgentLauncher`]: this
//! capability decides, traces and refuses, and never sees an instance, so
//! `A`, a local agent's compiled component, is whatever the runtime makes of it.

pub mod api;
mod remote;
mod run;

pub use remote::{DEFAULT_REMOTE_TIMEOUT, RemoteAgent, RemoteError};
pub use run::{AgentInput, RunError, RunRequest};

use crate::bindings::agent::exports::glassbox::agent::entrypoint::AgentInfo;
use crate::bindings::agent::glassbox::agent::{agents as wit, types};
use crate::bindings::{Bounded, GuestError};
use crate::sandbox::{Budget, Grant, Policy};
use crate::telemetry::semconv::GenAiConventions;
use crate::telemetry::{Operation, OperationMetrics, SpanScope, Telemetry, semconv, string_list};
use crate::text::list_or_none;
use opentelemetry::metrics::Histogram;
use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Context, KeyValue};
use std::collections::{BTreeMap, HashMap};
use std::marker::PhantomData;
use std::sync::Arc;
use wasmtime::component::HasData;

/// How deep agent calls may nest when nothing else is configured.
pub const DEFAULT_MAX_DEPTH: u32 = 8;

/// The agents an agent may call, by name (`allow_agents`). Without this
/// grant, none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentGrant(pub Vec<String>);

impl AgentGrant {
    /// The agents `policy` lets its component call.
    pub fn of(policy: &Policy) -> &[String] {
        policy
            .grants
            .get::<AgentGrant>()
            .map_or(&[], |grant| grant.0.as_slice())
    }
}

impl Grant for AgentGrant {
    fn span_attributes(&self) -> Vec<KeyValue> {
        if self.0.is_empty() {
            return Vec::new();
        }
        vec![KeyValue::new(
            semconv::GLASSBOX_SANDBOX_AGENTS,
            string_list(self.0.iter().cloned()),
        )]
    }
}

/// A compiled agent that has described itself.
pub trait DescribedAgent {
    fn info(&self) -> &AgentInfo;
}

/// An agent component this host runs by name, and what each run of it is granted.
#[derive(Clone)]
pub struct LocalAgent<A> {
    pub component: A,
    pub policy: Policy,
    /// The budget of a run started for a caller outside the host (a request
    /// to `glassbox serve`). Called by another agent, it spends the caller's.
    pub budget: Budget,
}

/// Where an agent of the directory runs.
#[derive(Clone)]
pub enum AgentEntry<A> {
    Local(Box<LocalAgent<A>>),
    Remote(RemoteAgent),
}

impl<A: DescribedAgent> AgentEntry<A> {
    fn description(&self) -> String {
        match self {
            AgentEntry::Local(local) => local.component.info().description.clone(),
            AgentEntry::Remote(remote) => remote.description.clone(),
        }
    }
}

/// The agents of one host by name, and how deep their calls may nest.
#[derive(Clone)]
pub struct AgentDirectory<A> {
    entries: BTreeMap<String, AgentEntry<A>>,
    max_depth: u32,
}

impl<A> Default for AgentDirectory<A> {
    fn default() -> Self {
        AgentDirectory {
            entries: BTreeMap::new(),
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }
}

/// A second agent under a name already taken.
#[derive(Debug, thiserror::Error)]
#[error("two agents are named `{0}`; give one of them another `name`")]
pub struct DuplicateAgent(pub String);

impl<A> AgentDirectory<A> {
    /// Adds `agent` under `name`.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        agent: AgentEntry<A>,
    ) -> Result<(), DuplicateAgent> {
        let name = name.into();
        if self.entries.contains_key(&name) {
            return Err(DuplicateAgent(name));
        }
        self.entries.insert(name, agent);
        Ok(())
    }

    /// Agent calls may nest `max_depth` deep: 1 lets a run call agents that call none.
    pub fn with_max_depth(mut self, max_depth: u32) -> Self {
        self.max_depth = max_depth;
        self
    }

    pub fn get(&self, name: &str) -> Option<&AgentEntry<A>> {
        self.entries.get(name)
    }

    /// Every agent, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AgentEntry<A>)> {
        self.entries
            .iter()
            .map(|(name, entry)| (name.as_str(), entry))
    }

    /// The local agent `name`, if there is one.
    pub fn local(&self, name: &str) -> Option<&LocalAgent<A>> {
        match self.entries.get(name)? {
            AgentEntry::Local(local) => Some(local),
            AgentEntry::Remote(_) => None,
        }
    }

    /// The local agents, which a host serving this directory offers to callers.
    pub fn locals(&self) -> impl Iterator<Item = (&str, &LocalAgent<A>)> {
        self.iter().filter_map(|(name, entry)| match entry {
            AgentEntry::Local(local) => Some((name, local.as_ref())),
            AgentEntry::Remote(_) => None,
        })
    }
}

impl<A> AgentDirectory<A> {
    /// The most agent instances a run granted `grants` may hold at once
    /// besides its own: the deepest chain of local agents it may call. A run
    /// reserves this many up front, so once admitted it never finds the pool full.
    pub fn agent_instances_below(&self, grants: &[String]) -> u32 {
        self.below(grants, 1, &mut HashMap::new())
    }

    /// [`Self::agent_instances_below`] for calls made at `depth`.
    fn below<'a>(
        &'a self,
        grants: &'a [String],
        depth: u32,
        known: &mut HashMap<(&'a str, u32), u32>,
    ) -> u32 {
        let mut most = 0;
        if depth > self.max_depth {
            return most;
        }
        for name in grants {
            let Some(local) = self.local(name) else {
                continue;
            };
            let needed = match known.get(&(name.as_str(), depth)) {
                Some(&needed) => needed,
                None => {
                    let needed = 1 + self.below(AgentGrant::of(&local.policy), depth + 1, known);
                    known.insert((name.as_str(), depth), needed);
                    needed
                }
            };
            most = most.max(needed);
        }
        most
    }
}

impl<A: DescribedAgent> AgentDirectory<A> {
    fn card(&self, name: &str) -> Option<wit::AgentCard> {
        let entry = self.entries.get(name)?;
        Some(wit::AgentCard {
            name: name.to_owned(),
            description: entry.description(),
            url: match entry {
                AgentEntry::Local(_) => None,
                AgentEntry::Remote(remote) => Some(remote.url.to_string()),
            },
        })
    }
}

/// Starts runs of local agents on behalf of a calling run, on its budget.
/// The runtime implements it; this capability only ever asks.
#[async_trait::async_trait]
pub(crate) trait AgentLauncher<A>: Send + Sync {
    async fn run(
        self: Arc<Self>,
        agent: &LocalAgent<A>,
        request: RunRequest,
    ) -> Result<String, RunError>;
}

/// The agents a host offers, and where their runs and calls are recorded.
pub(crate) struct AgentsCapability<A> {
    directory: AgentDirectory<A>,
    telemetry: Arc<Telemetry>,
    /// `glassbox.agent.duration` (v0.1.0: `gen_ai.invoke_agent.duration`,
    /// workflows too) and `glassbox.agent.errors`, per run.
    metrics: OperationMetrics,
    /// v0.1.0: the model and tool calls each run's agent made itself.
    own_calls: Option<OwnCallMetrics>,
}

/// `gen_ai.invoke_agent.inference_calls` and `.tool_calls`.
struct OwnCallMetrics {
    inference: Histogram<u64>,
    tools: Histogram<u64>,
}

impl<A> AgentsCapability<A> {
    pub fn new(directory: AgentDirectory<A>, telemetry: Arc<Telemetry>) -> Self {
        use semconv::metric;
        let duration = telemetry
            .conventions()
            .pick(metric::AGENT_DURATION, metric::INVOKE_AGENT_DURATION);
        let metrics = OperationMetrics::new(telemetry.meter(), duration, "Duration of agent runs")
            .counting_errors(
                telemetry.meter(),
                metric::AGENT_ERRORS,
                "Agent runs that failed, by error.type",
            );
        let latest = telemetry.conventions() == GenAiConventions::Latest;
        let calls_histogram =
            |name: &'static str, unit: &'static str, description: &'static str| {
                telemetry
                    .meter()
                    .u64_histogram(name)
                    .with_unit(unit)
                    .with_description(description)
                    .with_boundaries(metric::CALL_COUNT_BUCKETS.to_vec())
                    .build()
            };
        let own_calls = latest.then(|| OwnCallMetrics {
            inference: calls_histogram(
                metric::INVOKE_AGENT_INFERENCE_CALLS,
                "{inference_call}",
                "Model calls an agent run made itself",
            ),
            tools: calls_histogram(
                metric::INVOKE_AGENT_TOOL_CALLS,
                "{tool_call}",
                "Tool calls an agent run made itself",
            ),
        });
        AgentsCapability {
            directory,
            telemetry,
            metrics,
            own_calls,
        }
    }

    pub fn directory(&self) -> &AgentDirectory<A> {
        &self.directory
    }

    /// Opens the `invoke_agent {name}` span of a run of a local agent, with
    /// `attributes` beside the operation's own, measured as an agent run.
    pub fn start_run(
        &self,
        name: &str,
        conversation_id: Option<&str>,
        attributes: Vec<KeyValue>,
        parent: &Context,
    ) -> Operation {
        let mut span_attributes = agent_attributes(name, conversation_id);
        span_attributes.extend(attributes);
        let metric_attributes =
            self.metric_attributes(semconv::operation::INVOKE_AGENT, name.to_owned());
        self.telemetry
            .start_operation(
                invoke_agent_span_name(name),
                SpanKind::Internal,
                span_attributes,
                parent,
            )
            .measured(&self.metrics, metric_attributes)
    }

    /// Records the model and tool calls a run of `agent` made itself (v0.1.0).
    pub fn record_own_calls(&self, agent: &str, inference: u32, tools: u32) {
        if let Some(metrics) = &self.own_calls {
            let attributes = [KeyValue::new(semconv::GEN_AI_AGENT_NAME, agent.to_owned())];
            metrics.inference.record(u64::from(inference), &attributes);
            metrics.tools.record(u64::from(tools), &attributes);
        }
    }

    /// What every point of a run's metrics carries: the agent, and from
    /// v0.1.0, which records workflows on the same histogram, the operation.
    fn metric_attributes(&self, operation: &'static str, agent: String) -> Vec<KeyValue> {
        let mut attributes = vec![KeyValue::new(semconv::GEN_AI_AGENT_NAME, agent)];
        if self.telemetry.conventions() == GenAiConventions::Latest {
            attributes.push(KeyValue::new(semconv::GEN_AI_OPERATION_NAME, operation));
        }
        attributes
    }

    /// Opens the `invoke_workflow {workflow}` span over a run and every agent it calls.
    pub fn start_workflow(
        &self,
        workflow: &str,
        conversation_id: Option<&str>,
        parent: &Context,
    ) -> Operation {
        let latest = self.telemetry.conventions() == GenAiConventions::Latest;
        // v0.1.0 merged the workflow span into the agent span: the workflow is its agent.
        let named_by = self
            .telemetry
            .conventions()
            .pick(semconv::GEN_AI_WORKFLOW_NAME, semconv::GEN_AI_AGENT_NAME);
        let mut attributes = vec![
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::operation::INVOKE_WORKFLOW,
            ),
            KeyValue::new(named_by, workflow.to_owned()),
            // Neither Phoenix nor Langfuse maps `invoke_workflow` to a kind of its own.
            KeyValue::new(
                semconv::OPENINFERENCE_SPAN_KIND,
                semconv::OPENINFERENCE_CHAIN,
            ),
        ];
        attributes.extend(conversation_attribute(conversation_id));
        let name = format!("{} {workflow}", semconv::operation::INVOKE_WORKFLOW);
        let operation =
            self.telemetry
                .start_operation(name, SpanKind::Internal, attributes, parent);
        if latest {
            let metric_attributes =
                self.metric_attributes(semconv::operation::INVOKE_WORKFLOW, workflow.to_owned());
            operation.measured(&self.metrics, metric_attributes)
        } else {
            operation
        }
    }

    /// One call from `run`, whose current span is `parent`.
    async fn invoke(
        &self,
        run: &AgentsRun<A>,
        granted: &[String],
        parent: &Context,
        name: String,
        input: AgentInput,
        conversation_id: Option<String>,
    ) -> Result<String, GuestError> {
        let conversation_id = conversation_id.or_else(|| run.conversation_id.clone());
        let depth = run.depth + 1;
        let entry = match self.directory.entries.get(&name) {
            Some(entry) if granted.contains(&name) => entry,
            known => {
                let granted = list_or_none(granted);
                let error = match known {
                    Some(_) => GuestError::NotAllowed(format!(
                        "agent `{name}` is not granted to this agent (granted: {granted})"
                    )),
                    None => GuestError::NotFound(format!(
                        "no agent named `{name}` (granted: {granted})"
                    )),
                };
                return Err(self.refuse(parent, &name, conversation_id, error));
            }
        };
        if depth > self.directory.max_depth {
            let error = GuestError::LimitExceeded(format!(
                "calling agent `{name}` would nest agent calls {depth} deep; the limit is {}",
                self.directory.max_depth
            ));
            return Err(self.refuse(parent, &name, conversation_id, error));
        }
        match entry {
            AgentEntry::Local(local) => {
                let request = RunRequest {
                    input,
                    conversation_id,
                    parent: parent.with_value(CallDepth(depth)),
                    policy: local.policy.clone(),
                    budget: local.budget,
                };
                // Boxed: this call runs an agent, which may call agents in turn.
                let started = Box::pin(run.launcher.clone().run(local, request));
                started.await.map_err(|error| error.into_guest_error(&name))
            }
            AgentEntry::Remote(remote) => {
                let mut attributes = agent_attributes(&name, conversation_id.as_deref());
                attributes.extend(remote.span_attributes());
                let operation = self.telemetry.start_operation(
                    invoke_agent_span_name(&name),
                    SpanKind::Client,
                    attributes,
                    parent,
                );
                let result = remote
                    .invoke(
                        operation.context(),
                        depth,
                        &input,
                        conversation_id.as_deref(),
                    )
                    .await
                    .map_err(GuestError::from);
                if result.is_ok() {
                    operation.span().set_status(Status::Ok);
                }
                operation.end_with(&result, |error| {
                    (agent_error_type(error), error.message().to_owned())
                });
                result
            }
        }
    }

    /// Records a call refused before any agent ran, as its own failed span.
    fn refuse(
        &self,
        parent: &Context,
        name: &str,
        conversation_id: Option<String>,
        error: GuestError,
    ) -> GuestError {
        self.telemetry
            .start_operation(
                invoke_agent_span_name(name),
                SpanKind::Internal,
                agent_attributes(name, conversation_id.as_deref()),
                parent,
            )
            .fail(agent_error_type(&error), error.message().to_owned());
        error
    }
}

/// How many agent calls deep a run is, carried in its context: 0 (absent)
/// for a run started from outside, or what a calling host said it was.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CallDepth(pub u32);

impl CallDepth {
    pub fn of(cx: &Context) -> u32 {
        cx.get::<CallDepth>().map_or(0, |depth| depth.0)
    }
}

fn invoke_agent_span_name(agent: &str) -> String {
    format!("{} {agent}", semconv::operation::INVOKE_AGENT)
}

/// What every `invoke_agent` span carries: the operation, the agent and the conversation.
fn agent_attributes(name: &str, conversation_id: Option<&str>) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(
            semconv::GEN_AI_OPERATION_NAME,
            semconv::operation::INVOKE_AGENT,
        ),
        KeyValue::new(semconv::GEN_AI_AGENT_NAME, name.to_owned()),
    ];
    attributes.extend(conversation_attribute(conversation_id));
    attributes
}

/// `gen_ai.conversation.id`, when the run belongs to a conversation.
fn conversation_attribute(conversation_id: Option<&str>) -> Option<KeyValue> {
    conversation_id.map(|id| KeyValue::new(semconv::GEN_AI_CONVERSATION_ID, id.to_owned()))
}

/// `error.type` of a failed agent call: an unknown name is an unknown agent.
fn agent_error_type(error: &GuestError) -> &'static str {
    match error {
        GuestError::NotFound(_) => semconv::error_type::AGENT_NOT_FOUND,
        other => other.error_type(),
    }
}

/// What one run may do with agents: the host's agents, how deep the run is,
/// its conversation, and the runtime that starts local runs.
pub(crate) struct AgentsRun<A> {
    pub capability: Arc<AgentsCapability<A>>,
    pub launcher: Arc<dyn AgentLauncher<A>>,
    pub depth: u32,
    pub conversation_id: Option<String>,
}

impl<A> Clone for AgentsRun<A> {
    fn clone(&self) -> Self {
        AgentsRun {
            capability: self.capability.clone(),
            launcher: self.launcher.clone(),
            depth: self.depth,
            conversation_id: self.conversation_id.clone(),
        }
    }
}

/// One store's `agents` state: the component's grant and the run it serves,
/// or `None` (while loading, and in plugins, which cannot call agents).
pub(crate) struct AgentsCtx<A> {
    policy: Arc<Policy>,
    run: Option<AgentsRun<A>>,
}

impl<A> AgentsCtx<A> {
    pub fn new(policy: Arc<Policy>, run: Option<AgentsRun<A>>) -> Self {
        AgentsCtx { policy, run }
    }
}

/// The parts of a store the `agents` import works on.
pub(crate) struct AgentsView<'a, A> {
    pub ctx: &'a AgentsCtx<A>,
    pub spans: &'a SpanScope,
}

/// Links the `agents` import through [`AgentsView`].
pub(crate) struct AgentsImport<A>(PhantomData<A>);

impl<A: 'static> HasData for AgentsImport<A> {
    type Data<'a> = AgentsView<'a, A>;
}

impl<A: DescribedAgent + Send + Sync + 'static> wit::Host for AgentsView<'_, A> {
    async fn list(&mut self) -> wasmtime::Result<Vec<wit::AgentCard>> {
        let Some(run) = &self.ctx.run else {
            return Ok(Vec::new());
        };
        let mut granted = AgentGrant::of(&self.ctx.policy).to_vec();
        granted.sort();
        Ok(granted
            .iter()
            .filter_map(|name| run.capability.directory.card(name))
            .collect())
    }

    async fn invoke(
        &mut self,
        name: String,
        input: types::AgentInput,
        conversation_id: Option<String>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        let Some(run) = self.ctx.run.clone() else {
            return Ok(Err(GuestError::NotAllowed(
                "agents can only be called during a run".into(),
            )));
        };
        let parent = self.spans.current().clone();
        let granted = AgentGrant::of(&self.ctx.policy);
        let (name, input, conversation_id) =
            (name.bounded(), input.bounded(), conversation_id.bounded());
        Ok(run
            .capability
            .invoke(&run, granted, &parent, name, input.into(), conversation_id)
            .await)
    }
}

impl From<RemoteError> for GuestError {
    fn from(error: RemoteError) -> Self {
        match &error {
            RemoteError::Unreachable { .. } | RemoteError::Unusable { .. } => {
                GuestError::Unavailable(error.to_string())
            }
            RemoteError::Timeout { .. } => GuestError::Timeout(error.to_string()),
            RemoteError::Failed { agent, url, detail } => {
                detail.to_guest_error(&format!("agent `{agent}` at {url}"))
            }
        }
    }
}
