//! The benchmark harness's [`Solver`], implemented with the method crate.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use egcfg_bench::profile::{PhaseShare, TaskProfile, Waiting};
use egcfg_bench::{Attempt, Cost, ServerUsage, Solution, Solver, VisibleTask};
use egcfg_engine::{Engine, Usage};
use egcfg_method::{
    baseline_options, derive_at_budget, sequences_needed, CodeRunner, DeriveError, MethodError,
    ProgressEvent, PromptStyle, SolveCost, SolveOptions, SolveOutcome,
};
use egcfg_task::Task;
use serde::Deserialize;

use crate::flags::Method;
use crate::sandbox::SandboxRunner;

/// Solves `task` with `method`: the one place the CLI's methods meet the
/// method crate, for `egcfg solve` and `egcfg bench` alike.
pub fn solve_with(
    method: Method,
    task: &Task,
    engine: Arc<dyn Engine>,
    runner: Arc<dyn CodeRunner>,
    options: &SolveOptions,
    progress: &(dyn Fn(ProgressEvent) + Sync),
) -> Result<SolveOutcome, MethodError> {
    match method {
        Method::Baseline => egcfg_method::baseline(
            task,
            engine,
            runner,
            PromptStyle::Instruct,
            options,
            progress,
        ),
        Method::Egcfg => egcfg_method::solve(task, engine, runner, options, progress),
        Method::Sample => egcfg_method::sample(task, engine, runner, options, progress),
        Method::SampleThenEgcfg => {
            egcfg_method::sample_then_egcfg(task, engine, runner, options, progress)
        }
    }
}

/// The engine sequences `method` keeps alive at once with `options`.
pub fn sequences_for(method: Method, options: &SolveOptions) -> usize {
    match method {
        Method::Baseline => sequences_needed(&baseline_options(PromptStyle::Instruct, options)),
        Method::Egcfg => sequences_needed(options),
        Method::Sample => egcfg_method::sample_sequences_needed(options),
        Method::SampleThenEgcfg => egcfg_method::sample_then_egcfg_sequences_needed(options),
    }
}

/// Solves benchmark tasks with one of the CLI's methods.
pub struct MethodSolver {
    /// The shared engine.
    pub engine: Arc<dyn Engine>,
    /// The sandbox for visible-test traces and selection.
    pub runner: Arc<SandboxRunner>,
    /// Which method.
    pub method: Method,
    /// Grid, decoding options and budgets.
    pub options: SolveOptions,
}

impl Solver for MethodSolver {
    type Error = MethodError;

    fn solve(&self, task: &VisibleTask) -> Result<Solution, MethodError> {
        let outcome = solve_with(
            self.method,
            task.task(),
            self.engine.clone(),
            self.runner.clone(),
            &self.options,
            &|_| {},
        )?;
        let records = records(&outcome, self.engine.as_ref());
        Ok(solution(outcome, records))
    }

    fn unrunnable_reason(&self, error: &MethodError) -> Option<String> {
        error
            .concerns_only_the_task()
            .then(|| crate::hints::describe_method_error(error))
    }

    fn is_infrastructure(&self, error: &MethodError) -> bool {
        error.is_infrastructure()
    }
}

/// The JSON of a solve's records, with the text of every token id they
/// name (`token_pieces`, id to text): the top-token lists hold ids only,
/// and a reader of the records (`egcfg explore`) has no tokenizer.
pub fn records(outcome: &SolveOutcome, engine: &dyn Engine) -> serde_json::Value {
    let mut ids = BTreeSet::new();
    for token in outcome.attempts.iter().flat_map(|a| &a.tokens) {
        ids.insert(token.token);
        ids.extend(token.argmax_p);
        for listed in token
            .top_p
            .iter()
            .chain(&token.top_pc)
            .chain(&token.top_guided)
        {
            ids.insert(listed.token);
        }
    }
    let pieces: serde_json::Map<String, serde_json::Value> = ids
        .into_iter()
        .filter_map(|id| {
            let bytes = engine.token_bytes(id).ok()?;
            Some((
                id.to_string(),
                String::from_utf8_lossy(&bytes).into_owned().into(),
            ))
        })
        .collect();
    let mut value = serde_json::to_value(outcome).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(map) = &mut value {
        map.insert("token_pieces".into(), pieces.into());
    }
    value
}

