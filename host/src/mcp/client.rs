//! MCP servers as tool sources: the manifest's `[[mcp_servers]]`, reached over
//! Streamable HTTP or started as a local process on stdio. Their tools join
//! the registry beside the Wasm plugins, under an optional prefix, and are
//! granted and budgeted like them. Each call is a CLIENT `execute_tool` span
//! with the MCP attributes and the server's address, and carries its trace
//! context in `params._meta` (SEP-414). A stdio server is a process outside
//! the sandbox: it runs only when the manifest names it, in a clean
//! environment, and its spans say `glassbox.sandbox = "none"`.

use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::types::ToolDefinition;
use crate::telemetry::{propagation, semconv};
use crate::text::cause_chain;
use opentelemetry::{Context, KeyValue};
use rmcp::model::{CallToolRequestParams, ContentBlock, JsonObject, RequestMetaObject};
use rmcp::service::{ClientInitializeError, RunningService, ServiceError};
use rmcp::transport::DynamicTransportError;
use rmcp::transport::streamable_http_client::{
    StreamableHttpClientTransportConfig, StreamableHttpError,
};
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{RoleClient, ServiceExt};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// How long connecting and listing the tools may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing may take, a stdio server's exit included.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[mcp_servers]]` entry, its secrets already read from the environment.
#[derive(Clone, Debug)]
pub struct McpServerSpec {
    pub name: String,
    pub endpoint: McpEndpoint,
    /// Put before each of its tools' names, so two servers' tools cannot clash.
    pub prefix: Option<String>,
    /// The longest one call may take.
    pub timeout: Duration,
}

#[derive(Clone)]
pub enum McpEndpoint {
    /// Streamable HTTP at `url`, sending `headers` with every request.
    Http {
        url: url::Url,
        headers: Vec<(String, String)>,
    },
    /// A process speaking MCP on its stdin and stdout, with only `env` set.
    Stdio {
        command: PathBuf,
        args: Vec<String>,
        env: Vec<(String, String)>,
    },
}

/// Names only: header and variable values may be secrets.
impl std::fmt::Debug for McpEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .map(|(name, _)| format!("{name}: REDACTED"))
                .collect::<Vec<_>>()
        };
        match self {
            McpEndpoint::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", &url.as_str())
                .field("headers", &names(headers))
                .finish(),
            McpEndpoint::Stdio { command, args, env } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &names(env))
                .finish(),
        }
    }
}

/// An MCP server that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("MCP server `{server}`: {reason}")]
pub struct McpConnectError {
    server: String,
    reason: String,
}

/// A connected MCP server and the tools it offers, by their names here.
pub struct McpClient {
    name: String,
    /// Written only to close it.
    service: tokio::sync::RwLock<RunningService<RoleClient, ()>>,
    /// Name here to name on the server.
    remote_names: BTreeMap<String, String>,
    definitions: Vec<ToolDefinition>,
    attributes: Vec<KeyValue>,
    timeout: Duration,
}

impl McpClient {
    /// Connects to the server `spec` names and lists its tools.
    pub async fn connect(spec: McpServerSpec) -> Result<Self, McpConnectError> {
        let failed = |reason: String| McpConnectError {
            server: spec.name.clone(),
            reason,
        };
        let mut attributes = vec![KeyValue::new(
            semconv::MCP_METHOD_NAME,
            semconv::MCP_METHOD_TOOLS_CALL,
        )];
        let connecting = async {
            match &spec.endpoint {
                McpEndpoint::Http { url, headers } => {
                    attributes.push(KeyValue::new(
                        semconv::NETWORK_TRANSPORT,
                        semconv::NETWORK_TRANSPORT_TCP,
                    ));
                    attributes.push(KeyValue::new(
                        semconv::SERVER_ADDRESS,
                        url.host_str().unwrap_or_default().to_owned(),
                    ));
                    if let Some(port) = url.port_or_known_default() {
                        attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
                    }
                    let mut custom = HashMap::new();
                    for (name, value) in headers {
                        let name = http::HeaderName::try_from(name.as_str())
                            .map_err(|e| format!("header `{name}`: {e}"))?;
                        let mut value = http::HeaderValue::try_from(value.as_str())
                            .map_err(|_| format!("the value of header `{name}` is not valid"))?;
                        // Kept out of HTTP libraries' logs.
                        value.set_sensitive(true);
                        custom.insert(name, value);
                    }
                    let config = StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        .custom_headers(custom);
                    let transport =
                        StreamableHttpClientTransport::with_client(reqwest::Client::new(), config);
                    ().serve(transport).await.map_err(initialize_failure)
                }
                McpEndpoint::Stdio { command, args, env } => {
                    attributes.push(KeyValue::new(
                        semconv::NETWORK_TRANSPORT,
                        semconv::NETWORK_TRANSPORT_PIPE,
                    ));
                    attributes.push(KeyValue::new(
                        semconv::GLASSBOX_SANDBOX,
                        semconv::SANDBOX_NONE,
                    ));
                    let mut process = tokio::process::Command::new(command);
                    process.args(args).env_clear().envs(env.iter().cloned());
                    let transport = TokioChildProcess::new(process)
                        .map_err(|e| format!("cannot start {}: {e}", command.display()))?;
                    ().serve(transport).await.map_err(initialize_failure)
                }
            }
        };
        let listing = async {
            let service = connecting.await?;
            let tools = service
                .list_all_tools()
                .await
                .map_err(|e| format!("cannot list its tools: {e}"))?;
            Ok::<_, String>((service, tools))
        };
        let (service, tools) = tokio::time::timeout(CONNECT_TIMEOUT, listing)
            .await
            .map_err(|_| failed(format!("no answer in {}s", CONNECT_TIMEOUT.as_secs())))?
            .map_err(failed)?;
        let prefix = spec.prefix.clone().unwrap_or_default();
        let mut remote_names = BTreeMap::new();
        let mut definitions = Vec::new();
        for tool in tools {
            let local = format!("{prefix}{}", tool.name);
            definitions.push(ToolDefinition {
                name: local.clone(),
                description: tool.description.as_deref().unwrap_or_default().to_owned(),
                parameters: serde_json::Value::Object((*tool.input_schema).clone()).to_string(),
            });
            remote_names.insert(local, tool.name.into_owned());
        }
        Ok(McpClient {
            name: spec.name,
            service: tokio::sync::RwLock::new(service),
            remote_names,
            definitions,
            attributes,
            timeout: spec.timeout,
        })
    }

