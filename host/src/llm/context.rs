//! What the `llm` import works with: the capability a host grants every run
//! ([`LlmCapability`]: providers, prices, telemetry and the GenAI client
//! metrics), and per store the run it serves and the component's grant.

use super::Llm;
use crate::sandbox::{Grant, Policy, RunBudget};
use crate::telemetry::{
    OperationMetrics, SpanScope, Telemetry, seconds_histogram, semconv, string_list,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use std::sync::Arc;
use wasmtime::component::{HasData, ResourceTable};

/// The models a host offers, and where their calls are recorded.
pub struct LlmCapability {
    pub(super) llm: Llm,
    pub(super) telemetry: Arc<Telemetry>,
    pub(super) metrics: LlmMetrics,
}

impl LlmCapability {
    pub fn new(llm: Llm, telemetry: Arc<Telemetry>) -> Self {
        let metrics = LlmMetrics::new(&telemetry);
        LlmCapability {
            llm,
            telemetry,
            metrics,
        }
    }

    pub fn llm(&self) -> &Llm {
        &self.llm
    }
}

/// The models a component may call (`allow_models`). A component without
/// this grant may call every model the providers offer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelGrant(pub Vec<String>);

impl ModelGrant {
    /// Whether `policy` lets its component call `model`, and if not, what it allows.
    pub(crate) fn check(policy: &Policy, model: &str) -> Result<(), String> {
        match policy.grants.get::<ModelGrant>() {
            Some(ModelGrant(models)) if !models.iter().any(|m| m == model) => {
                Err(models.join(", "))
            }
            _ => Ok(()),
        }
    }
}

impl Grant for ModelGrant {
    fn span_attributes(&self) -> Vec<KeyValue> {
        vec![KeyValue::new(
            semconv::GLASSBOX_SANDBOX_MODELS,
            string_list(self.0.iter().cloned()),
        )]
    }
}

/// The GenAI client metrics.
pub(super) struct LlmMetrics {
    /// `gen_ai.client.operation.duration`, by `error.type` when a call fails.
    pub operation: OperationMetrics,
    pub token_usage: Histogram<u64>,
    pub time_to_first_chunk: Histogram<f64>,
    pub time_per_output_chunk: Histogram<f64>,
    pub cost: Counter<f64>,
}

impl LlmMetrics {
    fn new(telemetry: &Telemetry) -> Self {
        use semconv::metric;
        let meter = telemetry.meter();
        LlmMetrics {
            operation: OperationMetrics::new(
                meter,
                metric::OPERATION_DURATION,
                "Duration of LLM calls",
            ),
            token_usage: meter
                .u64_histogram(metric::TOKEN_USAGE)
                .with_unit("{token}")
                .with_description("Tokens used per LLM call, by token type")
                .with_boundaries(metric::TOKEN_BUCKETS.to_vec())
                .build(),
            time_to_first_chunk: seconds_histogram(
                meter,
                metric::TIME_TO_FIRST_CHUNK,
                "Time from a streamed LLM call's start to its first chunk",
            ),
            time_per_output_chunk: seconds_histogram(
                meter,
                metric::TIME_PER_OUTPUT_CHUNK,
                "Time between the chunks of a streamed LLM answer, after the first",
            ),
            cost: meter
                .f64_counter(metric::COST)
                .with_unit("USD")
                .with_description("What LLM calls cost, for models with a known price")
                .build(),
        }
    }
}

/// The run a store's model calls belong to: what they may use and what they spend.
#[derive(Clone)]
pub(crate) struct LlmRun {
    pub capability: Arc<LlmCapability>,
    pub budget: Arc<RunBudget>,
}

/// One store's `llm` state.
pub(crate) struct LlmCtx {
    pub(super) component: Arc<str>,
    /// The component's policy, holding its [`ModelGrant`].
    pub(super) policy: Arc<Policy>,
    /// `None` while loading: calls are refused then.
    pub(super) run: Option<LlmRun>,
}

impl LlmCtx {
    pub fn new(component: Arc<str>, policy: Arc<Policy>, run: Option<LlmRun>) -> Self {
        LlmCtx {
            component,
            policy,
            run,
        }
    }
}

/// The parts of a store the `llm` import works on.
pub(crate) struct LlmView<'a> {
    pub ctx: &'a LlmCtx,
    /// Streams in progress live here.
    pub table: &'a mut ResourceTable,
    pub spans: &'a SpanScope,
}

/// Links the `llm` import through [`LlmView`].
pub(crate) struct LlmImport;

impl HasData for LlmImport {
    type Data<'a> = LlmView<'a>;
}
