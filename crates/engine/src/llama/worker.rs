//! The engine thread: the only place the llama.cpp context is touched.
//!
//! Callers send [`Request`]s over a channel and wait on a reply channel of
//! their own. Each time the thread wakes it drains every waiting request:
//! control requests (new, fork, length, truncate, free) are served at once in
//! arrival order, and all decode requests are merged into one llama.cpp batch
//! ([`plan_round`]), which is continuous batching. The merged batch is split
//! into several `llama_decode` calls only when it exceeds `n_batch` tokens,
//! and logits are requested only for each input's last token.

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;

use super::backend::{backend, capture_errors};
use super::sequences::{SequenceTable, Slot};
use super::threads::ThreadPolicy;
use super::EngineConfig;
use crate::{EngineError, Logits, SeqId, SeqInput};

/// Where a caller's answer goes.
pub(crate) type Reply<T> = Sender<Result<T, EngineError>>;

/// One unit of work for the engine thread.
pub(crate) enum Request {
    NewSequence(Reply<SeqId>),
    Fork(SeqId, Reply<SeqId>),
    Len(SeqId, Reply<usize>),
    Truncate(SeqId, usize, Reply<()>),
    Free(SeqId),
    Decode(DecodeJob),
}

/// A caller's decode request; inputs are already checked for shape (no empty
/// token lists, no repeated sequence, tokens inside the vocabulary).
pub(crate) struct DecodeJob {
    pub(crate) inputs: Vec<SeqInput>,
    pub(crate) reply: Reply<Vec<Logits>>,
}

/// Counters the engine thread keeps; read them with
/// [`crate::LlamaEngine::stats`].
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) decode_requests: AtomicU64,
    pub(crate) rounds: AtomicU64,
    pub(crate) llama_decodes: AtomicU64,
    pub(crate) tokens: AtomicU64,
}

/// What the engine thread reports once its context exists.
pub(crate) struct Started {
    /// Cells in the unified KV cache (llama.cpp rounds `n_ctx` up).
    pub(crate) cache_cells: usize,
}

/// Create the context on the current thread, report [`Started`] (or the
/// failure) through `started`, then serve `requests` until every sender is
/// gone.
pub(crate) fn run(
    model: Arc<LlamaModel>,
    config: EngineConfig,
    max_seq_len: usize,
    requests: Receiver<Request>,
    started: Sender<Result<Started, EngineError>>,
    counters: Arc<Counters>,
) {
    let context = match create_context(&model, &config) {
        Ok(context) => context,
        Err(err) => {
            let _ = started.send(Err(err));
            return;
        }
    };
    let cache_cells = context.n_ctx() as usize;
    let mut worker = Worker {
        context,
        table: SequenceTable::new(config.n_seq_max, cache_cells, max_seq_len.min(cache_cells)),
        batch: LlamaBatch::new(config.n_batch, 1),
        n_batch: config.n_batch,
        threads: ThreadPolicy::new(config.n_threads),
        counters,
    };
    if started.send(Ok(Started { cache_cells })).is_err() {
        return;
    }
    worker.serve(&requests);
}

fn create_context<'m>(
    model: &'m LlamaModel,
    config: &EngineConfig,
) -> Result<LlamaContext<'m>, EngineError> {
    let backend = backend()?;
    let threads = i32::try_from(config.n_threads).unwrap_or(i32::MAX);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.n_ctx as u32))
        .with_n_batch(config.n_batch as u32)
        .with_n_ubatch(config.n_ubatch.min(config.n_batch) as u32)
        .with_n_seq_max(config.n_seq_max as u32)
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let (context, errors) = capture_errors(|| model.new_context(backend, params));
    context.map_err(|err| EngineError::Load {
        path: String::from("<context>"),
        reason: format!("llama.cpp could not create a context ({err}): {errors}"),
    })
}

struct Worker<'m> {
    context: LlamaContext<'m>,
    table: SequenceTable,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    threads: ThreadPolicy,
    counters: Arc<Counters>,
}

