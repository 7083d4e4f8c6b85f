//! An OTLP/gRPC receiver on loopback that counts the spans it is sent and
//! keeps nothing. It runs in a process of its own (this benchmark run with
//! `--receive`), as a collector does, so that its CPU time is not the host's;
//! stopping it closes its port and every connection, as a collector that goes
//! down does. It reads of each request only what counting needs: it shares
//! the host's two cores, and decoding every attribute, as a collector must,
//! would count the rig's work in the host's figures.

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
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::SERVICE_NAME;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::codegen::{Body, BoxFuture, Service, StdError, http};
use tonic::{Request, Response, Status};

/// The flag that makes this benchmark's binary a receiver listening on the address after it.
pub const RECEIVE_FLAG: &str = "--receive";

/// The benchmark's handle on a receiver process.
pub struct CountingReceiver {
    endpoint: String,
    process: Child,
    control: Mutex<(ChildStdin, BufReader<ChildStdout>)>,
}

impl CountingReceiver {
    pub fn start() -> Self {
        let mut process = Command::new(std::env::current_exe().expect("cannot find this program"))
            .args([RECEIVE_FLAG, "127.0.0.1:0"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cannot start the receiver process");
        let stdin = process.stdin.take().expect("a piped stdin");
        let mut stdout = BufReader::new(process.stdout.take().expect("a piped stdout"));
        let address = read_reply(&mut stdout);
        CountingReceiver {
            endpoint: format!("http://{address}"),
            process,
            control: Mutex::new((stdin, stdout)),
        }
    }

    /// Listens again on the same address after [`CountingReceiver::stop`],
    /// as a collector coming back does, counting on from where it stopped.
    pub fn restart(&mut self) {
        self.ask("start");
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        self.ask("count")
            .parse()
            .expect("the receiver answers a count")
    }

    /// Closes the port and every connection: exports now fail.
    pub fn stop(&mut self) {
        self.ask("stop");
    }

    /// CPU time the receiver's process has used, in nanoseconds.
    pub fn cpu_time(&self) -> u64 {
        let tasks = format!("/proc/{}/task", self.process.id());
        std::fs::read_dir(tasks)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
            .filter_map(|stat| stat.split_whitespace().next()?.parse::<u64>().ok())
            .sum()
    }

    fn ask(&self, command: &str) -> String {
        let mut control = self.control.lock().unwrap();
        let (stdin, stdout) = &mut *control;
        writeln!(stdin, "{command}").expect("the receiver's process has gone");
        read_reply(stdout)
    }
}

impl Drop for CountingReceiver {
    fn drop(&mut self) {
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

fn read_reply(stdout: &mut impl BufRead) -> String {
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .expect("the receiver's process has gone");
    line.trim().to_owned()
}

/// The receiver's process: listens on `address`, answers each command its
/// parent writes to its stdin (`count`, `stop`, `start`) with the spans
/// counted so far, and ends when that stdin closes.
pub fn receive(address: &str) {
    let spans = Arc::new(AtomicU64::new(0));
    let listener = std::net::TcpListener::bind(address).expect("cannot listen on loopback");
    let address = listener.local_addr().expect("a bound address");
    let mut server = Some(serve(listener, &spans));
    println!("{address}");
    for command in std::io::stdin().lines() {
        match command.expect("a command from the benchmark").as_str() {
            "count" => {}
            // Waits for the server's thread to end, so the count is final.
            "stop" => {
                if let Some(server) = server.take() {
                    server.shutdown_timeout(Duration::from_secs(5));
                }
            }
            "start" => {
                let listener = std::net::TcpListener::bind(address)
                    .expect("cannot listen on the receiver's address again");
                server = Some(serve(listener, &spans));
            }
            other => panic!("the receiver has no command `{other}`"),
        }
        println!("{}", spans.load(Ordering::Relaxed));
    }
}

fn serve(listener: std::net::TcpListener, spans: &Arc<AtomicU64>) -> tokio::runtime::Runtime {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("otlp-receiver")
        .enable_all()
        .build()
        .expect("cannot start the receiver's runtime");
    listener
        .set_nonblocking(true)
        .expect("a non-blocking socket");
    let counter = Counter(spans.clone());
    runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        tonic::transport::Server::builder()
            .add_service(counter.clone())
            .add_service(MetricsServiceServer::new(counter.clone()))
            .add_service(LogsServiceServer::new(counter))
            .serve_with_incoming(incoming)
            .await
            .map_err(std::io::Error::other)
    });
    runtime
}

#[derive(Clone)]
struct Counter(Arc<AtomicU64>);

/// `ExportTraceServiceRequest` as far as counting its spans needs: each
/// span is skipped whole, never decoded.
#[derive(Clone, PartialEq, prost::Message)]
struct SpanCount {
    #[prost(message, repeated, tag = "1")]
    resource_spans: Vec<ResourceSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ResourceSpans {
    #[prost(message, repeated, tag = "2")]
    scope_spans: Vec<ScopeSpans>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct ScopeSpans {
    #[prost(message, repeated, tag = "2")]
    spans: Vec<Skipped>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Skipped {}

/// The trace service, answering `Export` with the standard response.
impl<B> Service<http::Request<B>> for Counter
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let counter = self.clone();
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::default());
            Ok(grpc.unary(counter, request).await)
        })
    }
}

impl tonic::server::UnaryService<SpanCount> for Counter {
    type Response = ExportTraceServiceResponse;
    type Future = std::future::Ready<Result<Response<Self::Response>, Status>>;

    fn call(&mut self, request: Request<SpanCount>) -> Self::Future {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        std::future::ready(Ok(Response::new(ExportTraceServiceResponse::default())))
    }
}

impl tonic::server::NamedService for Counter {
    const NAME: &'static str = SERVICE_NAME;
}

#[tonic::async_trait]
impl MetricsService for Counter {
    async fn export(
        &self,
        _request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Counter {
    async fn export(
        &self,
        _request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}
