//! Agents served by another Glassbox host, called over its HTTP API (see
//! [`super::api`]). Knows HTTP and nothing of WebAssembly: the `agents`
//! capability turns its errors into the guest's.

use super::api::{self, ErrorDetail, RunBody, RunOutput};
use super::run::AgentInput;
use crate::telemetry::{propagation, semconv};
use crate::text::{cause_chain, excerpt};
use opentelemetry::{Context, KeyValue};
use std::time::Duration;
use url::Url;

/// The largest answer read from another host; a run's output is text for an
/// agent, and a host answering more is broken or hostile.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// How long a remote agent may take when its entry sets no timeout.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(300);

/// An agent on another Glassbox host.
#[derive(Clone, Debug)]
pub struct RemoteAgent {
    /// The agent's name on that host.
    pub name: String,
    /// The host's base URL, such as `http://10.0.0.7:8080`.
    pub url: Url,
    /// Shown to callers listing their agents; the remote host is not asked.
    pub description: String,
    /// The whole call, from connecting to the answer.
    pub timeout: Duration,
    /// The bearer token that host asks of callers (`glassbox serve --tokens`).
    token: Option<String>,
    client: reqwest::Client,
}

/// How a call to a remote agent failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("cannot reach agent `{agent}` at {url}: {reason}")]
    Unreachable {
        agent: String,
        url: String,
        reason: String,
    },
    #[error("agent `{agent}` at {url} did not answer within {}", humantime::format_duration(*.after))]
    Timeout {
        agent: String,
        url: String,
        after: Duration,
    },
    /// The remote host answered with a typed error: the agent failed, or refused the call.
    #[error("agent `{agent}` at {url} failed ({}): {}", .detail.error_type, .detail.message)]
    Failed {
        agent: String,
        url: String,
        detail: ErrorDetail,
    },
    #[error(
        "agent `{agent}` at {url} answered HTTP {status} with something that is not a run's result: {body}"
    )]
    Unusable {
        agent: String,
        url: String,
        status: u16,
        body: String,
    },
}

impl RemoteAgent {
    /// The agent `name` served at `url`, to be answered within `timeout`.
    pub fn new(name: impl Into<String>, url: Url, timeout: Duration) -> Self {
        RemoteAgent {
            name: name.into(),
            url,
            description: String::new(),
            timeout,
            token: None,
            client: reqwest::Client::new(),
        }
    }

    /// The same agent, called with `token`, which its host asks of callers.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = description.into();
        self
    }

    fn runs_url(&self) -> String {
        format!(
            "{}/{}",
            self.url.as_str().trim_end_matches('/'),
            api::runs_path(&self.name)
        )
    }

    /// `server.address` and `server.port` of the remote host.
    pub(crate) fn span_attributes(&self) -> Vec<KeyValue> {
        let mut attributes = Vec::new();
        if let Some(host) = self.url.host_str() {
            attributes.push(KeyValue::new(semconv::SERVER_ADDRESS, host.to_owned()));
        }
        if let Some(port) = self.url.port_or_known_default() {
            attributes.push(KeyValue::new(semconv::SERVER_PORT, i64::from(port)));
        }
        attributes
    }

    /// Runs the agent once on its host. `cx` holds the span the remote run
    /// joins, and the baggage to carry; `depth` is how deep the call nests.
    pub async fn invoke(
        &self,
        cx: &Context,
        depth: u32,
        input: &AgentInput,
        conversation_id: Option<&str>,
    ) -> Result<String, RemoteError> {
        let url = self.runs_url();
        let mut headers = http::HeaderMap::new();
        propagation::inject(cx, &mut headers);
        headers.insert(api::CALL_DEPTH_HEADER, http::HeaderValue::from(depth));
        if let Some(token) = &self.token
            && let Ok(mut value) = http::HeaderValue::from_str(&format!("Bearer {token}"))
        {
            // Kept out of logs and debug output.
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let body = RunBody {
            input: input.into(),
            conversation_id: conversation_id.map(str::to_owned),
        };
        let sent = self
            .client
            .post(&url)
            .headers(headers)
            .json(&body)
            .timeout(self.timeout)
            .send();
        let mut response = sent.await.map_err(|error| self.transport_error(&error))?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|error| self.transport_error(&error))?
        {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                return Err(RemoteError::Unusable {
                    agent: self.name.clone(),
                    url: self.url.to_string(),
                    status: status.as_u16(),
                    body: format!("an answer over {} MiB", MAX_ANSWER_BYTES >> 20),
                });
            }
        }
        let text = String::from_utf8_lossy(&body);
        if status.is_success()
            && let Ok(output) = serde_json::from_str::<RunOutput>(&text)
        {
            return Ok(output.output);
        }
        match serde_json::from_str::<api::ErrorBody>(&text) {
            Ok(body) if !status.is_success() => Err(RemoteError::Failed {
                agent: self.name.clone(),
                url: self.url.to_string(),
                detail: body.error,
            }),
            _ => Err(RemoteError::Unusable {
                agent: self.name.clone(),
                url: self.url.to_string(),
                status: status.as_u16(),
                body: excerpt(&text),
            }),
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> RemoteError {
        if error.is_timeout() {
            return RemoteError::Timeout {
                agent: self.name.clone(),
                url: self.url.to_string(),
                after: self.timeout,
            };
        }
        RemoteError::Unreachable {
            agent: self.name.clone(),
            url: self.url.to_string(),
            reason: cause_chain(error),
        }
    }
}
