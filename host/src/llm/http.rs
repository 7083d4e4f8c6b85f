//! The HTTP side the network providers share: one client per provider, retries
//! with exponential backoff and jitter that honour `Retry-After`, each failed
//! attempt recorded as an event on the current span, status codes mapped to
//! [`LlmError`], Server-Sent Events decoding, and the API key kept out of every
//! message.

use super::model::{ChatStream, Endpoint, LlmError, StreamEvent};
use crate::telemetry::semconv;
use crate::text::{cause_chain, excerpt};
use backon::{BackoffBuilder, ExponentialBuilder};
use eventsource_stream::{Event, Eventsource};
use futures_util::StreamExt;
use opentelemetry::trace::TraceContextExt;
use opentelemetry::{Context, KeyValue};
use reqwest::header::{HeaderMap, HeaderValue};
use std::collections::VecDeque;
use std::time::{Duration, Instant, SystemTime};

/// When and how often a failed request is tried again: on 429, 5xx and
/// connection failures, never on a refusal that would only repeat.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; 1 turns retries off.
    pub max_attempts: u32,
    /// The first backoff delay; each later one doubles, up to `max_delay`, with jitter.
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt
    /// (or would pass while waiting for it).
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(20),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

/// Where a network provider is and how to talk to it.
#[derive(Clone)]
pub struct Connection {
    pub base_url: String,
    pub api_key: Option<String>,
    /// For each attempt (a streamed answer: for its first byte, then between reads).
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// A JSON-over-HTTP API: where it is, how to authenticate, how long to wait
/// and how to retry.
pub(super) struct ApiClient {
    client: reqwest::Client,
    base: url::Url,
    endpoint: Endpoint,
    /// Scrubbed from every message, should a server echo it.
    secret: Option<String>,
    timeout: Duration,
    retry: RetryPolicy,
}

impl ApiClient {
    /// `headers` go on every request (authentication, API version); each is
    /// marked sensitive so no debug output shows it.
    pub fn new(connection: &Connection, mut headers: HeaderMap) -> Result<Self, LlmError> {
        let Connection {
            base_url,
            api_key,
            timeout,
            retry,
        } = connection.clone();
        let base = url::Url::parse(&base_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host_str().is_some())
            .ok_or_else(|| {
                LlmError::InvalidRequest(format!(
                    "the LLM base URL `{base_url}` is not an http(s) URL"
                ))
            })?;
        for value in headers.values_mut() {
            value.set_sensitive(true);
        }
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(timeout)
            // Between two reads of a streamed body; whole requests get `timeout` each.
            .read_timeout(timeout)
            .user_agent(concat!("glassbox/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Provider(format!("cannot build the HTTP client: {e}")))?;
        let endpoint = Endpoint {
            address: base.host_str().unwrap_or_default().to_owned(),
            port: base.port_or_known_default().unwrap_or(443),
        };
        Ok(ApiClient {
            client,
            base,
            endpoint,
            secret: api_key.filter(|s| !s.is_empty()),
            timeout,
            retry,
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `path` under the base URL.
    pub fn url(&self, path: &str) -> Result<url::Url, LlmError> {
        let joined = format!("{}/{path}", self.base.as_str().trim_end_matches('/'));
        url::Url::parse(&joined)
            .map_err(|e| LlmError::InvalidRequest(format!("the LLM URL `{joined}`: {e}")))
    }

    /// POSTs `body` and decodes the JSON answer.
    pub async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        url: &url::Url,
        body: &impl serde::Serialize,
    ) -> Result<T, LlmError> {
        let response = self.send(url, body, Streaming::No).await?;
        let text = response
            .text()
            .await
            .map_err(|e| self.transport_error(url, &e))?;
        serde_json::from_str(&text).map_err(|e| {
            LlmError::Provider(self.scrub(format!(
                "malformed response from {}: {e}; body starts `{}`",
                self.endpoint.address,
                excerpt(&text)
            )))
        })
    }

    /// POSTs `body` and decodes the answer as Server-Sent Events, which
    /// `decoder` turns into stream events. Retries happen only before the
    /// first byte of the answer: after that, a break is the stream's error.
    pub async fn post_events(
        &self,
        url: &url::Url,
        body: &impl serde::Serialize,
        decoder: impl SseDecoder,
    ) -> Result<ChatStream, LlmError> {
        let response = self.send(url, body, Streaming::Yes).await?;
        let events = response.bytes_stream().eventsource();
        let state = DecodeState {
            events,
            decoder,
            pending: VecDeque::new(),
            source: self.endpoint.address.clone(),
            received: 0,
            over: false,
        };
        Ok(futures_util::stream::unfold(state, DecodeState::next).boxed())
    }

    /// Sends until an attempt succeeds, fails in a way retrying cannot help,
    /// or the retry policy is spent. Each failed attempt becomes an event on
    /// the current span; the number of attempts goes on the span too.
    async fn send(
        &self,
        url: &url::Url,
        body: &impl serde::Serialize,
        streaming: Streaming,
    ) -> Result<reqwest::Response, LlmError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| LlmError::InvalidRequest(format!("cannot encode the request: {e}")))?;
        let started = Instant::now();
        let mut delays = ExponentialBuilder::default()
            .with_min_delay(self.retry.initial_delay)
            .with_max_delay(self.retry.max_delay)
            .with_max_times(self.retry.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build();
        let cx = Context::current();
        let span = cx.span();
        let record_attempts = |attempts: u32| {
            span.set_attribute(KeyValue::new(
                semconv::GLASSBOX_LLM_ATTEMPTS,
                i64::from(attempts),
            ))
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let mut request = self
                .client
                .post(url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if streaming == Streaming::No {
                // The whole answer; a stream's reads are bounded by the client's read timeout.
                request = request.timeout(self.timeout);
            }
            let sent = match tokio::time::timeout(self.timeout, request.send()).await {
                Ok(sent) => sent.map_err(Failure::Transport),
                Err(_) => Err(Failure::NoAnswer),
            };
            let failure = match sent {
                Ok(response) if response.status().is_success() => {
                    record_attempts(attempt);
                    return Ok(response);
                }
                Ok(response) => Failure::from_response(response).await,
                Err(failure) => failure,
            };
            // The server's Retry-After is an instruction; backoff is our own guess.
            let retry_in = failure
                .retryable()
                .then(|| delays.next())
                .flatten()
                .map(|backoff| failure.retry_after().unwrap_or(backoff))
                .filter(|wait| started.elapsed() + *wait <= self.retry.max_elapsed);
            let error = self.error_for(url, &failure);
            span.add_event(
                semconv::LLM_ATTEMPT_FAILED_EVENT,
                failure.event_attributes(attempt, &error, retry_in),
            );
            let Some(wait) = retry_in else {
                record_attempts(attempt);
                return Err(error);
            };
            tokio::time::sleep(wait).await;
        }
    }

    fn error_for(&self, url: &url::Url, failure: &Failure) -> LlmError {
        match failure {
            Failure::Transport(error) => self.transport_error(url, error),
            Failure::NoAnswer => {
                LlmError::Timeout(format!("no answer within {:?} from {url}", self.timeout))
            }
            Failure::Status {
                status,
                retry_after,
                body,
            } => {
                let detail = serde_json::from_str::<ErrorBody>(body)
                    .map(|b| b.error.message)
                    .unwrap_or_else(|_| excerpt(body));
                let message = self.scrub(format!(
                    "HTTP {status} from {}: {detail}",
                    self.endpoint.address
                ));
                match status.as_u16() {
                    429 => LlmError::RateLimited {
                        message,
                        retry_after: *retry_after,
                    },
                    401 | 403 => LlmError::NotAllowed(message),
                    408 | 504 => LlmError::Timeout(message),
                    400 | 404 | 409 | 413 | 422 => LlmError::InvalidRequest(message),
                    _ => LlmError::Provider(message),
                }
            }
        }
    }

    fn transport_error(&self, url: &url::Url, error: &reqwest::Error) -> LlmError {
        // reqwest's message names the URL, never the headers; scrub anyway.
        let message = self.scrub(format!("{url}: {}", cause_chain(error)));
        if error.is_timeout() {
            LlmError::Timeout(format!(
                "no answer within {:?} from {message}",
                self.timeout
            ))
        } else if error.is_connect() {
            LlmError::Provider(format!("cannot connect to {message}"))
        } else {
            LlmError::Provider(message)
        }
    }

    /// `text` with the API key, should it appear, replaced.
    fn scrub(&self, text: String) -> String {
        match &self.secret {
            Some(secret) if text.contains(secret.as_str()) => {
                text.replace(secret.as_str(), "<redacted>")
            }
            _ => text,
        }
    }
}

/// Whether an answer is read whole or as a stream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Streaming {
    No,
    Yes,
}

/// One failed attempt.
enum Failure {
    Status {
        status: reqwest::StatusCode,
        retry_after: Option<Duration>,
        body: String,
    },
    Transport(reqwest::Error),
    /// No response headers within the timeout.
    NoAnswer,
}

impl Failure {
    async fn from_response(response: reqwest::Response) -> Self {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let body = response.text().await.unwrap_or_default();
        Failure::Status {
            status,
            retry_after,
            body,
        }
    }

    /// Rate limits, server trouble (529 is Anthropic's "overloaded") and
    /// failures to connect or to hear back pass; other refusals would repeat.
    fn retryable(&self) -> bool {
        match self {
            Failure::Status { status, .. } => {
                matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504 | 529)
            }
            Failure::Transport(error) => {
                error.is_connect() || error.is_timeout() || error.is_request()
            }
            Failure::NoAnswer => true,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Status { retry_after, .. } => *retry_after,
            Failure::Transport(_) | Failure::NoAnswer => None,
        }
    }

    fn event_attributes(
        &self,
        attempt: u32,
        error: &LlmError,
        retry_in: Option<Duration>,
    ) -> Vec<KeyValue> {
        let mut attributes = vec![
            KeyValue::new(semconv::GLASSBOX_LLM_ATTEMPT, i64::from(attempt)),
            KeyValue::new(semconv::ERROR_TYPE, error.error_type()),
            KeyValue::new(semconv::EXCEPTION_MESSAGE, error.to_string()),
        ];
        if let Failure::Status { status, .. } = self {
            attributes.push(KeyValue::new(
                semconv::HTTP_RESPONSE_STATUS_CODE,
                i64::from(status.as_u16()),
            ));
        }
        if let Some(wait) = retry_in {
            attributes.push(KeyValue::new(
                semconv::GLASSBOX_LLM_RETRY_DELAY,
                wait.as_secs_f64(),
            ));
        }
        attributes
    }
}

/// A header carrying a credential.
pub(super) fn header_value(text: &str) -> Result<HeaderValue, LlmError> {
    HeaderValue::from_str(text).map_err(|_| {
        LlmError::InvalidRequest("the API key holds characters no header can carry".into())
    })
}

/// `Retry-After` as seconds or an HTTP date, or OpenAI's `retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(millis) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok()) {
        return (millis.is_finite() && millis >= 0.0)
            .then(|| Duration::from_secs_f64(millis / 1e3));
    }
    let value = text(reqwest::header::RETRY_AFTER.as_str())?.trim();
    match value.parse::<f64>() {
        Ok(secs) => (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs)),
        Err(_) => httpdate::parse_http_date(value)
            .ok()
            .map(|at| at.duration_since(SystemTime::now()).unwrap_or_default()),
    }
}

