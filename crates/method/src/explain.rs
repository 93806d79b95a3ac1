//! A readable, line-by-line account of what an attempt did: at each line of
//! the reply, the refreshes (candidates, traces, signal size) and every
//! token where guidance changed the choice. `egcfg solve --explain` prints
//! it.

use std::fmt::Write;

use egcfg_engine::Token;

use crate::candidates::CandidateFate;
use crate::guidance::TokenProb;
use crate::outcome::SolveOutcome;
use crate::record::{AttemptRecord, RefreshRecord, TokenRecord};

/// Lines of a trace shown per (candidate, test).
const TRACE_LINES: usize = 6;

/// The account of a whole solve: a summary, then each attempt.
/// `piece` spells a token id (e.g. via the engine's `token_bytes`).
pub fn explain_outcome(outcome: &SolveOutcome, piece: &dyn Fn(Token) -> String) -> String {
    let mut out = String::new();
    let c = &outcome.cost;
    let _ = writeln!(
        out,
        "task {}: {} after {} attempt(s); winner {}; {} forward tokens (reference estimate {}), {} executions, {:.2} s",
        outcome.task_id,
        if outcome.passed { "solved on the visible tests" } else { "not solved" },
        c.attempts_run,
        outcome.winner_name.as_deref().unwrap_or("none"),
        c.forward_tokens,
        c.reference_forward_tokens,
        c.executions,
        c.wall_s
    );
    for attempt in &outcome.attempts {
        out.push('\n');
        out.push_str(&explain_attempt(attempt, piece));
    }
    out
}

/// The account of one attempt.
pub fn explain_attempt(record: &AttemptRecord, piece: &dyn Fn(Token) -> String) -> String {
    let mut out = String::new();
    let c = &record.cost;
    let t = &c.times;
    let r = &c.reference;
    let _ = writeln!(
        out,
        "== attempt {} ({}) seed {}: stop {:?}, visible {}/{}",
        record.spec.index,
        record.name,
        record.spec.seed,
        record.stop,
        record.passed_count(),
        record.visible.len()
    );
    if let Some(e) = &record.error {
        let _ = writeln!(out, "   error: {e}");
    }
    let _ = writeln!(
        out,
        "   cost: {} forward tokens (prefill {}, decode {}, candidates {}), {} executions; {:.2} s",
        c.forward_tokens(),
        c.prefill_tokens,
        c.decode_tokens,
        c.candidate_tokens,
        c.executions,
        t.total_s,
    );
    let phases: Vec<String> = c
        .profile
        .phases()
        .iter()
        .map(|(name, p)| format!("{name} {:.2}/{:.2}", p.wall_s, p.cpu_s))
        .collect();
    let _ = writeln!(
        out,
        "   time, wall/cpu s: {}; waiting on the engine {:.2}, on the sandbox {:.2}",
        phases.join(", "),
        c.profile.engine_waiting_s(),
        c.profile.pool_waiting_s()
    );
    if let Some(per_line) = c.profile.forward_tokens_per_guided_line() {
        let _ = writeln!(
            out,
            "   guided lines: {}, {per_line:.0} forward tokens per guided line",
            c.profile.guided_lines
        );
    }
    let _ = writeln!(
        out,
        "   reference estimate: {} forward tokens (unconditional {}, conditional {}, candidate prefill {}, candidate decode {}), {} refreshes, {} executions",
        r.forward_tokens(),
        r.unconditional,
        r.conditional,
        r.candidate_prefill,
        r.candidate_decode,
        r.refreshes,
        r.executions
    );
    let mut refreshes = record.refreshes.iter().peekable();
    for (line_no, line) in lines(&record.tokens).iter().enumerate() {
        let text: String = line.iter().map(|t| t.piece.as_str()).collect();
        let _ = writeln!(out, "{:>4} | {}", line_no + 1, text.trim_end_matches('\n'));
        let end = line.last().map_or(0, |t| t.step + 1);
        while let Some(refresh) = refreshes.next_if(|r| r.step < end) {
            explain_refresh(&mut out, refresh);
        }
        for token in line.iter().filter(|t| guidance_changed(t)) {
            let _ = writeln!(
                out,
                "     ^ guided {:?} instead of {:?} at token {}: P {} | P_c {} | guided {}",
                token.piece,
                token.argmax_p.map_or_else(|| "?".to_string(), piece),
                token.step,
                top_list(&token.top_p, piece),
                top_list(&token.top_pc, piece),
                top_list(&token.top_guided, piece)
            );
        }
    }
    for refresh in refreshes {
        explain_refresh(&mut out, refresh);
    }
    let _ = writeln!(out, "   answer:\n{}", indent(&record.code, "     "));
    out
}

fn explain_refresh(out: &mut String, refresh: &RefreshRecord) {
    let _ = writeln!(
        out,
        "     * refresh at token {} (line {}): {} sampled, {} unique, signal {} tokens{}",
        refresh.step,
        refresh.line,
        refresh.candidates.len(),
        refresh.unique.len(),
        refresh.signal_tokens,
        if refresh.signal.is_none() {
            " (none: no guidance)"
        } else {
            ""
        }
    );
    for cand in &refresh.candidates {
        let fate = match &cand.fate {
            CandidateFate::Kept { unique } => format!("kept as #{unique}"),
            other => format!("{other:?}").to_lowercase(),
        };
        let _ = writeln!(
            out,
            "       sample {}.{} [{fate}, {:?}]: {:?}",
            cand.round, cand.sample, cand.stop, cand.sampled
        );
    }
    for (i, program) in refresh.unique.iter().enumerate() {
        let _ = writeln!(
            out,
            "       #{i} program:\n{}",
            indent(program, "         ")
        );
        for trace in refresh.traces.iter().filter(|t| t.candidate == i) {
            let _ = writeln!(
                out,
                "         run {} -> {}",
                trace.invocation.replace('\n', "; "),
                trace.status
            );
            let shown: Vec<&str> = trace.text.lines().take(TRACE_LINES).collect();
            let more = trace.text.lines().count().saturating_sub(TRACE_LINES);
            let _ = writeln!(out, "{}", indent(&shown.join("\n"), "           "));
            if more > 0 {
                let _ = writeln!(out, "           ... {more} more trace lines");
            }
        }
    }
    if let Some(probe) = &refresh.probe {
        let _ = writeln!(
            out,
            "       early-stop probe: {} unique from the conditional stream",
            probe.unique.len()
        );
    }
}

/// Whether guidance chose this token where plain decoding (the argmax of
/// `P`) would have chosen another.
pub fn guidance_changed(token: &TokenRecord) -> bool {
    token.guided && token.argmax_p.is_some_and(|p| p != token.token)
}

fn top_list(list: &[TokenProb], piece: &dyn Fn(Token) -> String) -> String {
    if list.is_empty() {
        return "-".into();
    }
    list.iter()
        .map(|t| format!("{:?} {:.3}", piece(t.token), t.prob))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Tokens grouped by the line of the reply they end on.
pub fn lines(tokens: &[TokenRecord]) -> Vec<Vec<&TokenRecord>> {
    let mut out: Vec<Vec<&TokenRecord>> = vec![Vec::new()];
    for t in tokens {
        out.last_mut().expect("never empty").push(t);
        if t.piece.contains('\n') {
            out.push(Vec::new());
        }
    }
    if out.last().is_some_and(Vec::is_empty) {
        out.pop();
    }
    out
}

fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
