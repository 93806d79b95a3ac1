//! Test doubles: a scripted engine with fixed logits and a runner that runs
//! nothing. Only compiled for tests.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use egcfg_engine::sampler::Sampler;
use egcfg_engine::{
    newlines, top_k_logprobs, ChatMessage, Continuation, ContinueRequest, ContinueStop, Engine,
    EngineError, Logits, ModelInfo, Role, SeqId, SeqInput, Token, TokenLogprob, Usage,
};
use egcfg_task::TestCase;

use egcfg_executor::render::{RenderLimits, TraceFormat};
use egcfg_executor::TraceRequest;

use crate::runner::{CodeRunner, RunnerError, TestVerdict, TraceOutcome};

/// Special and multi-byte tokens after the 256 byte tokens.
pub const IM_START: Token = 256;
/// End of turn (an EOS).
pub const IM_END: Token = 257;
/// End of text (an EOS).
pub const END_OF_TEXT: Token = 258;
const SPECIALS: [(&str, Token); 3] = [
    ("<|im_start|>", IM_START),
    ("<|im_end|>", IM_END),
    ("<|endoftext|>", END_OF_TEXT),
];
/// Multi-byte ordinary tokens, so one token can hold several newlines.
const MERGES: [(&str, Token); 3] = [("```", 259), (")\n\n", 260), ("    ", 261)];
const N_VOCAB: usize = 262;

type Policy = dyn Fn(&str) -> Option<String> + Send + Sync;

#[derive(Default)]
struct State {
    next: u64,
    seqs: HashMap<SeqId, Vec<Token>>,
    calls: Vec<Vec<DecodeInput>>,
    /// What each thread's calls cost, as a served model would count them.
    usage: HashMap<std::thread::ThreadId, Usage>,
}

/// One input of a logged decode call.
#[derive(Debug, Clone)]
pub struct DecodeInput {
    /// The sequence.
    pub seq: SeqId,
    /// The tokens appended.
    pub appended: Vec<Token>,
    /// The sequence's whole content after the append.
    pub full: Vec<Token>,
}

/// A deterministic fake model over a byte-level vocabulary.
///
/// The policy sees the whole text of a sequence and names the reply it
/// wants (the text after the last `<|im_start|>assistant\n`); the engine
/// gives the token that continues that reply a logit of `strength` and every
/// other token 0. When the reply is complete, or has left the wanted text,
/// or the policy returns `None`, `<|im_end|>` gets the boost.
pub struct ScriptedEngine {
    info: ModelInfo,
    policy: Box<Policy>,
    strength: f32,
    max_seqs: usize,
    state: Mutex<State>,
    /// Like a served model: only top-k lists of this size, no logits.
    top_k_only: Option<usize>,
    /// Decode calls served so far.
    pub decodes: AtomicUsize,
    /// Top-k and continuation calls so far: a served model's requests.
    pub requests: AtomicUsize,
    /// [`Engine::start_work`] calls so far.
    pub work_started: AtomicUsize,
    /// [`Engine::tokenize`] calls so far: a served model's requests too.
    pub tokenizations: AtomicUsize,
}

impl ScriptedEngine {
    /// An engine following `policy`, with a strong (near-greedy) preference.
    pub fn new(policy: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        ScriptedEngine {
            info: ModelInfo {
                name: "scripted".into(),
                n_vocab: N_VOCAB,
                n_ctx: 16_384,
                eos_tokens: vec![IM_END, END_OF_TEXT],
                chat_template: Some("chatml".into()),
            },
            policy: Box::new(policy),
            strength: 40.0,
            max_seqs: 64,
            state: Mutex::new(State::default()),
            top_k_only: None,
            decodes: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            work_started: AtomicUsize::new(0),
            tokenizations: AtomicUsize::new(0),
        }
    }

    /// Behave like a served model: refuse full logits, give top-`k` lists
    /// and whole continuations (each logged as a call whose `appended` is
    /// the continuation).
    pub fn with_top_k_only(mut self, k: usize) -> Self {
        self.top_k_only = Some(k);
        self
    }

    /// Set the logit of the preferred token (lower = more varied samples).
    pub fn with_strength(mut self, strength: f32) -> Self {
        self.strength = strength;
        self
    }

