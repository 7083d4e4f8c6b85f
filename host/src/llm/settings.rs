//! Choosing and building providers from settings (the manifest's `[llm]`
//! table and the command line): a default provider, further providers
//! chosen by model name, prices, and record or replay. The `OPENAI_*` and
//! `ANTHROPIC_*` variables fill in what the settings leave unset.

use super::anthropic::{AnthropicConfig, AnthropicProvider};
use super::http::Connection;
use super::openai::{DEFAULT_TIMEOUT, OpenAiConfig, OpenAiProvider};
use super::{
    Cassette, CassetteError, Llm, LlmError, PriceError, Prices, ScriptError, ScriptedProvider,
    SharedProvider,
};
use crate::env::var as env_var;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which API a provider speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI's Chat Completions API.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Ollama, through its OpenAI-compatible API (`http://localhost:11434/v1`).
    Ollama,
    /// vLLM, through its OpenAI-compatible API (`http://localhost:8000/v1`).
    Vllm,
    /// Offline answers from a script; the bundled demo script by default.
    Scripted,
}

impl ProviderKind {
    const ALL: [(&'static str, ProviderKind); 5] = [
        ("openai", ProviderKind::Openai),
        ("anthropic", ProviderKind::Anthropic),
        ("ollama", ProviderKind::Ollama),
        ("vllm", ProviderKind::Vllm),
        ("scripted", ProviderKind::Scripted),
    ];

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, kind)| *kind == self)
            .map(|(name, _)| *name)
            .expect("every kind is listed")
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, kind)| *kind)
            .ok_or_else(|| {
                format!("unknown provider `{text}` (expected openai, anthropic, ollama, vllm or scripted)")
            })
    }
}

/// How to reach one provider. Unset fields fall back to the provider's
/// variables, then to its defaults.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProviderSettings {
    /// `None` for the default provider: openai when a base URL, `OPENAI_BASE_URL`
    /// or the API key is set, else anthropic when `ANTHROPIC_API_KEY` is, else scripted.
    pub kind: Option<ProviderKind>,
    /// The model used when a request names none.
    pub model: Option<String>,
    pub base_url: Option<String>,
    /// The variable holding the API key (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY` by default).
    pub api_key_env: Option<String>,
    /// The scripted provider's script.
    pub script: Option<PathBuf>,
    /// Per attempt.
    pub timeout: Option<Duration>,
    /// Attempts in all, retries included.
    pub max_attempts: Option<u32>,
    /// For a provider beside the default: the models it serves (`gpt-4o`, `claude-*`).
    pub models: Vec<String>,
}

/// Every provider, the prices and the cassette of a runtime.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LlmSettings {
    pub default: ProviderSettings,
    /// Providers chosen when a request names one of their models; earlier ones win.
    pub routes: Vec<ProviderSettings>,
    /// Price files, each overriding the bundled table and the files before it.
    pub price_files: Vec<PathBuf>,
    /// Prices overriding every file.
    pub prices: Prices,
    /// Write every exchange to this cassette.
    pub record: Option<PathBuf>,
    /// Answer every call from this cassette instead.
    pub replay: Option<PathBuf>,
}

