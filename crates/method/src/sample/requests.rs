//! Drawing the sampled answers of a task from a served model, which gives
//! no logits to sample from step by step ([`Engine::top_k_limit`] is
//! `Some`): the server writes each answer whole, through
//! [`Engine::continue_sequence`].
//!
//! The draw runs in rounds, as the local batch ([`super::batch`]) runs in
//! steps. Up to `concurrency` answers are live at once, in schedule order;
//! in each round every live answer gets one request, and new answers of the
//! same prompt style, temperature and nucleus mass share one `n`-sample
//! request. Sample `i` of such a request is seeded `seed + i` from the
//! first answer's seed, so a grouped answer records the seed it was really
//! drawn with rather than the schedule's. A round's requests run side by
//! side, one thread each, and the round ends when all have answered; then
//! its ended answers are checked and recorded in schedule order.
//!
//! The budget is counted as on a local model: an answer spends its marker
//! and every token it feeds back, which is every token the server wrote for
//! it but the last. Tokens written past the closing fence count too (the
//! server computed them; the model usually ends its turn one token after
//! the fence), though the record ends at the fence. Before a round, what
//! the budget has left is shared among the round's answers, and each
//! request asks for at most its share and at most the answer's new-token
//! cap, so a round spends no more than was left, give or take a token per
//! answer. An answer its share cut goes on in the next round, and when the
//! budget is spent it is recorded as cut by the budget, as on a local
//! model.
//!
//! What a request cannot do is stop early. An answer whose request is out
//! while another answer of the same round passes every visible test runs
//! to its end, where a local batch would cut it within a step: that costs
//! up to `concurrency - 1` whole answers (at most `max_new_tokens` each) of
//! budget and server time per solved task, and those answers are checked
//! and recorded like the others. Rounds as wide as `--concurrency`, not
//! the whole schedule in one request, keep that waste small and let the
//! budget and the selection rule act between rounds.

use std::panic;
use std::thread;

use egcfg_engine::sampler::SamplerConfig;
use egcfg_engine::{
    Continuation, ContinueRequest, ContinueStop, Engine, EngineError, Sequence, Token, Usage,
};

use crate::config::{derive_seed, AttemptSpec};
use crate::cost::usage_sum;
use crate::error::MethodError;
use crate::guidance::TokenProb;
use crate::pool::Finished;
use crate::profile::{Phase, PhaseTime, Stopwatch};
use crate::record::AttemptStop;

use super::answer::{finish_ended, retire_and_refill, share_error, Answer, Drawing};
use super::Draw;

/// One answer while the server writes it.
struct Live<'e> {
    answer: Answer,
    /// A fork of the answer's head: what the server has been sent of it.
    seq: Sequence<'e>,
    /// Tokens `seq` still lacks: the marker, then what the server wrote.
    unsent: Vec<Token>,
    /// The marker's length, the answer's prefill.
    marker: u64,
    /// Tokens the server wrote for the answer, any past its end included.
    written: u64,
}

/// One request of a round.
struct Request {
    /// The live answers it writes, by position; sample `i` is member `i`'s.
    members: Vec<usize>,
    /// What it asks of the server.
    continuation: ContinueRequest,
}

