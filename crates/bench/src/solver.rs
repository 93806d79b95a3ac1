//! What the harness asks of a code-generation method.
//!
//! The CLI implements [`Solver`] for its methods (EG-CFG and the greedy
//! baseline), and [`crate::samples`] for programs read from a samples file
//! (`egcfg evaluate`); the harness never depends on a method. A
//! solver sees only a [`VisibleTask`], a task whose hidden tests were removed
//! when it was built, so the evaluation protocol (select on visible tests
//! only) holds by construction rather than by discipline.

use std::ops::Deref;

use egcfg_task::Task;
use serde::{Deserialize, Serialize};

use crate::profile::TaskProfile;

/// A task with its hidden tests removed: all a solver may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VisibleTask(Task);

impl VisibleTask {
    /// Wraps `task`, discarding its hidden tests.
    pub fn new(mut task: Task) -> VisibleTask {
        task.hidden.clear();
        VisibleTask(task)
    }

    /// The task (its `hidden` field is empty).
    pub fn task(&self) -> &Task {
        &self.0
    }
}

impl Deref for VisibleTask {
    type Target = Task;

    fn deref(&self) -> &Task {
        &self.0
    }
}

/// What a model server was asked for, on a task or an attempt: the cost of
/// a served model, which a local one does not have (all zero there).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerUsage {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// Prompt tokens the requests carried.
    pub prompt_tokens: u64,
    /// Of those, the tokens the server took from its prefix cache.
    pub cached_prompt_tokens: u64,
    /// Tokens the server generated.
    pub generated_tokens: u64,
}

impl ServerUsage {
    /// Whether nothing was asked of a server (a local model).
    pub fn is_zero(&self) -> bool {
        *self == ServerUsage::default()
    }

    /// The field-by-field sum of `self` and `other`.
    pub fn plus(&self, other: &ServerUsage) -> ServerUsage {
        ServerUsage {
            requests: self.requests + other.requests,
            prompt_tokens: self.prompt_tokens + other.prompt_tokens,
            cached_prompt_tokens: self.cached_prompt_tokens + other.cached_prompt_tokens,
            generated_tokens: self.generated_tokens + other.generated_tokens,
        }
    }

    /// Requests per generated token: how close the method comes to one
    /// request per line rather than per token (`None` when nothing was
    /// generated).
    pub fn requests_per_generated_token(&self) -> Option<f64> {
        (self.generated_tokens > 0).then(|| self.requests as f64 / self.generated_tokens as f64)
    }

    /// The share of the prompt tokens the server's prefix cache served
    /// (`None` without prompt tokens).
    pub fn cached_share(&self) -> Option<f64> {
        (self.prompt_tokens > 0)
            .then(|| self.cached_prompt_tokens as f64 / self.prompt_tokens as f64)
    }
}

/// One program a solver produced, in the order it produced them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// Which configuration produced it, e.g. `ns3t0.7d2k1_ln γ=1` or
    /// `greedy`; shown in reports.
    pub label: String,
    /// The complete program.
    pub program: String,
    /// Visible tests it passed.
    pub visible_passed: usize,
    /// Visible tests it ran.
    pub visible_total: usize,
    /// The guidance strength γ it ran with, for a method that has one
    /// (none in results recorded before it was kept): the report breaks a
    /// served model's costs down by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gamma: Option<f32>,
    /// Its wall time in seconds, where the solver measured it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// What a model server spent on it: zero for a local model, in results
    /// recorded before it was kept, and where the solver cannot tell its
    /// attempts' requests apart (the task's total is in [`Cost::usage`]).
    #[serde(default, skip_serializing_if = "ServerUsage::is_zero")]
    pub usage: ServerUsage,
}

