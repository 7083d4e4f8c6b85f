//! The `agents` capability: agents calling agents. An [`AgentDirectory`] names
//! every agent a run may reach, local (a component in this host, run in a
//! fresh store under its own policy, its `invoke_agent` span a child of the
//! caller's) or remote (another Glassbox host, called over HTTP under a CLIENT
//! `invoke_agent` span whose context travels as `traceparent` and `baggage`).
//! Every call counts one level of nesting; past the directory's limit the call
//! is refused, so agents calling each other cannot recurse without end.

mod remote;

pub use remote::{DEFAULT_REMOTE_TIMEOUT, RemoteAgent, RemoteError};

use crate::agent::{AgentComponent, AgentInput, RunError, RunRequest};
use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::{agents as wit, types};
use crate::runtime::{ComponentState, RunScope, list_or_none};
use crate::sandbox::{Budget, Policy};
use crate::telemetry::semconv;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use std::collections::BTreeMap;

/// How deep agent calls may nest when nothing else is configured.
pub const DEFAULT_MAX_DEPTH: u32 = 8;

/// An agent component this host runs by name, and what each run of it is granted.
#[derive(Clone)]
pub struct LocalAgent {
    pub component: AgentComponent,
    pub policy: Policy,
    /// The budget of a run started for a caller outside the host (a request
    /// to `glassbox serve`). Called by another agent, it spends the caller's.
    pub budget: Budget,
}

/// Where an agent of the directory runs.
#[derive(Clone)]
pub enum AgentEntry {
    Local(Box<LocalAgent>),
    Remote(RemoteAgent),
}

impl AgentEntry {
    fn description(&self) -> String {
        match self {
            AgentEntry::Local(local) => local.component.info().description.clone(),
            AgentEntry::Remote(remote) => remote.description.clone(),
        }
    }
}

/// The agents of one runtime by name, and how deep their calls may nest.
#[derive(Clone)]
pub struct AgentDirectory {
    entries: BTreeMap<String, AgentEntry>,
    max_depth: u32,
}

impl Default for AgentDirectory {
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

impl AgentDirectory {
    /// Adds `agent` under `name`.
    pub fn add(
        &mut self,
        name: impl Into<String>,
        agent: AgentEntry,
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

    pub fn get(&self, name: &str) -> Option<&AgentEntry> {
        self.entries.get(name)
    }

    /// Every agent, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &AgentEntry)> {
        self.entries
            .iter()
            .map(|(name, entry)| (name.as_str(), entry))
    }

    /// The local agent `name`, if there is one.
    pub fn local(&self, name: &str) -> Option<&LocalAgent> {
        match self.entries.get(name)? {
            AgentEntry::Local(local) => Some(local),
            AgentEntry::Remote(_) => None,
        }
    }

    /// The local agents, which a host serving this directory offers to callers.
    pub fn locals(&self) -> impl Iterator<Item = (&str, &LocalAgent)> {
        self.iter().filter_map(|(name, entry)| match entry {
            AgentEntry::Local(local) => Some((name, local.as_ref())),
            AgentEntry::Remote(_) => None,
        })
    }

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

