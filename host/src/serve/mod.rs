//! `glassbox serve`: a host's local agents over HTTP. Runs start from JSON
//! and answer in JSON, or stream their steps as Server-Sent Events; each joins
//! the caller's trace (`traceparent`, `baggage`) under a SERVER span. The
//! server keeps no state between requests, so any number of them can sit
//! behind a load balancer. On shutdown it stops accepting, lets runs in flight
//! finish for a bounded time, and leaves flushing telemetry to its caller.
//!
//! | method and path | answer |
//! |---|---|
//! | `GET /health` | `{"status": "ok", "runs_in_flight": n}`; 503 `draining` once shutting down |
//! | `GET /v1/agents` | [`api::AgentList`] |
//! | `POST /v1/agents/{name}/runs` | body [`api::RunBody`]; [`api::RunOutput`], or with `Accept: text/event-stream`, `step` events then `done` or `error` |
//! | `GET /metrics` | Prometheus text, when the telemetry keeps a Prometheus registry |

pub mod access;
pub mod tls;
pub use crate::agents::api;

use crate::agents::{AgentInput, CallDepth, RunError, RunRequest};
use crate::bindings::Bounded;
use crate::runtime::{Host, LocalAgent};
use crate::sandbox::Fault;
use crate::telemetry::{ActiveSpan, Step, StepSink, propagation, semconv};
use access::{Access, Caller, RunSlot};
use api::{AgentList, AgentSummary, ErrorBody, ErrorDetail, RunBody, RunOutput};
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Extension, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::Stream;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as ConnectionBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;

/// The route that starts runs, as recorded in `http.route`.
const RUNS_ROUTE: &str = "/v1/agents/{name}/runs";
/// How long a client may take to send a request's headers, and how long an
/// idle HTTP/2 connection goes unpinged.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// After the drain time, how long cancelled runs get to send their answer.
const ABANDONED_GRACE: Duration = Duration::from_secs(1);
/// The most header fields, and header bytes, a request may have: past them
/// it gets a JSON 431. HTTP/1 parsing allows more, so that these are the
/// limits a client meets.
const MAX_HEADERS: usize = 100;
const MAX_HEADER_BYTES: usize = 32 * 1024;
const MAX_HEADERS_PARSED: usize = 1000;

/// How [`serve`] serves.
pub struct ServeOptions {
    /// Who may call.
    pub access: Access,
    /// TLS with this configuration ([`tls::server_config`]); plain HTTP without.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// On shutdown, how long runs in flight may take to finish.
    pub drain: Duration,
    /// The largest request body accepted, in bytes; past it, a JSON 413.
    pub max_body: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            access: Access::Open,
            tls: None,
            drain: Duration::from_secs(30),
            max_body: 2 * 1024 * 1024,
        }
    }
}

/// How a server that was asked to stop did stop.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every run in flight finished.
    Drained,
    /// Runs were still going when the drain time ran out; they were cancelled.
    Abandoned { runs: usize },
}

struct Shared {
    host: Arc<Host>,
    access: Access,
    draining: AtomicBool,
    in_flight: AtomicUsize,
    /// Set when the drain time is up: runs still going stop and answer so.
    abandon: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    /// Completes once runs in flight must give up.
    async fn abandoned(&self) {
        let mut abandon = self.abandon.subscribe();
        // An error means the sender is gone, which only happens with the server.
        let _ = abandon.wait_for(|abandon| *abandon).await;
    }
}

/// What a run cancelled at shutdown answers.
fn abandoned_detail() -> ErrorDetail {
    ErrorDetail::new(
        semconv::error_type::UNAVAILABLE,
        "the host shut down before the run finished",
    )
}

/// Counts a run as in flight for as long as it lives, and holds its token's share.
struct InFlight {
    shared: Arc<Shared>,
    _token: RunSlot,
}

