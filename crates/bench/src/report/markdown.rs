//! The report as a markdown table (readable in a terminal as it is).

use std::fmt::Write;

use super::phases::{footnote, rows};
use super::requests;
use super::{
    fmt_count, fmt_opt, fmt_share, left_out_note, twin_note, unscored_note, Curve, Group, Report,
    RunReport, SuiteReport, AGAINST_SAMPLE_NOTE, DERIVED_NOTE, INTERVAL_NOTE,
};

/// One table per (dataset, split, model): a row per run and suite.
pub fn markdown(report: &Report) -> String {
    let mut out = String::new();
    if let Some(note) = left_out_note(report) {
        let _ = writeln!(out, "{note}\n");
    }
    if report.groups.is_empty() {
        out.push_str("No runs recorded yet.\n");
    }
    for group in &report.groups {
        group_table(&mut out, group);
    }
    out
}

fn group_table(out: &mut String, group: &Group) {
    let _ = writeln!(
        out,
        "## {}:{} · {}\n",
        group.dataset, group.split, group.model
    );
    if let Some(note) = group.note {
        let _ = writeln!(out, "{note}\n");
    }
    if let Some(note) = unscored_note(group) {
        let _ = writeln!(out, "{note}\n");
    }
    if let Some(note) = twin_note(group) {
        let _ = writeln!(out, "{note}\n");
    }
    out.push_str(
        "| method | config | suite | tasks | strict pass@1 | any-of-N | N mean/max | pass@k | RSR vs baseline (shared tasks) | fixed/broken | tokens/task | exec/task | wall s/task | tokens on no program |\n",
    );
    out.push_str("|---|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|\n");
    for run in &group.runs {
        for suite in &run.suites {
            row(out, run, suite);
        }
        if run.suites.is_empty() {
            let _ = writeln!(
                out,
                "| {} | {} | - | 0 | - | - | - | - | - | - | - | - | - | - |",
                run.info.key.method, run.info.config_hash
            );
        }
    }
    for run in group.runs.iter().filter(|r| !r.unrunnable.is_empty()) {
        let _ = writeln!(
            out,
            "\n{} {}: {} task(s) could not run and are in no score:",
            run.info.key.method,
            run.info.config_hash,
            run.unrunnable.len()
        );
        for task in &run.unrunnable {
            let _ = writeln!(out, "- {}: {}", task.task_id, task.reason);
        }
    }
    if let Some(curve) = &group.curve {
        curve_table(out, curve);
    }
    for run in &group.runs {
        phase_table(out, run);
        request_table(out, run);
    }
    match group.baseline {
        Some(b) => {
            let _ = writeln!(
                out,
                "\nBaseline: run {} (config {}).\n",
                group.runs[b].info.id.0, group.runs[b].info.config_hash
            );
        }
        None => out.push_str("\nNo baseline run in this group: RSR not available.\n\n"),
    }
}

/// The budget curve as a table: one row per run and suite.
fn curve_table(out: &mut String, curve: &Curve) {
    let _ = writeln!(
        out,
        "\nBudget curve, on the {} task(s) every run above finished:\n",
        curve.tasks
    );
    out.push_str(
        "| suite | line | config | token budget | derived from | strict pass@1 | 95% CI | vs sample | tokens/task | wall s/task |\n",
    );
    out.push_str("|---|---|---|---:|---|---:|---:|---|---:|---:|\n");
    for p in &curve.points {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            p.suite,
            curve.line_name(p),
            p.config_hash,
            p.budget.map_or("-".into(), |b| b.to_string()),
            p.derived_from.as_deref().unwrap_or("-"),
            p.strict,
            p.strict.wilson_95_text(),
            p.against_sample.map_or("-".into(), |c| c.to_string()),
            fmt_count(p.tokens),
            p.wall_s
        );
    }
    let _ = writeln!(out, "\n{INTERVAL_NOTE}");
    if curve.points.iter().any(|p| p.against_sample.is_some()) {
        let _ = writeln!(out, "\n{AGAINST_SAMPLE_NOTE}");
    }
    if curve.points.iter().any(|p| p.derived_from.is_some()) {
        let _ = writeln!(out, "\n{DERIVED_NOTE}");
    }
}