    /// Ends the session; a stdio server is asked to exit, then stopped.
    /// Without it a server stuck in a call could outlive the host.
    pub async fn close(&self) {
        let mut service = self.service.write().await;
        if let Ok(None) = service.close_with_timeout(CLOSE_TIMEOUT).await {
            tracing::warn!(
                "MCP server `{}` did not close in {}s",
                self.name,
                CLOSE_TIMEOUT.as_secs()
            );
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its tools, by their names here.
    pub fn definitions(&self) -> &[ToolDefinition] {
        &self.definitions
    }

    /// What every call's span says of this server.
    pub fn span_attributes(&self) -> &[KeyValue] {
        &self.attributes
    }

    /// Calls the tool known here as `name` with `arguments` (a JSON object, as
    /// text), the trace context of `parent` (the call's span) in `_meta`.
    pub async fn call(
        &self,
        name: &str,
        arguments: &str,
        parent: &Context,
    ) -> Result<String, GuestError> {
        let server = &self.name;
        let remote = self.remote_names.get(name).ok_or_else(|| {
            GuestError::NotFound(format!("MCP server `{server}` offers no tool `{name}`"))
        })?;
        let arguments: JsonObject = serde_json::from_str(arguments).map_err(|e| {
            GuestError::InvalidArguments(format!("the arguments are not a JSON object: {e}"))
        })?;
        let mut meta = RequestMetaObject::new();
        for (key, value) in propagation::inject_fields(parent) {
            meta.0.0.insert(key, serde_json::Value::String(value));
        }
        let mut request = CallToolRequestParams::new(remote.clone()).with_arguments(arguments);
        request.meta = Some(meta);
        let service = self.service.read().await;
        let answered = tokio::time::timeout(self.timeout, service.call_tool(request))
            .await
            .map_err(|_| {
                GuestError::Timeout(format!(
                    "MCP server `{server}` did not answer in {}",
                    humantime::format_duration(self.timeout)
                ))
            })?;
        let result = answered.map_err(|error| match error {
            ServiceError::McpError(error) => {
                GuestError::ToolFailed(format!("MCP server `{server}`: {}", error.message))
            }
            ServiceError::TransportSend(error) => GuestError::Unavailable(format!(
                "MCP server `{server}`: {}",
                transport_failure(&error)
            )),
            other => GuestError::Unavailable(format!("MCP server `{server}`: {other}")),
        })?;
        let text = result
            .content
            .iter()
            .map(|block| match block {
                ContentBlock::Text(text) => text.text.clone(),
                other => serde_json::to_string(other).unwrap_or_default(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        if result.is_error == Some(true) {
            return Err(GuestError::ToolFailed(text));
        }
        match (text.is_empty(), &result.structured_content) {
            (true, Some(structured)) => Ok(structured.to_string()),
            _ => Ok(text),
        }
    }
}

/// Why the session could not start, its transport's causes named and its
/// type names left out.
fn initialize_failure(error: ClientInitializeError) -> String {
    match error {
        ClientInitializeError::TransportError { error, context } => {
            format!("cannot {context}: {}", transport_failure(&error))
        }
        other => cause_chain(&other),
    }
}

fn transport_failure(error: &DynamicTransportError) -> String {
    // The HTTP transport says its client's error without giving it as the
    // cause, so the chain would stop before saying why (refused, say).
    match error
        .error
        .downcast_ref::<StreamableHttpError<reqwest::Error>>()
    {
        Some(StreamableHttpError::Client(client)) => cause_chain(client),
        _ => cause_chain(&*error.error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_shows_its_header_and_variable_names_but_not_their_values() {
        let http = McpEndpoint::Http {
            url: "https://mcp.example.com/mcp".parse().unwrap(),
            headers: vec![("Authorization".into(), "Bearer s3cret".into())],
        };
        let stdio = McpEndpoint::Stdio {
            command: "facts-mcp".into(),
            args: vec!["--stdio".into()],
            env: vec![("FACTS_TOKEN".into(), "s3cret".into())],
        };
        for endpoint in [http, stdio] {
            let shown = format!("{endpoint:?}");
            assert!(!shown.contains("s3cret"), "{shown}");
            assert!(shown.contains(": REDACTED"), "{shown}");
        }
    }
}
