//! The servers one [`super::ServedEngine`] spreads its requests over, and
//! which one each request goes to.
//!
//! A server's load is its requests in flight plus the threads pinned to it.
//! A thread that calls [`Pool::start_work`] is pinned to the least loaded
//! server at that moment and sends all its requests there (an attempt's
//! streams then share that server's prefix cache), until it starts other
//! work or ends; any other request goes to the least loaded server. Ties go
//! to the lower index, so routing is deterministic for a given load.
//!
//! On a server with slots (llama-server), a request also gets its slot
//! ([`super::slots`]); a pinned thread's work keeps its own slots.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::client::Client;
use super::protocol::Protocol;
use super::slots::SlotBook;
use crate::Token;

/// One server: how to reach it and how to talk to it.
pub(super) struct Server {
    pub(super) client: Client,
    pub(super) protocol: Protocol,
    /// Threads whose work is pinned here.
    pinned: AtomicUsize,
    /// Its slots, on servers that have them (none otherwise).
    slots: SlotBook,
}

impl Server {
    /// A server with `slots` slots to choose from (0 where the server has
    /// none, or does not say).
    pub(super) fn new(client: Client, protocol: Protocol, slots: usize) -> Self {
        Server {
            client,
            protocol,
            pinned: AtomicUsize::new(0),
            slots: SlotBook::new(slots),
        }
    }

    fn load(&self) -> usize {
        self.client.in_flight() + self.pinned.load(Ordering::Relaxed)
    }
}

/// The servers of one engine (at least one).
pub(super) struct Pool {
    servers: Vec<Server>,
}

/// A thread's pin to one server of one pool; unpins when the thread starts
/// other work on that pool or ends.
struct Pin {
    pool: Weak<Pool>,
    server: usize,
    /// Identifies this work as the owner of slots.
    id: u64,
}

/// Numbers pins, so that a slot's owner is never mistaken for later work.
static NEXT_PIN: AtomicU64 = AtomicU64::new(1);

impl Drop for Pin {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            let server = &pool.servers[self.server];
            server.pinned.fetch_sub(1, Ordering::Relaxed);
            server.slots.release(self.id);
        }
    }
}

/// Where one request goes: a server and, on a server with slots, the slot
/// (`None`: the server chooses). Ending it without [`Route::finish`] (the
/// request failed) tells the slot's book that its cache is unknown.
pub(super) struct Route<'p> {
    pub(super) server: &'p Server,
    pub(super) slot: Option<usize>,
}

impl Route<'_> {
    /// Ends a request that succeeded: its slot's cache now holds `kept`;
    /// `answered_in` are the slots the server reports for the request's
    /// answers, whose caches it cleared unless they are the request's own;
    /// `unnamed` more samples ran where it did not say.
    pub(super) fn finish(mut self, kept: Vec<Token>, answered_in: &[usize], unnamed: usize) {
        let slots = &self.server.slots;
        slots.forget_unnamed(unnamed, self.slot);
        let cleared: Vec<usize> = answered_in
            .iter()
            .copied()
            .filter(|&slot| Some(slot) != self.slot)
            .collect();
        match self.slot.take() {
            Some(slot) => slots.finish(slot, kept, &cleared),
            None => slots.forget(&cleared),
        }
    }
}

impl Drop for Route<'_> {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            self.server.slots.finish(slot, Vec::new(), &[]);
        }
    }
}

thread_local! {
    /// The calling thread's pins, one per pool it started work on.
    static PINS: RefCell<Vec<Pin>> = const { RefCell::new(Vec::new()) };
}

impl Pool {
    /// A pool of `servers`, which must not be empty.
    pub(super) fn new(servers: Vec<Server>) -> Arc<Self> {
        assert!(!servers.is_empty(), "a pool needs a server");
        Arc::new(Pool { servers })
    }

    /// All servers, in the order given.
    pub(super) fn servers(&self) -> &[Server] {
        &self.servers
    }

    /// The server for the calling thread's next request: its pinned one,
    /// or the least loaded.
    pub(super) fn pick(self: &Arc<Self>) -> &Server {
        let pinned = self.pin().map(|(server, _)| server);
        &self.servers[pinned.unwrap_or_else(|| self.least_loaded())]
    }

    /// The route of the calling thread's next request, which sends
    /// `prompt`: the server [`Pool::pick`] gives, and there the slot whose
    /// cache serves the prompt best among those the thread's work may use.
    pub(super) fn route(self: &Arc<Self>, prompt: &[Token]) -> Route<'_> {
        let (server, owner) = match self.pin() {
            Some((server, id)) => (server, Some(id)),
            None => (self.least_loaded(), None),
        };
        let server = &self.servers[server];
        Route {
            server,
            slot: server.slots.take(owner, prompt),
        }
    }

    /// The calling thread's pin on this pool: its server and its id.
    fn pin(self: &Arc<Self>) -> Option<(usize, u64)> {
        PINS.with(|pins| {
            pins.borrow()
                .iter()
                .find(|pin| std::ptr::eq(pin.pool.as_ptr(), Arc::as_ptr(self)))
                .map(|pin| (pin.server, pin.id))
        })
    }

    /// Pins the calling thread to the least loaded server (after
    /// releasing its previous pin on this pool).
    pub(super) fn start_work(self: &Arc<Self>) {
        PINS.with(|pins| {
            let mut pins = pins.borrow_mut();
            pins.retain(|pin| {
                pin.pool.strong_count() > 0 && !std::ptr::eq(pin.pool.as_ptr(), Arc::as_ptr(self))
            });
            let server = self.least_loaded();
            self.servers[server].pinned.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                endpoint = self.servers[server].client.endpoint(),
                "work pinned"
            );
            pins.push(Pin {
                pool: Arc::downgrade(self),
                server,
                id: NEXT_PIN.fetch_add(1, Ordering::Relaxed),
            });
        });
    }

    fn least_loaded(&self) -> usize {
        (0..self.servers.len())
            .min_by_key(|&i| (self.servers[i].load(), i))
            .unwrap_or(0)
    }
}
