//! The decoder on the real llama.cpp engine with the committed tiny
//! random-weight model (fixtures/tiny): the two streams hold exactly the
//! tokens the method specifies at every step, and the conditional stream's
//! cached logits match a fresh recompute of its whole context.
//!
//! Candidates are not executed here: a stub runner declares every candidate
//! executable and returns a fixed trace, so no model-written code runs.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use egcfg_engine::{
    ChatMessage, Engine, EngineConfig, EngineError, LlamaEngine, Logits, ModelInfo, SeqId,
    SeqInput, Sequence, Token,
};
use egcfg_executor::render::{RenderLimits, TraceFormat};
use egcfg_executor::{Invocation, TraceRequest};
use egcfg_method::attempt::run_attempt;
use egcfg_method::attempt_env::AttemptEnv;
use egcfg_method::budget::{Budget, CancelToken, Control};
use egcfg_method::head::StylePrompt;
use egcfg_method::prompt::PromptParts;
use egcfg_method::visible_tests::TracedTest;
use egcfg_method::{
    AgentConfig, AttemptRecord, AttemptSpec, CodeRunner, DecodeOptions, Horizon, PromptStyle,
    RunnerError, TestVerdict, TraceOutcome,
};
use egcfg_task::{Task, TestCase};

/// Logits may differ this much between batch shapes (engine tests measure
/// at most 1.1e-2 on this model).
const BATCH_SHAPE_TOL: f32 = 5e-2;

struct Decoded {
    full: Vec<Token>,
    appended: Vec<Token>,
    logits: Logits,
}

/// Forwards to the real engine and mirrors every sequence's content. So
/// that the random model writes lines (and the signal is refreshed), the
/// newline token is pushed to the top whenever a sequence's length is a
/// multiple of 5: a pure function of the context, applied alike to cached
/// and recomputed logits.
struct Recorder {
    inner: LlamaEngine,
    newline: Token,
    contents: Mutex<HashMap<SeqId, Vec<Token>>>,
    calls: Mutex<Vec<Vec<(SeqId, Decoded)>>>,
}

impl Engine for Recorder {
    fn info(&self) -> &ModelInfo {
        self.inner.info()
    }
    fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>, EngineError> {
        self.inner.tokenize(text, parse_special)
    }
    fn token_bytes(&self, token: Token) -> Result<Vec<u8>, EngineError> {
        self.inner.token_bytes(token)
    }
    fn apply_chat_template(&self, m: &[ChatMessage], start: bool) -> Result<String, EngineError> {
        self.inner.apply_chat_template(m, start)
    }
    fn new_sequence(&self) -> Result<SeqId, EngineError> {
        let id = self.inner.new_sequence()?;
        self.contents.lock().unwrap().insert(id, Vec::new());
        Ok(id)
    }
    fn fork(&self, seq: SeqId) -> Result<SeqId, EngineError> {
        let id = self.inner.fork(seq)?;
        let mut c = self.contents.lock().unwrap();
        let parent = c[&seq].clone();
        c.insert(id, parent);
        Ok(id)
    }
    fn len(&self, seq: SeqId) -> Result<usize, EngineError> {
        self.inner.len(seq)
    }
    fn truncate(&self, seq: SeqId, len: usize) -> Result<(), EngineError> {
        self.inner.truncate(seq, len)?;
        self.contents
            .lock()
            .unwrap()
            .get_mut(&seq)
            .unwrap()
            .truncate(len);
        Ok(())
    }
    fn free(&self, seq: SeqId) {
        self.inner.free(seq);
        self.contents.lock().unwrap().remove(&seq);
    }
    fn decode(&self, inputs: &[SeqInput]) -> Result<Vec<Logits>, EngineError> {
        let raw = self.inner.decode(inputs)?;
        let mut c = self.contents.lock().unwrap();
        let mut call = Vec::new();
        let mut logits = Vec::new();
        for (input, l) in inputs.iter().zip(raw) {
            let full = c.get_mut(&input.seq).unwrap();
            full.extend_from_slice(&input.tokens);
            let l = self.bias(full.len(), l);
            logits.push(l.clone());
            call.push((
                input.seq,
                Decoded {
                    full: full.clone(),
                    appended: input.tokens.clone(),
                    logits: l,
                },
            ));
        }
        self.calls.lock().unwrap().push(call);
        Ok(logits)
    }
}

