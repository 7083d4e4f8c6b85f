//! Record and replay. A cassette is a JSON Lines file, one exchange with a
//! provider per line (the request, then the response, the streamed events or
//! the error), written as each call ends. Replaying answers the calls of a run
//! from it in order, with no network, and refuses a request that differs from
//! the recorded one, naming the call and the first difference.

use super::model::*;
use super::{LlmProvider, SharedProvider};
use crate::files::{MAX_CASSETTE, read_text_bounded};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A cassette that cannot be read or written.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    #[error("cassette {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cassette {path}, line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// One call and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
enum Exchange {
    Chat {
        request: ChatRequest,
        #[serde(flatten)]
        outcome: Outcome<ChatResponse>,
    },
    ChatStream {
        request: ChatRequest,
        /// The events delivered, in order; a stream that failed or was
        /// abandoned ends early, and `error` says how if it failed.
        events: Vec<StreamEvent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<LlmError>,
    },
    Embeddings {
        request: EmbeddingsRequest,
        #[serde(flatten)]
        outcome: Outcome<EmbeddingsResponse>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome<T> {
    Response(T),
    Error(LlmError),
}

impl<T> From<Result<T, LlmError>> for Outcome<T> {
    fn from(result: Result<T, LlmError>) -> Self {
        match result {
            Ok(response) => Outcome::Response(response),
            Err(error) => Outcome::Error(error),
        }
    }
}

impl<T> From<Outcome<T>> for Result<T, LlmError> {
    fn from(outcome: Outcome<T>) -> Self {
        match outcome {
            Outcome::Response(response) => Ok(response),
            Outcome::Error(error) => Err(error),
        }
    }
}

impl Exchange {
    fn operation(&self) -> &'static str {
        match self {
            Exchange::Chat { .. } => "chat",
            Exchange::ChatStream { .. } => "chat_stream",
            Exchange::Embeddings { .. } => "embeddings",
        }
    }

    fn request(&self) -> serde_json::Value {
        let encoded = match self {
            Exchange::Chat { request, .. } | Exchange::ChatStream { request, .. } => {
                serde_json::to_value(request)
            }
            Exchange::Embeddings { request, .. } => serde_json::to_value(request),
        };
        encoded.expect("requests encode as JSON")
    }
}

/// Where a run's exchanges are written, one line each as it ends.
pub struct CassetteWriter {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl CassetteWriter {
    /// Creates (or empties) the cassette at `path`.
    pub fn create(path: &Path) -> Result<Arc<Self>, CassetteError> {
        let file = std::fs::File::create(path).map_err(|source| CassetteError::Io {
            path: path.into(),
            source,
        })?;
        Ok(Arc::new(CassetteWriter {
            path: path.into(),
            file: Mutex::new(file),
        }))
    }

