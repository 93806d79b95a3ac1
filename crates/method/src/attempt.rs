//! One attempt: the per-line EG-CFG loop (method.md §1, §3, §4, §7, §8).
//!
//! Two token streams grow side by side:
//!
//! * **U**, the unconditional stream: `head ++ marker ++ gen`, a fork of the
//!   task's prefilled head;
//! * **C**, the conditional stream: `head ++ signal ++ marker ++ gen`, built
//!   at a refresh by cutting C back to the head and prefilling only the new
//!   signal, the marker and the generated ids (never re-tokenised text).
//!
//! At every step the next token is chosen from U's logits alone (greedy) or,
//! when guidance is on and a signal exists, from the guided combination of
//! U's and C's logits; then both streams take the token in one batched
//! decode. At a refresh, `s` forks of U sample candidate continuations in
//! one batch; they are made executable, deduplicated, traced on the visible
//! tests, and rendered into the new signal.

use std::collections::HashMap;
use std::time::Instant;

use egcfg_engine::sampler::argmax;
use egcfg_engine::text::Utf8Stream;
use egcfg_engine::{Engine, EngineError, Logits, SeqId, SeqInput, Token};
use egcfg_executor::{Invocation, TraceRequest};
use egcfg_task::Task;

use crate::budget::{CancelCause, Control};
use crate::candidates::{sample_candidates, Deduper, SampleParams, SampledCandidate};
use crate::code_text::{
    code_after_last_opening_fence, count_newlines, ends_with_closing_fence, last_code_block,
    last_line, starts_target_def,
};
use crate::config::{derive_seed, AttemptSpec};
use crate::cost::{AttemptCost, Trajectory};
use crate::early_stop::EarlyStop;
use crate::error::MethodError;
use crate::guidance::{guided_choice, softmax, top_guided, top_probs};
use crate::options::DecodeOptions;
use crate::prompt::PromptParts;
use crate::record::{
    AttemptRecord, AttemptStop, ProbeRecord, RefreshRecord, TokenRecord, TraceRecord,
};
use crate::runner::{CodeRunner, RunnerError, TraceOutcome};
use crate::signal::{build_signal, SignalEntry};
use crate::solve::ProgressEvent;
use crate::streams::SeqGuard;

/// A task's prompt in one style, with its head already in the engine.
#[derive(Debug)]
pub struct StylePrompt {
    /// The rendered text parts.
    pub parts: PromptParts,
    /// The prefilled head sequence every attempt forks (owned by the solver).
    pub head_seq: SeqId,
    /// Tokens in the head.
    pub head_len: usize,
    /// The marker's tokens.
    pub marker_tokens: Vec<Token>,
}

/// A visible test that can be traced.
#[derive(Debug, Clone)]
pub struct TracedTest {
    /// Index among the task's visible tests.
    pub index: usize,
    /// How a candidate is run for it.
    pub invocation: Invocation,
    /// The invocation as shown in the signal.
    pub label: String,
}

/// What every attempt of a task shares.
pub struct AttemptEnv<'a> {
    /// The model.
    pub engine: &'a dyn Engine,
    /// The sandbox.
    pub runner: &'a dyn CodeRunner,
    /// The task (only its visible tests are used).
    pub task: &'a Task,
    /// The prompt of the attempt's style.
    pub prompt: &'a StylePrompt,
    /// The traceable visible tests.
    pub tests: &'a [TracedTest],
    /// Decoding options.
    pub options: &'a DecodeOptions,
    /// Budgets and cancellation.
    pub control: &'a Control,
    /// Where progress events go.
    pub progress: &'a (dyn Fn(ProgressEvent) + Sync),
    /// For stdin/stdout tasks, the call of the entry function (`solve()`)
    /// appended to every program that runs, the answer included.
    pub script_call: Option<String>,
}

impl AttemptEnv<'_> {
    /// `program` as it runs: with the entry call appended for script tasks.
    pub fn runnable(&self, program: &str) -> String {
        match &self.script_call {
            Some(call) => format!(
                "{}

{call}",
                program.trim_end()
            ),
            None => program.to_string(),
        }
    }
}

/// Where the signal stands while guidance is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SignalState {
    /// Not built since guidance turned on.
    NotBuilt,
    /// The last refresh produced no entry: no guidance until the next line.
    Empty,
    /// C holds a non-empty signal.
    Active,
}

/// The conditional stream.
struct CondStream<'e> {
    seq: SeqGuard<'e>,
    logits: Logits,
    /// head + signal + marker tokens.
    prompt_len: usize,
}

