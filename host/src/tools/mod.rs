//! The `tools` capability: the registry of tools by name, and the host side
//! of the `tools` import, which checks each call's arguments against the
//! tool's schema, counts it against the run's budget and traces it as an
//! `execute_tool {name}` span. The call itself runs in an instance of the
//! tool's plugin (a fresh one, unless its [`InstanceScope`] keeps one for the
//! run), started by the runtime through [`ToolLauncher`]: this
//! capability never sees an instance, so `P`, a plugin's compiled component,
//! is whatever the runtime makes of it.

use crate::bindings::agent::glassbox::agent::{tools as wit, types::ToolDefinition};
use crate::bindings::{Bounded, GuestError};
use crate::sandbox::{Fault, Policy, RunBudget};
use crate::telemetry::{OperationMetrics, SpanScope, Telemetry, semconv};
use crate::text::cap_text;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use wasmtime::component::HasData;

/// Longest tool name the model providers accept.
const MAX_TOOL_NAME: usize = 64;
/// Longest tool result passed back to the caller; the rest is cut, with a marker.
const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// A plugin file to load, the policy its instances run under, and how many
/// calls one instance serves.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    pub path: PathBuf,
    pub policy: Policy,
    pub instances: InstanceScope,
}

impl PluginSpec {
    /// A plugin granted nothing, under the default limits, a fresh instance a call.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PluginSpec {
            path: path.into(),
            policy: Policy::default(),
            instances: InstanceScope::default(),
        }
    }
}

/// Which calls of a plugin share one instance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceScope {
    /// Every call gets a fresh instance: nothing one call leaves in memory
    /// reaches the next.
    #[default]
    PerCall,
    /// The calls one run makes of the plugin share an instance, started at
    /// the first: an interpreter's start-up (milliseconds for CPython) is paid
    /// once a run, but what a call leaves in memory (globals, caches, anything
    /// an argument put there) is seen by the run's later calls. Runs never
    /// share one. Time and fuel limits still apply per call; the memory
    /// limit, and `wasi:otel`'s bounds, to the instance. An instance that
    /// traps or times out is dropped, and the next call starts a fresh one.
    PerRun,
}

/// One source of tools: a plugin file compiled and linked once, or a server
/// outside the host; `compiled` is what the runtime makes of it.
pub struct Plugin<P> {
    path: PathBuf,
    label: Arc<str>,
    policy: Arc<Policy>,
    instances: InstanceScope,
    /// What every call's span says of the source (its policy, or its server),
    /// built once.
    attributes: Vec<KeyValue>,
    /// INTERNAL for a plugin run in this host, CLIENT for a server elsewhere.
    kind: SpanKind,
    compiled: P,
}

impl<P> Plugin<P> {
    /// The plugin at `path`, known as `label` in logs and spans.
    pub(crate) fn new(
        path: PathBuf,
        label: Arc<str>,
        policy: Arc<Policy>,
        instances: InstanceScope,
        compiled: P,
    ) -> Self {
        Plugin {
            path,
            label,
            attributes: policy.span_attributes(),
            policy,
            instances,
            kind: SpanKind::Internal,
            compiled,
        }
    }

    /// A source the host calls out to (an MCP server at `path`): its calls
    /// are CLIENT spans with `attributes`, and no sandbox policy applies.
    pub(crate) fn remote(
        path: PathBuf,
        label: Arc<str>,
        attributes: Vec<KeyValue>,
        compiled: P,
    ) -> Self {
        Plugin {
            path,
            label,
            policy: Arc::new(Policy::default()),
            instances: InstanceScope::PerCall,
            attributes,
            kind: SpanKind::Client,
            compiled,
        }
    }

    pub(crate) fn label(&self) -> &Arc<str> {
        &self.label
    }

    pub(crate) fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }

    pub(crate) fn instances(&self) -> InstanceScope {
        self.instances
    }

    pub(crate) fn compiled(&self) -> &P {
        &self.compiled
    }
}

/// One tool call, as the plugin's `invoke` export takes it.
pub(crate) struct Invocation {
    pub name: String,
    pub arguments: String,
    pub call_id: Option<String>,
}

/// Starts tool calls in fresh plugin instances, on behalf of one run. The
/// runtime implements it; this capability only ever asks.
#[async_trait::async_trait]
pub(crate) trait ToolLauncher<P>: Send + Sync {
    /// Runs `call` in an instance of `plugin` (a fresh one unless the
    /// plugin's [`InstanceScope`] says otherwise), its spans nesting under `parent`.
    async fn invoke(
        self: Arc<Self>,
        plugin: &Arc<Plugin<P>>,
        parent: &Context,
        call: Invocation,
    ) -> Result<String, Failure>;
}

