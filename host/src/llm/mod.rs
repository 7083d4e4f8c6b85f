//! The `llm` capability: providers behind [`LlmProvider`] (OpenAI-compatible,
//! Anthropic, scripted), chosen per call by model name; record and replay of
//! their answers; prices; and the host side of the `llm` import, which opens a
//! `chat {model}` span and records GenAI metrics around every call. Providers
//! know nothing of WebAssembly: only `import` and `context` see the WIT types.

mod anthropic;
mod call;
mod cassette;
mod content;
mod context;
pub(crate) mod http;
mod import;
mod model;
mod openai;
mod pricing;
mod scripted;
mod settings;

pub use anthropic::{AnthropicConfig, AnthropicProvider};
pub use cassette::{Cassette, CassetteError, CassetteWriter};
pub use context::{LlmCapability, ModelGrant};
pub(crate) use context::{LlmCtx, LlmImport, LlmRun, LlmView};
pub use http::{Connection, RetryPolicy};
pub use model::*;
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use pricing::{Price, PriceError, Prices};
pub use scripted::{DEMO_SCRIPT, ScriptError, ScriptedProvider};
pub use settings::{LlmSettings, LlmSetupError, ProviderKind, ProviderSettings};

use futures_util::StreamExt;
use std::sync::Arc;

/// A source of chat completions and embeddings. Implementations know nothing of Wasm.
#[async_trait::async_trait]
pub trait LlmProvider: Send + Sync {
    /// `gen_ai.provider.name`: `openai`, `anthropic`, `scripted`, ...
    fn name(&self) -> &'static str;
    /// Where requests go, when over the network.
    fn endpoint(&self) -> Option<Endpoint>;
    /// The chat model used when a request names none.
    fn default_model(&self) -> &str;
    async fn chat(&self, request: ChatRequest) -> Result<ChatResponse, LlmError>;
    /// The answer in pieces as they come. Providers that cannot stream
    /// deliver the whole answer as one stream.
    async fn chat_stream(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let events = self.chat(request).await?.into_events();
        Ok(futures_util::stream::iter(events.into_iter().map(Ok)).boxed())
    }
    /// The embedding model used when a request names none; `None` when the provider cannot embed.
    fn default_embedding_model(&self) -> Option<&str> {
        None
    }
    async fn embeddings(
        &self,
        _request: EmbeddingsRequest,
    ) -> Result<EmbeddingsResponse, LlmError> {
        Err(LlmError::InvalidRequest(format!(
            "the {} provider offers no embeddings",
            self.name()
        )))
    }
}

/// Shared handle to a provider.
pub type SharedProvider = Arc<dyn LlmProvider>;

/// The `llm` capability a runtime grants: a default provider, further
/// providers for the models they serve, and the prices of models.
#[derive(Clone)]
pub struct Llm {
    default: SharedProvider,
    routes: Vec<Route>,
    pub prices: Prices,
    /// Answers come from a cassette: spans say so.
    replaying: bool,
}

/// A provider serving the models that match any of its patterns.
#[derive(Clone)]
struct Route {
    models: Vec<String>,
    provider: SharedProvider,
}

impl Route {
    /// `gpt-4o` matches itself only; `claude-*` matches every name it starts.
    fn serves(&self, model: &str) -> bool {
        self.models
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => model.starts_with(prefix),
                None => pattern == model,
            })
    }
}

impl Llm {
    /// One provider for every model, with the bundled prices.
    pub fn new(provider: SharedProvider) -> Self {
        Llm {
            default: provider,
            routes: Vec::new(),
            prices: Prices::bundled(),
            replaying: false,
        }
    }

    pub fn with_prices(self, prices: Prices) -> Self {
        Llm { prices, ..self }
    }

    /// Sends requests naming a model that matches `models` (exact names, or
    /// prefixes ending in `*`) to `provider`. Earlier routes win.
    pub fn with_route(mut self, models: Vec<String>, provider: SharedProvider) -> Self {
        self.routes.push(Route { models, provider });
        self
    }

    /// The provider for a request naming `model`, or naming none.
    pub fn provider_for(&self, model: Option<&str>) -> &SharedProvider {
        model
            .and_then(|model| self.routes.iter().find(|r| r.serves(model)))
            .map_or(&self.default, |route| &route.provider)
    }

    pub fn default_provider(&self) -> &SharedProvider {
        &self.default
    }

    pub fn replaying(&self) -> bool {
        self.replaying
    }

    /// Every provider wrapped so its exchanges are also written to `cassette`.
    pub fn recording(self, cassette: Arc<CassetteWriter>) -> Self {
        self.wrap(|provider| cassette::recording(provider, cassette.clone()))
    }

    /// Every provider answered from `cassette` instead, in order, with no network.
    pub fn replaying_from(self, cassette: Arc<Cassette>) -> Self {
        Llm {
            replaying: true,
            ..self.wrap(|provider| cassette::replaying(provider, cassette.clone()))
        }
    }

    fn wrap(self, wrap: impl Fn(SharedProvider) -> SharedProvider) -> Self {
        Llm {
            default: wrap(self.default),
            routes: self
                .routes
                .into_iter()
                .map(|route| Route {
                    models: route.models,
                    provider: wrap(route.provider),
                })
                .collect(),
            ..self
        }
    }
}

impl From<SharedProvider> for Llm {
    fn from(provider: SharedProvider) -> Self {
        Llm::new(provider)
    }
}

impl<P: LlmProvider + 'static> From<Arc<P>> for Llm {
    fn from(provider: Arc<P>) -> Self {
        Llm::new(provider)
    }
}
