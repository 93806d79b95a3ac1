//! `egcfg bench`: solve each task, score the selected program once on the
//! hidden suites, and record it before moving on.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use egcfg_executor::{CheckReport, CheckRequest, Executor, ExecutorError, Status, Verdict};
use egcfg_task::TestCase;
use serde::Serialize;

use crate::datasets::{BenchTask, Dataset};
use crate::progress::Progress;
use crate::solver::{Solution, Solver};
use crate::store::{RunId, RunKey, Store, StoreError, SuiteScore, TaskResult, UnrunnableTask};

/// Runs programs against tests in the sandbox. [`Executor`] is the one real
/// implementation; the trait exists so the runner's bookkeeping can be
/// tested with a checker that runs nothing. Several tasks in flight check
/// their programs at once.
pub trait Checker: Sync {
    /// Runs `request.program` against each test; one outcome per test. An
    /// error when the sandbox failed, so no verdict on the program exists.
    fn check(&self, request: &CheckRequest) -> Result<CheckReport, ExecutorError>;
}

impl Checker for Executor {
    fn check(&self, request: &CheckRequest) -> Result<CheckReport, ExecutorError> {
        sandbox_failure_as_error(Executor::check(self, request))
    }
}

/// The report, or an error if the sandbox failed on one of its tests (an
/// `internal_error` is never the program's doing): counted as a failed
/// test, it would score a program by the state of the machine.
fn sandbox_failure_as_error(report: CheckReport) -> Result<CheckReport, ExecutorError> {
    match report
        .tests
        .iter()
        .find(|t| t.status == Status::InternalError)
    {
        Some(failed) => Err(ExecutorError::Sandbox {
            operation: "running tests",
            detail: failed.detail.clone(),
        }),
        None => Ok(report),
    }
}

/// How a run checks hidden tests and reports progress.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Per-test timeout for hidden tests (`None`: the executor's limit); a
    /// suite that needs more (see [`crate::Suite::timeout`]) gets its own.
    pub test_timeout: Option<Duration>,
    /// Also score every attempt on the hidden suites, for any-of-N and
    /// pass@k. Costs one check per distinct attempt program and suite.
    pub score_attempts: bool,
    /// Show progress on stderr: a bar on a terminal, else one line per
    /// finished task.
    pub progress: bool,
    /// Tasks solved at once (at least 1). More than one pays off when the
    /// model is remote and this machine only runs the sandbox; the tasks'
    /// results do not depend on it, only the order they finish in.
    pub tasks_in_flight: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            test_timeout: None,
            score_attempts: true,
            progress: true,
            tasks_in_flight: 1,
        }
    }
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RunError<E: std::error::Error + 'static> {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The solver failed on a task (the task is not recorded).
    #[error("solver failed on task {task}")]
    Solver {
        /// The task.
        task: String,
        /// The solver's error.
        source: E,
    },
    /// The machinery under the run failed on a task: the sandbox while
    /// scoring it, or what the solver runs on (a model server, see
    /// [`Solver::is_infrastructure`]) while solving it. Not the task's
    /// doing, so the task is not recorded and resuming the run does it
    /// again.
    #[error("task {task} was cut off by the infrastructure and is not recorded; resume the run once it works again")]
    Infrastructure {
        /// The task.
        task: String,
        /// What failed: the sandbox's or the solver's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a run did this time.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunSummary {
    /// The run's id in the database.
    pub run: RunId,
    /// Tasks selected.
    pub tasks: usize,
    /// Tasks already finished before this invocation (skipped).
    pub skipped: usize,
    /// Tasks solved and recorded now.
    pub recorded: usize,
    /// Tasks found unable to run now (recorded with their reason, not scored).
    pub unrunnable: usize,
    /// Of all finished tasks of the selection, how many pass the primary suite.
    pub passed: usize,
    /// Wall time of this invocation.
    pub wall_s: f64,
}