    /// Set the context size.
    pub fn with_n_ctx(mut self, n_ctx: usize) -> Self {
        self.info.n_ctx = n_ctx;
        self
    }

    /// Limit the number of live sequences.
    pub fn with_max_seqs(mut self, n: usize) -> Self {
        self.max_seqs = n;
        self
    }

    /// Every decode call so far, with its inputs.
    pub fn calls(&self) -> Vec<Vec<DecodeInput>> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Number of live sequences.
    pub fn live(&self) -> usize {
        self.state.lock().unwrap().seqs.len()
    }

    /// What the calls of every thread cost together.
    pub fn total_usage(&self) -> Usage {
        crate::cost::usage_sum(self.state.lock().unwrap().usage.values())
    }

    /// Books `spent` to the calling thread, as [`Engine::thread_usage`]
    /// reports it.
    fn charge_thread(&self, spent: Usage) {
        let mut st = self.state.lock().unwrap();
        let usage = st.usage.entry(std::thread::current().id()).or_default();
        *usage = crate::cost::usage_sum([&*usage, &spent]);
    }

    /// Text of a token list (specials spelled out).
    pub fn text_of(&self, tokens: &[Token]) -> String {
        let bytes: Vec<u8> = tokens.iter().flat_map(|&t| piece(t)).collect();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn logits_for(&self, tokens: &[Token]) -> Logits {
        let text = self.text_of(tokens);
        let mut logits = vec![0.0f32; N_VOCAB];
        let reply = text.rsplit_once("<|im_start|>assistant\n").map(|(_, r)| r);
        let next = match (reply, (self.policy)(&text)) {
            (Some(so_far), Some(wanted))
                if wanted.len() > so_far.len() && wanted.starts_with(so_far) =>
            {
                longest_token(&wanted[so_far.len()..])
            }
            _ => IM_END,
        };
        logits[next as usize] = self.strength;
        logits.into()
    }
}

fn piece(token: Token) -> Vec<u8> {
    if let Some((s, _)) = SPECIALS
        .iter()
        .chain(MERGES.iter())
        .find(|(_, t)| *t == token)
    {
        return s.as_bytes().to_vec();
    }
    vec![token as u8]
}

fn longest_token(text: &str) -> Token {
    MERGES
        .iter()
        .find(|(s, _)| text.starts_with(s))
        .map_or(text.as_bytes()[0] as Token, |(_, t)| *t)
}

impl Engine for ScriptedEngine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn start_work(&self) {
        self.work_started.fetch_add(1, Ordering::SeqCst);
    }

    fn thread_usage(&self) -> Usage {
        let st = self.state.lock().unwrap();
        st.usage
            .get(&std::thread::current().id())
            .copied()
            .unwrap_or_default()
    }

    fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>, EngineError> {
        self.tokenizations.fetch_add(1, Ordering::SeqCst);
        let mut out = Vec::new();
        let mut rest = text;
        'outer: while !rest.is_empty() {
            let table: &[(&str, Token)] = if parse_special { &SPECIALS } else { &[] };
            for (s, t) in table.iter().chain(MERGES.iter()) {
                if let Some(r) = rest.strip_prefix(s) {
                    out.push(*t);
                    rest = r;
                    continue 'outer;
                }
            }
            let c = rest.chars().next().expect("not empty");
            let mut buf = [0u8; 4];
            out.extend(c.encode_utf8(&mut buf).bytes().map(|b| b as Token));
            rest = &rest[c.len_utf8()..];
        }
        Ok(out)
    }

    fn token_bytes(&self, token: Token) -> Result<Vec<u8>, EngineError> {
        if token < 0 || token as usize >= N_VOCAB {
            return Err(EngineError::InvalidRequest(format!("no token {token}")));
        }
        Ok(piece(token))
    }

    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add_assistant_start: bool,
    ) -> Result<String, EngineError> {
        let mut out = String::new();
        for m in messages {
            let role = match m.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            out.push_str(&format!("<|im_start|>{role}\n{}<|im_end|>\n", m.content));
        }
        if add_assistant_start {
            out.push_str("<|im_start|>assistant\n");
        }
        Ok(out)
    }

    fn new_sequence(&self) -> Result<SeqId, EngineError> {
        let mut st = self.state.lock().unwrap();
        if st.seqs.len() >= self.max_seqs {
            return Err(EngineError::NoFreeSlot(self.max_seqs));
        }
        st.next += 1;
        let id = SeqId(st.next);
        st.seqs.insert(id, Vec::new());
        Ok(id)
    }

    fn fork(&self, seq: SeqId) -> Result<SeqId, EngineError> {
        let mut st = self.state.lock().unwrap();
        let tokens = st
            .seqs
            .get(&seq)
            .cloned()
            .ok_or(EngineError::UnknownSequence(seq))?;
        if st.seqs.len() >= self.max_seqs {
            return Err(EngineError::NoFreeSlot(self.max_seqs));
        }
        st.next += 1;
        let id = SeqId(st.next);
        st.seqs.insert(id, tokens);
        Ok(id)
    }

    fn len(&self, seq: SeqId) -> Result<usize, EngineError> {
        let st = self.state.lock().unwrap();
        st.seqs
            .get(&seq)
            .map(Vec::len)
            .ok_or(EngineError::UnknownSequence(seq))
    }

    fn truncate(&self, seq: SeqId, len: usize) -> Result<(), EngineError> {
        let mut st = self.state.lock().unwrap();
        let tokens = st
            .seqs
            .get_mut(&seq)
            .ok_or(EngineError::UnknownSequence(seq))?;
        tokens.truncate(len);
        Ok(())
    }

    fn free(&self, seq: SeqId) {
        self.state.lock().unwrap().seqs.remove(&seq);
    }

    fn decode(&self, inputs: &[SeqInput]) -> Result<Vec<Logits>, EngineError> {
        if self.top_k_only.is_some() {
            return Err(EngineError::Unsupported("top-k only".into()));
        }
        self.decode_logged(inputs)
    }

    fn top_k_limit(&self) -> Option<usize> {
        self.top_k_only
    }

    fn decode_top_k(
        &self,
        inputs: &[SeqInput],
        k: usize,
    ) -> Result<Vec<Vec<TokenLogprob>>, EngineError> {
        self.requests.fetch_add(inputs.len(), Ordering::SeqCst);
        let rows = self.decode_logged(inputs)?;
        Ok(rows.iter().map(|l| top_k_logprobs(l, k)).collect())
    }

    fn append(&self, inputs: &[SeqInput]) -> Result<(), EngineError> {
        self.decode_logged(inputs).map(drop)
    }

    fn continue_sequence(
        &self,
        seq: SeqId,
        append: &[Token],
        request: &ContinueRequest,
    ) -> Result<Vec<Continuation>, EngineError> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        if !append.is_empty() {
            self.append(&[SeqInput {
                seq,
                tokens: append.to_vec(),
            }])?;
        }
        let base = self
            .state
            .lock()
            .unwrap()
            .seqs
            .get(&seq)
            .cloned()
            .ok_or(EngineError::UnknownSequence(seq))?;
        let mut out = Vec::new();
        for i in 0..request.n {
            let mut sampler = Sampler::new(egcfg_engine::sampler::SamplerConfig {
                seed: request.sampling.seed + i as u64,
                ..request.sampling
            });
            let mut full = base.clone();
            let mut tokens = Vec::new();
            let mut top = Vec::new();
            let mut lines = 0;
            let stop = loop {
                let logits = self.logits_for(&full);
                let token = sampler.sample(&logits);
                tokens.push(token);
                if request.logprobs > 0 {
                    top.push(top_k_logprobs(&logits, request.logprobs).into());
                }
                full.push(token);
                if self.info.eos_tokens.contains(&token) {
                    break ContinueStop::Eos;
                }
                lines += newlines(&piece(token));
                if request.has_its_lines(lines) {
                    break ContinueStop::Newline;
                }
                if tokens.len() >= request.max_tokens {
                    break ContinueStop::MaxTokens;
                }
            };
            self.state.lock().unwrap().calls.push(vec![DecodeInput {
                seq,
                appended: tokens.clone(),
                full,
            }]);
            self.charge_thread(Usage {
                generated_tokens: tokens.len() as u64,
                ..Usage::default()
            });
            out.push(Continuation { tokens, stop, top });
        }
        Ok(out)
    }
}

