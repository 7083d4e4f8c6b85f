//! Message content in the GenAI conventions' JSON shapes, for the opt-in
//! `gen_ai.input.messages`, `gen_ai.output.messages`,
//! `gen_ai.system_instructions` and `gen_ai.tool.definitions` attributes.

use super::model::{ChatRequest, FinishReason, Message, Role};
use crate::telemetry::{ContentCapture, json_or_text, semconv};
use opentelemetry::KeyValue;
use serde_json::{Value, json};

/// The request's content: conversation, system instructions, tool definitions.
pub(super) fn input_attributes(capture: &ContentCapture, request: &ChatRequest) -> Vec<KeyValue> {
    let (system, conversation): (Vec<&Message>, Vec<&Message>) = request
        .messages
        .iter()
        .partition(|m| m.role == Role::System);
    let messages = conversation
        .into_iter()
        .map(|m| json!({"role": role(m.role), "parts": parts(m)}))
        .collect();
    let mut attributes = vec![KeyValue::new(
        semconv::GEN_AI_INPUT_MESSAGES,
        capture.render(Value::Array(messages)),
    )];
    if !system.is_empty() {
        let instructions = system
            .into_iter()
            .map(|m| json!({"type": "text", "content": m.content}))
            .collect();
        attributes.push(KeyValue::new(
            semconv::GEN_AI_SYSTEM_INSTRUCTIONS,
            capture.render(Value::Array(instructions)),
        ));
    }
    if !request.tools.is_empty() {
        let definitions = request
            .tools
            .iter()
            .map(|t| {
                json!({
                    "type": semconv::TOOL_TYPE_FUNCTION,
                    "name": t.name,
                    "description": t.description,
                    "parameters": json_or_text(&t.parameters),
                })
            })
            .collect();
        attributes.push(KeyValue::new(
            semconv::GEN_AI_TOOL_DEFINITIONS,
            capture.render(Value::Array(definitions)),
        ));
    }
    attributes
}

/// The answer: one assistant message with its finish reason.
pub(super) fn output_attribute(
    capture: &ContentCapture,
    message: &Message,
    finish_reason: FinishReason,
) -> KeyValue {
    let output = json!([{
        "role": role(message.role),
        "parts": parts(message),
        "finish_reason": finish_reason.as_str(),
    }]);
    KeyValue::new(semconv::GEN_AI_OUTPUT_MESSAGES, capture.render(output))
}

fn role(role: Role) -> &'static str {
    match role {
        Role::System => "system",
        Role::User => "user",
        Role::Assistant => "assistant",
        Role::Tool => "tool",
    }
}

fn parts(message: &Message) -> Vec<Value> {
    if message.role == Role::Tool {
        return vec![json!({
            "type": "tool_call_response",
            "id": message.tool_call_id,
            "response": message.content,
        })];
    }
    let text =
        (!message.content.is_empty()).then(|| json!({"type": "text", "content": message.content}));
    let calls = message.tool_calls.iter().map(|call| {
        json!({
            "type": "tool_call",
            "id": call.id,
            "name": call.name,
            "arguments": json_or_text(&call.arguments),
        })
    });
    text.into_iter().chain(calls).collect()
}
