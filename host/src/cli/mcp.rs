//! `glassbox mcp`: serves the plugins' tools to MCP clients, over stdio (what
//! Claude Desktop, Cursor, VS Code and the MCP Inspector launch) or, with
//! `--listen`, over Streamable HTTP. On stdio, stdout carries only protocol
//! messages: logs go to stderr.

use super::{
    CacheArgs, LlmArgs, PluginArgs, SandboxArgs, TelemetryArgs, flush, plugin_paths, stop_signal,
    warn_unflushed,
};
use anyhow::{Context as _, bail};
use clap::Args;
use glassbox::HostOptions;
use glassbox::llm::LlmSettings;
use glassbox::mcp::{McpServer, ToolService, Transport};
use glassbox::runtime::{TelemetrySetup, ToolHost};
use glassbox::telemetry::TelemetryConfig;
use glassbox::tools::PluginSpec;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

/// Largest request body `--listen` accepts.
const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Args)]
pub(super) struct McpArgs {
    #[command(flatten)]
    plugins: PluginArgs,
    /// Serve Streamable HTTP on ADDR (path `/mcp`), loopback only, instead of stdio.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Tool calls running at once; more wait for a free instance.
    #[arg(long, value_name = "N", default_value_t = 4)]
    tool_instances: u32,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    sandbox: SandboxArgs,
    #[command(flatten)]
    llm: LlmArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

pub(super) async fn serve(args: McpArgs) -> anyhow::Result<ExitCode> {
    let paths = plugin_paths(&args.plugins)?;
    if paths.is_empty() {
        bail!("no plugins given: pass --plugins DIR or --tool FILE");
    }
    if let Some(addr) = args.listen
        && !addr.ip().is_loopback()
    {
        // The MCP endpoint has no authentication yet: only this machine may reach it.
        bail!("refusing to serve MCP on {addr}: only a loopback address is allowed");
    }
    let plugins: Vec<PluginSpec> = paths
        .into_iter()
        .map(|path| {
            let mut plugin = PluginSpec::new(path);
            args.sandbox.grant(&mut plugin.policy);
            plugin
        })
        .collect();
    // The trace tree would go to stderr, which clients show as the server's log: off.
    let telemetry = TelemetryConfig::from_env(&args.telemetry.overrides(Some(false)))
        .map_err(anyhow::Error::msg)?;
    let (llm, description) = LlmSettings::default()
        .overlay(args.llm.settings())
        .build()?;
    tracing::info!("LLM provider for the tools: {description}");
    let options = HostOptions {
        tool_calls: Some(args.tool_instances),
        cache_dir: args.cache.dir(),
        telemetry: TelemetrySetup::Config(telemetry),
        ..HostOptions::default()
    };
    let tools = Arc::new(ToolHost::load(&plugins, llm, options).await?);
    let names: Vec<String> = tools.definitions().into_iter().map(|t| t.name).collect();
    let served = match args.listen {
        None => {
            tracing::info!("serving {} over MCP on stdio", names.join(", "));
            let server = McpServer::new(tools.clone(), Transport::Stdio)
                .serve(rmcp::transport::stdio())
                .await
                .context("the MCP client did not start a session")?;
            tokio::select! {
                ended = server.waiting() => ended.map(drop).context("the MCP session failed"),
                _ = stop_signal() => Ok(()),
            }
        }
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr}"))?;
            let addr = listener.local_addr().unwrap_or(addr);
            tracing::info!("serving {} over MCP on http://{addr}/mcp", names.join(", "));
            let per_session = tools.clone();
            let config = StreamableHttpServerConfig::default()
                .with_max_request_body_bytes(MAX_BODY)
                // Browsers may only call from this machine's own pages (DNS rebinding).
                .with_allowed_origins([
                    "http://localhost:*",
                    "http://127.0.0.1:*",
                    "http://[::1]:*",
                ]);
            let service = StreamableHttpService::new(
                move || Ok(McpServer::new(per_session.clone(), Transport::Http)),
                Arc::new(LocalSessionManager::default()),
                config,
            );
            let router = axum::Router::new().nest_service("/mcp", service);
            axum::serve(listener, router)
                .with_graceful_shutdown(async {
                    stop_signal().await;
                })
                .await
                .context("the MCP HTTP server failed")
        }
    };
    let (flushed, _) = flush(tools.telemetry().clone()).await;
    warn_unflushed(flushed);
    served.map(|()| ExitCode::SUCCESS)
}
