//! Every telemetry name the host emits, in one place: OpenTelemetry GenAI
//! semantic conventions (kept here because the upstream Rust constants are
//! experimental and deprecated) plus Glassbox's own metrics. Two versions of
//! the GenAI conventions: those of semantic conventions v1.41.0 by default,
//! and those of the GenAI conventions' own release v0.1.0 on request
//! ([`GenAiConventions`]).

/// Which GenAI semantic conventions the host emits. The conventions'
/// transition rule: keep emitting what was emitted before, and the latest
/// with `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental` (the rule
/// offers no mode emitting both).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GenAiConventions {
    /// Semantic conventions v1.41.0, what backends read today.
    #[default]
    V1_41,
    /// GenAI semantic conventions v0.1.0: inference, embeddings, agent and
    /// tool metrics of their own, usage counters by modality, workflows as
    /// agent invocations, cache writes as `cache_write`.
    Latest,
}

impl GenAiConventions {
    /// `v1_41` or `latest`, whichever this version uses.
    pub fn pick<T>(self, v1_41: T, latest: T) -> T {
        match self {
            GenAiConventions::V1_41 => v1_41,
            GenAiConventions::Latest => latest,
        }
    }
}

/// The `OTEL_SEMCONV_STABILITY_OPT_IN` value that asks for [`GenAiConventions::Latest`].
pub const OPT_IN_GEN_AI_LATEST: &str = "gen_ai_latest_experimental";

/// Values of `gen_ai.operation.name`, also the first word of span names.
pub mod operation {
    pub const CHAT: &str = "chat";
    pub const EMBEDDINGS: &str = "embeddings";
    pub const EXECUTE_TOOL: &str = "execute_tool";
    pub const INVOKE_AGENT: &str = "invoke_agent";
    pub const INVOKE_WORKFLOW: &str = "invoke_workflow";
}

pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
pub const GEN_AI_PROVIDER_NAME: &str = "gen_ai.provider.name";
pub const GEN_AI_CONVERSATION_ID: &str = "gen_ai.conversation.id";

pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
pub const GEN_AI_REQUEST_TOP_P: &str = "gen_ai.request.top_p";
pub const GEN_AI_REQUEST_STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
pub const GEN_AI_REQUEST_SEED: &str = "gen_ai.request.seed";
pub const GEN_AI_REQUEST_STREAM: &str = "gen_ai.request.stream";

pub const GEN_AI_RESPONSE_ID: &str = "gen_ai.response.id";
pub const GEN_AI_RESPONSE_MODEL: &str = "gen_ai.response.model";
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
/// Seconds from the start of a streamed call to its first chunk.
pub const GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";

/// What backends that do not map every GenAI operation read instead, set
/// beside the standard attributes only where they need it.
/// The span kind Phoenix (OpenInference) shows; Langfuse reads it too.
pub const OPENINFERENCE_SPAN_KIND: &str = "openinference.span.kind";
/// A workflow: a chain of agent runs.
pub const OPENINFERENCE_CHAIN: &str = "CHAIN";
/// When a streamed answer's first chunk came (RFC 3339, milliseconds): the
/// only source of Langfuse's time to first token.
pub const LANGFUSE_COMPLETION_START_TIME: &str = "langfuse.observation.completion_start_time";

/// The opt-in event (a log record) carrying a model call's content, when
/// content capture asks for events.
pub const EVENT_INFERENCE_DETAILS: &str = "gen_ai.client.inference.operation.details";

/// Message content, captured only when asked for: JSON following the GenAI schemas.
pub const GEN_AI_INPUT_MESSAGES: &str = "gen_ai.input.messages";
pub const GEN_AI_OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
pub const GEN_AI_SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
pub const GEN_AI_TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";
pub const GEN_AI_TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
pub const GEN_AI_TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";

pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
pub const GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS: &str = "gen_ai.usage.cache_read.input_tokens";
/// v1.41.0's name for cache writes, which Langfuse and Phoenix read: kept in both versions.
pub const GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS: &str =
    "gen_ai.usage.cache_creation.input_tokens";
/// v0.1.0's name for cache writes.
pub const GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS: &str = "gen_ai.usage.cache_write.input_tokens";
pub const GEN_AI_USAGE_REASONING_OUTPUT_TOKENS: &str = "gen_ai.usage.reasoning.output_tokens";
/// Not in the conventions; the name Langfuse and others read. US dollars.
pub const GEN_AI_USAGE_COST: &str = "gen_ai.usage.cost";

pub const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
pub const GEN_AI_TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
pub const GEN_AI_TOOL_DESCRIPTION: &str = "gen_ai.tool.description";
pub const GEN_AI_TOOL_TYPE: &str = "gen_ai.tool.type";
/// Our tools are functions the model calls by name with JSON arguments.
pub const TOOL_TYPE_FUNCTION: &str = "function";

pub const GEN_AI_AGENT_NAME: &str = "gen_ai.agent.name";
pub const GEN_AI_AGENT_DESCRIPTION: &str = "gen_ai.agent.description";
pub const GEN_AI_AGENT_VERSION: &str = "gen_ai.agent.version";
pub const GEN_AI_WORKFLOW_NAME: &str = "gen_ai.workflow.name";

pub const GEN_AI_TOKEN_TYPE: &str = "gen_ai.token.type";
pub const TOKEN_TYPE_INPUT: &str = "input";
pub const TOKEN_TYPE_OUTPUT: &str = "output";
/// v0.1.0: the modality of counted tokens; the host's models exchange text.
pub const GEN_AI_TOKEN_MODALITY: &str = "gen_ai.token.modality";
pub const TOKEN_MODALITY_TEXT: &str = "text";

// The MCP conventions, on the `execute_tool` span of a call an MCP client made.
pub const MCP_METHOD_NAME: &str = "mcp.method.name";
pub const MCP_METHOD_TOOLS_CALL: &str = "tools/call";
pub const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
pub const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
pub const NETWORK_TRANSPORT: &str = "network.transport";
/// `network.transport` of stdio, and of Streamable HTTP.
pub const NETWORK_TRANSPORT_PIPE: &str = "pipe";
pub const NETWORK_TRANSPORT_TCP: &str = "tcp";
/// What contains a tool: `none` for an MCP server started on stdio.
pub const GLASSBOX_SANDBOX: &str = "glassbox.sandbox";
pub const SANDBOX_NONE: &str = "none";

pub const SERVER_ADDRESS: &str = "server.address";
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub const URL_FULL: &str = "url.full";
pub const HTTP_ROUTE: &str = "http.route";
pub const SERVER_PORT: &str = "server.port";
pub const ERROR_TYPE: &str = "error.type";
pub const EXCEPTION_MESSAGE: &str = "exception.message";

/// Which component a span, metric or log line belongs to (its file name).
pub const GLASSBOX_COMPONENT: &str = "glassbox.component";
/// `guest` on spans a guest made itself, so no backend takes them for the host's.
pub const GLASSBOX_SPAN_ORIGIN: &str = "glassbox.span.origin";
pub const SPAN_ORIGIN_GUEST: &str = "guest";

/// Attribute keys backends read as the host's word (usage, cost, what kind
/// of span it is, which component ran): a guest setting one gets it renamed
/// under [`GUEST_KEY_PREFIX`] instead, so its spans cannot pass for model
/// calls or for another component's.
pub const HOST_OWNED_KEYS: [&str; 3] = [
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    OPENINFERENCE_SPAN_KIND,
];
/// Prefixes of keys owned as [`HOST_OWNED_KEYS`] are.
pub const HOST_OWNED_PREFIXES: [&str; 4] = [
    "gen_ai.usage.",
    "glassbox.",
    "langfuse.",
    "llm.token_count.",
];
pub const GUEST_KEY_PREFIX: &str = "guest.";
/// Prefixes of metric names the host's own metrics use: a guest metric named
/// so is renamed under [`GUEST_KEY_PREFIX`], as attribute keys are.
pub const HOST_OWNED_METRIC_PREFIXES: [&str; 3] = ["gen_ai.", "glassbox.", "mcp."];

