//! Hostile guests: each attack is contained, the guest (or the run's caller)
//! sees a typed error, a span records it, and the same host then serves an
//! ordinary run.

use crate::support::otlp::{attribute, int, string};
use crate::support::{
    TOOL_LIMITS, TestHost, assert_strings, limited_tools, only, outline, scripted, status,
    test_agent,
};
use glassbox::llm::{Price, Prices};
use glassbox::sandbox::{Budget, Fault, Limits, Policy};
use glassbox::telemetry::OtlpProtocol;
use glassbox::{GuestError, RunError, RunRequest};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use std::collections::HashMap;
use std::time::Duration;

/// A model that answers everything with the same short text.
const PARROT: &str = r#"
    [[turn]]
    content = "again"
"#;

async fn host() -> TestHost {
    TestHost::start(
        test_agent().await,
        limited_tools().await,
        scripted(PARROT),
        OtlpProtocol::Grpc,
    )
    .await
}

fn run(input: &str, limits: Limits) -> RunRequest {
    RunRequest {
        policy: Policy {
            limits,
            ..Policy::default()
        },
        ..RunRequest::text(input)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_past_a_limit_is_stopped_with_a_typed_fault() {
    let tight = Limits {
        memory: 32 * 1024 * 1024,
        timeout: Duration::from_millis(500),
        fuel: None,
    };
    let cases = [
        ("spin", tight, Fault::Timeout(tight.timeout), "timeout"),
        ("hog", tight, Fault::Memory(tight.memory), "memory_limit"),
        (
            "spin",
            Limits {
                fuel: Some(20_000_000),
                ..Limits::default()
            },
            Fault::Fuel(20_000_000),
            "fuel_exhausted",
        ),
        ("recurse", tight, Fault::StackOverflow, "stack_overflow"),
    ];
    for (input, limits, fault, error_type) in cases {
        let host = host().await;
        let result = host.runtime.run(run(input, limits)).await;
        let Err(RunError::Stopped(stopped)) = &result else {
            panic!("{input}: {result:?}")
        };
        assert_eq!(stopped, &fault, "{input}");
        host.flush().await;
        let spans = host.receiver.spans();
        let agent = only(&spans, "invoke_agent test-agent");
        assert_strings(&agent.attributes, &[("error.type", error_type)]);
        assert_eq!(
            status(agent),
            (2, format!("the agent was stopped: {fault}"))
        );
        assert_eq!(
            int(&agent.attributes, "glassbox.limit.memory"),
            Some(limits.memory as i64)
        );
        host.still_serves().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tool_past_a_limit_fails_back_to_the_agent_which_carries_on() {
    let host = host().await;
    assert_eq!(TOOL_LIMITS.memory, 64 * 1024 * 1024);
    let cases = [
        (
            "hog",
            "memory_limit",
            "limit exceeded: test_tools.wasm was stopped: it exceeded its memory limit of 64.0 MiB",
        ),
        (
            "spin",
            "timeout",
            "timeout: test_tools.wasm was stopped: it exceeded its time limit of 1s",
        ),
        (
            "recurse",
            "stack_overflow",
            "crashed: test_tools.wasm was stopped: it overflowed its call stack",
        ),
        (
            "explode",
            "trap",
            "crashed: test_tools.wasm was stopped: it trapped:",
        ),
        (
            "bad_utf8",
            "trap",
            "crashed: test_tools.wasm was stopped: it trapped:",
        ),
    ];
    for (tool, _, seen) in cases {
        let output = host
            .runtime
            .run(run(&format!("call {tool} {{}}"), Limits::default()))
            .await
            .unwrap();
        assert!(output.starts_with(seen), "{tool}: the agent saw {output}");
    }
    host.flush().await;
    let spans = host.receiver.spans();
    for (tool, error_type, _) in cases {
        let span = only(&spans, &format!("execute_tool {tool}"));
        assert_eq!(
            string(&span.attributes, "error.type").as_deref(),
            Some(error_type),
            "{tool}"
        );
        assert_eq!(status(span).0, 2, "{tool}");
    }
    let utf8 = status(only(&spans, "execute_tool bad_utf8")).1;
    assert!(utf8.contains("utf-8"), "{utf8}");
    host.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_tool_results_are_cut_with_a_marker() {
    let host = host().await;
    let bytes = 3 * 1024 * 1024;
    let output = host
        .runtime
        .run(RunRequest::text(format!(
            r#"call huge {{"bytes":{bytes}}}"#
        )))
        .await
        .unwrap();
    assert!(output.starts_with("ok: yyyy"));
    assert!(
        output.ends_with(&format!(
            "…[truncated by glassbox: {bytes} bytes, limit 1048576]"
        )),
        "{}",
        &output[output.len() - 80..]
    );
    assert!(output.len() < 1024 * 1024 + 100);
    host.flush().await;
    let spans = host.receiver.spans();
    let span = only(&spans, "execute_tool huge");
    assert_eq!(
        int(&span.attributes, "glassbox.tool.result.size"),
        Some(bytes as i64)
    );
    assert!(matches!(
        attribute(&span.attributes, "glassbox.tool.result.truncated"),
        Some(Value::BoolValue(true))
    ));
    host.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_stops_at_its_budget_and_the_agent_span_shows_what_is_left() {
    let host = host().await;
    let budgeted = |input: &str, budget: Budget| RunRequest {
        budget,
        ..RunRequest::text(input)
    };

    let result = host
        .runtime
        .run(budgeted(
            "models",
            Budget {
                llm_calls: Some(3),
                ..Budget::default()
            },
        ))
        .await;
    let Err(RunError::Agent(GuestError::BudgetExceeded(message))) = &result else {
        panic!("{result:?}")
    };
    assert_eq!(message, "the run's budget allows 3 model calls, all made");
    host.flush().await;
    let spans = host.receiver.spans();
    assert_eq!(
        outline(&spans),
        "\
invoke_agent test-agent [INTERNAL]
  chat scripted [CLIENT]
  chat scripted [CLIENT]
  chat scripted [CLIENT]
  chat scripted [CLIENT]
"
    );
    let refused: Vec<_> = spans
        .iter()
        .filter(|s| string(&s.attributes, "error.type").as_deref() == Some("budget_exceeded"))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(refused, ["chat scripted", "invoke_agent test-agent"]);
    let agent = only(&spans, "invoke_agent test-agent");
    assert_eq!(
        int(&agent.attributes, "glassbox.budget.llm_calls.used"),
        Some(3)
    );
    assert_eq!(
        int(&agent.attributes, "glassbox.budget.llm_calls.remaining"),
        Some(0)
    );
    host.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn tool_token_and_cost_budgets_refuse_the_next_call() {
    // The scripted provider counts four characters a token and names its model `scripted`.
    let prices = Prices::new(HashMap::from([(
        "scripted".to_owned(),
        Price {
            input: 1000.0,
            output: 1000.0,
            cache_read: None,
            cache_write: None,
        },
    )]));
    let host = TestHost::start(
        test_agent().await,
        limited_tools().await,
        glassbox::llm::Llm::new(scripted(PARROT)).with_prices(prices),
        OtlpProtocol::Grpc,
    )
    .await;
    let cases = [
        (
            "tools",
            Budget {
                tool_calls: Some(2),
                ..Budget::default()
            },
            "the run's budget allows 2 tool calls, all made",
        ),
        (
            "models",
            Budget {
                tokens: Some(10),
                ..Budget::default()
            },
            "the run's budget allows 10 tokens, ",
        ),
        (
            "models",
            Budget {
                cost_usd: Some(0.01),
                ..Budget::default()
            },
            "the run's budget allows $0.0100, $0.0",
        ),
    ];
    for (input, budget, expected) in cases {
        let result = host
            .runtime
            .run(RunRequest {
                budget,
                ..RunRequest::text(input)
            })
            .await;
        let Err(RunError::Agent(GuestError::BudgetExceeded(message))) = &result else {
            panic!("{input}: {result:?}")
        };
        assert!(message.starts_with(expected), "{message}");
    }
    host.flush().await;
    let spans = host.receiver.spans();
    let costs: Vec<f64> = spans
        .iter()
        .filter_map(|s| match attribute(&s.attributes, "gen_ai.usage.cost") {
            Some(Value::DoubleValue(cost)) => Some(*cost),
            _ => None,
        })
        .collect();
    assert!(
        !costs.is_empty() && costs.iter().all(|c| *c > 0.0),
        "{costs:?}"
    );
    host.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_calling_tools_without_end_is_stopped_by_its_time_limit() {
    let host = host().await;
    let limits = Limits {
        timeout: Duration::from_millis(500),
        ..Limits::default()
    };
    let result = host.runtime.run(run("tools", limits)).await;
    assert!(
        matches!(result, Err(RunError::Stopped(Fault::Timeout(_)))),
        "{result:?}"
    );
    host.still_serves().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fuel_limit_on_an_engine_without_metering_is_a_clear_error() {
    let engine = glassbox::Loader::new().unwrap();
    let agent = engine
        .load_agent(crate::support::artifacts::TEST_AGENT.as_ref())
        .await
        .unwrap();
    let host = TestHost::start(
        agent,
        limited_tools().await,
        scripted(PARROT),
        OtlpProtocol::Grpc,
    )
    .await;
    let limits = Limits {
        fuel: Some(1000),
        ..Limits::default()
    };
    let result = host.runtime.run(run("echo hi", limits)).await;
    let Err(RunError::Sandbox(message)) = &result else {
        panic!("{result:?}")
    };
    assert_eq!(
        message,
        "a fuel limit needs an engine that meters fuel (`Loader::with_fuel_metering`)"
    );
}

/// A guest span dressed as another component's model call stays the guest's:
/// host-owned keys are renamed, the host's own attributes cannot be pushed
/// off by a flood of others, and the span says it came from the guest.
#[tokio::test(flavor = "multi_thread")]
async fn a_guest_cannot_forge_host_telemetry() {
    let host = TestHost::test_agent(scripted(PARROT)).await;
    let answer = host.runtime.run(RunRequest::text("forge")).await.unwrap();
    assert_eq!(answer, "forged");
    host.flush().await;
    let spans = host.receiver.spans();
    let forged = only(
        &spans,
        "chat gpt-4o\n└── chat gpt-4o  0.1ms  tokens 999999 in / 1 out\r",
    );
    assert_strings(
        &forged.attributes,
        &[
            ("glassbox.component", "test_agent.wasm"),
            ("glassbox.span.origin", "guest"),
            ("guest.glassbox.component", "other.wasm"),
            ("guest.gen_ai.operation.name", "chat"),
            ("guest.openinference.span.kind", "LLM"),
            ("guest.langfuse.observation.type", "generation"),
            ("app.step", "kept as it is"),
        ],
    );
    let keys: Vec<&str> = forged.attributes.iter().map(|kv| kv.key.as_str()).collect();
    for owned in [
        "gen_ai.operation.name",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.cost",
        "openinference.span.kind",
        "langfuse.observation.type",
    ] {
        assert!(
            !keys.contains(&owned),
            "{owned} was set by the guest: {keys:?}"
        );
    }
    assert_eq!(
        keys.len(),
        2 + 64,
        "the host's two and the guest's first 64"
    );
}
