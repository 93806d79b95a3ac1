//! Judging one test from its execution result.

use egcfg_task::TestCase;

use crate::request::{TestOutcome, Verdict};
use crate::result::{ExecResult, Status};

/// Printed bytes kept beyond the expected output, so that longer output is
/// still seen to differ.
pub(crate) const STDOUT_MARGIN: u64 = 4096;

/// The verdict on `test` given how its execution ended.
pub(crate) fn judge(test: &TestCase, result: &ExecResult) -> TestOutcome {
    let (verdict, detail) = match (result.status, test) {
        (Status::Ok, TestCase::Stdio { stdout, .. }) => compare_stdout(stdout, result),
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
            judge(&t, &ok_with_stdout("1 2  \n3\n\n")).verdict,
            Verdict::Pass
        );
        assert_eq!(
            judge(&t, &ok_with_stdout("1 2\n4\n")).verdict,
            Verdict::Fail
        );
        assert_eq!(
            judge(&t, &ok_with_stdout(" 1 2\n3\n")).verdict,
            Verdict::Fail
        );
    }

    #[test]
    fn truncated_output_fails() {
        let t = stdio("x");
        let mut r = ok_with_stdout("x");
        r.stdout_bytes = 10_000;
        assert_eq!(judge(&t, &r).verdict, Verdict::Fail);
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
        let out = judge(&t, &r);
        assert_eq!(out.verdict, Verdict::Fail);
        assert_eq!(out.detail, "AssertionError (line 1)");
        r.exception.as_mut().unwrap().type_name = "ZeroDivisionError".into();
        assert_eq!(judge(&t, &r).verdict, Verdict::Error);
        let timeout = ExecResult::failure(Status::Timeout, "killed after 2.0 s");
        let out = judge(&t, &timeout);
        assert_eq!(out.verdict, Verdict::Error);
        assert_eq!(out.detail, "timeout: killed after 2.0 s");
    }
}
