//! Where the time of an attempt and of a task goes: wall and CPU seconds
//! per phase, and forward tokens per guided line (issue 15, item 4).
//!
//! # Phases
//! * **head prefill**: the prompt on the unconditional stream. Per attempt
//!   this is its own response marker (the head is forked); per task it adds
//!   the shared heads, prefilled once per prompt style;
//! * **signal prefill**: rebuilding the conditional stream around a new
//!   signal (signal + marker + generated ids);
//! * **answer decode**: the single-token steps of the attempt's answer: in
//!   a guided attempt both streams and the choice of each token (the
//!   guidance formula over the vocabulary), in an unguided one (greedy, a
//!   sample) its one stream;
//! * **sampling**: decoding the candidate forks, and drawing their tokens;
//! * **sandbox**: preparing, tracing and checking programs, and rendering
//!   the traces.
//!
//! # What the clocks say
//! *Wall* is the time the attempt's thread spent in a phase. *CPU* is that
//! thread's own CPU clock over the same span (`CLOCK_THREAD_CPUTIME_ID`):
//! the method's work in Rust (sampling, guidance, rendering). The model
//! runs on the engine's thread and the programs in the sandbox's Python
//! processes, so a phase's **waiting** (wall − CPU) is time the attempt
//! spent off its CPU: blocked on the engine (the model phases) or on the
//! sandbox pool (the sandbox phase), or preempted.
//!
//! # Overlap
//! Agents run on threads of their own and share the engine and the pool,
//! so the phases of different attempts overlap in time: summed over a
//! task, the wall of the phases may exceed the task's wall. The engine's
//! and the sandbox's own CPU are in no phase; `process_cpu_s` of the task
//! holds the whole process's CPU (engine threads included, the sandbox's
//! Python processes not).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::record::{RefreshRecord, TokenRecord};

/// Wall and CPU seconds spent in one phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// Wall-clock seconds.
    pub wall_s: f64,
    /// Seconds on the CPU of the thread doing the phase.
    pub cpu_s: f64,
}

impl PhaseTime {
    /// Time in the phase off the thread's CPU: waiting on the engine or
    /// the sandbox, or preempted.
    pub fn waiting_s(&self) -> f64 {
        (self.wall_s - self.cpu_s).max(0.0)
    }

    pub(crate) fn add(&mut self, other: PhaseTime) {
        self.wall_s += other.wall_s;
        self.cpu_s += other.cpu_s;
    }
}

/// The phases an attempt's thread spends its time in (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// The prompt's part on the unconditional stream.
    HeadPrefill,
    /// The conditional stream around a new signal.
    SignalPrefill,
    /// Single-token steps of the answer and token choice.
    AnswerDecode,
    /// Candidate sampling.
    Sampling,
    /// Programs in the sandbox.
    Sandbox,
}

impl Phase {
    const ALL: [Phase; 5] = [
        Phase::HeadPrefill,
        Phase::SignalPrefill,
        Phase::AnswerDecode,
        Phase::Sampling,
        Phase::Sandbox,
    ];
}

/// The time per phase of one attempt, or of a task (summed).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PhaseProfile {
    /// Prefilling the prompt (see the module docs).
    pub head_prefill: PhaseTime,
    /// Prefilling the conditional stream at refreshes.
    pub signal_prefill: PhaseTime,
    /// Single-token steps of the answer and token choice (`guided_decode`
    /// in records written before unguided decodes were told apart by
    /// name).
    #[serde(alias = "guided_decode")]
    pub answer_decode: PhaseTime,
    /// Sampling candidates.
    pub sampling: PhaseTime,
    /// Preparing, tracing and checking programs.
    pub sandbox: PhaseTime,
    /// Lines of the reply in which at least one token was guided.
    pub guided_lines: u64,
    /// Signal refreshes (a guided attempt rebuilds its signal at new lines).
    pub refreshes: u64,
    /// Of those, the refreshes whose block held no run (nothing could be
    /// traced, or not one run fit the block's token cap): the lines after
    /// them were written without guidance, as the unguided stream would.
    pub refreshes_without_signal: u64,
    /// Forward tokens decoded (all phases).
    pub forward_tokens: u64,
    /// On a task's sum ([`PhaseProfile::sum`]), the forward tokens of the
    /// attempts that guided a line: what guided lines cost, without the
    /// unguided attempts and the shared heads that the task's
    /// `forward_tokens` also holds. `None` on an attempt's own profile,
    /// whose tokens are all its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guided_attempt_tokens: Option<u64>,
}

