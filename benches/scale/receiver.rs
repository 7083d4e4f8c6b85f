//! An OTLP/gRPC receiver on loopback that counts the spans it is sent and
//! keeps nothing, on a runtime of its own so that stopping it closes every
//! connection, as a collector that goes down does.

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
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tonic::{Request, Response, Status};

pub struct CountingReceiver {
    address: std::net::SocketAddr,
    endpoint: String,
    spans: Arc<AtomicU64>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl CountingReceiver {
    pub fn start() -> Self {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("cannot listen on loopback");
        let address = listener.local_addr().unwrap();
        let mut receiver = CountingReceiver {
            address,
            endpoint: format!("http://{address}"),
            spans: Arc::new(AtomicU64::new(0)),
            runtime: None,
        };
        receiver.serve(listener);
        receiver
    }

    /// Listens again on the same address after [`CountingReceiver::stop`],
    /// as a collector coming back does, counting on from where it stopped.
    pub fn restart(&mut self) {
        let listener = std::net::TcpListener::bind(self.address)
            .expect("cannot listen on the receiver's address again");
        self.serve(listener);
    }

    fn serve(&mut self, listener: std::net::TcpListener) {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("otlp-receiver")
            .enable_all()
            .build()
            .expect("cannot start the receiver's runtime");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking socket");
        let counter = Counter(self.spans.clone());
        runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(counter.clone()))
                .add_service(MetricsServiceServer::new(counter.clone()))
                .add_service(LogsServiceServer::new(counter))
                .serve_with_incoming(incoming)
                .await
                .map_err(std::io::Error::other)
        });
        self.runtime = Some(runtime);
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Spans received so far.
    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }

    /// Closes the port and every connection: exports now fail.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for CountingReceiver {
    fn drop(&mut self) {
        self.stop();
    }
}

#[derive(Clone)]
struct Counter(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Counter {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let spans: usize = request
            .get_ref()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Ordering::Relaxed);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
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
