//! The MCP capability, both ways, through the official Rust SDK (`rmcp`):
//! the host's tools for MCP clients ([`server`], what `glassbox mcp` serves),
//! and MCP servers' tools for agents ([`client`], the manifest's
//! `[[mcp_servers]]`), each call traced with the MCP conventions.

pub mod client;
pub mod server;

pub use server::{McpServer, ToolService, Transport};
