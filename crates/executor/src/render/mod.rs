//! Turning an [`ExecResult`] into prompt text, deterministically.
//!
//! Two formats render the same raw events:
//! * [`TraceFormat::Compat`] reproduces the reference implementation's text
//!   (method.md §6.1): the state *before* each line, caller state at
//!   returns, unbounded locals;
//! * [`TraceFormat::Improved`] is ours: one line per executed line with the
//!   state *after* it (including a callee's final state), bounded, with
//!   elided stretches summarised and a closing status line.

mod compat;
mod improved;

use serde::{Deserialize, Serialize};

use crate::result::ExecResult;

/// Which text format to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// The reference format (method.md §6.1).
    Compat,
    /// Our compact state-after-line format.
    Improved,
}

/// Caps applied while rendering (the tracer's own caps apply first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderLimits {
    /// Events rendered at most (later ones are summarised).
    pub max_events: usize,
    /// Characters per rendered value (improved format only; the compat
    /// format prints what the tracer recorded).
    pub max_value_chars: usize,
}

impl Default for RenderLimits {
    fn default() -> Self {
        RenderLimits {
            max_events: 200,
            max_value_chars: 80,
        }
    }
}

/// Renders `result` as text. `source` is the code its line numbers refer to
/// ([`crate::TraceRequest::traced_source`]).
pub fn render(
    result: &ExecResult,
    source: &str,
    format: TraceFormat,
    limits: &RenderLimits,
) -> String {
    let lines: Vec<&str> = source.split('\n').collect();
    match format {
        TraceFormat::Compat => compat::render(result, &lines, limits.max_events),
        TraceFormat::Improved => improved::render(result, &lines, limits),
    }
}
