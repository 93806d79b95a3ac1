//! The public face of the crate: a started pool and its operations.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use egcfg_task::TestCase;
use serde::Deserialize;

use crate::cache::{key_of, Cache, Claim};
use crate::caps::SandboxCaps;
use crate::check::{judge, judge_checks, refused, Judging, TestPlan, STDOUT_MARGIN};
use crate::config::{ExecLimits, ExecutorConfig, UnplannedTests};
use crate::error::ExecutorError;
use crate::interpreter;
use crate::pool::{JobFailure, Pool, ReplyReceiver, STARTUP_DEADLINE};
use crate::probe::{probe, sandbox_caps};
use crate::request::{CheckReport, CheckRequest, Invocation, TraceRequest};
use crate::result::{ExceptionInfo, ExecResult, Status};
use crate::sandbox::landlock;
use crate::sandbox::namespaces::{unsearchable_dirs, Identity};
use crate::sandbox::seccomp::{self, SeccompPrograms};
use crate::scratch::{scratch_factory, spawn_scratch, ScratchRoot};
use crate::server::{Launch, FRAME_CAP, MAX_BATCH};
use crate::wire::{Job, Op, WireInvocation};

/// A pool of sandboxed Python fork-servers. Cheap to share: wrap it in an
/// `Arc` and call it from many threads; requests from all of them are
/// spread over the servers.
pub struct Executor {
    // Field order is drop order: servers die before their scratch goes.
    pool: Pool,
    cache: Cache,
    limits: ExecLimits,
    caps: SandboxCaps,
    launch: Arc<Launch>,
    /// What children may read and write, when the kernel has Landlock.
    landlock: Option<Arc<landlock::Policy>>,
    /// The checks of each assert or script test seen so far (`None`: the
    /// planner does not know its shape), by [`planned_text`].
    plans: Mutex<HashMap<PlannedText, Option<Arc<[TestPlan]>>>>,
    plan_runs: AtomicUsize,
    unplanned_tests: UnplannedTests,
    scratch: ScratchRoot,
}

impl Executor {
    /// Resolves the interpreter, probes the isolation layers, refuses to
    /// start if a layer in [`ExecutorConfig::min_isolation`] is missing,
    /// and starts the servers.
    pub fn start(config: ExecutorConfig) -> Result<Executor, ExecutorError> {
        let python = interpreter::resolve(config.python.as_deref())?;
        let scratch = ScratchRoot::create(&config.scratch_root)?;
        let seccomp = seccomp::available()
            .then(SeccompPrograms::compile)
            .transpose()?;
        let landlock = landlock::Policy::new(&python.code_dirs).map(Arc::new);
        let probe_limits = (&config.limits).into();
        let (identity, _) = Identity::current(config.sandbox_id, config.namespaces, &python.path);
        if let Some(id) = identity.child_id {
            if let Some(dir) = unsearchable_dirs(&scratch.path, id).first() {
                return Err(ExecutorError::Scratch {
                    path: config.scratch_root.clone(),
                    source: std::io::Error::other(format!(
                        "children run as uid {id}, which cannot search {}; choose a \
                         scratch root every user can reach (the default is /dev/shm)",
                        dir.display()
                    )),
                });
            }
        }
        let mut launch = Launch {
            python: python.path.clone(),
            seccomp_server: seccomp
                .as_ref()
                .map(|p| SeccompPrograms::to_hex(&p.server))
                .unwrap_or_default(),
            seccomp_child: seccomp
                .as_ref()
                .map(|p| SeccompPrograms::to_hex(&p.child))
                .unwrap_or_default(),
            namespaces: config.namespaces,
            identity,
            scratch: config.scratch,
            probe_limits,
        };
        let factory = scratch_factory(scratch.path.clone(), landlock.clone());
        let probed = probe(&mut launch, &*factory, config.sandbox_id)?;
        let caps = sandbox_caps(
            &python,
            &config,
            &scratch,
            seccomp.as_ref(),
            landlock.as_deref(),
            probed,
            &launch,
        )?;
        tracing::info!("sandbox: {}", caps.to_string().replace('\n', "; "));
        let missing = caps.missing(&config.min_isolation.layers);
        if !missing.is_empty() {
            return Err(ExecutorError::IsolationMissing {
                missing,
                caps: Box::new(caps),
            });
        }
        for layer in [
            crate::Layer::Seccomp,
            crate::Layer::Landlock,
            crate::Layer::Namespaces,
            crate::Layer::Unprivileged,
        ] {
            if !caps.has(layer) {
                tracing::warn!("isolation layer {layer} is off: {}", caps.state(layer).note);
            }
        }
        let launch = Arc::new(launch);
        let pool = Pool::start(config.pool_size.max(1), launch.clone(), factory)
            .map_err(|detail| ExecutorError::ServerStart { detail })?;
        Ok(Executor {
            pool,
            cache: Cache::new(config.cache_capacity),
            limits: config.limits,
            caps,
            launch,
            landlock,
            plans: Mutex::new(HashMap::new()),
            plan_runs: AtomicUsize::new(0),
            unplanned_tests: config.unplanned_tests,
            scratch,
        })
    }