    /// Appends one line. A cassette missing a call would fail its replay
    /// later, so a failure to write is the call's failure now.
    fn write(&self, exchange: &Exchange) -> Result<(), LlmError> {
        let mut line = serde_json::to_vec(exchange).expect("exchanges encode as JSON");
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(&line).map_err(|e| {
            LlmError::Provider(format!(
                "cannot record to the cassette {}: {e}",
                self.path.display()
            ))
        })
    }
}

/// A recorded run, to answer from.
pub struct Cassette {
    path: PathBuf,
    exchanges: Vec<Exchange>,
    /// Index of the next exchange to answer with.
    next: Mutex<usize>,
}

impl Cassette {
    pub fn load(path: &Path) -> Result<Arc<Self>, CassetteError> {
        let text = read_text_bounded(path, MAX_CASSETTE).map_err(|source| CassetteError::Io {
            path: path.into(),
            source,
        })?;
        let exchanges = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(index, line)| {
                serde_json::from_str(line).map_err(|e| CassetteError::Malformed {
                    path: path.into(),
                    line: index + 1,
                    reason: e.to_string(),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Arc::new(Cassette {
            path: path.into(),
            exchanges,
            next: Mutex::new(0),
        }))
    }

    /// The recorded exchange answering `wanted`, which must be the next one
    /// recorded and have the same operation and request.
    fn answer(&self, wanted: &Exchange) -> Result<Exchange, LlmError> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let number = *next + 1;
        let recorded = self.exchanges.get(*next).ok_or_else(|| {
            LlmError::InvalidRequest(format!(
                "replay: the run made model call {number}, but the cassette {} holds only {}",
                self.path.display(),
                self.exchanges.len()
            ))
        })?;
        let mismatch = |what: String| {
            LlmError::InvalidRequest(format!(
                "replay: model call {number} differs from the cassette {}: {what}",
                self.path.display()
            ))
        };
        if recorded.operation() != wanted.operation() {
            return Err(mismatch(format!(
                "it recorded a {} call, this is a {} call",
                recorded.operation(),
                wanted.operation()
            )));
        }
        if let Some(difference) = first_difference("", &recorded.request(), &wanted.request()) {
            return Err(mismatch(difference));
        }
        *next += 1;
        Ok(recorded.clone())
    }
}

/// Where `recorded` and `now` first differ, as a JSON pointer with both values.
fn first_difference(
    at: &str,
    recorded: &serde_json::Value,
    now: &serde_json::Value,
) -> Option<String> {
    use serde_json::Value;
    match (recorded, now) {
        (Value::Object(a), Value::Object(b)) => a
            .keys()
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .find_map(|key| {
                let null = Value::Null;
                first_difference(
                    &format!("{at}/{key}"),
                    a.get(key).unwrap_or(&null),
                    b.get(key).unwrap_or(&null),
                )
            }),
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .enumerate()
            .find_map(|(index, (x, y))| first_difference(&format!("{at}/{index}"), x, y)),
        (Value::Array(a), Value::Array(b)) => Some(format!(
            "{} holds {} items in the cassette, {} now",
            pointer(at),
            a.len(),
            b.len()
        )),
        _ if recorded == now => None,
        _ => Some(format!(
            "{} is {} in the cassette, {} now",
            pointer(at),
            excerpt(recorded),
            excerpt(now)
        )),
    }
}

fn pointer(at: &str) -> &str {
    if at.is_empty() { "the request" } else { at }
}

fn excerpt(value: &serde_json::Value) -> String {
    const MAX: usize = 120;
    let text = value.to_string();
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// `inner`, with every exchange also written to `cassette`.
pub(super) fn recording(inner: SharedProvider, cassette: Arc<CassetteWriter>) -> SharedProvider {
    Arc::new(Taped {
        inner,
        tape: Tape::Record(cassette),
    })
}

/// `inner`'s name, endpoint and defaults, with answers from `cassette`.
pub(super) fn replaying(inner: SharedProvider, cassette: Arc<Cassette>) -> SharedProvider {
    Arc::new(Taped {
        inner,
        tape: Tape::Replay(cassette),
    })
}

/// A provider under record or replay. It keeps the inner provider's name,
/// endpoint and defaults either way, so spans look the same.
struct Taped {
    inner: SharedProvider,
    tape: Tape,
}

enum Tape {
    Record(Arc<CassetteWriter>),
    Replay(Arc<Cassette>),
}

#[async_trait::async_trait]
impl LlmProvider for Taped {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn endpoint(&self) -> Option<Endpoint> {
        self.inner.endpoint()
    }

    fn default_model(&self) -> &str {
        self.inner.default_model()
    }

    fn default_embedding_model(&self) -> Option<&str> {
        self.inner.default_embedding_model()
    }

    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError> {
        match &self.tape {
            Tape::Record(cassette) => {
                let result = self.inner.chat(request.clone()).await;
                cassette.write(&Exchange::Chat {
                    request,
                    outcome: result.clone().into(),
                })?;
                result
            }
            Tape::Replay(cassette) => {
                let wanted = Exchange::Chat {
                    request,
                    outcome: Outcome::Error(LlmError::Provider(String::new())),
                };
                match cassette.answer(&wanted)? {
                    Exchange::Chat { outcome, .. } => outcome.into(),
                    _ => unreachable!("answer() checked the operation"),
                }
            }
        }
    }

    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        match &self.tape {
            Tape::Record(cassette) => {
                let events = match self.inner.chat_stream(request.clone()).await {
                    Ok(events) => events,
                    Err(error) => {
                        cassette.write(&Exchange::ChatStream {
                            request,
                            events: Vec::new(),
                            error: Some(error.clone()),
                        })?;
                        return Err(error);
                    }
                };
                let tape = StreamTape {
                    cassette: cassette.clone(),
                    request: Some(request),
                    events: Vec::new(),
                };
                let taped = futures_util::stream::unfold(
                    (events, tape),
                    |(mut events, mut tape)| async move {
                        let item = tape.note(events.next().await?);
                        Some((item, (events, tape)))
                    },
                );
                Ok(taped.boxed())
            }
            Tape::Replay(cassette) => {
                let wanted = Exchange::ChatStream {
                    request,
                    events: Vec::new(),
                    error: None,
                };
                let Exchange::ChatStream { events, error, .. } = cassette.answer(&wanted)? else {
                    unreachable!("answer() checked the operation")
                };
                if events.is_empty()
                    && let Some(error) = error
                {
                    return Err(error);
                }
                let items = events.into_iter().map(Ok).chain(error.map(Err));
                Ok(futures_util::stream::iter(items).boxed())
            }
        }
    }

    async fn embeddings(&self, request: EmbeddingsRequest) -> Result<EmbeddingsResponse, LlmError> {
        match &self.tape {
            Tape::Record(cassette) => {
                let result = self.inner.embeddings(request.clone()).await;
                cassette.write(&Exchange::Embeddings {
                    request,
                    outcome: result.clone().into(),
                })?;
                result
            }
            Tape::Replay(cassette) => {
                let wanted = Exchange::Embeddings {
                    request,
                    outcome: Outcome::Error(LlmError::Provider(String::new())),
                };
                match cassette.answer(&wanted)? {
                    Exchange::Embeddings { outcome, .. } => outcome.into(),
                    _ => unreachable!("answer() checked the operation"),
                }
            }
        }
    }
}

/// The events of one stream as they pass, written out when it ends, fails or is dropped.
struct StreamTape {
    cassette: Arc<CassetteWriter>,
    /// `None` once written.
    request: Option<ChatRequest>,
    events: Vec<StreamEvent>,
}

impl StreamTape {
    fn note(&mut self, item: Result<StreamEvent, LlmError>) -> Result<StreamEvent, LlmError> {
        match item {
            Ok(event) => {
                self.events.push(event.clone());
                if matches!(event, StreamEvent::End(_)) {
                    self.write(None)?;
                }
                Ok(event)
            }
            Err(error) => {
                self.write(Some(error.clone()))?;
                Err(error)
            }
        }
    }

