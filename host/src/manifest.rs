//! The `glassbox.toml` manifest: the agent, its plugins, the MCP servers whose
//! tools it may use, the agents it may call (components, or agents served by
//! other hosts), the model provider,
//! and per component what it is granted and how much it may use. Everything
//! is checked when the file is read (unknown keys, bad values, directories
//! that do not exist), and each error names the file, line and column.
//! Relative paths are relative to the manifest's directory.

use crate::agents::{AgentGrant, RemoteAgent};
use crate::files::{MAX_SETTINGS_FILE, read_text_bounded};
use crate::llm::{LlmSettings, ModelGrant, Price, Prices, ProviderKind, ProviderSettings};
use crate::mcp::client::{McpEndpoint, McpServerSpec};
use crate::sandbox::{Budget, DirGrant, HostPattern, HttpCredential, Limits, Policy};
use crate::tools::{InstanceScope, PluginSpec, plugin_files};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// A manifest that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{}: cannot read: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Invalid {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
}

/// An agent component, under its policy and budget.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    /// The name other agents and callers use; by default, the one it describes itself with.
    pub name: Option<String>,
    /// What callers are told it does; by default, its own description.
    pub description: Option<String>,
    /// The workflow each run of this agent is (an `invoke_workflow` span over it).
    pub workflow: Option<String>,
    pub path: PathBuf,
    pub policy: Policy,
    pub budget: Budget,
}

/// An agent another agent may call: a component, or an agent on another host.
#[derive(Clone, Debug)]
pub enum AgentDecl {
    Local(AgentSpec),
    Remote(RemoteAgent),
}

/// A checked manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub agent: AgentSpec,
    /// One entry per plugin file; a directory in the manifest becomes its `*.wasm` files.
    pub plugins: Vec<PluginSpec>,
    /// `[[mcp_servers]]`: MCP servers whose tools join the plugins'.
    pub mcp_servers: Vec<McpServerSpec>,
    /// `[[agents]]`: the agents besides `[agent]`.
    pub agents: Vec<AgentDecl>,
    /// How deep agent calls may nest (default [`crate::agents::DEFAULT_MAX_DEPTH`]).
    pub max_agent_depth: Option<u32>,
    pub llm: LlmSettings,
}

impl Manifest {
    /// The limits of every component, for sizing an engine's pool.
    pub fn limits(&self) -> impl Iterator<Item = &Limits> {
        let agents = self.agents.iter().filter_map(|decl| match decl {
            AgentDecl::Local(spec) => Some(&spec.policy.limits),
            AgentDecl::Remote(_) => None,
        });
        std::iter::once(&self.agent.policy.limits)
            .chain(self.plugins.iter().map(|plugin| &plugin.policy.limits))
            .chain(agents)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    max_agent_depth: Option<Spanned<u32>>,
    agent: Spanned<ComponentSection>,
    #[serde(default)]
    plugins: Vec<Spanned<ComponentSection>>,
    #[serde(default)]
    mcp_servers: Vec<Spanned<McpServerSection>>,
    #[serde(default)]
    agents: Vec<Spanned<ComponentSection>>,
    #[serde(default)]
    llm: LlmSection,
}

/// `[agent]`, each of `[[plugins]]` and each of `[[agents]]`. Keys that
/// belong to only some of them are checked after reading.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentSection {
    /// Agents only.
    name: Option<Spanned<String>>,
    /// Required, except for a remote agent.
    path: Option<Spanned<PathBuf>>,
    /// `[[agents]]` only: the base URL of the Glassbox host serving the agent.
    url: Option<Spanned<String>>,
    /// Agents only: what callers are told the agent does.
    description: Option<String>,
    /// Agents only: the agents this one may call, by name.
    #[serde(default)]
    allow_agents: Vec<String>,
    /// Local agents only: the workflow each run is.
    workflow: Option<String>,
    /// Variables set to these values in the component.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Host variables passed through by name.
    #[serde(default)]
    allow_env: Vec<String>,
    #[serde(default)]
    allow_dirs: Vec<Spanned<DirSection>>,
    #[serde(default)]
    allow_hosts: Vec<Spanned<String>>,
    /// Headers the host adds to requests to some allowed hosts.
    #[serde(default)]
    http_credentials: Vec<Spanned<CredentialSection>>,
    allow_models: Option<Vec<String>>,
    memory: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    fuel: Option<u64>,
    budget: Option<Spanned<BudgetSection>>,
    /// `[[agents]]` on another host only: the variable holding the token that host asks for.
    token_env: Option<Spanned<String>>,
    /// Plugins only: which calls share an instance (`per-call`, the default, or `per-run`).
    instance: Option<Spanned<InstanceScope>>,
}

