//! A real OTLP receiver on loopback, over gRPC or HTTP/protobuf, that keeps
//! every export request it gets, gzip-compressed or not; it can also refuse
//! or stall trace exports, as a collector that is down or overloaded does.

use super::pki::Pki;
use axum::Router;
use axum::body::Bytes;
use axum::http::header::{AUTHORIZATION, CONTENT_ENCODING};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use glassbox::telemetry::OtlpProtocol;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::Metric;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;

/// What the receiver does with trace exports.
#[derive(Clone, Copy, Debug, Default)]
pub enum Intake {
    #[default]
    Accept,
    /// Answer UNAVAILABLE (503 over HTTP), as a collector that is down behind a proxy does.
    Refuse,
    /// Answer UNAVAILABLE to the next so many, then accept, as a collector
    /// restarting does.
    RefuseNext(u32),
    /// Take this long over each request, then accept it.
    Slow(std::time::Duration),
    /// Take each request but answer that one of its spans was rejected (a
    /// partial success), as a collector with limits of its own does.
    RejectOne,
}

/// What a collector under [`Intake::RejectOne`] says.
pub const REJECTION: &str = "a span was over the size limit";

#[derive(Default)]
struct Collected {
    intake: Intake,
    /// `authorization` header of each HTTP export request.
    authorizations: Vec<String>,
    /// The signal of each export request, and its compression
    /// (`content-encoding` or `grpc-encoding`; `identity` when none).
    encodings: Vec<(&'static str, String)>,
    traces: Vec<ExportTraceServiceRequest>,
    metrics: Vec<ExportMetricsServiceRequest>,
    logs: Vec<ExportLogsServiceRequest>,
}

type Shared = Arc<Mutex<Collected>>;

pub struct Receiver {
    endpoint: String,
    collected: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    pub async fn start(protocol: OtlpProtocol) -> Self {
        Self::serve(protocol, None).await
    }

    /// Over TLS with `pki`'s server certificate, taking only clients that
    /// show a certificate its authority signed.
    pub async fn start_tls(protocol: OtlpProtocol, pki: &Pki) -> Self {
        Self::serve(protocol, Some(pki)).await
    }

    async fn serve(protocol: OtlpProtocol, tls: Option<&Pki>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let endpoint = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let collected = Shared::default();
        let server = match protocol {
            OtlpProtocol::Grpc => {
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
                let mut builder = tonic::transport::Server::builder();
                if let Some(pki) = tls {
                    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
                    // tonic's server takes the process's provider; more than one is compiled in.
                    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
                    let config = ServerTlsConfig::new()
                        .identity(Identity::from_pem(
                            pki.read("server.pem"),
                            pki.read("server.key"),
                        ))
                        .client_ca_root(Certificate::from_pem(pki.read("ca.pem")));
                    builder = builder.tls_config(config).unwrap();
                }
                let router = builder
                    .add_service(
                        TraceServiceServer::new(Grpc(collected.clone())).accept_compressed(GZIP),
                    )
                    .add_service(
                        MetricsServiceServer::new(Grpc(collected.clone())).accept_compressed(GZIP),
                    )
                    .add_service(
                        LogsServiceServer::new(Grpc(collected.clone())).accept_compressed(GZIP),
                    );
                tokio::spawn(async move { router.serve_with_incoming(incoming).await.unwrap() })
            }
            OtlpProtocol::HttpProtobuf => {
                let (t, m, l) = (collected.clone(), collected.clone(), collected.clone());
                let app = Router::new()
                    .route(
                        "/v1/traces",
                        post(move |headers: HeaderMap, body: Bytes| async move {
                            let body = decompressed(&t, "traces", &headers, body);
                            if !admit(&t).await {
                                return Err(StatusCode::SERVICE_UNAVAILABLE);
                            }
                            let mut collected = t.lock().unwrap();
                            if let Some(value) = headers.get(AUTHORIZATION) {
                                collected
                                    .authorizations
                                    .push(value.to_str().unwrap().to_owned());
                            }
                            collected
                                .traces
                                .push(ExportTraceServiceRequest::decode(body.as_slice()).unwrap());
                            drop(collected);
                            Ok(answer(&t).encode_to_vec())
                        }),
                    )
                    .route(
                        "/v1/metrics",
                        post(move |headers: HeaderMap, body: Bytes| async move {
                            let body = decompressed(&m, "metrics", &headers, body);
                            m.lock().unwrap().metrics.push(
                                ExportMetricsServiceRequest::decode(body.as_slice()).unwrap(),
                            );
                            ExportMetricsServiceResponse::default().encode_to_vec()
                        }),
                    )
                    .route(
                        "/v1/logs",
                        post(move |headers: HeaderMap, body: Bytes| async move {
                            let body = decompressed(&l, "logs", &headers, body);
                            l.lock()
                                .unwrap()
                                .logs
                                .push(ExportLogsServiceRequest::decode(body.as_slice()).unwrap());
                            ExportLogsServiceResponse::default().encode_to_vec()
                        }),
                    );
                match tls {
                    Some(pki) => tokio::spawn(serve_tls(listener, app, server_tls(pki))),
                    None => tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
                }
            }
        };
        Receiver {
            endpoint,
            collected,
            server,
        }
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// From now on, treat trace exports as `intake` says.
    pub fn set_intake(&self, intake: Intake) {
        self.collected.lock().unwrap().intake = intake;
    }

    /// The value of each data point of the sum metric `name`, with its attributes.
    pub fn sum(&self, name: &str) -> Vec<(Vec<KeyValue>, i64)> {
        use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point};
        let Some(Data::Sum(sum)) = self.metric(name).and_then(|m| m.data) else {
            return Vec::new();
        };
        sum.data_points
            .into_iter()
            .map(|point| {
                let value = match point.value {
                    Some(number_data_point::Value::AsInt(n)) => n,
                    other => panic!("{name} is not a whole number: {other:?}"),
                };
                (point.attributes, value)
            })
            .collect()
    }