impl Worker<'_> {
    fn serve(&mut self, requests: &Receiver<Request>) {
        let mut deferred: VecDeque<DecodeJob> = VecDeque::new();
        loop {
            if deferred.is_empty() {
                match requests.recv() {
                    Ok(request) => self.accept(request, &mut deferred),
                    Err(_) => return,
                }
            }
            while let Ok(request) = requests.try_recv() {
                self.accept(request, &mut deferred);
            }
            let jobs: Vec<DecodeJob> = deferred.drain(..).collect();
            let round = plan_round(&self.table, jobs);
            for (job, err) in round.rejected {
                let _ = job.reply.send(Err(err));
            }
            deferred.extend(round.deferred);
            if !round.admitted.is_empty() {
                self.execute(round.admitted);
            }
        }
    }

    /// Serve a control request now, or queue a decode for this round.
    fn accept(&mut self, request: Request, decodes: &mut VecDeque<DecodeJob>) {
        match request {
            Request::NewSequence(reply) => {
                let _ = reply.send(self.table.create().map(|(seq, _)| seq));
            }
            Request::Fork(seq, reply) => {
                let _ = reply.send(self.fork(seq));
            }
            Request::Len(seq, reply) => {
                let _ = reply.send(self.table.lookup(seq).map(|(_, len)| len));
            }
            Request::Truncate(seq, len, reply) => {
                let _ = reply.send(self.truncate(seq, len));
            }
            Request::Free(seq) => {
                if let Some(slot) = self.table.free(seq) {
                    self.remove_from(slot, 0);
                }
            }
            Request::Decode(job) => {
                self.counters
                    .decode_requests
                    .fetch_add(1, Ordering::Relaxed);
                decodes.push_back(job);
            }
        }
    }

    fn fork(&mut self, parent: SeqId) -> Result<SeqId, EngineError> {
        let (child, parent_slot, child_slot) = self.table.fork(parent)?;
        self.context
            .copy_kv_cache_seq(parent_slot, child_slot, None, None)
            .map_err(|err| EngineError::Decode(format!("fork failed: {err}")))?;
        Ok(child)
    }

    fn truncate(&mut self, seq: SeqId, len: usize) -> Result<(), EngineError> {
        if let Some(slot) = self.table.truncate(seq, len)? {
            self.remove_from(slot, len);
        }
        Ok(())
    }

    /// Drop positions `from..` of `slot` from the KV cache.
    fn remove_from(&mut self, slot: Slot, from: usize) {
        // Slots and positions are far below i32::MAX, and removing a tail
        // from an attention cache always succeeds.
        let removed = self
            .context
            .clear_kv_cache_seq(Some(slot as u32), Some(from as u32), None);
        debug_assert_eq!(removed, Ok(true));
    }

    /// Run every admitted job through as few `llama_decode` calls as
    /// `n_batch` allows and answer each job.
    fn execute(&mut self, jobs: Vec<Admitted>) {
        self.counters.rounds.fetch_add(1, Ordering::Relaxed);
        let mut logits: Vec<Vec<Option<Logits>>> = jobs
            .iter()
            .map(|job| vec![None; job.placed.len()])
            .collect();
        let result = self.run_batches(&jobs, &mut logits);
        match result {
            Ok(()) => {
                for (job, outputs) in jobs.into_iter().zip(logits) {
                    for placed in &job.placed {
                        self.table
                            .extend(placed.seq, placed.tokens.len())
                            .expect("admitted sequences are live");
                    }
                    let outputs = outputs
                        .into_iter()
                        .map(|l| l.expect("every input has logits"));
                    let _ = job.job.reply.send(Ok(outputs.collect()));
                }
            }
            Err(failure) => {
                // Undo whatever earlier decode calls of this round stored.
                for placed in jobs.iter().flat_map(|job| &job.placed) {
                    self.remove_from(placed.slot, placed.start);
                }
                for job in jobs {
                    let err = failure.to_error(&job, &self.table);
                    let _ = job.job.reply.send(Err(err));
                }
            }
        }
    }

    fn run_batches(
        &mut self,
        jobs: &[Admitted],
        logits: &mut [Vec<Option<Logits>>],
    ) -> Result<(), Failure> {
        // (job, input) of each batch entry whose logits are wanted.
        let mut outputs: Vec<(usize, usize, i32)> = Vec::new();
        self.batch.clear();
        for (j, job) in jobs.iter().enumerate() {
            for (i, placed) in job.placed.iter().enumerate() {
                let last = placed.tokens.len() - 1;
                for (k, &token) in placed.tokens.iter().enumerate() {
                    if self.batch.n_tokens() as usize == self.n_batch {
                        self.decode_batch(&mut outputs, logits)?;
                    }
                    let index = self.batch.n_tokens();
                    let pos = (placed.start + k) as i32;
                    self.batch
                        .add(LlamaToken(token), pos, &[placed.slot], k == last)
                        .expect("the batch holds n_batch tokens");
                    if k == last {
                        outputs.push((j, i, index));
                    }
                }
            }
        }
        if self.batch.n_tokens() > 0 {
            self.decode_batch(&mut outputs, logits)?;
        }
        Ok(())
    }

    /// Decode the current batch and copy out the logits it produced.
    fn decode_batch(
        &mut self,
        outputs: &mut Vec<(usize, usize, i32)>,
        logits: &mut [Vec<Option<Logits>>],
    ) -> Result<(), Failure> {
        self.counters.llama_decodes.fetch_add(1, Ordering::Relaxed);
        self.counters
            .tokens
            .fetch_add(self.batch.n_tokens() as u64, Ordering::Relaxed);
        self.threads.before_decode();
        let context = &mut self.context;
        let batch = &mut self.batch;
        let (result, errors) = capture_errors(|| context.decode(batch));
        match result {
            Ok(()) => {}
            Err(DecodeError::NoKvCacheSlot) => return Err(Failure::CacheFull),
            Err(err) => return Err(Failure::Backend(format!("{err}: {errors}"))),
        }
        for (j, i, index) in outputs.drain(..) {
            logits[j][i] = Some(Arc::from(self.context.get_logits_ith(index)));
        }
        self.batch.clear();
        Ok(())
    }
}