struct Attempt<'a> {
    env: &'a AttemptEnv<'a>,
    spec: AttemptSpec,
    gen: Vec<Token>,
    stream: Utf8Stream,
    /// The reply so far: the forced response prefix plus the decoded ids.
    text: String,
    guidance_on: bool,
    signal: SignalState,
    seen_lines: usize,
    refreshes: Vec<RefreshRecord>,
    tokens: Vec<TokenRecord>,
    cost: AttemptCost,
    trajectory: Trajectory,
    memo: HashMap<String, Vec<TraceOutcome>>,
    early: EarlyStop,
    early_program: Option<String>,
}

/// Run one attempt to its end and check its answer on the visible tests.
///
/// Never fails as a whole: an engine or executor error ends the attempt and
/// is returned next to the (partial) record, whose `error` names it.
pub fn run_attempt(
    env: &AttemptEnv<'_>,
    spec: AttemptSpec,
) -> (AttemptRecord, Option<MethodError>) {
    let started = Instant::now();
    let mut attempt = Attempt {
        env,
        spec,
        gen: Vec::new(),
        stream: Utf8Stream::new(),
        text: env.prompt.parts.response_prefix.clone(),
        guidance_on: false,
        signal: SignalState::NotBuilt,
        seen_lines: 0,
        refreshes: Vec::new(),
        tokens: Vec::new(),
        cost: AttemptCost::default(),
        trajectory: Trajectory {
            prompt_tokens: (env.prompt.head_len + env.prompt.marker_tokens.len()) as u64,
            s: spec.config.s as u64,
            ..Trajectory::default()
        },
        memo: HashMap::new(),
        early: EarlyStop::default(),
        early_program: None,
    };
    let outcome = attempt.decode_loop();
    let reply = attempt.text.clone();
    let code = env.runnable(
        &attempt
            .early_program
            .clone()
            .unwrap_or_else(|| last_code_block(&reply)),
    );
    let (stop, mut error) = match outcome {
        Ok(stop) => (stop, None),
        Err(MethodError::Engine(EngineError::ContextFull { .. })) => {
            (AttemptStop::ContextFull, None)
        }
        Err(e) => (AttemptStop::Eos, Some(e)),
    };
    let mut visible = Vec::new();
    let solved_elsewhere = matches!(
        stop,
        AttemptStop::Cancelled {
            cause: crate::budget::CancelCause::Solved
        }
    );
    if error.is_none() && !solved_elsewhere {
        let t = Instant::now();
        match env
            .runner
            .check(&code, env.task.setup.as_deref(), &env.task.visible, None)
        {
            Ok(v) => visible = v,
            Err(e) => error = Some(e.into()),
        }
        attempt.cost.times.execution_s += t.elapsed().as_secs_f64();
    }
    attempt.cost.reference = attempt.trajectory.reference_cost();
    attempt.cost.times.total_s = started.elapsed().as_secs_f64();
    let record = AttemptRecord {
        spec,
        name: spec.name(),
        reply,
        code,
        stop,
        refreshes: attempt.refreshes,
        tokens: attempt.tokens,
        visible,
        cost: attempt.cost,
        error: error.as_ref().map(ToString::to_string),
    };
    (record, error)
}