impl PhaseProfile {
    /// The time of `phase`.
    fn phase(&self, phase: Phase) -> PhaseTime {
        match phase {
            Phase::HeadPrefill => self.head_prefill,
            Phase::SignalPrefill => self.signal_prefill,
            Phase::AnswerDecode => self.answer_decode,
            Phase::Sampling => self.sampling,
            Phase::Sandbox => self.sandbox,
        }
    }

    fn phase_mut(&mut self, phase: Phase) -> &mut PhaseTime {
        match phase {
            Phase::HeadPrefill => &mut self.head_prefill,
            Phase::SignalPrefill => &mut self.signal_prefill,
            Phase::AnswerDecode => &mut self.answer_decode,
            Phase::Sampling => &mut self.sampling,
            Phase::Sandbox => &mut self.sandbox,
        }
    }

    /// Adds `time` to `phase`.
    pub(crate) fn charge(&mut self, phase: Phase, time: PhaseTime) {
        self.phase_mut(phase).add(time);
    }

    /// Every phase with its name, in the order the algorithm runs them.
    pub fn phases(&self) -> [(&'static str, PhaseTime); 5] {
        [
            ("head prefill", self.head_prefill),
            ("signal prefill", self.signal_prefill),
            ("answer decode", self.answer_decode),
            ("candidate sampling", self.sampling),
            ("sandbox", self.sandbox),
        ]
    }

    /// Waiting on the engine: time off the CPU in the model phases.
    pub fn engine_waiting_s(&self) -> f64 {
        [
            self.head_prefill,
            self.signal_prefill,
            self.answer_decode,
            self.sampling,
        ]
        .iter()
        .map(PhaseTime::waiting_s)
        .sum()
    }

    /// Waiting on the sandbox pool: time off the CPU in the sandbox phase.
    pub fn pool_waiting_s(&self) -> f64 {
        self.sandbox.waiting_s()
    }

    /// Forward tokens of the guided attempts per guided line, when a line
    /// was guided: an attempt's own tokens, or a task's guided attempts'.
    pub fn forward_tokens_per_guided_line(&self) -> Option<f64> {
        let tokens = self.guided_attempt_tokens.unwrap_or(self.forward_tokens);
        (self.guided_lines > 0).then(|| tokens as f64 / self.guided_lines as f64)
    }

    /// Counts `refreshes`, an attempt's signal refreshes, and those that
    /// left it without a signal.
    pub(crate) fn count_refreshes(&mut self, refreshes: &[RefreshRecord]) {
        self.refreshes = refreshes.len() as u64;
        self.refreshes_without_signal =
            refreshes.iter().filter(|r| r.signal.is_none()).count() as u64;
    }

    /// The sum of `profiles`, each an attempt's own (a task's attempts).
    pub fn sum<'p>(profiles: impl IntoIterator<Item = &'p PhaseProfile>) -> PhaseProfile {
        let mut total = PhaseProfile::default();
        let mut guided_attempt_tokens = 0;
        for p in profiles {
            for phase in Phase::ALL {
                total.charge(phase, p.phase(phase));
            }
            total.guided_lines += p.guided_lines;
            total.refreshes += p.refreshes;
            total.refreshes_without_signal += p.refreshes_without_signal;
            total.forward_tokens += p.forward_tokens;
            if p.guided_lines > 0 {
                guided_attempt_tokens += p.forward_tokens;
            }
        }
        total.guided_attempt_tokens = Some(guided_attempt_tokens);
        total
    }
}

/// Lines of a reply ([`crate::explain::lines`]) with at least one guided
/// token.
pub(crate) fn guided_lines(tokens: &[TokenRecord]) -> u64 {
    crate::explain::lines(tokens)
        .iter()
        .filter(|line| line.iter().any(|t| t.guided))
        .count() as u64
}

/// Measures one span on the calling thread's wall and CPU clocks.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stopwatch {
    wall: Instant,
    cpu_s: f64,
}

