//! The OTLP span exporter: each batch is encoded once, on the export thread
//! ([`TraceEncoder`]), and its bytes sent over gRPC or HTTP/protobuf from
//! the export runtime, retried as the OTLP specification asks when the
//! collector says it may succeed later. Configured as `opentelemetry-otlp`'s
//! exporter is, by the `OTEL_EXPORTER_OTLP_*` variables and their `TRACES_`
//! forms; metrics and logs, a few requests a minute, still go through it.

use super::config::{
    OtlpProtocol, OtlpTarget, export_timeout, signal_protocol, signal_setting, with_signal_path,
};
use super::otlp_encoding::TraceEncoder;
use super::otlp_tls::OtlpTls;
use crate::text::{cause_chain, excerpt};
use backon::{ExponentialBuilder, Retryable};
use bytes::{BufMut, Bytes};
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use prost::Message;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tonic::client::Grpc;
use tonic::codec::CompressionEncoding;
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::transport::{Channel, Endpoint};

const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
/// The most of a collector's answer read: it says how many spans it took.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const USER_AGENT: &str = concat!("glassbox/", env!("CARGO_PKG_VERSION"));

/// Where and how spans are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SpanExportConfig {
    pub protocol: OtlpProtocol,
    /// The whole URL: for HTTP, with `/v1/traces`.
    pub endpoint: String,
    pub headers: Vec<(String, String)>,
    pub timeout: Duration,
    pub compression: Compression,
    pub tls: OtlpTls,
}

/// How request bodies are compressed: the values the specification names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Compression {
    #[default]
    None,
    Gzip,
}

impl SpanExportConfig {
    /// `target`'s choices first, then the process environment.
    pub fn from_env(target: &OtlpTarget) -> Result<Self, String> {
        Self::resolve(target, &crate::env::var)
    }

    /// `target`'s choices first, then the variables `var` reads.
    fn resolve(target: &OtlpTarget, var: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let setting = |name: &str| signal_setting("TRACES", name, var);
        let protocol = signal_protocol(target, "TRACES", var)?;
        let for_protocol = |base: &str| match protocol {
            OtlpProtocol::HttpProtobuf => with_signal_path(base, "v1/traces"),
            OtlpProtocol::Grpc => base.to_owned(),
        };
        let endpoint = match (&target.endpoint, var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
            (Some(base), _) => for_protocol(base),
            (None, Some(whole)) => whole,
            (None, None) => match var("OTEL_EXPORTER_OTLP_ENDPOINT") {
                Some(base) => for_protocol(&base),
                None => match protocol {
                    OtlpProtocol::HttpProtobuf => "http://localhost:4318/v1/traces".to_owned(),
                    OtlpProtocol::Grpc => "http://localhost:4317".to_owned(),
                },
            },
        };
        let headers = match setting("HEADERS") {
            Some((name, value)) => parse_headers(&value).map_err(|e| format!("{name}: {e}"))?,
            None => Vec::new(),
        };
        let compression = match setting("COMPRESSION") {
            Some((name, value)) => match value.trim().to_ascii_lowercase().as_str() {
                "gzip" => Compression::Gzip,
                "none" => Compression::None,
                _ => {
                    return Err(format!(
                        "{name}={value}: spans can be sent with `gzip` or `none`"
                    ));
                }
            },
            None => Compression::None,
        };
        Ok(SpanExportConfig {
            protocol,
            endpoint,
            headers,
            timeout: export_timeout("TRACES", var)?,
            compression,
            tls: OtlpTls::resolve("TRACES", var)?,
        })
    }
}

/// `key=value` pairs separated by commas, values percent-encoded, as the
/// specification writes `OTEL_EXPORTER_OTLP_HEADERS`. Errors never quote a
/// value: headers carry credentials.
fn parse_headers(list: &str) -> Result<Vec<(String, String)>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(index, entry)| {
            let (key, value) = entry
                .split_once('=')
                .ok_or_else(|| format!("entry {} is not `key=value`", index + 1))?;
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| format!("the value of `{}` is not UTF-8 once decoded", key.trim()))?;
            Ok((key.trim().to_ascii_lowercase(), value.into_owned()))
        })
        .collect()
}

/// Sends span batches to one collector.
pub(super) struct OtlpSpanExporter {
    encoder: TraceEncoder,
    transport: Arc<Transport>,
    /// Where requests run: connections belong to this runtime.
    runtime: tokio::runtime::Handle,
    closed: AtomicBool,
    rejection_logged: AtomicBool,
}

