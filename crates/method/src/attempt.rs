//! One attempt: the per-line EG-CFG loop (docs/method.md §1, §3, §7, §8).
//!
//! An attempt decodes one answer greedily, token by token. While the reply
//! writes the target function it keeps an execution *signal* up to date
//! (`refresh_schedule` says when, `refresh` builds it):
//! candidates continue the code so far, run on the visible tests, and their
//! traces are spliced into a second, conditional stream
//! (`streams`). Each token is then chosen from the unconditional
//! stream alone or, while a signal is in force, from both through guidance
//! (`token_choice`). What every step costs is kept by the
//! `meter`, so the loop below is the algorithm and nothing else.

use std::collections::VecDeque;
use std::time::Instant;

use egcfg_engine::text::Utf8Stream;
use egcfg_engine::{EngineError, Token};

use crate::attempt_env::AttemptEnv;
use crate::budget::CancelCause;
use crate::code_text::{ends_with_closing_fence, last_code_block};
use crate::config::AttemptSpec;
use crate::error::MethodError;
use crate::line::{next_line, LineRequest};
use crate::meter::Meter;
use crate::profile::Stopwatch;
use crate::record::{AttemptRecord, AttemptStop, TokenRecord};
use crate::refresh::Refresher;
use crate::refresh_schedule::{Due, RefreshSchedule};
use crate::streams::Streams;
use crate::token_choice::TokenChooser;

/// Run one attempt to its end and check its answer on the visible tests.
///
/// Never fails as a whole: an engine or executor error ends the attempt and
/// is returned next to the (partial) record, whose `error` names it.
pub fn run_attempt(
    env: &AttemptEnv<'_>,
    spec: AttemptSpec,
) -> (AttemptRecord, Option<MethodError>) {
    let started = Instant::now();
    let prompt_tokens = env.prompt.head_len + env.prompt.marker_tokens.len();
    let mut attempt = Attempt {
        env,
        spec,
        reply: Reply::new(&env.prompt.parts.response_prefix),
        schedule: RefreshSchedule::new(spec.gamma > 0.0, spec.config.refresh_interval),
        chooser: TokenChooser {
            gamma: spec.gamma,
            top_k: env.options.top_k,
            record_top: env.options.record_top,
        },
        refresher: Refresher::new(env, spec),
        meter: Meter::new(env.control, prompt_tokens, spec.config.candidates),
        tokens: Vec::new(),
        early_program: None,
        line: VecDeque::new(),
    };
    let outcome = attempt.decode_loop();
    let Attempt {
        reply,
        refresher,
        mut meter,
        tokens,
        early_program,
        ..
    } = attempt;
    let reply = reply.text;
    let code = env.runnable(&early_program.unwrap_or_else(|| last_code_block(&reply)));
    let (stop, mut error) = match outcome {
        Ok(stop) => (stop, None),
        // A full context ends the answer where it is; it is still checked.
        Err(MethodError::Engine(EngineError::ContextFull { .. })) => {
            (AttemptStop::ContextFull, None)
        }
        Err(e) => (AttemptStop::Failed, Some(e)),
    };
    let mut visible = Vec::new();
    let solved_elsewhere = matches!(
        stop,
        AttemptStop::Cancelled {
            cause: CancelCause::Solved
        }
    );
    if error.is_none() && !solved_elsewhere {
        let t = Stopwatch::start();
        match env
            .runner
            .check(&code, env.task.setup.as_deref(), &env.task.visible, None)
        {
            Ok(v) => visible = v,
            Err(e) => error = Some(e.into()),
        }
        meter.sandbox_time(t);
    }
    let refreshes = refresher.into_records();
    let mut cost = meter.finish(started, &tokens);
    cost.profile.count_refreshes(&refreshes);
    let record = AttemptRecord {
        spec,
        name: spec.name(),
        reply,
        code,
        stop,
        refreshes,
        tokens,
        visible,
        cost,
        error: error.as_ref().map(ToString::to_string),
        budget_window: None,
    };
    (record, error)
}

/// The reply so far: the generated ids and the text they spell.
struct Reply {
    /// The decoded ids.
    tokens: Vec<Token>,
    /// Bytes of a character split across tokens, until it completes.
    utf8: Utf8Stream,
    /// The forced response prefix plus the decoded text.
    text: String,
}

impl Reply {
    fn new(response_prefix: &str) -> Self {
        Reply {
            tokens: Vec::new(),
            utf8: Utf8Stream::new(),
            text: response_prefix.to_string(),
        }
    }