/// `[[mcp_servers]]`: a server over Streamable HTTP (`url`) or a local process
/// on stdio (`command`), outside the sandbox.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct McpServerSection {
    name: String,
    url: Option<Spanned<String>>,
    command: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<String>,
    /// stdio only: variables set to these values in the server's otherwise empty environment.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// stdio only: host variables passed through by name.
    #[serde(default)]
    allow_env: Vec<String>,
    /// HTTP only: request headers, each set to the value of a host variable.
    #[serde(default)]
    headers_from_env: BTreeMap<String, Spanned<String>>,
    /// Put before each of its tools' names.
    prefix: Option<String>,
    timeout: Option<Spanned<String>>,
}

/// How long one call to an MCP server may take when its entry says nothing.
const DEFAULT_MCP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl McpServerSection {
    fn into_spec(
        self,
        at: &Locator<'_>,
        resolve: &impl Fn(&Path) -> PathBuf,
        span: Range<usize>,
    ) -> Result<McpServerSpec, ManifestError> {
        let timeout = match &self.timeout {
            Some(text) => parse_timeout(text.get_ref()).map_err(|e| at.error(text.span(), e))?,
            None => DEFAULT_MCP_TIMEOUT,
        };
        let endpoint = match (self.url, self.command) {
            (Some(url), None) => {
                if !self.env.is_empty() || !self.allow_env.is_empty() || !self.args.is_empty() {
                    return Err(at.error(
                        span,
                        "`args`, `env` and `allow_env` are for a server started with `command`"
                            .into(),
                    ));
                }
                let parsed = url::Url::parse(url.get_ref())
                    .map_err(|e| at.error(url.span(), format!("not a URL: {e}")))?;
                let loopback = matches!(parsed.host(), Some(url::Host::Domain("localhost")))
                    || matches!(parsed.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
                // As for a guest's requests: credentials never cross the network in the clear.
                if parsed.scheme() != "https" && !(parsed.scheme() == "http" && loopback) {
                    return Err(at.error(
                        url.span(),
                        "an MCP server's URL must be https (http only on this machine)".into(),
                    ));
                }
                let mut headers = Vec::new();
                for (header, variable) in self.headers_from_env {
                    let value = std::env::var(variable.get_ref()).map_err(|_| {
                        at.error(
                            variable.span(),
                            format!("the variable `{}` is not set", variable.get_ref()),
                        )
                    })?;
                    headers.push((header, value));
                }
                McpEndpoint::Http {
                    url: parsed,
                    headers,
                }
            }
            (None, Some(command)) => {
                if !self.headers_from_env.is_empty() {
                    return Err(at.error(
                        span,
                        "`headers_from_env` is for a server reached with `url`".into(),
                    ));
                }
                let program = find_program(command.get_ref(), resolve).ok_or_else(|| {
                    at.error(
                        command.span(),
                        format!("no program `{}` found", command.get_ref()),
                    )
                })?;
                let mut env: Vec<(String, String)> = self.env.into_iter().collect();
                env.extend(
                    self.allow_env
                        .into_iter()
                        .filter_map(|name| std::env::var(&name).ok().map(|value| (name, value))),
                );
                McpEndpoint::Stdio {
                    command: program,
                    args: self.args,
                    env,
                }
            }
            _ => {
                return Err(at.error(
                    span,
                    "an MCP server has a `url` or a `command`, one of the two".into(),
                ));
            }
        };
        Ok(McpServerSpec {
            name: self.name,
            endpoint,
            prefix: self.prefix,
            timeout,
        })
    }
}

/// The program `command` names: a path (relative to the manifest), or a name
/// found on the host's PATH now, since the server's own environment is empty.
fn find_program(command: &str, resolve: &impl Fn(&Path) -> PathBuf) -> Option<PathBuf> {
    if command.contains('/') {
        let path = resolve(Path::new(command));
        return path.is_file().then_some(path);
    }
    let search = std::env::var_os("PATH")?;
    std::env::split_paths(&search)
        .map(|dir| dir.join(command))
        .find(|path| path.is_file())
}

/// `http_credentials = [{ host, env, header, prefix }]`: the header `header`
/// (default `authorization`) set to `prefix` and the host variable `env`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialSection {
    host: String,
    env: String,
    header: Option<String>,
    prefix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirSection {
    host: PathBuf,
    guest: Option<String>,
    #[serde(default)]
    mode: DirMode,
}

#[derive(Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum DirMode {
    #[default]
    ReadOnly,
    ReadWrite,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetSection {
    max_llm_calls: Option<u32>,
    max_tool_calls: Option<u32>,
    max_total_tokens: Option<u64>,
    max_cost_usd: Option<f64>,
}

/// `[llm]`, the default provider, and each of `[[llm.providers]]`, the
/// providers beside it. Keys that belong to only one of them are checked after reading.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LlmSection {
    provider: Option<ProviderKind>,
    model: Option<String>,
    base_url: Option<String>,
    api_key_env: Option<String>,
    script: Option<PathBuf>,
    timeout: Option<Spanned<String>>,
    max_attempts: Option<Spanned<u32>>,
    /// Beside the default only: the models this provider serves.
    models: Option<Spanned<Vec<String>>>,
    /// Default only: further providers.
    #[serde(default)]
    providers: Vec<Spanned<LlmSection>>,
    /// Default only: a price file, then US dollars per million tokens by model.
    price_file: Option<Spanned<PathBuf>>,
    prices: Option<Spanned<HashMap<String, Price>>>,
}

