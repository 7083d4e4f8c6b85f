//! Span export that never slows a run and never grows without bound: a span
//! that ends goes into a bounded queue without waiting, a worker thread sends
//! batches to the exporter, several at once so that a collector's round trip
//! does not cap the spans a second, and every span is accounted for:
//! exported, or dropped with a reason (the queue was full, its batch failed to
//! export, or it ended after shutdown). The counts are exported as metrics.
//!
//! The SDK's own batch processor keeps its drop count private, so a backend
//! could not see what it was missing; this one is configured by the same
//! `OTEL_BSP_*` variables.

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use futures_util::StreamExt;
use futures_util::future::{BoxFuture, Either, select};
use futures_util::stream::FuturesUnordered;
use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// The most spans the export queue may hold, whatever `OTEL_BSP_MAX_QUEUE_SIZE`
/// says: about 370 bytes each, so a full queue of this size holds about 390 MB.
pub const MAX_QUEUE_SIZE: usize = 1 << 20;
/// Batches larger than this still go out whole, but their buffer grows as they fill.
const BATCH_PREALLOCATION: usize = 512;
/// One request at a time (the SDK's default) caps export at a batch per
/// round trip, which a busy host outruns: at 20,000 runs a second on two
/// cores, the collector's answer comes late and the queue overflows.
const DEFAULT_CONCURRENT_EXPORTS: usize = 4;

/// How spans are batched for export, from the `OTEL_BSP_*` variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchSettings {
    /// Spans waiting for export at most; more are dropped and counted.
    pub max_queue_size: usize,
    /// Spans per export request at most.
    pub max_export_batch_size: usize,
    /// The longest a span waits before its batch is sent.
    pub scheduled_delay: Duration,
    /// The longest one export may take before its batch counts as failed.
    pub export_timeout: Duration,
    /// Export requests awaiting the collector's answer at once, at most.
    pub max_concurrent_exports: usize,
}

impl Default for BatchSettings {
    /// The specification's defaults.
    fn default() -> Self {
        BatchSettings {
            max_queue_size: 2048,
            max_export_batch_size: 512,
            scheduled_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30000),
            max_concurrent_exports: DEFAULT_CONCURRENT_EXPORTS,
        }
    }
}

impl BatchSettings {
    /// Reads `OTEL_BSP_MAX_QUEUE_SIZE`, `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`,
    /// `OTEL_BSP_SCHEDULE_DELAY`, `OTEL_BSP_EXPORT_TIMEOUT` (milliseconds) and
    /// `OTEL_BSP_MAX_CONCURRENT_EXPORTS` (the Rust SDK's name) through `var`;
    /// unset ones keep their defaults.
    pub(super) fn from_lookup(var: &impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let number = |name: &str| -> Result<Option<u64>, String> {
            var(name)
                .map(|value| match value.trim().parse::<u64>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(format!("{name}={value} is not a positive whole number")),
                })
                .transpose()
        };
        let defaults = BatchSettings::default();
        let size = |name| -> Result<Option<usize>, String> {
            Ok(number(name)?.map(|n| usize::try_from(n).unwrap_or(usize::MAX)))
        };
        let settings = BatchSettings {
            max_queue_size: size("OTEL_BSP_MAX_QUEUE_SIZE")?.unwrap_or(defaults.max_queue_size),
            max_export_batch_size: size("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")?
                .unwrap_or(defaults.max_export_batch_size),
            scheduled_delay: number("OTEL_BSP_SCHEDULE_DELAY")?
                .map_or(defaults.scheduled_delay, Duration::from_millis),
            export_timeout: number("OTEL_BSP_EXPORT_TIMEOUT")?
                .map_or(defaults.export_timeout, Duration::from_millis),
            max_concurrent_exports: size("OTEL_BSP_MAX_CONCURRENT_EXPORTS")?
                .unwrap_or(defaults.max_concurrent_exports),
        };
        if settings.max_queue_size > MAX_QUEUE_SIZE {
            return Err(format!(
                "OTEL_BSP_MAX_QUEUE_SIZE ({}) is more than the {MAX_QUEUE_SIZE} spans the host holds at most",
                settings.max_queue_size
            ));
        }
        if settings.max_export_batch_size > settings.max_queue_size {
            return Err(format!(
                "OTEL_BSP_MAX_EXPORT_BATCH_SIZE ({}) is more than OTEL_BSP_MAX_QUEUE_SIZE ({})",
                settings.max_export_batch_size, settings.max_queue_size
            ));
        }
        Ok(settings)
    }
}