impl Recorder {
    fn bias(&self, len: usize, logits: Logits) -> Logits {
        if !len.is_multiple_of(5) {
            return logits;
        }
        let mut l = logits.to_vec();
        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        l[self.newline as usize] = max + 10.0;
        l.into()
    }
}

/// Declares every candidate executable (as a fixed one-line function) and
/// "traces" it without running anything.
struct StubRunner;

impl CodeRunner for StubRunner {
    fn prepare(&self, programs: &[String]) -> Result<Vec<Option<String>>, RunnerError> {
        Ok(programs
            .iter()
            .map(|p| Some(format!("def f(x):\n    return {}", p.len() % 3)))
            .collect())
    }
    fn call_expression(&self, _assert: &str) -> Result<Option<String>, RunnerError> {
        Ok(Some("f(1)".into()))
    }
    fn trace(
        &self,
        r: &[TraceRequest],
        _f: TraceFormat,
        _l: &RenderLimits,
    ) -> Result<Vec<TraceOutcome>, RunnerError> {
        Ok(r.iter()
            .map(|_| TraceOutcome {
                status: "ok".into(),
                text: "x = 1\nreturned 1".into(),
            })
            .collect())
    }
    fn check(
        &self,
        _p: &str,
        _s: Option<&str>,
        t: &[TestCase],
        _timeout: Option<std::time::Duration>,
    ) -> Result<Vec<TestVerdict>, RunnerError> {
        Ok((0..t.len())
            .map(|test| TestVerdict {
                test,
                passed: false,
                status: "exception".into(),
                detail: "stub".into(),
            })
            .collect())
    }
}

/// The tiny fixture (4096 positions), recorded.
fn engine() -> Recorder {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/tiny-llama.gguf");
    let config = EngineConfig {
        n_ctx: 2048,
        n_threads: 1,
        n_seq_max: 8,
        n_batch: 512,
        n_ubatch: 512,
    };
    let inner = LlamaEngine::load(&path, config).expect("the tiny fixture loads");
    let newline = inner.tokenize("\n", false).unwrap()[0];
    Recorder {
        inner,
        newline,
        contents: Mutex::new(HashMap::new()),
        calls: Mutex::new(Vec::new()),
    }
}

struct Setup<'e> {
    task: Task,
    prompt: StylePrompt<'e>,
    head: Vec<Token>,
    marker: Vec<Token>,
    tests: Vec<TracedTest>,
    options: DecodeOptions,
}

/// A short prompt whose reply already opens `def f(`, so guidance is on
/// from the first token; its head is prefilled in `engine`.
fn setup(engine: &Recorder) -> Setup<'_> {
    let task = Task {
        id: "tiny".into(),
        prompt: "f".into(),
        entry_point: "f".into(),
        visible: vec![TestCase::Assert {
            code: "assert f(1) == 2".into(),
        }],
        hidden: vec![],
        setup: None,
    };
    let parts = PromptParts {
        head: "<|im_start|>user\nf".into(),
        marker: "<|im_end|>\n<|im_start|>assistant\n```python\ndef f(".into(),
        response_prefix: "```python\ndef f(".into(),
    };
    let head = engine.tokenize(&parts.head, true).unwrap();
    let marker = engine.tokenize(&parts.marker, true).unwrap();
    let head_seq = Sequence::new(engine).unwrap();
    engine
        .decode(&[SeqInput {
            seq: head_seq.id(),
            tokens: head.clone(),
        }])
        .unwrap();
    let prompt = StylePrompt {
        parts,
        head: head_seq,
        head_len: head.len(),
        marker_tokens: marker.clone(),
        prefill_time: Default::default(),
    };
    let tests = vec![TracedTest {
        index: 0,
        invocation: Invocation::Call {
            expr: "f(1)".into(),
        },
        label: "f(1)".into(),
    }];
    let options = DecodeOptions {
        max_new_tokens: 40,
        candidate_max_tokens: 8,
        signal_max_tokens: 400,
        ..DecodeOptions::default()
    };
    Setup {
        task,
        prompt,
        head,
        marker,
        tests,
        options,
    }
}

