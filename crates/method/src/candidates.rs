//! Candidate continuations (docs/method.md §4): sampling them as forks of the
//! unconditional stream in one batch, each with its own stop, then turning
//! them into unique executable programs.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use egcfg_engine::sampler::{Sampler, SamplerConfig};
use egcfg_engine::text::Utf8Stream;
use egcfg_engine::{ContinueRequest, Engine, Logits, NextToken, SeqInput, Sequence, Token};

use crate::code_text::{count_newlines, FENCE};
use crate::config::{derive_seed, Horizon};
use crate::error::MethodError;
use crate::runner::CodeRunner;

/// Nucleus mass for candidate sampling (the paper's value).
pub const TOP_P: f32 = 0.95;

/// Why a candidate sequence stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CandidateStop {
    /// It completed its `d + 1` lines.
    Lines,
    /// It wrote a code fence.
    Fence,
    /// It emitted an end-of-sequence token.
    Eos,
    /// It reached the token cap.
    TokenLimit,
    /// The attempt was cancelled.
    Cancelled,
}

/// How to sample one round of candidates.
#[derive(Debug, Clone, Copy)]
pub struct SampleParams {
    /// Number of sequences.
    pub n: usize,
    /// Temperature.
    pub temperature: f32,
    /// Lines after the current one.
    pub horizon: Horizon,
    /// Token cap per sequence.
    pub max_tokens: usize,
    /// Seed of the round; sequence `i` uses a seed derived from it and `i`.
    pub seed: u64,
}

/// One sampled continuation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampledCandidate {
    /// The sampled text (an incomplete trailing character is left out).
    pub text: String,
    /// The sampled token ids (EOS not included).
    pub tokens: Vec<Token>,
    /// Why it stopped.
    pub stop: CandidateStop,
}

/// Token counts of a sampling round.
#[derive(Debug, Clone, Copy, Default)]
pub struct SampleCost {
    /// Tokens decoded in the forks.
    pub decoded: u64,
}

struct Live<'e> {
    index: usize,
    seq: Sequence<'e>,
    sampler: Sampler,
    tail: Tail,
}

/// What one candidate sampled so far.
#[derive(Default)]
struct Tail {
    stream: Utf8Stream,
    text: String,
    tokens: Vec<Token>,
}

impl Tail {
    /// Takes the sampled `token`; `Some` when the candidate stops with it.
    fn take(
        &mut self,
        engine: &dyn Engine,
        token: Token,
        params: &SampleParams,
    ) -> Result<Option<CandidateStop>, MethodError> {
        if engine.info().eos_tokens.contains(&token) {
            return Ok(Some(CandidateStop::Eos));
        }
        self.tokens.push(token);
        let piece = self.stream.push(&engine.token_bytes(token)?);
        self.text.push_str(&piece);
        let text = &self.text;
        Ok(if text.contains(FENCE) {
            Some(CandidateStop::Fence)
        } else if params
            .horizon
            .newline_limit()
            .is_some_and(|n| count_newlines(text) >= n)
        {
            Some(CandidateStop::Lines)
        } else if self.tokens.len() >= params.max_tokens {
            Some(CandidateStop::TokenLimit)
        } else {
            None
        })
    }

    fn finish(&mut self, stop: CandidateStop) -> SampledCandidate {
        SampledCandidate {
            text: std::mem::take(&mut self.text),
            tokens: std::mem::take(&mut self.tokens),
            stop,
        }
    }
}