    /// The isolation layers active in this executor.
    pub fn caps(&self) -> &SandboxCaps {
        &self.caps
    }

    /// How many fork-servers were killed and replaced (unresponsive or
    /// broken) since start; each such event also cost its caller an
    /// `internal_error`.
    pub fn server_restarts(&self) -> u64 {
        self.pool.restarts()
    }

    /// The per-execution limits in force.
    pub fn limits(&self) -> &ExecLimits {
        &self.limits
    }

    /// Makes each partial candidate runnable (docs/method.md §5: truncate /
    /// add `pass`, then normalise through Python's `ast`), in the sandbox.
    /// `None` where no prefix of the candidate is executable. Identical
    /// inputs are processed once; outputs are aligned with the inputs, so
    /// callers de-duplicate the programs themselves. An error means the
    /// sandbox itself failed, never that a candidate is bad.
    pub fn prepare(&self, partials: &[String]) -> Result<Vec<Option<String>>, ExecutorError> {
        let mut unique: Vec<String> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for p in partials {
            index.entry(p.as_str()).or_insert_with(|| {
                unique.push(p.clone());
                unique.len() - 1
            });
        }
        let prepared = match self.prepare_batch(&unique)? {
            Some(all) => all,
            // One input broke the batch's child: isolate it.
            None => unique
                .iter()
                .map(|p| {
                    let one = self.prepare_batch(std::slice::from_ref(p))?;
                    Ok(one.and_then(|mut v| v.pop().flatten()))
                })
                .collect::<Result<_, ExecutorError>>()?,
        };
        Ok(partials
            .iter()
            .map(|p| prepared[index[p.as_str()]].clone())
            .collect())
    }

    /// Prepares a batch in one child: `None` if the child failed on it.
    fn prepare_batch(
        &self,
        partials: &[String],
    ) -> Result<Option<Vec<Option<String>>>, ExecutorError> {
        #[derive(Deserialize)]
        struct Prepared {
            prepared: Vec<Option<String>>,
        }
        const OPERATION: &str = "preparing candidates";
        if partials.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let mut job = Job::new(Op::Prepare, &self.limits);
        job.partials = Some(partials.to_vec());
        let Some(out) = self.run_tool::<Prepared>(job, OPERATION)? else {
            return Ok(None);
        };
        if out.prepared.len() != partials.len() {
            return Err(ExecutorError::Sandbox {
                operation: OPERATION,
                detail: format!(
                    "{} programs prepared for {} sent",
                    out.prepared.len(),
                    partials.len()
                ),
            });
        }
        Ok(Some(out.prepared))
    }

    /// For each test, whether [`Executor::check`] judges it outside the
    /// candidate's process (a planned assert or script, or printed output
    /// compared here), so that no program can fake its verdict. The others
    /// are refused or, under [`UnplannedTests::RunInChild`], trusted to the
    /// candidate's own report.
    pub fn judged_outside(&self, tests: &[TestCase]) -> Vec<bool> {
        self.judging(tests)
            .iter()
            .zip(tests)
            .map(|(judging, test)| {
                matches!(judging, Judging::Planned(_)) || matches!(test, TestCase::Stdio { .. })
            })
            .collect()
    }