/// A guest's attribute key `key`, or `guest.key` when backends would read
/// `key` as the host's word.
pub fn guest_key(key: String) -> String {
    let host_owned = HOST_OWNED_KEYS.contains(&key.as_str())
        || HOST_OWNED_PREFIXES
            .iter()
            .any(|prefix| key.starts_with(prefix));
    if host_owned {
        format!("{GUEST_KEY_PREFIX}{key}")
    } else {
        key
    }
}

/// A guest's metric name `name`, or `guest.name` when it is in the host's namespace.
pub fn guest_metric_name(name: String) -> String {
    if HOST_OWNED_METRIC_PREFIXES
        .iter()
        .any(|prefix| name.starts_with(prefix))
    {
        format!("{GUEST_KEY_PREFIX}{name}")
    } else {
        name
    }
}

/// Chunks a streamed answer arrived in (text and tool calls).
pub const GLASSBOX_LLM_STREAM_CHUNKS: &str = "glassbox.llm.stream.chunks";
/// HTTP attempts a model call took, retries included.
pub const GLASSBOX_LLM_ATTEMPTS: &str = "glassbox.llm.attempts";
/// The event recording one failed attempt: its number, status, error and the wait before the next.
pub const LLM_ATTEMPT_FAILED_EVENT: &str = "glassbox.llm.attempt_failed";
pub const GLASSBOX_LLM_ATTEMPT: &str = "glassbox.llm.attempt";
/// Seconds waited before the next attempt.
pub const GLASSBOX_LLM_RETRY_DELAY: &str = "glassbox.llm.retry.delay";
/// Set on calls answered from a cassette rather than by the provider.
pub const GLASSBOX_LLM_REPLAYED: &str = "glassbox.llm.replayed";

/// What a component was granted, on the span of each run and tool call.
pub const GLASSBOX_SANDBOX_ENV: &str = "glassbox.sandbox.env";
pub const GLASSBOX_SANDBOX_DIRS: &str = "glassbox.sandbox.dirs";
pub const GLASSBOX_SANDBOX_HOSTS: &str = "glassbox.sandbox.hosts";
pub const GLASSBOX_SANDBOX_MODELS: &str = "glassbox.sandbox.models";
pub const GLASSBOX_SANDBOX_AGENTS: &str = "glassbox.sandbox.agents";
/// On an outbound request's span: the header the host added from a
/// credential grant (its name only; the value is never recorded).
pub const GLASSBOX_HTTP_CREDENTIAL: &str = "glassbox.http.credential";
/// Bytes.
pub const GLASSBOX_LIMIT_MEMORY: &str = "glassbox.limit.memory";
/// Seconds.
pub const GLASSBOX_LIMIT_TIMEOUT: &str = "glassbox.limit.timeout";
pub const GLASSBOX_LIMIT_FUEL: &str = "glassbox.limit.fuel";
/// The event recording a refused socket use, and what was refused.
pub const SANDBOX_DENIED_EVENT: &str = "glassbox.sandbox.denied";
pub const GLASSBOX_SANDBOX_RESOURCE: &str = "glassbox.sandbox.resource";
/// Size in bytes of what a tool returned, and whether it was cut to the cap.
pub const GLASSBOX_TOOL_RESULT_SIZE: &str = "glassbox.tool.result.size";
pub const GLASSBOX_TOOL_RESULT_TRUNCATED: &str = "glassbox.tool.result.truncated";