impl std::fmt::Debug for OtlpSpanExporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpSpanExporter").finish_non_exhaustive()
    }
}

impl OtlpSpanExporter {
    /// Connects lazily: a collector that is down fails exports, not the host's start.
    pub fn new(config: &SpanExportConfig, runtime: tokio::runtime::Handle) -> Result<Self, String> {
        let _entered = runtime.enter();
        let transport = match config.protocol {
            OtlpProtocol::Grpc => Transport::grpc(config)?,
            OtlpProtocol::HttpProtobuf => Transport::http(config)?,
        };
        Ok(OtlpSpanExporter {
            encoder: TraceEncoder::new(&Resource::builder_empty().build()),
            transport: Arc::new(transport),
            runtime,
            closed: AtomicBool::new(false),
            rejection_logged: AtomicBool::new(false),
        })
    }

    /// A collector may take a request but reject some of its spans. Said
    /// once: a collector rejecting every batch must not flood the log.
    fn log_rejection(&self, answer: ExportTraceServiceResponse) {
        let Some(partial) = answer.partial_success else {
            return;
        };
        let rejected = partial.rejected_spans > 0 || !partial.error_message.is_empty();
        if rejected && !self.rejection_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "the collector rejected {} of the spans sent: {}; further rejections are not logged",
                partial.rejected_spans,
                crate::text::printable(&partial.error_message)
            );
        }
    }
}

impl SpanExporter for OtlpSpanExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.closed.load(Ordering::Acquire) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let encoded = self.encoder.encode(&batch);
        drop(batch);
        let body = self.transport.body(encoded).map_err(|error| {
            OTelSdkError::InternalFailure(format!("cannot compress the spans: {error}"))
        })?;
        let transport = self.transport.clone();
        let sent = self.runtime.spawn(async move {
            (|| transport.send(body.clone()))
                .retry(retry_policy())
                .sleep(tokio::time::sleep)
                .when(|failure| failure.retryable)
                .await
        });
        // An export given up on (its time limit passed) stops retrying.
        let mut sent = AbortOnDrop(sent);
        match (&mut sent.0).await {
            Ok(Ok(answer)) => {
                self.log_rejection(answer);
                Ok(())
            }
            Ok(Err(failure)) => Err(OTelSdkError::InternalFailure(failure.reason)),
            Err(stopped) => Err(OTelSdkError::InternalFailure(format!(
                "the export stopped: {stopped}"
            ))),
        }
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.encoder.set_resource(resource);
    }
}

/// The specification's advice: a few retries, backing off exponentially with jitter.
fn retry_policy() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(100))
        .with_max_delay(Duration::from_millis(1600))
        .with_max_times(3)
        .with_jitter()
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Why a request failed, and whether trying again may help.
#[derive(Debug)]
struct Failure {
    reason: String,
    retryable: bool,
}

enum Transport {
    Grpc {
        client: Grpc<Channel>,
        metadata: MetadataMap,
    },
    /// The client carries the headers and the time limit.
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
        gzip: bool,
    },
}

