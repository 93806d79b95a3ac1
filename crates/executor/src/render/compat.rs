//! The reference implementation's trace text (docs/method.md §6.1).
//!
//! A trace is a list of phases joined by newlines; the first and last are a
//! single space. Each stop is `<'=' × depth> <locals> , <types>`, then
//! `<EVENT>: <source line>`, then `Return Value: <v>` for returns and
//! exceptions. `LINE` shows the state *before* the line (which is what the
//! tracer recorded at that event). At `RETURN` the frame shown is already
//! the caller: its depth, locals and current line. Stops on the line of the
//! previous event are suppressed, as are repeated `for` headers within one
//! frame activation, so loops read like the reference's.

use std::collections::HashSet;

use crate::result::{EventKind, ExecResult, TraceEvent, Variable};

/// Renders `result` in the reference format; `lines` is the traced source.
pub(crate) fn render(result: &ExecResult, lines: &[&str], max_events: usize) -> String {
    let mut phases = vec![" ".to_string()];
    let mut previous_line: Option<u32> = None;
    let mut shown_for_headers: HashSet<(u32, u32)> = HashSet::new();
    // Frames entered and not yet returned, for callers the tracer did not
    // snapshot: (frame id, depth, last line, last locals).
    let mut stack: Vec<(u32, u32, u32, Vec<Variable>)> = Vec::new();
    let mut raised_in: Option<u32> = None;
    for event in &result.events {
        // The return that ends an unwinding frame repeats its EXCEPTION.
        let unwinding = std::mem::take(&mut raised_in) == Some(event.frame);
        if event.kind == EventKind::Exception {
            raised_in = Some(event.frame);
        }
        if unwinding && event.kind == EventKind::Return {
            if let Some(i) = stack.iter().rposition(|f| f.0 == event.frame) {
                stack.truncate(i);
            }
            continue;
        }
        if phases.len() > max_events {
            break;
        }
        let source = source_line(lines, event.line);
        match event.kind {
            EventKind::Call | EventKind::Line => {
                update_stack(&mut stack, event);
                let repeated = previous_line == Some(event.line);
                let for_header = event.kind == EventKind::Line && is_for_header(source);
                previous_line = Some(event.line);
                if repeated || (for_header && !shown_for_headers.insert((event.frame, event.line)))
                {
                    continue;
                }
                let label = if event.kind == EventKind::Call {
                    "CALL"
                } else {
                    "LINE"
                };
                phases.push(format!(
                    "{}\n{label}: {source}",
                    state(event.depth, &event.locals)
                ));
            }
            EventKind::Return | EventKind::Exception => {
                let from_stack = stack
                    .iter()
                    .rposition(|f| f.0 == event.frame)
                    .and_then(|i| i.checked_sub(1))
                    .map(|i| stack[i].clone());
                if event.kind == EventKind::Return {
                    if let Some(i) = stack.iter().rposition(|f| f.0 == event.frame) {
                        stack.truncate(i);
                    }
                }
                let caller = match &event.caller {
                    Some(c) => Some((c.depth, c.line, c.locals.clone())),
                    None => from_stack.map(|(_, depth, line, locals)| (depth, line, locals)),
                };
                let value = event
                    .compat_value
                    .as_deref()
                    .or(event.value.as_deref())
                    .unwrap_or("None");
                let (depth, line, locals) = match (event.kind, caller) {
                    (EventKind::Return, Some(c)) => c,
                    // The outermost frame returns to nobody: the reference
                    // ends there.
                    (EventKind::Return, None) => continue,
                    (_, _) => (event.depth, event.line, event.locals.clone()),
                };
                previous_line = Some(line);
                let label = if event.kind == EventKind::Return {
                    "RETURN"
                } else {
                    "EXCEPTION"
                };
                phases.push(format!(
                    "{}\n{label}: {}\nReturn Value: {value}",
                    state(depth, &locals),
                    source_line(lines, line)
                ));
            }
        }
    }
    phases.push(" ".to_string());
    phases.join("\n")
}

fn update_stack(stack: &mut Vec<(u32, u32, u32, Vec<Variable>)>, event: &TraceEvent) {
    match stack.iter_mut().rev().find(|f| f.0 == event.frame) {
        Some(frame) => {
            frame.2 = event.line;
            frame.3 = event.locals.clone();
        }
        None => stack.push((event.frame, event.depth, event.line, event.locals.clone())),
    }
}

fn source_line<'a>(lines: &[&'a str], line: u32) -> &'a str {
    line.checked_sub(1)
        .and_then(|i| lines.get(i as usize))
        .copied()
        .unwrap_or("")
}

fn is_for_header(source: &str) -> bool {
    let s = source.trim_start();
    s.starts_with("for ") || s.starts_with("async for ")
}

/// `<'=' × depth> {locals} , {types}` as Python dict reprs.
fn state(depth: u32, locals: &[Variable]) -> String {
    let values: Vec<String> = locals
        .iter()
        .map(|v| {
            format!(
                "{}: {}",
                py_str(&v.name),
                v.compat.as_deref().unwrap_or(&v.repr)
            )
        })
        .collect();
    let types: Vec<String> = locals
        .iter()
        .map(|v| format!("{}: {}", py_str(&v.name), py_str(&v.type_name)))
        .collect();
    format!(
        "{} {{{}}} , {{{}}}",
        "=".repeat(depth.max(1) as usize),
        values.join(", "),
        types.join(", ")
    )
}

/// The repr of a Python identifier-like string.
fn py_str(s: &str) -> String {
    if s.contains('\'') && !s.contains('"') {
        format!("\"{s}\"")
    } else {
        format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}