    /// One call from the run `caller`, whose current span is `parent`.
    async fn invoke(
        &self,
        caller: &RunScope,
        granted: &[String],
        parent: &Context,
        name: String,
        input: AgentInput,
        conversation_id: Option<String>,
    ) -> Result<String, GuestError> {
        let conversation_id = conversation_id.or_else(|| caller.conversation_id.clone());
        let depth = caller.depth + 1;
        let entry = match self.entries.get(&name) {
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
                return Err(refuse(caller, parent, &name, conversation_id, error));
            }
        };
        if depth > self.max_depth {
            let error = GuestError::LimitExceeded(format!(
                "calling agent `{name}` would nest agent calls {depth} deep; the limit is {}",
                self.max_depth
            ));
            return Err(refuse(caller, parent, &name, conversation_id, error));
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
                let run = Box::pin(local.component.run_nested(caller, request));
                run.await.map_err(|error| match error {
                    RunError::Agent(error) => error,
                    RunError::Stopped(fault) => fault.to_guest_error(&name),
                    RunError::Sandbox(reason) => GuestError::NotAllowed(format!(
                        "the sandbox of agent `{name}` cannot be set up: {reason}"
                    )),
                })
            }
            AgentEntry::Remote(remote) => {
                let telemetry = &caller.capabilities.telemetry;
                let mut attributes = agent_attributes(&name, conversation_id.as_deref());
                attributes.extend(remote.span_attributes());
                let span_name = format!("{} {name}", semconv::operation::INVOKE_AGENT);
                let mut span =
                    telemetry.start_span(span_name, SpanKind::Client, attributes, parent);
                let result = remote
                    .invoke(span.context(), depth, &input, conversation_id.as_deref())
                    .await
                    .map_err(GuestError::from);
                match &result {
                    Ok(_) => span.span().set_status(opentelemetry::trace::Status::Ok),
                    Err(error) => span.fail(agent_error_type(error), error.message().to_owned()),
                }
                span.finish();
                result
            }
        }
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

/// What every `invoke_agent` span carries: the operation, the agent and the conversation.
pub(crate) fn agent_attributes(name: &str, conversation_id: Option<&str>) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new(
            semconv::GEN_AI_OPERATION_NAME,
            semconv::operation::INVOKE_AGENT,
        ),
        KeyValue::new(semconv::GEN_AI_AGENT_NAME, name.to_owned()),
    ];
    if let Some(id) = conversation_id {
        attributes.push(KeyValue::new(
            semconv::GEN_AI_CONVERSATION_ID,
            id.to_owned(),
        ));
    }
    attributes
}

/// `error.type` of a failed agent call: an unknown agent is not an unknown tool.
fn agent_error_type(error: &GuestError) -> &'static str {
    match error {
        GuestError::NotFound(_) => semconv::error_type::AGENT_NOT_FOUND,
        other => other.error_type(),
    }
}

/// Records a call refused before any agent ran, as its own failed span.
fn refuse(
    caller: &RunScope,
    parent: &Context,
    name: &str,
    conversation_id: Option<String>,
    error: GuestError,
) -> GuestError {
    let span_name = format!("{} {name}", semconv::operation::INVOKE_AGENT);
    let mut span = caller.capabilities.telemetry.start_span(
        span_name,
        SpanKind::Internal,
        agent_attributes(name, conversation_id.as_deref()),
        parent,
    );
    span.fail(agent_error_type(&error), error.message().to_owned());
    span.finish();
    error
}

impl From<types::AgentInput> for AgentInput {
    fn from(input: types::AgentInput) -> Self {
        match input {
            types::AgentInput::Text(text) => AgentInput::Text(text),
            types::AgentInput::Messages(messages) => AgentInput::Messages(messages),
        }
    }
}

impl wit::Host for ComponentState {
    async fn list(&mut self) -> wasmtime::Result<Vec<wit::AgentCard>> {
        let Some(capabilities) = self.capabilities() else {
            return Ok(Vec::new());
        };
        let mut granted = self.policy.agents.clone();
        granted.sort();
        Ok(granted
            .iter()
            .filter_map(|name| capabilities.agents.card(name))
            .collect())
    }

    async fn invoke(
        &mut self,
        name: String,
        input: types::AgentInput,
        conversation_id: Option<String>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        let Some(run) = self.run().cloned() else {
            return Ok(Err(GuestError::NotAllowed(
                "agents can only be called during a run".into(),
            )));
        };
        let parent = self.spans.current().clone();
        let granted = self.policy.agents.clone();
        Ok(run
            .capabilities
            .agents
            .invoke(&run, &granted, &parent, name, input.into(), conversation_id)
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