/// What happened to every span that ended, and to every export request.
#[derive(Debug, Default)]
pub(crate) struct ExportCounts {
    /// Spans taken into the queue.
    pub queued: AtomicU64,
    pub exported: AtomicU64,
    pub dropped_queue_full: AtomicU64,
    pub dropped_export_failed: AtomicU64,
    pub dropped_after_shutdown: AtomicU64,
    pub export_attempts: AtomicU64,
    pub export_failures: AtomicU64,
    /// What shutdown found lost, in words, for the host's own report: the
    /// SDK wraps processors' errors in its own text.
    lost_at_shutdown: Mutex<Option<String>>,
}

impl ExportCounts {
    /// What shutdown found lost, if it lost anything.
    pub fn lost_at_shutdown(&self) -> Option<String> {
        self.lost_at_shutdown.lock().ok()?.clone()
    }

    /// Keeps `report` for [`ExportCounts::lost_at_shutdown`] and turns it into the processor's error.
    fn report_loss(&self, report: String) -> OTelSdkError {
        if let Ok(mut kept) = self.lost_at_shutdown.lock() {
            *kept = Some(report.clone());
        }
        OTelSdkError::InternalFailure(report)
    }

    fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> ExportStats {
        ExportStats {
            exported: Self::get(&self.exported),
            dropped_queue_full: Self::get(&self.dropped_queue_full),
            dropped_export_failed: Self::get(&self.dropped_export_failed),
            dropped_after_shutdown: Self::get(&self.dropped_after_shutdown),
            export_attempts: Self::get(&self.export_attempts),
            export_failures: Self::get(&self.export_failures),
        }
    }
}

/// What has become of the spans that ended so far: the figures the
/// `glassbox.telemetry.*` metrics report. Spans still queued are in none of them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExportStats {
    pub exported: u64,
    pub dropped_queue_full: u64,
    pub dropped_export_failed: u64,
    pub dropped_after_shutdown: u64,
    pub export_attempts: u64,
    pub export_failures: u64,
}

impl ExportStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full + self.dropped_export_failed + self.dropped_after_shutdown
    }
}

impl ExportCounts {
    /// Spans queued but neither exported nor dropped yet: waiting in the
    /// queue, or in a batch being exported.
    fn pending(&self) -> u64 {
        let settled = Self::get(&self.exported) + Self::get(&self.dropped_export_failed);
        Self::get(&self.queued).saturating_sub(settled)
    }

    /// What was lost, by reason, with `unfinished` spans still pending at the
    /// end and `cause`, the last failure, if any; `None` when nothing was lost.
    fn losses(&self, unfinished: Option<(u64, Duration)>, cause: Option<&str>) -> Option<String> {
        let stats = self.snapshot();
        let pending = unfinished.map_or(0, |(pending, _)| pending);
        if stats.dropped() + pending == 0 {
            return None;
        }
        let mut reasons = vec![format!(
            "{} on a full queue, {} in {} failed exports",
            stats.dropped_queue_full, stats.dropped_export_failed, stats.export_failures
        )];
        if let Some((pending, timeout)) = unfinished.filter(|(pending, _)| *pending > 0) {
            reasons.push(format!(
                "{pending} still waiting when the exporter did not finish within {}",
                humantime::format_duration(timeout)
            ));
        }
        if stats.dropped_after_shutdown > 0 {
            reasons.push(format!("{} after shutdown", stats.dropped_after_shutdown));
        }
        let cause = cause
            .map(|cause| format!("; the last failure: {cause}"))
            .unwrap_or_default();
        Some(format!(
            "{} spans were not delivered ({}){cause}",
            stats.dropped() + pending,
            reasons.join(", ")
        ))
    }
}

enum Control {
    /// A full batch is waiting.
    BatchReady,
    Flush(Sender<OTelSdkResult>),
    Shutdown(Sender<OTelSdkResult>),
    Resource(Resource),
}

/// The span processor: a bounded queue in front of a worker thread.
#[derive(Debug)]
pub(crate) struct BoundedBatchProcessor {
    spans: Sender<SpanData>,
    /// Spans in the queue, reserved before sending so the bound is exact.
    queued: Arc<AtomicUsize>,
    control: UnboundedSender<Control>,
    /// Set while a [`Control::BatchReady`] is unanswered, so only one is sent.
    batch_signalled: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    counts: Arc<ExportCounts>,
    settings: BatchSettings,
}

