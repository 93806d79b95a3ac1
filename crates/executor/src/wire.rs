//! The messages exchanged with the Python servers, and their conversion
//! into the public result types.
//!
//! Requests are JSON objects; a trace or test job carries one program and
//! several invocations, which one child runs one after the other. Replies
//! are a JSON header written by the server (identity, resource use, how
//! many invocations finished, and the status of the one it stopped at when
//! it had to: timeout, crash, forged frame) followed by one length-prefixed
//! body per finished invocation. A body is the child's JSON result, a NUL,
//! and its trace events as lines of separated fields, which
//! [`parse_body`] turns into [`TraceEvent`]s.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{ExecLimits, ReprLimits};
use crate::result::{
    CallerState, EventKind, ExceptionInfo, ExecResult, LineHit, Status, TraceEvent, Variable,
};

/// How far a timeout stretches in wall-clock time for a program that waits
/// for a CPU. The harness does not count a program's time in a run queue
/// against its timeout (so a candidate traced while the model decodes on the
/// same cores does not time out for want of a core, and what the model is
/// shown does not depend on the machine's load), but never lets it run
/// longer than this many times its timeout.
pub(crate) const WALL_STRETCH: f64 = 2.0;

/// What the harness's server grants a child past its timeout before the
/// hard kill: the child's own soft deadline (90% of the timeout) gets to
/// report a timeout with its trace first.
const HARD_KILL_MARGIN_S: f64 = 0.1;

/// Limits as the harness reads them.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct WireLimits {
    pub(crate) timeout_s: f64,
    pub(crate) wall_stretch: f64,
    pub(crate) kill_margin_s: f64,
    memory_bytes: u64,
    file_size_bytes: u64,
    open_files: u64,
    max_lines: u64,
    head_events: u32,
    max_samples: u32,
    repr: ReprLimits,
    stdout_bytes: u64,
    pub(crate) result_bytes: u64,
    compat_values: bool,
}

impl From<&ExecLimits> for WireLimits {
    fn from(l: &ExecLimits) -> Self {
        WireLimits {
            timeout_s: l.timeout.as_secs_f64(),
            wall_stretch: WALL_STRETCH,
            kill_margin_s: HARD_KILL_MARGIN_S,
            memory_bytes: l.memory_bytes,
            file_size_bytes: l.file_size_bytes,
            open_files: l.open_files,
            max_lines: l.max_lines,
            head_events: l.head_events,
            max_samples: l.max_samples,
            repr: l.repr,
            stdout_bytes: l.stdout_bytes,
            result_bytes: l.result_bytes,
            compat_values: l.compat_values,
        }
    }
}

/// One request to a server; `id` is filled in by the server handle.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Job {
    pub(crate) id: u64,
    pub(crate) op: Op,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) program: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) setup: Option<String>,
    /// What to run after the program, each in a fresh namespace with its
    /// own budgets and result frame (trace and test jobs).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) invocations: Vec<WireInvocation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) partials: Option<Vec<String>>,
    #[serde(rename = "assert", skip_serializing_if = "Option::is_none")]
    pub(crate) assert_stmt: Option<String>,
    /// Tests to plan, as (kind, text) with kind "assert" or "script"
    /// (see [`Op::Plan`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tests: Option<Vec<(String, String)>>,
    pub(crate) limits: WireLimits,
    /// The per-execution nonce, only for one-shot processes (a server
    /// draws its own).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) nonce: Option<String>,
}

/// One invocation of a job's program.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub(crate) struct WireInvocation {
    /// A call expression appended to the program (traces).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) call: Option<String>,
    /// Standard input for the program.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) stdin: Option<String>,
    /// Test code run after the program (checks).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) test: Option<String>,
}

/// What a job does in the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Op {
    /// Traced run of a program and an invocation.
    Trace,
    /// Untraced run of a program and a test.
    Test,
    /// docs/method.md §5 on a list of partial programs.
    Prepare,
    /// The call expression of an assert.
    CallExpr,
    /// How each assert or script test is judged outside the candidate's
    /// process (`plan_tests` in the harness).
    Plan,
}

