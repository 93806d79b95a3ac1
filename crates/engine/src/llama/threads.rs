//! How many compute threads each decode gets: all of them while the machine
//! has room, one while other work wants the cores.
//!
//! llama.cpp's OpenMP threads meet at a barrier after each of the hundreds
//! of operations in a forward pass, and by default they wait there by
//! spinning. On an otherwise idle machine that is the fastest way to wait;
//! as soon as anything else runs, a spinning thread holds its core while
//! the thread it waits for sits in the run queue, and decoding slows down
//! ten- to a hundredfold (docs/speed.md). EG-CFG always has something else
//! running: the sandbox executes candidates while other attempts decode.
//! Waiting passively (`OMP_WAIT_POLICY=passive`) survives contention but
//! halves the idle rate, since every barrier becomes a sleep and a wake-up.
//!
//! So the engine thread looks at the machine before each decode, at most
//! once per [`WINDOW`], through two kernel counters:
//!
//! * the decoding thread's own run-queue wait (`/proc/thread-self/schedstat`):
//!   while all threads decode, the share of the window it was runnable but
//!   kept off its core. Spinning threads keep every core busy, so this is
//!   how contention that hurts the decode shows (a short-lived task that
//!   merely waits behind them does not count);
//! * CPU pressure (`/proc/pressure/cpu`, "some") and idle CPU time
//!   (`/proc/stat`): while one thread decodes, whether nothing waits for a
//!   CPU and the other threads would find idle cores.
//!
//! It decodes with all configured threads until the decoding thread waits
//! more than [`CONTENDED`] of a window, then with one thread (no barriers,
//! nothing to wait for) until the other cores are idle again. Without these
//! counters (not Linux, or a kernel without pressure accounting) it keeps
//! all threads.
//!
//! The thread count is switched through OpenMP's own control: with at most
//! zero active parallel levels, llama.cpp's parallel regions run on the
//! calling thread alone, and ggml sizes its work split from the team it got.

use std::ffi::c_int;
use std::time::{Duration, Instant};

/// Shortest time between two looks at the machine: long enough for
/// `/proc/stat`'s 10 ms ticks to resolve a fraction of a core.
const WINDOW: Duration = Duration::from_millis(250);

/// Share of a window that the decoding thread (with all threads), or some
/// task (with one), waited for a CPU above which the machine counts as
/// contended.
const CONTENDED: f64 = 0.2;

/// How much less than a whole idle core per extra thread still counts as
/// room for it (the tick counters are coarse, and the engine thread itself
/// wakes up and sleeps within a window).
const IDLE_SLACK: f64 = 0.25;

extern "C" {
    // OpenMP's runtime routine (libgomp, linked by llama.cpp's build).
    fn omp_set_max_active_levels(max_levels: c_int);
}

/// Decides, before each decode, whether the decode runs on all threads or
/// on one (see the [module documentation](self)). [`LlamaEngine`](super::LlamaEngine)
/// keeps one on its engine thread; public so that `examples/llama_direct.rs`
/// measures llama.cpp with the same choice.
#[derive(Debug)]
pub struct ThreadPolicy {
    /// Threads to switch between; 1 when there is nothing to choose (one
    /// thread configured, or no counters to judge by).
    threads: usize,
    parallel: bool,
    last: Option<Sample>,
}

impl ThreadPolicy {
    /// A policy for a context configured with `threads` threads; it starts
    /// with all of them.
    pub fn new(threads: usize) -> Self {
        Self {
            threads,
            parallel: true,
            last: None,
        }
    }