impl LlmSection {
    /// One provider's settings, checked.
    fn provider_settings(
        &self,
        at: &Locator<'_>,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<ProviderSettings, ManifestError> {
        let timeout = match &self.timeout {
            Some(timeout) => Some(
                parse_timeout(timeout.get_ref())
                    .map_err(|reason| at.error(timeout.span(), reason))?,
            ),
            None => None,
        };
        if let Some(attempts) = self.max_attempts.as_ref().filter(|a| *a.get_ref() == 0) {
            return Err(at.error(
                attempts.span(),
                "max_attempts counts the first attempt, so it is at least 1".into(),
            ));
        }
        Ok(ProviderSettings {
            kind: self.provider,
            model: self.model.clone(),
            base_url: self.base_url.clone(),
            api_key_env: self.api_key_env.clone(),
            script: self.script.as_deref().map(resolve),
            timeout,
            max_attempts: self.max_attempts.as_ref().map(|a| *a.get_ref()),
            models: self
                .models
                .as_ref()
                .map(|m| m.get_ref().clone())
                .unwrap_or_default(),
        })
    }

    /// The default provider, the providers beside it, and the prices.
    fn into_settings(
        self,
        at: &Locator<'_>,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<LlmSettings, ManifestError> {
        if let Some(models) = &self.models {
            return Err(at.error(
                models.span(),
                "`models` belongs to a provider in [[llm.providers]]; [llm] serves every other model".into(),
            ));
        }
        let mut routes = Vec::new();
        for route in &self.providers {
            let misplaced = [
                (!route.get_ref().providers.is_empty(), "providers"),
                (route.get_ref().price_file.is_some(), "price_file"),
                (route.get_ref().prices.is_some(), "prices"),
            ];
            if let Some((_, key)) = misplaced.iter().find(|(set, _)| *set) {
                return Err(at.error(
                    route.span(),
                    format!("`{key}` belongs in [llm], not in [[llm.providers]]"),
                ));
            }
            let settings = route.get_ref().provider_settings(at, resolve)?;
            if settings.kind.is_none() || settings.models.is_empty() {
                return Err(at.error(
                    route.span(),
                    "a provider in [[llm.providers]] needs `provider` and the `models` it serves"
                        .into(),
                ));
            }
            routes.push(settings);
        }
        let mut price_files = Vec::new();
        if let Some(file) = &self.price_file {
            let path = resolve(file.get_ref());
            if !path.is_file() {
                return Err(at.error(file.span(), format!("no price file at {}", path.display())));
            }
            price_files.push(path);
        }
        Ok(LlmSettings {
            default: self.provider_settings(at, resolve)?,
            routes,
            price_files,
            prices: Prices::new(self.prices.map(Spanned::into_inner).unwrap_or_default()),
            record: None,
            replay: None,
        })
    }
}

impl Manifest {
    /// Reads and checks the manifest at `path`.
    pub fn load(path: &Path) -> Result<Self, ManifestError> {
        let text =
            read_text_bounded(path, MAX_SETTINGS_FILE).map_err(|source| ManifestError::Read {
                path: path.into(),
                source,
            })?;
        Self::parse(&text, path)
    }