impl Job {
    /// A job of `op` with every optional field empty.
    pub(crate) fn new(op: Op, limits: &ExecLimits) -> Self {
        Job {
            id: 0,
            op,
            program: None,
            setup: None,
            invocations: Vec::new(),
            partials: None,
            assert_stmt: None,
            tests: None,
            limits: limits.into(),
            nonce: None,
        }
    }

    /// The longest the job may take in wall-clock time: the server's hard
    /// deadline per invocation (its timeout and the margin the harness adds
    /// before the kill), stretched by time spent waiting for a CPU.
    pub(crate) fn wall_cap(&self) -> Duration {
        let per_invocation = self.limits.timeout_s + self.limits.kill_margin_s;
        Duration::from_secs_f64(
            per_invocation * self.limits.wall_stretch * self.invocations.len().max(1) as f64,
        )
    }

    /// The largest reply the server may send for this job: one result
    /// frame per invocation, each within the result cap, plus headers.
    pub(crate) fn reply_cap(&self) -> usize {
        let per_result = self.limits.result_bytes as usize + 65536;
        self.invocations.len().max(1) * per_result + 65536
    }

    /// This job with only `invocations` (same program, setup and limits).
    pub(crate) fn with_invocations(&self, invocations: Vec<WireInvocation>) -> Job {
        Job {
            invocations,
            ..self.clone()
        }
    }
}

/// The server's header of a reply.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ReplyHeader {
    pub(crate) id: Option<u64>,
    #[serde(default)]
    pub(crate) status: Option<Status>,
    #[serde(default)]
    pub(crate) detail: Option<String>,
    #[serde(default)]
    pub(crate) wall_ms: f64,
    #[serde(default)]
    pub(crate) maxrss_kb: u64,
    #[serde(default)]
    pub(crate) signal: Option<i32>,
    #[serde(default)]
    pub(crate) exit_code: Option<i32>,
    /// Invocations whose result frames the body holds.
    #[serde(default)]
    pub(crate) done: usize,
}

/// A server's complete reply.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) header: ReplyHeader,
    pub(crate) body: Vec<u8>,
}

#[derive(Deserialize)]
struct WireResult {
    status: Status,
    #[serde(default)]
    ret: Option<String>,
    #[serde(default)]
    exception: Option<ExceptionInfo>,
    #[serde(default)]
    elided: u64,
    #[serde(default)]
    line_hits: Vec<(Option<u32>, u64)>,
    #[serde(default)]
    lines_executed: u64,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stdout_bytes: u64,
    #[serde(default)]
    trace_tampered: bool,
    #[serde(default)]
    iso_ms: f64,
    #[serde(default)]
    wall_ms: f64,
    #[serde(default)]
    detail: Option<String>,
    /// Present (possibly `null`, Python's None) only for planned tests.
    #[serde(default, deserialize_with = "crate::pyvalue::present")]
    value: Option<serde_json::Value>,
}

/// Field separators of the event lines (see `Run.record` in the harness);
/// reprs never contain them, other text is cleaned of them.
const FIELD: char = '\x1f';
const VAR: char = '\x1e';
const PART: char = '\x1d';
const CALLER: char = '\x1c';

fn variables(blob: &str) -> Option<Vec<Variable>> {
    if blob.is_empty() {
        return Some(Vec::new());
    }
    blob.split(VAR)
        .map(|var| {
            let mut it = var.split(PART);
            Some(Variable {
                name: it.next()?.to_string(),
                repr: it.next()?.to_string(),
                type_name: it.next()?.to_string(),
                compat: it.next().map(str::to_string),
            })
        })
        .collect()
}

fn optional(field: &str) -> Option<String> {
    (!field.is_empty()).then(|| field.to_string())
}

/// Parses one event line; `None` if it is malformed.
fn event(line: &str) -> Option<TraceEvent> {
    let f: Vec<&str> = line.split(FIELD).collect();
    if f.len() != 11 {
        return None;
    }
    let kind = match f[1] {
        "0" => EventKind::Call,
        "1" => EventKind::Line,
        "2" => EventKind::Return,
        "3" => EventKind::Exception,
        _ => return None,
    };
    let caller = if f[10].is_empty() {
        None
    } else {
        let mut c = f[10].splitn(3, CALLER);
        Some(CallerState {
            line: c.next()?.parse().ok()?,
            depth: c.next()?.parse().ok()?,
            locals: variables(c.next()?)?,
        })
    };
    Some(TraceEvent {
        index: f[0].parse().ok()?,
        kind,
        line: f[2].parse().ok()?,
        depth: f[3].parse().ok()?,
        frame: f[4].parse().ok()?,
        function: f[5].to_string(),
        locals: variables(f[6])?,
        more_locals: f[7].parse().ok()?,
        value: optional(f[8]),
        compat_value: optional(f[9]),
        caller,
    })
}