/// The span of a tool call, as the caller shapes it: a guest's call has the
/// kind its tool's source gives it, in its run; a front end serving the tools
/// on their own (MCP) gives its own kind and attributes, and the `error.type`
/// of every failure.
pub struct CallSpan {
    /// `None`: as the tool's source says (INTERNAL for a plugin).
    pub kind: Option<SpanKind>,
    pub attributes: Vec<KeyValue>,
    /// `error.type` of a failed call, instead of the failure's own.
    pub failure_type: Option<&'static str>,
}

impl CallSpan {
    fn of_guest() -> Self {
        CallSpan {
            kind: None,
            attributes: Vec::new(),
            failure_type: None,
        }
    }
}

/// How a tool call failed: the host or the tool said no, or the host stopped the tool.
pub(crate) enum Failure {
    Refused(GuestError),
    Stopped(Fault),
}

impl From<GuestError> for Failure {
    fn from(error: GuestError) -> Self {
        Failure::Refused(error)
    }
}

impl From<Fault> for Failure {
    fn from(fault: Fault) -> Self {
        Failure::Stopped(fault)
    }
}

struct RegisteredTool<P> {
    definition: ToolDefinition,
    validator: jsonschema::Validator,
    plugin: Arc<Plugin<P>>,
}

/// A tool that cannot be registered, and why.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
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
}

/// A plugin folder that cannot be listed.
#[derive(Debug, thiserror::Error)]
#[error("{}: cannot list plugins: {source}", .path.display())]
pub struct PluginDirError {
    path: PathBuf,
    source: std::io::Error,
}

/// Every tool a run may call, by name. Cheap to clone: components are compiled once.
pub struct ToolRegistry<P> {
    tools: BTreeMap<String, Arc<RegisteredTool<P>>>,
}

impl<P> Clone for ToolRegistry<P> {
    fn clone(&self) -> Self {
        ToolRegistry {
            tools: self.tools.clone(),
        }
    }
}

impl<P> Default for ToolRegistry<P> {
    fn default() -> Self {
        ToolRegistry {
            tools: BTreeMap::new(),
        }
    }
}

impl<P> ToolRegistry<P> {
    /// Adds `definition`, a tool of `plugin`, once its name is unique and
    /// its parameter schema is a JSON Schema.
    pub(crate) fn register(
        &mut self,
        definition: ToolDefinition,
        plugin: &Arc<Plugin<P>>,
    ) -> Result<(), RegistrationError> {
        let bad = |reason: String| RegistrationError::BadTool {
            path: plugin.path.clone(),
            tool: definition.name.clone(),
            reason,
        };
        let name = &definition.name;
        if name.is_empty()
            || name.len() > MAX_TOOL_NAME
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(bad(format!(
                "a tool name must be 1 to {MAX_TOOL_NAME} characters of [a-zA-Z0-9_-]"
            )));
        }
        if let Some(existing) = self.tools.get(name) {
            return Err(RegistrationError::DuplicateTool {
                tool: name.clone(),
                first: existing.plugin.path.clone(),
                second: plugin.path.clone(),
            });
        }
        let schema: serde_json::Value = serde_json::from_str(&definition.parameters)
            .map_err(|e| bad(format!("the parameter schema is not JSON: {e}")))?;
        if !schema.is_object() {
            return Err(bad("the parameter schema must be a JSON object".into()));
        }
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            bad(format!(
                "the parameter schema is not a valid JSON Schema: {e}"
            ))
        })?;
        self.tools.insert(
            name.clone(),
            Arc::new(RegisteredTool {
                definition,
                validator,
                plugin: plugin.clone(),
            }),
        );
        Ok(())
    }

    /// Every tool's definition, in name order.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.tools
            .values()
            .map(|tool| tool.definition.clone())
            .collect()
    }

    /// Each source of tools once (a plugin, or a server), in no set order.
    pub fn sources(&self) -> Vec<&P> {
        let mut seen: Vec<&Arc<Plugin<P>>> = Vec::new();
        for tool in self.tools.values() {
            if !seen.iter().any(|plugin| Arc::ptr_eq(plugin, &tool.plugin)) {
                seen.push(&tool.plugin);
            }
        }
        seen.into_iter().map(|plugin| &plugin.compiled).collect()
    }

    /// The file that provides `tool`.
    pub fn provider_of(&self, tool: &str) -> Option<&Path> {
        self.tools.get(tool).map(|t| t.plugin.path.as_path())
    }
}

