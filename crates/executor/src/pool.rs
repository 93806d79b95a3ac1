//! The fork-server pool: one worker thread per server, all fed from one
//! queue, so any number of callers share the servers fairly.
//!
//! Each worker owns its server for life. Servers are spawned from their
//! worker thread because `PR_SET_PDEATHSIG` fires when the *thread* that
//! forked a process exits: a worker lives exactly as long as the pool.
//! A server that fails or times out is killed and replaced before the
//! worker takes the next job; the caller gets an error, never a hang.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::server::{Launch, Server, ServerFailure};
use crate::wire::{Job, Reply};

/// Extra time the watchdog grants a server beyond the longest its child may
/// take ([`crate::wire::Job::wall_cap`]: the server's hard kill, stretched by
/// the child's time waiting for a CPU).
pub(crate) const WATCHDOG_SLACK: Duration = Duration::from_secs(1);

/// How long a server may take to start and run its probe.
pub(crate) const STARTUP_DEADLINE: Duration = Duration::from_secs(30);

/// Builds what a new server needs: its scratch directory and, with
/// Landlock on, a ruleset restricted to it.
pub(crate) type ScratchFactory =
    dyn Fn(usize) -> Result<(PathBuf, Option<std::os::fd::OwnedFd>), String> + Send + Sync;

/// Where a job's reply arrives: the server's reply, or why there is none.
pub(crate) type ReplyReceiver = Receiver<Result<Reply, JobFailure>>;

/// Why a job got no reply from a server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum JobFailure {
    /// The job itself was refused (too large to send); the servers are
    /// fine, so this is the job's own failure.
    Refused(String),
    /// The sandbox failed: a server died or hung (and was replaced), one
    /// could not be restarted, or the pool is shutting down.
    Sandbox(String),
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobFailure::Refused(why) | JobFailure::Sandbox(why) => f.write_str(why),
        }
    }
}

struct Task {
    job: Job,
    reply: Sender<Result<Reply, JobFailure>>,
}

/// A started pool.
pub(crate) struct Pool {
    queue: Option<Sender<Task>>,
    workers: Vec<JoinHandle<()>>,
    restarts: Arc<AtomicU64>,
}

impl Pool {
    /// Starts `size` workers, each with a server; fails if any server does
    /// not start.
    pub(crate) fn start(
        size: usize,
        launch: Arc<Launch>,
        scratch: Arc<ScratchFactory>,
    ) -> Result<Pool, String> {
        let (queue, tasks) = unbounded::<Task>();
        let (ready_tx, ready_rx) = bounded::<Result<(), String>>(size);
        let restarts = Arc::new(AtomicU64::new(0));
        let mut workers = Vec::with_capacity(size);
        for index in 0..size {
            let tasks = tasks.clone();
            let restarts = restarts.clone();
            let launch = launch.clone();
            let scratch = scratch.clone();
            let ready = ready_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("egcfg-exec-{index}"))
                .spawn(move || worker(index, &launch, &*scratch, &tasks, &ready, &restarts))
                .map_err(|e| format!("cannot start worker thread: {e}"))?;
            workers.push(handle);
        }
        drop(ready_tx);
        let mut pool = Pool {
            queue: Some(queue),
            workers,
            restarts,
        };
        for _ in 0..size {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    pool.shutdown();
                    return Err(e);
                }
                Err(_) => {
                    pool.shutdown();
                    return Err("a worker thread ended during start-up".into());
                }
            }
        }
        Ok(pool)
    }

    /// Queues `job`; the receiver yields the server's reply or why there is
    /// none.
    pub(crate) fn submit(&self, job: Job) -> ReplyReceiver {
        let (reply, rx) = bounded(1);
        let queue = self.queue.as_ref().expect("pool is running");
        if let Err(e) = queue.send(Task { job, reply }) {
            let _ = e.0.reply.send(Err(JobFailure::Sandbox(
                "the executor is shutting down".into(),
            )));
        }
        rx
    }

    /// How many servers were killed and replaced so far.
    pub(crate) fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }

    fn shutdown(&mut self) {
        self.queue = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn start_server(
    index: usize,
    launch: &Arc<Launch>,
    scratch: &ScratchFactory,
) -> Result<Server, String> {
    let (dir, landlock) = scratch(index)?;
    Server::spawn(launch, dir, landlock, STARTUP_DEADLINE)
}

fn worker(
    index: usize,
    launch: &Arc<Launch>,
    scratch: &ScratchFactory,
    tasks: &Receiver<Task>,
    ready: &Sender<Result<(), String>>,
    restarts: &AtomicU64,
) {
    let mut server = match start_server(index, launch, scratch) {
        Ok(server) => {
            let _ = ready.send(Ok(()));
            Some(server)
        }
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    for mut task in tasks.iter() {
        if server.is_none() {
            match start_server(index, launch, scratch) {
                Ok(s) => server = Some(s),
                Err(e) => {
                    tracing::error!(worker = index, "cannot restart fork-server: {e}");
                    let _ = task.reply.send(Err(JobFailure::Sandbox(format!(
                        "cannot restart fork-server: {e}"
                    ))));
                    continue;
                }
            }
        }
        let live = server.as_mut().expect("started above");
        let deadline = task.job.wall_cap() + WATCHDOG_SLACK;
        match live.request(&mut task.job, deadline) {
            Ok(reply) => {
                let _ = task.reply.send(Ok(reply));
            }
            Err(ServerFailure::Refused(why)) => {
                let _ = task.reply.send(Err(JobFailure::Refused(why)));
            }
            Err(failure) => {
                tracing::warn!(worker = index, "{failure}");
                server = None; // dropping kills the process group
                restarts.fetch_add(1, Ordering::Relaxed);
                let _ = task
                    .reply
                    .send(Err(JobFailure::Sandbox(failure.to_string())));
            }
        }
    }
}
