//! What a served engine's requests cost, counted per calling thread
//! ([`crate::Engine::thread_usage`]): an attempt runs on one thread, so the
//! difference of two readings on that thread is the attempt's cost, however
//! many attempts other threads run at the same time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::thread::{self, ThreadId};

use crate::Usage;

/// The running [`Usage`] of every thread that sent a request.
#[derive(Default)]
pub(crate) struct Meter {
    by_thread: Mutex<HashMap<ThreadId, Usage>>,
}

/// The tokens one answer reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tokens {
    /// Prompt tokens the request carried.
    pub(crate) prompt: u64,
    /// Of those, the ones the server took from its prefix cache.
    pub(crate) cached: u64,
    /// Tokens generated.
    pub(crate) generated: u64,
}

impl Meter {
    /// The calling thread's usage so far.
    pub(crate) fn thread_usage(&self) -> Usage {
        self.by_thread()
            .get(&thread::current().id())
            .copied()
            .unwrap_or_default()
    }

    /// One HTTP request (a retry is another) from the calling thread.
    pub(crate) fn count_request(&self) {
        self.update(|usage| usage.requests += 1);
    }

    /// The tokens an answer to the calling thread reported.
    pub(crate) fn count_tokens(&self, tokens: Tokens) {
        self.update(|usage| {
            usage.prompt_tokens += tokens.prompt;
            usage.cached_prompt_tokens += tokens.cached;
            usage.generated_tokens += tokens.generated;
        });
    }

    fn update(&self, change: impl FnOnce(&mut Usage)) {
        change(self.by_thread().entry(thread::current().id()).or_default());
    }

    fn by_thread(&self) -> std::sync::MutexGuard<'_, HashMap<ThreadId, Usage>> {
        self.by_thread.lock().unwrap_or_else(|e| e.into_inner())
    }
}