impl BoundedBatchProcessor {
    pub fn new<E: SpanExporter + 'static>(
        exporter: E,
        settings: BatchSettings,
        counts: Arc<ExportCounts>,
    ) -> Self {
        // Unbounded in the channel, bounded by `queued`: the queue takes
        // memory as it fills, not all at start.
        let (spans, receiver) = crossbeam_channel::unbounded();
        let queued = Arc::new(AtomicUsize::new(0));
        let (control, commands) = tokio::sync::mpsc::unbounded_channel();
        let batch_signalled = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            batch_signalled: batch_signalled.clone(),
            exporter: Arc::new(exporter),
            spans: Queue {
                receiver,
                queued: queued.clone(),
            },
            commands,
            settings,
            counts: counts.clone(),
            batch: Vec::new(),
            in_flight: FuturesUnordered::new(),
            last_failure: None,
            failing_since: None,
        };
        let handle = std::thread::Builder::new()
            .name("glassbox-span-export".into())
            .spawn(move || futures_executor::block_on(worker.run()))
            .map_err(|error| tracing::error!("cannot start the span export thread: {error}"))
            .ok();
        BoundedBatchProcessor {
            spans,
            queued,
            control,
            batch_signalled,
            worker: Mutex::new(handle),
            counts,
            settings,
        }
    }

    /// Sends `command` and waits for the worker's answer.
    fn ask(
        &self,
        command: impl FnOnce(Sender<OTelSdkResult>) -> Control,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (reply, answer) = crossbeam_channel::bounded(1);
        self.control
            .send(command(reply))
            .map_err(|_| OTelSdkError::AlreadyShutdown)?;
        answer.recv_timeout(timeout).map_err(|error| match error {
            RecvTimeoutError::Timeout => OTelSdkError::Timeout(timeout),
            RecvTimeoutError::Disconnected => OTelSdkError::AlreadyShutdown,
        })?
    }

    /// How long exporting everything queued may take: the export timeout for each batch.
    fn queued_export_time(&self) -> Duration {
        let batches = self.queued.load(Ordering::Acquire) / self.settings.max_export_batch_size + 1;
        self.settings.export_timeout * batches as u32
    }
}

impl SpanProcessor for BoundedBatchProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        let queued = self.queued.fetch_add(1, Ordering::AcqRel);
        if queued >= self.settings.max_queue_size {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            ExportCounts::add(&self.counts.dropped_queue_full, 1);
            return;
        }
        if self.spans.send(span).is_err() {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            ExportCounts::add(&self.counts.dropped_after_shutdown, 1);
            return;
        }
        ExportCounts::add(&self.counts.queued, 1);
        // The worker sleeps until a batch is due or full: waking it for
        // every span would cost a system call per span.
        if queued + 1 >= self.settings.max_export_batch_size
            && !self.batch_signalled.swap(true, Ordering::AcqRel)
        {
            let _ = self.control.send(Control::BatchReady);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.ask(Control::Flush, self.queued_export_time())
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The SDK's wait (5 s) can be shorter than one export may take: a slow
        // backend would lose the last spans at exit that it would get in a run.
        let timeout = timeout.max(self.queued_export_time());
        let result = self.ask(Control::Shutdown, timeout);
        match &result {
            // The worker is stuck in an export: whatever it still holds is lost
            // when the process ends, and the error says how much.
            Err(OTelSdkError::Timeout(_)) => {
                let unfinished = (self.counts.pending(), timeout);
                let losses = self.counts.losses(Some(unfinished), None);
                return Err(self.counts.report_loss(losses.unwrap_or_else(|| {
                    format!(
                        "the exporter did not finish within {}",
                        humantime::format_duration(timeout)
                    )
                })));
            }
            Ok(()) => {
                if let Some(worker) = self.worker.lock().ok().and_then(|mut w| w.take()) {
                    let _ = worker.join();
                }
            }
            Err(_) => {}
        }
        result
    }

    fn set_resource(&mut self, resource: &Resource) {
        let _ = self.control.send(Control::Resource(resource.clone()));
    }
}

/// The receiving end of the span queue.
struct Queue {
    receiver: Receiver<SpanData>,
    queued: Arc<AtomicUsize>,
}

impl Queue {
    fn len(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }

    /// Takes up to `most` spans without waiting.
    fn take(&self, most: usize) -> impl Iterator<Item = SpanData> + '_ {
        self.receiver.try_iter().take(most).inspect(|_| {
            self.queued.fetch_sub(1, Ordering::AcqRel);
        })
    }
}