    /// Checks manifest `text`, read from `path` (for messages and relative paths).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ManifestError> {
        let at = Locator { text, path };
        let file: ManifestFile = toml::from_str(text)
            .map_err(|e| at.error(e.span().unwrap_or(0..0), e.message().to_owned()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        let resolve = |p: &Path| base.join(p);

        let (agent_span, agent) = (file.agent.span(), file.agent.into_inner());
        let agent = agent.into_agent_spec(&at, &resolve, agent_span)?;

        let mut plugins = Vec::new();
        for section in file.plugins {
            let span = section.span();
            let section = section.into_inner();
            if let Some(budget) = &section.budget {
                return Err(at.error(
                    budget.span(),
                    "a budget applies to the agent's run, not to a plugin".into(),
                ));
            }
            section.refuse_agent_keys(&at, span.clone(), "a plugin")?;
            let instances = section
                .instance
                .clone()
                .map(Spanned::into_inner)
                .unwrap_or_default();
            let (plugin_path, policy, _) = section.into_policy(&at, &resolve)?;
            let plugin_path =
                plugin_path.ok_or_else(|| at.error(span, "a plugin needs a `path`".into()))?;
            let files = if plugin_path.get_ref().is_dir() {
                plugin_files(plugin_path.get_ref())
                    .map_err(|e| at.error(plugin_path.span(), e.to_string()))?
            } else if plugin_path.get_ref().is_file() {
                vec![plugin_path.get_ref().clone()]
            } else {
                return Err(at.error(
                    plugin_path.span(),
                    format!(
                        "no plugin file or directory at {}",
                        plugin_path.get_ref().display()
                    ),
                ));
            };
            plugins.extend(files.into_iter().map(|path| PluginSpec {
                path,
                policy: policy.clone(),
                instances,
            }));
        }

        let mut mcp_servers = Vec::new();
        for section in file.mcp_servers {
            let span = section.span();
            mcp_servers.push(section.into_inner().into_spec(&at, &resolve, span)?);
        }

        let mut agents = Vec::new();
        for section in file.agents {
            let span = section.span();
            let section = section.into_inner();
            agents.push(match section.url.clone() {
                Some(url) => AgentDecl::Remote(section.into_remote(&at, url, span)?),
                None => AgentDecl::Local(section.into_agent_spec(&at, &resolve, span)?),
            });
        }

        let max_agent_depth = match file.max_agent_depth {
            Some(depth) if *depth.get_ref() == 0 => {
                return Err(at.error(
                    depth.span(),
                    "a depth of 0 would refuse every agent call; leave `allow_agents` empty instead".into(),
                ));
            }
            depth => depth.map(Spanned::into_inner),
        };

        Ok(Manifest {
            agent,
            plugins,
            mcp_servers,
            agents,
            max_agent_depth,
            llm: file.llm.into_settings(&at, &resolve)?,
        })
    }
}

/// A component section read: its resolved path (where it has one), its
/// policy, and its budget (where it sets one).
type Granted = (Option<Spanned<PathBuf>>, Policy, Option<Budget>);

impl ComponentSection {
    /// `[agent]`, or a local agent of `[[agents]]`: a component file.
    fn into_agent_spec(
        self,
        at: &Locator<'_>,
        resolve: &impl Fn(&Path) -> PathBuf,
        span: Range<usize>,
    ) -> Result<AgentSpec, ManifestError> {
        if self.url.is_some() {
            return Err(at.error(span, "an agent has a `path` or a `url`, not both".into()));
        }
        if let Some(variable) = &self.token_env {
            return Err(at.error(
                variable.span(),
                "`token_env` is for an agent on another host (with a `url`)".into(),
            ));
        }
        if let Some(instance) = &self.instance {
            return Err(at.error(
                instance.span(),
                "`instance` is for plugins: every run of an agent is a fresh instance".into(),
            ));
        }
        let name = self.name.clone().map(Spanned::into_inner);
        let description = self.description.clone();
        let workflow = self.workflow.clone();
        let (path, policy, budget) = self.into_policy(at, resolve)?;
        let path = path.ok_or_else(|| {
            at.error(
                span,
                "an agent needs a `path` (or, on another host, a `url`)".into(),
            )
        })?;
        if !path.get_ref().is_file() {
            return Err(at.error(
                path.span(),
                format!("no agent component at {}", path.get_ref().display()),
            ));
        }
        Ok(AgentSpec {
            name,
            description,
            workflow,
            path: path.into_inner(),
            policy,
            budget: budget.unwrap_or_default(),
        })
    }