/// Draws the answers of `draw.schedule` until one passes every visible test
/// (as the selection rule says), the schedule ends, or a budget is spent.
pub(crate) fn draw_all(draw: &Draw<'_, '_>) -> Finished {
    let control = draw.control;
    // Its usage gathers what the rounds' own threads spend: the solve's
    // clock reads only the calling thread.
    let mut finished = Finished::default();
    let mut live: Vec<Live<'_>> = Vec::new();
    let mut next = 0;
    loop {
        let spent = control.tokens();
        let start = |spec, at| start(draw, spec, at);
        retire_and_refill(draw, &mut live, &mut next, spent, &mut finished, start);
        if live.is_empty() {
            break;
        }

        let requests = plan(draw, &mut live, spent);
        let (answers, usage) = send(draw.engine, &live, &requests);
        finished.usage = usage_sum([&finished.usage, &usage]);
        let mut ends: Vec<Option<Result<AttemptStop, EngineError>>> =
            (0..live.len()).map(|_| None).collect();
        let mut charged = 0;
        for (request, (answer, took)) in requests.iter().zip(answers) {
            let members = &request.members;
            let failed = match answer {
                Ok(continuations) if continuations.len() == members.len() => {
                    // The request's first answer's sequence took what it
                    // was sent.
                    live[members[0]].unsent.clear();
                    for (&m, continuation) in members.iter().zip(continuations) {
                        let before = live[m].answer.cost.forward_tokens();
                        ends[m] = live[m].write(draw, continuation, took).transpose();
                        charged += live[m].answer.cost.forward_tokens() - before;
                    }
                    continue;
                }
                // The server had no room left in the context for them.
                Ok(none) if none.is_empty() => {
                    for &m in members {
                        ends[m] = Some(Ok(AttemptStop::ContextFull));
                    }
                    continue;
                }
                Ok(some) => EngineError::Decode(format!(
                    "asked the server for {} continuations, got {}",
                    members.len(),
                    some.len()
                )),
                Err(error) => error,
            };
            for (&m, ended) in members.iter().zip(share_error(failed, members.len())) {
                ends[m] = Some(ended);
            }
        }
        control.charge(charged);

        let mut going = Vec::with_capacity(live.len());
        for (mut live, ended) in live.into_iter().zip(ends) {
            live.answer.window.last_step_at = spent;
            match ended {
                None => going.push(live),
                Some(ended) => {
                    let done = finish_ended(draw, live.into_answer(), ended);
                    finished.attempts.push(done);
                }
            }
        }
        live = going;
    }
    finished
}

/// Starts answer `spec` on a fork of its style's head (prefilling the head
/// on first use), at a check that found `spent` tokens spent.
fn start<'e>(draw: &Draw<'_, 'e>, spec: AttemptSpec, spent: u64) -> Result<Live<'e>, MethodError> {
    let prompt = draw.heads[&spec.config.style].prefilled(draw.control)?;
    let seq = prompt.head.fork()?;
    Ok(Live {
        answer: Answer::start(draw, spec, prompt, spent),
        seq,
        unsent: prompt.marker_tokens.clone(),
        marker: prompt.marker_tokens.len() as u64,
        written: 0,
    })
}