/// The export thread's state.
struct Worker<E> {
    exporter: Arc<E>,
    batch_signalled: Arc<AtomicBool>,
    spans: Queue,
    commands: UnboundedReceiver<Control>,
    settings: BatchSettings,
    counts: Arc<ExportCounts>,
    batch: Vec<SpanData>,
    /// Batches sent and not yet answered, each with its size.
    in_flight: FuturesUnordered<BoxFuture<'static, (usize, OTelSdkResult)>>,
    /// Why the last export failed, for the report at shutdown.
    last_failure: Option<String>,
    /// Exports failed in a row: the first is logged, the rest only counted
    /// until one succeeds, so a long outage does not flood the log.
    failing_since: Option<(u64, u64)>,
}

impl<E: SpanExporter + 'static> Worker<E> {
    async fn run(mut self) {
        let delay = self.settings.scheduled_delay;
        let mut due = Instant::now() + delay;
        loop {
            let tick = futures_timer::Delay::new(due.saturating_duration_since(Instant::now()));
            tokio::select! {
                biased;
                Some((size, result)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    let _ = self.settle(size, result);
                }
                command = self.commands.recv() => match command {
                    Some(Control::BatchReady) => {
                        self.batch_signalled.store(false, Ordering::Release);
                        while self.spans.len() >= self.settings.max_export_batch_size {
                            let batch = self.spans.take(self.settings.max_export_batch_size);
                            self.batch.extend(batch);
                            self.send().await;
                        }
                    }
                    Some(Control::Flush(reply)) => {
                        let _ = reply.send(self.drain().await);
                    }
                    Some(Control::Shutdown(reply)) => {
                        let drained = self.drain().await;
                        let closed = self
                            .exporter
                            .shutdown_with_timeout(self.settings.export_timeout);
                        // What was lost comes first: it is what the operator needs.
                        let lost = match self.counts.losses(None, self.last_failure.as_deref()) {
                            Some(losses) => Err(self.counts.report_loss(losses)),
                            None => Ok(()),
                        };
                        let _ = reply.send(lost.and(drained).and(closed));
                        return;
                    }
                    Some(Control::Resource(resource)) => {
                        // Set while nothing is in flight, when the exporter is this thread's alone.
                        let _ = self.settled().await;
                        if let Some(exporter) = Arc::get_mut(&mut self.exporter) {
                            exporter.set_resource(&resource);
                        }
                    }
                    None => return,
                },
                () = tick => {}
            }
            if Instant::now() >= due {
                self.send_queued();
                due = Instant::now() + delay;
            }
        }
    }

    /// Exports every span queued when called and waits for every export in
    /// flight; spans that end meanwhile wait for the next batch, so a busy
    /// host cannot keep a flush going.
    async fn drain(&mut self) -> OTelSdkResult {
        let mut left = self.spans.len();
        while left > 0 {
            let room = self
                .settings
                .max_export_batch_size
                .saturating_sub(self.batch.len());
            let most = left.min(room.max(1));
            let before = self.batch.len();
            let batch = self.spans.take(most);
            self.batch.extend(batch);
            let taken = self.batch.len() - before;
            if taken == 0 {
                break;
            }
            left -= taken;
            if self.batch.len() >= self.settings.max_export_batch_size {
                self.send().await;
            }
        }
        self.send().await;
        self.settled().await
    }

    /// Sends what is queued without waiting for an answer, as the schedule asks.
    fn send_queued(&mut self) {
        // The schedule never waits: a full complement of exports in flight
        // leaves the spans queued for the next tick or full batch.
        while self.in_flight.len() < self.settings.max_concurrent_exports.max(1)
            && (self.spans.len() > 0 || !self.batch.is_empty())
        {
            let batch = self.spans.take(self.settings.max_export_batch_size);
            self.batch.extend(batch);
            self.start_export();
        }
    }

    /// Sends the current batch once fewer than the most exports are in flight.
    async fn send(&mut self) {
        while self.in_flight.len() >= self.settings.max_concurrent_exports.max(1) {
            if let Some((size, result)) = self.in_flight.next().await {
                let _ = self.settle(size, result);
            }
        }
        self.start_export();
    }

    /// Puts the current batch in flight; it counts as exported or dropped when answered.
    fn start_export(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::replace(
            &mut self.batch,
            Vec::with_capacity(self.settings.max_export_batch_size.min(BATCH_PREALLOCATION)),
        );
        ExportCounts::add(&self.counts.export_attempts, 1);
        let exporter = self.exporter.clone();
        let timeout = self.settings.export_timeout;
        self.in_flight.push(Box::pin(async move {
            let size = batch.len();
            let export = exporter.export(batch);
            let result = match select(Box::pin(export), futures_timer::Delay::new(timeout)).await {
                Either::Left((result, _)) => result,
                Either::Right(_) => Err(OTelSdkError::Timeout(timeout)),
            };
            (size, result)
        }));
    }

    /// Waits for every export in flight; fails if any did.
    async fn settled(&mut self) -> OTelSdkResult {
        let mut all = Ok(());
        while let Some((size, result)) = self.in_flight.next().await {
            let settled = self.settle(size, result);
            all = all.and(settled);
        }
        all
    }

    /// Counts an answered batch's spans as exported or as dropped, and passes its result on.
    fn settle(&mut self, size: usize, result: OTelSdkResult) -> OTelSdkResult {
        match &result {
            Ok(()) => {
                ExportCounts::add(&self.counts.exported, size);
                if let Some((failures, spans)) = self.failing_since.take() {
                    tracing::info!(
                        "span export recovered after {failures} failed exports ({spans} spans lost)"
                    );
                }
            }
            Err(error) => {
                ExportCounts::add(&self.counts.export_failures, 1);
                ExportCounts::add(&self.counts.dropped_export_failed, size);
                match &mut self.failing_since {
                    None => {
                        tracing::warn!(
                            "exporting {size} spans failed: {error}; further failures are counted, not logged, until an export succeeds"
                        );
                        self.failing_since = Some((1, size as u64));
                    }
                    Some((failures, spans)) => {
                        *failures += 1;
                        *spans += size as u64;
                    }
                }
                self.last_failure = Some(error.to_string());
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<BatchSettings, String> {
        BatchSettings::from_lookup(&|name: &str| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_variables_set_the_batching_and_bad_values_are_named() {
        assert_eq!(settings(&[]).unwrap(), BatchSettings::default());
        assert_eq!(
            settings(&[
                ("OTEL_BSP_MAX_QUEUE_SIZE", "100000"),
                ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1024"),
                ("OTEL_BSP_SCHEDULE_DELAY", "200"),
                ("OTEL_BSP_EXPORT_TIMEOUT", "1500"),
                ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "8"),
            ])
            .unwrap(),
            BatchSettings {
                max_queue_size: 100_000,
                max_export_batch_size: 1024,
                scheduled_delay: Duration::from_millis(200),
                export_timeout: Duration::from_millis(1500),
                max_concurrent_exports: 8,
            }
        );
        assert_eq!(
            settings(&[("OTEL_BSP_SCHEDULE_DELAY", "5s")]).unwrap_err(),
            "OTEL_BSP_SCHEDULE_DELAY=5s is not a positive whole number"
        );
        assert_eq!(
            settings(&[("OTEL_BSP_MAX_QUEUE_SIZE", "0")]).unwrap_err(),
            "OTEL_BSP_MAX_QUEUE_SIZE=0 is not a positive whole number"
        );
        assert_eq!(
            settings(&[("OTEL_BSP_MAX_QUEUE_SIZE", "18446744073709551615")]).unwrap_err(),
            "OTEL_BSP_MAX_QUEUE_SIZE (18446744073709551615) is more than the 1048576 spans the host holds at most"
        );
        assert_eq!(
            settings(&[("OTEL_BSP_MAX_QUEUE_SIZE", "99999999999999999999")]).unwrap_err(),
            "OTEL_BSP_MAX_QUEUE_SIZE=99999999999999999999 is not a positive whole number"
        );
        assert_eq!(
            settings(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100")]).unwrap_err(),
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE (512) is more than OTEL_BSP_MAX_QUEUE_SIZE (100)"
        );
    }

    /// An exporter that blocks its thread in `export`, as one doing blocking
    /// I/O would: the export timeout cannot interrupt it.
    #[derive(Debug)]
    struct Blocking;

    impl SpanExporter for Blocking {
        fn export(
            &self,
            _batch: Vec<SpanData>,
        ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            std::thread::sleep(Duration::from_secs(2));
            std::future::ready(Ok(()))
        }
    }

    #[test]
    fn shutdown_stops_waiting_for_an_exporter_that_blocks_and_counts_what_it_held() {
        use opentelemetry::trace::{Tracer as _, TracerProvider as _};
        let settings = BatchSettings {
            export_timeout: Duration::from_millis(100),
            ..BatchSettings::default()
        };
        let processor = BoundedBatchProcessor::new(Blocking, settings, Arc::default());
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_span_processor(processor)
            .build();
        for _ in 0..3 {
            provider.tracer("test").in_span("work", |_| ());
        }
        let started = Instant::now();
        let error = provider
            .shutdown_with_timeout(Duration::from_millis(300))
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "waited out the exporter"
        );
        assert!(
            error.to_string().contains(
                "3 spans were not delivered (0 on a full queue, 0 in 0 failed exports, \
                 3 still waiting when the exporter did not finish within 300ms)"
            ),
            "{error}"
        );
    }
}