    /// Every span received.
    pub fn spans(&self) -> Vec<Span> {
        self.resource_spans()
            .into_iter()
            .map(|(_, span)| span)
            .collect()
    }

    /// Every span received, with its resource's attributes.
    pub fn resource_spans(&self) -> Vec<(Vec<KeyValue>, Span)> {
        let collected = self.collected.lock().unwrap();
        let mut spans = Vec::new();
        for request in &collected.traces {
            for resource_spans in &request.resource_spans {
                let resource = resource_spans
                    .resource
                    .clone()
                    .unwrap_or_default()
                    .attributes;
                for scope in &resource_spans.scope_spans {
                    spans.extend(scope.spans.iter().map(|s| (resource.clone(), s.clone())));
                }
            }
        }
        spans
    }

    /// The metric named `name`, from the last export that carried it.
    pub fn metric(&self, name: &str) -> Option<Metric> {
        let collected = self.collected.lock().unwrap();
        collected
            .metrics
            .iter()
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|r| &r.scope_metrics)
            .flat_map(|s| &s.metrics)
            .rfind(|m| m.name == name)
            .cloned()
    }

    pub fn logs(&self) -> Vec<LogRecord> {
        let collected = self.collected.lock().unwrap();
        collected
            .logs
            .iter()
            .flat_map(|r| &r.resource_logs)
            .flat_map(|r| &r.scope_logs)
            .flat_map(|s| s.log_records.clone())
            .collect()
    }

    /// The `authorization` headers of the HTTP trace exports received.
    pub fn authorizations(&self) -> Vec<String> {
        self.collected.lock().unwrap().authorizations.clone()
    }

    /// Each export request's signal and compression, in the order they came.
    pub fn encodings(&self) -> Vec<(&'static str, String)> {
        self.collected.lock().unwrap().encodings.clone()
    }

    /// Everything received, as text, for searching for things that must not be there.
    pub fn dump(&self) -> String {
        let collected = self.collected.lock().unwrap();
        format!(
            "{:?}{:?}{:?}",
            collected.traces, collected.metrics, collected.logs
        )
    }

    pub fn is_empty(&self) -> bool {
        let collected = self.collected.lock().unwrap();
        collected.traces.is_empty() && collected.metrics.is_empty() && collected.logs.is_empty()
    }
}

/// A rustls server configuration that requires a client certificate.
fn server_tls(pki: &Pki) -> Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.path("ca.pem")).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain = CertificateDer::pem_file_iter(pki.path("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.path("server.key")).unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Serves `app` over TLS, each connection on a task of its own; a client
/// the handshake refuses is dropped.
async fn serve_tls(listener: TcpListener, app: Router, tls: Arc<rustls::ServerConfig>) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let (acceptor, app) = (acceptor.clone(), app.clone());
        tokio::spawn(async move {
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
        });
    }
}

