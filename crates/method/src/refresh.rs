//! A refresh: rebuilding the execution signal from the code so far
//! (docs/method.md §4, §5, §6, §9).
//!
//! `s` forks of the unconditional stream sample candidate continuations in
//! one batch; each is cut to the current line plus `d` more and made an
//! executable program; duplicates are dropped; the rest are traced on the
//! visible tests; the traces are rendered into a signal block and the
//! conditional stream is rebuilt around it. Sampling from U, not C, keeps
//! the candidates independent of the previous signal, so one misleading
//! trace does not feed on itself.
//!
//! The traces of a program are memoised for the attempt: candidates often
//! repeat across refreshes, and a trace of the same program on the same
//! tests cannot change.

use std::collections::HashMap;
use std::sync::Mutex;

use egcfg_engine::{NextToken, Sequence, Token};
use egcfg_executor::TraceRequest;

use crate::attempt_env::AttemptEnv;
use crate::budget::CancelCause;
use crate::candidates::{sample_candidates, Deduper, SampleParams, SampledCandidate};
use crate::code_text::code_after_last_opening_fence;
use crate::config::{derive_seed, AttemptSpec};
use crate::early_stop::EarlyStop;
use crate::error::MethodError;
use crate::meter::Meter;
use crate::overlap::{EarlyTracer, EarlyTraces};
use crate::profile::Stopwatch;
use crate::progress::ProgressEvent;
use crate::record::{ProbeRecord, RefreshRecord, TraceRecord};
use crate::runner::{RunnerError, TraceOutcome};
use crate::signal::{build_signal, cut_to_fit, SignalEntry};
use crate::streams::Streams;

/// The sampling rounds of a refresh, by their place in the seed path.
const ROUND: u64 = 0;
/// The second round, sampled when too few candidates were unique.
const TOP_UP_ROUND: u64 = 1;
/// The early-stop probe, sampled from the conditional stream.
const PROBE_ROUND: u64 = 2;

/// What a refresh left behind.
pub(crate) struct Refreshed {
    /// A non-empty signal is in force in the conditional stream.
    pub(crate) signal_in_force: bool,
    /// The early-stop rule fired: the program to answer with.
    pub(crate) early_stop: Option<String>,
}

/// The refreshes of one attempt, with what they remember from each other.
pub(crate) struct Refresher<'a> {
    env: &'a AttemptEnv<'a>,
    spec: AttemptSpec,
    /// Trace outcomes of every program traced so far, per traced test.
    memo: HashMap<String, Vec<TraceOutcome>>,
    /// Traces made beside the model in this refresh, for `memo`.
    traced_early: EarlyTraces,
    early: EarlyStop,
    records: Vec<RefreshRecord>,
}

impl<'a> Refresher<'a> {
    /// The refresher of attempt `spec`.
    pub(crate) fn new(env: &'a AttemptEnv<'a>, spec: AttemptSpec) -> Self {
        Refresher {
            env,
            spec,
            memo: HashMap::new(),
            traced_early: EarlyTraces::new(),
            early: EarlyStop::default(),
            records: Vec::new(),
        }
    }

    /// The record of every refresh that put its outcome in force.
    pub(crate) fn into_records(self) -> Vec<RefreshRecord> {
        self.records
    }