impl Transport {
    fn grpc(config: &SpanExportConfig) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(config.endpoint.clone())
            .map_err(|e| format!("`{}` is not a gRPC endpoint: {e}", config.endpoint))?
            .timeout(config.timeout)
            .user_agent(USER_AGENT)
            .map_err(|e| e.to_string())?;
        let endpoint = if config.endpoint.starts_with("https:") {
            endpoint
                .tls_config(config.tls.tonic())
                .map_err(|e| format!("cannot set up TLS for `{}`: {e}", config.endpoint))?
        } else {
            endpoint
        };
        let mut metadata = MetadataMap::new();
        for (key, value) in &config.headers {
            let key = MetadataKey::from_bytes(key.as_bytes())
                .map_err(|_| format!("`{key}` cannot be a gRPC header name"))?;
            let value = MetadataValue::try_from(value.as_str())
                .map_err(|_| format!("the value of `{key}` cannot be a gRPC header value"))?;
            metadata.append(key, value);
        }
        let client = Grpc::new(endpoint.connect_lazy());
        let client = match config.compression {
            Compression::Gzip => client.send_compressed(CompressionEncoding::Gzip),
            Compression::None => client,
        };
        Ok(Transport::Grpc { client, metadata })
    }

    fn http(config: &SpanExportConfig) -> Result<Self, String> {
        use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
        let url = reqwest::Url::parse(&config.endpoint)
            .map_err(|e| format!("`{}` is not a URL: {e}", config.endpoint))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        let gzip = config.compression == Compression::Gzip;
        if gzip {
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        for (key, value) in &config.headers {
            let name = HeaderName::from_bytes(key.as_bytes())
                .map_err(|_| format!("`{key}` cannot be an HTTP header name"))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of `{key}` cannot be an HTTP header value"))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let (authority, identity) = config.tls.reqwest();
        let mut client = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .default_headers(headers)
            .timeout(config.timeout);
        for certificate in authority {
            client = client.add_root_certificate(certificate);
        }
        if let Some(identity) = identity {
            client = client.identity(identity);
        }
        let client = client
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {}", cause_chain(&e)))?;
        Ok(Transport::Http { client, url, gzip })
    }

    /// The request body of a batch: compressed here for HTTP, once for all
    /// its attempts; gRPC compresses its own frames.
    fn body(&self, encoded: Vec<u8>) -> std::io::Result<Bytes> {
        match self {
            Transport::Http { gzip: true, .. } => {
                let mut compressing = GzEncoder::new(
                    Vec::with_capacity(encoded.len() / 4),
                    flate2::Compression::default(),
                );
                compressing.write_all(&encoded)?;
                Ok(compressing.finish()?.into())
            }
            _ => Ok(encoded.into()),
        }
    }

    async fn send(&self, body: Bytes) -> Result<ExportTraceServiceResponse, Failure> {
        Ok(match self {
            Transport::Grpc { client, metadata } => {
                let mut client = client.clone();
                client.ready().await.map_err(|error| Failure {
                    reason: format!("cannot connect: {}", cause_chain(&error)),
                    retryable: true,
                })?;
                let mut request = tonic::Request::new(body);
                *request.metadata_mut() = metadata.clone();
                let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
                client
                    .unary(request, path, EncodedTraces)
                    .await
                    .map_err(grpc_failure)?
                    .into_inner()
            }
            Transport::Http { client, url, .. } => {
                let sent = client.post(url.clone()).body(body).send().await;
                let response = sent.map_err(|error| Failure {
                    reason: cause_chain(&error),
                    retryable: true,
                })?;
                let status = response.status();
                let body = read_answer(response).await;
                if !status.is_success() {
                    return Err(Failure {
                        reason: format!(
                            "the collector answered {status}: {}",
                            excerpt(&String::from_utf8_lossy(&body))
                        ),
                        retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
                    });
                }
                // A collector may answer with an empty body, or not in protobuf.
                ExportTraceServiceResponse::decode(body.as_ref()).unwrap_or_default()
            }
        })
    }
}

/// The collector's answer, up to [`MAX_ANSWER_BYTES`].
async fn read_answer(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ANSWER_BYTES - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ANSWER_BYTES {
            break;
        }
    }
    body
}

/// The codes the OTLP specification says to retry.
fn grpc_failure(status: tonic::Status) -> Failure {
    use tonic::Code;
    let retryable = matches!(
        status.code(),
        Code::Cancelled
            | Code::DeadlineExceeded
            | Code::Aborted
            | Code::OutOfRange
            | Code::Unavailable
            | Code::DataLoss
    );
    // The message is often a summary ("tcp connect error"); the causes say why.
    let message = status.message();
    let reason = match std::error::Error::source(&status).map(cause_chain) {
        Some(causes) if causes.contains(message) => causes,
        Some(causes) => format!("{message}: {causes}"),
        None => message.to_owned(),
    };
    Failure {
        reason: format!("{:?}: {reason}", status.code()),
        retryable,
    }
}

/// Sends a request already encoded; reads the answer with prost.
struct EncodedTraces;

impl Codec for EncodedTraces {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = EncodedTraces;
    type Decoder = tonic_prost::ProstDecoder<ExportTraceServiceResponse>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedTraces
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

impl Encoder for EncodedTraces {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::config::listed;

    fn resolve(target: &OtlpTarget, vars: &[(&str, &str)]) -> Result<SpanExportConfig, String> {
        SpanExportConfig::resolve(target, &listed(vars))
    }

    fn from_env() -> OtlpTarget {
        OtlpTarget {
            traces: true,
            ..OtlpTarget::default()
        }
    }

