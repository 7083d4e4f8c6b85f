//! What the `llm` import works with: the capability a host grants every run
//! ([`LlmCapability`]: providers, prices, telemetry and the GenAI client
//! metrics), and per store the run it serves and the component's grant.

use super::Llm;
use super::call::token_counts;
use super::model::Usage;
use crate::sandbox::{Grant, Policy, RunBudget};
use crate::telemetry::semconv::GenAiConventions;
use crate::telemetry::{
    OperationMetrics, SpanScope, Telemetry, seconds_histogram, semconv, string_list,
};
use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Histogram};
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
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

/// The GenAI client metrics, named as the conventions emitted name them.
pub(super) struct LlmMetrics {
    /// Chat calls' duration, by `error.type` when one fails.
    chat: OperationMetrics,
    /// Embeddings calls' duration: the same histogram as chat's before v0.1.0.
    embeddings: OperationMetrics,
    tokens: TokenMetrics,
    pub time_to_first_chunk: Histogram<f64>,
    pub time_per_output_chunk: Histogram<f64>,
    pub cost: Counter<f64>,
}

/// What tokens calls used.
enum TokenMetrics {
    /// v1.41.0: one histogram of tokens per call, by `gen_ai.token.type`.
    ByType(Histogram<u64>),
    /// v0.1.0: running totals by kind of token and modality, and tokens per
    /// call, apart for chat and embeddings.
    Latest {
        input: Counter<u64>,
        output: Counter<u64>,
        cache_read: Counter<u64>,
        cache_write: Counter<u64>,
        reasoning: Counter<u64>,
        chat_input: Histogram<u64>,
        chat_output: Histogram<u64>,
        embeddings_input: Histogram<u64>,
    },
}

impl LlmMetrics {
    fn new(telemetry: &Telemetry) -> Self {
        use semconv::metric;
        let meter = telemetry.meter();
        let tokens_per_call = |name: &'static str, description: &'static str| {
            meter
                .u64_histogram(name)
                .with_unit("{token}")
                .with_description(description)
                .with_boundaries(metric::TOKEN_BUCKETS.to_vec())
                .build()
        };
        let tokens_in_all = |name: &'static str, description: &'static str| {
            meter
                .u64_counter(name)
                .with_unit("{token}")
                .with_description(description)
                .build()
        };
        let latest = telemetry.conventions() == GenAiConventions::Latest;
        let (chat, embeddings, tokens) = if latest {
            let chat = OperationMetrics::new(
                meter,
                metric::INFERENCE_DURATION,
                "Duration of LLM inference calls",
            );
            let embeddings = OperationMetrics::new(
                meter,
                metric::EMBEDDINGS_DURATION,
                "Duration of embeddings calls",
            );
            let tokens = TokenMetrics::Latest {
                input: tokens_in_all(metric::INFERENCE_USAGE_INPUT_TOKENS, "Input tokens used"),
                output: tokens_in_all(metric::INFERENCE_USAGE_OUTPUT_TOKENS, "Output tokens used"),
                cache_read: tokens_in_all(
                    metric::INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS,
                    "Input tokens served from a provider's cache",
                ),
                cache_write: tokens_in_all(
                    metric::INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS,
                    "Input tokens written to a provider's cache",
                ),
                reasoning: tokens_in_all(
                    metric::INFERENCE_USAGE_REASONING_OUTPUT_TOKENS,
                    "Output tokens spent reasoning",
                ),
                chat_input: tokens_per_call(
                    metric::INFERENCE_OPERATION_INPUT_TOKENS,
                    "Input tokens per inference call",
                ),
                chat_output: tokens_per_call(
                    metric::INFERENCE_OPERATION_OUTPUT_TOKENS,
                    "Output tokens per inference call",
                ),
                embeddings_input: tokens_per_call(
                    metric::EMBEDDINGS_OPERATION_INPUT_TOKENS,
                    "Input tokens per embeddings call",
                ),
            };
            (chat, embeddings, tokens)
        } else {
            let operation =
                OperationMetrics::new(meter, metric::OPERATION_DURATION, "Duration of LLM calls");
            let tokens = TokenMetrics::ByType(tokens_per_call(
                metric::TOKEN_USAGE,
                "Tokens used per LLM call, by token type",
            ));
            (operation.clone(), operation, tokens)
        };
        let (first_chunk, per_chunk) = telemetry.conventions().pick(
            (metric::TIME_TO_FIRST_CHUNK, metric::TIME_PER_OUTPUT_CHUNK),
            (
                metric::INFERENCE_TIME_TO_FIRST_CHUNK,
                metric::INFERENCE_TIME_PER_OUTPUT_CHUNK,
            ),
        );
        LlmMetrics {
            chat,
            embeddings,
            tokens,
            time_to_first_chunk: seconds_histogram(
                meter,
                first_chunk,
                "Time from a streamed LLM call's start to its first chunk",
            ),
            time_per_output_chunk: seconds_histogram(
                meter,
                per_chunk,
                "Time between the chunks of a streamed LLM answer, after the first",
            ),
            cost: meter
                .f64_counter(metric::COST)
                .with_unit("USD")
                .with_description("What LLM calls cost, for models with a known price")
                .build(),
        }
    }

    /// The duration (and errors) of calls of `operation`.
    pub fn duration(&self, operation: &str) -> &OperationMetrics {
        if operation == semconv::operation::EMBEDDINGS {
            &self.embeddings
        } else {
            &self.chat
        }
    }

    /// Records the tokens a call of `operation` used, `common` on every point.
    pub fn record_tokens(&self, operation: &str, usage: &Usage, common: &[KeyValue]) {
        let embeddings = operation == semconv::operation::EMBEDDINGS;
        match &self.tokens {
            TokenMetrics::ByType(histogram) => {
                for (kind, count) in token_counts(usage, operation) {
                    let mut attributes = common.to_vec();
                    attributes.push(KeyValue::new(semconv::GEN_AI_TOKEN_TYPE, kind));
                    histogram.record(u64::from(count), &attributes);
                }
            }
            TokenMetrics::Latest {
                embeddings_input, ..
            } if embeddings => {
                embeddings_input.record(u64::from(usage.input_tokens), common);
            }
            TokenMetrics::Latest {
                input,
                output,
                cache_read,
                cache_write,
                reasoning,
                chat_input,
                chat_output,
                ..
            } => {
                chat_input.record(u64::from(usage.input_tokens), common);
                chat_output.record(u64::from(usage.output_tokens), common);
                let mut by_modality = common.to_vec();
                by_modality.push(KeyValue::new(
                    semconv::GEN_AI_TOKEN_MODALITY,
                    semconv::TOKEN_MODALITY_TEXT,
                ));
                for (counter, count) in [
                    (input, Some(usage.input_tokens)),
                    (output, Some(usage.output_tokens)),
                    (cache_read, usage.cache_read_input_tokens),
                    (cache_write, usage.cache_creation_input_tokens),
                    (reasoning, usage.reasoning_output_tokens),
                ] {
                    if let Some(count) = count {
                        counter.add(u64::from(count), &by_modality);
                    }
                }
            }
        }
    }
}

/// The run a store's model calls belong to: what they may use and what they spend.
#[derive(Clone)]
pub(crate) struct LlmRun {
    pub capability: Arc<LlmCapability>,
    pub budget: Arc<RunBudget>,
    /// Where an agent's own model calls are counted; `None` in a tool's store.
    pub own_calls: Option<Arc<AtomicU32>>,
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