    /// The left operand of an assert's comparison (`f(1, 2)` from
    /// `assert f(1, 2) == 3`, source text kept), the operand of a leading
    /// `not`, or the asserted expression itself when it is no comparison;
    /// `None` when the statement is no single assert. An error means the
    /// sandbox itself failed.
    pub fn call_expression(&self, assert_stmt: &str) -> Result<Option<String>, ExecutorError> {
        #[derive(Deserialize)]
        struct Expr {
            expr: Option<String>,
        }
        let mut job = Job::new(Op::CallExpr, &self.limits);
        job.assert_stmt = Some(assert_stmt.to_string());
        let out = self.run_tool::<Expr>(job, "reading an assert's call")?;
        Ok(out.and_then(|e| e.expr))
    }

    /// Runs each request traced, in parallel over the pool; results are in
    /// request order. Identical requests run once (also across calls).
    pub fn trace(&self, requests: &[TraceRequest]) -> Vec<ExecResult> {
        let jobs = requests.iter().map(|r| self.trace_job(r)).collect();
        self.run_cached(jobs)
    }

    /// Runs a program against each test (untraced, each in a fresh
    /// namespace, in parallel) and reports pass/fail/error per test.
    ///
    /// An assert of a plain shape (`f(x) == expected`, `!=`, `is None`,
    /// `math.isclose(f(x), expected)`, a bare expression, under any `not`;
    /// `expected` a literal or pure builtins over literals) passes when the
    /// call's value, sent as plain data, satisfies it as judged here; a
    /// HumanEval-style script whose `check(candidate)` holds only such
    /// asserts passes when all of them do. Their expected values never
    /// enter the candidate's process, so neither an always-equal object
    /// nor a forged result can pass them. Stdio tests pass when the
    /// program prints the expected output (compared here). Any other test
    /// is refused (verdict error) or, with
    /// [`UnplannedTests::RunInChild`], passes when it raises nothing in
    /// the child, which a hostile program can forge.
    pub fn check(&self, request: &CheckRequest) -> CheckReport {
        let mut limits = self.limits.clone();
        if let Some(t) = request.timeout {
            limits.timeout = t;
        }
        let judging = self.judging(&request.tests);
        let mut jobs = Vec::new();
        let mut spans = Vec::with_capacity(request.tests.len());
        for (test, how) in request.tests.iter().zip(&judging) {
            let start = jobs.len();
            let invocations: Vec<WireInvocation> = match (how, test) {
                (Judging::Refused, _) => Vec::new(),
                (Judging::Planned(checks), _) => checks
                    .iter()
                    .map(|c| WireInvocation {
                        call: Some(c.call.clone()),
                        ..WireInvocation::default()
                    })
                    .collect(),
                (Judging::InChild, TestCase::Stdio { stdin, .. }) => vec![WireInvocation {
                    stdin: Some(stdin.clone()),
                    ..WireInvocation::default()
                }],
                (Judging::InChild, TestCase::Assert { code } | TestCase::Script { code }) => {
                    vec![WireInvocation {
                        test: Some(code.clone()),
                        ..WireInvocation::default()
                    }]
                }
            };
            for invocation in invocations {
                jobs.push(test_job(request, test, invocation, &limits));
            }
            spans.push(start..jobs.len());
        }
        let results = self.run_cached(jobs);
        CheckReport {
            tests: request
                .tests
                .iter()
                .zip(&judging)
                .zip(spans)
                .map(|((test, how), span)| match how {
                    Judging::Refused => refused(),
                    Judging::Planned(checks) => judge_checks(test, checks, &results[span]),
                    Judging::InChild => judge(test, None, &results[span.start]),
                })
                .collect(),
        }
    }

