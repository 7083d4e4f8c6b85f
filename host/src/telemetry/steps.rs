//! Following a run as it goes: each host span of the run (model call, tool
//! call, agent call, outbound request) is reported as a [`Step`] when it ends,
//! to a [`StepSink`] carried in the run's context, so every span started under
//! it, however deep, reaches the same follower.

use opentelemetry::Context;
use serde::Serialize;
use std::time::Instant;
use tokio::sync::mpsc;

/// One finished host span of a run.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// The span's name, such as `chat gpt-4o-mini` or `execute_tool get_weather`.
    pub name: String,
    pub duration_ms: f64,
    /// How it failed, when it did.
    pub error: Option<StepError>,
}

/// A failed step's `error.type` and message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepError {
    #[serde(rename = "type")]
    pub error_type: String,
    pub message: String,
}

/// Where the steps of a run go. Steps are few per run (each is a host call
/// the budget counts), so the channel is unbounded and sending never waits.
#[derive(Clone, Debug)]
pub struct StepSink(mpsc::UnboundedSender<Step>);

impl StepSink {
    /// A sink and the receiving end its steps arrive at.
    pub fn channel() -> (StepSink, mpsc::UnboundedReceiver<Step>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (StepSink(sender), receiver)
    }

    /// `parent` with this sink attached: a run started under it reports its steps here.
    pub fn attach(&self, parent: &Context) -> Context {
        parent.with_value(self.clone())
    }
}

/// A step being recorded for a span opened under a followed run: nothing is
/// kept for spans no one follows.
pub(crate) struct StepRecorder {
    sink: StepSink,
    name: String,
    started: Instant,
    error: Option<StepError>,
}

impl StepRecorder {
    /// A recorder for the span `name` opened under `cx`, if a sink is attached to it.
    pub fn start(cx: &Context, name: &str) -> Option<Self> {
        cx.get::<StepSink>().map(|sink| StepRecorder {
            sink: sink.clone(),
            name: name.to_owned(),
            started: Instant::now(),
            error: None,
        })
    }

    pub fn fail(&mut self, error_type: &str, message: &str) {
        self.error = Some(StepError {
            error_type: error_type.to_owned(),
            message: message.to_owned(),
        });
    }

    /// Sends the step. A follower that went away is not an error: the run
    /// goes on without it.
    pub fn report(self) {
        let _ = self.sink.0.send(Step {
            name: self.name,
            duration_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            error: self.error,
        });
    }
}
