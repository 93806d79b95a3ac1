//! The worker pool of a solve (docs/method.md §10): up to `concurrency`
//! attempts run at once, each on its own thread, taking the next attempt of
//! the schedule when one finishes.
//!
//! All workers share one engine, which batches their decodes into one
//! forward pass, so running attempts side by side costs far less than
//! running them in turn. A passing attempt cancels the attempts the
//! selection rule makes pointless; an attempt already cancelled is skipped
//! without starting.
//!
//! # What a served model's requests cost
//! A worker runs one attempt at a time, start to end, on its own thread,
//! and the engine counts requests per calling thread
//! ([`Engine::thread_usage`]): the difference between two readings taken
//! on the worker around an attempt is therefore exactly what that attempt
//! spent, nothing of the attempts running beside it. What a worker spends
//! outside its attempts (prefilling a shared head) is in the task's total
//! only, like the head's forward tokens.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use egcfg_engine::{Engine, Usage};
use egcfg_task::Task;

use crate::admission::Admission;
use crate::attempt::run_attempt;
use crate::attempt_env::AttemptEnv;
use crate::budget::Control;
use crate::config::{AttemptSpec, PromptStyle};
use crate::cost::usage_sum;
use crate::error::MethodError;
use crate::head::Head;
use crate::options::{Selection, SolveOptions};
use crate::progress::ProgressEvent;
use crate::record::AttemptRecord;
use crate::runner::CodeRunner;
use crate::visible_tests::TracedTest;

/// What the workers of one solve share.
pub(crate) struct Workload<'s, 'e> {
    /// The model.
    pub(crate) engine: &'e dyn Engine,
    /// The sandbox.
    pub(crate) runner: &'s dyn CodeRunner,
    /// The task.
    pub(crate) task: &'s Task,
    /// The attempts, in schedule order.
    pub(crate) schedule: &'s [AttemptSpec],
    /// The prompt of every style the schedule uses.
    pub(crate) heads: &'s BTreeMap<PromptStyle, Head<'e>>,
    /// The traceable visible tests.
    pub(crate) tests: &'s [TracedTest],
    /// The solve's options.
    pub(crate) options: &'s SolveOptions,
    /// Budgets and cancellation.
    pub(crate) control: &'s Control,
    /// Which attempts may start.
    pub(crate) admission: &'s Admission,
    /// Where progress events go.
    pub(crate) progress: &'s (dyn Fn(ProgressEvent) + Sync),
    /// The entry call appended to script tasks' programs.
    pub(crate) script_call: Option<String>,
}

/// What the workers brought back.
#[derive(Default)]
pub(crate) struct Finished {
    /// Every attempt that ran, in finishing order, with the error that
    /// ended it, if any.
    pub(crate) attempts: Vec<(AttemptRecord, Option<MethodError>)>,
    /// Errors that kept an attempt from starting (its head's prefill).
    pub(crate) failures: Vec<MethodError>,
    /// What the engine spent on requests from the worker threads, all
    /// their work together (zero where the attempts ran on the solve's
    /// calling thread, which [`crate::outcome::SolveClock`] reads itself).
    pub(crate) usage: Usage,
}

impl Finished {
    /// Whether an attempt passed every visible test.
    pub(crate) fn solved(&self) -> bool {
        self.attempts.iter().any(|(a, _)| a.passed_all())
    }

    /// Whether the infrastructure (a model server, the sandbox) cut an
    /// attempt off ([`MethodError::is_infrastructure`]).
    pub(crate) fn infrastructure_failed(&self) -> bool {
        let errors = self.attempts.iter().filter_map(|(_, e)| e.as_ref());
        errors
            .chain(&self.failures)
            .any(MethodError::is_infrastructure)
    }

    /// What this stage and a `later` one brought back together, the later
    /// stage's attempts placed after this one's in the schedule (this
    /// stage's ran from index 0 in order, so they take the first indices).
    pub(crate) fn then(mut self, later: Finished) -> Finished {
        let first = self.attempts.len();
        self.attempts
            .extend(later.attempts.into_iter().map(|(mut record, error)| {
                record.spec.index += first;
                (record, error)
            }));
        self.failures.extend(later.failures);
        self.usage = usage_sum([&self.usage, &later.usage]);
        self
    }
}

/// Runs the schedule of `work` on at most `options.concurrency` threads.
pub(crate) fn run_all(work: &Workload<'_, '_>) -> Finished {
    let attempts = Mutex::new(Vec::new());
    let failures = Mutex::new(Vec::new());
    let usage = Mutex::new(Usage::default());
    let next = AtomicUsize::new(0);
    let workers = work
        .options
        .concurrency
        .clamp(1, work.schedule.len().max(1));
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                let before = work.engine.thread_usage();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(spec) = work.schedule.get(i).copied() else {
                        break;
                    };
                    match run_one(work, spec) {
                        Some(Ok(finished)) => attempts
                            .lock()
                            .expect("no worker panics holding the lock")
                            .push(finished),
                        Some(Err(e)) => failures
                            .lock()
                            .expect("no worker panics holding the lock")
                            .push(e),
                        None => {}
                    }
                }
                let spent = work.engine.thread_usage().since(&before);
                let mut usage = usage.lock().expect("no worker panics holding the lock");
                *usage = usage_sum([&*usage, &spent]);
            });
        }
    });
    Finished {
        attempts: attempts.into_inner().expect("workers are done"),
        failures: failures.into_inner().expect("workers are done"),
        usage: usage.into_inner().expect("workers are done"),
    }
}