/// A run's budget on its agent span: what was used, and what is left of each limit set.
pub mod budget {
    pub const USED_LLM_CALLS: &str = "glassbox.budget.llm_calls.used";
    pub const USED_TOOL_CALLS: &str = "glassbox.budget.tool_calls.used";
    pub const USED_TOKENS: &str = "glassbox.budget.tokens.used";
    pub const USED_COST: &str = "glassbox.budget.cost.used";
    pub const REMAINING_LLM_CALLS: &str = "glassbox.budget.llm_calls.remaining";
    pub const REMAINING_TOOL_CALLS: &str = "glassbox.budget.tool_calls.remaining";
    pub const REMAINING_TOKENS: &str = "glassbox.budget.tokens.remaining";
    pub const REMAINING_COST: &str = "glassbox.budget.cost.remaining";
}

/// Values of `error.type`: low-cardinality classes of failure.
pub mod error_type {
    pub const RATE_LIMITED: &str = "rate_limited";
    pub const TIMEOUT: &str = "timeout";
    pub const INVALID_REQUEST: &str = "invalid_request";
    pub const NOT_ALLOWED: &str = "not_allowed";
    /// A name nothing answers to; capabilities say what was not found.
    pub const NOT_FOUND: &str = "not_found";
    pub const TOOL_NOT_FOUND: &str = "tool_not_found";
    pub const INVALID_ARGUMENTS: &str = "invalid_arguments";
    pub const TOOL_FAILED: &str = "tool_failed";
    /// Any failed tool call an MCP client made: its result has `isError`.
    pub const MCP_TOOL_ERROR: &str = "tool_error";
    pub const TRAP: &str = "trap";
    pub const PROVIDER: &str = "provider_error";
    pub const CANCELLED: &str = "cancelled";
    pub const SANDBOX_DENIED: &str = "sandbox_denied";
    /// A grant that cannot be honoured (a granted directory is gone, say).
    pub const SANDBOX_SETUP: &str = "sandbox_setup_failed";
    pub const BUDGET_EXCEEDED: &str = "budget_exceeded";
    pub const LIMIT_EXCEEDED: &str = "limit_exceeded";
    pub const MEMORY_LIMIT: &str = "memory_limit";
    pub const FUEL_EXHAUSTED: &str = "fuel_exhausted";
    pub const STACK_OVERFLOW: &str = "stack_overflow";
    /// Every pooled instance slot was in use.
    pub const AT_CAPACITY: &str = "at_capacity";
    pub const HTTP_CONNECTION: &str = "connection_failed";
    pub const AGENT_NOT_FOUND: &str = "agent_not_found";
    /// Another host serving an agent could not be reached, or answered nonsense.
    pub const UNAVAILABLE: &str = "unavailable";
}

/// Metric names, units and bucket boundaries.
pub mod metric {
    pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
    pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
    pub const TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
    pub const TIME_PER_OUTPUT_CHUNK: &str = "gen_ai.client.operation.time_per_output_chunk";
    /// Not in the conventions: US dollars spent on model calls with a known price.
    pub const COST: &str = "glassbox.llm.cost";
    pub const TOOL_DURATION: &str = "glassbox.tool.duration";
    pub const TOOL_ERRORS: &str = "glassbox.tool.errors";
    pub const AGENT_DURATION: &str = "glassbox.agent.duration";
    pub const AGENT_ERRORS: &str = "glassbox.agent.errors";