    /// Look at the machine if a window has passed, and switch between all
    /// threads and one if it asks for it. Call it on the thread that calls
    /// `llama_decode`, right before the call.
    pub fn before_decode(&mut self) {
        if self.threads < 2 {
            return;
        }
        let now = Instant::now();
        if self
            .last
            .as_ref()
            .is_some_and(|last| now.duration_since(last.at) < WINDOW)
        {
            return;
        }
        let Some(sample) = Sample::read(now) else {
            // No counters to judge by (and there will be none later):
            // all threads from now on, as without a policy.
            self.set_parallel(true);
            self.threads = 1;
            return;
        };
        let Some(last) = self.last.replace(sample) else {
            return;
        };
        let Some(window) = Window::between(&last, &sample) else {
            return;
        };
        let parallel = decide(self.parallel, self.threads, &window);
        if parallel != self.parallel {
            self.set_parallel(parallel);
            tracing::debug!(
                threads = if parallel { self.threads } else { 1 },
                own_wait = window.own_wait,
                cpu_pressure = window.pressure,
                idle_cpus = window.idle_cpus,
                "decode threads changed"
            );
        }
    }

    fn set_parallel(&mut self, parallel: bool) {
        if parallel != self.parallel {
            self.parallel = parallel;
            // SAFETY: a plain setter of an OpenMP control variable; called
            // on the decoding thread, outside any parallel region.
            unsafe { omp_set_max_active_levels(c_int::from(parallel)) };
        }
    }
}

/// Whether the next decodes run on all `threads` (`true`) or on one.
fn decide(parallel: bool, threads: usize, window: &Window) -> bool {
    if parallel {
        window.own_wait <= CONTENDED
    } else {
        let room_needed = (threads - 1) as f64 - IDLE_SLACK;
        window.pressure <= CONTENDED && window.idle_cpus >= room_needed
    }
}

/// The kernel's cumulative CPU accounting at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Sample {
    at: Instant,
    /// Nanoseconds the calling thread waited in a run queue.
    waited_ns: u64,
    /// Microseconds in which some runnable task waited for a CPU.
    stalled_us: u64,
    /// Idle (and I/O-wait) ticks summed over all CPUs.
    idle_ticks: u64,
    /// All ticks summed over all CPUs.
    total_ticks: u64,
    /// CPUs the counters cover.
    cpus: usize,
}

impl Sample {
    fn read(at: Instant) -> Option<Sample> {
        let pressure = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let schedstat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        let waited_ns = parse_schedstat(&schedstat)?;
        let stalled_us = parse_pressure(&pressure)?;
        let (idle_ticks, total_ticks, cpus) = parse_stat(&stat)?;
        Some(Sample {
            at,
            waited_ns,
            stalled_us,
            idle_ticks,
            total_ticks,
            cpus,
        })
    }
}

/// What the machine did between two samples.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Window {
    /// Share of the window in which the calling thread waited for a CPU.
    own_wait: f64,
    /// Share of the window in which some runnable task waited for a CPU.
    pressure: f64,
    /// Average number of idle CPUs.
    idle_cpus: f64,
}

impl Window {
    fn between(earlier: &Sample, later: &Sample) -> Option<Window> {
        let wall_us = later.at.duration_since(earlier.at).as_micros() as f64;
        let ticks = later.total_ticks.checked_sub(earlier.total_ticks)?;
        if wall_us <= 0.0 || ticks == 0 {
            return None;
        }
        let stalled = later.stalled_us.checked_sub(earlier.stalled_us)? as f64;
        let idle = later.idle_ticks.checked_sub(earlier.idle_ticks)? as f64;
        let waited_us = later.waited_ns.checked_sub(earlier.waited_ns)? as f64 / 1e3;
        Some(Window {
            own_wait: (waited_us / wall_us).min(1.0),
            pressure: (stalled / wall_us).min(1.0),
            idle_cpus: idle / ticks as f64 * later.cpus as f64,
        })
    }
}

/// The run-queue wait (second field) of `/proc/thread-self/schedstat`, in ns.
fn parse_schedstat(text: &str) -> Option<u64> {
    text.split_whitespace().nth(1)?.parse().ok()
}

/// The `total=` of the `some` line of `/proc/pressure/cpu`, in µs.
fn parse_pressure(text: &str) -> Option<u64> {
    let line = text.lines().find(|line| line.starts_with("some "))?;
    let total = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("total="))?;
    total.parse().ok()
}

