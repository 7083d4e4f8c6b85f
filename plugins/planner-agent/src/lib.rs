//! A planner: offers the model every agent it is granted as a tool taking a
//! `task`, delegates each task the model hands out to that agent (several per
//! turn), feeds the answers back, and stops at the first answer that delegates
//! nothing, or after `PLANNER_MAX_ROUNDS` rounds (default 4). The host traces
//! each delegation as an `invoke_agent` span, in this run's trace and conversation.

use glassbox_sdk::llm::{self, ChatRequest};
use glassbox_sdk::{
    Agent, AgentInfo, ChatMessage, Error, RunRequest, ToolCall, ToolDefinition, agents,
    export_agent, json,
};

const DEFAULT_MAX_ROUNDS: u32 = 4;

const SYSTEM_PROMPT: &str = "You are a planner. Split the task into independent parts, hand \
each part to the agent best suited to it, then combine their answers into one short reply.";

struct PlannerAgent;

impl Agent for PlannerAgent {
    fn describe() -> AgentInfo {
        AgentInfo {
            name: "planner".into(),
            description: "Splits a task and delegates the parts to other agents.".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn run(request: RunRequest) -> Result<String, Error> {
        let workers = agents::list();
        if workers.is_empty() {
            return Err(Error::NotAllowed(
                "the planner has no agents to delegate to; grant some with `allow_agents`".into(),
            ));
        }
        let delegations: Vec<ToolDefinition> = workers
            .iter()
            .map(|worker| ToolDefinition {
                name: worker.name.clone(),
                description: worker.description.clone(),
                parameters: json!({
                    "type": "object",
                    "properties": { "task": { "type": "string", "description": "The part of the task for this agent." } },
                    "required": ["task"],
                })
                .to_string(),
            })
            .collect();
        let mut messages = vec![ChatMessage::system(SYSTEM_PROMPT)];
        messages.extend(glassbox_sdk::input_messages(request.input));

        let max_rounds = max_rounds()?;
        for _ in 0..max_rounds {
            let chat = ChatRequest::new(messages.clone()).with_tools(delegations.clone());
            let response = llm::chat(&chat)?;
            let calls = response.message.tool_calls.clone();
            messages.push(response.message);
            if calls.is_empty() {
                return Ok(messages.pop().map(|m| m.content).unwrap_or_default());
            }
            for call in &calls {
                messages.push(ChatMessage::tool_result(call, delegate(call)));
            }
        }
        Err(Error::Timeout(format!(
            "no final answer within {max_rounds} rounds"
        )))
    }
}

/// Hands one part to its agent; a failure becomes text for the model to plan around.
fn delegate(call: &ToolCall) -> String {
    let task = serde_json::from_str::<serde_json::Value>(&call.arguments)
        .ok()
        .and_then(|arguments| arguments["task"].as_str().map(str::to_owned));
    let Some(task) = task else {
        return format!("No task given to {}: pass {{\"task\": \"...\"}}", call.name);
    };
    agents::ask(&call.name, &task)
        .unwrap_or_else(|error| format!("{} could not help ({})", call.name, error.summary()))
}

fn max_rounds() -> Result<u32, Error> {
    match std::env::var("PLANNER_MAX_ROUNDS") {
        Err(_) => Ok(DEFAULT_MAX_ROUNDS),
        Ok(value) => value
            .parse()
            .ok()
            .filter(|&rounds| rounds > 0)
            .ok_or_else(|| {
                Error::InvalidRequest(format!(
                    "PLANNER_MAX_ROUNDS must be a positive number, not `{value}`"
                ))
            }),
    }
}

export_agent!(PlannerAgent);