/// The tools a host offers, and where their calls are recorded.
pub(crate) struct ToolsCapability<P> {
    registry: ToolRegistry<P>,
    telemetry: Arc<Telemetry>,
    /// `glassbox.tool.duration` (v0.1.0: `gen_ai.execute_tool.duration`) and
    /// `glassbox.tool.errors`.
    metrics: OperationMetrics,
}

impl<P> ToolsCapability<P> {
    pub fn new(registry: ToolRegistry<P>, telemetry: Arc<Telemetry>) -> Self {
        use semconv::metric;
        let duration = telemetry
            .conventions()
            .pick(metric::TOOL_DURATION, metric::EXECUTE_TOOL_DURATION);
        let metrics = OperationMetrics::new(telemetry.meter(), duration, "Duration of tool calls")
            .counting_errors(
                telemetry.meter(),
                metric::TOOL_ERRORS,
                "Tool calls that failed, by error.type",
            );
        ToolsCapability {
            registry,
            telemetry,
            metrics,
        }
    }

    pub fn registry(&self) -> &ToolRegistry<P> {
        &self.registry
    }

    /// Whether a tool is named `name`.
    pub fn has(&self, name: &str) -> bool {
        self.registry.tools.contains_key(name)
    }

    /// Every tool's definition, in name order.
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.registry.definitions()
    }

    /// One traced tool call, made during `run` by a caller whose current span is `parent`.
    pub async fn call(
        &self,
        run: &ToolsRun<P>,
        parent: &Context,
        span: CallSpan,
        name: String,
        arguments: String,
        call_id: Option<String>,
    ) -> Result<String, GuestError> {
        let telemetry = &self.telemetry;
        let registered = self.registry.tools.get(&name);
        let mut attributes = vec![
            KeyValue::new(
                semconv::GEN_AI_OPERATION_NAME,
                semconv::operation::EXECUTE_TOOL,
            ),
            KeyValue::new(semconv::GEN_AI_TOOL_NAME, name.clone()),
            KeyValue::new(semconv::GEN_AI_TOOL_TYPE, semconv::TOOL_TYPE_FUNCTION),
        ];
        if let Some(id) = &call_id {
            attributes.push(KeyValue::new(semconv::GEN_AI_TOOL_CALL_ID, id.clone()));
        }
        if let Some(tool) = registered {
            attributes.push(KeyValue::new(
                semconv::GEN_AI_TOOL_DESCRIPTION,
                tool.definition.description.clone(),
            ));
            attributes.push(KeyValue::new(
                semconv::GLASSBOX_COMPONENT,
                tool.plugin.label.to_string(),
            ));
            attributes.extend(tool.plugin.attributes.iter().cloned());
        }
        let kind = span
            .kind
            .or_else(|| registered.map(|tool| tool.plugin.kind.clone()))
            .unwrap_or(SpanKind::Internal);
        attributes.extend(span.attributes);
        let capture = telemetry.content();
        if let Some(capture) = capture {
            attributes.push(KeyValue::new(
                semconv::GEN_AI_TOOL_CALL_ARGUMENTS,
                capture.render_text(&arguments),
            ));
        }
        let span_name = format!("{} {name}", semconv::operation::EXECUTE_TOOL);
        let metric_attributes = vec![KeyValue::new(semconv::GEN_AI_TOOL_NAME, name.clone())];
        let operation = telemetry
            .start_operation(span_name, kind, attributes, parent)
            .measured(&self.metrics, metric_attributes);

        let outcome = match registered {
            None => Err(Failure::Refused(GuestError::NotFound(format!(
                "no tool named `{name}`; available: {}",
                self.registry
                    .tools
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )))),
            Some(tool) => {
                async {
                    check_arguments(&tool.validator, &arguments)?;
                    run.budget.start_tool_call()?;
                    if let Some(own_calls) = &run.own_calls {
                        own_calls.fetch_add(1, Ordering::Relaxed);
                    }
                    let call = Invocation {
                        name,
                        arguments,
                        call_id,
                    };
                    run.launcher
                        .clone()
                        .invoke(&tool.plugin, operation.context(), call)
                        .await
                }
                .await
            }
        };
        let result = match outcome {
            Ok(output) => {
                let size = output.len();
                let (output, truncated) = cap_text(output, MAX_RESULT_BYTES);
                operation.span().set_attributes([
                    KeyValue::new(
                        semconv::GLASSBOX_TOOL_RESULT_SIZE,
                        i64::try_from(size).unwrap_or(i64::MAX),
                    ),
                    KeyValue::new(semconv::GLASSBOX_TOOL_RESULT_TRUNCATED, truncated),
                ]);
                if let Some(capture) = capture {
                    operation.span().set_attribute(KeyValue::new(
                        semconv::GEN_AI_TOOL_CALL_RESULT,
                        capture.render_text(&output),
                    ));
                }
                Ok(output)
            }
            Err(Failure::Refused(error)) => {
                Err((tool_error_type(&error), error.message().to_owned(), error))
            }
            Err(Failure::Stopped(fault)) => {
                // Only a plugin that ran can be stopped, so `registered` is set.
                let label = registered.map_or("the tool", |tool| &*tool.plugin.label);
                Err((
                    fault.error_type(),
                    fault.to_string(),
                    fault.to_guest_error(label),
                ))
            }
        };
        operation.end_with(&result, |(error_type, message, _)| {
            (span.failure_type.unwrap_or(*error_type), message.clone())
        });
        result.map_err(|(_, _, error)| error)
    }
}