impl InFlight {
    fn new(shared: &Arc<Shared>, token: RunSlot) -> Self {
        shared.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight {
            shared: shared.clone(),
            _token: token,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `host`'s local agents on `listener` to the callers `options.access`
/// admits until `shutdown` completes, then lets runs in flight finish for at
/// most `options.drain`.
pub async fn serve(
    host: Arc<Host>,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    options: ServeOptions,
) -> std::io::Result<Stopped> {
    let ServeOptions {
        access,
        tls,
        drain,
        max_body,
    } = options;
    let shared = Arc::new(Shared {
        host,
        access,
        draining: AtomicBool::new(false),
        in_flight: AtomicUsize::new(0),
        abandon: tokio::sync::watch::Sender::new(false),
    });
    let api = Router::new()
        .route("/v1/agents", get(list_agents))
        .route(RUNS_ROUTE, post(start_run))
        .route("/metrics", get(metrics))
        .route_layer(from_fn_with_state(shared.clone(), authorize));
    let app = Router::new()
        .route("/health", get(health))
        .merge(api)
        .fallback(|| async {
            error(
                StatusCode::NOT_FOUND,
                semconv::error_type::INVALID_REQUEST,
                "no such endpoint; see GET /v1/agents",
            )
        })
        .method_not_allowed_fallback(|| async {
            error(
                StatusCode::METHOD_NOT_ALLOWED,
                semconv::error_type::INVALID_REQUEST,
                "this endpoint does not take that method; runs start with POST /v1/agents/{name}/runs",
            )
        })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(from_fn(limit_headers))
        .with_state(shared.clone());
    let connections = accept(listener, app, tls, shutdown).await;
    shared.draining.store(true, Ordering::SeqCst);
    // No new connections; those open finish the requests they have sent.
    if tokio::time::timeout(drain, connections.shutdown())
        .await
        .is_ok()
    {
        return Ok(Stopped::Drained);
    }
    let runs = shared.in_flight.load(Ordering::SeqCst);
    shared.abandon.send_replace(true);
    // The cancelled runs answer at once; give their connections a moment to close.
    tokio::time::sleep(ABANDONED_GRACE).await;
    Ok(Stopped::Abandoned { runs })
}

/// Serves connections from `listener`, over TLS when given `tls`, until
/// `shutdown` completes, and returns them for a graceful close. A client gets
/// [`HEADER_READ_TIMEOUT`] for its TLS handshake, and again to send each
/// request's headers (the wait for the next request on an idle connection
/// included), so slow or idle clients cannot hold connections (and file
/// descriptors) for ever.
async fn accept(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> GracefulShutdown {
    let mut connections = ConnectionBuilder::new(TokioExecutor::new());
    connections
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_headers(MAX_HEADERS_PARSED);
    connections
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    let tls = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, most likely: wait for some to close.
                    tracing::warn!("cannot accept a connection: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let client = Client {
            connections: connections.clone(),
            service: TowerToHyperService::new(app.clone()),
            watcher: graceful.watcher(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let Some(tls) = tls else {
                return client.serve(stream).await;
            };
            match tokio::time::timeout(HEADER_READ_TIMEOUT, tls.accept(stream)).await {
                Ok(Ok(stream)) => client.serve(stream).await,
                // A failed handshake is the client's to see; the server carries on.
                Ok(Err(error)) => tracing::debug!("a TLS handshake failed: {error}"),
                Err(_) => tracing::debug!("a TLS handshake took too long"),
            }
        });
    }
    graceful
}

/// What serving one client's connection takes, over TCP or TLS alike.
struct Client {
    connections: ConnectionBuilder<TokioExecutor>,
    service: TowerToHyperService<Router>,
    watcher: hyper_util::server::graceful::Watcher,
}

impl Client {
    /// Serves requests on `stream` until it closes, watched for a graceful shutdown.
    async fn serve<S>(self, stream: S)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let connection = self
            .connections
            .serve_connection_with_upgrades(TokioIo::new(stream), self.service);
        let _ = self.watcher.watch(connection.into_owned()).await;
    }
}

/// Answers requests with too many or too large header fields with a JSON 431.
async fn limit_headers(request: Request, next: Next) -> Response {
    let headers = request.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || bytes > MAX_HEADER_BYTES {
        return error(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            semconv::error_type::INVALID_REQUEST,
            format!(
                "the request has {} header fields in {bytes} bytes; the most accepted are {MAX_HEADERS} fields in {MAX_HEADER_BYTES} bytes",
                headers.len()
            ),
        );
    }
    next.run(request).await
}

async fn health(State(shared): State<Arc<Shared>>) -> Response {
    let runs = shared.in_flight.load(Ordering::SeqCst);
    if shared.draining.load(Ordering::SeqCst) {
        let body = serde_json::json!({ "status": "draining", "runs_in_flight": runs });
        return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    }
    Json(serde_json::json!({ "status": "ok", "runs_in_flight": runs })).into_response()
}

/// Lets a request through as its token's caller, or answers 401.
async fn authorize(
    State(shared): State<Arc<Shared>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = match &shared.access {
        Access::Open => Caller::anyone(),
        Access::Tokens(tokens) => {
            let presented = request
                .headers()
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.strip_prefix("Bearer "));
            match presented.and_then(|token| tokens.check(token.trim())) {
                Some(caller) => caller.clone(),
                None => {
                    let mut refused = error(
                        StatusCode::UNAUTHORIZED,
                        semconv::error_type::NOT_ALLOWED,
                        "this host needs a valid token: send `Authorization: Bearer TOKEN`",
                    );
                    refused.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        header::HeaderValue::from_static("Bearer"),
                    );
                    return refused;
                }
            }
        }
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

async fn list_agents(
    State(shared): State<Arc<Shared>>,
    Extension(Caller { allowed, .. }): Extension<Caller>,
) -> Json<AgentList> {
    let agents = shared
        .host
        .agents()
        .locals()
        .filter(|(name, _)| allowed.may_run(name))
        .map(|(name, local)| AgentSummary {
            name: name.to_owned(),
            description: local.component.info().description.clone(),
            version: local.component.info().version.clone(),
        })
        .collect();
    Json(AgentList { agents })
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    match shared.host.telemetry().prometheus_text() {
        Some(Ok(text)) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        Some(Err(reason)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            semconv::error_type::PROVIDER,
            reason,
        ),
        None => error(
            StatusCode::NOT_FOUND,
            semconv::error_type::INVALID_REQUEST,
            "this host does not serve Prometheus metrics (start it with --prometheus)",
        ),
    }
}

fn error(status: StatusCode, error_type: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail::new(error_type, message),
        trace_id: None,
    };
    (status, Json(body)).into_response()
}

/// What a finished run answers: its status and JSON.
fn run_response(outcome: &Result<String, RunError>, agent: &str, trace_id: String) -> Response {
    match outcome {
        Ok(output) => Json(RunOutput {
            output: output.clone(),
            trace_id,
        })
        .into_response(),
        Err(failure) => {
            let status = status_of(outcome);
            let body = ErrorBody {
                error: failure_detail(failure, agent),
                trace_id: Some(trace_id),
            };
            let mut response = (status, Json(body)).into_response();
            if let RunError::Stopped(Fault::AtCapacity(_)) = failure {
                // The slots free up as runs end: a moment is enough.
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            }
            response
        }
    }
}

/// A failed run as a guest error, so a calling host hands its agent the same case.
fn failure_detail(failure: &RunError, agent: &str) -> ErrorDetail {
    match failure {
        RunError::Agent(error) => ErrorDetail::from(error),
        RunError::Stopped(fault) => ErrorDetail::from(&fault.to_guest_error(agent)),
        RunError::Sandbox(_) => {
            ErrorDetail::new(semconv::error_type::NOT_ALLOWED, failure.to_string())
        }
    }
}

async fn start_run(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    name: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Result<Json<RunBody>, JsonRejection>,
) -> Response {
    let name = match name {
        Ok(Path(name)) => name,
        Err(rejection) => {
            return error(
                rejection.status(),
                semconv::error_type::INVALID_REQUEST,
                "the agent's name in the path is not valid UTF-8 text",
            );
        }
    };
    // An agent this caller may not run is, to this caller, not here.
    let allowed = &caller.allowed;
    let local = Some(&name)
        .filter(|name| allowed.may_run(name))
        .and_then(|name| shared.host.agents().local(name).cloned());
    let Some(local) = local else {
        let served: Vec<&str> = shared
            .host
            .agents()
            .locals()
            .map(|(n, _)| n)
            .filter(|n| allowed.may_run(n))
            .collect();
        return error(
            StatusCode::NOT_FOUND,
            api::AGENT_NOT_FOUND,
            format!(
                "no agent named `{name}` here (serving: {})",
                served.join(", ")
            ),
        );
    };
    let body = match body {
        Ok(Json(body)) => body,
        Err(rejection) => {
            return error(
                rejection.status(),
                semconv::error_type::INVALID_REQUEST,
                rejection.body_text(),
            );
        }
    };
    let depth = match headers
        .get(api::CALL_DEPTH_HEADER)
        .map(|v| v.to_str().ok().and_then(|v| v.parse::<u32>().ok()))
    {
        None => 0,
        Some(Some(depth)) => depth,
        Some(None) => {
            return error(
                StatusCode::BAD_REQUEST,
                semconv::error_type::INVALID_REQUEST,
                format!("`{}` must be a whole number", api::CALL_DEPTH_HEADER),
            );
        }
    };
    let Some(token_run) = caller.start_run() else {
        let mut refused = error(
            StatusCode::TOO_MANY_REQUESTS,
            semconv::error_type::UNAVAILABLE,
            "this token has as many runs in flight as it may; retry when one ends",
        );
        refused
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return refused;
    };
    let in_flight = InFlight::new(&shared, token_run);
    let span = server_span(&shared.host, &headers, &name);
    let trace_id = span.span().span_context().trace_id().to_string();
    let request = RunRequest {
        input: AgentInput::from(body.input),
        // The client's id goes on every span of the run: bounded as a guest's is.
        conversation_id: body.conversation_id.bounded(),
        parent: span.context().with_value(CallDepth(depth)),
        policy: local.policy.clone(),
        budget: local.budget,
    };
    let streamed = headers
        .get(header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/event-stream"));
    if streamed {
        let events = run_events(
            shared.host.clone(),
            local,
            name,
            request,
            span,
            trace_id,
            in_flight,
        );
        return Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response();
    }
    let outcome = tokio::select! {
        outcome = shared.host.run_component(&local.component, request) => outcome,
        () = shared.abandoned() => {
            let body = ErrorBody { error: abandoned_detail(), trace_id: Some(trace_id) };
            return (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        }
    };
    finish_server_span(span, &outcome, &name);
    drop(in_flight);
    run_response(&outcome, &name, trace_id)
}

/// The SERVER span a served run nests under, a child of the caller's span.
fn server_span(host: &Host, headers: &HeaderMap, agent: &str) -> ActiveSpan {
    let parent = propagation::extract(headers);
    host.telemetry().start_span(
        format!("POST {RUNS_ROUTE}"),
        SpanKind::Server,
        vec![
            KeyValue::new(semconv::HTTP_REQUEST_METHOD, "POST"),
            KeyValue::new(semconv::HTTP_ROUTE, RUNS_ROUTE),
            KeyValue::new(semconv::GEN_AI_AGENT_NAME, agent.to_owned()),
        ],
        &parent,
    )
}

/// The status a finished run answers with: a full host is unavailable, not failed.
fn status_of(outcome: &Result<String, RunError>) -> StatusCode {
    match outcome {
        Ok(_) => StatusCode::OK,
        Err(RunError::Stopped(Fault::AtCapacity(_))) => StatusCode::SERVICE_UNAVAILABLE,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn finish_server_span(mut span: ActiveSpan, outcome: &Result<String, RunError>, agent: &str) {
    span.span().set_attribute(KeyValue::new(
        semconv::HTTP_RESPONSE_STATUS_CODE,
        i64::from(status_of(outcome).as_u16()),
    ));
    if let Err(failure) = outcome {
        let detail = failure_detail(failure, agent);
        span.fail(failure.error_type(), detail.message);
    }
    span.finish();
}

/// A streamed run in progress: the run (until it ends), its steps, and the
/// events waiting to be sent.
struct Streaming<R> {
    run: Option<std::pin::Pin<Box<R>>>,
    steps: tokio::sync::mpsc::UnboundedReceiver<Step>,
    pending: std::collections::VecDeque<Event>,
    span: Option<ActiveSpan>,
    in_flight: Option<InFlight>,
    agent: String,
    trace_id: String,
}

impl<R> Streaming<R> {
    /// The run ended (`None`: cancelled at shutdown): the steps it reported
    /// last, then `done` or `error`.
    fn end(&mut self, outcome: Option<Result<String, RunError>>) {
        self.run = None;
        while let Ok(step) = self.steps.try_recv() {
            self.pending.push_back(step_event(&step));
        }
        if let (Some(span), Some(outcome)) = (self.span.take(), &outcome) {
            finish_server_span(span, outcome, &self.agent);
        }
        let trace_id = self.trace_id.clone();
        let last = match &outcome {
            Some(Ok(output)) => Event::default().event("done").json_data(RunOutput {
                output: output.clone(),
                trace_id,
            }),
            Some(Err(failure)) => Event::default().event("error").json_data(ErrorBody {
                error: failure_detail(failure, &self.agent),
                trace_id: Some(trace_id),
            }),
            None => Event::default().event("error").json_data(ErrorBody {
                error: abandoned_detail(),
                trace_id: Some(trace_id),
            }),
        };
        self.pending.push_back(event_or_comment(last));
        self.in_flight = None;
    }
}

fn step_event(step: &Step) -> Event {
    event_or_comment(Event::default().event("step").json_data(step))
}

/// The events of a streamed run. The run is polled by the stream itself, so
/// a client that hangs up cancels it.
fn run_events(
    host: Arc<Host>,
    local: LocalAgent,
    agent: String,
    mut request: RunRequest,
    span: ActiveSpan,
    trace_id: String,
    in_flight: InFlight,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let (sink, steps) = StepSink::channel();
    request.parent = sink.attach(&request.parent);
    let shared = in_flight.shared.clone();
    let run = async move {
        tokio::select! {
            outcome = host.run_component(&local.component, request) => Some(outcome),
            () = shared.abandoned() => None,
        }
    };
    let streaming = Streaming {
        run: Some(Box::pin(run)),
        steps,
        pending: std::collections::VecDeque::new(),
        span: Some(span),
        in_flight: Some(in_flight),
        agent,
        trace_id,
    };
    futures_util::stream::unfold(streaming, |mut streaming| async move {
        if let Some(event) = streaming.pending.pop_front() {
            return Some((Ok(event), streaming));
        }
        let run = streaming.run.as_mut()?;
        tokio::select! {
            biased;
            Some(step) = streaming.steps.recv() => {
                let event = step_event(&step);
                Some((Ok(event), streaming))
            }
            outcome = run => {
                streaming.end(outcome);
                let event = streaming.pending.pop_front()?;
                Some((Ok(event), streaming))
            }
        }
    })
}

fn event_or_comment(event: Result<Event, axum::Error>) -> Event {
    event.unwrap_or_else(|error| Event::default().comment(format!("unencodable event: {error}")))
}