/// Runs `solver` on every selected task of `dataset` not yet finished in
/// the run `key`, recording each task as it finishes.
///
/// Up to [`RunOptions::tasks_in_flight`] tasks are solved at once, each on
/// a thread of its own; this thread records them as they finish, so each
/// task is recorded once, whatever the order they finish in. A task that
/// cannot run is recorded as such and the run goes on; an error that stops
/// the run (the infrastructure's, the solver's own, the database's) lets
/// no further task start, records nothing that finishes after it (those
/// tasks are solved again on resume, like the one that failed), and is
/// returned once the tasks in flight have ended.
pub fn run_benchmark<S: Solver>(
    store: &mut Store,
    checker: &dyn Checker,
    solver: &S,
    dataset: &Dataset,
    key: &RunKey,
    options: &RunOptions,
) -> Result<RunSummary, RunError<S::Error>> {
    let started = Instant::now();
    let run = store.open_run(key, &dataset.version)?;
    let finished = store.finished_tasks(run)?;
    let primary = |t: &BenchTask| t.suites.first().map(|s| s.name.clone());
    let mut passed = store
        .results(run)?
        .iter()
        .filter(|r| {
            dataset.tasks.iter().any(|t| {
                t.id() == r.task_id
                    && primary(t).is_some_and(|p| r.score(&p).is_some_and(|s| s.passed))
            })
        })
        .count();
    let todo: Vec<&BenchTask> = dataset
        .tasks
        .iter()
        .filter(|t| !finished.contains(t.id()))
        .collect();
    let skipped = dataset.tasks.len() - todo.len();
    let mut progress = Progress::new(options.progress, dataset.tasks.len(), skipped, passed);
    let mut recorded = 0;
    let mut unrunnable = 0;
    let mut failure: Option<RunError<S::Error>> = None;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let workers = options.tasks_in_flight.clamp(1, todo.len().max(1));
    let (sender, outcomes) = mpsc::channel();
    std::thread::scope(|scope| {
        for _ in 0..workers {
            let sender = sender.clone();
            let (next, stop, todo) = (&next, &stop, &todo);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let Some(task) = todo.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        break;
                    };
                    let outcome = run_task(solver, checker, task, options);
                    if matches!(outcome, TaskOutcome::Stopped(_)) {
                        stop.store(true, Ordering::SeqCst);
                    }
                    if sender.send((task.id(), outcome)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        for (task_id, outcome) in outcomes {
            if failure.is_some() {
                tracing::warn!(
                    task = task_id,
                    "finished after the run stopped: not recorded, it is solved again on resume"
                );
                continue;
            }
            let recording = match outcome {
                TaskOutcome::Finished(result) => {
                    let task_passed = result.scores.first().is_some_and(|s| s.passed);
                    store.record(run, &result).map(|fresh| {
                        if fresh {
                            recorded += 1;
                            passed += usize::from(task_passed);
                        }
                        progress.task_finished(&result, task_passed);
                    })
                }
                TaskOutcome::Unrunnable(reason) => {
                    progress.task_unrunnable(task_id, &reason);
                    let task = UnrunnableTask {
                        task_id: task_id.to_string(),
                        reason,
                    };
                    store.record_unrunnable(run, &task).map(|fresh| {
                        unrunnable += usize::from(fresh);
                    })
                }
                TaskOutcome::Stopped(error) => {
                    failure = Some(error);
                    Ok(())
                }
            };
            if let Err(error) = recording {
                failure = Some(error.into());
            }
            if failure.is_some() {
                stop.store(true, Ordering::SeqCst);
            }
        }
    });
    progress.finish();
    if let Some(error) = failure {
        return Err(error);
    }
    Ok(RunSummary {
        run,
        tasks: dataset.tasks.len(),
        skipped,
        recorded,
        unrunnable,
        passed,
        wall_s: started.elapsed().as_secs_f64(),
    })
}

/// What became of one task on its worker.
enum TaskOutcome<E: std::error::Error + 'static> {
    /// Solved and scored: to be recorded.
    Finished(Box<TaskResult>),
    /// It cannot run at all, for this reason: recorded as such.
    Unrunnable(String),
    /// An error that stops the run; the task is not recorded.
    Stopped(RunError<E>),
}