/// Splits a child's body into its JSON part and its event lines.
fn split_body(body: &[u8]) -> (&[u8], &[u8]) {
    match body.iter().position(|&b| b == 0) {
        Some(i) => (&body[..i], &body[i + 1..]),
        None => (body, &[]),
    }
}

impl Reply {
    /// The child's result bodies, one per finished invocation; `None` if
    /// the framing is broken.
    pub(crate) fn bodies(&self) -> Option<Vec<&[u8]>> {
        let mut out = Vec::new();
        let mut rest = self.body.as_slice();
        while !rest.is_empty() {
            let n = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            out.push(rest.get(4..4 + n)?);
            rest = &rest[4 + n..];
        }
        Some(out)
    }

    /// The results of a trace or test job with `n` invocations, in order:
    /// one per finished invocation, then the server's verdict on the one it
    /// stopped at. Shorter than `n` when the child ended early; the caller
    /// reruns the rest.
    pub(crate) fn results(&self, n: usize) -> Vec<ExecResult> {
        let h = &self.header;
        let Some(bodies) = self.bodies().filter(|b| b.len() == h.done && b.len() <= n) else {
            return vec![ExecResult::failure(
                Status::ProtocolError,
                "malformed reply body",
            )];
        };
        let mut results: Vec<ExecResult> = bodies
            .into_iter()
            .map(|body| {
                let mut r = parse_body(body);
                r.maxrss_kb = h.maxrss_kb;
                r
            })
            .collect();
        // A line limit or soft timeout ends the child after its frame: the
        // invocations after it never started, so they are left to rerun
        // rather than given the child's exit as their verdict.
        let ended_by_budget = results
            .last()
            .is_some_and(|r| matches!(r.status, Status::Timeout | Status::LineLimit));
        if results.len() < n && !ended_by_budget {
            if let Some(status) = h.status {
                results.push(server_verdict(status, h));
            }
        }
        results
    }
}

/// The result the server decided for the invocation it stopped at.
fn server_verdict(status: Status, h: &ReplyHeader) -> ExecResult {
    let detail = match (&h.detail, status) {
        (Some(d), _) => d.clone(),
        (None, Status::Crashed) => match (h.signal, h.exit_code) {
            (Some(sig), _) => format!("killed by signal {sig}"),
            (None, Some(code)) => format!("exited with code {code} without a result"),
            (None, None) => "ended without a result".to_string(),
        },
        (None, _) => status.to_string(),
    };
    let mut result = ExecResult::failure(status, detail);
    if matches!(status, Status::Crashed | Status::ProtocolError) {
        result.signal = h.signal;
        result.exit_code = h.exit_code;
    }
    result.wall_ms = h.wall_ms;
    result.maxrss_kb = h.maxrss_kb;
    result
}

/// Parses one child result body: JSON, then `\0` and the event lines.
pub(crate) fn parse_body(body: &[u8]) -> ExecResult {
    let (json, events) = split_body(body);
    match serde_json::from_slice::<WireResult>(json) {
        Ok(w) => match parse_events(events) {
            Some(events) => from_wire(w, events),
            None => ExecResult::failure(Status::ProtocolError, "malformed trace events"),
        },
        Err(e) => ExecResult::failure(Status::ProtocolError, format!("malformed result body: {e}")),
    }
}

fn parse_events(text: &[u8]) -> Option<Vec<TraceEvent>> {
    let text = std::str::from_utf8(text).ok()?;
    if text.is_empty() {
        return Some(Vec::new());
    }
    text.split('\n').map(event).collect()
}

