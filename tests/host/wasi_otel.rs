//! `wasi:otel`: an agent instrumented with the plain OpenTelemetry API (the
//! `opentelemetry` crate through the Rust SDK's `otel` feature, or
//! `@opentelemetry/api` through the JavaScript SDK's `glassbox-sdk/otel`) has
//! its spans, log records and metrics nested in the host's trace and exported
//! with the host's; a guest calling the interfaces as an attacker would
//! touches only spans it started and grows nothing past the bounds.

use crate::support::otlp::{attribute, int, string};
use crate::support::{
    TestHost, artifacts, assert_strings, engine, only, outline, parent_of, scripted, status, tools,
};
use glassbox::telemetry::OtlpProtocol;
use glassbox::{AgentComponent, RunRequest};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::metrics::v1::number_data_point;
use tokio::sync::OnceCell;

const ANSWER: &str = r#"
    [[turn]]
    content = "the answer"
"#;

async fn otel_agent() -> AgentComponent {
    static AGENT: OnceCell<AgentComponent> = OnceCell::const_new();
    AGENT
        .get_or_init(|| load(artifacts::OTEL_AGENT))
        .await
        .clone()
}

async fn load(path: &str) -> AgentComponent {
    engine().load_agent(path.as_ref()).await.unwrap()
}

async fn host(agent: AgentComponent) -> TestHost {
    TestHost::start(agent, tools().await, scripted(ANSWER), OtlpProtocol::Grpc).await
}

#[tokio::test(flavor = "multi_thread")]
async fn plain_opentelemetry_spans_logs_and_metrics_nest_in_the_hosts_trace() {
    check_work(otel_agent().await, "otel_agent.wasm").await;
}

/// The JavaScript agent that does what the Rust one does, through the
/// OpenTelemetry JS SDK, on the engine that can export metrics.
#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_agent_on_starlingmonkey_traces_logs_and_measures_with_the_plain_api() {
    let agent = load(artifacts::JS_OTEL_AGENT_STARLINGMONKEY).await;
    check_work(agent, "js_otel_agent_starlingmonkey.wasm").await;
}

/// On QuickJS the same agent's spans and log records arrive as on
/// StarlingMonkey; its metrics cannot (the SDK collects them through
/// promises, which QuickJS settles only after the call), and `flushMetrics`
/// says so instead of exporting nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_javascript_agent_on_quickjs_traces_and_logs_and_is_told_why_metrics_need_starlingmonkey()
{
    let host = host(load(artifacts::JS_OTEL_AGENT).await).await;
    let answer = host.runtime.run(RunRequest::text("work")).await.unwrap();
    assert_eq!(
        answer,
        "the answer / FOUND (metrics need `--engine starlingmonkey`: the OpenTelemetry SDK \
         collects them through promises, which QuickJS settles only after the call has returned)"
    );
    host.flush().await;
    check_spans_and_logs(&host, "js_otel_agent.wasm");
    assert!(host.receiver.metric("app.pages").is_none());
}

/// Runs `work` on `agent` and checks its spans, log record and metrics.
async fn check_work(agent: AgentComponent, component: &str) {
    let host = host(agent).await;
    let answer = host.runtime.run(RunRequest::text("work")).await.unwrap();
    assert_eq!(answer, "the answer / FOUND");
    host.flush().await;
    check_spans_and_logs(&host, component);
    check_metrics(&host, component);
}

fn check_spans_and_logs(host: &TestHost, component: &str) {
    let spans = host.receiver.spans();
    let tree = outline(&spans);
    assert!(
        tree.starts_with(
            "invoke_agent otel-agent [INTERNAL]\n  plan [INTERNAL]\n    lookup [CLIENT]\n      chat "
        ),
        "{tree}"
    );
    assert!(
        tree.contains("      execute_tool shout [INTERNAL]\n  summarise [INTERNAL]\n"),
        "{tree}"
    );

    let plan = only(&spans, "plan");
    assert_strings(
        &plan.attributes,
        &[
            ("glassbox.component", component),
            ("glassbox.span.origin", "guest"),
        ],
    );
    assert_eq!(int(&plan.attributes, "plan.steps"), Some(2));
    assert_eq!(
        int(&plan.attributes, "guest.gen_ai.usage.input_tokens"),
        Some(999_999),
        "a usage attribute from the guest is not the host's word"
    );
    assert!(attribute(&plan.attributes, "gen_ai.usage.input_tokens").is_none());
    let planned = &plan.events[0];
    assert_eq!(planned.name, "planned");
    assert_eq!(
        string(&planned.attributes, "plan.choice").as_deref(),
        Some("lookup")
    );
    assert!(plan.start_time_unix_nano <= planned.time_unix_nano);
    assert!(planned.time_unix_nano <= plan.end_time_unix_nano);

    let lookup = only(&spans, "lookup");
    assert_eq!(status(lookup), (2, "lookup was slow".into()));
    let chat = spans.iter().find(|s| s.name.starts_with("chat")).unwrap();
    assert_eq!(parent_of(&spans, chat).unwrap().name, "lookup");
    assert!(lookup.start_time_unix_nano <= chat.start_time_unix_nano);
    assert!(chat.end_time_unix_nano <= lookup.end_time_unix_nano);

    let logs = host.receiver.logs();
    let slow = logs
        .iter()
        .find(|record| {
            matches!(
                record.body.as_ref().and_then(|b| b.value.as_ref()),
                Some(Value::StringValue(text)) if text == "the lookup was slow"
            )
        })
        .expect("the guest's log record");
    assert_eq!(slow.severity_number, 13);
    assert_eq!(slow.severity_text, "WARN");
    assert_eq!(int(&slow.attributes, "lookup.attempts"), Some(2));
    assert_eq!(
        string(&slow.attributes, "glassbox.component").as_deref(),
        Some(component)
    );
    assert_ne!(slow.observed_time_unix_nano, 0);
    // Its time, when the guest gave one, and when it was observed: both the
    // lookup's, so the guest's clock counts from the epoch.
    for time in [slow.time_unix_nano, slow.observed_time_unix_nano] {
        assert!(
            time == 0 || time.abs_diff(lookup.start_time_unix_nano) < 5_000_000_000,
            "the record's time {time} is not near the lookup's {}",
            lookup.start_time_unix_nano
        );
    }
    assert_eq!(slow.trace_id, lookup.trace_id);
    assert_eq!(
        slow.span_id, lookup.span_id,
        "correlated with the guest's span"
    );
}

