//! The `tools` capability: tool plugins loaded into a registry by tool name, and
//! the host side of the `tools` import, which checks arguments against each
//! tool's schema and runs every call in a fresh plugin instance under an
//! `execute_tool {name}` span.

use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::{tools as wit, types::ToolDefinition};
use crate::bindings::tool_plugin::ToolPluginPre;
use crate::runtime::{ComponentState, Engine, LoadError, RunScope, World, new_store};
use crate::sandbox::{Fault, Policy, cap_text, guard};
use crate::telemetry::semconv;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Context, KeyValue};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

/// Longest tool name the model providers accept.
const MAX_TOOL_NAME: usize = 64;
/// Longest tool result passed back to the caller; the rest is cut, with a marker.
const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// A plugin file to load, and the policy its instances run under.
#[derive(Clone, Debug)]
pub struct PluginSpec {
    pub path: PathBuf,
    pub policy: Policy,
}

impl PluginSpec {
    /// A plugin granted nothing, under the default limits.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        PluginSpec {
            path: path.into(),
            policy: Policy::default(),
        }
    }
}

/// One plugin file, compiled and linked once.
struct Plugin {
    path: PathBuf,
    label: Arc<str>,
    pre: ToolPluginPre<ComponentState>,
    policy: Arc<Policy>,
    /// The policy as span attributes, built once for every call's span.
    policy_attributes: Vec<KeyValue>,
}

/// How a tool call failed: the host or the tool said no, or the host stopped the tool.
enum Failure {
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

struct RegisteredTool {
    definition: ToolDefinition,
    validator: jsonschema::Validator,
    plugin: Arc<Plugin>,
}

/// Every tool a run may call, by name. Cheap to clone: components are compiled once.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<RegisteredTool>>,
}

impl ToolRegistry {
    /// Loads each plugin, asks it for its tools and checks their definitions.
    pub(crate) async fn load(engine: &Engine, plugins: &[PluginSpec]) -> Result<Self, LoadError> {
        let mut registry = ToolRegistry::default();
        for PluginSpec { path, policy } in plugins {
            let (label, pre) = engine.prepare(path, World::ToolPlugin, ToolPluginPre::new)?;
            let policy = Arc::new(policy.clone());
            let mut store = engine.loading_store(path, &label, &policy)?;
            let definitions = guard(&policy.limits, async {
                let instance = pre.instantiate_async(&mut store).await?;
                instance
                    .glassbox_agent_tool()
                    .call_definitions(&mut store)
                    .await
            })
            .await
            .map_err(LoadError::startup(path, "definitions"))?;
            if definitions.is_empty() {
                return Err(LoadError::Startup {
                    path: path.clone(),
                    call: "definitions",
                    reason: "the plugin provides no tools".into(),
                });
            }
            let plugin = Arc::new(Plugin {
                path: path.clone(),
                label,
                pre,
                policy_attributes: policy.span_attributes(),
                policy,
            });
            for definition in definitions {
                registry.register(definition, &plugin)?;
            }
        }
        Ok(registry)
    }