/// Settings that cannot make providers.
#[derive(Debug, thiserror::Error)]
pub enum LlmSetupError {
    #[error("a script applies only to the scripted provider")]
    ScriptWithoutScripted,
    #[error("the {0} provider needs a model")]
    ModelRequired(&'static str),
    #[error("a provider beside the default needs a kind and the models it serves")]
    IncompleteRoute,
    #[error("--record and --replay cannot be used together")]
    RecordAndReplay,
    #[error(transparent)]
    Script(#[from] ScriptError),
    #[error(transparent)]
    Prices(#[from] PriceError),
    #[error(transparent)]
    Cassette(#[from] CassetteError),
    #[error(transparent)]
    Provider(#[from] LlmError),
}

impl ProviderSettings {
    /// Overlays `other`'s set fields on these.
    fn overlay(self, other: ProviderSettings) -> ProviderSettings {
        ProviderSettings {
            kind: other.kind.or(self.kind),
            model: other.model.or(self.model),
            base_url: other.base_url.or(self.base_url),
            api_key_env: other.api_key_env.or(self.api_key_env),
            script: other.script.or(self.script),
            timeout: other.timeout.or(self.timeout),
            max_attempts: other.max_attempts.or(self.max_attempts),
            models: if other.models.is_empty() {
                self.models
            } else {
                other.models
            },
        }
    }

    fn detect_kind(&self) -> ProviderKind {
        let openai_key = self.api_key_env.as_deref().unwrap_or("OPENAI_API_KEY");
        if self.base_url.is_some()
            || env_var("OPENAI_BASE_URL").is_some()
            || env_var(openai_key).is_some()
        {
            ProviderKind::Openai
        } else if env_var("ANTHROPIC_API_KEY").is_some() {
            ProviderKind::Anthropic
        } else {
            ProviderKind::Scripted
        }
    }

    /// These settings applied to a provider's connection and default model.
    fn apply(&self, connection: &mut Connection, model: &mut String) {
        if let Some(url) = &self.base_url {
            connection.base_url = url.clone();
        }
        if let Some(chosen) = &self.model {
            *model = chosen.clone();
        }
        connection.timeout = self.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if let Some(attempts) = self.max_attempts {
            connection.retry.max_attempts = attempts;
        }
    }

    /// The API key from `api_key_env`, else from `default_env`.
    fn api_key(&self, default_env: Option<&str>) -> Option<String> {
        self.api_key_env
            .as_deref()
            .or(default_env)
            .and_then(env_var)
    }

    /// Builds the provider, with a phrase saying which, for the log.
    fn build(&self) -> Result<(SharedProvider, String), LlmSetupError> {
        let kind = self.kind.unwrap_or_else(|| self.detect_kind());
        if self.script.is_some() && kind != ProviderKind::Scripted {
            return Err(LlmSetupError::ScriptWithoutScripted);
        }
        let describe = |connection: &Connection, model: &str| {
            format!(
                "{} at {} (default model {model})",
                kind.name(),
                connection.base_url
            )
        };
        match kind {
            ProviderKind::Openai | ProviderKind::Ollama | ProviderKind::Vllm => {
                let mut config = OpenAiConfig::from_env();
                if kind == ProviderKind::Openai {
                    config.connection.api_key = self.api_key(Some("OPENAI_API_KEY"));
                } else {
                    // Another server of the same API: none of OpenAI's settings apply.
                    config.provider_name = kind.name();
                    config.connection.base_url = match kind {
                        ProviderKind::Ollama => "http://localhost:11434/v1".into(),
                        _ => "http://localhost:8000/v1".into(),
                    };
                    config.connection.api_key = self.api_key(None);
                    if self.model.is_none() {
                        return Err(LlmSetupError::ModelRequired(kind.name()));
                    }
                }
                self.apply(&mut config.connection, &mut config.model);
                let description = describe(&config.connection, &config.model);
                Ok((Arc::new(OpenAiProvider::new(config)?), description))
            }
            ProviderKind::Anthropic => {
                let mut config = AnthropicConfig::from_env();
                config.connection.api_key = self.api_key(Some("ANTHROPIC_API_KEY"));
                self.apply(&mut config.connection, &mut config.model);
                let description = describe(&config.connection, &config.model);
                Ok((Arc::new(AnthropicProvider::new(config)?), description))
            }
            ProviderKind::Scripted => {
                let (provider, origin) = match &self.script {
                    Some(path) => (
                        ScriptedProvider::from_file(path)?,
                        path.display().to_string(),
                    ),
                    None => (ScriptedProvider::demo(), "the bundled demo script".into()),
                };
                Ok((
                    Arc::new(provider),
                    format!("scripted (offline, answers from {origin})"),
                ))
            }
        }
    }
}

impl LlmSettings {
    /// Overlays `other` (command-line flags) on these (a manifest): its set
    /// default-provider fields win, and its routes, price files and prices add.
    pub fn overlay(self, other: LlmSettings) -> LlmSettings {
        let mut prices = self.prices;
        prices.extend(other.prices);
        LlmSettings {
            default: self.default.overlay(other.default),
            routes: self.routes.into_iter().chain(other.routes).collect(),
            price_files: self
                .price_files
                .into_iter()
                .chain(other.price_files)
                .collect(),
            prices,
            record: other.record.or(self.record),
            replay: other.replay.or(self.replay),
        }
    }

    /// Builds the providers, with a line saying which, for the log.
    pub fn build(self) -> Result<(Llm, String), LlmSetupError> {
        if self.record.is_some() && self.replay.is_some() {
            return Err(LlmSetupError::RecordAndReplay);
        }
        let (default, mut description) = self.default.build()?;
        if self.default.kind.is_none() && default.name() == "scripted" {
            description.push_str(
                "; set OPENAI_API_KEY, OPENAI_BASE_URL or ANTHROPIC_API_KEY for a real model",
            );
        }
        let mut llm = Llm::new(default);
        for route in &self.routes {
            if route.kind.is_none() || route.models.is_empty() {
                return Err(LlmSetupError::IncompleteRoute);
            }
            let (provider, about) = route.build()?;
            description.push_str(&format!("; {about} for {}", route.models.join(", ")));
            llm = llm.with_route(route.models.clone(), provider);
        }
        for path in &self.price_files {
            llm.prices.extend(Prices::from_file(path)?);
        }
        llm.prices.extend(self.prices);
        if let Some(path) = &self.record {
            llm = llm.recording(super::CassetteWriter::create(path)?);
            description.push_str(&format!("; recording to {}", path.display()));
        }
        if let Some(path) = &self.replay {
            llm = llm.replaying_from(Cassette::load(path)?);
            description = format!(
                "replaying {} (no network) for {description}",
                path.display()
            );
        }
        Ok((llm, description))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::anthropic;

    #[test]
    fn routes_choose_providers_by_model() {
        let settings = LlmSettings {
            default: ProviderSettings {
                kind: Some(ProviderKind::Scripted),
                ..ProviderSettings::default()
            },
            routes: vec![
                ProviderSettings {
                    kind: Some(ProviderKind::Anthropic),
                    models: vec!["claude-*".into()],
                    ..ProviderSettings::default()
                },
                ProviderSettings {
                    kind: Some(ProviderKind::Ollama),
                    model: Some("llama3.2".into()),
                    models: vec!["llama3.2".into()],
                    ..ProviderSettings::default()
                },
            ],
            ..LlmSettings::default()
        };
        let (llm, description) = settings.build().unwrap();
        assert_eq!(llm.provider_for(None).name(), "scripted");
        assert_eq!(llm.provider_for(Some("gpt-4o")).name(), "scripted");
        assert_eq!(
            llm.provider_for(Some("claude-haiku-4-5")).name(),
            "anthropic"
        );
        assert_eq!(llm.provider_for(Some("llama3.2")).name(), "ollama");
        assert_eq!(llm.provider_for(Some("llama3.2:1b")).name(), "scripted");
        assert!(
            description.contains(&format!(
                "anthropic at {} (default model {}) for claude-*",
                anthropic::DEFAULT_BASE_URL,
                anthropic::DEFAULT_MODEL
            )),
            "{description}"
        );
    }

    #[test]
    fn incomplete_settings_are_refused() {
        let route = |kind, models: &[&str]| LlmSettings {
            routes: vec![ProviderSettings {
                kind,
                models: models.iter().map(|m| m.to_string()).collect(),
                ..ProviderSettings::default()
            }],
            ..LlmSettings::default()
        };
        assert!(matches!(
            route(None, &["x"]).build(),
            Err(LlmSetupError::IncompleteRoute)
        ));
        assert!(matches!(
            route(Some(ProviderKind::Openai), &[]).build(),
            Err(LlmSetupError::IncompleteRoute)
        ));
        let ollama = LlmSettings {
            default: ProviderSettings {
                kind: Some(ProviderKind::Ollama),
                ..ProviderSettings::default()
            },
            ..LlmSettings::default()
        };
        assert!(matches!(
            ollama.build(),
            Err(LlmSetupError::ModelRequired("ollama"))
        ));
        let both = LlmSettings {
            record: Some("a".into()),
            replay: Some("b".into()),
            ..LlmSettings::default()
        };
        assert!(matches!(both.build(), Err(LlmSetupError::RecordAndReplay)));
    }
}