impl Stopwatch {
    /// Starts measuring now.
    pub(crate) fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu_s: thread_cpu_s(),
        }
    }

    /// The time since the start.
    pub(crate) fn elapsed(&self) -> PhaseTime {
        PhaseTime {
            wall_s: self.wall.elapsed().as_secs_f64(),
            cpu_s: (thread_cpu_s() - self.cpu_s).max(0.0),
        }
    }
}

/// The calling thread's CPU time in seconds (0 where the clock is missing).
fn thread_cpu_s() -> f64 {
    cpu_clock_s(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// The whole process's CPU time in seconds, all its threads together.
pub(crate) fn process_cpu_s() -> f64 {
    cpu_clock_s(libc::CLOCK_PROCESS_CPUTIME_ID)
}

fn cpu_clock_s(clock: libc::clockid_t) -> f64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec owned by this frame.
    if unsafe { libc::clock_gettime(clock, &mut now) } != 0 {
        return 0.0;
    }
    now.tv_sec as f64 + now.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(piece: &str, guided: bool) -> TokenRecord {
        TokenRecord {
            step: 0,
            token: 0,
            piece: piece.into(),
            guided,
            argmax_p: Some(0),
            top_p: vec![],
            top_pc: vec![],
            top_guided: vec![],
        }
    }

    #[test]
    fn guided_lines_count_lines_with_a_guided_token() {
        let tokens = [
            token("def f(", false),
            token("x):\n", true),
            token("    y", false),
            token(" = 1\n", false),
            token("    return", true),
            token(" y)\n\n", true),
            token("```", true),
        ];
        // Line 1 ends guided, line 2 has no guided token, line 3 is guided
        // and its token opens a blank line; the fence line is guided.
        assert_eq!(guided_lines(&tokens), 3);
    }

    #[test]
    fn busy_work_shows_on_the_thread_cpu_clock_and_sleep_does_not() {
        let watch = Stopwatch::start();
        let mut x = 0u64;
        let spin = Instant::now();
        while spin.elapsed().as_millis() < 30 {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        std::hint::black_box(x);
        std::thread::sleep(std::time::Duration::from_millis(60));
        let t = watch.elapsed();
        assert!(t.wall_s >= 0.09, "{t:?}");
        assert!(t.cpu_s > 0.0 && t.cpu_s < t.wall_s - 0.05, "{t:?}");
        assert!(t.waiting_s() >= 0.05, "{t:?}");
    }

    #[test]
    fn a_task_profile_sums_its_attempts() {
        let mut a = PhaseProfile::default();
        a.charge(
            Phase::Sandbox,
            PhaseTime {
                wall_s: 2.0,
                cpu_s: 0.5,
            },
        );
        a.guided_lines = 2;
        a.forward_tokens = 100;
        let mut b = a.clone();
        b.charge(
            Phase::AnswerDecode,
            PhaseTime {
                wall_s: 1.0,
                cpu_s: 1.0,
            },
        );
        let total = PhaseProfile::sum([&a, &b]);
        assert_eq!(total.sandbox.wall_s, 4.0);
        assert_eq!(total.pool_waiting_s(), 3.0);
        assert_eq!(total.engine_waiting_s(), 0.0);
        assert_eq!(total.forward_tokens_per_guided_line(), Some(50.0));
        let unguided = PhaseProfile {
            forward_tokens: 500,
            ..PhaseProfile::default()
        };
        let mixed = PhaseProfile::sum([&a, &unguided]);
        assert_eq!(mixed.forward_tokens, 600);
        assert_eq!(mixed.forward_tokens_per_guided_line(), Some(50.0));
        // An attempt's own profile: its own tokens per line.
        assert_eq!(a.forward_tokens_per_guided_line(), Some(50.0));
    }

    #[test]
    fn a_record_from_before_the_rename_reads_its_decode_time() {
        let old = r#"{"guided_decode": {"wall_s": 3.0, "cpu_s": 1.0}, "forward_tokens": 9}"#;
        let read: PhaseProfile = serde_json::from_str(old).unwrap();
        assert_eq!(
            read.answer_decode,
            PhaseTime {
                wall_s: 3.0,
                cpu_s: 1.0
            }
        );
        assert_eq!(read.phases()[2].0, "answer decode");
    }
}
