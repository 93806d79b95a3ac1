//! egcfg's compact trace text: what each executed line *did*.
//!
//! One line per executed source line, indented by call depth:
//! `L<n> <code> | <changes>`, where the changes are the variables the line
//! created or modified (the state *after* it), `-> <value>` marks a return
//! and `!! <Type: message>` an exception. A call shows its arguments. Runs
//! of elided events become a single `... N events not shown` line. The
//! trace ends with the invocation's value or exception, any printed output
//! and a status line. Everything is bounded by [`super::RenderLimits`].

use std::collections::HashMap;

use super::RenderLimits;
use crate::result::{EventKind, ExecResult, Status, TraceEvent, Variable};

/// Per frame activation: the line awaiting its after-state, and the state
/// the frame had when that line started.
struct Frame {
    pending: Option<u32>,
    before: Vec<Variable>,
    /// An exception passed through since the last line.
    raised: bool,
}

/// The type name compat-mode snapshots give module functions; such
/// variables are definitions, not state.
const COMPAT_FUNCTION: &str = "Function";

/// Module-level statements that only define things; their lines are left
/// out.
fn is_definition(code: &str) -> bool {
    ["def ", "async def ", "class ", "import ", "from ", "@"]
        .iter()
        .any(|p| code.starts_with(p))
}

/// Renders `result`; `lines` is the traced source.
pub(crate) fn render(result: &ExecResult, lines: &[&str], limits: &RenderLimits) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut frames: HashMap<u32, Frame> = HashMap::new();
    let mut last_index = 0u64;
    let mut shown = 0usize;
    let mut cut = false;
    for event in &result.events {
        if shown >= limits.max_events {
            cut = true;
            break;
        }
        // Indices come from the child: never trust them to be increasing.
        let gap = event.index.saturating_sub(last_index.saturating_add(1));
        if gap > 0 && last_index > 0 {
            out.push(format!("... {gap} events not shown"));
            frames.values_mut().for_each(|f| f.pending = None);
        }
        last_index = event.index;
        let indent = "  ".repeat(event.depth.saturating_sub(1) as usize);
        match event.kind {
            EventKind::Call => {
                if event.function != "<module>" {
                    out.push(format!(
                        "{indent}call {}({})",
                        event.function,
                        assignments(&event.locals, limits)
                    ));
                    shown += 1;
                }
                frames.insert(
                    event.frame,
                    Frame {
                        pending: None,
                        before: event.locals.clone(),
                        raised: false,
                    },
                );
            }
            EventKind::Line => {
                let frame = frames.entry(event.frame).or_insert(Frame {
                    pending: None,
                    before: event.locals.clone(),
                    raised: false,
                });
                frame.raised = false;
                if let Some(line) = frame.pending {
                    if !(event.depth == 1 && is_definition(code_of(lines, line))) {
                        out.push(step(&indent, line, lines, &frame.before, event, "", limits));
                        shown += 1;
                    }
                }
                frame.pending = Some(event.line);
                frame.before = event.locals.clone();
            }
            EventKind::Return | EventKind::Exception => {
                let Some(frame) = frames.get_mut(&event.frame) else {
                    continue;
                };
                let module = event.function == "<module>";
                let value = clip(
                    event.value.as_deref().unwrap_or("None"),
                    limits.max_value_chars,
                );
                let (tail, line) = match event.kind {
                    EventKind::Exception => {
                        frame.raised = true;
                        (
                            format!(" !! {value}"),
                            frame.pending.take().or(Some(event.line)),
                        )
                    }
                    // Unwinding after an exception: already shown.
                    _ if frame.raised && frame.pending.is_none() => (String::new(), None),
                    _ if module => (String::new(), frame.pending.take()),
                    _ => (
                        format!(" -> {value}"),
                        frame.pending.take().or(Some(event.line)),
                    ),
                };
                if let Some(line) = line {
                    out.push(step(
                        &indent,
                        line,
                        lines,
                        &frame.before,
                        event,
                        &tail,
                        limits,
                    ));
                    shown += 1;
                }
                frame.before = event.locals.clone();
                if event.kind == EventKind::Return {
                    frames.remove(&event.frame);
                }
            }
        }
    }
    if cut {
        out.push(format!(
            "... trace cut at {} lines ({} events recorded)",
            limits.max_events,
            result.events.len()
        ));
    }
    out.extend(summary(result, limits));
    out.join("\n")
}

/// `L<n> <code> | <changes><tail>`.
fn step(
    indent: &str,
    line: u32,
    lines: &[&str],
    before: &[Variable],
    after: &TraceEvent,
    tail: &str,
    limits: &RenderLimits,
) -> String {
    let code = code_of(lines, line);
    let changed: Vec<&Variable> = after
        .locals
        .iter()
        .filter(|v| v.type_name != COMPAT_FUNCTION)
        .filter(|v| !before.iter().any(|b| b.name == v.name && b.repr == v.repr))
        .collect();
    let mut text = format!("{indent}L{line} {code}");
    if !changed.is_empty() {
        text.push_str(" | ");
        text.push_str(&assignments_of(&changed, limits));
    }
    text.push_str(tail);
    text
}

fn code_of<'a>(lines: &[&'a str], line: u32) -> &'a str {
    line.checked_sub(1)
        .and_then(|i| lines.get(i as usize))
        .map_or("", |s| s.trim())
}

fn assignments(vars: &[Variable], limits: &RenderLimits) -> String {
    assignments_of(&vars.iter().collect::<Vec<_>>(), limits)
}

fn assignments_of(vars: &[&Variable], limits: &RenderLimits) -> String {
    vars.iter()
        .map(|v| format!("{}={}", v.name, clip(&v.repr, limits.max_value_chars)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let head: String = text.chars().take(max).collect();
        format!("{head}...")
    }
}

/// The closing lines: value or exception, output, status.
fn summary(result: &ExecResult, limits: &RenderLimits) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(ret) = &result.ret {
        out.push(format!("result: {}", clip(ret, limits.max_value_chars)));
    }
    if let Some(e) = &result.exception {
        let at = e.line.map(|l| format!(" at L{l}")).unwrap_or_default();
        out.push(format!(
            "raised: {}: {}{at}",
            e.type_name,
            clip(&e.message, limits.max_value_chars)
        ));
    }
    if result.stdout_bytes > 0 {
        let more = result
            .stdout_bytes
            .saturating_sub(result.stdout.len() as u64);
        let printed = clip(&result.stdout, limits.max_value_chars * 4);
        out.push(if more > 0 {
            format!("stdout: {printed:?} (+{more} bytes)")
        } else {
            format!("stdout: {printed:?}")
        });
    }
    let status = match result.status {
        Status::Ok => format!("status: ok ({} lines executed)", result.lines_executed),
        Status::LineLimit => format!(
            "status: line_limit (stopped after {} lines: probably an endless loop)",
            result.lines_executed
        ),
        Status::Timeout => "status: timeout (stopped at the time limit)".to_string(),
        Status::Crashed => match (result.signal, result.exit_code) {
            (Some(sig), _) => format!("status: crashed (signal {sig})"),
            (None, Some(code)) => format!("status: crashed (exit code {code})"),
            _ => "status: crashed".to_string(),
        },
        other => format!("status: {other}"),
    };
    out.push(status);
    out
}