    fn write(&mut self, error: Option<LlmError>) -> Result<(), LlmError> {
        match self.request.take() {
            Some(request) => self.cassette.write(&Exchange::ChatStream {
                request,
                events: std::mem::take(&mut self.events),
                error,
            }),
            None => Ok(()),
        }
    }
}

impl Drop for StreamTape {
    fn drop(&mut self) {
        // An abandoned stream keeps what was delivered; a replay stops there too.
        if let Err(error) = self.write(None) {
            tracing::error!("{error}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ScriptedProvider;

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            model: "scripted-demo".into(),
            messages: vec![Message::text(Role::User, text)],
            tools: vec![],
            temperature: Some(0.5),
            max_tokens: None,
            top_p: None,
            stop_sequences: vec![],
            seed: None,
        }
    }

    #[tokio::test]
    async fn a_recorded_run_replays_and_a_changed_request_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("run.jsonl");
        let scripted: SharedProvider = Arc::new(ScriptedProvider::demo());
        let recorder = recording(scripted.clone(), CassetteWriter::create(&path).unwrap());
        let first = recorder.chat(request("Paris or Lisbon?")).await.unwrap();
        let streamed: Vec<_> = recorder
            .chat_stream(request("again"))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 2);

        let player = replaying(scripted.clone(), Cassette::load(&path).unwrap());
        assert_eq!(
            player.chat(request("Paris or Lisbon?")).await.unwrap(),
            first
        );
        let replayed: Vec<_> = player
            .chat_stream(request("again"))
            .await
            .unwrap()
            .collect()
            .await;
        assert_eq!(replayed, streamed);
        let past_the_end = player.chat(request("more")).await.unwrap_err().to_string();
        assert!(
            past_the_end.contains("model call 3") && past_the_end.contains("holds only 2"),
            "{past_the_end}"
        );

        let player = replaying(scripted, Cassette::load(&path).unwrap());
        let changed = player.chat(request("Paris or Rome?")).await.unwrap_err();
        assert_eq!(
            changed.to_string(),
            format!(
                "invalid request: replay: model call 1 differs from the cassette {}: /messages/0/content is \"Paris or Lisbon?\" in the cassette, \"Paris or Rome?\" now",
                path.display()
            )
        );
    }

    #[test]
    fn a_malformed_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.jsonl");
        std::fs::write(&path, "\n{\"operation\": \"chat\"}\n").unwrap();
        let error = Cassette::load(&path).err().unwrap().to_string();
        assert!(error.contains("line 2"), "{error}");
    }
}
