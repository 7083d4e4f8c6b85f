//! The host inside another program: the application's own tracer and meter
//! providers carry the host's spans and metrics, under the application's span.

use crate::support::otlp::{Receiver, string};
use crate::support::{react_agent, tools};
use glassbox::llm::ScriptedProvider;
use glassbox::telemetry::{ContentConfig, OtlpProtocol};
use glassbox::{RunRequest, Runtime, Telemetry};
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread")]
async fn an_application_hands_over_its_providers_and_its_span() {
    let receiver = Receiver::start(OtlpProtocol::HttpProtobuf).await;
    let resource = Resource::builder()
        .with_service_name("weather-app")
        .with_attribute(KeyValue::new("team", "forecasts"))
        .build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", receiver.endpoint()))
        .build()
        .unwrap();
    let metrics = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/metrics", receiver.endpoint()))
        .build()
        .unwrap();
    let tracer_provider = SdkTracerProvider::builder()
        .with_resource(resource.clone())
        .with_batch_exporter(spans)
        .build();
    let meter_provider = SdkMeterProvider::builder()
        .with_resource(resource)
        .with_reader(PeriodicReader::builder(metrics).build())
        .build();

    let telemetry = Arc::new(
        Telemetry::with_providers(
            tracer_provider.clone(),
            meter_provider.clone(),
            &ContentConfig::default(),
        )
        .unwrap(),
    );
    let runtime = Runtime::new(
        react_agent().await,
        tools().await,
        Arc::new(ScriptedProvider::demo()),
        telemetry.clone(),
    );
    let request_span = tracer_provider.tracer("weather-app").start("GET /forecast");
    let cx = Context::current_with_span(request_span);
    let answer = runtime
        .run(RunRequest {
            parent: cx.clone(),
            ..RunRequest::text("Which is warmer right now, Paris or Lisbon?")
        })
        .await
        .unwrap();
    assert!(answer.starts_with("Lisbon is warmer"), "{answer}");
    cx.span().end();

    // The host flushes the application's providers and leaves them running:
    // the application's own span, ended after, still goes out at its shutdown.
    tokio::task::spawn_blocking(move || {
        telemetry.shutdown().unwrap();
        tracer_provider.shutdown().unwrap();
        meter_provider.shutdown().unwrap();
    })
    .await
    .unwrap();

    let exported = receiver.resource_spans();
    let (resource, root) = exported
        .iter()
        .find(|(_, s)| s.name == "GET /forecast")
        .expect("the application's span");
    assert_eq!(string(resource, "service.name").unwrap(), "weather-app");
    let (agent_resource, agent) = exported
        .iter()
        .find(|(_, s)| s.name == "invoke_agent react-agent")
        .unwrap();
    assert_eq!(agent.parent_span_id, root.span_id);
    assert_eq!(string(agent_resource, "team").unwrap(), "forecasts");
    assert!(exported.iter().all(|(_, s)| s.trace_id == root.trace_id));
    assert_eq!(
        exported.len(),
        11,
        "the application's span and the run's ten"
    );
    assert!(receiver.metric("gen_ai.client.token.usage").is_some());
}
