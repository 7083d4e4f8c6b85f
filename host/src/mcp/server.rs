//! The host's tools for any MCP client (`glassbox mcp`), over stdio or
//! Streamable HTTP. `tools/list` gives each tool's name, description and JSON
//! Schema; `tools/call` runs the call through a [`ToolService`] (the runtime's
//! tools, called as an agent calls them), as one `execute_tool {name}` SERVER
//! span with the MCP attributes, in the trace the request's `params._meta`
//! carries (SEP-414). A tool's failure is an `isError` result with its message,
//! never a failure of the server.

use crate::bindings::GuestError;
use crate::bindings::agent::glassbox::agent::types::ToolDefinition;
use crate::telemetry::{propagation, semconv};
use opentelemetry::{Context, KeyValue};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, RequestMetaObject, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use std::collections::HashMap;
use std::sync::Arc;

/// How a client reaches the server, as `network.transport` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Stdio,
    Http,
}

/// The tools an MCP server offers; the runtime implements it.
#[async_trait::async_trait]
pub trait ToolService: Send + Sync + 'static {
    /// Every tool's definition, in name order.
    fn definitions(&self) -> Vec<ToolDefinition>;
    fn has(&self, name: &str) -> bool;
    /// Calls `name` with `arguments` (a JSON object, as text), as one SERVER
    /// `execute_tool` span under `parent` with `attributes` added, whose
    /// `error.type` on failure is `tool_error`.
    async fn call(
        &self,
        name: String,
        arguments: String,
        parent: Context,
        attributes: Vec<KeyValue>,
    ) -> Result<String, GuestError>;
}

/// The MCP server over a [`ToolService`]: one per transport.
pub struct McpServer<T> {
    tools: Arc<T>,
    transport: Transport,
}

impl<T> Clone for McpServer<T> {
    fn clone(&self) -> Self {
        McpServer {
            tools: self.tools.clone(),
            transport: self.transport,
        }
    }
}

impl<T: ToolService> McpServer<T> {
    pub fn new(tools: Arc<T>, transport: Transport) -> Self {
        McpServer { tools, transport }
    }

    /// The trace the client's `_meta` carries, and the MCP attributes of the call's span.
    fn call_span(
        &self,
        meta: Option<&RequestMetaObject>,
        context: &RequestContext<RoleServer>,
    ) -> (Context, Vec<KeyValue>) {
        let meta = meta.unwrap_or(&context.meta);
        let fields: HashMap<String, String> = ["traceparent", "tracestate", "baggage"]
            .into_iter()
            .filter_map(|key| {
                let value = meta.0.get(key)?.as_str()?;
                Some((key.to_owned(), value.to_owned()))
            })
            .collect();
        let version = meta.protocol_version().or_else(|| {
            context
                .peer
                .peer_info()
                .map(|client| client.protocol_version.clone())
        });
        let mut attributes = vec![
            KeyValue::new(semconv::MCP_METHOD_NAME, semconv::MCP_METHOD_TOOLS_CALL),
            KeyValue::new(semconv::JSONRPC_REQUEST_ID, context.id.to_string()),
            KeyValue::new(
                semconv::NETWORK_TRANSPORT,
                match self.transport {
                    Transport::Stdio => semconv::NETWORK_TRANSPORT_PIPE,
                    Transport::Http => semconv::NETWORK_TRANSPORT_TCP,
                },
            ),
        ];
        if let Some(version) = version {
            attributes.push(KeyValue::new(
                semconv::MCP_PROTOCOL_VERSION,
                version.to_string(),
            ));
        }
        (propagation::extract_fields(&fields), attributes)
    }
}

/// A tool as MCP lists it; `None` when its schema is not a JSON object (the
/// registry has already refused such a tool).
fn listed(definition: ToolDefinition) -> Option<Tool> {
    let schema: JsonObject = serde_json::from_str(&definition.parameters).ok()?;
    Some(Tool::new(definition.name, definition.description, schema))
}

impl<T: ToolService> ServerHandler for McpServer<T> {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("glassbox", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Glassbox tools: each call runs in a fresh WebAssembly sandbox, traced.",
            )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(
            self.tools
                .definitions()
                .into_iter()
                .filter_map(listed)
                .collect(),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        // An unknown name is the request's fault, not the tool's: a protocol error.
        if !self.tools.has(&request.name) {
            return Err(ErrorData::invalid_params(
                format!("no tool named `{}`", request.name),
                None,
            ));
        }
        let (parent, attributes) = self.call_span(request.meta.as_ref(), &context);
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let outcome = self
            .tools
            .call(
                request.name.into_owned(),
                arguments.to_string(),
                parent,
                attributes,
            )
            .await;
        Ok(match outcome {
            Ok(text) => CallToolResult::success(vec![ContentBlock::text(text)]),
            Err(error) => CallToolResult::error(vec![ContentBlock::text(format!(
                "{}: {}",
                error.error_type(),
                error.message()
            ))]),
        }
        .into())
    }
}
