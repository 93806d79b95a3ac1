//! Which of a llama-server's slots each request goes to.
//!
//! A llama-server keeps one cached sequence per slot and, left to choose,
//! gives a request the idle slot whose cache shares the longest prefix with
//! its prompt. An EG-CFG attempt has two live streams that share only the
//! prompt head: the conditional one (head, execution signal, generated
//! code) and the unconditional one, whose candidates are sampled from head
//! and generated code. At γ = 1 nothing but the candidates ever asks for the
//! unconditional stream, and `n_cmpl` samples free their slots when they
//! end, so the server's own choice puts both streams in one slot, each
//! evicting the other: every line then prefills the whole signal block
//! again (measured: about twice the model work of the local engine, which
//! keeps both streams' caches).
//!
//! So the client chooses, with `id_slot`, from what it knows each slot
//! holds ([`SlotBook`]). A thread whose work is pinned to the server (an
//! attempt) owns up to [`SLOTS_PER_OWNER`] slots; it claims a second one
//! rather than cut into the cache of its first, and other requests stay off
//! owned slots. A request with no owner takes the unowned slot with the
//! longest shared prefix, or the least recently used one. `n_cmpl` samples
//! beyond the first run in slots the server picks (the free ones of lowest
//! index), so fresh slots are taken from the highest index down, and
//! [`RESERVED_FOR_SAMPLES`] slots are never claimed. When nothing fits, a
//! request goes without a slot and the server chooses, as before.

use std::sync::{Mutex, MutexGuard};

use crate::Token;

/// How many slots one owner keeps: an attempt's two streams.
pub(super) const SLOTS_PER_OWNER: usize = 2;

/// Unowned slots an owner may not claim, so that the extra samples of one
/// request (`n_cmpl` beyond the first; EG-CFG's default s = 3 needs two)
/// find free slots without evicting an owned cache.
pub(super) const RESERVED_FOR_SAMPLES: usize = 2;

/// What the client knows of a server's slots.
pub(super) struct SlotBook {
    book: Mutex<Book>,
}

#[derive(Default)]
struct Book {
    slots: Vec<Slot>,
    /// Counts routed requests, to order slots by last use.
    clock: u64,
}

#[derive(Default, Clone)]
struct Slot {
    /// The thread work (a pin's id) that keeps this slot.
    owner: Option<u64>,
    /// A request of ours is in it.
    busy: bool,
    /// The tokens its cache holds, as far as the client knows.
    tokens: Vec<Token>,
    /// The clock when it was last given out; 0 if never.
    used: u64,
}

impl SlotBook {
    /// A book of `count` slots, all empty; with 0, every request goes
    /// without a slot.
    pub(super) fn new(count: usize) -> Self {
        SlotBook {
            book: Mutex::new(Book {
                slots: vec![Slot::default(); count],
                clock: 0,
            }),
        }
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The slot for a request of `prompt` by `owner` (or by no one),
    /// marked busy until [`SlotBook::finish`]; `None` when no slot fits.
    pub(super) fn take(&self, owner: Option<u64>, prompt: &[Token]) -> Option<usize> {
        let mut book = self.book();
        let chosen = book.choose(owner, prompt)?;
        book.clock += 1;
        let clock = book.clock;
        let slot = &mut book.slots[chosen];
        if owner.is_some() {
            slot.owner = owner;
        }
        slot.busy = true;
        slot.used = clock;
        Some(chosen)
    }

    /// Ends a request in `slot`: its cache now holds `kept` (nothing when
    /// the request failed, as the cache is then unknown); the server
    /// cleared the slots in `cleared`, where samples of the same request
    /// ran.
    pub(super) fn finish(&self, slot: usize, kept: Vec<Token>, cleared: &[usize]) {
        let mut book = self.book();
        if let Some(slot) = book.slots.get_mut(slot) {
            slot.busy = false;
            slot.tokens = kept;
        }
        drop(book);
        self.forget(cleared);
    }

    /// Notes that the server cleared the slots in `cleared` (where samples
    /// of a request it placed itself ran).
    pub(super) fn forget(&self, cleared: &[usize]) {
        let mut book = self.book();
        for &slot in cleared {
            if let Some(slot) = book.slots.get_mut(slot) {
                slot.tokens.clear();
            }
        }
    }

    /// Notes that `count` samples of a request in `own` (if any) ran in
    /// slots the server did not name (a streamed sample cut short): the
    /// server puts such samples in the free slots of lowest index, and
    /// clears those when they end.
    pub(super) fn forget_unnamed(&self, count: usize, own: Option<usize>) {
        let mut book = self.book();
        let idle = book.indices(|slot| !slot.busy);
        for i in idle.into_iter().filter(|&i| Some(i) != own).take(count) {
            book.slots[i].tokens.clear();
        }
    }

    /// Gives up everything `owner` kept; the caches stay for whoever
    /// shares their prefix next.
    pub(super) fn release(&self, owner: u64) {
        for slot in self.book().slots.iter_mut() {
            if slot.owner == Some(owner) {
                slot.owner = None;
            }
        }
    }
}

impl Book {
    fn choose(&self, owner: Option<u64>, prompt: &[Token]) -> Option<usize> {
        let owned: Vec<usize> = match owner {
            Some(owner) => self.indices(|slot| slot.owner == Some(owner)),
            None => Vec::new(),
        };
        let free = self.indices(|slot| slot.owner.is_none() && !slot.busy);
        let best = |among: &[usize]| {
            among.iter().copied().max_by_key(|&i| {
                let slot = &self.slots[i];
                // The longest shared prefix, then the least recently used,
                // then the highest index (away from where the server puts
                // extra samples).
                (
                    shared_prefix(&slot.tokens, prompt),
                    std::cmp::Reverse(slot.used),
                    i,
                )
            })
        };
        if owner.is_none() {
            return best(&free);
        }
        let mine = best(&owned);
        // A slot the prompt extends keeps all its cache: use it. Otherwise
        // a thread with a slot to spare claims one rather than evict its
        // other stream.
        let extends = |i: usize| {
            let tokens = &self.slots[i].tokens;
            shared_prefix(tokens, prompt) == tokens.len()
        };
        match mine {
            Some(i) if extends(i) || owned.len() >= SLOTS_PER_OWNER => Some(i),
            _ if free.len() > RESERVED_FOR_SAMPLES => best(&free).or(mine),
            _ => mine,
        }
    }

