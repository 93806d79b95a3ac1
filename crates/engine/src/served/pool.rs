//! The servers one [`super::ServedEngine`] spreads its requests over, and
//! which one each request goes to.
//!
//! A server's load is its requests in flight plus the threads pinned to it.
//! A thread that calls [`Pool::start_work`] is pinned to the least loaded
//! server at that moment and sends all its requests there (an attempt's
//! streams then share that server's prefix cache), until it starts other
//! work or ends; any other request goes to the least loaded server. Ties go
//! to the lower index, so routing is deterministic for a given load.

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

use super::client::Client;
use super::protocol::Protocol;

/// One server: how to reach it and how to talk to it.
pub(super) struct Server {
    pub(super) client: Client,
    pub(super) protocol: Protocol,
    /// Threads whose work is pinned here.
    pinned: AtomicUsize,
}

impl Server {
    pub(super) fn new(client: Client, protocol: Protocol) -> Self {
        Server {
            client,
            protocol,
            pinned: AtomicUsize::new(0),
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
}

impl Drop for Pin {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.upgrade() {
            pool.servers[self.server]
                .pinned
                .fetch_sub(1, Ordering::Relaxed);
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
        let pinned = PINS.with(|pins| {
            pins.borrow()
                .iter()
                .find(|pin| std::ptr::eq(pin.pool.as_ptr(), Arc::as_ptr(self)))
                .map(|pin| pin.server)
        });
        &self.servers[pinned.unwrap_or_else(|| self.least_loaded())]
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
            });
        });
    }

    fn least_loaded(&self) -> usize {
        (0..self.servers.len())
            .min_by_key(|&i| (self.servers[i].load(), i))
            .unwrap_or(0)
    }
}
