//! The host inside another program: the application's own tracer and meter
//! providers carry the host's spans and metrics, under the application's span.

use crate::support::otlp::{Receiver, string};
use crate::support::{only, react_agent, tools, workflow_manifest};
use glassbox::llm::ScriptedProvider;
use glassbox::manifest::Manifest;
use glassbox::telemetry::{ContentConfig, OtlpProtocol};
use glassbox::{Host, HostOptions, RunRequest, Telemetry, TelemetrySetup};
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::Arc;

/// An application with telemetry of its own, handed to the host.
struct Application {
    tracer_provider: SdkTracerProvider,
    meter_provider: SdkMeterProvider,
    telemetry: Arc<Telemetry>,
}

impl Application {
    /// Providers exporting to `receiver`, and the host's telemetry through them.
    fn exporting_to(receiver: &Receiver) -> Self {
        let (tracer_provider, meter_provider) = application_providers(receiver);
        let telemetry = Arc::new(
            Telemetry::with_providers(
                tracer_provider.clone(),
                meter_provider.clone(),
                &ContentConfig::default(),
            )
            .unwrap(),
        );
        Application {
            tracer_provider,
            meter_provider,
            telemetry,
        }
    }

    /// The host flushes the application's providers and leaves them running,
    /// so spans the application ends after still go out at its own shutdown.
    async fn shut_down(self) {
        tokio::task::spawn_blocking(move || {
            self.telemetry.shutdown().unwrap();
            self.tracer_provider.shutdown().unwrap();
            self.meter_provider.shutdown().unwrap();
        })
        .await
        .unwrap();
    }
}

/// The application's tracer and meter providers, exporting to `receiver`.
fn application_providers(receiver: &Receiver) -> (SdkTracerProvider, SdkMeterProvider) {
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
    (tracer_provider, meter_provider)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_application_hands_over_its_providers_and_its_span() {
    let receiver = Receiver::start(OtlpProtocol::HttpProtobuf).await;
    let application = Application::exporting_to(&receiver);
    let runtime = Host::builder(react_agent().await, Arc::new(ScriptedProvider::demo()))
        .tools(tools().await)
        .telemetry(application.telemetry.clone())
        .build();
    let request_span = application
        .tracer_provider
        .tracer("weather-app")
        .start("GET /forecast");
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
    application.shut_down().await;

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

/// The crate documentation's example, run: a manifest setting `fuel`,
/// `memory` and `timeout`, whose agent calls two others, loaded through
/// `Host::from_manifest` exactly as `glassbox run` loads it.
#[tokio::test(flavor = "multi_thread")]
async fn the_documented_embedding_runs_a_manifest_with_fuel_and_agents_calling_agents() {
    let receiver = Receiver::start(OtlpProtocol::HttpProtobuf).await;
    let application = Application::exporting_to(&receiver);
    let dir = tempfile::tempdir().unwrap();
    let path = workflow_manifest(dir.path());
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "timeout = \"1m\"",
        "timeout = \"1m\"\nmemory = \"128 MiB\"\nfuel = 20_000_000_000",
    );
    std::fs::write(&path, text).unwrap();
    let manifest = Manifest::load(&path).unwrap();
    assert_eq!(manifest.agent.policy.limits.fuel, Some(20_000_000_000));

    let options = HostOptions {
        telemetry: TelemetrySetup::Shared(application.telemetry.clone()),
        ..HostOptions::default()
    };
    let host = Host::from_manifest(&manifest, options).await.unwrap();
    let span = application
        .tracer_provider
        .tracer("trip-app")
        .start("POST /plans");
    let cx = Context::current_with_span(span);
    let answer = host
        .run(RunRequest {
            parent: cx.clone(),
            ..host.request("Plan a day out in Lisbon for three: the weather, and the museum tickets at 24 euros each?")
        })
        .await
        .unwrap();
    assert!(
        answer.contains("Tickets: three tickets cost 72 euros."),
        "{answer}"
    );
    cx.span().end();
    application.shut_down().await;

    let spans: Vec<_> = receiver
        .resource_spans()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let root = only(&spans, "POST /plans");
    let workflow = only(&spans, "invoke_workflow day-planner");
    assert_eq!(workflow.parent_span_id, root.span_id);
    let planner = only(&spans, "invoke_agent planner");
    assert_eq!(planner.parent_span_id, workflow.span_id);
    let limit = |span: &Span, key: &str| {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.clone())
    };
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    assert_eq!(
        limit(planner, "glassbox.limit.fuel"),
        Some(Value::IntValue(20_000_000_000)),
        "the run is held to the manifest's fuel"
    );
    assert_eq!(
        limit(planner, "glassbox.limit.memory"),
        Some(Value::IntValue(128 * 1024 * 1024))
    );
    for worker in ["weather-worker", "math-worker"] {
        let run = only(&spans, &format!("invoke_agent {worker}"));
        assert_eq!(run.parent_span_id, planner.span_id, "{worker}");
        assert_eq!(
            limit(run, "glassbox.limit.memory"),
            Some(Value::IntValue(64 * 1024 * 1024)),
            "{worker} runs under its own policy"
        );
    }
    assert!(spans.iter().all(|s| s.trace_id == root.trace_id));
}