    /// How each test is judged. Asserts and scripts are planned once per
    /// distinct text, in a fresh sandboxed interpreter, so expected values
    /// never pass through a fork-server whose memory later children
    /// inherit.
    fn judging(&self, tests: &[TestCase]) -> Vec<Judging> {
        let missing: Vec<PlannedText> = {
            let known = self.plans.lock().expect("plan cache lock");
            let mut missing: Vec<PlannedText> = tests
                .iter()
                .filter_map(planned_text)
                .filter(|key| !known.contains_key(key))
                .collect();
            missing.sort();
            missing.dedup();
            missing
        };
        if !missing.is_empty() {
            let planned = self.plan_in_fresh_interpreter(&missing).or_else(|why| {
                // One test broke the planner (its expected value would not
                // compute in time): plan the others one by one.
                tracing::debug!("planning {} tests together failed: {why}", missing.len());
                Ok::<_, String>(
                    missing
                        .chunks(1)
                        .map(|one| match self.plan_in_fresh_interpreter(one) {
                            Ok(mut plan) => plan.pop().flatten(),
                            Err(why) => {
                                tracing::warn!("cannot plan the test {:?}: {why}", one[0].1);
                                None
                            }
                        })
                        .collect(),
                )
            });
            if let Ok(planned) = planned {
                let mut known = self.plans.lock().expect("plan cache lock");
                for (key, plan) in missing.into_iter().zip(planned) {
                    known.insert(key, plan.map(Arc::from));
                }
            }
        }
        let known = self.plans.lock().expect("plan cache lock");
        tests
            .iter()
            .map(|test| match planned_text(test) {
                None => Judging::InChild,
                Some(key) => match known.get(&key).cloned().flatten() {
                    Some(checks) => Judging::Planned(checks),
                    None if self.unplanned_tests == UnplannedTests::RunInChild => Judging::InChild,
                    None => Judging::Refused,
                },
            })
            .collect()
    }

    fn plan_in_fresh_interpreter(
        &self,
        tests: &[PlannedText],
    ) -> Result<Vec<Option<Vec<TestPlan>>>, String> {
        #[derive(Deserialize)]
        struct Plans {
            plans: Vec<Option<Vec<TestPlan>>>,
        }
        let run = self.plan_runs.fetch_add(1, Ordering::Relaxed);
        let dir = self.scratch.path.join(format!("plan{run}"));
        let fd = spawn_scratch(&dir, self.landlock.as_deref())?;
        let mut job = Job::new(Op::Plan, &self.limits);
        job.tests = Some(
            tests
                .iter()
                .map(|(kind, code)| (kind.to_string(), code.clone()))
                .collect(),
        );
        let body =
            crate::server::run_oneshot_body(&self.launch, dir, fd, &mut job, STARTUP_DEADLINE)
                .map_err(|(status, detail)| format!("{status}: {detail}"))?;
        let out: Plans =
            serde_json::from_slice(&body).map_err(|e| format!("malformed plans: {e}"))?;
        if out.plans.len() == tests.len() {
            Ok(out.plans)
        } else {
            Err("one plan per test expected".into())
        }
    }