/// The harness's view of a solve: the chosen program, every attempt and the
/// totals, with the full records kept verbatim.
fn solution(outcome: SolveOutcome, records: serde_json::Value) -> Solution {
    let attempts = outcome
        .attempts
        .iter()
        .map(|a| Attempt {
            label: a.name.clone(),
            program: a.code.clone(),
            visible_passed: a.passed_count(),
            visible_total: a.visible.len(),
            gamma: Some(a.spec.gamma),
            wall_s: Some(a.cost.times.total_s),
            usage: server_usage(&a.cost.usage),
        })
        .collect();
    let cost = outcome.attempts.iter().fold(
        Cost {
            prefill_tokens: outcome.cost.head_prefill_tokens,
            no_program_tokens: Some(outcome.cost.no_program_tokens),
            usage: server_usage(&outcome.cost.usage),
            ..Cost::default()
        },
        |total, a| Cost {
            prefill_tokens: total.prefill_tokens + a.cost.prefill_tokens,
            decode_tokens: total.decode_tokens + a.cost.decode_tokens + a.cost.candidate_tokens,
            executions: total.executions + a.cost.executions,
            ..total
        },
    );
    Solution {
        program: outcome.code.clone(),
        attempts,
        cost,
        records,
        profile: Some(task_profile(&outcome.cost)),
    }
}

/// What the engine counted for a served model, in the harness's terms.
fn server_usage(usage: &Usage) -> ServerUsage {
    ServerUsage {
        requests: usage.requests,
        prompt_tokens: usage.prompt_tokens,
        cached_prompt_tokens: usage.cached_prompt_tokens,
        generated_tokens: usage.generated_tokens,
    }
}

/// The method's phase profile of a solve, in the harness's terms.
pub(crate) fn task_profile(cost: &SolveCost) -> TaskProfile {
    let p = &cost.profile;
    TaskProfile {
        phases: p
            .phases()
            .iter()
            .map(|(name, time)| PhaseShare {
                name: (*name).to_string(),
                wall_s: time.wall_s,
                cpu_s: time.cpu_s,
            })
            .collect(),
        waiting: vec![
            Waiting {
                on: "engine".into(),
                seconds: p.engine_waiting_s(),
            },
            Waiting {
                on: "sandbox pool".into(),
                seconds: p.pool_waiting_s(),
            },
        ],
        guided_lines: p.guided_lines,
        refreshes: p.refreshes,
        refreshes_without_signal: p.refreshes_without_signal,
        forward_tokens: p.forward_tokens,
        guided_attempt_tokens: p.guided_attempt_tokens,
        process_cpu_s: cost.process_cpu_s,
    }
}

/// Solves nothing: works each task's `--method sample` solution at a
/// smaller budget out of a larger run's records
/// ([`egcfg_method::derive_at_budget`]), so that a budget curve runs only
/// its largest budget.
pub struct DerivedSolver<'r> {
    /// The model the larger run ran on: it turns cut answers' tokens back
    /// into text.
    pub engine: Arc<dyn Engine>,
    /// The larger run's options.
    pub from: SolveOptions,
    /// The budget to derive.
    pub budget: u64,
    /// What the larger run recorded, by task: its records, or why the task
    /// could not run.
    pub recorded: &'r HashMap<String, Result<serde_json::Value, String>>,
}

/// Why a task's solution at a smaller budget was not derived.
#[derive(Debug, thiserror::Error)]
pub enum DeriveFailure {
    /// The larger run could not run the task either.
    #[error("{0}")]
    Unrunnable(String),
    /// The larger run has not finished the task.
    #[error("the larger run has not finished this task")]
    NotRecorded,
    /// Its records do not read as a solve.
    #[error("the larger run's records of this task do not read as a solve: {0}")]
    Records(#[from] serde_json::Error),
    /// The derivation refused.
    #[error("not derivable from the larger run's records ({0}); run this budget on its own")]
    Derive(#[from] DeriveError),
}

impl Solver for DerivedSolver<'_> {
    type Error = DeriveFailure;

    fn solve(&self, task: &VisibleTask) -> Result<Solution, DeriveFailure> {
        let large = match self.recorded.get(&task.id) {
            Some(Ok(records)) => SolveOutcome::deserialize(records)?,
            Some(Err(reason)) => return Err(DeriveFailure::Unrunnable(reason.clone())),
            None => return Err(DeriveFailure::NotRecorded),
        };
        let derived = derive_at_budget(
            &large,
            task.task(),
            self.engine.as_ref(),
            &self.from,
            self.budget,
        )?;
        let records = records(&derived.outcome, self.engine.as_ref());
        let mut solution = solution(derived.outcome, records);
        // Only the answers' own walls and the phase profile cannot be
        // derived; the rest is exact.
        for cut in derived.cut {
            solution.attempts[cut].wall_s = None;
        }
        solution.profile = None;
        Ok(solution)
    }

    fn unrunnable_reason(&self, error: &DeriveFailure) -> Option<String> {
        // Each concerns this task alone: recorded with it, the curve goes
        // on without it.
        Some(error.to_string())
    }

    fn wall_ms(&self, solution: &Solution, measured_ms: f64) -> f64 {
        // The derived outcome's wall is the larger run's at the check
        // where the smaller run ends.
        solution
            .records
            .pointer("/cost/wall_s")
            .and_then(serde_json::Value::as_f64)
            .map_or(measured_ms, |s| s * 1000.0)
    }
}