/// Idle ticks (idle + iowait), all ticks, and the number of CPUs, from
/// `/proc/stat`'s summary line and its per-CPU lines.
fn parse_stat(text: &str) -> Option<(u64, u64, usize)> {
    let mut lines = text.lines();
    let summary = lines.next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = summary
        .split_whitespace()
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal; guest time is already
    // counted in user and nice.
    if ticks.len() < 8 {
        return None;
    }
    let total = ticks[..8].iter().sum();
    let idle = ticks[3] + ticks[4];
    let cpus = lines
        .take_while(|line| line.starts_with("cpu"))
        .filter(|line| line[3..].starts_with(|c: char| c.is_ascii_digit()))
        .count();
    (cpus > 0).then_some((idle, total, cpus))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRESSURE: &str = "some avg10=89.66 avg60=94.03 avg300=98.24 total=6413237307\n\
                            full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
    const STAT: &str = "cpu  100 5 50 800 40 1 2 2 7 0\n\
                        cpu0 50 2 25 400 20 1 1 1 3 0\n\
                        cpu1 50 3 25 400 20 0 1 1 4 0\n\
                        intr 12345 0 0\n";

    fn window(own_wait: f64, pressure: f64, idle_cpus: f64) -> Window {
        Window {
            own_wait,
            pressure,
            idle_cpus,
        }
    }

    #[test]
    fn counters_are_read_from_the_kernel_formats() {
        assert_eq!(parse_pressure(PRESSURE), Some(6_413_237_307));
        assert_eq!(parse_schedstat("1439508 4159390 2\n"), Some(4_159_390));
        assert_eq!(parse_schedstat("1439508\n"), None);
        assert_eq!(parse_stat(STAT), Some((840, 1000, 2)));
        assert_eq!(parse_pressure("full total=3\n"), None);
        assert_eq!(parse_stat("intr 1 2\n"), None);
        assert_eq!(parse_stat("cpu  1 2 3\ncpu0 1 2 3\n"), None);
    }

    #[test]
    fn a_window_is_the_difference_of_two_samples() {
        let start = Instant::now();
        let sample = |ms: u64, stalled_us: u64, idle_ticks: u64, total_ticks: u64| Sample {
            at: start + Duration::from_millis(ms),
            waited_ns: stalled_us * 500,
            stalled_us,
            idle_ticks,
            total_ticks,
            cpus: 2,
        };
        let earlier = sample(0, 1_000, 100, 1_000);
        // 500 ms on 2 CPUs: 100 ticks, 25 of them idle; 100 ms stalled.
        let later = sample(500, 101_000, 125, 1_100);
        let w = Window::between(&earlier, &later).unwrap();
        assert!((w.pressure - 0.2).abs() < 1e-9);
        assert!((w.own_wait - 0.1).abs() < 1e-9);
        assert!((w.idle_cpus - 0.5).abs() < 1e-9);
        // No ticks yet, or counters that went back: no verdict.
        assert_eq!(
            Window::between(&earlier, &sample(500, 2_000, 100, 1_000)),
            None
        );
        assert_eq!(Window::between(&later, &earlier), None);
    }

    #[test]
    fn contention_drops_to_one_thread_and_idle_cores_bring_the_rest_back() {
        // All threads stay while the decoding thread keeps its core, even
        // if others briefly queue behind it...
        assert!(decide(true, 2, &window(0.05, 0.6, 0.0)));
        // ...and give way when it is kept waiting.
        assert!(!decide(true, 2, &window(0.6, 0.6, 0.0)));
        // One thread stays while the other core is busy...
        assert!(!decide(false, 2, &window(0.0, 0.0, 0.1)));
        assert!(!decide(false, 2, &window(0.0, 0.5, 1.0)));
        // ...and the others return once it is idle.
        assert!(decide(false, 2, &window(0.0, 0.0, 0.9)));
        // Four threads need about three idle cores.
        assert!(!decide(false, 4, &window(0.0, 0.0, 2.0)));
        assert!(decide(false, 4, &window(0.0, 0.0, 2.9)));
    }
}
