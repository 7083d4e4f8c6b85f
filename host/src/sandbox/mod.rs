//! The sandbox: what a component may touch and how much it may use. Nothing is
//! granted by default; a [`Policy`] lists the sandbox's grants (directories,
//! outbound HTTP hosts, environment variables), carries the [`Grants`] of the
//! capabilities above it (models, agents), and sets the [`Limits`] each
//! instance runs under; a [`Budget`] caps what one agent run may spend, and
//! every denial or limit hit is recorded in the trace.

mod budget;
mod context;
mod grants;
mod http;
mod limits;
mod outbound;
mod wasi;

pub use budget::Budget;
pub(crate) use budget::RunBudget;
pub(crate) use context::SandboxCtx;
pub use grants::{Grant, Grants};
pub use http::{HostPattern, HostPatternError, HttpCredential};
pub(crate) use limits::guard;
pub use limits::{Fault, Limits};

use crate::telemetry::{semconv, string_list};
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use std::path::PathBuf;

/// Everything one component is granted. [`Policy::default`] grants nothing
/// and applies the default [`Limits`].
#[derive(Clone, Debug, Default)]
pub struct Policy {
    /// Environment variables the component sees, with their values. Nothing
    /// is inherited from the host; see [`Policy::pass_env`].
    pub env: Vec<(String, String)>,
    /// Host directories mounted in the component's filesystem.
    pub dirs: Vec<DirGrant>,
    /// Hosts the component may send HTTP requests to (through `wasi:http`).
    pub hosts: Vec<HostPattern>,
    /// Headers the host adds to the component's requests to some of those
    /// hosts, such as an API key the component never sees.
    pub credentials: Vec<HttpCredential>,
    pub limits: Limits,
    /// What the component may use of the other capabilities, each grant of
    /// the type its capability defines.
    pub grants: Grants,
}

/// A host directory mounted into a component's filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirGrant {
    pub host: PathBuf,
    /// Where the component sees it, such as `/data`.
    pub guest: String,
    pub writable: bool,
}

impl DirGrant {
    /// Parses `HOST[:GUEST][:ro|rw]`; the guest path defaults to the host path
    /// and access to read-only.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let (rest, writable) = match spec.rsplit_once(':') {
            Some((rest, "rw")) => (rest, true),
            Some((rest, "ro")) => (rest, false),
            _ => (spec, false),
        };
        let (host, guest) = match rest.split_once(':') {
            Some((host, guest)) => (host, guest.to_owned()),
            None => (rest, rest.to_owned()),
        };
        if host.is_empty() || guest.is_empty() {
            return Err(format!("`{spec}` is not HOST[:GUEST][:ro|rw]"));
        }
        Ok(DirGrant {
            host: host.into(),
            guest,
            writable,
        })
    }
}

impl Policy {
    /// Passes the host's variable `name` through, when it is set.
    pub fn pass_env(&mut self, name: &str) {
        if let Ok(value) = std::env::var(name) {
            self.env.retain(|(existing, _)| existing != name);
            self.env.push((name.to_owned(), value));
        }
    }

    /// This policy with `grant` given too.
    pub fn granting<G: Grant + Clone>(mut self, grant: G) -> Self {
        self.grants.insert(grant);
        self
    }

    /// What the component was granted, for the span of each run or call, so a
    /// trace shows what the guest could and could not reach. Variable names
    /// only: values may be secrets.
    pub(crate) fn span_attributes(&self) -> Vec<KeyValue> {
        let mut attributes = vec![
            KeyValue::new(
                semconv::GLASSBOX_SANDBOX_ENV,
                string_list(self.env.iter().map(|(name, _)| name.clone())),
            ),
            KeyValue::new(
                semconv::GLASSBOX_SANDBOX_DIRS,
                string_list(self.dirs.iter().map(|dir| {
                    let mode = if dir.writable { "rw" } else { "ro" };
                    format!("{} ({mode})", dir.guest)
                })),
            ),
            KeyValue::new(
                semconv::GLASSBOX_SANDBOX_HOSTS,
                string_list(self.hosts.iter().map(ToString::to_string)),
            ),
            KeyValue::new(
                semconv::GLASSBOX_LIMIT_MEMORY,
                i64::try_from(self.limits.memory).unwrap_or(i64::MAX),
            ),
            KeyValue::new(
                semconv::GLASSBOX_LIMIT_TIMEOUT,
                self.limits.timeout.as_secs_f64(),
            ),
        ];
        if let Some(fuel) = self.limits.fuel {
            attributes.push(KeyValue::new(
                semconv::GLASSBOX_LIMIT_FUEL,
                i64::try_from(fuel).unwrap_or(i64::MAX),
            ));
        }
        attributes.extend(self.grants.span_attributes());
        attributes
    }
}

/// Records that `component` tried to reach `resource` and was refused: a
/// warning for the person running it, and an event on the span it ran under.
pub(crate) fn record_denial(component: &str, span: &Context, resource: String) {
    tracing::warn!("[{component}] denied: {resource} (not granted)");
    span.span().add_event(
        semconv::SANDBOX_DENIED_EVENT,
        vec![
            KeyValue::new(semconv::GLASSBOX_SANDBOX_RESOURCE, resource),
            KeyValue::new(semconv::ERROR_TYPE, semconv::error_type::SANDBOX_DENIED),
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_grant_reads_host_guest_and_mode() {
        let grant = |spec| DirGrant::parse(spec).unwrap();
        assert_eq!(
            grant("./data"),
            DirGrant {
                host: "./data".into(),
                guest: "./data".into(),
                writable: false
            }
        );
        assert_eq!(
            grant("./data:/data:rw"),
            DirGrant {
                host: "./data".into(),
                guest: "/data".into(),
                writable: true
            }
        );
        assert_eq!(grant("/srv/docs:/docs").guest, "/docs");
        assert!(!grant("/srv/docs:/docs").writable);
        assert!(DirGrant::parse(":/x").is_err());
    }
}
