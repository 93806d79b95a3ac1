//! Judging one test from its execution results.
//!
//! The harness's planner (run once per distinct test in a fresh sandboxed
//! interpreter that holds no candidate code) turns a test into checks: an
//! `assert` of a plain shape (`f(x) == expected`, `!=`, `is
//! None/True/False`, `math.isclose(f(x), expected)`, a bare expression,
//! each possibly under `not`, where `expected` is a literal or an
//! expression of pure builtins the planner evaluates itself), or a
//! HumanEval-style script whose `check(candidate)` is made of such asserts
//! (one check per assert, `candidate` read as the entry point). The child
//! only evaluates each check's call and sends its value as plain data
//! ([`crate::pyvalue`]); it is judged here, and the expected value never
//! enters the child. Stdio tests compare printed output here. Any other
//! test is refused or run whole in the child, as
//! [`crate::UnplannedTests`] says.

use std::sync::Arc;

use egcfg_task::TestCase;
use serde::Deserialize;

use crate::pyvalue::{isclose, py_eq, PyValue};
use crate::request::{TestOutcome, Verdict};
use crate::result::{ExecResult, Status};

/// How the harness's `test_plan` says an assert is judged here.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TestPlan {
    kind: PlanKind,
    /// The expression the child evaluates.
    pub(crate) call: String,
    #[serde(default, deserialize_with = "crate::pyvalue::present")]
    expected: Option<serde_json::Value>,
    #[serde(default)]
    negate: bool,
    #[serde(default)]
    rel_tol: f64,
    #[serde(default)]
    abs_tol: f64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PlanKind {
    Eq,
    Ne,
    Is,
    IsNot,
    Truthy,
    Isclose,
}

impl TestPlan {
    /// Whether the assert holds for `got`; `Err` says why it cannot be
    /// judged.
    fn holds(&self, got: &PyValue) -> Result<bool, String> {
        let identity = matches!(self.kind, PlanKind::Is | PlanKind::IsNot);
        match got {
            // Identity with None/True/False and a builtin type's truth are
            // known without the object's methods; nothing else is.
            PyValue::Unsupported(_, _) if identity => {}
            PyValue::Unsupported(_, Some(_)) if matches!(self.kind, PlanKind::Truthy) => {}
            PyValue::Unsupported(what, _) => {
                return Err(format!(
                    "the value ({what}) is not plain data, so it cannot be compared outside \
                     the candidate's process"
                ))
            }
            _ => {}
        }
        let expected = || {
            self.expected
                .as_ref()
                .and_then(PyValue::decode)
                .ok_or_else(|| "the test's expected value is missing".to_string())
        };
        let same_singleton = |e: &PyValue| {
            matches!((got, e), (PyValue::None, PyValue::None))
                || matches!((got, e), (PyValue::Bool(a), PyValue::Bool(b)) if a == b)
        };
        let holds = match self.kind {
            PlanKind::Eq => py_eq(got, &expected()?),
            PlanKind::Ne => !py_eq(got, &expected()?),
            PlanKind::Is => same_singleton(&expected()?),
            PlanKind::IsNot => !same_singleton(&expected()?),
            PlanKind::Truthy => got.truthy().unwrap_or(false),
            PlanKind::Isclose => match (got.as_float(), expected()?.as_float()) {
                (Some(a), Some(b)) => isclose(a, b, self.rel_tol, self.abs_tol),
                _ => return Err("math.isclose needs a number".into()),
            },
        };
        Ok(holds != self.negate)
    }
}

/// How one test of a check is judged.
#[derive(Debug, Clone)]
pub(crate) enum Judging {
    /// Each check's call runs in the child and its value is judged here;
    /// the test passes when every check holds.
    Planned(Arc<[TestPlan]>),
    /// Run in the child; the printed output (stdio) is judged here, or
    /// (tests the planner does not know, when allowed) the child's report
    /// that nothing was raised is trusted.
    InChild,
    /// Not run: it cannot be judged outside the candidate's process.
    Refused,
}

/// The verdict on a planned test from its checks' results, in order: the
/// first check that does not pass decides, as the first failing assert of
/// a script would.
pub(crate) fn judge_checks(
    test: &TestCase,
    plans: &[TestPlan],
    results: &[ExecResult],
) -> TestOutcome {
    let mut wall_ms = 0.0;
    for (plan, result) in plans.iter().zip(results) {
        let mut outcome = judge(test, Some(plan), result);
        wall_ms += outcome.wall_ms;
        if outcome.verdict != Verdict::Pass {
            outcome.wall_ms = wall_ms;
            return outcome;
        }
    }
    TestOutcome {
        verdict: Verdict::Pass,
        status: Status::Ok,
        detail: String::new(),
        wall_ms,
    }
}

/// The outcome of a test that was not run because nothing outside the
/// candidate's process could judge it.
pub(crate) fn refused() -> TestOutcome {
    TestOutcome {
        verdict: Verdict::Error,
        status: Status::InternalError,
        detail: "not run: this test's shape cannot be judged outside the candidate's process \
                 (write it as asserts like `assert f(x) == value`, or allow \
                 UnplannedTests::RunInChild)"
            .into(),
        wall_ms: 0.0,
    }
}