/// `error.type` of a failed tool call: an unknown name is an unknown tool.
fn tool_error_type(error: &GuestError) -> &'static str {
    match error {
        GuestError::NotFound(_) => semconv::error_type::TOOL_NOT_FOUND,
        other => other.error_type(),
    }
}

/// Every `*.wasm` file directly in `dir`, in name order: the drop-in plugin folder.
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, PluginDirError> {
    let unreadable = |source| PluginDirError {
        path: dir.into(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(unreadable)? {
        let path = entry.map_err(unreadable)?.path();
        if path.extension().is_some_and(|ext| ext == "wasm") && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

/// Arguments must be a JSON object that satisfies the tool's schema.
fn check_arguments(validator: &jsonschema::Validator, arguments: &str) -> Result<(), GuestError> {
    let value: serde_json::Value = serde_json::from_str(arguments).map_err(|e| {
        GuestError::InvalidArguments(format!("the arguments are not valid JSON: {e}"))
    })?;
    validator.validate(&value).map_err(|error| {
        let at = error.instance_path().to_string();
        let at = if at.is_empty() {
            String::new()
        } else {
            format!(" at `{at}`")
        };
        GuestError::InvalidArguments(format!(
            "the arguments do not match the tool's schema{at}: {error}"
        ))
    })
}

/// What one run may do with tools: the host's tools, its budget, and the
/// runtime that starts their instances.
pub(crate) struct ToolsRun<P> {
    pub capability: Arc<ToolsCapability<P>>,
    pub budget: Arc<RunBudget>,
    pub launcher: Arc<dyn ToolLauncher<P>>,
    /// Where an agent's own tool calls are counted; `None` for calls from outside (MCP).
    pub own_calls: Option<Arc<AtomicU32>>,
}

impl<P> Clone for ToolsRun<P> {
    fn clone(&self) -> Self {
        ToolsRun {
            capability: self.capability.clone(),
            budget: self.budget.clone(),
            launcher: self.launcher.clone(),
            own_calls: self.own_calls.clone(),
        }
    }
}

/// One store's `tools` state: the run it serves, or `None` (while loading,
/// and in plugins, which cannot call tools).
pub(crate) struct ToolsCtx<P> {
    run: Option<ToolsRun<P>>,
}

impl<P> ToolsCtx<P> {
    pub fn new(run: Option<ToolsRun<P>>) -> Self {
        ToolsCtx { run }
    }
}

/// The parts of a store the `tools` import works on.
pub(crate) struct ToolsView<'a, P> {
    pub ctx: &'a ToolsCtx<P>,
    pub spans: &'a SpanScope,
}

/// Links the `tools` import through [`ToolsView`].
pub(crate) struct ToolsImport<P>(PhantomData<P>);

impl<P: 'static> HasData for ToolsImport<P> {
    type Data<'a> = ToolsView<'a, P>;
}

impl<P: Send + Sync + 'static> wit::Host for ToolsView<'_, P> {
    async fn list(&mut self) -> wasmtime::Result<Vec<ToolDefinition>> {
        Ok(self
            .ctx
            .run
            .as_ref()
            .map(|run| run.capability.registry.definitions())
            .unwrap_or_default())
    }

    async fn call(
        &mut self,
        name: String,
        arguments: String,
        call_id: Option<String>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        let Some(run) = self.ctx.run.clone() else {
            return Ok(Err(GuestError::NotAllowed(
                "tools can only be called during a run".into(),
            )));
        };
        let parent = self.spans.current().clone();
        Ok(run
            .capability
            .call(
                &run,
                &parent,
                CallSpan::of_guest(),
                name.bounded(),
                arguments,
                call_id.bounded(),
            )
            .await)
    }
}
