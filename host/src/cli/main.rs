//! The `glassbox` command: a thin layer over the library that turns flags and
//! environment into a runtime, runs it, flushes telemetry and maps the outcome
//! to an exit code.

mod mcp;
mod new_project;

use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use glassbox::llm::{LlmSettings, ProviderKind, ProviderSettings};
use glassbox::manifest::{AgentDecl, AgentSpec, Manifest, parse_memory, parse_size, parse_timeout};
use glassbox::sandbox::{Budget, DirGrant, HostPattern, Policy};
use glassbox::serve::access::{self, Access};
use glassbox::serve::{ServeOptions, Stopped};
use glassbox::telemetry::{
    OtlpProtocol, TelemetryConfig, TelemetryError, TelemetryOverrides, propagation,
};
use glassbox::tools::PluginSpec;
use glassbox::{
    EngineConfig, Host, HostOptions, Loader, PoolingConfig, RunRequest, Telemetry, TelemetrySetup,
};
use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// mimalloc, not the system allocator: spans are built on the runs' threads
/// and freed on the export thread, and glibc's malloc spends a sixth of a
/// busy host's CPU on such cross-thread frees (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Exit codes beyond 0 (success).
const EXIT_RUN_FAILED: u8 = 1;
const EXIT_USAGE: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;
const EXIT_TERMINATED: u8 = 143;

/// Longest input read from stdin: more than any model takes in one request.
const MAX_STDIN_INPUT: u64 = 16 * 1024 * 1024;

#[derive(Parser)]
#[command(
    name = "glassbox",
    version,
    about = "Run AI agents and their tools as sandboxed, traced WebAssembly components"
)]
#[command(
    after_help = "Example:\n  glassbox run react_agent.wasm --plugins plugins/ \\\n      --input \"Which is warmer right now, Paris or Lisbon?\"\n\nExit codes: 0 success, 1 the agent failed, 2 bad usage or a component that cannot load, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent component once and print its answer.
    #[command(
        after_help = "Example:\n  glassbox run react_agent.wasm --plugins plugins/ --input \"Which is warmer, Paris or Lisbon?\"\n  glassbox run --manifest glassbox.toml --input \"Summarise /docs\"\n  OPENAI_API_KEY=... glassbox run react_agent.wasm --tool weather.wasm --model gpt-4o-mini < question.txt\n  ANTHROPIC_API_KEY=... glassbox run agent.wasm --llm anthropic --record run.jsonl --input \"...\"\n  glassbox run agent.wasm --replay run.jsonl --input \"...\"\n  glassbox run agent.wasm --allow-dir ./docs:/docs --allow-host api.example.com --timeout 30s --max-llm-calls 10\n  OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:6006 OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf glassbox run ..."
    )]
    Run(Box<RunArgs>),
    /// Serve the manifest's agents over HTTP (JSON, or Server-Sent Events), until SIGTERM or Ctrl-C.
    #[command(
        after_help = "Example:\n  glassbox serve --manifest glassbox.toml --listen 127.0.0.1:8080 --prometheus\n  curl -s localhost:8080/v1/agents\n  curl -s localhost:8080/v1/agents/react-agent/runs -H 'content-type: application/json' \\\n      -d '{\"input\": \"Which is warmer, Paris or Lisbon?\"}'"
    )]
    Serve(Box<ServeArgs>),
    /// Make a bearer token for `glassbox serve --tokens`: the token on stdout, its tokens-file line on stderr.
    #[command(after_help = "Example:\n  glassbox token --agents react-agent >token.txt 2>>tokens")]
    Token {
        /// The agents the token may run, separated by commas (default: all).
        #[arg(long, value_name = "NAMES", default_value = "*")]
        agents: String,
    },
    /// Write a ready project for an agent or a tool, in Rust, Python or JavaScript.
    #[command(
        after_help = "Example:\n  glassbox new tool word-count --lang python\n  cd word-count && ./test.sh"
    )]
    New {
        kind: new_project::Kind,
        /// The project's name: lowercase letters, digits and `-`.
        name: String,
        #[arg(long, value_enum, default_value = "rust")]
        lang: new_project::Language,
        /// Where to write it (default: ./NAME); it must not exist.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The Glassbox checkout whose SDKs the project uses (default: the one this binary was built from).
        #[arg(long, value_name = "DIR")]
        sdk: Option<PathBuf>,
    },
    /// Serve the plugins' tools to MCP clients, over stdio or (--listen) Streamable HTTP.
    #[command(
        after_help = "Example (a client's server config):\n  {\"command\": \"glassbox\", \"args\": [\"mcp\", \"--plugins\", \"/path/to/plugins\"]}"
    )]
    Mcp(Box<mcp::McpArgs>),
    /// List the tools the given plugins provide, with their parameter schemas.
    #[command(after_help = "Example:\n  glassbox tools --plugins plugins/")]
    Tools {
        #[command(flatten)]
        plugins: PluginArgs,
        #[command(flatten)]
        cache: CacheArgs,
    },
}

