//! Per-run budgets: the host sees every model and tool call of a run, so it
//! counts them, with the tokens and cost they report, and refuses the call
//! that would go past the run's [`Budget`].

use crate::bindings::GuestError;
use crate::telemetry::semconv;
use opentelemetry::KeyValue;
use std::sync::Mutex;

/// What one agent run may spend, counting the calls its tools make too.
/// `None` is unlimited, the default.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Budget {
    pub llm_calls: Option<u32>,
    pub tool_calls: Option<u32>,
    /// Input plus output tokens, as the provider reports them.
    pub tokens: Option<u64>,
    /// US dollars, counted for models with a known price.
    pub cost_usd: Option<f64>,
}

/// What a run has spent so far.
#[derive(Default)]
struct Spent {
    llm_calls: u32,
    tool_calls: u32,
    tokens: u64,
    cost_usd: f64,
}

/// One run's budget and spending, shared by the run's agent and tool instances.
pub(crate) struct RunBudget {
    limits: Budget,
    spent: Mutex<Spent>,
}

impl RunBudget {
    pub fn new(limits: Budget) -> Self {
        RunBudget {
            limits,
            spent: Mutex::new(Spent::default()),
        }
    }

    fn spent(&self) -> std::sync::MutexGuard<'_, Spent> {
        // Spending is plain counters: a panic elsewhere cannot leave them inconsistent.
        self.spent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a model call, or refuses it when the run has no budget left for it.
    pub fn start_llm_call(&self) -> Result<(), GuestError> {
        let mut spent = self.spent();
        if let Some(max) = self.limits.llm_calls
            && spent.llm_calls >= max
        {
            return Err(exceeded(format!("{max} model calls, all made")));
        }
        if let Some(max) = self.limits.tokens
            && spent.tokens >= max
        {
            return Err(exceeded(format!("{max} tokens, {} used", spent.tokens)));
        }
        if let Some(max) = self.limits.cost_usd
            && spent.cost_usd >= max
        {
            return Err(exceeded(format!("${max:.4}, ${:.4} spent", spent.cost_usd)));
        }
        spent.llm_calls += 1;
        Ok(())
    }

    /// Adds what a model call reported using.
    pub fn record_usage(&self, tokens: u64, cost_usd: Option<f64>) {
        let mut spent = self.spent();
        spent.tokens = spent.tokens.saturating_add(tokens);
        spent.cost_usd += cost_usd.unwrap_or(0.0);
    }

    /// Counts a tool call, or refuses it when the run has no budget left for it.
    pub fn start_tool_call(&self) -> Result<(), GuestError> {
        let mut spent = self.spent();
        if let Some(max) = self.limits.tool_calls
            && spent.tool_calls >= max
        {
            return Err(exceeded(format!("{max} tool calls, all made")));
        }
        spent.tool_calls += 1;
        Ok(())
    }

    /// What was spent, and what is left of each limit set, for the agent span.
    pub fn span_attributes(&self) -> Vec<KeyValue> {
        use semconv::budget;
        let spent = self.spent();
        let mut attributes = vec![
            KeyValue::new(budget::USED_LLM_CALLS, i64::from(spent.llm_calls)),
            KeyValue::new(budget::USED_TOOL_CALLS, i64::from(spent.tool_calls)),
            KeyValue::new(budget::USED_TOKENS, saturating_i64(spent.tokens)),
        ];
        if let Some(max) = self.limits.llm_calls {
            attributes.push(KeyValue::new(
                budget::REMAINING_LLM_CALLS,
                i64::from(max.saturating_sub(spent.llm_calls)),
            ));
        }
        if let Some(max) = self.limits.tool_calls {
            attributes.push(KeyValue::new(
                budget::REMAINING_TOOL_CALLS,
                i64::from(max.saturating_sub(spent.tool_calls)),
            ));
        }
        if let Some(max) = self.limits.tokens {
            attributes.push(KeyValue::new(
                budget::REMAINING_TOKENS,
                saturating_i64(max.saturating_sub(spent.tokens)),
            ));
        }
        if let Some(max) = self.limits.cost_usd {
            attributes.push(KeyValue::new(budget::USED_COST, spent.cost_usd));
            attributes.push(KeyValue::new(
                budget::REMAINING_COST,
                (max - spent.cost_usd).max(0.0),
            ));
        }
        attributes
    }
}

fn exceeded(what: String) -> GuestError {
    GuestError::BudgetExceeded(format!("the run's budget allows {what}"))
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_call_past_a_limit_is_refused() {
        let budget = RunBudget::new(Budget {
            llm_calls: Some(2),
            tool_calls: Some(1),
            tokens: Some(100),
            ..Budget::default()
        });
        budget.start_llm_call().unwrap();
        budget.record_usage(40, None);
        budget.start_llm_call().unwrap();
        let Err(GuestError::BudgetExceeded(message)) = budget.start_llm_call() else {
            panic!("a third model call should be refused")
        };
        assert_eq!(message, "the run's budget allows 2 model calls, all made");
        budget.start_tool_call().unwrap();
        assert!(budget.start_tool_call().is_err());

        let tokens = RunBudget::new(Budget {
            tokens: Some(100),
            ..Budget::default()
        });
        tokens.start_llm_call().unwrap();
        tokens.record_usage(120, None);
        let Err(GuestError::BudgetExceeded(message)) = tokens.start_llm_call() else {
            panic!("no tokens are left")
        };
        assert_eq!(message, "the run's budget allows 100 tokens, 120 used");
    }

    #[test]
    fn unlimited_budgets_never_refuse() {
        let budget = RunBudget::new(Budget::default());
        for _ in 0..1000 {
            budget.start_llm_call().unwrap();
            budget.record_usage(1_000_000, Some(10.0));
            budget.start_tool_call().unwrap();
        }
    }
}