fn from_wire(w: WireResult, events: Vec<TraceEvent>) -> ExecResult {
    ExecResult {
        status: w.status,
        ret: w.ret,
        exception: w.exception,
        events,
        elided: w.elided,
        line_hits: w
            .line_hits
            .into_iter()
            .filter_map(|(line, hits)| Some(LineHit { line: line?, hits }))
            .collect(),
        lines_executed: w.lines_executed,
        stdout: w.stdout,
        stdout_bytes: w.stdout_bytes,
        trace_tampered: w.trace_tampered,
        signal: None,
        exit_code: None,
        detail: w.detail,
        wall_ms: w.wall_ms,
        maxrss_kb: 0,
        iso_ms: w.iso_ms,
        value: w.value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(header: &str, bodies: &[&str]) -> Reply {
        let mut body = Vec::new();
        for b in bodies {
            body.extend_from_slice(&(b.len() as u32).to_le_bytes());
            body.extend_from_slice(b.as_bytes());
        }
        Reply {
            header: serde_json::from_str(header).unwrap(),
            body,
        }
    }

    #[test]
    fn event_lines_become_typed_events() {
        let body = "{\"status\":\"ok\",\"ret\":\"4\",\"line_hits\":[[2,1],[3,1]],\"lines_executed\":2}\0\
            1\x1f0\x1f1\x1f2\x1f2\x1ff\x1fx\x1d3\x1dint\x1f0\x1f\x1f\x1f\n\
            2\x1f2\x1f3\x1f2\x1f2\x1ff\x1fx\x1d3\x1dint\x1ey\x1d4\x1dint\x1f0\x1f4\x1f4\x1f4\x1c1\x1c";
        let r = reply(r#"{"id":1,"done":1,"maxrss_kb":9}"#, &[body])
            .results(1)
            .remove(0);
        assert_eq!(r.status, Status::Ok, "{:?}", r.detail);
        assert_eq!(r.events.len(), 2);
        assert_eq!(r.events[0].value, None);
        assert_eq!(r.events[1].kind, EventKind::Return);
        assert_eq!(r.events[1].locals[1].repr, "4");
        assert_eq!(r.events[1].value.as_deref(), Some("4"));
        let caller = r.events[1].caller.as_ref().unwrap();
        assert_eq!((caller.line, caller.depth, caller.locals.len()), (4, 1, 0));
        assert_eq!(
            r.line_hits,
            vec![LineHit { line: 2, hits: 1 }, LineHit { line: 3, hits: 1 }]
        );
        assert_eq!(r.maxrss_kb, 9);
    }

    #[test]
    fn malformed_event_lines_are_protocol_errors() {
        let r = parse_body(b"{\"status\":\"ok\"}\0not an event");
        assert_eq!(r.status, Status::ProtocolError);
    }

    #[test]
    fn an_early_stop_yields_finished_results_then_the_verdict() {
        let r = reply(
            r#"{"id":1,"done":1,"status":"timeout","detail":"killed"}"#,
            &[r#"{"status":"ok"}"#],
        );
        let results = r.results(3);
        assert_eq!(results.len(), 2, "the third invocation is left to rerun");
        assert_eq!(results[0].status, Status::Ok);
        assert_eq!(results[1].status, Status::Timeout);
        let crash = reply(r#"{"id":1,"done":0,"status":"crashed","signal":11}"#, &[]);
        let r = crash.results(1).remove(0);
        assert_eq!((r.status, r.signal), (Status::Crashed, Some(11)));
        assert_eq!(r.detail.as_deref(), Some("killed by signal 11"));
    }

    #[test]
    fn invocations_after_a_budget_stop_are_left_to_rerun() {
        for status in ["timeout", "line_limit"] {
            let first = format!(r#"{{"status":"{status}"}}"#);
            let r = reply(
                r#"{"id":1,"done":1,"status":"crashed","exit_code":0}"#,
                &[&first],
            );
            let results = r.results(3);
            assert_eq!(results.len(), 1, "{status}: the rest did not run");
        }
    }

    #[test]
    fn garbage_is_a_protocol_error() {
        assert_eq!(
            parse_body(b"{\"status\":\"ok\"").status,
            Status::ProtocolError
        );
        assert_eq!(
            parse_body(br#"{"status":"great"}"#).status,
            Status::ProtocolError
        );
        let mut broken = reply(r#"{"id":1,"done":1}"#, &[r#"{"status":"ok"}"#]);
        broken.body.truncate(6);
        assert_eq!(broken.results(1)[0].status, Status::ProtocolError);
    }
}