/// The answer to a trace export taken.
fn answer(shared: &Shared) -> ExportTraceServiceResponse {
    let rejecting = matches!(shared.lock().unwrap().intake, Intake::RejectOne);
    ExportTraceServiceResponse {
        partial_success: rejecting.then(|| ExportTracePartialSuccess {
            rejected_spans: 1,
            error_message: REJECTION.to_owned(),
        }),
    }
}

const GZIP: tonic::codec::CompressionEncoding = tonic::codec::CompressionEncoding::Gzip;

/// An HTTP export request's body as sent before compression; notes its
/// compression for `signal`.
fn decompressed(
    shared: &Shared,
    signal: &'static str,
    headers: &HeaderMap,
    body: Bytes,
) -> Vec<u8> {
    use std::io::Read as _;
    let encoding = headers
        .get(CONTENT_ENCODING)
        .map_or("identity", |value| value.to_str().unwrap())
        .to_owned();
    let body = match encoding.as_str() {
        "gzip" => {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(body.as_ref())
                .read_to_end(&mut plain)
                .unwrap();
            plain
        }
        "identity" => body.to_vec(),
        other => panic!("a {signal} export compressed with {other}"),
    };
    shared.lock().unwrap().encodings.push((signal, encoding));
    body
}

/// The compression of a gRPC export request for `signal`, noted.
fn note_grpc_encoding<T>(shared: &Shared, signal: &'static str, request: &tonic::Request<T>) {
    let encoding = request
        .metadata()
        .get("grpc-encoding")
        .map_or("identity", |value| value.to_str().unwrap())
        .to_owned();
    shared.lock().unwrap().encodings.push((signal, encoding));
}

/// Waits or refuses as the intake says: `false` when the request is refused.
async fn admit(shared: &Shared) -> bool {
    let intake = {
        let mut collected = shared.lock().unwrap();
        let intake = collected.intake;
        if let Intake::RefuseNext(left) = intake {
            collected.intake = match left {
                0 | 1 => Intake::Accept,
                _ => Intake::RefuseNext(left - 1),
            };
        }
        intake
    };
    match intake {
        Intake::Accept | Intake::RefuseNext(0) | Intake::RejectOne => true,
        Intake::Refuse | Intake::RefuseNext(_) => false,
        Intake::Slow(delay) => {
            tokio::time::sleep(delay).await;
            true
        }
    }
}

struct Grpc(Shared);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        note_grpc_encoding(&self.0, "traces", &request);
        if !admit(&self.0).await {
            return Err(tonic::Status::unavailable("the collector is down"));
        }
        self.0.lock().unwrap().traces.push(request.into_inner());
        Ok(tonic::Response::new(answer(&self.0)))
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        note_grpc_encoding(&self.0, "metrics", &request);
        self.0.lock().unwrap().metrics.push(request.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        note_grpc_encoding(&self.0, "logs", &request);
        self.0.lock().unwrap().logs.push(request.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

/// The value of attribute `key`, if present.
pub fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

pub fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        Value::StringValue(s) => Some(s.clone()),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

pub fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        Value::IntValue(n) => Some(*n),
        other => panic!("{key} is not an integer: {other:?}"),
    }
}

pub fn double(attributes: &[KeyValue], key: &str) -> Option<f64> {
    match attribute(attributes, key)? {
        Value::DoubleValue(n) => Some(*n),
        other => panic!("{key} is not a double: {other:?}"),
    }
}

pub fn boolean(attributes: &[KeyValue], key: &str) -> Option<bool> {
    match attribute(attributes, key)? {
        Value::BoolValue(b) => Some(*b),
        other => panic!("{key} is not a boolean: {other:?}"),
    }
}

pub fn strings(attributes: &[KeyValue], key: &str) -> Option<Vec<String>> {
    match attribute(attributes, key)? {
        Value::ArrayValue(array) => Some(
            array
                .values
                .iter()
                .map(|v| match &v.value {
                    Some(Value::StringValue(s)) => s.clone(),
                    other => panic!("{key} holds a non-string: {other:?}"),
                })
                .collect(),
        ),
        other => panic!("{key} is not an array: {other:?}"),
    }
}

/// A trace or span id as W3C hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
