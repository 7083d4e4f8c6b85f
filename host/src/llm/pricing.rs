//! Model prices, for `gen_ai.usage.cost` and cost budgets. A model without a
//! known price has no cost: never a made-up one.

use super::Usage;
use std::collections::HashMap;

/// US dollars per million tokens.
#[derive(Clone, Copy, Debug, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// Prices by model name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Prices(HashMap<String, Price>);

impl Prices {
    pub fn new(prices: HashMap<String, Price>) -> Self {
        Prices(prices)
    }

    /// Adds `other`'s prices, replacing those of the same models.
    pub fn extend(&mut self, other: Prices) {
        self.0.extend(other.0);
    }

    /// What `usage` of `model` cost, when its price is known.
    pub fn cost(&self, model: &str, usage: &Usage) -> Option<f64> {
        let price = self.0.get(model)?;
        Some(
            (f64::from(usage.input_tokens) * price.input
                + f64::from(usage.output_tokens) * price.output)
                / 1_000_000.0,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_known_only_for_priced_models() {
        let prices = Prices::new(HashMap::from([(
            "gpt-4o-mini".to_owned(),
            Price {
                input: 0.15,
                output: 0.6,
            },
        )]));
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 500,
            ..Usage::default()
        };
        let cost = prices.cost("gpt-4o-mini", &usage).unwrap();
        assert!((cost - 0.00045).abs() < 1e-12, "{cost}");
        assert_eq!(prices.cost("unknown", &usage), None);
    }
}
