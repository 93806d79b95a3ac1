//! The structured outcome of one sandboxed execution.
//!
//! Everything here is produced by the Python side and validated by the Rust
//! side; rendering it as prompt text is [`crate::render`]'s job.

use serde::{Deserialize, Serialize};

/// How an execution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The program and the invocation ran to completion.
    Ok,
    /// An exception escaped (including `SystemExit`); see [`ExecResult::exception`].
    Exception,
    /// The program, setup or invocation did not compile.
    SyntaxError,
    /// The line budget ran out (typically an infinite loop); the trace is partial.
    LineLimit,
    /// The time budget ran out; the trace is partial when the soft deadline
    /// could still be honoured, empty after a hard kill.
    Timeout,
    /// The child died without a result: a signal or an `os._exit` code.
    Crashed,
    /// The child's result frame was malformed, forged or missing its nonce.
    ProtocolError,
    /// The child's result exceeded the frame size cap.
    ResultTooLarge,
    /// The executor itself failed (server died, I/O error); never the
    /// candidate's fault, never cached.
    InternalError,
}

impl Status {
    /// The status name as written in results and prompts (`line_limit`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Exception => "exception",
            Status::SyntaxError => "syntax_error",
            Status::LineLimit => "line_limit",
            Status::Timeout => "timeout",
            Status::Crashed => "crashed",
            Status::ProtocolError => "protocol_error",
            Status::ResultTooLarge => "result_too_large",
            Status::InternalError => "internal_error",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exception that ended the execution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExceptionInfo {
    /// The exception class name, e.g. `ZeroDivisionError`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// `str(exception)`, bounded; never computed by user code.
    pub message: String,
    /// The line in the traced source where it was raised (innermost
    /// candidate frame), when known.
    pub line: Option<u32>,
}

/// What a trace event marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A candidate frame starts; `line` is its first line.
    Call,
    /// A line is about to run; the snapshot is the state *after* the
    /// frame's previous line (which is the state *before* this one).
    Line,
    /// A candidate frame returns; the snapshot is its final state.
    Return,
    /// An exception passes through a candidate frame.
    Exception,
}

/// One variable in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// The variable's name.
    pub name: String,
    /// A safe, bounded, Python-style repr (user `__repr__` is never called).
    pub repr: String,
    /// `type(value).__name__`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The reference format's value: the repr of a JSON round trip, with
    /// the safe repr as fallback. Recorded only when
    /// [`crate::ExecLimits::compat_values`] is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat: Option<String>,
}

/// The innermost candidate frame that called the frame of a `return` or
/// `exception` event, as the reference format shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerState {
    /// The caller's current line.
    pub line: u32,
    /// The caller's depth.
    pub depth: u32,
    /// The caller's locals at the moment the callee returned.
    pub locals: Vec<Variable>,
}

/// One recorded stop of the tracer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEvent {
    /// The 1-based ordinal of this event among all events of the run, so
    /// gaps (elided events) are visible.
    pub index: u64,
    /// What happened.
    pub kind: EventKind,
    /// The line in the traced source.
    pub line: u32,
    /// Live candidate frames: 1 at module level, 2 in a called function.
    pub depth: u32,
    /// A per-run id of the frame activation, to pair lines with returns.
    pub frame: u32,
    /// The code object's name (`<module>` at module level).
    pub function: String,
    /// The frame's locals at this stop (module level: the globals the
    /// candidate defined).
    pub locals: Vec<Variable>,
    /// Variables left out of `locals` by the per-snapshot cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub more_locals: u32,
    /// `return`: the returned value's repr; `exception`: `Type: message`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The reference format's rendering of `value` (reprlib-style), in
    /// compat mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compat_value: Option<String>,
    /// For `return`/`exception` in compat mode: the caller's state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<CallerState>,
}

/// How often a traced line ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineHit {
    /// The line in the traced source.
    pub line: u32,
    /// How many `line` events it had.
    pub hits: u64,
}

/// The result of one execution: status, value, trace and resource use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecResult {
    /// How it ended.
    pub status: Status,
    /// The invocation's value (safe repr), when it returned.
    #[serde(default)]
    pub ret: Option<String>,
    /// The escaping exception, for [`Status::Exception`] and
    /// [`Status::SyntaxError`].
    #[serde(default)]
    pub exception: Option<ExceptionInfo>,
    /// Recorded events: the head in full, then sparse samples and the
    /// returns/exceptions of the outermost frames.
    #[serde(default)]
    pub events: Vec<TraceEvent>,
    /// Events that happened but were not recorded.
    #[serde(default)]
    pub elided: u64,
    /// Line events per traced line, sorted by line.
    #[serde(default)]
    pub line_hits: Vec<LineHit>,
    /// Total line events in candidate code.
    #[serde(default)]
    pub lines_executed: u64,
    /// The start of what the program printed (bounded, lossy UTF-8).
    #[serde(default)]
    pub stdout: String,
    /// How many bytes the program printed in total.
    #[serde(default)]
    pub stdout_bytes: u64,
    /// The candidate switched the tracer off or replaced it.
    #[serde(default)]
    pub trace_tampered: bool,
    /// For [`Status::Crashed`]: the killing signal.
    #[serde(default)]
    pub signal: Option<i32>,
    /// For [`Status::Crashed`]: the exit code passed to `os._exit`.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// Extra explanation for protocol, size, internal and timeout statuses.
    #[serde(default)]
    pub detail: Option<String>,
    /// Wall time of the execution, measured by the server.
    #[serde(default)]
    pub wall_ms: f64,
    /// Peak resident memory of the child.
    #[serde(default)]
    pub maxrss_kb: u64,
    /// Time spent installing isolation in the child.
    #[serde(default)]
    pub iso_ms: f64,
    /// For a planned test: the invocation's value as plain data (see
    /// `pyvalue`), judged by the manager.
    #[serde(skip)]
    pub(crate) value: Option<serde_json::Value>,
}

impl ExecResult {
    /// A result that carries only a status and an explanation, for
    /// failures detected outside the child.
    pub fn failure(status: Status, detail: impl Into<String>) -> Self {
        ExecResult {
            status,
            ret: None,
            exception: None,
            events: Vec::new(),
            elided: 0,
            line_hits: Vec::new(),
            lines_executed: 0,
            stdout: String::new(),
            stdout_bytes: 0,
            trace_tampered: false,
            signal: None,
            exit_code: None,
            detail: Some(detail.into()),
            wall_ms: 0.0,
            maxrss_kb: 0,
            iso_ms: 0.0,
            value: None,
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}