/// The requests of a round: one per live answer, except that new answers
/// with the same prompt style and sampling settings share one. Grouped
/// answers take the seeds they are drawn with.
fn plan(draw: &Draw<'_, '_>, live: &mut [Live<'_>], spent: u64) -> Vec<Request> {
    let caps = caps(draw, live, spent);
    let logprobs = match draw.engine.top_k_limit() {
        // At least the most likely token, to record the argmax.
        Some(k) => draw.options.decode.record_top.max(1).min(k),
        None => 0,
    };
    let mut requests: Vec<Request> = Vec::new();
    for (i, answer) in live.iter().enumerate() {
        let fresh = answer.written == 0;
        let shared = requests.iter_mut().find(|r| {
            let first = &live[r.members[0]];
            fresh && first.written == 0 && first.same_draw(answer)
        });
        match shared {
            Some(request) => request.members.push(i),
            None => requests.push(Request {
                members: vec![i],
                continuation: ContinueRequest {
                    max_tokens: caps[i],
                    max_lines: 0,
                    sampling: answer.sampling(),
                    n: 1,
                    logprobs,
                },
            }),
        }
    }
    for request in &mut requests {
        request.continuation.n = request.members.len();
        let seed = request.continuation.sampling.seed;
        for (k, &m) in request.members.iter().enumerate().skip(1) {
            live[m].answer.spec.seed = seed.wrapping_add(k as u64);
        }
    }
    requests
}

/// The most tokens each live answer's next request may ask for: the room
/// under its new-token cap, and under a token budget its share of what is
/// left once the new answers' markers are paid.
fn caps(draw: &Draw<'_, '_>, live: &[Live<'_>], spent: u64) -> Vec<usize> {
    let max_new = draw.options.decode.max_new_tokens;
    let room = |l: &Live<'_>| max_new.saturating_sub(l.answer.tokens.len()).max(1);
    let Some(max) = draw.control.max_tokens() else {
        return live.iter().map(room).collect();
    };
    let markers: u64 = live
        .iter()
        .filter(|l| l.written == 0)
        .map(|l| l.marker)
        .sum();
    let share = max.saturating_sub(spent).saturating_sub(markers) / live.len() as u64;
    live.iter()
        .map(|l| {
            // A new answer does not feed back its last token, so it may
            // write one more than its share; an answer that goes on feeds
            // back the last token of its previous request. Each writes at
            // least a token, as a local step decodes at least one.
            let tokens = if l.written == 0 {
                share + 1
            } else {
                share.max(1)
            };
            room(l).min(usize::try_from(tokens).unwrap_or(usize::MAX))
        })
        .collect()
}

/// A request's answer and how long it took.
type Sent = (Result<Vec<Continuation>, EngineError>, PhaseTime);

/// Sends the round's requests side by side, one thread each, and returns
/// each one's answer and how long it took, in order, and what the requests
/// cost (read on each request's own thread, which the solve's clock does
/// not see).
fn send(engine: &dyn Engine, live: &[Live<'_>], requests: &[Request]) -> (Vec<Sent>, Usage) {
    thread::scope(|scope| {
        let threads: Vec<_> = requests
            .iter()
            .map(|request| {
                let first = &live[request.members[0]];
                let (seq, unsent) = (first.seq.id(), first.unsent.as_slice());
                scope.spawn(move || {
                    // Each request is a piece of work of its own: a backend
                    // with several servers sends it to the least loaded.
                    engine.start_work();
                    let before = engine.thread_usage();
                    let watch = Stopwatch::start();
                    let answer = engine.continue_sequence(seq, unsent, &request.continuation);
                    let took = watch.elapsed();
                    ((answer, took), engine.thread_usage().since(&before))
                })
            })
            .collect();
        let (answers, usages): (Vec<_>, Vec<_>) = threads
            .into_iter()
            .map(|t| t.join().unwrap_or_else(|p| panic::resume_unwind(p)))
            .unzip();
        (answers, usage_sum(&usages))
    })
}

impl Live<'_> {
    /// Whether `other` draws from the same prompt with the same sampling
    /// settings, so that one `n`-sample request can write both.
    fn same_draw(&self, other: &Live<'_>) -> bool {
        let (a, b) = (&self.answer.spec, &other.answer.spec);
        a.config.style == b.config.style
            && a.config.temperature.to_bits() == b.config.temperature.to_bits()
            && a.answer_top_p.map(f32::to_bits) == b.answer_top_p.map(f32::to_bits)
    }

    /// The answer's sampling settings for its next request. An answer that
    /// goes on draws from a seed derived from its own and its length, so
    /// each request is seeded afresh and the draw stays fixed by the seed.
    fn sampling(&self) -> SamplerConfig {
        let spec = &self.answer.spec;
        let seed = if self.written == 0 {
            spec.seed
        } else {
            derive_seed(spec.seed, &[self.written])
        };
        SamplerConfig::nucleus(
            spec.config.temperature,
            spec.answer_top_p.unwrap_or(1.0),
            seed,
        )
    }

    /// Takes what the server wrote in a request that took `took`; `Some`
    /// with the reason when the answer ends in it.
    fn write(
        &mut self,
        draw: &Draw<'_, '_>,
        continuation: Continuation,
        took: PhaseTime,
    ) -> Result<Option<AttemptStop>, EngineError> {
        let Continuation { tokens, stop, top } = continuation;
        self.written += tokens.len() as u64;
        self.unsent.extend_from_slice(&tokens);
        let cost = &mut self.answer.cost;
        cost.prefill_tokens = self.marker;
        cost.decode_tokens = self.written.saturating_sub(1);
        cost.profile.charge(Phase::AnswerDecode, took);
        if tokens.is_empty() {
            return Err(EngineError::Decode(
                "the server wrote no token for an answer".into(),
            ));
        }
        let record_top = draw.options.decode.record_top;
        for (i, &token) in tokens.iter().enumerate() {
            let list = top.get(i);
            // Where the server sent no list for a token (it leaves out
            // tokens that end inside a UTF-8 character), the argmax is
            // unknown, and the record says so.
            let argmax_p = list.and_then(|l| l.first()).map(|t| t.token);
            let top_p = list.map_or_else(Vec::new, |l| {
                l.iter()
                    .take(record_top)
                    .map(|t| TokenProb {
                        token: t.token,
                        prob: t.logprob.exp(),
                    })
                    .collect()
            });
            if let Some(stop) = self.answer.take(draw, token, argmax_p, top_p)? {
                return Ok(Some(stop));
            }
        }
        // A server that ends at an end-of-generation token without
        // returning it.
        Ok((stop == ContinueStop::Eos).then_some(AttemptStop::Eos))
    }
}

impl Drawing for Live<'_> {
    fn answer(&self) -> &Answer {
        &self.answer
    }

    /// The answer; dropping the rest frees its sequence.
    fn into_answer(self) -> Answer {
        self.answer
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;

    use egcfg_engine::Engine;

    use super::super::sample;
    use super::super::schedule::sample_schedule;
    use super::super::tests::{heads_of_add_one, options};
    use crate::budget::CancelCause;
    use crate::outcome::SolveOutcome;
    use crate::record::{AttemptRecord, AttemptStop};
    use crate::testing::*;

    /// Like a served model: top-k lists and whole continuations only.
    fn served(engine: ScriptedEngine) -> Arc<ScriptedEngine> {
        Arc::new(engine.with_top_k_only(5))
    }

    /// The records in schedule order.
    fn by_index(out: &SolveOutcome) -> Vec<&AttemptRecord> {
        let mut records: Vec<_> = out.attempts.iter().collect();
        records.sort_by_key(|a| a.spec.index);
        records
    }

    #[test]
    fn a_served_model_writes_each_answer_in_one_request_and_the_same_answers_as_locally() {
        let mut opts = options(2, None);
        opts.budget.max_attempts = Some(6);
        let never = || FakeRunner::new(|_| false);
        let local = sample(
            &add_one_task(),
            Arc::new(style_minded_engine(6.0)),
            never(),
            &opts,
            &|_| {},
        )
        .unwrap();
        let engine = served(style_minded_engine(6.0));
        let out = sample(&add_one_task(), engine.clone(), never(), &opts, &|_| {}).unwrap();
        // Two head prefills, then one request per answer: in pairs, a
        // long-code answer beside an instruct one, which share nothing.
        assert_eq!(out.attempts.len(), 6);
        assert_eq!(engine.requests.load(Ordering::SeqCst), 2 + 6);
        // The same seeded draws as the local batch, so the same answers.
        let answers = |out: &SolveOutcome| {
            by_index(out)
                .into_iter()
                .map(|a| (a.spec, a.reply.clone(), a.stop))
                .collect::<Vec<_>>()
        };
        assert_eq!(answers(&out), answers(&local));
        let replies: BTreeSet<String> = out.attempts.iter().map(|a| a.reply.clone()).collect();
        assert!(replies.len() > 2, "weak preferences make varied answers");
        assert!(out.attempts.iter().all(|a| a.budget_window.is_some()));
        assert_costs_add_up(&out);
        // Requests sent from the round's own threads count in the task's
        // usage too.
        assert_eq!(out.cost.usage, engine.total_usage());
    }

    #[test]
    fn the_first_answer_to_pass_wins_on_a_served_model_too() {
        let engine = served(style_minded_engine(40.0));
        let out = sample(
            &add_one_task(),
            engine.clone(),
            adds_one_runner(),
            &options(2, None),
            &|_| {},
        )
        .unwrap();
        assert_eq!(out.attempts.len(), 2);
        assert_eq!(out.winner, Some(1));
        assert!(out.passed);
        assert_eq!(out.code, "def add_one(x):\n    y = x + 1\n    return y");
        assert!(out.attempts.iter().all(|a| a.stop == AttemptStop::Fence));
        // The model ends its turn one token after the fence: the server
        // wrote it, so it is charged, though the record ends at the fence.
        for a in &out.attempts {
            assert_eq!(a.cost.decode_tokens, a.tokens.len() as u64);
            assert!(a.reply.ends_with("```"));
        }
        assert_costs_add_up(&out);
    }

    #[test]
    fn new_answers_with_the_same_settings_share_one_request() {
        let schedule = sample_schedule(&add_one_task().id, 0, Some(8));
        let settings = |i: usize| {
            let c = &schedule[i].config;
            (
                c.style,
                c.temperature.to_bits(),
                schedule[i].answer_top_p.unwrap().to_bits(),
            )
        };
        let groups: BTreeSet<_> = (0..8).map(settings).collect();
        assert!(groups.len() < 8, "the schedule has answers to group");

        let mut opts = options(8, None);
        opts.budget.max_attempts = Some(8);
        let engine = served(style_minded_engine(6.0));
        let out = sample(
            &add_one_task(),
            engine.clone(),
            FakeRunner::new(|_| false),
            &opts,
            &|_| {},
        )
        .unwrap();
        assert_eq!(out.attempts.len(), 8);
        assert_eq!(
            engine.requests.load(Ordering::SeqCst),
            2 + groups.len(),
            "two head prefills and one request per group"
        );
        // Sample k of a group is drawn with the first answer's seed + k,
        // and records it.
        let records = by_index(&out);
        for group in &groups {
            let members: Vec<_> = (0..8).filter(|&i| settings(i) == *group).collect();
            let first = schedule[members[0]].seed;
            for (k, &i) in members.iter().enumerate() {
                assert_eq!(records[i].spec.seed, first.wrapping_add(k as u64));
            }
        }
        assert_costs_add_up(&out);
    }

    #[test]
    fn the_token_budget_is_shared_by_a_rounds_answers_and_cuts_them_as_locally() {
        let engine = || served(ScriptedEngine::new(two_minds(WRONG, WRONG)));
        let never = || FakeRunner::new(|_| false);
        let marker = engine()
            .tokenize("<|im_end|>\n<|im_start|>assistant\n```python\n", true)
            .unwrap()
            .len() as u64;
        // What one whole answer costs (every answer is the same).
        let mut whole = options(3, None);
        whole.budget.max_attempts = Some(1);
        let whole = sample(&add_one_task(), engine(), never(), &whole, &|_| {}).unwrap();
        let answer = whole.attempts[0].cost.forward_tokens();
        // Room for a first round of three whole answers, and 32 tokens
        // more beside the markers of the next three.
        let budget = heads_of_add_one(&engine()) + 3 * answer + 3 * marker + 32;
        let served = engine();
        let out = sample(
            &add_one_task(),
            served.clone(),
            never(),
            &options(3, Some(budget)),
            &|_| {},
        )
        .unwrap();
        let records = by_index(&out);
        assert_eq!(records.len(), 6);
        assert!(records[..3].iter().all(|a| a.stop == AttemptStop::Fence));
        // The second round shares the 32 tokens: 10 fed back each (11
        // written), 2 left over; a third round writes one more token each,
        // which spends the budget, and the answers are cut by it.
        for a in &records[3..] {
            let budget_cut = AttemptStop::Cancelled {
                cause: CancelCause::TokenBudget,
            };
            assert_eq!(a.stop, budget_cut);
            assert_eq!(a.tokens.len(), 12);
            assert!(a.visible.is_empty(), "a cut answer is not checked");
        }
        assert_eq!(served.requests.load(Ordering::SeqCst), 2 + 3 + 3 + 3);
        assert_eq!(out.cost.forward_tokens, budget + 1);
        assert_costs_add_up(&out);
    }
}
