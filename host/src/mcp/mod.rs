//! `glassbox mcp`: the host's tools for any MCP client, over stdio or
//! Streamable HTTP, through the official Rust SDK (`rmcp`). `tools/list` gives
//! each tool's name, description and JSON Schema; `tools/call` runs the call
//! as an agent's call runs ([`ToolHost`]), as one `execute_tool {name}` SERVER
//! span with the MCP attributes, in the trace the request's `params._meta`
//! carries (SEP-414). A tool's failure is an `isError` result with its message,
//! never a failure of the server.

use crate::bindings::agent::glassbox::agent::types::ToolDefinition;
use crate::runtime::{OutsideCall, ToolHost};
use crate::telemetry::{propagation, semconv};
use crate::tools::CallSpan;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
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

/// The MCP server over a [`ToolHost`]: one per transport.
#[derive(Clone)]
pub struct McpServer {
    tools: Arc<ToolHost>,
    transport: Transport,
}

impl McpServer {
    pub fn new(tools: Arc<ToolHost>, transport: Transport) -> Self {
        McpServer { tools, transport }
    }

    /// The span of one `tools/call`, in the trace the client's `_meta` carries.
    fn call_span(
        &self,
        meta: Option<&RequestMetaObject>,
        context: &RequestContext<RoleServer>,
    ) -> OutsideCall {
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
        OutsideCall {
            parent: propagation::extract_fields(&fields),
            span: CallSpan {
                kind: SpanKind::Server,
                attributes,
                failure_type: Some(semconv::error_type::MCP_TOOL_ERROR),
            },
        }
    }
}

/// A tool as MCP lists it; `None` when its schema is not a JSON object (the
/// registry has already refused such a tool).
fn listed(definition: ToolDefinition) -> Option<Tool> {
    let schema: JsonObject = serde_json::from_str(&definition.parameters).ok()?;
    Some(Tool::new(definition.name, definition.description, schema))
}

impl ServerHandler for McpServer {
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
        let call = self.call_span(request.meta.as_ref(), &context);
        let arguments = serde_json::Value::Object(request.arguments.unwrap_or_default());
        let outcome = self
            .tools
            .call(request.name.into_owned(), arguments.to_string(), call)
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
