//! Model prices, for `gen_ai.usage.cost`, the cost metric and cost budgets: a
//! bundled table (`prices.toml`) that files and the manifest extend or
//! override. A model without a known price has no cost: never a made-up one.

use super::Usage;
use crate::files::{MAX_SETTINGS_FILE, read_text_bounded};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The prices shipped with Glassbox.
const BUNDLED: &str = include_str!("prices.toml");

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
    /// Input served from the provider's prompt cache; as `input` when unset.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Input written to the provider's prompt cache; as `input` when unset.
    #[serde(default)]
    pub cache_write: Option<f64>,
}

/// A price file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("price file {path}: {reason}")]
pub struct PriceError {
    path: PathBuf,
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    models: HashMap<String, Price>,
}

/// Prices by model name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prices(HashMap<String, Price>);

impl Prices {
    pub fn new(prices: HashMap<String, Price>) -> Self {
        Prices(prices)
    }

    /// The bundled table.
    pub fn bundled() -> Self {
        let file: PriceFile = toml::from_str(BUNDLED).expect("the bundled price table is valid");
        Prices(file.models)
    }

    /// Reads a price file in the bundled table's format.
    pub fn from_file(path: &Path) -> Result<Self, PriceError> {
        let error = |reason: String| PriceError {
            path: path.into(),
            reason,
        };
        let text = read_text_bounded(path, MAX_SETTINGS_FILE).map_err(|e| error(e.to_string()))?;
        let file: PriceFile = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        Ok(Prices(file.models))
    }

    /// Adds `other`'s prices, replacing those of the same models.
    pub fn extend(&mut self, other: Prices) {
        self.0.extend(other.0);
    }

    /// The price of `model`, or of its undated name (`gpt-4o-2024-08-06` → `gpt-4o`).
    pub fn get(&self, model: &str) -> Option<&Price> {
        self.0.get(model).or_else(|| self.0.get(undated(model)?))
    }

    /// What `usage` of `model` cost, when its price is known. Input tokens
    /// include cached ones, which are priced at the cache rates.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        let price = self.get(model)?;
        let read = usage.cache_read_input_tokens.unwrap_or(0);
        let written = usage.cache_creation_input_tokens.unwrap_or(0);
        let uncached = usage.input_tokens.saturating_sub(read + written);
        let dollars = f64::from(uncached) * price.input
            + f64::from(read) * price.cache_read.unwrap_or(price.input)
            + f64::from(written) * price.cache_write.unwrap_or(price.input)
            + f64::from(usage.output_tokens) * price.output;
        Some(dollars / 1_000_000.0)
    }
}

/// `model` without a trailing date: `-2024-08-06` or `-20250929`.
fn undated(model: &str) -> Option<&str> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((rest, day)) = model.rsplit_once('-')
        && let Some((rest, month)) = rest.rsplit_once('-')
        && let Some((name, year)) = rest.rsplit_once('-')
        && [(year, 4), (month, 2), (day, 2)]
            .iter()
            .all(|(part, len)| digits(part) && part.len() == *len)
    {
        return Some(name);
    }
    let (name, date) = model.rsplit_once('-')?;
    (date.len() == 8 && digits(date)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(input: u32, output: u32) -> Usage {
        Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        }
    }

    #[test]
    fn cost_is_known_only_for_priced_models() {
        let prices = Prices::bundled();
        let cost = prices.cost("gpt-4o-mini", &usage(1000, 500)).unwrap();
        assert!((cost - 0.00045).abs() < 1e-12, "{cost}");
        assert_eq!(prices.cost("my-finetune", &usage(1000, 500)), None);
    }

    #[test]
    fn dated_names_take_the_undated_price() {
        let prices = Prices::bundled();
        assert_eq!(
            prices.get("gpt-4o-mini-2024-07-18"),
            prices.get("gpt-4o-mini")
        );
        assert_eq!(
            prices.get("claude-sonnet-4-5-20250929"),
            prices.get("claude-sonnet-4-5")
        );
        assert_eq!(prices.get("gpt-4o-mini-preview"), None);
    }

    #[test]
    fn cached_input_costs_the_cache_rates() {
        let prices = Prices::bundled();
        let cached = Usage {
            cache_read_input_tokens: Some(800),
            cache_creation_input_tokens: Some(100),
            ..usage(1000, 0)
        };
        // 100 uncached at 3.0, 800 read at 0.30, 100 written at 3.75.
        let cost = prices.cost("claude-sonnet-4-5", &cached).unwrap();
        assert!(
            (cost - (300.0 + 240.0 + 375.0) / 1e6).abs() < 1e-12,
            "{cost}"
        );
    }

    #[test]
    fn a_file_overrides_the_bundled_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prices.toml");
        std::fs::write(
            &path,
            "[models.\"gpt-4o-mini\"]\ninput = 1.0\noutput = 2.0\n",
        )
        .unwrap();
        let mut prices = Prices::bundled();
        prices.extend(Prices::from_file(&path).unwrap());
        assert_eq!(prices.get("gpt-4o-mini").unwrap().input, 1.0);
        std::fs::write(&path, "[models.x]\ninput = 1.0\n").unwrap();
        let error = Prices::from_file(&path).unwrap_err().to_string();
        assert!(error.contains("output"), "{error}");
    }
}
