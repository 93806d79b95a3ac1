//! The sandbox beside the model (docs/method.md §13.3, issue 15 item 2):
//! each candidate is prepared and traced as soon as its own sequence stops,
//! on a thread of its own, while the other candidates of the batch still
//! decode.
//!
//! What the model sees does not change, and neither does any record: the
//! refresh still deduplicates the round in sample order and traces exactly
//! its unique programs, but finds the traces already made. A trace depends
//! only on the program and the test, so a program traced early has the
//! very outcome it would have had later, whatever the timing. Work done
//! early for a candidate the round then drops (a duplicate executable form,
//! or one beyond `s`) is only lost sandbox time; an error in early work is
//! ignored here, because the refresh repeats that work in order and
//! reports it there.
//!
//! Agents overlap too: each runs on its own thread (`pool`), the engine
//! decodes on its own thread for all of them, and the executor serves
//! concurrent callers from its pool, so one agent's tracing runs while
//! another decodes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::thread::{Scope, ScopedJoinHandle};

use egcfg_executor::TraceRequest;

use crate::attempt_env::AttemptEnv;
use crate::candidates::{candidate_program, SampledCandidate};
use crate::config::Horizon;
use crate::runner::TraceOutcome;

/// The traces made early in one sampling round, keyed by executable program.
pub(crate) type EarlyTraces = HashMap<String, Vec<TraceOutcome>>;

/// One program's early traces, on every test.
type EarlyTrace = (String, Vec<TraceOutcome>);

/// Starts the preparation and tracing of each candidate of one round as it
/// stops.
pub(crate) struct EarlyTracer<'scope, 'env> {
    scope: &'scope Scope<'scope, 'env>,
    env: &'env AttemptEnv<'env>,
    prefix: &'env str,
    horizon: Horizon,
    /// Programs already traced in this attempt, or claimed by a thread of
    /// this round: each is traced once.
    claimed: &'env Mutex<HashSet<String>>,
    /// Candidate programs (raw) already started.
    started: HashSet<String>,
    running: Vec<ScopedJoinHandle<'scope, Option<EarlyTrace>>>,
}

impl<'scope, 'env> EarlyTracer<'scope, 'env> {
    /// A tracer for candidates continuing `prefix` with horizon `horizon`;
    /// `claimed` starts with the programs the attempt traced before.
    pub(crate) fn new(
        scope: &'scope Scope<'scope, 'env>,
        env: &'env AttemptEnv<'env>,
        prefix: &'env str,
        horizon: Horizon,
        claimed: &'env Mutex<HashSet<String>>,
    ) -> Self {
        EarlyTracer {
            scope,
            env,
            prefix,
            horizon,
            claimed,
            started: HashSet::new(),
            running: Vec::new(),
        }
    }

    /// `candidate` stopped: prepare and trace it beside the model, unless
    /// it cannot be a program or the same program was started before.
    pub(crate) fn stopped(&mut self, candidate: &SampledCandidate) {
        if self.env.tests.is_empty() {
            return;
        }
        let Some(program) = candidate_program(self.prefix, &candidate.text, self.horizon) else {
            return;
        };
        if !self.started.insert(program.clone()) {
            return;
        }
        let env = self.env;
        let claimed = self.claimed;
        self.running
            .push(self.scope.spawn(move || trace_early(env, claimed, program)));
    }

    /// Waits for every early trace and returns those that succeeded.
    pub(crate) fn finish(self) -> EarlyTraces {
        self.running
            .into_iter()
            .filter_map(|handle| handle.join().ok().flatten())
            .collect()
    }
}

/// Prepares `program` and traces its executable form on every test, unless
/// another thread claimed that form first; `None` when there is nothing to
/// keep.
fn trace_early(
    env: &AttemptEnv<'_>,
    claimed: &Mutex<HashSet<String>>,
    program: String,
) -> Option<EarlyTrace> {
    let executable = env.runner.prepare(&[program]).ok()?.pop().flatten()?;
    if !claimed
        .lock()
        .expect("no early tracer panics holding the lock")
        .insert(executable.clone())
    {
        return None;
    }
    let jobs: Vec<TraceRequest> = env
        .tests
        .iter()
        .map(|test| TraceRequest {
            program: env.runnable(&executable),
            setup: env.task.setup.clone(),
            invocation: test.invocation.clone(),
        })
        .collect();
    let options = env.options;
    let outcomes = env
        .runner
        .trace(&jobs, options.trace_format, &options.render_limits)
        .ok()?;
    (outcomes.len() == jobs.len()).then_some((executable, outcomes))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::options::SolveOptions;
    use crate::outcome::SolveOutcome;
    use crate::solve::solve;
    use crate::testing::*;

    /// Solves the add-one task with candidates that differ (a weak script
    /// lets the samples wander), tracing through `runner`.
    fn solve_with(runner: Arc<FakeRunner>) -> SolveOutcome {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_strength(4.0));
        let mut agent = config(1, 2);
        agent.candidates = 3;
        agent.temperature = 1.5;
        let options: SolveOptions = single_options(agent, vec![3.0]);
        solve(&add_one_task(), engine, runner, &options, &|_| {}).unwrap()
    }

    #[test]
    fn records_are_the_same_whatever_the_sandbox_s_timing() {
        let reference = solve_with(FakeRunner::delaying(|_| Duration::ZERO));
        let a = &reference.attempts[0];
        assert!(
            a.refreshes.iter().any(|r| r.unique.len() >= 2),
            "candidates differ, so their early traces race: {:?}",
            a.refreshes.iter().map(|r| &r.unique).collect::<Vec<_>>()
        );
        let delays: [fn(&str) -> Duration; 2] = [
            |p| Duration::from_millis(40u64.saturating_sub(p.len() as u64 / 4)),
            |p| Duration::from_millis((p.len() as u64 * 7) % 23),
        ];
        for delay in delays {
            let out = solve_with(FakeRunner::delaying(delay));
            let b = &out.attempts[0];
            assert_eq!(out.code, reference.code);
            assert_eq!(b.refreshes, a.refreshes);
            assert_eq!(b.tokens, a.tokens);
            assert_eq!(b.cost.executions, a.cost.executions);
        }
    }
}