    /// Traces each request in a fresh interpreter of its own (same
    /// isolation, no fork-server), `parallel` at a time: the baseline of
    /// [`crate::speed`].
    pub(crate) fn trace_spawning(
        &self,
        requests: &[TraceRequest],
        parallel: usize,
    ) -> Vec<ExecResult> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let slots: Vec<std::sync::Mutex<Option<ExecResult>>> = requests
            .iter()
            .map(|_| std::sync::Mutex::new(None))
            .collect();
        std::thread::scope(|scope| {
            for worker in 0..parallel.max(1) {
                let (next, slots) = (&next, &slots);
                scope.spawn(move || loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= requests.len() {
                        break;
                    }
                    let dir = self.scratch.path.join(format!("spawn{worker}"));
                    let result = match spawn_scratch(&dir, self.landlock.as_deref()) {
                        Ok(fd) => {
                            let mut job = self.trace_job(&requests[i]);
                            let deadline = job.wall_cap() + crate::pool::WATCHDOG_SLACK;
                            crate::server::run_oneshot(&self.launch, dir, fd, &mut job, deadline)
                        }
                        Err(e) => ExecResult::failure(Status::InternalError, e),
                    };
                    *slots[i].lock().expect("slot lock") = Some(result);
                });
            }
        });
        slots
            .into_iter()
            .map(|s| {
                s.into_inner()
                    .expect("slot lock")
                    .expect("every slot filled")
            })
            .collect()
    }

    fn trace_job(&self, r: &TraceRequest) -> Job {
        let mut job = Job::new(Op::Trace, &self.limits);
        job.program = Some(r.program.clone());
        job.setup = r.setup.clone();
        job.invocations = vec![match &r.invocation {
            Invocation::Call { expr } => WireInvocation {
                call: Some(expr.clone()),
                ..WireInvocation::default()
            },
            Invocation::Stdin { stdin } => WireInvocation {
                stdin: Some(stdin.clone()),
                ..WireInvocation::default()
            },
        }];
        job
    }

    /// Runs a non-execution job (prepare, call expression) and decodes its
    /// body. `Ok(None)` when the job's own input made it fail (its child
    /// crashed or ran out of budget, or it was too large to send); an error
    /// when the sandbox did (`operation` names the job in the message).
    fn run_tool<T: for<'de> Deserialize<'de>>(
        &self,
        job: Job,
        operation: &'static str,
    ) -> Result<Option<T>, ExecutorError> {
        let failed = |detail: String| ExecutorError::Sandbox { operation, detail };
        let reply = match self.pool.submit(job).recv() {
            Ok(Ok(reply)) => reply,
            Ok(Err(JobFailure::Refused(why))) => {
                tracing::debug!("tool job refused: {why}");
                return Ok(None);
            }
            Ok(Err(JobFailure::Sandbox(why))) => return Err(failed(why)),
            Err(_) => return Err(failed("the executor worker vanished".into())),
        };
        let body = reply.bodies().and_then(|b| b.first().copied());
        match (reply.header.status, body) {
            (None, Some(body)) => serde_json::from_slice(body)
                .map(Some)
                .map_err(|e| failed(format!("malformed reply: {e}"))),
            (None, None) => Err(failed("a reply without a body".into())),
            (Some(status), _) => {
                tracing::debug!(
                    "tool job failed in its child: {status} {}",
                    reply.header.detail.as_deref().unwrap_or_default()
                );
                Ok(None)
            }
        }
    }

    /// Runs single-invocation jobs through the cache and the pool,
    /// preserving order. Misses that share a program run together, up to
    /// [`MAX_BATCH`] per child.
    fn run_cached(&self, jobs: Vec<Job>) -> Vec<ExecResult> {
        let n = jobs.len();
        let (keys, sizes): (Vec<_>, Vec<usize>) = jobs
            .iter()
            .map(|j| {
                let bytes = serde_json::to_vec(j).expect("jobs serialise");
                (key_of(&bytes), bytes.len())
            })
            .unzip();
        let mut results: Vec<Option<Arc<ExecResult>>> = vec![None; n];
        let mut first: HashMap<[u8; 32], usize> = HashMap::new();
        let mut owned = Vec::new();
        let mut waiting = Vec::new();
        for i in 0..n {
            if self.cache.enabled() {
                if first.contains_key(&keys[i]) {
                    continue;
                }
                first.insert(keys[i], i);
            }
            if sizes[i] > REQUEST_LIMIT {
                results[i] = Some(Arc::new(program_too_large(sizes[i])));
                continue;
            }
            match self.cache.claim(&keys[i]) {
                Claim::Hit(r) => results[i] = Some(r),
                Claim::Owner => owned.push(i),
                Claim::Wait => waiting.push(i),
            }
        }
        let batches: Vec<(Vec<usize>, Job, ReplyReceiver)> = batches(&jobs, &owned)
            .into_iter()
            .map(|group| {
                let invocations = group
                    .iter()
                    .map(|&i| jobs[i].invocations[0].clone())
                    .collect();
                let job = jobs[group[0]].with_invocations(invocations);
                let rx = self.pool.submit(job.clone());
                (group, job, rx)
            })
            .collect();
        for (group, job, rx) in batches {
            for (i, result) in group.into_iter().zip(self.collect(job, rx)) {
                let result = Arc::new(result);
                if result.status == Status::InternalError {
                    self.cache.abandon(&keys[i]);
                } else {
                    self.cache.fulfil(&keys[i], result.clone());
                }
                results[i] = Some(result);
            }
        }
        for i in waiting {
            results[i] = Some(match self.cache.wait(&keys[i]) {
                Some(r) => r,
                None => {
                    let rx = self.pool.submit(jobs[i].clone());
                    Arc::new(self.collect(jobs[i].clone(), rx).remove(0))
                }
            });
        }
        let mut results: Vec<Option<Arc<ExecResult>>> = (0..n)
            .map(|i| match &results[i] {
                Some(r) => Some(r.clone()),
                None => results[first[&keys[i]]].clone(),
            })
            .collect();
        drop(first);
        results
            .iter_mut()
            .map(|r| {
                let r = r.take().expect("every request has a result");
                Arc::try_unwrap(r).unwrap_or_else(|shared| ExecResult::clone(&shared))
            })
            .collect()
    }

    /// Waits for a batch's results, rerunning the invocations after the one
    /// a child stopped at until each has a result.
    fn collect(&self, mut job: Job, mut rx: ReplyReceiver) -> Vec<ExecResult> {
        let total = job.invocations.len();
        let mut out = Vec::with_capacity(total);
        loop {
            let left = job.invocations.len();
            let mut got = match rx.recv() {
                Ok(Ok(reply)) => reply.results(left),
                Ok(Err(failure)) => vec![ExecResult::failure(
                    Status::InternalError,
                    failure.to_string(),
                )],
                Err(_) => vec![ExecResult::failure(
                    Status::InternalError,
                    "the executor worker vanished",
                )],
            };
            if got.is_empty() {
                got.push(ExecResult::failure(
                    Status::InternalError,
                    "the server returned no result",
                ));
            }
            got.truncate(left);
            let taken = got.len();
            out.extend(got);
            if out.len() == total {
                return out;
            }
            job = job.with_invocations(job.invocations[taken..].to_vec());
            rx = self.pool.submit(job.clone());
        }
    }
}