/// Where the time of `run` went, if it recorded that.
fn phase_table(out: &mut String, run: &RunReport) {
    let Some(profile) = &run.profile else { return };
    let _ = writeln!(
        out,
        "\nWhere the time went, {} {}:\n\n| phase | wall s | share | CPU s |\n|---|---:|---:|---:|",
        run.info.key.method, run.info.config_hash
    );
    for row in rows(profile) {
        let cpu = row.cpu_s.map_or_else(|| "-".into(), |c| format!("{c:.1}"));
        let _ = writeln!(
            out,
            "| {} | {:.1} | {:.0}% | {cpu} |",
            row.label, row.wall_s, row.share
        );
    }
    let _ = writeln!(out, "\n{}", footnote(profile));
}

/// What the model server was asked for `run`, if its model was served.
fn request_table(out: &mut String, run: &RunReport) {
    let Some(cost) = &run.server_cost else { return };
    let _ = writeln!(
        out,
        "\nWhat the model server was asked, {} {}:\n\n| over | tasks | attempts | requests | prompt tokens | generated tokens | requests per generated token |\n|---|---:|---:|---:|---:|---:|---:|",
        run.info.key.method, run.info.config_hash
    );
    for row in requests::rows(cost) {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.label,
            row.tasks,
            row.attempts,
            row.requests,
            row.prompt_tokens,
            row.generated_tokens,
            row.per_generated_token
        );
    }
    let _ = writeln!(out, "\n{}", requests::footnote(cost));
}

fn row(out: &mut String, run: &RunReport, suite: &SuiteReport) {
    let (any, n) = match &suite.any_of_n {
        Some(a) => (
            a.rate.to_string(),
            format!("{:.1}/{}", a.mean_attempts, a.max_attempts),
        ),
        None => ("-".into(), "-".into()),
    };
    let pass_k = if suite.pass_at_k.is_empty() {
        "-".to_string()
    } else {
        suite
            .pass_at_k
            .iter()
            .map(|p| format!("@{} {:.1}% (n={})", p.k, p.percent, p.tasks))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (rsr, fixed) = match &suite.vs_baseline {
        Some(c) => (
            format!("{} ({} vs {})", fmt_opt(c.rsr), c.method, c.base),
            format!("+{}/-{}", c.fixed.len(), c.broken.len()),
        ),
        None => ("-".into(), "-".into()),
    };
    let c = &run.cost;
    let _ = writeln!(
        out,
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} |",
        run.info.key.method,
        run.info.config_hash,
        suite.suite,
        suite.strict.total,
        suite.strict,
        any,
        n,
        pass_k,
        rsr,
        fixed,
        fmt_count(c.tokens.mean),
        fmt_count(c.executions.mean),
        c.wall_s.mean,
        fmt_share(c.no_program_share)
    );
}

#[cfg(test)]
mod tests {
    use super::super::{build, tests::sample_store, tests::served_store};
    use super::*;