/// Runs attempt `spec`, unless it was cancelled before it started (`None`)
/// or its prompt could not be prefilled.
fn run_one(
    work: &Workload<'_, '_>,
    spec: AttemptSpec,
) -> Option<Result<(AttemptRecord, Option<MethodError>), MethodError>> {
    let control = work.control;
    if control.stop_cause(spec.index).is_some() {
        return None;
    }
    let started = work.admission.start(&spec, control)?;
    // The attempt's requests, its head's prefill first, go to one server.
    work.engine.start_work();
    let prompt = match work.heads[&spec.config.style].prefilled(control) {
        Ok(prompt) => prompt,
        Err(e) => {
            work.admission.ended_unrun(started);
            return Some(Err(e));
        }
    };
    let env = AttemptEnv {
        engine: work.engine,
        runner: work.runner,
        task: work.task,
        prompt,
        tests: work.tests,
        options: &work.options.decode,
        control,
        progress: work.progress,
        script_call: work.script_call.clone(),
    };
    (work.progress)(ProgressEvent::AttemptStarted {
        index: spec.index,
        name: spec.name(),
    });
    let before = work.engine.thread_usage();
    let (mut record, error) = run_attempt(&env, spec);
    // Exact: this thread made no other request since `before` (module docs).
    record.cost.usage = work.engine.thread_usage().since(&before);
    work.admission.ended(started, &record);
    if record.passed_all() {
        match work.options.selection {
            Selection::FirstToPass => control.cut_all(),
            Selection::ScheduleOrder => control.cut_after(spec.index),
        }
    }
    (work.progress)(ProgressEvent::AttemptFinished {
        index: spec.index,
        name: record.name.clone(),
        passed: record.passed_count(),
        total: work.task.visible.len(),
        forward_tokens: record.cost.forward_tokens(),
        seconds: record.cost.times.total_s,
    });
    Some(Ok((record, error)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Finished;
    use crate::config::{Grid, GridAgent, Horizon};
    use crate::cost::usage_sum;
    use crate::testing::*;
    use crate::{solve, MethodError, PromptStyle, SolveOptions};

    #[test]
    fn a_later_stage_follows_the_first_in_the_schedule() {
        let specs = Grid::single(config(1, 2), vec![0.0, 1.0]).schedule("t", 0);
        let usage = |requests| egcfg_engine::Usage {
            requests,
            ..egcfg_engine::Usage::default()
        };
        let stage = |error: Option<MethodError>, requests| Finished {
            attempts: specs
                .iter()
                .map(|s| (finished_record(*s, 10), None))
                .chain(error.map(|e| (finished_record(specs[0], 1), Some(e))))
                .collect(),
            failures: Vec::new(),
            usage: usage(requests),
        };
        let first = stage(None, 2);
        assert!(!first.infrastructure_failed());
        let both = first.then(stage(Some(MethodError::HeadPrefill("x".into())), 3));
        let indices: Vec<usize> = both.attempts.iter().map(|(a, _)| a.spec.index).collect();
        assert_eq!(indices, [0, 1, 2, 3, 2]);
        assert_eq!(both.usage, usage(5));
        assert!(!both.solved(), "no attempt was checked");
        let broken = stage(
            Some(MethodError::Runner(crate::RunnerError("dead".into()))),
            0,
        );
        assert!(broken.infrastructure_failed());
    }

    #[test]
    fn each_attempt_keeps_what_its_own_requests_cost_and_the_task_keeps_them_all() {
        // The scripted engine books every decode to the calling thread, with
        // the decoded tokens as its prompt: an attempt's usage is its own
        // exactly when its prompt tokens are its own forward tokens.
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let options = SolveOptions {
            grid: Grid {
                grid: None,
                agents: vec![GridAgent {
                    t: 0.7,
                    s: 2,
                    d: Horizon::Lines(1),
                    k: 1,
                    style: PromptStyle::Instruct,
                    gamma: vec![0.0, 3.0, 1.0],
                }],
            },
            concurrency: 2,
            ..SolveOptions::default()
        };
        let never = FakeRunner::new(|_| false);
        let out = solve(&add_one_task(), engine.clone(), never, &options, &|_| {}).unwrap();
        assert_eq!(out.attempts.len(), 3);
        let forward: Vec<u64> = out
            .attempts
            .iter()
            .map(|a| a.cost.forward_tokens())
            .collect();
        assert!(
            forward.iter().any(|&f| f != forward[0]),
            "attempts of different sizes: {forward:?}"
        );
        for attempt in &out.attempts {
            let usage = attempt.cost.usage;
            assert!(usage.requests > 0, "{}", attempt.name);
            assert_eq!(
                usage.prompt_tokens,
                attempt.cost.forward_tokens(),
                "{}",
                attempt.name
            );
        }
        assert_eq!(
            engine
                .work_started
                .load(std::sync::atomic::Ordering::SeqCst),
            3,
            "every attempt pins its thread's work"
        );
        // The task's total is every request made, the head's prefill (on a
        // worker, outside any attempt) included.
        assert_eq!(out.cost.usage, engine.total_usage());
        let attempts = usage_sum(out.attempts.iter().map(|a| &a.cost.usage));
        assert_eq!(
            out.cost.usage.prompt_tokens,
            attempts.prompt_tokens + out.cost.head_prefill_tokens
        );
        assert_eq!(out.cost.usage.prompt_tokens, out.cost.forward_tokens);
    }
}