/// Groups `owned` job indices by (op, program, setup, limits), in order of
/// first appearance, at most [`MAX_BATCH`] per group.
fn batches(jobs: &[Job], owned: &[usize]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut open: HashMap<Vec<u8>, usize> = HashMap::new();
    for &i in owned {
        let base =
            serde_json::to_vec(&jobs[i].with_invocations(Vec::new())).expect("jobs serialise");
        match open.get(&base) {
            Some(&g) if groups[g].len() < MAX_BATCH => groups[g].push(i),
            _ => {
                open.insert(base, groups.len());
                groups.push(vec![i]);
            }
        }
    }
    groups
}

/// The largest request sent to a server (its frame cap, less room for
/// the request id).
const REQUEST_LIMIT: usize = FRAME_CAP - 64;

/// The result for a program too large to send: the candidate's own
/// failure (like source the compiler refuses), not the executor's.
fn program_too_large(bytes: usize) -> ExecResult {
    let message = format!(
        "the program and its invocation take {bytes} bytes; at most {REQUEST_LIMIT} are accepted"
    );
    let mut result = ExecResult::failure(Status::SyntaxError, message.clone());
    result.exception = Some(ExceptionInfo {
        type_name: "ProgramTooLarge".into(),
        message,
        line: None,
    });
    result
}

/// The job that runs one invocation of `request`'s program for `test`.
fn test_job(
    request: &CheckRequest,
    test: &TestCase,
    invocation: WireInvocation,
    limits: &ExecLimits,
) -> Job {
    let mut limits = limits.clone();
    limits.compat_values = false;
    if let TestCase::Stdio { stdout, .. } = test {
        limits.stdout_bytes = limits.stdout_bytes.max(stdout.len() as u64 + STDOUT_MARGIN);
    }
    let mut job = Job::new(Op::Test, &limits);
    job.program = Some(request.program.clone());
    job.setup = request.setup.clone();
    job.invocations = vec![invocation];
    job
}

/// The planner's input for a test: its kind ("assert" or "script") and
/// its text.
type PlannedText = (&'static str, String);

/// The planner's input for `test`; `None` for a test it never plans.
fn planned_text(test: &TestCase) -> Option<PlannedText> {
    match test {
        TestCase::Assert { code } => Some(("assert", code.clone())),
        TestCase::Script { code } => Some(("script", code.clone())),
        TestCase::Stdio { .. } => None,
    }
}