/// Printed bytes kept beyond the expected output, so that longer output is
/// still seen to differ.
pub(crate) const STDOUT_MARGIN: u64 = 4096;

/// The verdict on `test` given how its execution ended.
pub(crate) fn judge(test: &TestCase, plan: Option<&TestPlan>, result: &ExecResult) -> TestOutcome {
    let (verdict, detail) = match (result.status, test) {
        (Status::Ok, TestCase::Stdio { stdout, .. }) => compare_stdout(stdout, result),
        (Status::Ok, _) if plan.is_some() => judge_value(plan.expect("checked"), result),
        (Status::Ok, _) => (Verdict::Pass, String::new()),
        (Status::Exception, _) => {
            let exc = result.exception.as_ref();
            let name = exc.map_or("exception", |e| e.type_name.as_str());
            let verdict = if name == "AssertionError" && !matches!(test, TestCase::Stdio { .. }) {
                Verdict::Fail
            } else {
                Verdict::Error
            };
            let detail = match exc {
                Some(e) => {
                    let at = e.line.map(|l| format!(" (line {l})")).unwrap_or_default();
                    if e.message.is_empty() {
                        format!("{}{at}", e.type_name)
                    } else {
                        format!("{}: {}{at}", e.type_name, e.message)
                    }
                }
                None => name.to_string(),
            };
            (verdict, detail)
        }
        (status, _) => {
            let detail = match &result.detail {
                Some(d) => format!("{status}: {d}"),
                None => status.to_string(),
            };
            (Verdict::Error, detail)
        }
    };
    TestOutcome {
        verdict,
        status: result.status,
        detail: one_line(&detail, 300),
        wall_ms: result.wall_ms,
    }
}

fn judge_value(plan: &TestPlan, result: &ExecResult) -> (Verdict, String) {
    let got = result.value.as_ref().and_then(PyValue::decode);
    let Some(got) = got else {
        return (Verdict::Error, "no value came back for the test".into());
    };
    let shown = result.ret.as_deref().unwrap_or("?");
    match plan.holds(&got) {
        Ok(true) => (Verdict::Pass, String::new()),
        Ok(false) => (
            Verdict::Fail,
            format!("AssertionError: {} gave {}", plan.call, shown),
        ),
        Err(why) => (Verdict::Fail, format!("{} gave {shown}: {why}", plan.call)),
    }
}

fn compare_stdout(expected: &str, result: &ExecResult) -> (Verdict, String) {
    if result.stdout_bytes > result.stdout.len() as u64 {
        return (
            Verdict::Fail,
            format!(
                "printed {} bytes, expected {}",
                result.stdout_bytes,
                expected.len()
            ),
        );
    }
    if normalise(&result.stdout) == normalise(expected) {
        (Verdict::Pass, String::new())
    } else {
        (
            Verdict::Fail,
            format!(
                "expected {:?}, got {:?}",
                one_line(expected, 80),
                one_line(&result.stdout, 80)
            ),
        )
    }
}

/// Lines with trailing whitespace removed, trailing empty lines dropped.
fn normalise(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    while lines.last() == Some(&"") {
        lines.pop();
    }
    lines
}

fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c == '\n' { ' ' } else { c })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}...")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::ExceptionInfo;

    fn ok_with_stdout(out: &str) -> ExecResult {
        let mut r = ExecResult::failure(Status::Ok, "");
        r.stdout = out.to_string();
        r.stdout_bytes = out.len() as u64;
        r
    }

    fn stdio(expected: &str) -> TestCase {
        TestCase::Stdio {
            stdin: String::new(),
            stdout: expected.to_string(),
        }
    }

    #[test]
    fn trailing_whitespace_and_blank_lines_do_not_matter() {
        let t = stdio("1 2\n3\n");
        assert_eq!(
            judge(&t, None, &ok_with_stdout("1 2  \n3\n\n")).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(&t, None, &ok_with_stdout("1 2\n4\n")).verdict,
            Verdict::Fail
        );
        assert_eq!(
            judge(&t, None, &ok_with_stdout(" 1 2\n3\n")).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn truncated_output_fails() {
        let t = stdio("x");
        let mut r = ok_with_stdout("x");
        r.stdout_bytes = 10_000;
        assert_eq!(judge(&t, None, &r).verdict, Verdict::Fail);
    }

    #[test]
    fn assertion_errors_fail_other_exceptions_error() {
        let t = TestCase::Assert {
            code: "assert f() == 1".into(),
        };
        let mut r = ExecResult::failure(Status::Exception, "");
        r.exception = Some(ExceptionInfo {
            type_name: "AssertionError".into(),
            message: String::new(),
            line: Some(1),
        });
        let out = judge(&t, None, &r);
        assert_eq!(out.verdict, Verdict::Fail);
        assert_eq!(out.detail, "AssertionError (line 1)");
        r.exception.as_mut().unwrap().type_name = "ZeroDivisionError".into();
        assert_eq!(judge(&t, None, &r).verdict, Verdict::Error);
        let timeout = ExecResult::failure(Status::Timeout, "killed after 2.0 s");
        let out = judge(&t, None, &timeout);
        assert_eq!(out.verdict, Verdict::Error);
        assert_eq!(out.detail, "timeout: killed after 2.0 s");
    }
}