/// Sample `params.n` continuations of `parent` in one batch per step.
///
/// `parent_next` is what the engine told of the parent's next token. With
/// full logits the first token of every fork is drawn without a forward
/// pass, and each sequence stops on its own ([`CandidateStop`]) and is freed
/// as soon as it stops; `cancelled` is polled before every step. An engine
/// that gives only top-k lists (a served model, which is asked nothing of
/// the parent's next token: `None`) writes all `n` in one
/// [`Engine::continue_sequence`] call instead, cut by the same stops.
/// `stopped` sees each candidate as soon as it stops (unless cancelled),
/// before the others decode on, so its program can run beside them
/// ([`crate::overlap`]).
pub fn sample_candidates<'e>(
    engine: &'e dyn Engine,
    parent: &Sequence<'e>,
    parent_next: Option<&NextToken>,
    params: &SampleParams,
    cancelled: &dyn Fn() -> bool,
    stopped: &mut dyn FnMut(&SampledCandidate),
) -> Result<(Vec<SampledCandidate>, SampleCost), MethodError> {
    let Some(NextToken::Logits(parent_logits)) = parent_next else {
        return sample_by_continuation(engine, parent, params, stopped);
    };
    let mut done: Vec<Option<SampledCandidate>> = vec![None; params.n];
    let mut live = Vec::with_capacity(params.n);
    for index in 0..params.n {
        live.push(Live {
            index,
            seq: parent.fork()?,
            sampler: Sampler::new(SamplerConfig::nucleus(
                params.temperature,
                TOP_P,
                derive_seed(params.seed, &[index as u64]),
            )),
            tail: Tail::default(),
        });
    }
    let mut logits: Vec<Logits> = vec![parent_logits.clone(); params.n];
    let mut cost = SampleCost::default();
    while !live.is_empty() {
        let mut still = Vec::with_capacity(live.len());
        let mut batch = Vec::new();
        let stop_all = cancelled();
        for (mut cand, logit) in live.into_iter().zip(logits.iter()) {
            let stop = if stop_all {
                Some(CandidateStop::Cancelled)
            } else {
                let token = cand.sampler.sample(logit);
                cand.tail.take(engine, token, params)?
            };
            match stop {
                Some(stop) => {
                    let candidate = cand.tail.finish(stop);
                    if stop != CandidateStop::Cancelled {
                        stopped(&candidate);
                    }
                    done[cand.index] = Some(candidate);
                }
                None => {
                    batch.push(SeqInput {
                        seq: cand.seq.id(),
                        tokens: vec![*cand.tail.tokens.last().expect("just pushed")],
                    });
                    still.push(cand);
                }
            }
        }
        live = still;
        if batch.is_empty() {
            break;
        }
        cost.decoded += batch.len() as u64;
        logits = engine.decode(&batch)?;
    }
    Ok((
        done.into_iter()
            .map(|c| c.expect("every candidate stops"))
            .collect(),
        cost,
    ))
}

/// [`sample_candidates`] through one [`Engine::continue_sequence`] call:
/// the engine samples all `n` (stopping after the horizon's lines), and
/// each is cut where the token-by-token loop would stop.
fn sample_by_continuation(
    engine: &dyn Engine,
    parent: &Sequence<'_>,
    params: &SampleParams,
    stopped: &mut dyn FnMut(&SampledCandidate),
) -> Result<(Vec<SampledCandidate>, SampleCost), MethodError> {
    let request = ContinueRequest {
        max_tokens: params.max_tokens,
        max_lines: params.horizon.newline_limit().unwrap_or(0),
        sampling: SamplerConfig::nucleus(params.temperature, TOP_P, params.seed),
        n: params.n,
        logprobs: 0,
    };
    let mut cost = SampleCost::default();
    let mut sampled = Vec::with_capacity(params.n);
    for continuation in engine.continue_sequence(parent.id(), &[], &request)? {
        cost.decoded += continuation.tokens.len() as u64;
        let mut tail = Tail::default();
        let mut stop = None;
        for &token in &continuation.tokens {
            stop = tail.take(engine, token, params)?;
            if stop.is_some() {
                break;
            }
        }
        // The engine stops on the same lines and token cap as the tail, so
        // a sample without a stop of the tail's ended at the engine's cap.
        let candidate = tail.finish(stop.unwrap_or(CandidateStop::TokenLimit));
        stopped(&candidate);
        sampled.push(candidate);
    }
    Ok((sampled, cost))
}

/// Steps 1–2 of building a candidate: cut the sample at its first fence and
/// keep at most `d + 1` lines.
pub fn kept_text(sample: &str, horizon: Horizon) -> &str {
    let cut = sample.find(FENCE).map_or(sample, |i| &sample[..i]);
    let Some(limit) = horizon.newline_limit() else {
        return cut;
    };
    match cut.match_indices('\n').nth(limit - 1) {
        Some((i, _)) => &cut[..=i],
        None => cut,
    }
}

/// Steps 3–4: the candidate program (code so far + kept lines), or `None`
/// when its first non-empty line does not start like a Python module does.
pub fn candidate_program(code_so_far: &str, sample: &str, horizon: Horizon) -> Option<String> {
    let program = format!("{code_so_far}{}", kept_text(sample, horizon));
    let first = program.lines().find(|l| !l.trim().is_empty())?;
    let starts_ok = ["def", "import", "from", "#"]
        .iter()
        .any(|p| first.starts_with(p));
    starts_ok.then_some(program)
}

/// What became of one sampled candidate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "fate", rename_all = "snake_case")]
pub enum CandidateFate {
    /// Kept as unique executable program number `unique`.
    Kept {
        /// Index among the unique programs of this refresh.
        unique: usize,
    },
    /// Its first line does not start a module (`def`, `import`, `from`, `#`).
    Rejected,
    /// It could not be made to parse.
    NotExecutable,
    /// Its raw text or its executable form was already seen.
    Duplicate,
    /// Enough unique programs were already kept.
    Surplus,
}