/// Where compiled components are kept between runs.
#[derive(Args)]
struct CacheArgs {
    /// Keep compiled components in DIR (default: the user's cache directory, ~/.cache/glassbox/components).
    #[arg(long, env = "GLASSBOX_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile every component afresh and cache nothing (wins over --cache-dir).
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            return None;
        }
        self.cache_dir
            .clone()
            .or_else(EngineConfig::default_cache_dir)
    }
}

#[derive(Args)]
struct PluginArgs {
    /// Load every `*.wasm` in DIR as a tool plugin.
    #[arg(long, value_name = "DIR")]
    plugins: Option<PathBuf>,
    /// Load FILE as a tool plugin (repeatable).
    #[arg(long = "tool", value_name = "FILE")]
    tools: Vec<PathBuf>,
}

/// What `run` and `serve` both load: the components, their grants, the model and telemetry.
#[derive(Args)]
struct HostArgs {
    /// The agent component (`agent` world), unless the manifest names it.
    #[arg(required_unless_present = "manifest")]
    agent: Option<PathBuf>,
    /// Read the agents, plugins, model provider and per-component policies from FILE (glassbox.toml).
    #[arg(long, value_name = "FILE")]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    plugins: PluginArgs,
    #[command(flatten)]
    cache: CacheArgs,
    #[command(flatten)]
    sandbox: SandboxArgs,
    /// Set an environment variable inside the agent's sandbox (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    env: Vec<(String, String)>,
    #[command(flatten)]
    llm: LlmArgs,
    #[command(flatten)]
    telemetry: TelemetryArgs,
}

#[derive(Args)]
#[command(next_help_heading = "Telemetry")]
struct TelemetryArgs {
    /// OTLP endpoint, overriding OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, value_name = "URL")]
    otlp_endpoint: Option<String>,
    /// OTLP protocol, overriding OTEL_EXPORTER_OTLP_PROTOCOL (default http/protobuf).
    #[arg(long, value_name = "grpc|http/protobuf")]
    otlp_protocol: Option<OtlpProtocol>,
    /// Record message content on spans (else OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT), secrets redacted.
    #[arg(long)]
    capture_content: bool,
    /// Longest captured value in bytes (else OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT, else 16384).
    #[arg(long, value_name = "BYTES")]
    content_max_length: Option<usize>,
    /// Also redact matches of REGEX from captured content (repeatable).
    #[arg(long, value_name = "REGEX")]
    redact: Vec<String>,
}

