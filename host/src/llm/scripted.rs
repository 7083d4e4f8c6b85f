//! The offline `scripted` provider: answers chat calls from a TOML script so the
//! demo and tests run with no account and no network. See `demo-script.toml`
//! for the format.

use super::model::*;
use crate::files::{MAX_SETTINGS_FILE, read_text_bounded};
use serde::Deserialize;
use std::path::Path;

/// The script used when none is given.
pub const DEMO_SCRIPT: &str = include_str!("demo-script.toml");

/// A script that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("script {origin}: {reason}")]
pub struct ScriptError {
    origin: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Script {
    #[serde(default = "default_model")]
    model: String,
    #[serde(rename = "turn")]
    turns: Vec<Turn>,
}

fn default_model() -> String {
    "scripted".to_owned()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Turn {
    /// Only for conversations whose first user message contains this text.
    when: Option<String>,
    #[serde(default)]
    content: String,
    #[serde(default)]
    tool_calls: Vec<ScriptedCall>,
    usage: Option<ScriptedUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedCall {
    name: String,
    #[serde(default = "empty_object")]
    arguments: toml::Value,
}

fn empty_object() -> toml::Value {
    toml::Value::Table(Default::default())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScriptedUsage {
    input: u32,
    output: u32,
}

pub struct ScriptedProvider {
    script: Script,
}

impl ScriptedProvider {
    /// The bundled demo script.
    pub fn demo() -> Self {
        Self::parse(DEMO_SCRIPT, "(bundled demo)").expect("the bundled demo script is valid")
    }

    pub fn from_file(path: &Path) -> Result<Self, ScriptError> {
        let origin = path.display().to_string();
        let text = read_text_bounded(path, MAX_SETTINGS_FILE).map_err(|e| ScriptError {
            origin: origin.clone(),
            reason: e.to_string(),
        })?;
        Self::parse(&text, &origin)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self, ScriptError> {
        let error = |reason: String| ScriptError {
            origin: origin.to_owned(),
            reason,
        };
        let script: Script = toml::from_str(text).map_err(|e| error(e.to_string()))?;
        if script.turns.is_empty() {
            return Err(error("it has no [[turn]]".into()));
        }
        for (index, turn) in script.turns.iter().enumerate() {
            if turn.content.is_empty() && turn.tool_calls.is_empty() {
                return Err(error(format!(
                    "turn {} has neither `content` nor `tool_calls`",
                    index + 1
                )));
            }
            if let Some(call) = turn.tool_calls.iter().find(|c| !c.arguments.is_table()) {
                return Err(error(format!(
                    "turn {}: the arguments of `{}` must be a table",
                    index + 1,
                    call.name
                )));
            }
        }
        Ok(ScriptedProvider { script })
    }
}

#[async_trait::async_trait]
impl super::LlmProvider for ScriptedProvider {
    fn name(&self) -> &'static str {
        "scripted"
    }

    fn endpoint(&self) -> Option<Endpoint> {
        None
    }

    fn default_model(&self) -> &str {
        &self.script.model
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        let index = request
            .messages
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .count();
        let opening = request
            .messages
            .iter()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        let turns: Vec<&Turn> = self
            .script
            .turns
            .iter()
            .filter(|turn| {
                turn.when
                    .as_ref()
                    .is_none_or(|when| opening.contains(when.as_str()))
            })
            .collect();
        let turn = turns.get(index).ok_or_else(|| {
            LlmError::InvalidRequest(format!(
                "the script has {} turns for this conversation and it needs turn {}",
                turns.len(),
                index + 1
            ))
        })?;
        let tool_calls: Vec<ToolCall> = turn
            .tool_calls
            .iter()
            .enumerate()
            .map(|(n, call)| ToolCall {
                id: format!("call_{}_{}", index + 1, n + 1),
                name: call.name.clone(),
                arguments: serde_json::to_string(&call.arguments)
                    .expect("TOML values serialize as JSON"),
            })
            .collect();
        let message = Message {
            role: Role::Assistant,
            content: fill_results(&turn.content, &request.messages),
            tool_calls,
            tool_call_id: None,
        };
        let usage = match &turn.usage {
            Some(usage) => Usage {
                input_tokens: usage.input,
                output_tokens: usage.output,
                ..Usage::default()
            },
            None => estimate_usage(&request.messages, &message),
        };
        Ok(ChatResponse {
            id: format!("scripted-{}", index + 1),
            model: request.model,
            finish_reason: if message.tool_calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            },
            message,
            usage: Some(usage),
        })
    }
}

/// Replaces each `{{result:TOOL}}` with the latest result of TOOL in `conversation`.
fn fill_results(content: &str, conversation: &[Message]) -> String {
    let mut filled = content.to_owned();
    while let Some(start) = filled.find("{{result:") {
        let Some(length) = filled[start..].find("}}") else {
            break;
        };
        let tool = &filled[start + "{{result:".len()..start + length];
        let result =
            latest_result(tool, conversation).unwrap_or_else(|| format!("(no result from {tool})"));
        filled.replace_range(start..start + length + 2, &result);
    }
    filled
}

fn latest_result(tool: &str, conversation: &[Message]) -> Option<String> {
    let call_ids: Vec<&str> = conversation
        .iter()
        .flat_map(|m| &m.tool_calls)
        .filter(|c| c.name == tool)
        .map(|c| c.id.as_str())
        .collect();
    conversation
        .iter()
        .rev()
        .find(|m| {
            m.role == Role::Tool
                && m.tool_call_id
                    .as_deref()
                    .is_some_and(|id| call_ids.contains(&id))
        })
        .map(|m| m.content.clone())
}

/// Four characters a token, rounded up: a stand-in for a real tokenizer.
fn estimate_usage(input: &[Message], output: &Message) -> Usage {
    let tokens = |chars: usize| u32::try_from(chars.div_ceil(4)).unwrap_or(u32::MAX);
    let size = |m: &Message| {
        m.content.len()
            + m.tool_calls
                .iter()
                .map(|c| c.name.len() + c.arguments.len())
                .sum::<usize>()
    };
    Usage {
        input_tokens: tokens(input.iter().map(size).sum()),
        output_tokens: tokens(size(output)),
        ..Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::LlmProvider;

    fn request(messages: Vec<Message>) -> ChatRequest {
        ChatRequest {
            model: "m".into(),
            messages,
            tools: vec![],
            temperature: None,
            max_tokens: None,
            top_p: None,
            stop_sequences: vec![],
            seed: None,
        }
    }

    #[tokio::test]
    async fn the_demo_walks_through_its_turns_and_fills_in_results() {
        let provider = ScriptedProvider::demo();
        let mut conversation = vec![Message::text(Role::User, "Paris or Lisbon?")];
        let first = provider.chat(request(conversation.clone())).await.unwrap();
        assert_eq!(first.finish_reason, FinishReason::ToolCalls);
        assert_eq!(first.message.tool_calls.len(), 2);
        assert_eq!(
            first.message.tool_calls[1].arguments,
            r#"{"city":"Lisbon"}"#
        );
        conversation.push(first.message);

        let second = provider.chat(request(conversation.clone())).await.unwrap();
        let call = second.message.tool_calls[0].clone();
        assert_eq!(call.name, "calculate");
        conversation.push(second.message);
        conversation.push(Message {
            tool_call_id: Some(call.id),
            ..Message::text(Role::Tool, "9")
        });

        let last = provider.chat(request(conversation.clone())).await.unwrap();
        assert_eq!(last.finish_reason, FinishReason::Stop);
        assert!(
            last.message.content.ends_with("a difference of 9 °F."),
            "{}",
            last.message.content
        );
        assert!(last.usage.unwrap().input_tokens > 0);
        conversation.push(last.message);

        let error = provider.chat(request(conversation)).await.unwrap_err();
        assert_eq!(
            error,
            LlmError::InvalidRequest(
                "the script has 3 turns for this conversation and it needs turn 4".into()
            )
        );
    }

    #[test]
    fn a_bad_script_names_its_origin_and_problem() {
        let error = ScriptedProvider::parse("[[turn]]\ncontnt = 'x'\n", "my.toml")
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.starts_with("script my.toml:") && error.contains("contnt"),
            "{error}"
        );
        let error = ScriptedProvider::parse("model = 'x'\nturn = []\n", "s.toml")
            .err()
            .unwrap()
            .to_string();
        assert_eq!(error, "script s.toml: it has no [[turn]]");
    }
}