    #[test]
    fn table_shows_counts_rsr_and_n() {
        let text = markdown(&build(&sample_store()).unwrap());
        assert!(text.contains("## mbpp:validation · qwen"), "{text}");
        assert!(
            text.contains("\nNone of these tasks is in mbpp-et-partial or mbpp+;"),
            "{text}"
        );
        let eg = text.lines().find(|l| l.starts_with("| egcfg")).unwrap();
        // 3 of 4 strict; shared tasks 2/3 each: RSR 0.0.
        assert!(
            eg.contains("| 4 | 75.0% (3/4) | 75.0% (3/4) | 1.0/1 |"),
            "{eg}"
        );
        assert!(eg.contains("0.0 (66.7% (2/3) vs 66.7% (2/3))"), "{eg}");
        assert!(eg.contains("| +1/-1 |"), "{eg}");
        assert!(eg.contains("| 1010 | 2 | 1.5 | - |"), "{eg}");
        let base = text.lines().find(|l| l.starts_with("| baseline")).unwrap();
        assert!(base.contains("66.7% (2/3)"), "{base}");
        // The curve, on the 3 shared tasks, gives each rate its interval.
        let curve = text
            .lines()
            .find(|l| l.starts_with("| mbpp | baseline"))
            .unwrap();
        assert!(curve.contains("| 66.7% (2/3) | 21–94% |"), "{curve}");
        assert!(text.contains(INTERVAL_NOTE), "{text}");
    }

    #[test]
    fn tasks_that_could_not_run_are_listed_with_their_reason() {
        let mut store = sample_store();
        let run = store.runs().unwrap()[1].id;
        let task = crate::store::UnrunnableTask {
            task_id: "Mbpp/515".into(),
            reason: "the prompt needs 900 tokens but the context holds 512".into(),
        };
        store.record_unrunnable(run, &task).unwrap();

        let text = markdown(&build(&store).unwrap());

        assert!(
            text.contains("task(s) could not run and are in no score:\n- Mbpp/515: the prompt needs 900 tokens"),
            "{text}"
        );
        let eg = text.lines().find(|l| l.starts_with("| egcfg")).unwrap();
        assert!(eg.contains("| 4 | 75.0% (3/4) |"), "still 4 scored: {eg}");
    }

    #[test]
    fn the_time_of_a_profiled_run_is_split_by_phase() {
        let text = markdown(&build(&sample_store()).unwrap());
        assert_eq!(
            text.matches("Where the time went").count(),
            1,
            "only the EG-CFG run has profiles: {text}"
        );
        // Four tasks of 2 s answer decode (0.5 CPU), 1 s sandbox, 1.5 s
        // waiting on the engine, 400 guided attempts' tokens (of 500) over 4
        // guided lines each, 2 of 5 refreshes without a signal.
        assert!(
            text.contains("| answer decode | 8.0 | 67% | 2.0 |"),
            "{text}"
        );
        assert!(text.contains("| sandbox | 4.0 | 33% | 0.4 |"), "{text}");
        assert!(
            text.contains("| waiting on the engine | 6.0 | 50% | - |"),
            "{text}"
        );
        assert!(
            text.contains("4 task(s), 6.0 s of task wall; phases 12.0 s"),
            "{text}"
        );
        assert!(
            text.contains(
                "100 forward tokens per guided line (the guided attempts' 1600 tokens over 16 guided lines; 2000 forward tokens in all); 8 of 20 signal refreshes (40%) held no run"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_served_run_shows_its_requests_and_a_local_one_does_not() {
        let local = markdown(&build(&sample_store()).unwrap());
        assert!(!local.contains("model server"), "{local}");

        let text = markdown(&build(&served_store()).unwrap());
        assert_eq!(text.matches("What the model server was asked").count(), 1);
        assert!(
            text.contains("| all tasks | 2 | - | 30 | 3000 (40% cached) | 120 | 0.250 |"),
            "{text}"
        );
        assert!(
            text.contains("| γ = 1 attempts | 2 | 2 | 16 | 1600 (40% cached) | 80 | 0.200 |"),
            "{text}"
        );
        assert!(
            text.contains("| γ = 0 attempts | 1 | 1 | 4 | 400 (40% cached) | 10 | 0.400 |"),
            "{text}"
        );
    }

    #[test]
    fn empty_database() {
        let store = crate::store::Store::open_in_memory().unwrap();
        assert_eq!(markdown(&build(&store).unwrap()), "No runs recorded yet.\n");
    }
}