impl ScriptedEngine {
    /// Appends and logs like a real decode, and returns the logits.
    fn decode_logged(&self, inputs: &[SeqInput]) -> Result<Vec<Logits>, EngineError> {
        self.decodes.fetch_add(1, Ordering::SeqCst);
        let mut st = self.state.lock().unwrap();
        let mut snapshots = Vec::new();
        for input in inputs {
            if input.tokens.is_empty() {
                return Err(EngineError::InvalidRequest("empty token list".into()));
            }
            let tokens = st
                .seqs
                .get_mut(&input.seq)
                .ok_or(EngineError::UnknownSequence(input.seq))?;
            tokens.extend_from_slice(&input.tokens);
            if tokens.len() > self.info.n_ctx {
                return Err(EngineError::ContextFull {
                    seq: input.seq,
                    needed: tokens.len(),
                    n_ctx: self.info.n_ctx,
                });
            }
            snapshots.push(tokens.clone());
        }
        let logged = inputs
            .iter()
            .zip(&snapshots)
            .map(|(i, full)| DecodeInput {
                seq: i.seq,
                appended: i.tokens.clone(),
                full: full.clone(),
            })
            .collect();
        st.calls.push(logged);
        drop(st);
        // Every decode is one request whose prompt is the appended tokens
        // and which generates one next token per sequence.
        self.charge_thread(Usage {
            requests: 1,
            prompt_tokens: inputs.iter().map(|i| i.tokens.len() as u64).sum(),
            cached_prompt_tokens: 0,
            generated_tokens: inputs.len() as u64,
        });
        Ok(snapshots.iter().map(|t| self.logits_for(t)).collect())
    }
}

type CheckFn = dyn Fn(&str, usize) -> bool + Send + Sync;

/// A runner that executes nothing: `prepare` strips fences and drops a
/// trailing block header (a crude stand-in for docs/method.md §5), traces
/// are descriptive strings, and `check` asks a predicate.
pub struct FakeRunner {
    passes: Box<CheckFn>,
    refuse_all: bool,
    /// Whether the sandbox is dead: every call fails.
    dead: bool,
    /// Programs traced so far (one per job).
    pub traced: Mutex<Vec<TraceRequest>>,
    /// Number of `prepare` calls.
    pub prepares: AtomicUsize,
    /// How long tracing a program takes.
    trace_delay: fn(&str) -> std::time::Duration,
    /// Lines of each trace after its first (a step each).
    trace_steps: usize,
}

/// No delay.
fn instant(_: &str) -> std::time::Duration {
    std::time::Duration::ZERO
}

impl FakeRunner {
    /// A runner whose `check` passes a program on every test iff `passes`.
    pub fn new(passes: impl Fn(&str) -> bool + Send + Sync + 'static) -> Arc<Self> {
        Self::per_test(move |p, _| passes(p))
    }

    /// A runner whose `check` passes test `i` of a program iff `passes(program, i)`.
    pub fn per_test(passes: impl Fn(&str, usize) -> bool + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(Self::passing(Box::new(passes)))
    }

    /// A live runner whose `check` is `passes`, tracing at once in one line.
    fn passing(passes: Box<CheckFn>) -> Self {
        FakeRunner {
            passes,
            refuse_all: false,
            dead: false,
            traced: Mutex::new(Vec::new()),
            prepares: AtomicUsize::new(0),
            trace_delay: instant,
            trace_steps: 0,
        }
    }

    /// The runner of [`adds_one_runner`]: a program passes when it adds one.
    fn adding_one() -> Self {
        Self::passing(Box::new(|p, _| p.contains("x + 1")))
    }

    /// [`adds_one_runner`] whose traces have `steps` lines after their
    /// first, too long for a small signal cap.
    pub fn verbose(steps: usize) -> Arc<Self> {
        Arc::new(FakeRunner {
            trace_steps: steps,
            ..Self::adding_one()
        })
    }