fn check_metrics(host: &TestHost, component: &str) {
    let pages = host.receiver.sum("app.pages");
    assert_eq!(pages.len(), 1, "{pages:?}");
    assert_eq!(pages[0].1, 3);
    assert_strings(
        &pages[0].0,
        &[("app.source", "web"), ("glassbox.component", component)],
    );
    let Some(Data::Histogram(latency)) = host
        .receiver
        .metric("app.lookup.duration")
        .and_then(|m| m.data)
    else {
        panic!("no histogram app.lookup.duration");
    };
    let point = &latency.data_points[0];
    assert_eq!(point.count, 3);
    assert_eq!(point.explicit_bounds, [0.1, 1.0]);
    assert_eq!(point.bucket_counts, [1, 2, 0]);
    let Some(Data::Gauge(depth)) = host.receiver.metric("app.queue.depth").and_then(|m| m.data)
    else {
        panic!("no gauge app.queue.depth");
    };
    assert_eq!(
        depth.data_points[0].value,
        Some(number_data_point::Value::AsInt(-4))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_guest_touches_only_its_own_spans_and_is_held_to_the_bounds() {
    let host = host(otel_agent().await).await;
    let answer = host.runtime.run(RunRequest::text("hostile")).await.unwrap();
    assert_eq!(
        answer,
        "Err(\"app.spread: exponential histograms are not supported\")\nOk(())"
    );
    // The host serves on, and the guest's spans went where they belong.
    assert_eq!(
        host.runtime.run(RunRequest::text("work")).await.unwrap(),
        "the answer / FOUND"
    );
    host.flush().await;

    let spans = host.receiver.spans();
    for refused in ["never-started", "foreign-trace", "host-span-taken"] {
        assert!(
            spans.iter().all(|s| s.name != refused),
            "{refused} was recorded"
        );
    }
    let run = spans
        .iter()
        .find(|s| {
            s.name == "invoke_agent otel-agent" && s.trace_id == only(&spans, "kept").trace_id
        })
        .unwrap();
    let kept = only(&spans, "kept");
    assert_eq!(
        parent_of(&spans, kept).map(|s| &s.span_id),
        Some(&run.span_id),
        "a parent the guest did not start gives way to the span current at its start"
    );
    assert_eq!(
        kept.attributes.len(),
        2,
        "200 KB of attributes do not fit a span's room; the host's two stay"
    );
    let flood = spans.iter().filter(|s| s.name == "flood").count();
    assert_eq!(flood, 999, "1000 spans an instance, `kept` among them");
    let again = host
        .receiver
        .logs()
        .into_iter()
        .filter(|record| {
            matches!(
                record.body.as_ref().and_then(|b| b.value.as_ref()),
                Some(Value::StringValue(text)) if text == "again"
            )
        })
        .count();
    assert_eq!(again, 1000, "1000 log records an instance");

    let renamed = host.receiver.sum("guest.gen_ai.client.token.usage");
    assert_eq!(renamed.len(), 1, "{renamed:?}");
    assert_eq!(renamed[0].1, 12, "totals since the start: 5, then 7 more");
    assert!(host.receiver.metric("app.spread").is_none());
    assert!(
        host.receiver
            .sum("gen_ai.client.token.usage")
            .iter()
            .all(|(attributes, _)| {
                string(attributes, "glassbox.component").as_deref() != Some("otel_agent.wasm")
            }),
        "a guest metric never passes for the host's"
    );
}