impl TelemetryArgs {
    fn overrides(&self, trace_tree: Option<bool>) -> TelemetryOverrides {
        TelemetryOverrides {
            endpoint: self.otlp_endpoint.clone(),
            protocol: self.otlp_protocol,
            trace_tree,
            capture_content: self.capture_content.then_some(true),
            content_max_length: self.content_max_length,
            redact: self.redact.clone(),
        }
    }
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    host: HostArgs,
    /// What to ask the agent; read from stdin when absent.
    #[arg(long, short)]
    input: Option<String>,
    /// Conversation this run belongs to (`gen_ai.conversation.id`).
    #[arg(long, value_name = "ID")]
    conversation_id: Option<String>,
    /// Print the trace tree on stderr (the default when no OTLP endpoint is set).
    #[arg(long, overrides_with = "no_trace_tree")]
    trace_tree: bool,
    /// Do not print the trace tree.
    #[arg(long)]
    no_trace_tree: bool,
    /// W3C traceparent of a trace to join (else the TRACEPARENT variable).
    #[arg(long, env = "TRACEPARENT", value_name = "TRACEPARENT")]
    traceparent: Option<String>,
    /// W3C baggage to carry with the run, with --traceparent (else the BAGGAGE variable).
    #[arg(
        long,
        env = "BAGGAGE",
        value_name = "BAGGAGE",
        requires = "traceparent"
    )]
    baggage: Option<String>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    host: HostArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDRESS:PORT")]
    listen: std::net::SocketAddr,
    /// On SIGTERM or Ctrl-C, how long runs in flight may take to finish.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_timeout)]
    drain_timeout: Duration,
    /// Serve the metrics for a Prometheus scrape at GET /metrics, beside any OTLP export.
    #[arg(long)]
    prometheus: bool,
    /// Runs at once: each holds an agent instance, and one more for each local agent it may call
    /// in a chain. Past this, runs are refused with 503 and Retry-After.
    #[arg(long, default_value_t = 256, value_name = "N")]
    instances: u32,
    /// Tool calls at once, shared by all runs: a call waits for a free one within its time limit.
    #[arg(long, default_value_t = 256, value_name = "N")]
    tool_instances: u32,
    /// Accept only the bearer tokens in FILE (lines `HASH AGENTS`; `glassbox token` makes them).
    #[arg(long, env = "GLASSBOX_TOKENS", value_name = "FILE")]
    tokens: Option<PathBuf>,
    /// Serve a non-loopback address without tokens: anyone who reaches it may run the agents.
    #[arg(long)]
    insecure: bool,
    /// Serve HTTPS with the PEM certificate chain in FILE (with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// The largest request body accepted; larger ones get 413.
    #[arg(long, default_value = "2 MiB", value_name = "SIZE", value_parser = parse_size)]
    max_body: u64,
    /// Runs one token may have in flight at once; past it, 429 and Retry-After.
    #[arg(long, value_name = "N", requires = "tokens")]
    runs_per_token: Option<u32>,
}

/// The default model provider, prices, and record or replay.
#[derive(Args)]
#[command(next_help_heading = "Model")]
struct LlmArgs {
    /// Provider: openai, anthropic, ollama, vllm or scripted. By default openai when
    /// OPENAI_BASE_URL or OPENAI_API_KEY is set, else anthropic when ANTHROPIC_API_KEY is, else scripted.
    #[arg(long = "llm", value_name = "PROVIDER")]
    kind: Option<ProviderKind>,
    /// Default model (else OPENAI_MODEL or ANTHROPIC_MODEL, else the provider's own default).
    #[arg(long)]
    model: Option<String>,
    /// Base URL of the provider's API (else OPENAI_BASE_URL or ANTHROPIC_BASE_URL).
    #[arg(long, value_name = "URL")]
    llm_base_url: Option<String>,
    /// Script for the scripted provider (TOML; the bundled demo script by default).
    #[arg(long, value_name = "FILE")]
    script: Option<PathBuf>,
    /// Model prices overriding the bundled table (TOML, USD per million tokens).
    #[arg(long, value_name = "FILE")]
    prices: Option<PathBuf>,
    /// Write every model call of the run (request and answer) to FILE, a JSON Lines cassette.
    #[arg(long, value_name = "FILE", conflicts_with = "replay")]
    record: Option<PathBuf>,
    /// Answer every model call from the cassette FILE, in order, with no network.
    #[arg(long, value_name = "FILE")]
    replay: Option<PathBuf>,
}

impl LlmArgs {
    fn settings(&self) -> LlmSettings {
        LlmSettings {
            default: ProviderSettings {
                kind: self.kind,
                model: self.model.clone(),
                base_url: self.llm_base_url.clone(),
                script: self.script.clone(),
                ..ProviderSettings::default()
            },
            price_files: self.prices.iter().cloned().collect(),
            record: self.record.clone(),
            replay: self.replay.clone(),
            ..LlmSettings::default()
        }
    }
}