    #[test]
    fn the_endpoint_comes_from_the_target_then_the_traces_variable_then_the_generic_one() {
        let explicit = OtlpTarget::new("http://collector:4318/", OtlpProtocol::HttpProtobuf);
        let config = resolve(
            &explicit,
            &[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://x")],
        );
        assert_eq!(config.unwrap().endpoint, "http://collector:4318/v1/traces");

        let whole = [
            (
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://traces:4318/custom",
            ),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4318"),
        ];
        assert_eq!(
            resolve(&from_env(), &whole).unwrap().endpoint,
            "http://traces:4318/custom",
            "a signal's own endpoint is used as it is"
        );
        let generic = [("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4318")];
        assert_eq!(
            resolve(&from_env(), &generic).unwrap().endpoint,
            "http://all:4318/v1/traces"
        );
        let grpc = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://all:4317"),
            ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "grpc"),
        ];
        let config = resolve(&from_env(), &grpc).unwrap();
        assert_eq!(
            (config.protocol, config.endpoint.as_str()),
            (OtlpProtocol::Grpc, "http://all:4317")
        );
        let defaults = resolve(&from_env(), &[]).unwrap();
        assert_eq!(
            (
                defaults.protocol,
                defaults.endpoint.as_str(),
                defaults.timeout
            ),
            (
                OtlpProtocol::HttpProtobuf,
                "http://localhost:4318/v1/traces",
                crate::telemetry::config::DEFAULT_EXPORT_TIMEOUT
            )
        );
    }

    #[test]
    fn headers_and_timeout_are_read_with_the_traces_variables_first() {
        let config = resolve(
            &from_env(),
            &[
                ("OTEL_EXPORTER_OTLP_HEADERS", "x-ignored=1"),
                (
                    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                    "Authorization=Basic%20abc%3D, x-team = blue ,",
                ),
                ("OTEL_EXPORTER_OTLP_TIMEOUT", "2500"),
            ],
        )
        .unwrap();
        assert_eq!(
            config.headers,
            [
                ("authorization".to_owned(), "Basic abc=".to_owned()),
                ("x-team".to_owned(), "blue".to_owned())
            ]
        );
        assert_eq!(config.timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_settings_are_refused_naming_the_variable_and_never_a_header_value() {
        for (vars, expected) in [
            (
                [("OTEL_EXPORTER_OTLP_HEADERS", "api-key=secret,broken")],
                "OTEL_EXPORTER_OTLP_HEADERS: entry 2 is not `key=value`",
            ),
            (
                [("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "soon")],
                "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT=soon is not a positive whole number of milliseconds",
            ),
            (
                [("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd")],
                "OTEL_EXPORTER_OTLP_COMPRESSION=zstd: spans can be sent with `gzip` or `none`",
            ),
            (
                [("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json")],
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: unsupported OTLP protocol `http/json`; use `grpc` or `http/protobuf`",
            ),
        ] {
            let error = resolve(&from_env(), &vars).unwrap_err();
            assert_eq!(error, expected);
            assert!(!error.contains("secret"));
        }
    }

    #[test]
    fn compression_is_gzip_or_none_with_the_traces_variable_first() {
        let compression = |vars: &[(&str, &str)]| resolve(&from_env(), vars).unwrap().compression;
        assert_eq!(compression(&[]), Compression::None);
        assert_eq!(
            compression(&[("OTEL_EXPORTER_OTLP_COMPRESSION", " GZIP ")]),
            Compression::Gzip
        );
        assert_eq!(
            compression(&[
                ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
                ("OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "none"),
            ]),
            Compression::None
        );
    }

    #[test]
    fn a_gzip_body_over_http_holds_the_encoded_batch() {
        use std::io::Read as _;
        let config = SpanExportConfig {
            protocol: OtlpProtocol::HttpProtobuf,
            endpoint: "http://localhost:4318/v1/traces".into(),
            headers: Vec::new(),
            timeout: Duration::from_secs(1),
            compression: Compression::Gzip,
            tls: OtlpTls::default(),
        };
        let encoded = b"spans ".repeat(1000);
        let body = Transport::http(&config)
            .unwrap()
            .body(encoded.clone())
            .unwrap();
        assert!(body.len() < encoded.len() / 10, "{} bytes", body.len());
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(body.as_ref())
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, encoded);
        let plain = SpanExportConfig {
            compression: Compression::None,
            ..config
        };
        let body = Transport::http(&plain).unwrap().body(encoded.clone());
        assert_eq!(body.unwrap().as_ref(), encoded.as_slice());
    }
}