/// Why a round of decoding failed.
enum Failure {
    /// llama.cpp found no room in the KV cache (our own accounting should
    /// prevent this; kept as a safety net).
    CacheFull,
    /// Anything else llama.cpp reported.
    Backend(String),
}

impl Failure {
    fn to_error(&self, job: &Admitted, table: &SequenceTable) -> EngineError {
        match self {
            Failure::CacheFull => EngineError::ContextFull {
                seq: job.placed[0].seq,
                needed: table.used_cells() + job.new_tokens(),
                n_ctx: table.capacity(),
            },
            Failure::Backend(message) => EngineError::Decode(message.clone()),
        }
    }
}

/// One input placed at its sequence's current end.
struct Placed {
    seq: SeqId,
    slot: Slot,
    start: usize,
    tokens: Vec<i32>,
}

/// A job admitted to this round, its inputs resolved to slots and positions.
struct Admitted {
    job: DecodeJob,
    placed: Vec<Placed>,
}

impl Admitted {
    fn new_tokens(&self) -> usize {
        self.placed.iter().map(|p| p.tokens.len()).sum()
    }
}

/// How the waiting decode jobs are split for one round.
struct Round {
    admitted: Vec<Admitted>,
    deferred: Vec<DecodeJob>,
    rejected: Vec<(DecodeJob, EngineError)>,
}

/// Decide, in arrival order, which jobs run in this round's merged batch.
///
/// A job is *rejected* when it can never run as asked (unknown sequence, a
/// sequence would exceed its maximum length, or the job alone would not fit
/// in the free cache cells), and *deferred* to the next round when it touches
/// a sequence another admitted job already extends, or fits only after this
/// round's admitted jobs have been accounted for.
fn plan_round(table: &SequenceTable, jobs: Vec<DecodeJob>) -> Round {
    let mut round = Round {
        admitted: Vec::new(),
        deferred: Vec::new(),
        rejected: Vec::new(),
    };
    let mut touched: HashSet<SeqId> = HashSet::new();
    let mut reserved = 0;
    for job in jobs {
        if job.inputs.iter().any(|input| touched.contains(&input.seq)) {
            round.deferred.push(job);
            continue;
        }
        let placed = match place(table, &job.inputs) {
            Ok(placed) => placed,
            Err(err) => {
                round.rejected.push((job, err));
                continue;
            }
        };
        let new_tokens: usize = placed.iter().map(|p| p.tokens.len()).sum();
        let needed = table.used_cells() + reserved + new_tokens;
        if needed > table.capacity() {
            if reserved == 0 {
                let err = EngineError::ContextFull {
                    seq: placed[0].seq,
                    needed: table.used_cells() + new_tokens,
                    n_ctx: table.capacity(),
                };
                round.rejected.push((job, err));
            } else {
                round.deferred.push(job);
            }
            continue;
        }
        reserved += new_tokens;
        touched.extend(job.inputs.iter().map(|input| input.seq));
        round.admitted.push(Admitted { job, placed });
    }
    round
}