/// Grants and limits given on the command line. They apply to every agent
/// and plugin; a manifest grants per component.
#[derive(Args)]
#[command(
    next_help_heading = "Sandbox (nothing is granted by default; flags apply to every agent and plugin)"
)]
struct SandboxArgs {
    /// Mount a host directory, read-only unless `:rw` (repeatable).
    #[arg(long = "allow-dir", value_name = "HOST[:GUEST][:ro|rw]", value_parser = DirGrant::parse)]
    dirs: Vec<DirGrant>,
    /// Allow HTTP requests to a host: `api.example.com`, `*.example.com`, `https://host:8443` (repeatable).
    #[arg(long = "allow-host", value_name = "HOST")]
    hosts: Vec<HostPattern>,
    /// Pass the host's environment variable NAME through (repeatable).
    #[arg(long = "allow-env", value_name = "NAME")]
    pass_env: Vec<String>,
    /// Memory limit per instance, such as `128MiB` (default 256 MiB).
    #[arg(long, value_name = "SIZE", value_parser = parse_memory)]
    memory: Option<u64>,
    /// Time limit per agent run and per tool call, such as `30s` (default 5m).
    #[arg(long, value_name = "DURATION", value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Budget: the most model calls the run may make.
    #[arg(long, value_name = "N")]
    max_llm_calls: Option<u32>,
    /// Budget: the most tool calls the run may make.
    #[arg(long, value_name = "N")]
    max_tool_calls: Option<u32>,
    /// Budget: the most tokens (input plus output) the run may use.
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,
    /// Budget: the most the run may spend in US dollars, on models with a known price.
    #[arg(long, value_name = "USD")]
    max_cost: Option<f64>,
}

impl SandboxArgs {
    fn grant(&self, policy: &mut Policy) {
        policy.dirs.extend(self.dirs.iter().cloned());
        policy.hosts.extend(self.hosts.iter().cloned());
        for name in &self.pass_env {
            policy.pass_env(name);
        }
        if let Some(memory) = self.memory {
            policy.limits.memory = memory;
        }
        if let Some(timeout) = self.timeout {
            policy.limits.timeout = timeout;
        }
    }

    fn limit(&self, budget: &mut Budget) {
        budget.llm_calls = self.max_llm_calls.or(budget.llm_calls);
        budget.tool_calls = self.max_tool_calls.or(budget.tool_calls);
        budget.tokens = self.max_tokens.or(budget.tokens);
        budget.cost_usd = self.max_cost.or(budget.cost_usd);
    }
}

fn parse_env(value: &str) -> Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("`{value}` is not KEY=VALUE")),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(
                EXIT_USAGE,
                &anyhow::Error::new(error).context("cannot start the async runtime"),
            );
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run(*args).await,
            Command::Serve(args) => serve(*args).await.unwrap_or_else(|e| fail(EXIT_USAGE, &e)),
            Command::Token { agents } => {
                make_token(&agents).unwrap_or_else(|e| fail(EXIT_USAGE, &e))
            }
            Command::New {
                kind,
                name,
                lang,
                dir,
                sdk,
            } => match new_project::create(kind, lang, &name, dir.as_deref(), sdk.as_deref()) {
                Ok(dir) => {
                    eprintln!(
                        "wrote {}: see its README.md, and run its test.sh",
                        dir.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(error) => fail(EXIT_USAGE, &error),
            },
            Command::Mcp(args) => mcp::serve(*args)
                .await
                .unwrap_or_else(|e| fail(EXIT_USAGE, &e)),
            Command::Tools { plugins, cache } => list_tools(plugins, cache)
                .await
                .unwrap_or_else(|e| fail(EXIT_USAGE, &e)),
        }
    });
    // Everything is flushed by now. A guest stopped inside a blocking host
    // call (opening a FIFO no one writes to, say) leaves a thread that may
    // never return; dropping the runtime would wait for it forever.
    runtime.shutdown_background();
    code
}

fn init_logging() {
    use tracing_subscriber::prelude::*;
    let filter = tracing_subscriber::EnvFilter::try_from_env("GLASSBOX_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            // The OTLP exporter warns at every failed export; the host reports
            // span export failures itself, once per outage. The MCP SDK logs
            // every message and quotes what clients send in its warnings; its
            // transport worker logs, at a time of its own, each failure the
            // host reports as an error of the load or of the tool call.
            "info,opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry-otlp=error,opentelemetry_otlp=error,rmcp=error,rmcp::transport::worker=off",
        )
    });
    // The baggage propagator warns with a malformed header quoted whole: what
    // a client sends must not reach the host's log.
    let no_client_text = tracing_subscriber::filter::filter_fn(|metadata| {
        !metadata.name().starts_with("BaggagePropagator.")
    });
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .without_time()
        .with_filter(filter)
        .with_filter(no_client_text);
    tracing_subscriber::registry().with(log).init();
}