    /// Appends `token`, which spells `bytes`.
    fn push(&mut self, token: Token, bytes: &[u8]) {
        self.tokens.push(token);
        let completed = self.utf8.push(bytes);
        self.text.push_str(&completed);
    }
}

/// One attempt while it decodes: the parts of the algorithm, each with its
/// own job.
struct Attempt<'a> {
    env: &'a AttemptEnv<'a>,
    spec: AttemptSpec,
    reply: Reply,
    schedule: RefreshSchedule,
    chooser: TokenChooser,
    refresher: Refresher<'a>,
    meter: Meter<'a>,
    /// Why each token was chosen.
    tokens: Vec<TokenRecord>,
    /// The program the early-stop rule answered with.
    early_program: Option<String>,
    /// The rest of a line an engine wrote in one request
    /// ([`crate::line`]), taken token by token (and dropped at a refresh).
    line: VecDeque<TokenRecord>,
}

impl<'a> Attempt<'a> {
    /// The per-line loop, until the answer ends or the attempt is stopped.
    fn decode_loop(&mut self) -> Result<AttemptStop, MethodError> {
        let env = self.env;
        let engine = env.engine;
        let n_ctx = engine.info().n_ctx;
        let opened = self
            .meter
            .opening(|meter| Streams::open(engine, env.prompt, meter))?;
        let Some(mut streams) = opened else {
            return Ok(AttemptStop::Cancelled {
                cause: CancelCause::TokenBudget,
            });
        };
        loop {
            // Budgets and the other attempts are checked once per token, so
            // a solved task or a spent budget stops everything within a step.
            if let Some(cause) = env.control.stop_cause(self.spec.index) {
                return Ok(AttemptStop::Cancelled { cause });
            }

            // Refresh the signal when the schedule says so.
            match self
                .schedule
                .before_step(&self.reply.text, &env.task.entry_point)
            {
                Due::Refresh { line } => {
                    // A line written before the signal changed is not
                    // what the new signal would have written.
                    self.line.clear();
                    let refreshed = self.refresher.refresh(
                        &mut streams,
                        &self.reply.text,
                        &self.reply.tokens,
                        line,
                        &mut self.meter,
                    )?;
                    self.schedule.refreshed(refreshed.signal_in_force);
                    if let Some(program) = refreshed.early_stop {
                        self.early_program = Some(program);
                        return Ok(AttemptStop::EarlyStop);
                    }
                }
                Due::Unguided => {
                    let tests = env.tests.len();
                    self.meter.unguided_step(self.reply.tokens.len(), tests);
                }
                Due::Nothing => {}
            }

            // Choose the next token: guided while a signal is in force.
            let step = self.reply.tokens.len();
            let guided = self
                .schedule
                .guides()
                .then(|| streams.conditional())
                .flatten();
            let record = if streams.by_line() {
                // A line is written for one state of the signal.
                if self
                    .line
                    .front()
                    .is_some_and(|r| r.guided != guided.is_some())
                {
                    self.line.clear();
                }
                if self.line.is_empty() {
                    let request = LineRequest {
                        generated: &self.reply.tokens,
                        max_tokens: env.options.max_new_tokens - step,
                        guided: guided.is_some(),
                    };
                    self.line =
                        next_line(engine, &streams, &self.chooser, &request, &mut self.meter)?;
                }
                match self.line.pop_front() {
                    Some(record) => record,
                    None => return Ok(AttemptStop::ContextFull),
                }
            } else {
                let p_next = streams.unconditional().1.expect("a local model tells P");
                let p_c = guided.map(|c| c.next.as_ref().expect("a local model tells P_c"));
                let chooser = &self.chooser;
                self.meter.choice(|| chooser.choose(step, p_next, p_c))
            };
            self.meter.token_chosen(guided.map(|c| c.prompt_len + step));
            let token = record.token;
            let guided = guided.is_some();
            let bytes = engine.token_bytes(token)?;
            self.tokens.push(TokenRecord {
                piece: String::from_utf8_lossy(&bytes).into_owned(),
                ..record
            });

            // Stop rules: the answer ends at EOS or its closing fence; the
            // token cap and the context bound it.
            if engine.info().eos_tokens.contains(&token) {
                return Ok(AttemptStop::Eos);
            }
            self.reply.push(token, &bytes);
            if ends_with_closing_fence(&self.reply.text) {
                return Ok(AttemptStop::Fence);
            }
            if self.reply.tokens.len() >= env.options.max_new_tokens {
                return Ok(AttemptStop::TokenLimit);
            }
            if !streams.fit(self.reply.tokens.len(), guided, n_ctx) {
                return Ok(AttemptStop::ContextFull);
            }

            streams.advance(token, guided, &mut self.meter)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use egcfg_engine::Engine;

    use super::*;
    use crate::config::PromptStyle;
    use crate::options::SolveOptions;
    use crate::outcome::SolveOutcome;
    use crate::prompt::build_prompt;
    use crate::solve::solve;
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
        assert_eq!(a.cost.profile.guided_lines, 0);
        assert_eq!(a.cost.profile.forward_tokens_per_guided_line(), None);
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
        // `def add_one(x):`, two body lines and the closing fence.
        assert_eq!(a.cost.profile.guided_lines, 4);
        let per_line = a.cost.profile.forward_tokens_per_guided_line().unwrap();
        assert_eq!(per_line, a.cost.forward_tokens() as f64 / 4.0);
    }

    #[test]
    fn gamma_half_keeps_the_plain_answer_and_three_flips_it() {
        // Logits 40 vs 0: log P ≈ −40 for the informed token, but ε = 1e-8
        // caps the ratio at ≈ 18.4 nats, so γ = 0.5 cannot overturn P and
        // γ = 3 does (docs/method.md §8 arithmetic).
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
                        // The block's opening did not change, so it stays
                        // in C's cache (a full re-prefill would append all
                        // of signal + marker + gen).
                        let full_refill = input.full.len() - head.len();
                        assert!(
                            c_prefills == 1 || input.appended.len() < full_refill,
                            "a refresh prefills only what changed"
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
        // A block equal to the one before, with every step since guided,
        // decodes nothing.
        let changed = 1 + signals.windows(2).filter(|w| w[0] != w[1]).count();
        assert!(changed < signals.len(), "a refresh repeats its block");
        assert_eq!(c_prefills, changed);
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
        let p = &a.cost.profile;
        assert_eq!((p.refreshes, p.refreshes_without_signal), (4, 4));
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
    fn cut_to_fit_guides_the_lines_whose_runs_are_too_long_for_the_cap() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let mut options = single_options(config(1, 1), vec![3.0]);
        // Below one whole run of a 60-step trace, above its first steps.
        options.decode.signal_max_tokens = 900;
        let solve = |options: &SolveOptions| {
            let out = solve_add_one(&engine, FakeRunner::verbose(60), options).unwrap();
            out.attempts.into_iter().next().unwrap()
        };
        let whole_runs = solve(&options);
        let traced =
            |a: &AttemptRecord| a.refreshes.iter().filter(|r| !r.traces.is_empty()).count();
        assert!(traced(&whole_runs) > 0);
        assert!(whole_runs.refreshes.iter().all(|r| r.signal.is_none()));
        assert_eq!(whole_runs.code, body(WRONG), "no line was guided");

        options.decode.cut_to_fit = true;
        let cut = solve(&options);
        let with_signal: Vec<&str> = cut
            .refreshes
            .iter()
            .filter_map(|r| r.signal.as_deref())
            .collect();
        assert_eq!(
            with_signal.len(),
            traced(&cut),
            "every traced refresh guides"
        );
        assert!(with_signal
            .iter()
            .all(|s| s.contains("cut to fit the block")));
        assert!(cut.refreshes.iter().all(|r| r.signal_tokens <= 900));
        assert_eq!(cut.code, body(RIGHT), "the cut runs guided the lines");
        assert_eq!(cut.cost.profile.refreshes_without_signal, 0);
    }

    #[test]
    fn the_profile_times_every_phase_and_counts_guided_lines() {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
        let out = run(&engine, adds_one_runner(), 1, 1, 3.0);
        let a = &out.attempts[0];
        let p = &a.cost.profile;
        for (name, time) in p.phases() {
            assert!(time.wall_s > 0.0, "{name} was timed: {p:?}");
        }
        // `def add_one(x):`, its two body lines and the closing fence.
        assert_eq!(p.guided_lines, 4);
        assert_eq!(p.refreshes, a.refreshes.len() as u64);
        assert!(p.refreshes > 0 && p.refreshes_without_signal == 0);
        assert_eq!(p.forward_tokens, a.cost.forward_tokens());
        let task = &out.cost.profile;
        assert_eq!(task.forward_tokens, out.cost.forward_tokens);
        assert!(
            task.head_prefill.wall_s > p.head_prefill.wall_s,
            "the task adds the shared head's prefill"
        );
        assert_eq!(task.sandbox, p.sandbox, "one attempt");
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
        // Replay what C holds after the head: a refresh decodes only what
        // follows the common prefix of the old and new content (at least one
        // token), a guided step appends its token (the last is not decoded).
        let gen: Vec<Token> = a.tokens.iter().map(|t| t.token).collect();
        let marker_ids = engine
            .tokenize("<|im_end|>\n<|im_start|>assistant\n```python\n", true)
            .unwrap();
        let mut c: Vec<Token> = Vec::new();
        let mut signal_prefill = 0;
        let mut full_refills = 0;
        for (i, t) in a.tokens.iter().enumerate() {
            for r in a.refreshes.iter().filter(|r| r.step == i) {
                let Some(text) = &r.signal else { continue };
                let new = [
                    engine.tokenize(text, false).unwrap(),
                    marker_ids.clone(),
                    gen[..i].to_vec(),
                ]
                .concat();
                let same = c.iter().zip(&new).take_while(|(x, y)| x == y).count();
                if new != c {
                    signal_prefill += (new.len() - same.min(new.len() - 1)) as u64;
                }
                full_refills += new.len() as u64;
                c = new;
            }
            if t.guided && i + 1 < gen.len() {
                c.push(gen[i]);
            }
        }
        assert_eq!(a.cost.prefill_tokens, marker + signal_prefill);
        assert!(
            signal_prefill < full_refills,
            "the unchanged opening is reused"
        );
        let guided = a.tokens.iter().filter(|t| t.guided).count() as u64;
        let steps = a.tokens.len() as u64;
        assert_eq!(a.cost.decode_tokens, (steps - 1) + (guided - 1));
        assert!(a.cost.reference.forward_tokens() > a.cost.forward_tokens());
        assert_eq!(
            out.cost.forward_tokens,
            out.cost.head_prefill_tokens + a.cost.forward_tokens()
        );
    }

    #[test]
    fn a_top_k_only_engine_writes_the_same_answers() {
        // A served model gives only top-k lists and whole lines; with the
        // scripted model's single strong preference the choices are the same
        // as from full logits, at every γ: γ = 0.5 keeps P's choices, so C's
        // proposed lines are cut where P overrules them.
        for gamma in [0.0, 0.5, 1.0, 3.0] {
            let full = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)));
            let top_k = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_top_k_only(8));
            let a = run(&full, adds_one_runner(), 1, 1, gamma);
            let b = run(&top_k, adds_one_runner(), 1, 1, gamma);
            assert_eq!(b.code, a.code, "γ = {gamma}");
            assert_eq!(b.passed, a.passed, "γ = {gamma}");
            let (ta, tb) = (&a.attempts[0].tokens, &b.attempts[0].tokens);
            let ids = |t: &[TokenRecord]| t.iter().map(|t| (t.token, t.guided)).collect::<Vec<_>>();
            assert_eq!(ids(tb), ids(ta), "γ = {gamma}");
            assert_eq!(top_k.live(), 0, "every sequence is freed");
        }
    }

    /// Requests a top-k-only engine received for `gamma`'s attempt, with
    /// the attempt's lines and tokens.
    fn requests_per_line(gamma: f32) -> (usize, usize, SolveOutcome) {
        let engine = Arc::new(ScriptedEngine::new(two_minds(WRONG, RIGHT)).with_top_k_only(8));
        let out = run(&engine, adds_one_runner(), 1, 1, gamma);
        let lines = out.attempts[0].reply.matches('\n').count() + 1;
        let requests = engine.requests.load(std::sync::atomic::Ordering::SeqCst);
        (requests, lines, out)
    }

    #[test]
    fn a_top_k_only_engine_writes_unguided_lines_in_one_request_each() {
        // A line request per line, and the head's prefill.
        let (requests, lines, _) = requests_per_line(0.0);
        assert!(
            requests <= lines + 1,
            "{requests} requests on {lines} lines"
        );
    }

    #[test]
    fn at_gamma_one_a_guided_line_is_one_request_and_p_is_not_asked() {
        let (requests, lines, out) = requests_per_line(1.0);
        let attempt = &out.attempts[0];
        let refreshes = attempt.refreshes.len();
        // A line request per line, a candidate request per refresh, the
        // head's prefill; nothing per token.
        assert!(
            requests <= lines + refreshes + 1,
            "{requests} requests on {lines} lines with {refreshes} refreshes"
        );
        let guided: Vec<_> = attempt.tokens.iter().filter(|t| t.guided).collect();
        assert!(!guided.is_empty());
        assert!(guided
            .iter()
            .all(|t| t.argmax_p.is_none() && t.top_p.is_empty()));
    }
}
