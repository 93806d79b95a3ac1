//! How a benchmark run shows its progress on stderr: a bar on a terminal,
//! and one line per finished task everywhere else (CI logs, `nohup`), so a
//! long run that nobody watches live still says what it did and when.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::store::TaskResult;

/// The progress display of one run.
pub(crate) struct Progress {
    bar: ProgressBar,
    /// Print one line per finished task (stderr is no terminal).
    lines: bool,
    total: usize,
    done: usize,
    passed: usize,
}

impl Progress {
    /// A display for `total` tasks of which `done` were finished before
    /// (`passed` of them pass). `enabled: false` shows nothing at all.
    pub(crate) fn new(enabled: bool, total: usize, done: usize, passed: usize) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        let bar = if enabled && terminal {
            let bar =
                ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} [{elapsed_precise}, ETA {eta}] {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_position(done as u64);
            bar.reset_eta();
            bar
        } else {
            ProgressBar::hidden()
        };
        let progress = Progress {
            bar,
            lines: enabled && !terminal,
            total,
            done,
            passed,
        };
        progress.bar.set_message(pass_message(passed, done));
        progress
    }

    /// Counts a finished task (`passed`: its selected program passes the
    /// primary suite) and shows it.
    pub(crate) fn task_finished(&mut self, result: &TaskResult, passed: bool) {
        self.done += 1;
        self.passed += usize::from(passed);
        self.bar.inc(1);
        self.bar.set_message(pass_message(self.passed, self.done));
        if self.lines {
            eprintln!(
                "{}",
                task_line(result, passed, self.done, self.total, self.passed)
            );
        }
    }

    /// Counts a task that could not run (it is in no score) and says why,
    /// on a terminal above the bar, elsewhere as its own line.
    pub(crate) fn task_unrunnable(&mut self, task_id: &str, reason: &str) {
        self.done += 1;
        self.bar.inc(1);
        self.bar
            .suspend(|| tracing::warn!("task {task_id} cannot run: {reason}"));
        if self.lines {
            eprintln!(
                "[{}/{}] {task_id}: cannot run; {}",
                self.done,
                self.total,
                pass_message(self.passed, self.done)
            );
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(self) {
        self.bar.finish_and_clear();
    }
}

/// `pass 3/7 (42.9%)`: the running strict pass rate.
fn pass_message(passed: usize, done: usize) -> String {
    if done == 0 {
        "pass -".into()
    } else {
        format!(
            "pass {passed}/{done} ({:.1}%)",
            100.0 * passed as f64 / done as f64
        )
    }
}

/// The log line of one finished task: which, whether it passed, what it
/// cost, and the running pass rate.
fn task_line(
    result: &TaskResult,
    passed: bool,
    done: usize,
    total: usize,
    passes: usize,
) -> String {
    let cost = &result.solution.cost;
    format!(
        "[{done}/{total}] {}: {}, {} attempt(s), {} tokens, {:.1} s; {}",
        result.task_id,
        if passed { "passed" } else { "failed" },
        result.solution.attempt_programs().len(),
        cost.prefill_tokens + cost.decode_tokens,
        result.wall_ms / 1000.0,
        pass_message(passes, done)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::{Cost, ServerUsage, Solution};

    #[test]
    fn a_task_line_names_the_task_its_verdict_costs_and_the_running_rate() {
        let result = TaskResult {
            task_id: "Mbpp/513".into(),
            solution: Solution {
                program: "x = 1".into(),
                attempts: Vec::new(),
                cost: Cost {
                    prefill_tokens: 900,
                    decode_tokens: 82,
                    executions: 4,
                    no_program_tokens: None,
                    usage: ServerUsage::default(),
                },
                records: serde_json::Value::Null,
                profile: None,
            },
            wall_ms: 13_456.0,
            scores: Vec::new(),
        };
        assert_eq!(
            task_line(&result, true, 3, 20, 2),
            "[3/20] Mbpp/513: passed, 1 attempt(s), 982 tokens, 13.5 s; pass 2/3 (66.7%)"
        );
        assert_eq!(pass_message(0, 0), "pass -");
    }
}
