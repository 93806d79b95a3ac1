//! The result cache: identical executions run once per executor, also when
//! several threads ask for the same one at the same time.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};

use sha2::{Digest, Sha256};

use crate::result::ExecResult;

/// A digest of everything that determines a result.
pub(crate) type Key = [u8; 32];

/// Hashes the serialised job (program, setup, invocation, limits; no id).
pub(crate) fn key_of(bytes: &[u8]) -> Key {
    Sha256::digest(bytes).into()
}

enum Entry {
    Pending,
    Ready(Arc<ExecResult>),
}

/// What the caller should do about a key.
pub(crate) enum Claim {
    /// The result is known.
    Hit(Arc<ExecResult>),
    /// Nobody runs it: the caller must, then [`Cache::fulfil`] or
    /// [`Cache::abandon`].
    Owner,
    /// Another caller is running it: [`Cache::wait`].
    Wait,
}

#[derive(Default)]
struct State {
    entries: HashMap<Key, Entry>,
    order: VecDeque<Key>,
}

/// A bounded map from job digests to results, evicting the oldest.
pub(crate) struct Cache {
    capacity: usize,
    state: Mutex<State>,
    changed: Condvar,
}

impl Cache {
    /// A cache holding at most `capacity` results; 0 disables caching and
    /// de-duplication.
    pub(crate) fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        }
    }

    /// Whether the cache is on.
    pub(crate) fn enabled(&self) -> bool {
        self.capacity > 0
    }

    /// Looks `key` up, registering the caller as its runner when unknown.
    pub(crate) fn claim(&self, key: &Key) -> Claim {
        if !self.enabled() {
            return Claim::Owner;
        }
        let mut state = self.state.lock().expect("cache lock");
        match state.entries.get(key) {
            Some(Entry::Ready(r)) => Claim::Hit(r.clone()),
            Some(Entry::Pending) => Claim::Wait,
            None => {
                state.entries.insert(*key, Entry::Pending);
                Claim::Owner
            }
        }
    }

    /// Stores the result of a claimed key and wakes waiters.
    pub(crate) fn fulfil(&self, key: &Key, result: Arc<ExecResult>) {
        if !self.enabled() {
            return;
        }
        let mut state = self.state.lock().expect("cache lock");
        state.entries.insert(*key, Entry::Ready(result));
        state.order.push_back(*key);
        while state.order.len() > self.capacity {
            if let Some(old) = state.order.pop_front() {
                state.entries.remove(&old);
            }
        }
        self.changed.notify_all();
    }

    /// Gives a claimed key up without a result (it is not cacheable);
    /// a waiter will run it itself.
    pub(crate) fn abandon(&self, key: &Key) {
        if !self.enabled() {
            return;
        }
        let mut state = self.state.lock().expect("cache lock");
        if matches!(state.entries.get(key), Some(Entry::Pending)) {
            state.entries.remove(key);
        }
        self.changed.notify_all();
    }

    /// Waits until `key` is no longer pending: its result, or `None` when
    /// the runner abandoned it (or it was evicted).
    pub(crate) fn wait(&self, key: &Key) -> Option<Arc<ExecResult>> {
        let mut state = self.state.lock().expect("cache lock");
        loop {
            match state.entries.get(key) {
                Some(Entry::Ready(r)) => return Some(r.clone()),
                Some(Entry::Pending) => state = self.changed.wait(state).expect("cache lock"),
                None => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::Status;

    fn result() -> Arc<ExecResult> {
        Arc::new(ExecResult::failure(Status::Ok, "x"))
    }

    #[test]
    fn second_claim_waits_then_hits() {
        let cache = Cache::new(2);
        let k = key_of(b"a");
        assert!(matches!(cache.claim(&k), Claim::Owner));
        assert!(matches!(cache.claim(&k), Claim::Wait));
        cache.fulfil(&k, result());
        assert!(cache.wait(&k).is_some());
        assert!(matches!(cache.claim(&k), Claim::Hit(_)));
    }

    #[test]
    fn abandoned_keys_are_run_again() {
        let cache = Cache::new(2);
        let k = key_of(b"a");
        assert!(matches!(cache.claim(&k), Claim::Owner));
        cache.abandon(&k);
        assert!(cache.wait(&k).is_none());
        assert!(matches!(cache.claim(&k), Claim::Owner));
    }

    #[test]
    fn oldest_results_are_evicted() {
        let cache = Cache::new(1);
        let (a, b) = (key_of(b"a"), key_of(b"b"));
        for k in [&a, &b] {
            assert!(matches!(cache.claim(k), Claim::Owner));
            cache.fulfil(k, result());
        }
        assert!(matches!(cache.claim(&a), Claim::Owner));
        assert!(matches!(cache.claim(&b), Claim::Hit(_)));
    }

    #[test]
    fn disabled_cache_always_runs() {
        let cache = Cache::new(0);
        let k = key_of(b"a");
        assert!(matches!(cache.claim(&k), Claim::Owner));
        assert!(matches!(cache.claim(&k), Claim::Owner));
    }
}
