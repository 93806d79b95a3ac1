//! Turning an [`ExecResult`] into prompt text, deterministically.
//!
//! Two formats render the same raw events:
//! * [`TraceFormat::Compat`] reproduces the reference implementation's text
//!   (docs/method.md §6.1): the state *before* each line, caller state at
//!   returns, unbounded locals;
//! * [`TraceFormat::ChangedState`] is ours: one line per executed line with the
//!   state *after* it (including a callee's final state), bounded, with
//!   elided stretches summarised and a closing status line.

mod changed_state;
mod compat;

use serde::{Deserialize, Serialize};

use crate::result::ExecResult;

/// Which text format to produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraceFormat {
    /// The reference format (docs/method.md §6.1).
    Compat,
    /// Ours: each executed line with the variables it changed (serialised
    /// as `improved`, its earlier name, so stored run configs still match).
    #[serde(rename = "improved")]
    ChangedState,
}

/// Caps applied while rendering (the tracer's own caps apply first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenderLimits {
    /// Events rendered at most (later ones are summarised).
    pub max_events: usize,
    /// Characters per rendered value (changed-state format only; the compat
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
        TraceFormat::ChangedState => changed_state::render(result, &lines, limits),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{EventKind, Status, TraceEvent, Variable};

    fn var(name: &str, repr: &str, type_name: &str) -> Variable {
        Variable {
            name: name.into(),
            repr: repr.into(),
            type_name: type_name.into(),
            compat: None,
        }
    }

    fn event(
        index: u64,
        kind: EventKind,
        line: u32,
        depth: u32,
        frame: u32,
        locals: Vec<Variable>,
    ) -> TraceEvent {
        TraceEvent {
            index,
            kind,
            line,
            depth,
            frame,
            function: if frame == 1 {
                "<module>".into()
            } else {
                "double".into()
            },
            locals,
            more_locals: 0,
            value: None,
            compat_value: None,
            caller: None,
        }
    }

    /// `def double(x):` / `    y = x * 2` / `    return y` called as
    /// `double(5)`, as the tracer records it without compat values.
    fn traced() -> (ExecResult, &'static str) {
        let x = || var("x", "5", "int");
        let mut ret = event(
            6,
            EventKind::Return,
            3,
            2,
            2,
            vec![x(), var("y", "10", "int")],
        );
        ret.value = Some("10".into());
        let mut result = ExecResult::failure(Status::Ok, "");
        result.detail = None;
        result.ret = Some("10".into());
        result.lines_executed = 4;
        result.events = vec![
            event(1, EventKind::Call, 1, 1, 1, vec![]),
            event(2, EventKind::Line, 1, 1, 1, vec![]),
            event(3, EventKind::Line, 4, 1, 1, vec![]),
            event(4, EventKind::Call, 1, 2, 2, vec![x()]),
            event(5, EventKind::Line, 2, 2, 2, vec![x()]),
            event(
                6,
                EventKind::Line,
                3,
                2,
                2,
                vec![x(), var("y", "10", "int")],
            ),
            ret,
            event(8, EventKind::Return, 4, 1, 1, vec![]),
        ];
        for (i, e) in result.events.iter_mut().enumerate() {
            e.index = i as u64 + 1;
        }
        (
            result,
            "def double(x):\n    y = x * 2\n    return y\ndouble(5)",
        )
    }

    #[test]
    fn compat_golden() {
        let (result, source) = traced();
        let text = render(
            &result,
            source,
            TraceFormat::Compat,
            &RenderLimits::default(),
        );
        let expected = [
            " ",
            "= {} , {}",
            "CALL: def double(x):",
            "= {} , {}",
            "LINE: double(5)",
            "== {'x': 5} , {'x': 'int'}",
            "CALL: def double(x):",
            "== {'x': 5} , {'x': 'int'}",
            "LINE:     y = x * 2",
            "== {'x': 5, 'y': 10} , {'x': 'int', 'y': 'int'}",
            "LINE:     return y",
            "= {} , {}",
            "RETURN: double(5)",
            "Return Value: 10",
            " ",
        ]
        .join("\n");
        assert_eq!(text, expected);
    }

    #[test]
    fn formats_keep_the_names_stored_run_configs_use() {
        let names = [TraceFormat::ChangedState, TraceFormat::Compat]
            .map(|format| serde_json::to_string(&format).unwrap());
        assert_eq!(names, ["\"improved\"", "\"compat\""]);
    }

    #[test]
    fn changed_state_golden() {
        let (result, source) = traced();
        let text = render(
            &result,
            source,
            TraceFormat::ChangedState,
            &RenderLimits::default(),
        );
        let expected = [
            "  call double(x=5)",
            "  L2 y = x * 2 | y=10",
            "  L3 return y -> 10",
            "L4 double(5)",
            "result: 10",
            "status: ok (4 lines executed)",
        ]
        .join("\n");
        assert_eq!(text, expected);
    }

    #[test]
    fn changed_state_marks_gaps_and_clips_values() {
        let (mut result, source) = traced();
        result.events.remove(4);
        result.events[5].locals[1].repr = "1".repeat(200);
        let limits = RenderLimits {
            max_events: 200,
            max_value_chars: 10,
        };
        let text = render(&result, source, TraceFormat::ChangedState, &limits);
        assert!(text.contains("... 1 events not shown"), "{text}");
        assert!(text.contains("y=1111111111..."), "{text}");
    }

    #[test]
    fn hostile_event_indices_never_overflow() {
        let (mut result, source) = traced();
        result.events[2].index = u64::MAX;
        result.events[3].index = 5; // and back down again
        for format in [TraceFormat::ChangedState, TraceFormat::Compat] {
            let text = render(&result, source, format, &RenderLimits::default());
            assert!(!text.is_empty());
        }
        let text = render(
            &result,
            source,
            TraceFormat::ChangedState,
            &RenderLimits::default(),
        );
        assert!(
            text.contains(&format!("... {} events not shown", u64::MAX - 3)),
            "{text}"
        );
        assert!(!text.contains("... 5 events not shown"), "{text}");
    }
}