    /// An agent of `[[agents]]` served by another host: a name, a URL and a timeout.
    fn into_remote(
        self,
        at: &Locator<'_>,
        url: Spanned<String>,
        span: Range<usize>,
    ) -> Result<RemoteAgent, ManifestError> {
        let sandboxed = self.path.is_some()
            || !self.env.is_empty()
            || !self.allow_env.is_empty()
            || !self.allow_dirs.is_empty()
            || !self.allow_hosts.is_empty()
            || !self.http_credentials.is_empty()
            || !self.allow_agents.is_empty()
            || self.allow_models.is_some()
            || self.workflow.is_some()
            || self.memory.is_some()
            || self.fuel.is_some()
            || self.budget.is_some()
            || self.instance.is_some();
        if sandboxed {
            return Err(at.error(
                span,
                "an agent on another host takes only `name`, `url`, `description`, `timeout` and `token_env`; its own host sandboxes it".into(),
            ));
        }
        let name = self
            .name
            .ok_or_else(|| {
                at.error(
                    span,
                    "an agent on another host needs its `name` there".into(),
                )
            })?
            .into_inner();
        let parsed = url::Url::parse(url.get_ref())
            .ok()
            .filter(|parsed| matches!(parsed.scheme(), "http" | "https") && parsed.has_host())
            .ok_or_else(|| {
                at.error(
                    url.span(),
                    format!(
                        "`{}` is not an http(s) URL such as `http://10.0.0.7:8080`",
                        url.get_ref()
                    ),
                )
            })?;
        let timeout = match self.timeout {
            Some(timeout) => parse_timeout(timeout.get_ref())
                .map_err(|reason| at.error(timeout.span(), reason))?,
            None => crate::agents::DEFAULT_REMOTE_TIMEOUT,
        };
        let mut remote = RemoteAgent::new(name, parsed, timeout)
            .with_description(self.description.unwrap_or_default());
        if let Some(variable) = self.token_env {
            let token = std::env::var(variable.get_ref()).map_err(|_| {
                at.error(
                    variable.span(),
                    format!(
                        "`{}` is not set: it should hold the token for this agent's host",
                        variable.get_ref()
                    ),
                )
            })?;
            remote = remote.with_token(token);
        }
        Ok(remote)
    }

    /// Refuses the keys only agents take.
    fn refuse_agent_keys(
        &self,
        at: &Locator<'_>,
        span: Range<usize>,
        what: &str,
    ) -> Result<(), ManifestError> {
        if self.name.is_some()
            || self.url.is_some()
            || self.token_env.is_some()
            || self.description.is_some()
            || self.workflow.is_some()
            || !self.allow_agents.is_empty()
        {
            return Err(at.error(
                span,
                format!("`name`, `url`, `token_env`, `description`, `workflow` and `allow_agents` are for agents, not {what}"),
            ));
        }
        Ok(())
    }

    /// The component's resolved path, policy and budget.
    fn into_policy(
        self,
        at: &Locator<'_>,
        resolve: &impl Fn(&Path) -> PathBuf,
    ) -> Result<Granted, ManifestError> {
        let mut policy = Policy {
            env: self.env.into_iter().collect(),
            ..Policy::default()
        };
        if let Some(models) = self.allow_models {
            policy.grants.insert(ModelGrant(models));
        }
        if !self.allow_agents.is_empty() {
            policy.grants.insert(AgentGrant(self.allow_agents));
        }
        for name in &self.allow_env {
            policy.pass_env(name);
        }
        for dir in self.allow_dirs {
            let span = dir.span();
            let dir = dir.into_inner();
            let host = resolve(&dir.host);
            if !host.is_dir() {
                return Err(at.error(span, format!("no directory at {}", host.display())));
            }
            policy.dirs.push(DirGrant {
                guest: dir
                    .guest
                    .unwrap_or_else(|| dir.host.to_string_lossy().into_owned()),
                host,
                writable: dir.mode == DirMode::ReadWrite,
            });
        }
        for host in self.allow_hosts {
            let pattern = host
                .get_ref()
                .parse::<HostPattern>()
                .map_err(|e| at.error(host.span(), e.to_string()))?;
            policy.hosts.push(pattern);
        }
        for credential in self.http_credentials {
            let span = credential.span();
            let credential = credential
                .into_inner()
                .into_credential(&policy.hosts)
                .map_err(|reason| at.error(span, reason))?;
            policy.credentials.push(credential);
        }
        if let Some(memory) = self.memory {
            policy.limits.memory =
                parse_memory(memory.get_ref()).map_err(|reason| at.error(memory.span(), reason))?;
        }
        if let Some(timeout) = self.timeout {
            policy.limits.timeout = parse_timeout(timeout.get_ref())
                .map_err(|reason| at.error(timeout.span(), reason))?;
        }
        policy.limits.fuel = self.fuel;
        let budget = self.budget.map(|budget| {
            let budget = budget.into_inner();
            Budget {
                llm_calls: budget.max_llm_calls,
                tool_calls: budget.max_tool_calls,
                tokens: budget.max_total_tokens,
                cost_usd: budget.max_cost_usd,
            }
        });
        let path = self
            .path
            .map(|path| Spanned::new(path.span(), resolve(path.get_ref())));
        Ok((path, policy, budget))
    }
}

impl CredentialSection {
    fn into_credential(self, allowed: &[HostPattern]) -> Result<HttpCredential, String> {
        let host = self
            .host
            .parse::<HostPattern>()
            .map_err(|e| e.to_string())?;
        if !allowed.contains(&host) {
            return Err(format!(
                "`{}` is not in `allow_hosts`: a credential goes only where requests may",
                self.host
            ));
        }
        let secret = std::env::var(&self.env)
            .map_err(|_| format!("`{}` is not set: it should hold the credential", self.env))?;
        let header = self.header.as_deref().unwrap_or("authorization");
        let header = http::HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| format!("`{header}` is not an HTTP header name"))?;
        let mut value =
            http::HeaderValue::from_str(&format!("{}{secret}", self.prefix.unwrap_or_default()))
                .map_err(|_| format!("`{}` holds characters a header cannot carry", self.env))?;
        value.set_sensitive(true);
        Ok(HttpCredential {
            host,
            header,
            value,
        })
    }
}

