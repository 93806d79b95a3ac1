//! The "where the time went" table of a run, shared by the markdown and
//! the HTML report: one row per phase and per thing waited on.

use crate::profile::RunProfile;

/// One row of the table.
pub(crate) struct PhaseRow {
    /// The phase, or `waiting on …`.
    pub(crate) label: String,
    /// Wall seconds, summed over the tasks.
    pub(crate) wall_s: f64,
    /// Share of the phases' wall, in percent.
    pub(crate) share: f64,
    /// CPU seconds of the threads doing it (none for waiting).
    pub(crate) cpu_s: Option<f64>,
}

/// The rows of `profile`: its phases, then its waits.
pub(crate) fn rows(profile: &RunProfile) -> Vec<PhaseRow> {
    let total = &profile.total;
    let phases_wall = total.phases_wall_s();
    let share = |wall: f64| {
        if phases_wall > 0.0 {
            100.0 * wall / phases_wall
        } else {
            0.0
        }
    };
    let phases = total.phases.iter().map(|p| PhaseRow {
        label: p.name.clone(),
        wall_s: p.wall_s,
        share: share(p.wall_s),
        cpu_s: Some(p.cpu_s),
    });
    let waits = total.waiting.iter().map(|w| PhaseRow {
        label: format!("waiting on the {}", w.on),
        wall_s: w.seconds,
        share: share(w.seconds),
        cpu_s: None,
    });
    phases.chain(waits).collect()
}

/// The sentence under the table: forward tokens per guided line, the
/// process's CPU, and why the phases add up to more than the tasks' wall.
pub(crate) fn footnote(profile: &RunProfile) -> String {
    let total = &profile.total;
    let per_line = match (total.forward_tokens_per_guided_line(), total.guided_lines) {
        (Some(v), lines) => format!(
            "{v:.0} forward tokens per guided line (the guided attempts' {} tokens over {lines} guided lines; {} forward tokens in all)",
            total.guided_attempt_tokens.unwrap_or_default(),
            total.forward_tokens
        ),
        (None, 0) => format!("{} forward tokens, no guided line", total.forward_tokens),
        (None, lines) => format!(
            "{} forward tokens, {lines} guided lines (the guided attempts' own tokens were not recorded for every task)",
            total.forward_tokens
        ),
    };
    let unguided = if total.refreshes > 0 {
        format!(
            "; {} of {} signal refreshes ({:.0}%) held no run (nothing traced, or none fit the block's cap), so the lines after them were written unguided",
            total.refreshes_without_signal,
            total.refreshes,
            100.0 * total.refreshes_without_signal as f64 / total.refreshes as f64
        )
    } else {
        String::new()
    };
    format!(
        "{} task(s), {:.1} s of task wall; phases {:.1} s (agents overlap, so phases may add up to more than the task wall; waiting is part of its phase); {per_line}{unguided}; process CPU {:.1} s.",
        profile.tasks,
        profile.task_wall_s,
        total.phases_wall_s(),
        total.process_cpu_s
    )
}
