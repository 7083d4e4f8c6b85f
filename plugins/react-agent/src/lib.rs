//! A ReAct-style agent: offers the model every granted tool, runs the tool calls
//! it asks for (several per turn), feeds the results back, and stops at the first
//! answer without tool calls or after `REACT_MAX_STEPS` steps (default 8).
//! Each step is a custom span, so model and tool calls group by step in the trace.

use glassbox_sdk::llm::{self, ChatRequest};
use glassbox_sdk::telemetry::{self, Span, StatusCode, attribute};
use glassbox_sdk::{
    Agent, AgentInfo, ChatMessage, Error, RunRequest, ToolCall, export_agent, tools,
};

const DEFAULT_MAX_STEPS: u32 = 8;

const SYSTEM_PROMPT: &str = "You are a helpful assistant. Use the tools you are given whenever they \
can answer part of the question, then reply with a short final answer.";

struct ReactAgent;

impl Agent for ReactAgent {
    fn describe() -> AgentInfo {
        AgentInfo {
            name: "react-agent".into(),
            description: "Answers by reasoning in steps and calling tools.".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn run(request: RunRequest) -> Result<String, Error> {
        let max_steps = max_steps()?;
        let mut messages = vec![ChatMessage::system(SYSTEM_PROMPT)];
        messages.extend(glassbox_sdk::input_messages(request.input));
        let tools = tools::list();

        for step in 1..=max_steps {
            let span = Span::new("react.step", &[attribute("react.step", step)]);
            let response = llm::chat(&ChatRequest::new(messages.clone()).with_tools(tools.clone()))
                .inspect_err(|e| span.set_status(StatusCode::Error, Some(&e.summary())))?;
            let calls = response.message.tool_calls.clone();
            span.set_attributes(&[attribute("react.tool_calls", calls.len() as i64)]);
            messages.push(response.message);
            if calls.is_empty() {
                return Ok(messages.pop().map(|m| m.content).unwrap_or_default());
            }
            for call in &calls {
                messages.push(ChatMessage::tool_result(call, call_tool(call)));
            }
        }
        Err(Error::Timeout(format!(
            "no final answer within {max_steps} steps"
        )))
    }
}

/// Runs one tool call; a failure becomes text for the model to react to.
fn call_tool(call: &ToolCall) -> String {
    tools::call(&call.name, &call.arguments, Some(&call.id)).unwrap_or_else(|error| {
        telemetry::log(
            telemetry::Level::Warn,
            &format!("tool `{}` failed: {}", call.name, error.summary()),
            &[attribute("gen_ai.tool.call.id", call.id.as_str())],
        );
        format!("The tool failed ({})", error.summary())
    })
}

fn max_steps() -> Result<u32, Error> {
    match std::env::var("REACT_MAX_STEPS") {
        Err(_) => Ok(DEFAULT_MAX_STEPS),
        Ok(value) => value
            .parse()
            .ok()
            .filter(|&steps| steps > 0)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "REACT_MAX_STEPS must be a positive number, not `{value}`"
                ))
            }),
    }
}

export_agent!(ReactAgent);