    /// [`adds_one_runner`] whose traces take `delay(program)` each, so
    /// that early traces finish in an order of their own.
    pub fn delaying(delay: fn(&str) -> std::time::Duration) -> Arc<Self> {
        Arc::new(FakeRunner {
            trace_delay: delay,
            ..Self::adding_one()
        })
    }

    /// A runner whose sandbox is dead: every call fails with a
    /// [`RunnerError`].
    pub fn dead() -> Arc<Self> {
        Arc::new(FakeRunner {
            dead: true,
            ..Self::passing(Box::new(|_, _| true))
        })
    }

    fn alive(&self) -> Result<(), RunnerError> {
        if self.dead {
            Err(RunnerError(DEAD_SANDBOX.into()))
        } else {
            Ok(())
        }
    }
}

/// The error of a [`FakeRunner::dead`] runner.
pub const DEAD_SANDBOX: &str = "the fake sandbox is dead";

impl FakeRunner {
    /// A runner for which no candidate is ever executable.
    pub fn refusing(passes: impl Fn(&str) -> bool + Send + Sync + 'static) -> Arc<Self> {
        Arc::new(FakeRunner {
            refuse_all: true,
            ..Self::passing(Box::new(move |p, _| passes(p)))
        })
    }
}

impl CodeRunner for FakeRunner {
    fn prepare(&self, programs: &[String]) -> Result<Vec<Option<String>>, RunnerError> {
        self.prepares.fetch_add(1, Ordering::SeqCst);
        self.alive()?;
        if self.refuse_all {
            return Ok(vec![None; programs.len()]);
        }
        Ok(programs
            .iter()
            .map(|p| {
                let mut lines: Vec<&str> = p.lines().filter(|l| !l.starts_with("```")).collect();
                while lines
                    .last()
                    .is_some_and(|l| l.trim_end().ends_with(':') || l.trim().is_empty())
                {
                    lines.pop();
                }
                let text = lines.join("\n");
                (!text.is_empty() && !text.contains("SYNTAX") && text.contains('\n'))
                    .then_some(text)
            })
            .collect())
    }

    fn call_expression(&self, assert: &str) -> Result<Option<String>, RunnerError> {
        self.alive()?;
        Ok(assert
            .trim()
            .strip_prefix("assert ")
            .and_then(|rest| Some(rest.split(" ==").next()?.trim().to_string())))
    }

    fn trace(
        &self,
        jobs: &[TraceRequest],
        _format: TraceFormat,
        _limits: &RenderLimits,
    ) -> Result<Vec<TraceOutcome>, RunnerError> {
        self.alive()?;
        jobs.iter()
            .for_each(|j| std::thread::sleep((self.trace_delay)(&j.program)));
        self.traced.lock().unwrap().extend(jobs.iter().cloned());
        Ok(jobs
            .iter()
            .map(|j| TraceOutcome {
                status: "ok".into(),
                text: format!(
                    "ran {} lines for {:?}{}",
                    j.program.lines().count(),
                    j.invocation,
                    (0..self.trace_steps)
                        .map(|step| format!("\n  step {step}"))
                        .collect::<String>()
                ),
            })
            .collect())
    }

    fn check(
        &self,
        program: &str,
        _setup: Option<&str>,
        tests: &[TestCase],
        _timeout: Option<Duration>,
    ) -> Result<Vec<TestVerdict>, RunnerError> {
        self.alive()?;
        Ok((0..tests.len())
            .map(|test| {
                let passed = (self.passes)(program, test);
                TestVerdict {
                    test,
                    passed,
                    status: if passed {
                        "ok".into()
                    } else {
                        "exception".into()
                    },
                    detail: if passed { "ok".into() } else { "failed".into() },
                }
            })
            .collect())
    }
}

/// The reply the unconditional scripted model wants: a wrong answer.
pub const WRONG: &str = "```python\ndef add_one(x):\n    y = x + 2\n    return y\n```";
/// The reply the conditional scripted model wants: the right answer.
pub const RIGHT: &str = "```python\ndef add_one(x):\n    y = x + 1\n    return y\n```";