/// Resolve inputs to slots and start positions, checking sequence lengths.
fn place(table: &SequenceTable, inputs: &[SeqInput]) -> Result<Vec<Placed>, EngineError> {
    inputs
        .iter()
        .map(|input| {
            let (slot, len) = table.lookup(input.seq)?;
            let needed = len + input.tokens.len();
            if needed > table.max_len() {
                return Err(EngineError::ContextFull {
                    seq: input.seq,
                    needed,
                    n_ctx: table.max_len(),
                });
            }
            Ok(Placed {
                seq: input.seq,
                slot,
                start: len,
                tokens: input.tokens.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(inputs: &[(SeqId, usize)]) -> DecodeJob {
        let (reply, _) = crossbeam_channel::bounded(1);
        DecodeJob {
            inputs: inputs
                .iter()
                .map(|&(seq, n)| SeqInput {
                    seq,
                    tokens: vec![1; n],
                })
                .collect(),
            reply,
        }
    }

    fn table_with(n_seqs: usize, capacity: usize, max_len: usize) -> (SequenceTable, Vec<SeqId>) {
        let mut table = SequenceTable::new(8, capacity, max_len);
        let ids = (0..n_seqs).map(|_| table.create().unwrap().0).collect();
        (table, ids)
    }

    #[test]
    fn independent_jobs_share_one_round() {
        let (mut table, s) = table_with(3, 100, 50);
        table.extend(s[1], 7).unwrap();
        let round = plan_round(
            &table,
            vec![job(&[(s[0], 3)]), job(&[(s[1], 1), (s[2], 2)])],
        );
        assert_eq!(round.admitted.len(), 2);
        let starts: Vec<usize> = round.admitted[1].placed.iter().map(|p| p.start).collect();
        assert_eq!(starts, vec![7, 0]);
        assert!(round.deferred.is_empty() && round.rejected.is_empty());
    }

    #[test]
    fn a_sequence_is_extended_once_per_round() {
        let (table, s) = table_with(2, 100, 50);
        let round = plan_round(
            &table,
            vec![job(&[(s[0], 1)]), job(&[(s[1], 1), (s[0], 1)])],
        );
        assert_eq!(round.admitted.len(), 1);
        assert_eq!(round.deferred.len(), 1);
    }

    #[test]
    fn overflow_is_refused_or_deferred() {
        let (mut table, s) = table_with(3, 10, 6);
        table.extend(s[0], 4).unwrap();
        let round = plan_round(
            &table,
            vec![
                // Sequence 0 would hold 7 > 6 tokens: refused.
                job(&[(s[0], 3)]),
                // Fits the cache (4 + 5 <= 10): admitted.
                job(&[(s[1], 5)]),
                // Fits alone (4 + 2) but not after the job above: deferred.
                job(&[(s[2], 2)]),
            ],
        );
        assert!(matches!(
            round.rejected[..],
            [(
                _,
                EngineError::ContextFull {
                    needed: 7,
                    n_ctx: 6,
                    ..
                }
            )]
        ));
        assert_eq!(round.admitted.len(), 1);
        assert_eq!(round.deferred.len(), 1);

        // Alone in a round, a job larger than the free cells is refused.
        let round = plan_round(&table, vec![job(&[(s[1], 6), (s[2], 1)])]);
        assert!(matches!(
            round.rejected[..],
            [(
                _,
                EngineError::ContextFull {
                    needed: 11,
                    n_ctx: 10,
                    ..
                }
            )]
        ));
    }
}