/// Solves `task` with `solver` and scores its programs on the hidden
/// suites.
fn run_task<S: Solver>(
    solver: &S,
    checker: &dyn Checker,
    task: &BenchTask,
    options: &RunOptions,
) -> TaskOutcome<S::Error> {
    tracing::debug!(task = task.id(), "solving");
    let task_id = || task.id().to_string();
    let solve_start = Instant::now();
    let solution = match solver.solve(&task.visible) {
        Ok(solution) => solution,
        Err(source) if solver.is_infrastructure(&source) => {
            return TaskOutcome::Stopped(RunError::Infrastructure {
                task: task_id(),
                source: Box::new(source),
            });
        }
        Err(source) => {
            return match solver.unrunnable_reason(&source) {
                Some(reason) => TaskOutcome::Unrunnable(reason),
                None => TaskOutcome::Stopped(RunError::Solver {
                    task: task_id(),
                    source,
                }),
            };
        }
    };
    let wall_ms = solver.wall_ms(&solution, solve_start.elapsed().as_secs_f64() * 1000.0);
    match score(checker, task, &solution, options) {
        Ok(scores) => TaskOutcome::Finished(Box::new(TaskResult {
            task_id: task_id(),
            solution,
            wall_ms,
            scores,
        })),
        Err(source) => TaskOutcome::Stopped(RunError::Infrastructure {
            task: task_id(),
            source: Box::new(source),
        }),
    }
}

/// Scores the selected program once on every suite, and, if asked, every
/// distinct attempt program. Suites with identical tests share one check.
///
/// The selected program runs every test, for its per-test counts. An
/// attempt needs only a verdict (any-of-N and pass@k count attempts that
/// pass a whole suite), so its tests stop at the first that fails: a slow
/// attempt would otherwise time out on MBPP+'s 30-second chunks one after
/// another, and a best-of-N run has dozens of attempts per task.
fn score(
    checker: &dyn Checker,
    task: &BenchTask,
    solution: &Solution,
    options: &RunOptions,
) -> Result<Vec<SuiteScore>, ExecutorError> {
    // Suites with the same tests (e.g. `mbpp` and `mbpp/base` on a task
    // without challenge tests) map to the first of them.
    let same_as: Vec<usize> = (0..task.suites.len())
        .map(|i| {
            (0..i)
                .find(|&j| task.suites[j].tests == task.suites[i].tests)
                .unwrap_or(i)
        })
        .collect();
    let request = |program: &str, suite: usize, tests: &[TestCase]| CheckRequest {
        program: program.to_string(),
        setup: task.visible.setup.clone(),
        tests: tests.to_vec(),
        timeout: task.suites[suite].timeout.max(options.test_timeout),
    };
    let selected = solution.program.as_str();
    let mut reports: HashMap<usize, CheckReport> = HashMap::new();
    let mut verdicts: HashMap<(&str, usize), bool> = HashMap::new();
    let mut scores = Vec::with_capacity(task.suites.len());
    for (suite, &distinct) in same_as.iter().enumerate() {
        let tests = &task.suites[suite].tests;
        let (passed, tests_passed, detail) = if selected.trim().is_empty() {
            (false, 0, "no program".to_string())
        } else {
            let report = match reports.entry(distinct) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => new.insert(checker.check(&request(selected, suite, tests))?),
            };
            let detail = report
                .tests
                .iter()
                .enumerate()
                .find(|(_, t)| t.verdict != Verdict::Pass)
                .map(|(i, t)| format!("test {} {}: {}", i + 1, t.status, t.detail))
                .unwrap_or_default();
            let complete = report.tests.len() == tests.len();
            (complete && report.all_passed(), report.passed(), detail)
        };
        verdicts.insert((selected, distinct), passed);
        let attempts_passed = if options.score_attempts {
            let mut passed = Vec::new();
            for program in solution.attempt_programs() {
                let verdict = match verdicts.get(&(program, distinct)) {
                    Some(&verdict) => verdict,
                    None => {
                        let verdict = !program.trim().is_empty()
                            && passes_every_test(checker, tests, |test| {
                                request(program, suite, test)
                            })?;
                        verdicts.insert((program, distinct), verdict);
                        verdict
                    }
                };
                passed.push(verdict);
            }
            Some(passed)
        } else {
            None
        };
        scores.push(SuiteScore {
            suite: task.suites[suite].name.clone(),
            passed,
            tests_passed,
            tests_total: tests.len(),
            detail,
            attempts_passed,
        });
    }
    Ok(scores)
}

