//! Choosing and building the provider from settings (the manifest's `[llm]`
//! table and the command line), with the `OPENAI_*` variables as defaults.

use super::{Llm, LlmError, OpenAiConfig, OpenAiProvider, Prices, ScriptError, ScriptedProvider};
use std::path::PathBuf;
use std::sync::Arc;

/// Which provider answers model calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Any OpenAI-compatible Chat Completions API (OpenAI, Ollama, vLLM, ...).
    Openai,
    /// Offline answers from a script; the bundled demo script by default.
    Scripted,
}

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "openai" => Ok(ProviderKind::Openai),
            "scripted" => Ok(ProviderKind::Scripted),
            other => Err(format!(
                "unknown provider `{other}` (expected openai or scripted)"
            )),
        }
    }
}

/// How to reach a model. Unset fields fall back to the `OPENAI_*` variables,
/// then to the provider's defaults.
#[derive(Clone, Debug, Default)]
pub struct LlmSettings {
    /// `None`: openai when a base URL or `OPENAI_API_KEY`/`OPENAI_BASE_URL` is set, else scripted.
    pub provider: Option<ProviderKind>,
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// The variable holding the API key, `OPENAI_API_KEY` by default.
    pub api_key_env: Option<String>,
    /// The scripted provider's script.
    pub script: Option<PathBuf>,
    pub prices: Prices,
}

/// Settings that cannot make a provider.
#[derive(Debug, thiserror::Error)]
pub enum LlmSetupError {
    #[error("a script applies only to the scripted provider")]
    ScriptWithoutScripted,
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error(transparent)]
    Provider(#[from] LlmError),
}

impl LlmSettings {
    /// Overlays `other`'s set fields on these (command-line flags on a manifest).
    pub fn overlay(self, other: LlmSettings) -> LlmSettings {
        let mut prices = self.prices;
        prices.extend(other.prices);
        LlmSettings {
            provider: other.provider.or(self.provider),
            model: other.model.or(self.model),
            base_url: other.base_url.or(self.base_url),
            api_key_env: other.api_key_env.or(self.api_key_env),
            script: other.script.or(self.script),
            prices,
        }
    }

    /// Builds the provider, with a line saying which, for the log.
    pub fn build(self) -> Result<(Llm, String), LlmSetupError> {
        let env_set = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        let api_key_env = self.api_key_env.as_deref().unwrap_or("OPENAI_API_KEY");
        let kind = self.provider.unwrap_or(
            if self.base_url.is_some() || env_set("OPENAI_BASE_URL") || env_set(api_key_env) {
                ProviderKind::Openai
            } else {
                ProviderKind::Scripted
            },
        );
        match kind {
            ProviderKind::Openai => {
                if self.script.is_some() {
                    return Err(LlmSetupError::ScriptWithoutScripted);
                }
                let mut config = OpenAiConfig::from_env();
                if let Some(url) = self.base_url {
                    config.base_url = url;
                }
                if let Some(model) = self.model {
                    config.model = model;
                }
                if self.api_key_env.is_some() {
                    config.api_key = std::env::var(api_key_env)
                        .ok()
                        .filter(|key| !key.trim().is_empty());
                }
                let description = format!(
                    "openai at {} (default model {})",
                    config.base_url, config.model
                );
                let provider = Arc::new(OpenAiProvider::new(config)?);
                Ok((Llm::new(provider).with_prices(self.prices), description))
            }
            ProviderKind::Scripted => {
                let (provider, origin) = match &self.script {
                    Some(path) => (
                        ScriptedProvider::from_file(path)?,
                        path.display().to_string(),
                    ),
                    None => (ScriptedProvider::demo(), "the bundled demo script".into()),
                };
                let description = format!(
                    "scripted (offline, answers from {origin}); set OPENAI_API_KEY or OPENAI_BASE_URL for a real model"
                );
                Ok((
                    Llm::new(Arc::new(provider)).with_prices(self.prices),
                    description,
                ))
            }
        }
    }
}