fn fail(code: u8, error: &anyhow::Error) -> ExitCode {
    eprintln!("glassbox: error: {}", one_line(error));
    ExitCode::from(code)
}

/// The error and its causes on one line, made safe for a terminal.
fn one_line(error: &anyhow::Error) -> String {
    // Errors carry guests' messages: nothing from a guest reaches the terminal raw.
    glassbox::printable(&glassbox::cause_chain(error.as_ref())).into_owned()
}

async fn run(args: RunArgs) -> ExitCode {
    let (host, request) = match prepare_run(&args).await {
        Ok(prepared) => prepared,
        Err(error) => return fail(EXIT_USAGE, &error),
    };
    let mut stop = std::pin::pin!(stop_signal());
    let outcome = tokio::select! {
        outcome = host.run(request) => Ok(outcome),
        stop = &mut stop => Err(stop),
    };
    host.close_tool_servers().await;
    let flushing = flush(host.telemetry().clone());
    let (flush_result, tree) = match &outcome {
        // Stopped already: a second signal ends the process (see `stop_signal`).
        Err(_) => flushing.await,
        // A first signal while exporting: the person wants out now.
        Ok(result) => tokio::select! {
            flushed = flushing => flushed,
            stop = &mut stop => {
                if let Ok(answer) = result {
                    println!("{answer}");
                }
                eprintln!("glassbox: {} while exporting telemetry; exiting without waiting", stop.past());
                std::process::exit(i32::from(stop.exit_code()));
            }
        },
    };
    if let Some(tree) = tree.filter(|t| !t.is_empty()) {
        eprintln!("\n{}", tree.trim_end());
    }
    let flushed = flush_result.is_ok();
    warn_unflushed(flush_result);
    match outcome {
        Ok(Ok(answer)) => {
            // Raw when piped, for programs; escaped for a person's terminal.
            if std::io::stdout().is_terminal() {
                println!("{}", glassbox::printable(&answer));
            } else {
                println!("{answer}");
            }
            ExitCode::SUCCESS
        }
        Ok(Err(error)) => fail(EXIT_RUN_FAILED, &error.into()),
        Err(stop) => {
            let trace = if flushed {
                "the trace so far was exported"
            } else {
                "the trace was not all exported (see above)"
            };
            eprintln!("glassbox: {}; {trace}", stop.past());
            ExitCode::from(stop.exit_code())
        }
    }
}

/// Exports what telemetry holds, off the async workers (exporting blocks),
/// and returns the outcome with the trace tree, if one was kept.
async fn flush(telemetry: Arc<Telemetry>) -> (Result<(), TelemetryError>, Option<String>) {
    tokio::task::spawn_blocking(move || {
        let result = telemetry.shutdown();
        (result, telemetry.trace_tree())
    })
    .await
    .unwrap_or_else(|e| {
        (
            Err(TelemetryError::Flush(vec![("telemetry", e.to_string())])),
            None,
        )
    })
}

fn warn_unflushed(result: Result<(), TelemetryError>) {
    if let Err(error) = result {
        let hint = if error.traces_exported() {
            " (a backend that takes only traces, such as Phoenix, needs OTEL_METRICS_EXPORTER=none and OTEL_LOGS_EXPORTER=none)"
        } else {
            ""
        };
        eprintln!("glassbox: warning: {error}{hint}");
    }
}

