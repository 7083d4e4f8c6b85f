//! Export under trouble: a collector that is down or too slow costs spans, never
//! runs; every span is either delivered or counted as dropped, with the reason,
//! in metrics that reach the backend.

use crate::support::otlp::{Intake, Receiver, string};
use crate::support::{TestHost, exporting_to, react_agent, tools};
use glassbox::RunRequest;
use glassbox::llm::ScriptedProvider;
use glassbox::telemetry::{BatchSettings, OtlpProtocol, TelemetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// Spans in one run of the demo.
const SPANS_PER_RUN: i64 = 10;

async fn host(receiver: Receiver, batch: BatchSettings) -> TestHost {
    host_over(OtlpProtocol::Grpc, receiver, batch).await
}

async fn host_over(protocol: OtlpProtocol, receiver: Receiver, batch: BatchSettings) -> TestHost {
    let config = TelemetryConfig {
        batch,
        ..exporting_to(&receiver, protocol)
    };
    TestHost::with_telemetry(
        react_agent().await,
        tools().await,
        Arc::new(ScriptedProvider::demo()),
        receiver,
        &config,
    )
}

async fn run_demo(host: &TestHost, runs: usize) {
    for _ in 0..runs {
        host.runtime
            .run(RunRequest::text("Which is warmer?"))
            .await
            .expect("export trouble never fails a run");
    }
}

/// `glassbox.telemetry.spans.dropped` by reason.
fn dropped(receiver: &Receiver, reason: &str) -> i64 {
    receiver
        .sum("glassbox.telemetry.spans.dropped")
        .iter()
        .find(|(attributes, _)| string(attributes, "error.type").as_deref() == Some(reason))
        .map_or(0, |(_, count)| *count)
}

fn total(receiver: &Receiver, name: &str) -> i64 {
    receiver.sum(name).iter().map(|(_, count)| count).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_is_down_costs_spans_that_are_counted() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    receiver.set_intake(Intake::Refuse);
    let batch = BatchSettings {
        max_export_batch_size: 8,
        scheduled_delay: Duration::from_millis(20),
        ..BatchSettings::default()
    };
    let host = host(receiver, batch).await;
    run_demo(&host, 3).await;
    let error = host.shut_down().await.unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("exporting telemetry failed: traces:"),
        "{error}"
    );
    let failures = host.runtime.telemetry().export_stats().export_failures;
    assert!(
        error.to_string().contains(&format!(
            "traces: 30 spans were not delivered (0 on a full queue, 30 in {failures} failed exports); the last failure: "
        )),
        "the count and the cause, not the cause alone: {error}"
    );

    let receiver = &host.receiver;
    assert!(receiver.spans().is_empty());
    assert_eq!(dropped(receiver, "export_failed"), 3 * SPANS_PER_RUN);
    assert_eq!(dropped(receiver, "queue_full"), 0);
    assert_eq!(total(receiver, "glassbox.telemetry.spans.exported"), 0);
    let attempts = total(receiver, "glassbox.telemetry.export.attempts");
    assert!(
        attempts >= 4,
        "30 spans in batches of at most 8: {attempts}"
    );
    assert_eq!(
        total(receiver, "glassbox.telemetry.export.failures"),
        attempts
    );
}

/// The specification's retries: a collector that is back within a second
/// or so loses nothing, and the export counts as one that succeeded.
#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_refuses_a_few_requests_then_recovers_gets_every_span() {
    for protocol in [OtlpProtocol::Grpc, OtlpProtocol::HttpProtobuf] {
        let receiver = Receiver::start(protocol).await;
        receiver.set_intake(Intake::RefuseNext(2));
        let host = host_over(protocol, receiver, BatchSettings::default()).await;
        run_demo(&host, 1).await;
        host.flush().await;

        let receiver = &host.receiver;
        assert_eq!(receiver.spans().len() as i64, SPANS_PER_RUN, "{protocol:?}");
        assert_eq!(total(receiver, "glassbox.telemetry.spans.dropped"), 0);
        assert_eq!(total(receiver, "glassbox.telemetry.export.failures"), 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_slow_collector_fills_the_queue_and_every_span_is_delivered_or_counted() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    receiver.set_intake(Intake::Slow(Duration::from_millis(300)));
    let batch = BatchSettings {
        max_queue_size: 12,
        max_export_batch_size: 4,
        scheduled_delay: Duration::from_millis(10),
        ..BatchSettings::default()
    };
    let host = host(receiver, batch).await;
    run_demo(&host, 5).await;
    host.receiver.set_intake(Intake::Accept);
    let error = host.shut_down().await.unwrap_err();
    let stats = host.runtime.telemetry().export_stats();
    assert!(
        error.to_string().contains(&format!(
            "{} spans were not delivered ({} on a full queue, 0 in 0 failed exports)",
            stats.dropped(),
            stats.dropped_queue_full
        )),
        "{error}"
    );

    let receiver = &host.receiver;
    let delivered = receiver.spans().len() as i64;
    let lost = dropped(receiver, "queue_full");
    assert!(
        lost > 0,
        "a queue of 12 cannot hold 50 spans behind a stalled export"
    );
    assert_eq!(delivered + lost, 5 * SPANS_PER_RUN);
    assert_eq!(
        total(receiver, "glassbox.telemetry.spans.exported"),
        delivered
    );
    assert_eq!(dropped(receiver, "export_failed"), 0);
    assert_eq!(total(receiver, "glassbox.telemetry.export.failures"), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_healthy_collector_gets_every_span_and_a_zero_drop_count() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    let host = host(receiver, BatchSettings::default()).await;
    run_demo(&host, 3).await;
    host.flush().await;

    let receiver = &host.receiver;
    assert_eq!(receiver.spans().len() as i64, 3 * SPANS_PER_RUN);
    assert_eq!(
        total(receiver, "glassbox.telemetry.spans.exported"),
        3 * SPANS_PER_RUN
    );
    assert_eq!(total(receiver, "glassbox.telemetry.spans.dropped"), 0);
    assert_eq!(
        total(receiver, "glassbox.telemetry.export.attempts"),
        1,
        "one batch, sent at shutdown"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_hangs_at_exit_costs_spans_that_are_counted() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    receiver.set_intake(Intake::Slow(Duration::from_secs(60)));
    let batch = BatchSettings {
        export_timeout: Duration::from_secs(2),
        ..BatchSettings::default()
    };
    let host = host(receiver, batch).await;
    run_demo(&host, 2).await;
    let error = host.shut_down().await.unwrap_err();
    assert!(
        error.to_string().contains(
            "traces: 20 spans were not delivered (0 on a full queue, 20 in 1 failed exports); \
             the last failure: Operation timed out after 2s"
        ),
        "{error}"
    );
}

/// A backend slower than the SDK's own 5 s shutdown wait (MLflow's first
/// export can be) still gets every span: the exit waits as long as an export may take.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_collector_gets_every_span_at_exit() {
    let receiver = Receiver::start(OtlpProtocol::Grpc).await;
    receiver.set_intake(Intake::Slow(Duration::from_secs(6)));
    let host = host(receiver, BatchSettings::default()).await;
    run_demo(&host, 2).await;
    host.shut_down().await.unwrap();
    assert_eq!(host.receiver.spans().len() as i64, 2 * SPANS_PER_RUN);
}
