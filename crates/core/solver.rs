//! The benchmark harness's [`Solver`], implemented with the method crate.

use std::sync::Arc;

use egcfg_bench::{Attempt, Cost, Solution, Solver, VisibleTask};
use egcfg_executor::Executor;
use egcfg_method::{MethodError, PromptStyle, SolveOptions, SolveOutcome};

use crate::flags::Method;

/// Solves benchmark tasks with EG-CFG or the greedy baseline.
pub struct MethodSolver {
    /// The shared engine.
    pub engine: Arc<egcfg_engine::LlamaEngine>,
    /// The sandbox for visible-test traces and selection.
    pub executor: Arc<Executor>,
    /// Which method.
    pub method: Method,
    /// Grid, decoding options and budgets.
    pub options: SolveOptions,
}

impl Solver for MethodSolver {
    type Error = MethodError;

    fn solve(&mut self, task: &VisibleTask) -> Result<Solution, MethodError> {
        let ignore = |_| {};
        let outcome = match self.method {
            Method::Baseline => egcfg_method::baseline(
                task.task(),
                self.engine.clone(),
                self.executor.clone(),
                PromptStyle::Instruct,
                &self.options,
                &ignore,
            )?,
            Method::Egcfg => egcfg_method::solve(
                task.task(),
                self.engine.clone(),
                self.executor.clone(),
                &self.options,
                &ignore,
            )?,
        };
        Ok(solution(outcome))
    }

    fn unrunnable_reason(&self, error: &MethodError) -> Option<String> {
        error.concerns_only_the_task().then(|| error.to_string())
    }
}

/// The harness's view of a solve: the chosen program, every attempt and the
/// totals, with the full records kept verbatim.
fn solution(outcome: SolveOutcome) -> Solution {
    let attempts = outcome
        .attempts
        .iter()
        .map(|a| Attempt {
            label: a.name.clone(),
            program: a.code.clone(),
            visible_passed: a.passed_count(),
            visible_total: a.visible.len(),
        })
        .collect();
    let cost = outcome.attempts.iter().fold(
        Cost {
            prefill_tokens: outcome.cost.head_prefill_tokens,
            ..Cost::default()
        },
        |total, a| Cost {
            prefill_tokens: total.prefill_tokens + a.cost.prefill_tokens,
            decode_tokens: total.decode_tokens + a.cost.decode_tokens + a.cost.candidate_tokens,
            executions: total.executions + a.cost.executions,
        },
    );
    Solution {
        program: outcome.code.clone(),
        attempts,
        cost,
        records: serde_json::to_value(&outcome).unwrap_or(serde_json::Value::Null),
    }
}