/// Turns one provider's Server-Sent Events into stream events.
pub(super) trait SseDecoder: Send + 'static {
    /// The events one SSE message carries (often none, sometimes several).
    fn decode(&mut self, event: &Event) -> Result<Vec<StreamEvent>, String>;
    /// Whether the answer is complete; a stream ending before then broke.
    fn finished(&self) -> bool;
}

struct DecodeState<S, D> {
    events: S,
    decoder: D,
    pending: VecDeque<StreamEvent>,
    source: String,
    /// SSE messages received, for messages about a break.
    received: usize,
    over: bool,
}

impl<S, D, E> DecodeState<S, D>
where
    S: futures_util::Stream<Item = Result<Event, eventsource_stream::EventStreamError<E>>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
    D: SseDecoder,
{
    async fn next(mut self) -> Option<(Result<StreamEvent, LlmError>, Self)> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some((Ok(event), self));
            }
            if self.over {
                return None;
            }
            let failure = match self.events.next().await {
                Some(Ok(event)) => {
                    self.received += 1;
                    match self.decoder.decode(&event) {
                        Ok(events) => {
                            self.pending.extend(events);
                            self.over = self.decoder.finished();
                            continue;
                        }
                        Err(reason) => format!(
                            "malformed stream event {} from {}: {reason}",
                            self.received, self.source
                        ),
                    }
                }
                Some(Err(error)) => format!(
                    "the stream from {} broke after {} events: {}",
                    self.source,
                    self.received,
                    cause_chain(&error)
                ),
                None if self.decoder.finished() => return None,
                None => format!(
                    "the stream from {} ended after {} events, before the answer was complete",
                    self.source, self.received
                ),
            };
            self.over = true;
            return Some((Err(LlmError::Provider(failure)), self));
        }
    }
}

/// The error shape OpenAI and Anthropic share: `{"error": {"message": ...}}`.
#[derive(serde::Deserialize)]
pub(super) struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(serde::Deserialize)]
pub(super) struct ErrorDetail {
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_dates_and_milliseconds() {
        let headers = |pairs: &[(&'static str, &str)]| {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.insert(*name, value.parse().unwrap());
            }
            map
        };
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2"), ("retry-after-ms", "250")])),
            Some(Duration::from_millis(250))
        );
        let soon = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
        let wait = retry_after(&headers(&[("retry-after", &soon)])).unwrap();
        assert!(wait > Duration::from_secs(28) && wait <= Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&[("retry-after", "-1")])), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")])), None);
        assert_eq!(retry_after(&headers(&[])), None);
    }
}