impl<'a> Attempt<'a> {
    fn engine(&self) -> &'a dyn Engine {
        self.env.engine
    }

    /// Decode several tokens into one sequence, counted as prefill; `None`
    /// (with nothing decoded) when the token budget cannot pay for them all.
    fn prefill(&mut self, seq: SeqId, tokens: Vec<Token>) -> Result<Option<Logits>, MethodError> {
        let t = Instant::now();
        let n = tokens.len() as u64;
        let control = self.env.control;
        let granted = control.reserve(n);
        if granted < n {
            control.refund(granted);
            control.exhaust();
            return Ok(None);
        }
        let logits = match self.engine().decode(&[SeqInput { seq, tokens }]) {
            Ok(mut rows) => rows.remove(0),
            Err(e) => {
                control.refund(n);
                return Err(e.into());
            }
        };
        self.cost.prefill_tokens += n;
        self.cost.times.prefill_s += t.elapsed().as_secs_f64();
        Ok(Some(logits))
    }

    fn decode_loop(&mut self) -> Result<AttemptStop, MethodError> {
        let engine = self.engine();
        let prompt = self.env.prompt;
        let options = self.env.options;
        let n_ctx = engine.info().n_ctx;
        let eos = engine.info().eos_tokens.clone();
        let u = SeqGuard::new(engine, engine.fork(prompt.head_seq)?);
        let Some(mut p_logits) = self.prefill(u.id(), prompt.marker_tokens.clone())? else {
            return Ok(AttemptStop::Cancelled {
                cause: CancelCause::TokenBudget,
            });
        };
        let mut cond: Option<CondStream<'a>> = None;
        let guiding = self.spec.gamma > 0.0;
        loop {
            if let Some(cause) = self.env.control.stop_cause(self.spec.index) {
                return Ok(AttemptStop::Cancelled { cause });
            }
            let reply = self.text.clone();
            if guiding
                && !self.guidance_on
                && starts_target_def(last_line(&reply), &self.env.task.entry_point)
            {
                self.guidance_on = true;
                self.signal = SignalState::NotBuilt;
            }
            if guiding && self.guidance_on {
                let line = count_newlines(code_after_last_opening_fence(&reply));
                let new_line = line > self.seen_lines;
                if new_line || self.signal == SignalState::NotBuilt {
                    self.seen_lines = self.seen_lines.max(line);
                }
                let due = match self.signal {
                    SignalState::NotBuilt => true,
                    SignalState::Empty => new_line,
                    SignalState::Active => new_line && line.is_multiple_of(self.spec.config.k),
                };
                if due {
                    if let Some(program) = self.refresh(&u, &p_logits, &mut cond, line)? {
                        self.early_program = Some(program);
                        return Ok(AttemptStop::EarlyStop);
                    }
                } else if self.signal == SignalState::Empty {
                    self.trajectory
                        .empty_signal_steps
                        .push((self.gen.len() as u64, self.env.tests.len() as u64));
                }
            }
            let guided_stream = match (&cond, self.signal) {
                (Some(c), SignalState::Active) if self.guidance_on => Some(c),
                _ => None,
            };
            let step = self.gen.len();
            let record_top = options.record_top;
            let (token, record) = match guided_stream {
                Some(c) => {
                    let choice =
                        guided_choice(&p_logits, &c.logits, self.spec.gamma, options.top_k);
                    self.trajectory
                        .guided_contexts
                        .push((c.prompt_len + step) as u64);
                    let record = TokenRecord {
                        step,
                        token: choice.token,
                        piece: String::new(),
                        guided: true,
                        argmax_p: argmax(&p_logits),
                        top_p: top_probs(&choice.p, record_top),
                        top_pc: top_probs(&choice.p_c, record_top),
                        top_guided: top_guided(&choice.scores, record_top),
                    };
                    (choice.token, record)
                }
                None => {
                    let token = argmax(&p_logits);
                    let top_p = if record_top > 0 {
                        top_probs(&softmax(&p_logits), record_top)
                    } else {
                        Vec::new()
                    };
                    let record = TokenRecord {
                        step,
                        token,
                        piece: String::new(),
                        guided: false,
                        argmax_p: token,
                        top_p,
                        top_pc: Vec::new(),
                        top_guided: Vec::new(),
                    };
                    (token, record)
                }
            };
            self.trajectory.steps += 1;
            let piece = engine.token_bytes(token)?;
            self.tokens.push(TokenRecord {
                piece: String::from_utf8_lossy(&piece).into_owned(),
                ..record
            });
            if eos.contains(&token) {
                return Ok(AttemptStop::Eos);
            }
            self.gen.push(token);
            let completed = self.stream.push(&piece);
            self.text.push_str(&completed);
            if ends_with_closing_fence(&self.text) {
                return Ok(AttemptStop::Fence);
            }
            if self.gen.len() >= options.max_new_tokens {
                return Ok(AttemptStop::TokenLimit);
            }
            let u_len = prompt.head_len + prompt.marker_tokens.len() + self.gen.len();
            let c_len = guided_stream.map_or(0, |c| c.prompt_len + self.gen.len());
            if u_len.max(c_len) > n_ctx {
                return Ok(AttemptStop::ContextFull);
            }
            let t = Instant::now();
            let mut inputs = vec![SeqInput {
                seq: u.id(),
                tokens: vec![token],
            }];
            if let Some(c) = guided_stream {
                inputs.push(SeqInput {
                    seq: c.seq.id(),
                    tokens: vec![token],
                });
            }
            let mut logits = engine.decode(&inputs)?.into_iter();
            let n = inputs.len() as u64;
            self.cost.decode_tokens += n;
            self.env.control.charge(n);
            self.cost.times.guided_decode_s += t.elapsed().as_secs_f64();
            p_logits = logits.next().expect("one logits row per input");
            if let (Some(c), Some(l)) = (cond.as_mut(), logits.next()) {
                c.logits = l;
            }
        }
    }

    /// Rebuild the signal at `line`. Returns the early-stop program when the
    /// rule fires.
    fn refresh(
        &mut self,
        u: &SeqGuard<'a>,
        p_logits: &Logits,
        cond: &mut Option<CondStream<'a>>,
        line: usize,
    ) -> Result<Option<String>, MethodError> {
        let prefix = code_after_last_opening_fence(&self.text).to_string();
        let index = self.refreshes.len() as u64;
        let mut dedup = Deduper::default();
        self.sample_round(&mut dedup, u.id(), p_logits, &prefix, [index, 0], 1.0)?;
        if self.env.options.top_up && dedup.unique.len() < self.spec.config.s {
            self.sample_round(&mut dedup, u.id(), p_logits, &prefix, [index, 1], 1.2)?;
        }
        let traces = self.trace_all(&dedup.unique)?;
        let entries: Vec<SignalEntry> = traces
            .iter()
            .map(|t| SignalEntry {
                candidate: t.candidate,
                test: t.test,
                program: dedup.unique[t.candidate].clone(),
                invocation: t.invocation.clone(),
                trace: t.text.clone(),
            })
            .collect();
        let signal = build_signal(self.engine(), &entries, self.signal_cap())?;
        let mut record = RefreshRecord {
            step: self.gen.len(),
            line,
            prefix: prefix.clone(),
            candidates: dedup.records.clone(),
            unique: dedup.unique.clone(),
            traces,
            signal: signal.as_ref().map(|s| s.text.clone()),
            signal_tokens: signal.as_ref().map_or(0, |s| s.tokens.len()),
            entries_dropped: signal.as_ref().map_or(entries.len(), |s| s.entries_dropped),
            probe: None,
        };
        self.trajectory.refreshes.push((
            self.gen.len() as u64,
            dedup.unique.len() as u64,
            self.env.tests.len() as u64,
        ));
        match signal {
            Some(signal) => {
                let engine = self.engine();
                let prompt = self.env.prompt;
                let seq = match cond.take() {
                    Some(c) => {
                        engine.truncate(c.seq.id(), prompt.head_len)?;
                        c.seq
                    }
                    None => SeqGuard::new(engine, engine.fork(prompt.head_seq)?),
                };
                let prompt_len = prompt.head_len + signal.tokens.len() + prompt.marker_tokens.len();
                let mut tokens = signal.tokens;
                tokens.extend_from_slice(&prompt.marker_tokens);
                tokens.extend_from_slice(&self.gen);
                let Some(logits) = self.prefill(seq.id(), tokens)? else {
                    // The budget cannot pay for the signal: the attempt
                    // stops at its next check, without it.
                    self.signal = SignalState::Empty;
                    return Ok(None);
                };
                *cond = Some(CondStream {
                    seq,
                    logits,
                    prompt_len,
                });
                self.signal = SignalState::Active;
            }
            None => self.signal = SignalState::Empty,
        }
        let decision = if self.env.options.early_stop {
            self.early.unconditional.observe(&dedup.unique);
            if let (true, Some(c)) = (self.early.unconditional.is_pending(), cond.as_ref()) {
                if self.signal == SignalState::Active {
                    let mut probe = Deduper::default();
                    let seq = c.seq.id();
                    let logits = c.logits.clone();
                    self.sample_round(&mut probe, seq, &logits, &prefix, [index, 2], 1.0)?;
                    self.early.conditional.observe(&probe.unique);
                    record.probe = Some(ProbeRecord {
                        candidates: probe.records,
                        unique: probe.unique,
                    });
                }
            }
            self.early.decision(self.spec.gamma == 1.0)
        } else {
            None
        };
        (self.env.progress)(ProgressEvent::Refresh {
            index: self.spec.index,
            line,
            unique: record.unique.len(),
            signal_tokens: record.signal_tokens,
        });
        self.refreshes.push(record);
        Ok(decision)
    }

    /// Sample one round of candidates from `parent` and add it to `dedup`.
    fn sample_round(
        &mut self,
        dedup: &mut Deduper,
        parent: SeqId,
        parent_logits: &Logits,
        prefix: &str,
        path: [u64; 2],
        temperature_scale: f32,
    ) -> Result<(), MethodError> {
        let config = self.spec.config;
        let engine = self.engine();
        let room = engine.info().n_ctx.saturating_sub(engine.len(parent)? + 1);
        let n = if path[1] == 1 { 2 * config.s } else { config.s };
        // Reserve the batch's tokens before sampling (the sampler charges
        // nothing while it runs), and shorten the candidates to what the
        // budget can pay for.
        let control = self.env.control;
        let wanted = self.env.options.candidate_max_tokens.min(room);
        let granted = control.reserve((n * wanted) as u64);
        let params = SampleParams {
            n,
            temperature: config.t * temperature_scale,
            horizon: config.d,
            max_tokens: usize::try_from(granted).unwrap_or(usize::MAX) / n.max(1),
            seed: derive_seed(self.spec.seed, &path),
        };
        let samples: Vec<SampledCandidate> = if params.max_tokens == 0 {
            control.refund(granted);
            if wanted > 0 {
                control.exhaust();
            }
            Vec::new()
        } else {
            let index = self.spec.index;
            // The batch is paid for: only other causes cut it short.
            let cancelled = || {
                control
                    .stop_cause(index)
                    .is_some_and(|cause| cause != CancelCause::TokenBudget)
            };
            let sampled = sample_candidates(engine, parent, parent_logits, &params, &cancelled);
            let (samples, cost) = match sampled {
                Ok(sampled) => sampled,
                Err(e) => {
                    control.refund(granted);
                    return Err(e);
                }
            };
            match granted.checked_sub(cost.decoded) {
                Some(unused) => control.refund(unused),
                None => control.charge(cost.decoded - granted),
            }
            self.cost.candidate_tokens += cost.decoded;
            self.cost.times.sampling_s += cost.seconds;
            samples
        };
        let t = Instant::now();
        let before = dedup.records.len();
        dedup.add_round(
            path[1] as usize,
            prefix,
            &samples,
            config.d,
            self.env.runner,
            config.s,
        )?;
        self.cost.prepared += dedup.records[before..]
            .iter()
            .filter(|r| r.program.is_some())
            .count() as u64;
        self.cost.times.execution_s += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// Trace every program on every traceable test (memoised per attempt),
    /// ordered by candidate then test.
    fn trace_all(&mut self, programs: &[String]) -> Result<Vec<TraceRecord>, MethodError> {
        let tests = self.env.tests;
        if tests.is_empty() {
            return Ok(Vec::new());
        }
        let t = Instant::now();
        let fresh: Vec<&String> = programs
            .iter()
            .filter(|p| !self.memo.contains_key(*p))
            .collect();
        let jobs: Vec<TraceRequest> = fresh
            .iter()
            .flat_map(|p| {
                tests.iter().map(|test| TraceRequest {
                    program: self.env.runnable(p),
                    setup: self.env.task.setup.clone(),
                    invocation: test.invocation.clone(),
                })
            })
            .collect();
        if !jobs.is_empty() {
            let options = self.env.options;
            let outcomes =
                self.env
                    .runner
                    .trace(&jobs, options.trace_format, &options.render_limits)?;
            if outcomes.len() != jobs.len() {
                return Err(RunnerError(format!(
                    "the executor answered {} of {} trace requests",
                    outcomes.len(),
                    jobs.len()
                ))
                .into());
            }
            self.cost.executions += jobs.len() as u64;
            for (program, chunk) in fresh.iter().zip(outcomes.chunks(tests.len())) {
                self.memo.insert((*program).clone(), chunk.to_vec());
            }
        }
        let mut records = Vec::new();
        for (candidate, program) in programs.iter().enumerate() {
            for (test, outcome) in tests.iter().zip(&self.memo[program]) {
                records.push(TraceRecord {
                    candidate,
                    test: test.index,
                    invocation: test.label.clone(),
                    status: outcome.status.clone(),
                    text: outcome.text.clone(),
                });
            }
        }
        self.cost.times.execution_s += t.elapsed().as_secs_f64();
        Ok(records)
    }

    /// The largest signal that still leaves room for the answer.
    fn signal_cap(&self) -> usize {
        let prompt = self.env.prompt;
        let fixed =
            prompt.head_len + prompt.marker_tokens.len() + self.env.options.max_new_tokens + 1;
        self.env
            .options
            .signal_max_tokens
            .min(self.engine().info().n_ctx.saturating_sub(fixed))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::config::PromptStyle;
    use crate::options::SolveOptions;
    use crate::prompt::build_prompt;
    use crate::solve::{solve, SolveOutcome};
    use crate::testing::*;

    /// Solves the add-one task with `options`, reporting no progress: the
    /// call every test here makes.
    fn solve_add_one(
        engine: &Arc<ScriptedEngine>,
        runner: Arc<FakeRunner>,
        options: &SolveOptions,
    ) -> Result<SolveOutcome, MethodError> {
        solve(&add_one_task(), engine.clone(), runner, options, &|_| {})
    }

    /// [`solve_add_one`] with the one configuration `(k, d)` and the one
    /// `gamma`, which must not fail.
    fn run(
        engine: &Arc<ScriptedEngine>,
        runner: Arc<FakeRunner>,
        k: usize,
        d: u32,
        gamma: f32,
    ) -> SolveOutcome {
        solve_add_one(engine, runner, &single_options(config(k, d), vec![gamma])).unwrap()
    }

    fn body(reply: &str) -> String {
        crate::code_text::last_code_block(reply)
    }

    #[test]
    fn gamma_zero_is_plain_greedy_without_signals() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let runner = adds_one_runner();
        let out = run(&engine, runner.clone(), 1, 2, 0.0);
        let a = &out.attempts[0];
        assert_eq!(a.code, body(WRONG));
        assert!(a.refreshes.is_empty());
        assert!(runner.traced.lock().unwrap().is_empty());
        assert!(a.tokens.iter().all(|t| !t.guided));
        assert_eq!(a.stop, AttemptStop::Fence);
        assert!(!out.passed);
        assert_eq!(a.visible.len(), 2);
        // Only U is decoded: one input per single-token step.
        assert!(engine
            .calls()
            .iter()
            .filter(|c| c[0].appended.len() == 1)
            .all(|c| c.len() == 1));
        assert_eq!(
            a.cost.decode_tokens as usize,
            a.tokens.len() - 1,
            "the closing fence is not decoded"
        );
    }

    #[test]
    fn gamma_one_follows_the_conditional_stream_alone() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let out = run(&engine, adds_one_runner(), 1, 1, 1.0);
        let a = &out.attempts[0];
        assert_eq!(a.code, body(RIGHT));
        assert!(out.passed);
        let first_guided = a.tokens.iter().position(|t| t.guided).unwrap();
        assert_eq!(
            first_guided,
            "def add_one(".len(),
            "guidance starts right after `def NAME(`"
        );
        assert!(a.tokens[first_guided..]
            .iter()
            .all(|t| t.guided && t.top_p.is_empty()));
        assert!(!a.tokens[first_guided].top_pc.is_empty());
    }

    #[test]
    fn gamma_half_keeps_the_plain_answer_and_three_flips_it() {
        // Logits 40 vs 0: log P ≈ −40 for the informed token, but ε = 1e-8
        // caps the ratio at ≈ 18.4 nats, so γ = 0.5 cannot overturn P and
        // γ = 3 does (method.md §8 arithmetic).
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        assert_eq!(run(&engine, adds_one_runner(), 1, 1, 0.5).code, body(WRONG));
        assert_eq!(run(&engine, adds_one_runner(), 1, 1, 3.0).code, body(RIGHT));
    }

    #[test]
    fn refresh_schedule_follows_new_lines_and_k() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let lines_steps = |k| {
            let out = run(&engine, adds_one_runner(), k, 1, 1.0);
            out.attempts[0]
                .refreshes
                .iter()
                .map(|r| (r.line, r.step))
                .collect::<Vec<_>>()
        };
        // "def add_one(" = 12 tokens; "x):\n" = 4; "    y = x + 1\n" = 1 + 10;
        // "    return y\n" = 1 + 9 (four spaces are one token here).
        assert_eq!(lines_steps(1), vec![(0, 12), (1, 16), (2, 27), (3, 37)]);
        assert_eq!(lines_steps(2), vec![(0, 12), (2, 27)]);
        assert_eq!(lines_steps(3), vec![(0, 12), (3, 37)]);
    }

    #[test]
    fn refresh_counts_newlines_in_text_not_tokens() {
        // ")\n\n" is one token holding two newlines: the count jumps from 1
        // to 3, so with k = 3 the refresh fires right after that token (a
        // token count would say 2).
        const PLAIN: &str = "```python\ndef add_one(x):\n    return (x + 2)\n\n# done\n```";
        const INFORMED: &str = "```python\ndef add_one(x):\n    return (x + 1)\n\n# done\n```";
        let engine = Arc::new(ScriptedEngine::new(two_minds(PLAIN, INFORMED)));
        let out = run(&engine, adds_one_runner(), 3, 1, 1.0);
        let lines: Vec<usize> = out.attempts[0].refreshes.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![0, 3]);
        assert!(out.attempts[0].tokens.iter().any(|t| t.piece == ")\n\n"));
    }

    #[test]
    fn splicing_is_exact_at_every_step() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let out = run(&engine, adds_one_runner(), 1, 1, 3.0);
        let a = &out.attempts[0];
        let parts = build_prompt(
            engine.as_ref(),
            &add_one_task(),
            PromptStyle::Instruct,
            true,
        )
        .unwrap();
        let head = engine.tokenize(&parts.head, true).unwrap();
        let marker = engine.tokenize(&parts.marker, true).unwrap();
        let gen: Vec<Token> = a.tokens.iter().map(|t| t.token).collect();
        let signals: Vec<Vec<Token>> = a
            .refreshes
            .iter()
            .filter_map(|r| r.signal.as_ref())
            .map(|s| engine.tokenize(s, false).unwrap())
            .collect();
        assert_eq!(signals.len(), 4);
        let calls = engine.calls();
        assert_eq!(calls[0][0].appended, head, "the head is prefilled once");
        let u = calls
            .iter()
            .flatten()
            .find(|i| i.appended == marker)
            .unwrap()
            .seq;
        let mut c_prefills = 0;
        let mut in_force: Option<&Vec<Token>> = None;
        for call in &calls {
            for input in call {
                if input.seq == u {
                    let g = input.full.len() - head.len() - marker.len();
                    let expect: Vec<Token> = [&head[..], &marker[..], &gen[..g]].concat();
                    assert_eq!(input.full, expect, "U = head ++ marker ++ gen");
                } else if input.full.starts_with(&head)
                    && input.full.len() > head.len() + marker.len()
                {
                    let sig_start = &input.full[head.len()..];
                    if let Some(s) = signals
                        .iter()
                        .find(|s| sig_start.starts_with(s) && input.appended.len() > 1)
                    {
                        in_force = Some(s);
                        c_prefills += 1;
                        assert!(
                            input.appended.starts_with(s),
                            "a refresh prefills only signal + marker + gen"
                        );
                    }
                    let Some(sig) = in_force else { continue };
                    if !input.full[head.len()..].starts_with(sig) {
                        continue; // a candidate fork of U
                    }
                    let g = input.full.len() - head.len() - sig.len() - marker.len();
                    let expect: Vec<Token> = [&head[..], &sig[..], &marker[..], &gen[..g]].concat();
                    assert_eq!(input.full, expect, "C = head ++ signal ++ marker ++ gen");
                }
            }
        }
        assert_eq!(c_prefills, 4);
        // Every guided step is one batched decode of U and C with the same token.
        let guided_steps = a.tokens.iter().filter(|t| t.guided).count();
        let paired = calls
            .iter()
            .filter(|c| c.len() == 2 && c[0].seq == u && c.iter().all(|i| i.appended.len() == 1))
            .filter(|c| c[0].appended == c[1].appended)
            .count();
        assert_eq!(
            paired,
            guided_steps - 1,
            "the final fence token is not decoded"
        );
        assert_eq!(engine.live(), 0, "every sequence is freed");
    }

    #[test]
    fn empty_signal_means_no_guidance_and_a_retry_at_every_new_line() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let runner = FakeRunner::refusing(|p| p.contains("x + 1"));
        let out = run(&engine, runner.clone(), 3, 1, 3.0);
        let a = &out.attempts[0];
        assert_eq!(a.code, body(WRONG));
        assert!(a.tokens.iter().all(|t| !t.guided));
        // k = 3, but an empty signal is retried at the next new line.
        let lines: Vec<usize> = a.refreshes.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![0, 1, 2, 3]);
        assert!(a
            .refreshes
            .iter()
            .all(|r| r.signal.is_none() && r.unique.is_empty()));
        assert!(runner.traced.lock().unwrap().is_empty());
        assert_eq!(
            a.cost.prefill_tokens as usize,
            engine
                .tokenize("<|im_end|>\n<|im_start|>assistant\n```python\n", true)
                .unwrap()
                .len()
        );
        // The reference would resample on every one of the other guided-span steps.
        let span = a.tokens.len() - 12;
        assert_eq!(a.cost.reference.refreshes as usize, span);
    }

    #[test]
    fn early_stop_returns_the_pending_program() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(RIGHT, RIGHT)));
        let mut options = single_options(config(1, 8), vec![0.5]);
        options.decode.early_stop = true;
        let out = solve_add_one(&engine, adds_one_runner(), &options).unwrap();
        let a = &out.attempts[0];
        assert_eq!(a.stop, AttemptStop::EarlyStop);
        assert_eq!(
            a.refreshes.len(),
            4,
            "both counters reach 4 at the fourth refresh"
        );
        assert!(a.refreshes.iter().all(|r| r.probe.is_some()));
        assert_eq!(a.code, "def add_one(x):\n    y = x + 1\n    return y");
        assert!(out.passed);
    }

    #[test]
    fn candidates_are_traced_once_per_program_and_test() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let runner = adds_one_runner();
        let out = run(&engine, runner.clone(), 1, 8, 1.0);
        let a = &out.attempts[0];
        let traced = runner.traced.lock().unwrap();
        let mut programs: Vec<&String> = traced.iter().map(|j| &j.program).collect();
        programs.dedup();
        let unique_total: std::collections::BTreeSet<&String> =
            a.refreshes.iter().flat_map(|r| &r.unique).collect();
        assert_eq!(
            programs.len(),
            unique_total.len(),
            "memoised across refreshes"
        );
        assert_eq!(traced.len(), 2 * unique_total.len());
        assert_eq!(a.cost.executions as usize, traced.len());
        let first = &a.refreshes[0];
        assert_eq!(first.traces.len(), 2 * first.unique.len());
        assert_eq!(first.traces[0].invocation, "add_one(1)");
        assert_eq!(first.traces[1].test, 1);
    }

    #[test]
    fn top_up_samples_twice_as_many_when_candidates_collapse() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let mut options = single_options(config(1, 1), vec![1.0]);
        options.decode.top_up = true;
        let out = solve_add_one(&engine, adds_one_runner(), &options).unwrap();
        let first = &out.attempts[0].refreshes[0];
        let rounds: Vec<usize> = first.candidates.iter().map(|c| c.round).collect();
        assert_eq!(
            rounds,
            vec![0, 0, 1, 1, 1, 1],
            "s = 2 identical samples, then 2s more"
        );
        assert_eq!(first.unique.len(), 1);
    }

    #[test]
    fn a_prompt_that_cannot_fit_is_refused_up_front() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_n_ctx(600));
        let options = single_options(config(1, 1), vec![1.0]);
        let err = solve_add_one(&engine, adds_one_runner(), &options).unwrap_err();
        assert!(
            matches!(err, MethodError::PromptTooLong { n_ctx: 600, .. }),
            "{err}"
        );
    }

    #[test]
    fn the_context_suggested_for_a_long_prompt_fits_every_style() {
        let mut options = single_options(config(1, 1), vec![1.0]);
        let mut long_code = options.grid.agents[0].clone();
        long_code.style = PromptStyle::LongCode;
        options.grid.agents.push(long_code);
        let small = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_n_ctx(600));
        let err = solve_add_one(&small, adds_one_runner(), &options).unwrap_err();
        let MethodError::PromptTooLong { suggested_ctx, .. } = err else {
            panic!("{err}");
        };
        assert!(err
            .to_string()
            .contains(&format!("a context of {suggested_ctx} tokens")));

        let enough =
            Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_n_ctx(suggested_ctx));
        let out = solve_add_one(&enough, adds_one_runner(), &options).unwrap();
        assert_eq!(out.attempts.len(), 2, "both styles ran");
    }

    #[test]
    fn no_token_budget_is_overshot_by_more_than_one_decode_step() {
        for extra in [5, 20, 40, 80, 120, 200, 400] {
            let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
            let mut options = single_options(config(1, 2), vec![3.0]);
            let marker = engine
                .tokenize("<|im_end|>\n<|im_start|>assistant\n```python\n", true)
                .unwrap()
                .len() as u64;
            let head = build_prompt(
                engine.as_ref(),
                &add_one_task(),
                PromptStyle::Instruct,
                true,
            )
            .unwrap()
            .head;
            let head = engine.tokenize(&head, true).unwrap().len() as u64;
            let budget = head + marker + extra;
            options.budget.max_tokens = Some(budget);

            let out = solve_add_one(&engine, adds_one_runner(), &options).unwrap();

            // One decode step feeds both streams: two tokens.
            assert!(
                out.cost.forward_tokens <= budget + 2,
                "budget {budget}: spent {}",
                out.cost.forward_tokens
            );
        }
    }

    #[test]
    fn costs_add_up() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let out = run(&engine, adds_one_runner(), 2, 1, 3.0);
        let a = &out.attempts[0];
        let marker = engine
            .tokenize("<|im_end|>\n<|im_start|>assistant\n```python\n", true)
            .unwrap()
            .len() as u64;
        let signal_prefill: u64 = a
            .refreshes
            .iter()
            .filter_map(|r| {
                r.signal
                    .as_ref()
                    .map(|_| r.signal_tokens as u64 + marker + r.step as u64)
            })
            .sum();
        assert_eq!(a.cost.prefill_tokens, marker + signal_prefill);
        let guided = a.tokens.iter().filter(|t| t.guided).count() as u64;
        let steps = a.tokens.len() as u64;
        assert_eq!(a.cost.decode_tokens, (steps - 1) + (guided - 1));
        assert!(a.cost.reference.forward_tokens() > a.cost.forward_tokens());
        assert_eq!(
            out.cost.forward_tokens,
            out.cost.head_prefill_tokens + a.cost.forward_tokens()
        );
    }
}