    fn register(
        &mut self,
        definition: ToolDefinition,
        plugin: &Arc<Plugin>,
    ) -> Result<(), LoadError> {
        let bad = |reason: String| LoadError::BadTool {
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
            return Err(LoadError::DuplicateTool {
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

    /// The file that provides `tool`.
    pub fn provider_of(&self, tool: &str) -> Option<&Path> {
        self.tools.get(tool).map(|t| t.plugin.path.as_path())
    }

    /// One traced tool call, made during `run` by a component whose current span is `parent`.
    async fn call(
        &self,
        run: &RunScope,
        parent: &Context,
        name: String,
        arguments: String,
        call_id: Option<String>,
    ) -> Result<String, GuestError> {
        let telemetry = &run.capabilities.telemetry;
        let registered = self.tools.get(&name);
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
            attributes.extend(tool.plugin.policy_attributes.iter().cloned());
        }
        let capture = telemetry.content();
        if let Some(capture) = capture {
            attributes.push(KeyValue::new(
                semconv::GEN_AI_TOOL_CALL_ARGUMENTS,
                capture.render_text(&arguments),
            ));
        }
        let span_name = format!("{} {name}", semconv::operation::EXECUTE_TOOL);
        let mut span = telemetry.start_span(span_name, SpanKind::Internal, attributes, parent);
        let started = Instant::now();

        let outcome = match registered {
            None => Err(Failure::Refused(GuestError::NotFound(format!(
                "no tool named `{name}`; available: {}",
                self.tools.keys().cloned().collect::<Vec<_>>().join(", ")
            )))),
            Some(tool) => {
                async {
                    check_arguments(&tool.validator, &arguments)?;
                    run.budget.start_tool_call()?;
                    invoke(
                        run,
                        &tool.plugin,
                        span.context(),
                        &name,
                        &arguments,
                        call_id,
                    )
                    .await
                }
                .await
            }
        };
        let result = match outcome {
            Ok(output) => {
                let size = output.len();
                let (output, truncated) = cap_text(output, MAX_RESULT_BYTES);
                span.span().set_attributes([
                    KeyValue::new(
                        semconv::GLASSBOX_TOOL_RESULT_SIZE,
                        i64::try_from(size).unwrap_or(i64::MAX),
                    ),
                    KeyValue::new(semconv::GLASSBOX_TOOL_RESULT_TRUNCATED, truncated),
                ]);
                if let Some(capture) = capture {
                    span.span().set_attribute(KeyValue::new(
                        semconv::GEN_AI_TOOL_CALL_RESULT,
                        capture.render_text(&output),
                    ));
                }
                Ok(output)
            }
            Err(Failure::Refused(error)) => {
                Err((error.error_type(), error.message().to_owned(), error))
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

        let mut metric_attributes = vec![KeyValue::new(semconv::GEN_AI_TOOL_NAME, name)];
        if let Err((error_type, message, _)) = &result {
            span.fail(*error_type, message.clone());
            metric_attributes.push(KeyValue::new(semconv::ERROR_TYPE, *error_type));
            telemetry
                .instruments()
                .tool_errors
                .add(1, &metric_attributes);
        }
        telemetry
            .instruments()
            .tool_duration
            .record(started.elapsed().as_secs_f64(), &metric_attributes);
        span.finish();
        result.map_err(|(_, _, error)| error)
    }
}

/// Every `*.wasm` file directly in `dir`, in name order: the drop-in plugin folder.
pub fn plugin_files(dir: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let unreadable = |source| LoadError::PluginDir {
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

/// Runs one call in a fresh instance of `plugin`, under its limits, with spans nesting under `cx`.
async fn invoke(
    run: &RunScope,
    plugin: &Plugin,
    cx: &Context,
    name: &str,
    arguments: &str,
    call_id: Option<String>,
) -> Result<String, Failure> {
    let mut store = new_store(
        plugin.pre.engine(),
        &plugin.label,
        Some(run.clone()),
        cx.clone(),
        &plugin.policy,
    )
    .map_err(|reason| {
        GuestError::NotAllowed(format!(
            "the sandbox of {} cannot be set up: {reason}",
            plugin.label
        ))
    })?;
    let returned = guard(&plugin.policy.limits, async {
        let instance = plugin.pre.instantiate_async(&mut store).await?;
        instance
            .glassbox_agent_tool()
            .call_invoke(&mut store, name, arguments, call_id.as_deref())
            .await
    })
    .await?;
    Ok(returned?)
}

impl wit::Host for ComponentState {
    async fn list(&mut self) -> wasmtime::Result<Vec<ToolDefinition>> {
        Ok(self
            .capabilities()
            .map(|c| c.tools.definitions())
            .unwrap_or_default())
    }

    async fn call(
        &mut self,
        name: String,
        arguments: String,
        call_id: Option<String>,
    ) -> wasmtime::Result<Result<String, GuestError>> {
        let Some(run) = self.run().cloned() else {
            return Ok(Err(GuestError::NotAllowed(
                "tools can only be called during a run".into(),
            )));
        };
        let parent = self.spans.current().clone();
        Ok(run
            .capabilities
            .tools
            .call(&run, &parent, name, arguments, call_id)
            .await)
    }
}