/// One candidate as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CandidateRecord {
    /// Sampling round (0, or 1 for the top-up round).
    pub round: usize,
    /// Index of the sample in its round.
    pub sample: usize,
    /// The sampled text.
    pub sampled: String,
    /// Why sampling stopped.
    pub stop: CandidateStop,
    /// The candidate program (code so far + kept lines), if not rejected.
    pub program: Option<String>,
    /// The executable, normalised program, if it could be made.
    pub executable: Option<String>,
    /// What happened to it.
    pub fate: CandidateFate,
}

/// Keeps the unique executable programs of one refresh, in sample order.
#[derive(Debug, Default)]
pub struct Deduper {
    raw: HashSet<String>,
    executable: HashSet<String>,
    /// The unique executable programs, in the order they were kept.
    pub unique: Vec<String>,
    /// Every candidate considered.
    pub records: Vec<CandidateRecord>,
}

impl Deduper {
    /// Build, prepare and deduplicate one round of samples, keeping at most
    /// `limit` unique programs in total.
    pub fn add_round(
        &mut self,
        round: usize,
        code_so_far: &str,
        samples: &[SampledCandidate],
        horizon: Horizon,
        runner: &dyn CodeRunner,
        limit: usize,
    ) -> Result<(), MethodError> {
        let programs: Vec<Option<String>> = samples
            .iter()
            .map(|c| candidate_program(code_so_far, &c.text, horizon))
            .collect();
        let to_prepare: Vec<String> = programs.iter().flatten().cloned().collect();
        let mut prepared = if to_prepare.is_empty() {
            Vec::new()
        } else {
            runner.prepare(&to_prepare)?
        }
        .into_iter();
        for (sample, (cand, program)) in samples.iter().zip(programs).enumerate() {
            let executable = program.as_ref().and_then(|_| prepared.next().flatten());
            let fate = match (&program, &executable) {
                (None, _) => CandidateFate::Rejected,
                (Some(_), None) => CandidateFate::NotExecutable,
                (Some(raw), Some(exe)) => {
                    if self.raw.contains(raw) || self.executable.contains(exe) {
                        CandidateFate::Duplicate
                    } else if self.unique.len() >= limit {
                        CandidateFate::Surplus
                    } else {
                        self.raw.insert(raw.clone());
                        self.executable.insert(exe.clone());
                        self.unique.push(exe.clone());
                        CandidateFate::Kept {
                            unique: self.unique.len() - 1,
                        }
                    }
                }
            };
            self.records.push(CandidateRecord {
                round,
                sample,
                sampled: cand.text.clone(),
                stop: cand.stop,
                program,
                executable,
                fate,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{FakeRunner, ScriptedEngine};

    /// A sequence holding the opening of the assistant's turn, and its logits.
    fn assistant_turn(engine: &ScriptedEngine) -> (Sequence<'_>, NextToken) {
        let parent = Sequence::new(engine).unwrap();
        let prompt = engine.tokenize("<|im_start|>assistant\n", true).unwrap();
        let logits = engine
            .decode(&[SeqInput {
                seq: parent.id(),
                tokens: prompt,
            }])
            .unwrap()
            .remove(0);
        (parent, NextToken::Logits(logits))
    }

    #[test]
    fn kept_text_cuts_at_fence_and_horizon() {
        let s = "x):\n    y = x\n    return y\n```\nmore";
        assert_eq!(kept_text(s, Horizon::Lines(0)), "x):\n");
        assert_eq!(kept_text(s, Horizon::Lines(1)), "x):\n    y = x\n");
        assert_eq!(
            kept_text(s, Horizon::Lines(5)),
            "x):\n    y = x\n    return y\n"
        );
        assert_eq!(
            kept_text(s, Horizon::Unlimited),
            "x):\n    y = x\n    return y\n"
        );
    }

    #[test]
    fn candidate_program_requires_a_module_start() {
        assert_eq!(
            candidate_program("def f(", "x):\n    return x\n", Horizon::Lines(1)).as_deref(),
            Some("def f(x):\n    return x\n")
        );
        assert!(candidate_program("", "print(1)\n", Horizon::Lines(1)).is_none());
        assert!(candidate_program("\nimport os\n", "x = 1\n", Horizon::Lines(1)).is_some());
        assert!(candidate_program("", "\n\n", Horizon::Lines(1)).is_none());
    }

    fn sample(text: &str) -> SampledCandidate {
        SampledCandidate {
            text: text.into(),
            tokens: vec![],
            stop: CandidateStop::Lines,
        }
    }

    #[test]
    fn dedup_on_raw_and_executable_in_sample_order() {
        let runner = FakeRunner::new(|_| false);
        let samples = vec![
            sample("x):\n    return x\n"),
            sample("x):\n    return x\n"),            // raw duplicate
            sample("x):\n    return x\n    if x:\n"), // same executable form
            sample("x):\n    SYNTAX\n"),              // not executable
            sample("x):\n    return 2 * x\n"),
            sample("x):\n    return 3 * x\n"), // beyond the limit
        ];
        let mut d = Deduper::default();
        d.add_round(0, "def f(", &samples, Horizon::Lines(4), runner.as_ref(), 2)
            .unwrap();
        let fates: Vec<_> = d.records.iter().map(|r| r.fate.clone()).collect();
        assert_eq!(
            fates,
            vec![
                CandidateFate::Kept { unique: 0 },
                CandidateFate::Duplicate,
                CandidateFate::Duplicate,
                CandidateFate::NotExecutable,
                CandidateFate::Kept { unique: 1 },
                CandidateFate::Surplus,
            ]
        );
        assert_eq!(
            d.unique,
            vec!["def f(x):\n    return x", "def f(x):\n    return 2 * x"]
        );
    }

    #[test]
    fn each_sequence_stops_after_its_own_horizon() {
        // The scripted reply has lines of different lengths; with d = 1 each
        // fork must stop after exactly two newlines of its own text.
        let engine = ScriptedEngine::new(|_| Some("a = 1\nbb = 22\nccc = 333\n".into()));
        let (parent, logits) = assistant_turn(&engine);
        let params = SampleParams {
            n: 3,
            temperature: 0.7,
            horizon: Horizon::Lines(1),
            max_tokens: 512,
            seed: 9,
        };
        let (cands, cost) = sample_candidates(
            &engine,
            &parent,
            Some(&logits),
            &params,
            &|| false,
            &mut |_| {},
        )
        .unwrap();
        for c in &cands {
            assert_eq!(c.text, "a = 1\nbb = 22\n");
            assert_eq!(c.stop, CandidateStop::Lines);
        }
        // 14 tokens each; the 14th is sampled but never decoded.
        assert_eq!(cost.decoded, 3 * 13);
        assert_eq!(engine.live(), 1, "forks are freed");
        // Every step decodes all live forks together.
        assert!(engine.calls()[1..].iter().all(|c| c.len() == 3));
        assert!(engine.calls()[1..]
            .iter()
            .all(|c| c.iter().all(|i| i.appended.len() == 1)));
    }

    #[test]
    fn sequences_stop_independently_on_fence_and_eos() {
        // Low strength: samples diverge from the script and then get EOS.
        let engine = ScriptedEngine::new(|_| Some("a = 1\n```\n".into())).with_strength(7.0);
        let (parent, logits) = assistant_turn(&engine);
        let params = SampleParams {
            n: 16,
            temperature: 1.0,
            horizon: Horizon::Unlimited,
            max_tokens: 512,
            seed: 3,
        };
        let (cands, _) = sample_candidates(
            &engine,
            &parent,
            Some(&logits),
            &params,
            &|| false,
            &mut |_| {},
        )
        .unwrap();
        let stops: HashSet<CandidateStop> = cands.iter().map(|c| c.stop).collect();
        assert!(
            stops.contains(&CandidateStop::Eos) && stops.contains(&CandidateStop::Fence),
            "{cands:?}"
        );
        for c in &cands {
            match c.stop {
                CandidateStop::Fence => assert!(c.text.ends_with(FENCE)),
                CandidateStop::Eos => assert!(!c.text.contains(FENCE)),
                other => panic!("unexpected stop {other:?}"),
            }
        }
        let again = sample_candidates(
            &engine,
            &parent,
            Some(&logits),
            &params,
            &|| false,
            &mut |_| {},
        )
        .unwrap()
        .0;
        assert_eq!(cands, again, "same seed, same samples");
    }

    #[test]
    fn cancellation_stops_sampling() {
        let engine = ScriptedEngine::new(|_| Some("a = 1\n".repeat(100)));
        let (parent, logits) = assistant_turn(&engine);
        let params = SampleParams {
            n: 2,
            temperature: 0.5,
            horizon: Horizon::Unlimited,
            max_tokens: 512,
            seed: 1,
        };
        let calls = std::sync::atomic::AtomicUsize::new(0);
        let cancel = || calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 3;
        let (cands, _) = sample_candidates(
            &engine,
            &parent,
            Some(&logits),
            &params,
            &cancel,
            &mut |_| {},
        )
        .unwrap();
        assert!(cands
            .iter()
            .all(|c| c.stop == CandidateStop::Cancelled && c.tokens.len() == 3));
    }
}