    // GenAI semantic conventions v0.1.0, in place of the five metrics above
    // but for the error counters and the cost.
    pub const INFERENCE_DURATION: &str = "gen_ai.client.inference.duration";
    pub const INFERENCE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.inference.time_to_first_chunk";
    pub const INFERENCE_TIME_PER_OUTPUT_CHUNK: &str =
        "gen_ai.client.inference.time_per_output_chunk";
    /// Running totals of tokens, by `gen_ai.token.modality`.
    pub const INFERENCE_USAGE_INPUT_TOKENS: &str = "gen_ai.client.inference.usage.input_tokens";
    pub const INFERENCE_USAGE_OUTPUT_TOKENS: &str = "gen_ai.client.inference.usage.output_tokens";
    pub const INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS: &str =
        "gen_ai.client.inference.usage.cache_read.input_tokens";
    pub const INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS: &str =
        "gen_ai.client.inference.usage.cache_write.input_tokens";
    pub const INFERENCE_USAGE_REASONING_OUTPUT_TOKENS: &str =
        "gen_ai.client.inference.usage.reasoning.output_tokens";
    /// Tokens per call.
    pub const INFERENCE_OPERATION_INPUT_TOKENS: &str =
        "gen_ai.client.inference.operation.input_tokens";
    pub const INFERENCE_OPERATION_OUTPUT_TOKENS: &str =
        "gen_ai.client.inference.operation.output_tokens";
    pub const EMBEDDINGS_DURATION: &str = "gen_ai.client.embeddings.duration";
    pub const EMBEDDINGS_OPERATION_INPUT_TOKENS: &str =
        "gen_ai.client.embeddings.operation.input_tokens";
    /// Agent runs, and workflows (`gen_ai.operation.name` = `invoke_workflow`).
    pub const INVOKE_AGENT_DURATION: &str = "gen_ai.invoke_agent.duration";
    pub const EXECUTE_TOOL_DURATION: &str = "gen_ai.execute_tool.duration";
    /// Calls an agent run made itself, one point per run.
    pub const INVOKE_AGENT_INFERENCE_CALLS: &str = "gen_ai.invoke_agent.inference_calls";
    pub const INVOKE_AGENT_TOOL_CALLS: &str = "gen_ai.invoke_agent.tool_calls";
    /// Boundaries for calls per agent run.
    pub const CALL_COUNT_BUCKETS: [f64; 8] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0];
    /// The host's own export pipeline: spans delivered, spans dropped (with
    /// `error.type` saying why), and export requests made and failed.
    pub const SPANS_EXPORTED: &str = "glassbox.telemetry.spans.exported";
    pub const SPANS_DROPPED: &str = "glassbox.telemetry.spans.dropped";
    pub const EXPORT_ATTEMPTS: &str = "glassbox.telemetry.export.attempts";
    pub const EXPORT_FAILURES: &str = "glassbox.telemetry.export.failures";
    /// Why spans were dropped.
    pub const DROP_QUEUE_FULL: &str = "queue_full";
    pub const DROP_EXPORT_FAILED: &str = "export_failed";
    pub const DROP_AFTER_SHUTDOWN: &str = "after_shutdown";

    /// Boundaries the GenAI conventions give for `gen_ai.client.token.usage`.
    pub const TOKEN_BUCKETS: [f64; 14] = [
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
        4194304.0, 16777216.0, 67108864.0,
    ];
    /// Boundaries the GenAI conventions give for durations in seconds.
    pub const DURATION_BUCKETS: [f64; 14] = [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];
}

/// Resource attributes.
pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_VERSION: &str = "service.version";
pub const DEFAULT_SERVICE_NAME: &str = "glassbox";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_owned_keys_and_metric_names_are_renamed_and_others_kept() {
        for key in [
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.cost",
            "gen_ai.operation.name",
            "openinference.span.kind",
            "langfuse.observation.type",
            "glassbox.component",
        ] {
            assert_eq!(guest_key(key.into()), format!("guest.{key}"));
        }
        for key in ["app.step", "gen_ai.request.model", "retrieval.documents"] {
            assert_eq!(guest_key(key.into()), key);
        }
        for name in ["gen_ai.client.token.usage", "glassbox.tool.calls", "mcp.x"] {
            assert_eq!(guest_metric_name(name.into()), format!("guest.{name}"));
        }
        assert_eq!(guest_metric_name("app.pages".into()), "app.pages");
    }
}