fn make_token(agents: &str) -> anyhow::Result<ExitCode> {
    let (token, hash) = access::new_token().context("cannot make a random token")?;
    println!("{token}");
    eprintln!("{hash} {agents}");
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(certificate), Some(key)) => {
            Some(glassbox::serve::tls::server_config(certificate, key)?)
        }
        _ => None,
    };
    let access = match &args.tokens {
        Some(path) => {
            let tokens = access::Tokens::load(path)?;
            if tls.is_none() && !args.listen.ip().is_loopback() {
                tracing::warn!(
                    "serving {} with tokens but without TLS: tokens cross the network in clear; give --tls-cert and --tls-key unless a proxy in front terminates TLS",
                    args.listen
                );
            }
            Access::Tokens(match args.runs_per_token {
                Some(runs) => tokens.with_runs_per_token(runs),
                None => tokens,
            })
        }
        None if !args.listen.ip().is_loopback() && !args.insecure => bail!(
            "refusing to serve {} without tokens: anyone who can reach it could run the agents; give --tokens FILE, or --insecure if a proxy in front authenticates",
            args.listen
        ),
        None => {
            if !args.listen.ip().is_loopback() {
                tracing::warn!(
                    "serving {} without tokens (--insecure): anyone who can reach it may run the agents",
                    args.listen
                );
            }
            Access::Open
        }
    };
    let overrides = args.host.telemetry.overrides(Some(false));
    let mut telemetry_config = TelemetryConfig::from_env(&overrides).map_err(anyhow::Error::msg)?;
    telemetry_config.prometheus = args.prometheus;
    // Every client holds a descriptor: take all the system allows this process.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!("up to {limit} open files"),
        Err(error) => tracing::warn!("cannot raise the open-file limit: {error}"),
    }
    let slots = HostOptions {
        agents: Some(args.instances),
        tool_calls: Some(args.tool_instances),
        ..HostOptions::default()
    };
    let host = prepare(&args.host, telemetry_config, slots).await?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let served: Vec<&str> = host.agents().locals().map(|(name, _)| name).collect();
    tracing::info!(
        "serving {} on {}://{}",
        served.join(", "),
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr().unwrap_or(args.listen)
    );
    let host = Arc::new(host);
    let stop = stop_signal();
    let options = ServeOptions {
        access,
        tls,
        drain: args.drain_timeout,
        max_body: usize::try_from(args.max_body).unwrap_or(usize::MAX),
    };
    let stopped = glassbox::serve::serve(
        host.clone(),
        listener,
        async {
            let stop = stop.await;
            tracing::info!("{}: no new runs; waiting for those in flight", stop.past());
        },
        options,
    )
    .await
    .context("the server failed")?;
    match stopped {
        Stopped::Drained => tracing::info!("stopped; every run finished"),
        Stopped::Abandoned { runs } => tracing::warn!(
            "stopped; {runs} runs were still going after {} and were cancelled",
            humantime::format_duration(args.drain_timeout)
        ),
    }
    host.close_tool_servers().await;
    warn_unflushed(flush(host.telemetry().clone()).await.0);
    Ok(ExitCode::SUCCESS)
}

/// A request to stop: Ctrl-C, or SIGTERM (what orchestrators, `timeout` and CI send).
#[derive(Clone, Copy)]
enum Stop {
    Interrupt,
    Terminate,
}

impl Stop {
    fn past(self) -> &'static str {
        match self {
            Stop::Interrupt => "interrupted",
            Stop::Terminate => "terminated",
        }
    }

    fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => EXIT_INTERRUPTED,
            Stop::Terminate => EXIT_TERMINATED,
        }
    }
}

/// Completes at the first Ctrl-C or SIGTERM; a second one then ends the
/// process at once, whatever it is still waiting for (a hung collector, say).
/// The handlers are installed on the call, not on the first poll, so a signal
/// that comes before the future is first polled still counts.
fn stop_signal() -> impl std::future::Future<Output = Stop> {
    #[cfg(unix)]
    let signals = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    };
    async move {
        #[cfg(unix)]
        match signals {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                let stop = tokio::select! {
                    _ = interrupt.recv() => Stop::Interrupt,
                    _ = terminate.recv() => Stop::Terminate,
                };
                tokio::spawn(async move {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                    eprintln!("glassbox: {} again; exiting without waiting", stop.past());
                    std::process::exit(i32::from(stop.exit_code()));
                });
                stop
            }
            (Err(error), _) | (_, Err(error)) => {
                tracing::warn!("cannot watch for SIGTERM: {error}");
                let _ = tokio::signal::ctrl_c().await;
                Stop::Interrupt
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Stop::Interrupt
        }
    }
}

/// Everything that can fail before the agent starts: input, components, provider, telemetry.
async fn prepare_run(args: &RunArgs) -> anyhow::Result<(Host, RunRequest)> {
    let trace_tree = match (args.trace_tree, args.no_trace_tree) {
        (_, true) => Some(false),
        (true, _) => Some(true),
        _ => None,
    };
    let telemetry_config = TelemetryConfig::from_env(&args.host.telemetry.overrides(trace_tree))
        .map_err(anyhow::Error::msg)?;
    let parent = match &args.traceparent {
        Some(traceparent) => {
            propagation::parse(traceparent, args.baggage.as_deref()).map_err(anyhow::Error::msg)?
        }
        None => opentelemetry::Context::new(),
    };
    let input = read_input(args.input.as_deref())?;
    let host = prepare(&args.host, telemetry_config, HostOptions::default()).await?;
    let mut request = host.request(input);
    request.conversation_id = args.conversation_id.clone();
    request.parent = parent;
    Ok((host, request))
}