/// Whether a program passes all of `tests`, checked one test at a time
/// (`request` makes the check of one) and stopping at the first that does
/// not pass. One at a time because the executor runs a check's tests on
/// one server, one after another: a check of several would wait out every
/// timeout among them.
fn passes_every_test(
    checker: &dyn Checker,
    tests: &[TestCase],
    request: impl Fn(&[TestCase]) -> CheckRequest,
) -> Result<bool, ExecutorError> {
    for test in tests.chunks(1) {
        let report = checker.check(&request(test))?;
        if report.tests.len() != 1 || !report.all_passed() {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use egcfg_executor::TestOutcome;
    use egcfg_task::{Task, TestCase};

    use super::*;
    use crate::datasets::{Selection, Suite};
    use crate::solver::{Attempt, Cost, ServerUsage, VisibleTask};

    /// Judges programs without running them: a test passes when the
    /// program contains the marker `CORRECT`. Counts the checks it gets.
    #[derive(Default)]
    struct MarkerChecker {
        checks: AtomicUsize,
        /// Tests run, over all checks.
        tests_run: AtomicUsize,
    }

    impl Checker for MarkerChecker {
        fn check(&self, request: &CheckRequest) -> Result<CheckReport, ExecutorError> {
            self.checks.fetch_add(1, Ordering::SeqCst);
            self.tests_run
                .fetch_add(request.tests.len(), Ordering::SeqCst);
            if request.program.contains(DEAD) {
                return Err(ExecutorError::Sandbox {
                    operation: "running tests",
                    detail: "the fork-server died".into(),
                });
            }
            let verdict = if request.program.contains("CORRECT") {
                Verdict::Pass
            } else {
                Verdict::Fail
            };
            Ok(CheckReport {
                tests: request
                    .tests
                    .iter()
                    .map(|_| TestOutcome {
                        verdict,
                        status: Status::Ok,
                        detail: String::new(),
                        wall_ms: 0.0,
                    })
                    .collect(),
            })
        }
    }

    /// A program the [`MarkerChecker`]'s sandbox dies on.
    const DEAD: &str = "KILLS_THE_SANDBOX";

    #[derive(Debug, thiserror::Error)]
    enum Crash {
        #[error("simulated crash")]
        Fatal,
        #[error("the prompt of {0} does not fit")]
        TooLong(String),
        #[error("model server http://127.0.0.1:1: connection refused")]
        ServerDown,
    }

    /// Answers task i with attempts [wrong, CORRECT if i is even]; fails
    /// (like a killed process) on the task named in `crash_on`, and cannot
    /// run (like a prompt longer than the context) those in `too_long`. Its
    /// program for the task in `deadly` kills the checker's sandbox.
    #[derive(Default)]
    struct FakeSolver {
        crash_on: Option<String>,
        too_long: Vec<String>,
        deadly: Option<String>,
        server_down_on: Option<String>,
        /// Tasks it takes this long to solve (none by default).
        slow: Vec<(String, Duration)>,
        /// The wall it says its solutions stand for, if not the time they
        /// took.
        stands_for_ms: Option<f64>,
        solved: Mutex<Vec<String>>,
        /// Tasks being solved now, and the most there ever were.
        in_flight: AtomicUsize,
        most_in_flight: AtomicUsize,
    }

    impl FakeSolver {
        /// The tasks it solved, in the order it started them.
        fn solved(&self) -> Vec<String> {
            self.solved.lock().unwrap().clone()
        }
    }

    impl Solver for FakeSolver {
        type Error = Crash;

        fn solve(&self, task: &VisibleTask) -> Result<Solution, Crash> {
            assert!(task.hidden.is_empty(), "the solver never sees hidden tests");
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            if let Some((_, delay)) = self.slow.iter().find(|(id, _)| *id == task.id) {
                std::thread::sleep(*delay);
            }
            let solution = self.answer(task);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            solution
        }

        fn unrunnable_reason(&self, error: &Crash) -> Option<String> {
            matches!(error, Crash::TooLong(_)).then(|| error.to_string())
        }

        fn is_infrastructure(&self, error: &Crash) -> bool {
            matches!(error, Crash::ServerDown)
        }

        fn wall_ms(&self, _: &Solution, measured_ms: f64) -> f64 {
            self.stands_for_ms.unwrap_or(measured_ms)
        }
    }

    impl FakeSolver {
        fn answer(&self, task: &VisibleTask) -> Result<Solution, Crash> {
            if self.crash_on.as_deref() == Some(task.id.as_str()) {
                return Err(Crash::Fatal);
            }
            if self.too_long.contains(&task.id) {
                return Err(Crash::TooLong(task.id.clone()));
            }
            if self.server_down_on.as_deref() == Some(task.id.as_str()) {
                return Err(Crash::ServerDown);
            }
            self.solved.lock().unwrap().push(task.id.clone());
            let n: usize = task.id.trim_start_matches("t").parse().unwrap();
            let good = if self.deadly.as_deref() == Some(task.id.as_str()) {
                DEAD
            } else if n.is_multiple_of(2) {
                "CORRECT"
            } else {
                "wrong"
            };
            let attempt = |program: &str| Attempt {
                label: "a".into(),
                program: program.into(),
                visible_passed: 0,
                visible_total: 1,
                gamma: None,
                wall_s: None,
                usage: ServerUsage::default(),
            };
            Ok(Solution {
                program: format!("# {good}"),
                attempts: vec![attempt("# wrong"), attempt(&format!("# {good}"))],
                cost: Cost {
                    prefill_tokens: 5,
                    decode_tokens: 7,
                    executions: 2,
                    no_program_tokens: None,
                    usage: ServerUsage::default(),
                },
                records: serde_json::json!({ "task": task.id }),
                profile: None,
            })
        }
    }

    fn dataset(n: usize) -> Dataset {
        dataset_of(n, 1)
    }

    /// `n` tasks whose two identical suites hold `tests` tests each.
    fn dataset_of(n: usize, tests: usize) -> Dataset {
        let tests: Vec<TestCase> = (0..tests)
            .map(|i| TestCase::Assert {
                code: format!("assert f({i}) == 1"),
            })
            .collect();
        Dataset {
            name: "toy".into(),
            split: "all".into(),
            version: "v1".into(),
            tasks: (0..n)
                .map(|i| {
                    let task = Task {
                        id: format!("t{i}"),
                        prompt: "p".into(),
                        entry_point: "f".into(),
                        visible: tests.clone(),
                        hidden: tests.clone(),
                        setup: None,
                    };
                    let suites = vec![
                        Suite {
                            name: "toy".into(),
                            tests: tests.clone(),
                            timeout: None,
                        },
                        Suite {
                            name: "toy/same".into(),
                            tests: tests.clone(),
                            timeout: None,
                        },
                    ];
                    crate::datasets::BenchTask::new(task, suites)
                })
                .collect(),
            notes: Vec::new(),
        }
    }

    fn key() -> RunKey {
        RunKey {
            dataset: "toy".into(),
            split: "all".into(),
            method: "fake".into(),
            model: "none".into(),
            config: serde_json::json!({"k": 1}),
        }
    }

    fn quiet() -> RunOptions {
        RunOptions {
            progress: false,
            ..RunOptions::default()
        }
    }

    #[test]
    fn an_interrupted_run_resumes_without_redoing_or_duplicating() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let data = dataset(5);
        let checker = MarkerChecker::default();
        {
            let mut store = Store::open(&db).unwrap();
            let solver = FakeSolver {
                crash_on: Some("t3".into()),
                ..FakeSolver::default()
            };
            let err = run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet());
            assert!(matches!(err, Err(RunError::Solver { ref task, .. }) if task == "t3"));
            assert_eq!(solver.solved(), vec!["t0", "t1", "t2"]);
        }
        let mut store = Store::open(&db).unwrap();
        let solver = FakeSolver::default();
        let summary =
            run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        assert_eq!(
            solver.solved(),
            vec!["t3", "t4"],
            "finished tasks are skipped"
        );
        assert_eq!(
            (summary.tasks, summary.skipped, summary.recorded),
            (5, 3, 2)
        );
        assert_eq!(summary.passed, 3, "t0, t2, t4 pass");
        let results = store.results(summary.run).unwrap();
        let ids: Vec<&str> = results.iter().map(|r| r.task_id.as_str()).collect();
        assert_eq!(
            ids,
            vec!["t0", "t1", "t2", "t3", "t4"],
            "each task exactly once"
        );
        // A third invocation does nothing.
        let solver = FakeSolver::default();
        let again = run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        assert!(solver.solved().is_empty());
        assert_eq!((again.skipped, again.recorded, again.passed), (5, 0, 3));
    }

    #[test]
    fn a_solution_standing_for_other_work_is_recorded_with_that_work_s_wall() {
        let mut store = Store::open_in_memory().unwrap();
        let checker = MarkerChecker::default();
        let data = dataset(2);
        let measured = FakeSolver {
            slow: vec![("t0".into(), Duration::from_millis(30))],
            ..FakeSolver::default()
        };
        let s = run_benchmark(&mut store, &checker, &measured, &data, &key(), &quiet()).unwrap();
        assert!(store.results(s.run).unwrap()[0].wall_ms >= 30.0);
        let derived = FakeSolver {
            stands_for_ms: Some(1234.5),
            ..FakeSolver::default()
        };
        let mut other = key();
        other.config["k"] = 2.into();
        let s = run_benchmark(&mut store, &checker, &derived, &data, &other, &quiet()).unwrap();
        let results = store.results(s.run).unwrap();
        assert!(results.iter().all(|r| r.wall_ms == 1234.5));
        assert_eq!(
            checker.checks.load(Ordering::SeqCst),
            6,
            "scored as any run"
        );
    }

    #[test]
    fn selected_program_and_attempts_are_scored_once_per_distinct_check() {
        let mut store = Store::open_in_memory().unwrap();
        let checker = MarkerChecker::default();
        let solver = FakeSolver::default();
        let data = dataset(2);
        let s = run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        // t0 has two distinct programs ("# wrong", and "# CORRECT", which is
        // both attempt 2 and the selected one); t1 has one ("# wrong"
        // three times). One check each; the identical second suite reuses
        // them: 2 + 1.
        assert_eq!(checker.checks.load(Ordering::SeqCst), 3);
        let results = store.results(s.run).unwrap();
        let t0 = &results[0].scores;
        assert_eq!(t0.len(), 2);
        assert!(t0[0].passed && t0[1].passed);
        assert_eq!(t0[0].attempts_passed, Some(vec![false, true]));
        let t1 = &results[1].scores[0];
        assert!(!t1.passed);
        assert_eq!(t1.attempts_passed, Some(vec![false, false]));
    }

    #[test]
    fn an_attempt_stops_at_its_first_failed_test_and_the_selected_program_runs_all() {
        let mut store = Store::open_in_memory().unwrap();
        let checker = MarkerChecker::default();
        let solver = FakeSolver::default();
        let data = dataset_of(1, 4);
        let s = run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        // The selected "# CORRECT" runs its 4 tests; the attempt "# wrong"
        // fails the first and runs no more.
        assert_eq!(checker.tests_run.load(Ordering::SeqCst), 4 + 1);
        let score = &store.results(s.run).unwrap()[0].scores[0];
        assert_eq!((score.tests_passed, score.tests_total), (4, 4));
        assert_eq!(score.attempts_passed, Some(vec![false, true]));
    }

    #[test]
    fn selection_by_limit_and_ids() {
        let mut data = dataset(5);
        data.select(&Selection::First(2)).unwrap();
        assert_eq!(data.tasks.len(), 2);
        let mut data = dataset(5);
        data.select(&Selection::Ids(vec!["t4".into(), "t1".into()]))
            .unwrap();
        let ids: Vec<&str> = data.tasks.iter().map(|t| t.id()).collect();
        assert_eq!(ids, vec!["t1", "t4"], "dataset order");
        let err = dataset(5)
            .select(&Selection::Ids(vec!["nope".into()]))
            .unwrap_err();
        assert!(err.to_string().contains("t0"), "{err}");
    }

    #[test]
    fn a_task_that_cannot_run_is_recorded_and_the_run_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let data = dataset(4);
        let checker = MarkerChecker::default();
        let mut store = Store::open(&db).unwrap();
        let solver = FakeSolver {
            too_long: vec!["t1".into()],
            ..FakeSolver::default()
        };

        let summary =
            run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();

        assert_eq!(solver.solved(), vec!["t0", "t2", "t3"], "the run went on");
        assert_eq!((summary.recorded, summary.unrunnable), (3, 1));
        let ids: Vec<String> = store
            .results(summary.run)
            .unwrap()
            .into_iter()
            .map(|r| r.task_id)
            .collect();
        assert_eq!(ids, vec!["t0", "t2", "t3"], "no failed program for t1");
        assert_eq!(
            store.unrunnable(summary.run).unwrap(),
            vec![UnrunnableTask {
                task_id: "t1".into(),
                reason: "the prompt of t1 does not fit".into(),
            }]
        );

        // A rerun does not try it again, and counts it as done.
        drop(store);
        let mut store = Store::open(&db).unwrap();
        let solver = FakeSolver {
            too_long: vec!["t1".into()],
            ..FakeSolver::default()
        };
        let again = run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        assert!(solver.solved().is_empty());
        assert_eq!((again.skipped, again.recorded, again.unrunnable), (4, 0, 0));
    }

    #[test]
    fn a_server_failure_stops_the_run_unrecorded_and_resuming_solves_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let data = dataset(3);
        let checker = MarkerChecker::default();
        {
            let mut store = Store::open(&db).unwrap();
            let solver = FakeSolver {
                server_down_on: Some("t1".into()),
                ..FakeSolver::default()
            };
            let err =
                run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap_err();
            assert!(
                matches!(err, RunError::Infrastructure { ref task, .. } if task == "t1"),
                "{err:?}"
            );
            let chain = anyhow_like(&err);
            assert!(chain.contains("model server http://127.0.0.1:1"), "{chain}");
            assert!(chain.contains("resume the run"), "{chain}");
            let run = store.open_run(&key(), &data.version).unwrap();
            let recorded = store.finished_tasks(run).unwrap();
            assert!(
                !recorded.contains("t1"),
                "t1 is neither failed nor unrunnable"
            );
        }
        let mut store = Store::open(&db).unwrap();
        let solver = FakeSolver::default();
        let summary =
            run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        assert_eq!(solver.solved(), vec!["t1", "t2"], "t1 is solved on resume");
        assert_eq!((summary.skipped, summary.recorded), (1, 2));
    }

    fn in_flight(n: usize) -> RunOptions {
        RunOptions {
            tasks_in_flight: n,
            ..quiet()
        }
    }

    #[test]
    fn tasks_in_flight_are_each_recorded_once_with_the_results_of_one_at_a_time() {
        let data = dataset(7);
        let checker = MarkerChecker::default();
        let results = |n: usize| {
            let mut store = Store::open_in_memory().unwrap();
            let solver = FakeSolver {
                too_long: vec!["t5".into()],
                // Slow tasks make the others finish out of order.
                slow: vec![
                    ("t0".into(), Duration::from_millis(150)),
                    ("t3".into(), Duration::from_millis(100)),
                ],
                ..FakeSolver::default()
            };
            let summary =
                run_benchmark(&mut store, &checker, &solver, &data, &key(), &in_flight(n)).unwrap();
            assert_eq!((summary.recorded, summary.unrunnable), (6, 1));
            assert_eq!(summary.passed, 4, "t0, t2, t4 and t6 pass");
            let mut results = store.results(summary.run).unwrap();
            results.sort_by(|a, b| a.task_id.cmp(&b.task_id));
            // Wall times are measured, so they differ between runs.
            results.iter_mut().for_each(|r| r.wall_ms = 0.0);
            (results, store.unrunnable(summary.run).unwrap(), solver)
        };
        let (alone, alone_unrunnable, solver) = results(1);
        assert_eq!(solver.most_in_flight.load(Ordering::SeqCst), 1);
        let (together, together_unrunnable, solver) = results(3);
        assert_eq!(solver.most_in_flight.load(Ordering::SeqCst), 3);
        assert_eq!(together, alone);
        assert_eq!(together_unrunnable, alone_unrunnable);
    }

    #[test]
    fn a_server_failure_records_no_task_that_was_in_flight_and_starts_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let data = dataset(5);
        let checker = MarkerChecker::default();
        {
            let mut store = Store::open(&db).unwrap();
            let solver = FakeSolver {
                server_down_on: Some("t1".into()),
                // Still being solved when t1's server fails.
                slow: vec![("t0".into(), Duration::from_millis(500))],
                ..FakeSolver::default()
            };
            let err = run_benchmark(&mut store, &checker, &solver, &data, &key(), &in_flight(2))
                .unwrap_err();
            assert!(
                matches!(err, RunError::Infrastructure { ref task, .. } if task == "t1"),
                "{err:?}"
            );
            assert_eq!(solver.solved(), vec!["t0"], "no task starts after it");
            let run = store.open_run(&key(), &data.version).unwrap();
            assert!(store.finished_tasks(run).unwrap().is_empty());
        }
        let mut store = Store::open(&db).unwrap();
        let solver = FakeSolver::default();
        let summary =
            run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        assert_eq!(solver.solved(), vec!["t0", "t1", "t2", "t3", "t4"]);
        assert_eq!((summary.skipped, summary.recorded), (0, 5));
    }

    /// `error` and its sources, joined as the CLI prints them.
    fn anyhow_like(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    #[test]
    fn a_sandbox_failure_stops_the_run_and_resuming_scores_the_task() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("runs.db");
        let data = dataset(3);
        let checker = MarkerChecker::default();
        {
            let mut store = Store::open(&db).unwrap();
            let solver = FakeSolver {
                deadly: Some("t1".into()),
                ..FakeSolver::default()
            };
            let err = run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet());
            assert!(
                matches!(err, Err(RunError::Infrastructure { ref task, .. }) if task == "t1"),
                "{err:?}"
            );
            assert_eq!(solver.solved(), vec!["t0", "t1"], "the run stopped at t1");
        }
        let mut store = Store::open(&db).unwrap();
        let solver = FakeSolver::default();
        let summary =
            run_benchmark(&mut store, &checker, &solver, &data, &key(), &quiet()).unwrap();
        assert_eq!(
            solver.solved(),
            vec!["t1", "t2"],
            "t1 is solved and scored again"
        );
        let ids: Vec<String> = store
            .results(summary.run)
            .unwrap()
            .into_iter()
            .map(|r| r.task_id)
            .collect();
        assert_eq!(ids, vec!["t0", "t1", "t2"]);
        assert!(store.unrunnable(summary.run).unwrap().is_empty());
    }

    #[test]
    fn an_internal_error_is_a_sandbox_failure_not_a_failed_test() {
        let outcome = |status: Status, verdict: Verdict| TestOutcome {
            verdict,
            status,
            detail: format!("{status}"),
            wall_ms: 0.0,
        };
        let failed = CheckReport {
            tests: vec![
                outcome(Status::Exception, Verdict::Fail),
                outcome(Status::InternalError, Verdict::Error),
            ],
        };
        let err = sandbox_failure_as_error(failed).unwrap_err();
        assert!(
            matches!(err, ExecutorError::Sandbox { ref detail, .. } if detail == "internal_error"),
            "{err}"
        );
        let fine = CheckReport {
            tests: vec![outcome(Status::Exception, Verdict::Fail)],
        };
        assert_eq!(sandbox_failure_as_error(fine.clone()).unwrap(), fine);
    }
}