/// A small task with two visible asserts.
pub fn add_one_task() -> egcfg_task::Task {
    egcfg_task::Task {
        id: "test/add_one".into(),
        prompt: "Add one to a number.".into(),
        entry_point: "add_one".into(),
        visible: vec![
            TestCase::Assert {
                code: "assert add_one(1) == 2".into(),
            },
            TestCase::Assert {
                code: "assert add_one(5) == 6".into(),
            },
        ],
        hidden: vec![],
        setup: None,
    }
}

/// A policy with two minds: without a signal in its context it prefers
/// `plain`, with one it prefers `informed`; either way it continues
/// whichever of the two the reply so far is a prefix of.
pub fn two_minds(
    plain: &'static str,
    informed: &'static str,
) -> impl Fn(&str) -> Option<String> + Send + Sync + 'static {
    move |text: &str| {
        let reply = text
            .rsplit_once("<|im_start|>assistant\n")
            .map_or("", |(_, r)| r);
        let order = if text.contains("### Execution traces") {
            [informed, plain]
        } else {
            [plain, informed]
        };
        order
            .iter()
            .find(|w| w.starts_with(reply))
            .map(|w| w.to_string())
    }
}

/// A model that writes `WRONG` for the instruct prompt and `RIGHT` for
/// the long-code prompt, preferring its choice by `strength`.
pub fn style_minded_engine(strength: f32) -> ScriptedEngine {
    ScriptedEngine::new(|text: &str| {
        let reply = text
            .rsplit_once("<|im_start|>assistant\n")
            .map_or("", |(_, r)| r);
        let want = if text.contains("### How to write the solution") {
            RIGHT
        } else {
            WRONG
        };
        [want, WRONG, RIGHT]
            .into_iter()
            .find(|w| w.starts_with(reply))
            .map(str::to_string)
    })
    .with_strength(strength)
}

/// A runner whose check passes programs that add exactly one.
pub fn adds_one_runner() -> Arc<FakeRunner> {
    Arc::new(FakeRunner::adding_one())
}

/// Solve options for `grid`, one attempt at a time, with a signal cap that
/// holds the scripted tasks' blocks whole: the scripted engine spells text
/// a byte per token, several times the tokens of a real tokenizer.
pub fn scripted_options(grid: crate::config::Grid) -> crate::options::SolveOptions {
    let defaults = crate::options::SolveOptions::default();
    crate::options::SolveOptions {
        grid,
        concurrency: 1,
        decode: crate::options::DecodeOptions {
            signal_max_tokens: 1024,
            ..defaults.decode.clone()
        },
        ..defaults
    }
}

/// Solve options for a single configuration ([`scripted_options`]).
pub fn single_options(
    config: crate::config::AgentConfig,
    gammas: Vec<f32>,
) -> crate::options::SolveOptions {
    scripted_options(crate::config::Grid::single(config, gammas))
}

/// A configuration with `k` and `d` set and the rest fixed.
pub fn config(k: usize, d: u32) -> crate::config::AgentConfig {
    crate::config::AgentConfig {
        temperature: 0.7,
        candidates: 2,
        horizon: crate::config::Horizon::Lines(d),
        refresh_interval: k,
        style: crate::config::PromptStyle::Instruct,
    }
}

/// The record of attempt `spec` that finished its program at a cost of
/// `forward_tokens`.
pub fn finished_record(
    spec: crate::config::AttemptSpec,
    forward_tokens: u64,
) -> crate::record::AttemptRecord {
    crate::record::AttemptRecord {
        spec,
        name: spec.name(),
        reply: String::new(),
        code: String::new(),
        stop: crate::record::AttemptStop::Fence,
        refreshes: Vec::new(),
        tokens: Vec::new(),
        visible: Vec::new(),
        cost: crate::cost::AttemptCost {
            decode_tokens: forward_tokens,
            ..crate::cost::AttemptCost::default()
        },
        error: None,
        budget_window: None,
    }
}

/// Asserts that a solve's forward tokens are its heads' prefill plus its
/// attempts' own, nothing lost or counted twice.
pub fn assert_costs_add_up(out: &crate::outcome::SolveOutcome) {
    assert_eq!(
        out.cost.forward_tokens,
        out.cost.head_prefill_tokens
            + out
                .attempts
                .iter()
                .map(|a| a.cost.forward_tokens())
                .sum::<u64>()
    );
}