fn attempt(engine: &Recorder, s: &Setup) -> AttemptRecord {
    let control = Control::new(&Budget::default(), CancelToken::new());
    let env = AttemptEnv {
        engine,
        runner: &StubRunner,
        task: &s.task,
        prompt: &s.prompt,
        tests: &s.tests,
        options: &s.options,
        control: &control,
        progress: &|_| {},
        script_call: None,
    };
    let spec = AttemptSpec {
        index: 0,
        config: AgentConfig {
            temperature: 1.0,
            candidates: 2,
            horizon: Horizon::Lines(0),
            refresh_interval: 1,
            style: PromptStyle::Instruct,
        },
        gamma: 3.0,
        seed: 7,
        answer_top_p: None,
    };
    let (record, error) = run_attempt(&env, spec);
    assert!(error.is_none(), "{error:?}");
    record
}

#[test]
fn an_attempt_is_reproducible_on_the_real_engine() {
    let engine = engine();
    let s = setup(&engine);
    let first = attempt(&engine, &s);
    let second = attempt(&engine, &s);
    assert_eq!(first.tokens, second.tokens);
    assert_eq!(first.refreshes, second.refreshes);
    assert!(!first.refreshes.is_empty());
}

#[test]
fn streams_are_spliced_exactly_and_cached_logits_match_a_recompute() {
    let engine = engine();
    let s = setup(&engine);
    let record = attempt(&engine, &s);
    let (head, marker) = (&s.head, &s.marker);
    let signals: Vec<Vec<Token>> = record
        .refreshes
        .iter()
        .filter_map(|r| r.signal.as_ref())
        .map(|s| engine.tokenize(s, false).unwrap())
        .collect();
    assert!(
        !signals.is_empty(),
        "the test needs at least one signal: {:?}",
        record.refreshes
    );
    let gen: Vec<Token> = record.tokens.iter().map(|t| t.token).collect();
    let calls = engine.calls.lock().unwrap();
    let u = calls
        .iter()
        .flatten()
        .find(|(_, d)| &d.appended == marker)
        .map(|(s, _)| *s)
        .unwrap();
    let mut checked_c = 0;
    let mut recompute = Vec::new();
    for call in calls.iter() {
        for (seq, d) in call {
            if *seq == u {
                let g = d.full.len() - head.len() - marker.len();
                assert_eq!(d.full, [&head[..], &marker[..], &gen[..g]].concat());
            } else if let Some(sig) = signals.iter().find(|s| d.full[head.len()..].starts_with(s)) {
                let g = d.full.len() - head.len() - sig.len() - marker.len();
                assert_eq!(
                    d.full,
                    [&head[..], &sig[..], &marker[..], &gen[..g]].concat()
                );
                checked_c += 1;
                if d.appended.len() == 1 {
                    recompute.push((d.full.clone(), d.logits.clone()));
                }
            }
        }
    }
    assert!(
        signals.len() >= 3,
        "C is cut back and re-prefilled at each refresh"
    );
    assert!(checked_c > 0 && recompute.len() >= 3);
    // Guided steps decode U and C together.
    let guided = record.tokens.iter().filter(|t| t.guided).count();
    let paired = calls.iter().filter(|c| c.len() == 2 && c[0].0 == u).count();
    assert!(guided > 0 && paired > 0);
    drop(calls);
    // The cached conditional logits equal a fresh recompute of the context.
    for (full, cached) in &recompute {
        let fresh = engine.inner.new_sequence().unwrap();
        let logits = engine
            .inner
            .decode(&[SeqInput {
                seq: fresh,
                tokens: full.clone(),
            }])
            .unwrap()
            .remove(0);
        engine.inner.free(fresh);
        let logits = engine.bias(full.len(), logits);
        let diff = logits
            .iter()
            .zip(cached.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(diff < BATCH_SHAPE_TOL, "max |Δ| {diff}");
    }
    drop(s);
    assert!(
        engine.contents.lock().unwrap().is_empty(),
        "every sequence is freed"
    );
}