/// What a solver spent on one task. Wall time is measured by the harness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    /// Tokens evaluated in prefill (prompt and signal blocks).
    pub prefill_tokens: u64,
    /// Tokens decoded one step at a time.
    pub decode_tokens: u64,
    /// Sandboxed executions run (traces and checks).
    pub executions: u64,
    /// Of the prefill and decode tokens, those spent on attempts that
    /// produced no program (cut by a budget or by another attempt's pass,
    /// or failed); `None` where the solver does not say (samples read from
    /// a file, results recorded before it was kept).
    #[serde(default)]
    pub no_program_tokens: Option<u64>,
    /// What a model server spent on the whole task (zero for a local model
    /// and in results recorded before it was kept).
    #[serde(default)]
    pub usage: ServerUsage,
}

/// A solver's answer for one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Solution {
    /// The one program chosen using visible tests only. Strict pass@1
    /// scores this program and nothing else. Empty when the solver produced
    /// no program at all (it then fails every hidden test).
    pub program: String,
    /// Every attempt run, in schedule order; N = `attempts.len()`. Used for
    /// the reference-style any-of-N score and pass@k. May be empty for a
    /// solver that only ever makes one program.
    pub attempts: Vec<Attempt>,
    /// Tokens and executions spent.
    pub cost: Cost,
    /// The solver's own records (per-line decisions, traces, timings), kept
    /// verbatim in the database and linked from reports.
    pub records: serde_json::Value,
    /// Where the solver's time went, if it measured that.
    #[serde(default)]
    pub profile: Option<TaskProfile>,
}

impl Solution {
    /// The attempt programs scored for any-of-N: the attempts, or the
    /// selected program alone when the solver listed none.
    pub fn attempt_programs(&self) -> Vec<&str> {
        if self.attempts.is_empty() {
            vec![self.program.as_str()]
        } else {
            self.attempts.iter().map(|a| a.program.as_str()).collect()
        }
    }
}

/// A code-generation method under evaluation.
///
/// Implement `solve`: generate programs for the task, pick one using the
/// visible tests only, and report what was tried and what it cost. Return an
/// error when no program could be made: an error about this task alone (see
/// [`Solver::unrunnable_reason`]) is recorded with the task and the run goes
/// on; any other error (the model failed to load, the executor died) stops
/// the run, leaving the task unrecorded so that a resume retries it.
///
/// Several tasks may be solved at once, from threads of their own
/// ([`crate::RunOptions::tasks_in_flight`]): hence `&self` and `Sync`.
pub trait Solver: Sync {
    /// The error type of a failed solve.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Solves one task.
    fn solve(&self, task: &VisibleTask) -> Result<Solution, Self::Error>;

    /// Why the task cannot run at all, when `error` concerns that task alone
    /// (its prompt does not fit the model's context): the harness records the
    /// task as unrunnable with this reason and goes on with the next one.
    /// `None`, the default, means the error stops the run.
    fn unrunnable_reason(&self, error: &Self::Error) -> Option<String> {
        let _ = error;
        None
    }

    /// The wall time in milliseconds to record for a task whose `solve`
    /// returned `solution` after `measured_ms`: the measurement, unless the
    /// solution stands for work done elsewhere (a solution derived from a
    /// larger run's records is recorded with the wall of the work it was
    /// derived from, not the moment its derivation took).
    fn wall_ms(&self, solution: &Solution, measured_ms: f64) -> f64 {
        let _ = solution;
        measured_ms
    }

    /// Whether `error` is the infrastructure's (a model server that died
    /// or stalled), not the task's: the harness then stops the run without
    /// recording the task, so resuming it solves the task again. `false`,
    /// the default, leaves the error to [`Solver::unrunnable_reason`].
    fn is_infrastructure(&self, error: &Self::Error) -> bool {
        let _ = error;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egcfg_task::TestCase;

    #[test]
    fn visible_task_drops_hidden_tests() {
        let task = Task {
            id: "t".into(),
            prompt: "p".into(),
            entry_point: "f".into(),
            visible: vec![TestCase::Assert {
                code: "assert f() == 1".into(),
            }],
            hidden: vec![TestCase::Assert {
                code: "assert f() != 2".into(),
            }],
            setup: None,
        };
        let visible = VisibleTask::new(task);
        assert!(visible.hidden.is_empty());
        assert_eq!(visible.visible.len(), 1);
    }
}
