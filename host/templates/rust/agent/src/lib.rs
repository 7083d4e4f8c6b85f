//! {{name}}: a Glassbox agent. It offers the model the tools it is granted,
//! runs the calls the model asks for, and answers when the model stops asking.

use glassbox_sdk::llm::{self, ChatRequest};
use glassbox_sdk::{Agent, AgentInfo, ChatMessage, Error, RunRequest, export_agent, tools};

const MAX_STEPS: u32 = 8;

struct Assistant;

impl Agent for Assistant {
    fn describe() -> AgentInfo {
        AgentInfo {
            name: "{{name}}".into(),
            description: "Answers with the tools it is granted.".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn run(request: RunRequest) -> Result<String, Error> {
        let mut messages = glassbox_sdk::input_messages(request.input);
        let granted = tools::list();
        for _ in 0..MAX_STEPS {
            let reply = llm::chat(&ChatRequest::new(messages.clone()).with_tools(granted.clone()))?;
            let calls = reply.message.tool_calls.clone();
            messages.push(reply.message);
            if calls.is_empty() {
                return Ok(messages.pop().map(|m| m.content).unwrap_or_default());
            }
            for call in &calls {
                let result = tools::call(&call.name, &call.arguments, Some(&call.id))
                    .unwrap_or_else(|error| format!("The tool failed ({})", error.summary()));
                messages.push(ChatMessage::tool_result(call, result));
            }
        }
        Err(Error::Timeout(format!("no answer within {MAX_STEPS} steps")))
    }
}

export_agent!(Assistant);