    fn indices(&self, keep: impl Fn(&Slot) -> bool) -> Vec<usize> {
        (0..self.slots.len())
            .filter(|&i| keep(&self.slots[i]))
            .collect()
    }
}

/// The length of the longest common prefix of `a` and `b`.
fn shared_prefix(a: &[Token], b: &[Token]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: [Token; 4] = [1, 2, 3, 4];

    fn with(parts: &[&[Token]]) -> Vec<Token> {
        parts.concat()
    }

    /// Runs a request to its end, the slot keeping its prompt.
    fn ask(book: &SlotBook, owner: Option<u64>, prompt: &[Token]) -> Option<usize> {
        let slot = book.take(owner, prompt)?;
        book.finish(slot, prompt.to_vec(), &[]);
        Some(slot)
    }

    #[test]
    fn an_attempts_two_streams_keep_a_slot_each() {
        let book = SlotBook::new(6);
        let signal = with(&[&HEAD, &[90, 91, 92], &[10]]);
        let plain = with(&[&HEAD, &[10]]);
        let c = ask(&book, Some(1), &signal).unwrap();
        let u = ask(&book, Some(1), &plain).unwrap();
        assert_ne!(c, u, "the unconditional stream must not evict the signal");
        // Each stream grows in its own slot from then on.
        for line in 11..15 {
            let signal = with(&[&signal, &[line]]);
            let plain = with(&[&plain, &[line]]);
            assert_eq!(ask(&book, Some(1), &signal), Some(c));
            assert_eq!(ask(&book, Some(1), &plain), Some(u));
        }
        // A new signal block still goes to the conditional stream's slot,
        // where the head is cached.
        // (Its opening, 90, stays.)
        let renewed = with(&[&HEAD, &[90, 95], &[10, 11]]);
        assert_eq!(ask(&book, Some(1), &renewed), Some(c));
    }

    #[test]
    fn fresh_slots_come_from_the_top_and_requests_without_owner_keep_off_owned_ones() {
        let book = SlotBook::new(6);
        let owned = with(&[&HEAD, &[8, 8]]);
        assert_eq!(ask(&book, Some(1), &owned), Some(5));
        assert_eq!(ask(&book, Some(2), &[7, 7]), Some(4));
        // The unowned slots are empty: the one without owner takes the
        // least recently used of them, not the owned slot holding the head.
        let head_and_more = with(&[&HEAD, &[5]]);
        assert_eq!(ask(&book, None, &head_and_more), Some(3));
        // Once released, a cache serves whoever shares its prefix.
        book.release(1);
        assert_eq!(ask(&book, None, &with(&[&owned, &[9]])), Some(5));
    }

    #[test]
    fn a_head_cached_in_a_free_slot_is_claimed_by_the_attempt_that_needs_it() {
        let book = SlotBook::new(6);
        // The task's shared prefill leaves the head in a free slot.
        let head_slot = ask(&book, None, &HEAD).unwrap();
        let line = with(&[&HEAD, &[10]]);
        assert_eq!(ask(&book, Some(1), &line), Some(head_slot));
    }

    #[test]
    fn slots_for_extra_samples_are_never_claimed() {
        let book = SlotBook::new(4);
        let first = ask(&book, Some(1), &[1]).unwrap();
        // Three free slots: one more may be claimed, leaving two.
        let second = ask(&book, Some(2), &[2]).unwrap();
        assert_ne!(first, second);
        // Two free slots left: a third owner gets none, and without a slot
        // of its own the server chooses for it.
        assert_eq!(ask(&book, Some(3), &[3]), None);
        // An owner with one slot evicts it rather than take a reserved one.
        assert_eq!(ask(&book, Some(1), &[9, 9]), Some(first));
    }

    #[test]
    fn a_busy_slot_is_not_given_out_and_a_failed_request_forgets_its_cache() {
        let book = SlotBook::new(3);
        let busy = book.take(None, &HEAD).unwrap();
        let other = book.take(None, &HEAD).unwrap();
        assert_ne!(busy, other);
        assert_eq!(
            book.take(None, &HEAD).map(|s| s != busy && s != other),
            Some(true)
        );
        // The request in `busy` failed: its cache is unknown.
        book.finish(busy, Vec::new(), &[]);
        book.finish(other, HEAD.to_vec(), &[]);
        assert_eq!(book.take(None, &HEAD), Some(other));
    }

    #[test]
    fn slots_where_samples_ran_are_known_to_be_empty() {
        let book = SlotBook::new(4);
        let sixes = ask(&book, None, &[6]).unwrap();
        let parent = book.take(None, &HEAD).unwrap();
        // A sample of that request ran in `sixes`, which the server then
        // cleared: nothing is cached there any more, so a request for the
        // same prefix takes an unused slot rather than the one that held it.
        book.finish(parent, HEAD.to_vec(), &[sixes]);
        let next = book.take(None, &[6, 6]).unwrap();
        assert_ne!(next, sixes);
        assert_ne!(next, parent);
    }
}