/// A memory size such as `128 MiB` or `1GB`.
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let bytes = parse_size(text)?;
    if bytes < Limits::MIN_MEMORY {
        return Err(format!(
            "`{text}` is too little memory for a component; give at least 1 MiB"
        ));
    }
    Ok(bytes)
}

/// A size in bytes such as `512 KiB` or `2 MiB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64())
        .map_err(|e| format!("`{text}` is not a size such as `128 MiB`: {e}"))
}

/// A duration such as `30s`, `5m` or `1h 30m`.
pub fn parse_timeout(text: &str) -> Result<std::time::Duration, String> {
    let duration = humantime::parse_duration(text)
        .map_err(|e| format!("`{text}` is not a duration such as `30s` or `5m`: {e}"))?;
    if duration.is_zero() {
        return Err("a time limit of zero would stop every call".into());
    }
    Ok(duration)
}

/// Turns byte offsets into line and column for messages.
struct Locator<'a> {
    text: &'a str,
    path: &'a Path,
}

impl Locator<'_> {
    fn error(&self, span: Range<usize>, message: String) -> ManifestError {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        ManifestError::Invalid {
            path: self.path.into(),
            line,
            column,
            message,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory holding an agent file, a plugin directory and a data directory.
    fn workspace() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agent.wasm"), b"").unwrap();
        std::fs::create_dir(dir.path().join("plugins")).unwrap();
        std::fs::write(dir.path().join("plugins/a.wasm"), b"").unwrap();
        std::fs::write(dir.path().join("plugins/b.wasm"), b"").unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("prices.toml"), "[models]\n").unwrap();
        dir
    }

    fn parse(dir: &tempfile::TempDir, text: &str) -> Result<Manifest, String> {
        Manifest::parse(text, &dir.path().join("glassbox.toml")).map_err(|e| {
            e.to_string()
                .replace(&dir.path().display().to_string(), "DIR")
        })
    }

    #[test]
    fn a_full_manifest_becomes_policies() {
        let dir = workspace();
        let manifest = parse(
            &dir,
            r#"
[agent]
path = "agent.wasm"
env = { MODE = "strict" }
allow_dirs = [{ host = "data", guest = "/data", mode = "read-write" }]
allow_hosts = ["api.example.com", "*.wikipedia.org"]
allow_models = ["gpt-4o-mini"]
memory = "64 MiB"
timeout = "2m"
fuel = 1000000
budget = { max_llm_calls = 5, max_tool_calls = 10, max_total_tokens = 20000, max_cost_usd = 0.25 }

[[plugins]]
path = "plugins"
timeout = "5s"

[llm]
provider = "openai"
model = "gpt-4o-mini"
timeout = "30s"
max_attempts = 2
price_file = "prices.toml"
prices = { "gpt-4o-mini" = { input = 0.15, output = 0.6 } }

[[llm.providers]]
provider = "anthropic"
models = ["claude-*"]
api_key_env = "MY_ANTHROPIC_KEY"
"#,
        )
        .unwrap();
        let agent = &manifest.agent;
        assert_eq!(agent.path, dir.path().join("agent.wasm"));
        assert_eq!(agent.policy.env, vec![("MODE".into(), "strict".into())]);
        assert_eq!(
            agent.policy.dirs,
            vec![DirGrant {
                host: dir.path().join("data"),
                guest: "/data".into(),
                writable: true
            }]
        );
        assert_eq!(
            agent
                .policy
                .hosts
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["api.example.com", "*.wikipedia.org"]
        );
        assert!(ModelGrant::check(&agent.policy, "gpt-4o-mini").is_ok());
        assert!(ModelGrant::check(&agent.policy, "gpt-4o").is_err());
        assert_eq!(
            agent.policy.limits,
            Limits {
                memory: 64 * 1024 * 1024,
                timeout: std::time::Duration::from_secs(120),
                fuel: Some(1_000_000)
            }
        );
        assert_eq!(
            agent.budget,
            Budget {
                llm_calls: Some(5),
                tool_calls: Some(10),
                tokens: Some(20_000),
                cost_usd: Some(0.25)
            }
        );
        let plugins: Vec<_> = manifest.plugins.iter().map(|p| p.path.clone()).collect();
        assert_eq!(
            plugins,
            [
                dir.path().join("plugins/a.wasm"),
                dir.path().join("plugins/b.wasm")
            ]
        );
        assert_eq!(
            manifest.plugins[0].policy.limits.timeout,
            std::time::Duration::from_secs(5)
        );
        assert!(manifest.plugins[0].policy.hosts.is_empty());
        let llm = &manifest.llm;
        assert_eq!(llm.default.kind, Some(ProviderKind::Openai));
        assert_eq!(
            llm.default.timeout,
            Some(std::time::Duration::from_secs(30))
        );
        assert_eq!(llm.default.max_attempts, Some(2));
        assert_eq!(llm.price_files, [dir.path().join("prices.toml")]);
        assert_eq!(
            llm.routes,
            [ProviderSettings {
                kind: Some(ProviderKind::Anthropic),
                models: vec!["claude-*".into()],
                api_key_env: Some("MY_ANTHROPIC_KEY".into()),
                ..ProviderSettings::default()
            }]
        );
    }

    #[test]
    fn nothing_is_granted_unless_written() {
        let dir = workspace();
        let manifest = parse(&dir, "[agent]\npath = \"agent.wasm\"\n").unwrap();
        let policy = &manifest.agent.policy;
        assert!(policy.env.is_empty() && policy.dirs.is_empty() && policy.hosts.is_empty());
        assert_eq!(policy.grants.get::<ModelGrant>(), None);
        assert_eq!(policy.limits, Limits::default());
        assert_eq!(manifest.agent.budget, Budget::default());
        assert!(manifest.plugins.is_empty());
    }

    #[test]
    fn agents_are_components_or_urls_with_grants_between_them() {
        let dir = workspace();
        let manifest = parse(
            &dir,
            r#"
max_agent_depth = 3

[agent]
path = "agent.wasm"
workflow = "trip"
allow_agents = ["helper", "far"]

[[agents]]
name = "helper"
description = "Helps."
path = "agent.wasm"
memory = "64 MiB"

[[agents]]
name = "far"
url = "http://10.0.0.7:8080"
timeout = "20s"
"#,
        )
        .unwrap();
        assert_eq!(manifest.max_agent_depth, Some(3));
        assert_eq!(manifest.agent.workflow.as_deref(), Some("trip"));
        assert_eq!(AgentGrant::of(&manifest.agent.policy), ["helper", "far"]);
        let [AgentDecl::Local(helper), AgentDecl::Remote(far)] = &manifest.agents[..] else {
            panic!("expected a local and a remote agent: {:?}", manifest.agents);
        };
        assert_eq!(helper.name.as_deref(), Some("helper"));
        assert_eq!(helper.description.as_deref(), Some("Helps."));
        assert_eq!(helper.policy.limits.memory, 64 * 1024 * 1024);
        assert_eq!(far.name, "far");
        assert_eq!(far.url.as_str(), "http://10.0.0.7:8080/");
        assert_eq!(far.timeout, std::time::Duration::from_secs(20));
    }

    #[test]
    fn agent_sections_refuse_what_does_not_apply() {
        let dir = workspace();
        let agent = "[agent]\npath = \"agent.wasm\"\n";
        let cases = [
            (
                "[[agents]]\nname = \"far\"\nurl = \"http://x:1\"\nmemory = \"1 GiB\"\n",
                "DIR/glassbox.toml:3:1: an agent on another host takes only `name`, `url`, `description`, `timeout` and `token_env`; its own host sandboxes it",
            ),
            (
                "[[agents]]\nname = \"far\"\nurl = \"ftp://x\"\n",
                "DIR/glassbox.toml:5:7: `ftp://x` is not an http(s) URL such as `http://10.0.0.7:8080`",
            ),
            (
                "[[agents]]\nurl = \"http://x:1\"\n",
                "DIR/glassbox.toml:3:1: an agent on another host needs its `name` there",
            ),
            (
                "[[agents]]\nname = \"nowhere\"\n",
                "DIR/glassbox.toml:3:1: an agent needs a `path` (or, on another host, a `url`)",
            ),
            (
                "[[plugins]]\npath = \"plugins\"\nallow_agents = [\"x\"]\n",
                "DIR/glassbox.toml:3:1: `name`, `url`, `token_env`, `description`, `workflow` and `allow_agents` are for agents, not a plugin",
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(
                parse(&dir, &format!("{agent}{text}")).unwrap_err(),
                expected
            );
        }
        let zero = parse(&dir, &format!("max_agent_depth = 0\n{agent}")).unwrap_err();
        assert!(
            zero.starts_with("DIR/glassbox.toml:1:19: a depth of 0"),
            "{zero}"
        );
    }

    #[test]
    fn a_credential_is_read_from_its_variable_for_an_allowed_host() {
        let dir = workspace();
        let manifest = parse(
            &dir,
            "[agent]\npath = \"agent.wasm\"\nallow_hosts = [\"api.example.com\"]\nhttp_credentials = [{ host = \"api.example.com\", env = \"HOME\", header = \"X-Api-Key\", prefix = \"Key \" }]\n",
        )
        .unwrap();
        let [credential] = &manifest.agent.policy.credentials[..] else {
            panic!("{:?}", manifest.agent.policy.credentials);
        };
        assert_eq!(credential.header, "x-api-key");
        assert_eq!(
            credential.value,
            format!("Key {}", std::env::var("HOME").unwrap()).as_str()
        );
        assert!(credential.value.is_sensitive());
        assert!(!format!("{credential:?}").contains(&std::env::var("HOME").unwrap()));
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let dir = workspace();
        let cases = [
            (
                "[agent]\npath = \"agent.wasm\"\nallow_host = [\"x.org\"]\n",
                "DIR/glassbox.toml:3:1: unknown field `allow_host`",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\nallow_dirs = [{ host = \"missing\" }]\n",
                "DIR/glassbox.toml:3:15: no directory at DIR/missing",
            ),
            (
                "[agent]\npath = \"nope.wasm\"\n",
                "DIR/glassbox.toml:2:8: no agent component at DIR/nope.wasm",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\nmemory = \"lots\"\n",
                "DIR/glassbox.toml:3:10: `lots` is not a size such as `128 MiB`",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\ntimeout = \"soon\"\n",
                "DIR/glassbox.toml:3:11: `soon` is not a duration such as `30s` or `5m`",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\nallow_hosts = [\"ok.org\", \"ftp://x.org\"]\n",
                "DIR/glassbox.toml:3:26: `ftp://x.org` is not a host pattern: the scheme must be http or https",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\nhttp_credentials = [{ host = \"x.org\", env = \"HOME\" }]\n",
                "DIR/glassbox.toml:3:21: `x.org` is not in `allow_hosts`: a credential goes only where requests may",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\nallow_hosts = [\"x.org\"]\nhttp_credentials = [{ host = \"x.org\", env = \"GLASSBOX_TEST_UNSET_7\" }]\n",
                "DIR/glassbox.toml:4:21: `GLASSBOX_TEST_UNSET_7` is not set: it should hold the credential",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\n[llm]\nmodels = [\"x\"]\n",
                "DIR/glassbox.toml:4:10: `models` belongs to a provider in [[llm.providers]]; [llm] serves every other model",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\n[[llm.providers]]\nprovider = \"anthropic\"\n",
                "DIR/glassbox.toml:3:1: a provider in [[llm.providers]] needs `provider` and the `models` it serves",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\n[llm]\nprice_file = \"gone.toml\"\n",
                "DIR/glassbox.toml:4:14: no price file at DIR/gone.toml",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\n[llm]\nmax_attempts = 0\n",
                "DIR/glassbox.toml:4:16: max_attempts counts the first attempt, so it is at least 1",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\n[[plugins]]\npath = \"plugins\"\nbudget = { max_llm_calls = 1 }\n",
                "DIR/glassbox.toml:5:10: a budget applies to the agent's run, not to a plugin",
            ),
            (
                "[agent]\npath = \"agent.wasm\"\n[llm]\nprovider = \"magic\"\n",
                "DIR/glassbox.toml:4:12: unknown variant `magic`, expected one of `openai`, `anthropic`, `ollama`, `vllm`, `scripted`",
            ),
            (
                "[agent\n",
                "DIR/glassbox.toml:1:7: unclosed table, expected `]`",
            ),
            ("", "DIR/glassbox.toml:1:1: missing field `agent`"),
        ];
        for (text, expected) in cases {
            let error = parse(&dir, text).unwrap_err();
            assert!(
                error.starts_with(expected),
                "for {text:?}\n expected: {expected}\n      got: {error}"
            );
        }
    }
}