/// Loads what `args` name, the command line's grants applied to the
/// manifest's, into a host with the instance slots of `slots` (by default,
/// enough for one run whose agent calls nest as deep as allowed).
async fn prepare(
    args: &HostArgs,
    telemetry_config: TelemetryConfig,
    slots: HostOptions,
) -> anyhow::Result<Host> {
    let mut manifest = match &args.manifest {
        Some(path) => {
            let manifest = Manifest::load(path)?;
            if let Some(agent) = &args.agent {
                bail!(
                    "the agent is named twice: {} on the command line and {} in {}",
                    agent.display(),
                    manifest.agent.path.display(),
                    path.display()
                );
            }
            manifest
        }
        None => Manifest {
            agent: AgentSpec {
                name: None,
                description: None,
                workflow: None,
                path: args
                    .agent
                    .clone()
                    .context("no agent: give its component file, or --manifest FILE")?,
                policy: Policy::default(),
                budget: Budget::default(),
            },
            plugins: Vec::new(),
            mcp_servers: Vec::new(),
            agents: Vec::new(),
            max_agent_depth: None,
            llm: LlmSettings::default(),
        },
    };
    manifest.plugins.extend(
        plugin_paths(&args.plugins)?
            .into_iter()
            .map(PluginSpec::new),
    );
    manifest.agent.policy.env.extend(args.env.iter().cloned());
    args.sandbox.grant(&mut manifest.agent.policy);
    for plugin in &mut manifest.plugins {
        args.sandbox.grant(&mut plugin.policy);
    }
    for decl in &mut manifest.agents {
        if let AgentDecl::Local(spec) = decl {
            args.sandbox.grant(&mut spec.policy);
        }
    }
    args.sandbox.limit(&mut manifest.agent.budget);
    manifest.llm = manifest.llm.overlay(args.llm.settings());
    let options = HostOptions {
        cache_dir: args.cache.dir(),
        telemetry: TelemetrySetup::Config(telemetry_config),
        ..slots
    };
    Ok(Host::from_manifest(&manifest, options).await?)
}

fn read_input(input: Option<&str>) -> anyhow::Result<String> {
    if let Some(input) = input {
        return Ok(input.to_owned());
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        bail!("no input: pass --input TEXT or pipe it on stdin");
    }
    let mut text = String::new();
    stdin
        .take(MAX_STDIN_INPUT + 1)
        .read_to_string(&mut text)
        .context("cannot read the input from stdin")?;
    if text.len() as u64 > MAX_STDIN_INPUT {
        bail!("the input on stdin is over the limit of {MAX_STDIN_INPUT} bytes");
    }
    if text.trim().is_empty() {
        bail!("no input: stdin was empty");
    }
    Ok(text)
}

fn plugin_paths(args: &PluginArgs) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    if let Some(dir) = &args.plugins {
        paths.extend(glassbox::tools::plugin_files(dir)?);
    }
    paths.extend(args.tools.iter().cloned());
    Ok(paths)
}

async fn list_tools(args: PluginArgs, cache: CacheArgs) -> anyhow::Result<ExitCode> {
    let paths = plugin_paths(&args)?;
    if paths.is_empty() {
        bail!("no plugins given: pass --plugins DIR or --tool FILE");
    }
    let plugins: Vec<PluginSpec> = paths.into_iter().map(PluginSpec::new).collect();
    // The engine `run` builds for these plugins, so they load under the same
    // limits and share its compiled entries.
    let loader = Loader::with_config(&EngineConfig {
        pooling: Some(PoolingConfig::new(1)),
        cache_dir: cache.dir(),
        ..EngineConfig::default()
    })?;
    let registry = loader.load_tools(&plugins).await?;
    for tool in registry.definitions() {
        let schema: serde_json::Value = serde_json::from_str(&tool.parameters)?;
        let provider = registry
            .provider_of(&tool.name)
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        println!(
            "{}  ({provider})\n  {}\n  parameters: {}\n",
            tool.name,
            tool.description,
            serde_json::to_string_pretty(&schema)?.replace('\n', "\n  ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