    /// Rebuilds the signal at `line`, the reply being `reply` (its ids
    /// `generated`), and the conditional stream of `streams` around it.
    pub(crate) fn refresh(
        &mut self,
        streams: &mut Streams<'a>,
        reply: &str,
        generated: &[Token],
        line: usize,
        meter: &mut Meter<'_>,
    ) -> Result<Refreshed, MethodError> {
        let prefix = code_after_last_opening_fence(reply).to_string();
        let index = self.records.len() as u64;
        let (u, p_next) = streams.unconditional();
        let mut dedup = Deduper::default();
        self.sample_round(&mut dedup, u, p_next, &prefix, [index, ROUND], meter)?;
        if self.env.options.top_up && dedup.unique.len() < self.spec.config.candidates {
            let path = [index, TOP_UP_ROUND];
            self.sample_round(&mut dedup, u, p_next, &prefix, path, meter)?;
        }
        let traces = self.trace_all(&dedup.unique, meter)?;
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
        let options = self.env.options;
        let (engine, layout, cap) = (self.env.engine, options.signal_layout, self.signal_cap());
        let mut signal = build_signal(engine, &entries, layout, cap)?;
        if signal.is_none() && options.cut_to_fit {
            signal = cut_to_fit(engine, &entries, layout, cap)?;
        }
        let mut record = RefreshRecord {
            step: generated.len(),
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
        meter.refreshed(generated.len(), dedup.unique.len(), self.env.tests.len());
        let signal_in_force = match signal {
            Some(signal) => {
                if !streams.condition_on(signal.tokens, generated, meter)? {
                    // The budget cannot pay for the signal: the attempt
                    // stops at its next check, without it.
                    return Ok(Refreshed {
                        signal_in_force: false,
                        early_stop: None,
                    });
                }
                true
            }
            None => false,
        };
        let early_stop = if self.env.options.early_stop {
            self.early.unconditional.observe(&dedup.unique);
            // The second opinion comes from C: candidates that saw the
            // traces and still agree.
            if let (true, Some(c), true) = (
                self.early.unconditional.is_pending(),
                streams.conditional(),
                signal_in_force,
            ) {
                let mut probe = Deduper::default();
                let path = [index, PROBE_ROUND];
                self.sample_round(&mut probe, &c.seq, c.next.as_ref(), &prefix, path, meter)?;
                self.early.conditional.observe(&probe.unique);
                record.probe = Some(ProbeRecord {
                    candidates: probe.records,
                    unique: probe.unique,
                });
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
        self.records.push(record);
        Ok(Refreshed {
            signal_in_force,
            early_stop,
        })
    }

    /// Samples one round of candidates from `parent` and adds it to
    /// `dedup`. The top-up round samples `2s` at 1.2 × the temperature, as
    /// the reference's endpoint mode does.
    fn sample_round(
        &mut self,
        dedup: &mut Deduper,
        parent: &Sequence<'a>,
        parent_next: Option<&NextToken>,
        prefix: &str,
        path: [u64; 2],
        meter: &mut Meter<'_>,
    ) -> Result<(), MethodError> {
        let config = self.spec.config;
        let engine = self.env.engine;
        let (n, temperature_scale) = if path[1] == TOP_UP_ROUND {
            (2 * config.candidates, 1.2)
        } else {
            (config.candidates, 1.0)
        };
        let room = engine.info().n_ctx.saturating_sub(parent.len()? + 1);
        let wanted = self.env.options.candidate_max_tokens.min(room);
        let control = self.env.control;
        let index = self.spec.index;
        let seed = derive_seed(self.spec.seed, &path);
        // Each candidate is traced as soon as it stops, beside the model;
        // the traces wait in the memo for the round's unique programs.
        let claimed = Mutex::new(self.memo.keys().cloned().collect());
        let env = self.env;
        let (samples, early) = std::thread::scope(|scope| {
            let mut tracer = EarlyTracer::new(scope, env, prefix, config.horizon, &claimed);
            let samples: Result<Vec<SampledCandidate>, MethodError> =
                meter.sample(n, wanted, |max_tokens| {
                    let params = SampleParams {
                        n,
                        temperature: config.temperature * temperature_scale,
                        horizon: config.horizon,
                        max_tokens,
                        seed,
                    };
                    // The batch is paid for: only other causes cut it short.
                    let cancelled = || {
                        control
                            .stop_cause(index)
                            .is_some_and(|cause| cause != CancelCause::TokenBudget)
                    };
                    let mut stopped = |c: &SampledCandidate| tracer.stopped(c);
                    sample_candidates(
                        engine,
                        parent,
                        parent_next,
                        &params,
                        &cancelled,
                        &mut stopped,
                    )
                });
            (samples, tracer.finish())
        });
        let samples = samples?;
        self.traced_early.extend(early);
        let t = Stopwatch::start();
        let before = dedup.records.len();
        dedup.add_round(
            path[1] as usize,
            prefix,
            &samples,
            config.horizon,
            self.env.runner,
            config.candidates,
        )?;
        meter.prepared(
            dedup.records[before..]
                .iter()
                .filter(|r| r.program.is_some())
                .count(),
        );
        meter.sandbox_time(t);
        Ok(())
    }

    /// Trace every program on every traceable test (memoised per attempt),
    /// ordered by candidate then test.
    fn trace_all(
        &mut self,
        programs: &[String],
        meter: &mut Meter<'_>,
    ) -> Result<Vec<TraceRecord>, MethodError> {
        let tests = self.env.tests;
        if tests.is_empty() {
            return Ok(Vec::new());
        }
        let t = Stopwatch::start();
        let fresh: Vec<&String> = programs
            .iter()
            .filter(|p| !self.memo.contains_key(*p))
            .collect();
        // Programs traced beside the model count as executions of this
        // refresh all the same, so the count does not depend on timing.
        meter.executed(fresh.len() * tests.len());
        let mut early = std::mem::take(&mut self.traced_early);
        let (ready, fresh): (Vec<&String>, Vec<&String>) =
            fresh.into_iter().partition(|p| early.contains_key(*p));
        for program in ready {
            let outcomes = early.remove(program).expect("partitioned on it");
            self.memo.insert(program.clone(), outcomes);
        }
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
        meter.sandbox_time(t);
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
            .min(self.env.engine.info().n_ctx.saturating_sub(fixed))
    }
}
