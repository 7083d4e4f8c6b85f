//! `glassbox mcp`: serves the plugins' tools to MCP clients, over stdio (what
//! Claude Desktop, Cursor, VS Code and the MCP Inspector launch) or, with
//! `--listen`, over Streamable HTTP, behind `glassbox serve`'s bearer tokens
//! when given. On stdio, stdout carries only protocol messages: logs go to stderr.

use super::{
    CacheArgs, LlmArgs, PluginArgs, SandboxArgs, TelemetryArgs, flush, plugin_paths, stop_signal,
    warn_unflushed,
};
use anyhow::{Context as _, bail};
use axum::response::IntoResponse;
use clap::Args;
use glassbox::HostOptions;
use glassbox::llm::LlmSettings;
use glassbox::manifest::Manifest;
use glassbox::mcp::{McpServer, ToolService, Transport};
use glassbox::runtime::{TelemetrySetup, ToolHost};
use glassbox::serve::access;
use glassbox::telemetry::TelemetryConfig;
use glassbox::tools::PluginSpec;
use rmcp::ServiceExt;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Largest request body `--listen` accepts.
const MAX_BODY: usize = 4 * 1024 * 1024;

#[derive(Args)]
pub(super) struct McpArgs {
    #[command(flatten)]
    plugins: PluginArgs,
    /// Serve the plugins of FILE (glassbox.toml), each under its own policy, with its model provider.
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    /// Serve Streamable HTTP on ADDR (path `/mcp`) instead of stdio.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// With --listen: accept only requests bearing a token in FILE (`glassbox token` makes them);
    /// required to listen beyond loopback.
    #[arg(long, value_name = "FILE", requires = "listen")]
    tokens: Option<PathBuf>,
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
    let (mut plugins, llm_settings) = match &args.manifest {
        Some(path) => {
            let manifest = Manifest::load(path)?;
            if !manifest.mcp_servers.is_empty() {
                tracing::warn!(
                    "{}: its [[mcp_servers]] are tool sources for its agents; `glassbox mcp` serves only plugins",
                    path.display()
                );
            }
            (manifest.plugins, manifest.llm)
        }
        None => (Vec::new(), LlmSettings::default()),
    };
    plugins.extend(
        plugin_paths(&args.plugins)?
            .into_iter()
            .map(PluginSpec::new),
    );
    if plugins.is_empty() {
        bail!("no plugins given: pass --plugins DIR, --tool FILE or --manifest FILE");
    }
    for plugin in &mut plugins {
        args.sandbox.grant(&mut plugin.policy);
    }
    let tokens = match &args.tokens {
        Some(path) => Some(Arc::new(access::Tokens::load(path)?)),
        None => None,
    };
    if let Some(addr) = args.listen
        && !addr.ip().is_loopback()
        && tokens.is_none()
    {
        bail!(
            "refusing to serve MCP on {addr} without tokens: anyone who can reach it could call the tools; give --tokens FILE"
        );
    }
    // The trace tree would go to stderr, which clients show as the server's log: off.
    let telemetry = TelemetryConfig::from_env(&args.telemetry.overrides(Some(false)))
        .map_err(anyhow::Error::msg)?;
    if telemetry.console.any() && args.listen.is_none() {
        bail!(
            "OTEL_*_EXPORTER=console prints to stdout, which carries the MCP protocol over stdio: use `otlp`, or serve with --listen"
        );
    }
    let (llm, description) = llm_settings.overlay(args.llm.settings()).build()?;
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
            // Against DNS rebinding: requests must name this server in `Host`,
            // and browsers may call only from this machine's own pages.
            let hosts = [
                "localhost".to_owned(),
                "127.0.0.1".into(),
                "::1".into(),
                addr.ip().to_string(),
            ];
            let config = StreamableHttpServerConfig::default()
                .with_max_request_body_bytes(MAX_BODY)
                .with_allowed_hosts(hosts)
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
            let mut router = axum::Router::new().nest_service("/mcp", service);
            if let Some(tokens) = tokens {
                router = router.layer(axum::middleware::from_fn(move |request, next| {
                    bearer_only(tokens.clone(), request, next)
                }));
            }
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

/// Lets through only requests whose `Authorization: Bearer` token is in `tokens`.
async fn bearer_only(
    tokens: Arc<access::Tokens>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    match presented.and_then(|token| tokens.check(token)) {
        Some(_) => next.run(request).await,
        None => (
            http::StatusCode::UNAUTHORIZED,
            [(http::header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token from the server's tokens file is required\n",
        )
            .into_response(),
    }
}
