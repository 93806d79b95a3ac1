//! Bad input as a new user types it: each mistake gets a clear error that
//! says what to do, no file of the user's is changed, and no finished
//! result is lost.

use std::path::{Path, PathBuf};

use crate::util::{failure, repo, stderr, stdout, success, tiny_model, Sandbox};

/// Flags that keep a tiny-model solve short.
const TINY: &[&str] = &[
    "--threads",
    "1",
    "--max-attempts",
    "1",
    "--max-tokens",
    "600",
];

/// A model path that cannot load: a check that fails with this model's
/// error came after loading was tried, so it was not done up front.
const NO_MODEL: &str = "/nonexistent/model.gguf";

fn second_largest() -> PathBuf {
    repo().join("examples/tasks/second_largest.toml")
}

/// An egcfg results database with one finished task, made the way a user
/// makes one (a tiny-model baseline run on a one-task dataset).
fn results_database(sandbox: &Sandbox) -> PathBuf {
    let task =
        r#"{"task_id": 1, "text": "Return x plus one.", "test_list": ["assert add_one(1) == 2"]}"#;
    success(&sandbox.bench_tiny_baseline(task, "runs.sqlite", &["--max-tokens", "300"]));
    sandbox.path().join("runs.sqlite")
}

/// Another program's SQLite database with a `runs` table of its own.
fn foreign_database(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE runs (owner TEXT); INSERT INTO runs VALUES ('not egcfg');")
        .unwrap();
}

/// Every file in `dir` with its size and a digest of its bytes, to show
/// that nothing changed (compact enough to print when something did).
fn snapshot(dir: &Path) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut files: Vec<(String, usize, u64)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                bytes.len(),
                hasher.finish(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn time_limits_no_run_can_keep_are_refused_without_a_panic() {
    let sandbox = Sandbox::new();
    let task = second_largest();
    for value in ["-1", "0", "NaN", "inf", "1e300"] {
        let flag = format!("--max-seconds={value}");
        for args in [
            vec!["solve", task.to_str().unwrap(), &flag],
            vec!["bench", "--dataset", "mbpp:validation", &flag],
        ] {
            let out = sandbox.run(&args);
            let err = failure(&out);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.contains("--max-seconds") && !err.contains("panicked"),
                "{args:?}: {err}"
            );
        }
    }
}

#[test]
fn settings_that_would_do_nothing_are_refused() {
    let sandbox = Sandbox::new();
    let task = second_largest();
    let task = task.to_str().unwrap();
    let empty_grid = sandbox.write(
        "grid.toml",
        "[grid]\nt = []\ns = [3]\nd = [2]\nk = [1]\nstyle = [\"instruct\"]\ngamma = [1.0]\n",
    );
    let cases: [(Vec<&str>, &str); 10] = [
        (vec!["solve", task, "--max-attempts", "0"], "--max-attempts"),
        (vec!["solve", task, "--sample-share", "0"], "--sample-share"),
        (vec!["solve", task, "--sample-share", "1"], "--sample-share"),
        (
            vec!["solve", task, "--sample-share", "nan"],
            "--sample-share",
        ),
        (
            vec!["solve", task, "--sample-share", "0.5", "--method", "sample"],
            "--method sample-then-egcfg",
        ),
        (
            vec![
                "bench",
                "--dataset",
                "mbpp:validation",
                "--max-attempts",
                "0",
            ],
            "--max-attempts",
        ),
        (
            vec!["bench", "--dataset", "mbpp:validation", "--limit", "0"],
            "--limit",
        ),
        (
            vec![
                "solve",
                task,
                "--method",
                "egcfg",
                "--agents",
                empty_grid.to_str().unwrap(),
            ],
            "empty",
        ),
        // A flag the method would ignore, named with the method that reads it.
        (
            vec!["solve", task, "--method", "sample", "--agents", "reference"],
            "--agents applies to `--method egcfg`",
        ),
        (
            vec![
                "bench",
                "--dataset",
                "mbpp:validation",
                "--method",
                "baseline",
                "--cut-to-fit",
            ],
            "--cut-to-fit applies to `--method egcfg`",
        ),
    ];
    for (args, needle) in cases {
        let err = failure(&sandbox.run(&args));
        assert!(err.contains(needle), "{args:?}: {err}");
    }
    assert!(
        !sandbox.path().join("egcfg-bench.sqlite").exists(),
        "a refused bench wrote a database"
    );
}

#[test]
fn inputs_that_name_no_task_or_no_usable_output_leave_no_database_behind() {
    let sandbox = Sandbox::new();
    let samples = sandbox.write(
        "samples.jsonl",
        "{\"task_id\": \"Mbpp/9999\", \"solution\": \"def f():\\n    return 1\\n\"}\n",
    );
    let samples = samples.to_str().unwrap();
    let bench = ["bench", "--db", "runs.sqlite"];
    let cases: [(Vec<&str>, &str); 4] = [
        (
            [
                &bench[..],
                &["--dataset", "mbpp:validation", "--ids", "Mbpp/9999"],
            ]
            .concat(),
            "no task Mbpp/9999",
        ),
        (
            [&bench[..], &["--dataset", "jsonl:missing.jsonl"]].concat(),
            "missing.jsonl",
        ),
        (
            [
                &bench[..],
                &["--dataset", "mbpp:validation", "--limit", "1"],
                &["--samples-out", "no-such-dir/samples.jsonl"],
            ]
            .concat(),
            "there is no directory no-such-dir",
        ),
        (
            vec![
                "evaluate",
                "--dataset",
                "mbpp:validation",
                samples,
                "--db",
                "runs.sqlite",
            ],
            "task Mbpp/9999 is not in mbpp",
        ),
    ];
    for (args, needle) in cases {
        let err = failure(&sandbox.run(&args));
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(
            !sandbox.path().join("runs.sqlite").exists(),
            "{args:?} left a database behind"
        );
    }
}

#[test]
fn a_report_never_writes_over_a_database_or_a_foreign_file() {
    let sandbox = Sandbox::new();
    let db = results_database(&sandbox);
    let db_arg = db.to_str().unwrap();
    let notes = sandbox.write("notes.html", "my own notes");
    let before = snapshot(sandbox.path());

    for target in [db_arg, notes.to_str().unwrap()] {
        let err = failure(&sandbox.run(&["report", db_arg, "--html", target]));
        assert!(err.contains("--html"), "{target}: {err}");
    }
    assert_eq!(
        snapshot(sandbox.path()),
        before,
        "a refused report changed a file"
    );

    // An earlier report is the one thing `--html` may replace.
    success(&sandbox.run(&["report", db_arg, "--html", "report.html"]));
    success(&sandbox.run(&["report", db_arg, "--html", "report.html"]));
    let html = std::fs::read_to_string(sandbox.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
}

#[test]
fn a_report_leaves_out_only_runs_the_database_has() {
    let sandbox = Sandbox::new();
    let db = results_database(&sandbox);
    let db_arg = db.to_str().unwrap();
    let full = success(&sandbox.run(&["report", db_arg]));
    // The baseline run's row: `| baseline | <config hash> | ...`.
    let hash = full
        .lines()
        .find_map(|line| line.strip_prefix("| baseline | "))
        .and_then(|rest| rest.split(" |").next())
        .expect("a baseline row")
        .to_string();

    let err = failure(&sandbox.run(&["report", db_arg, "--leave-out", "0123456789abcdef"]));
    assert!(
        err.contains("--leave-out") && err.contains("0123456789abcdef") && err.contains(&hash),
        "names the unknown hash and the ones there are: {err}"
    );

    let without = success(&sandbox.run(&["report", db_arg, "--leave-out", &hash]));
    assert!(
        without.contains(&format!(
            "Left out of this report, as asked: the runs with config hash {hash}"
        )),
        "{without}"
    );
    assert!(!without.contains("| baseline |"), "{without}");
}

#[test]
fn another_programs_database_is_refused_and_left_unchanged() {
    let sandbox = Sandbox::new();
    let other = sandbox.path().join("other.sqlite");
    foreign_database(&other);
    let other_arg = other.to_str().unwrap();
    let before = snapshot(sandbox.path());

    let err = failure(&sandbox.run(&["report", other_arg]));
    assert!(err.contains("not an egcfg results database"), "{err}");
    let err = failure(&sandbox.run(&[
        "bench",
        "--dataset",
        "mbpp:validation",
        "--limit",
        "1",
        "--model",
        NO_MODEL,
        "--db",
        other_arg,
    ]));
    assert!(
        err.contains("not an egcfg results database") && !err.contains(NO_MODEL),
        "refused before loading anything: {err}"
    );
    assert_eq!(err.matches("not an egcfg").count(), 1, "said once: {err}");
    assert_eq!(
        snapshot(sandbox.path()),
        before,
        "the foreign database changed"
    );
}

#[test]
fn the_record_path_is_checked_before_the_solve_and_never_replaces_the_task() {
    let sandbox = Sandbox::new();
    let task = sandbox.write(
        "task.toml",
        &std::fs::read_to_string(second_largest()).unwrap(),
    );
    let task_arg = task.to_str().unwrap();
    let before = snapshot(sandbox.path());
    for record in [task_arg, "./task.toml", "/nonexistent-dir/record.json"] {
        let err =
            failure(&sandbox.run(&["solve", task_arg, "--record", record, "--model", NO_MODEL]));
        assert!(
            err.contains("--record") && !err.contains(NO_MODEL),
            "{record}: refused before the model loads: {err}"
        );
    }
    assert_eq!(snapshot(sandbox.path()), before, "the task file changed");
}

#[test]
fn a_solve_reports_hidden_tests_and_writes_its_record() {
    let sandbox = Sandbox::new();
    let task = second_largest();
    let model = tiny_model();
    let mut args = vec![
        "solve",
        task.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--json",
        "--record",
        "record.json",
    ];
    args.extend_from_slice(TINY);
    let out = sandbox.run(&args);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", stdout(&out), stderr(&out)));
    assert_eq!(
        json["hidden_tests"].as_array().map(Vec::len),
        Some(2),
        "{json:#}"
    );
    assert!(stderr(&out).contains("hidden tests"), "{}", stderr(&out));
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sandbox.path().join("record.json")).unwrap())
            .unwrap();
    assert_eq!(record["task_id"], "second_largest");
    // A second solve may replace its own earlier record.
    let again = sandbox.run(&args);
    assert!(again.status.code() != Some(2), "{}", stderr(&again));
}

#[test]
fn tests_that_could_never_fail_or_never_pass_are_refused_up_front() {
    let sandbox = Sandbox::new();
    let no_assert = sandbox.write(
        "no_assert.toml",
        "prompt = \"Double a number.\"\nentry_point = \"double\"\ntests = [\"double(2) == 5\"]\n",
    );
    let bad_syntax = sandbox.write(
        "bad_syntax.toml",
        "prompt = \"Double a number.\"\ntests = [\"assert double(2) == (4\"]\n",
    );
    for (task, needle) in [(no_assert, "not an assert"), (bad_syntax, "parses")] {
        let err = failure(&sandbox.run(&["solve", task.to_str().unwrap(), "--model", NO_MODEL]));
        assert!(
            err.contains(needle) && !err.contains(NO_MODEL),
            "refused before the model loads: {err}"
        );
    }
}

#[test]
fn tests_a_program_could_fake_are_named_before_the_model_loads() {
    let sandbox = Sandbox::new();
    let task = sandbox.write(
        "ordering.toml",
        "prompt = \"Double a number.\"\nentry_point = \"double\"\ntests = [\"assert double(2) == 4\", \"assert double(2) < 5\"]\n",
    );
    let err = failure(&sandbox.run(&["solve", task.to_str().unwrap(), "--model", NO_MODEL]));
    let warned: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("judged inside the candidate's process"))
        .collect();
    assert!(
        warned.len() == 1 && warned[0].contains("visible test 2 `assert double(2) < 5`"),
        "only the ordering test is named: {err}"
    );
}

#[test]
fn a_task_can_come_from_standard_input() {
    use std::io::Write;
    let sandbox = Sandbox::new();
    let model = tiny_model();
    let mut args = vec!["solve", "-", "--model", model.to_str().unwrap()];
    args.extend_from_slice(TINY);
    let mut child = sandbox
        .command(&args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"prompt = \"Add one.\"\ntests = [\"assert add_one(1) == 2\"]\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        stderr(&out).contains("stdin:") && stderr(&out).contains("visible test"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn errors_name_their_cause_once_and_paths_are_not_prompts() {
    let sandbox = Sandbox::new();
    let err = failure(&sandbox.run(&["solve", "missing.toml"]));
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");

    let err = failure(&sandbox.run(&["generate", "prompts/fib.txt", "--model", NO_MODEL]));
    assert!(err.contains("no prompt file prompts/fib.txt"), "{err}");

    let odd = sandbox.write("odd.toml", "prompt = \"p\"\ntests = [1]\n");
    let err = failure(&sandbox.run(&["solve", odd.to_str().unwrap()]));
    assert!(
        err.contains("assert line") && !err.contains("FileTest") && !err.contains("untagged"),
        "{err}"
    );
}

#[test]
fn logs_written_to_a_file_have_no_colour_codes() {
    let out = Sandbox::new().run(&["-v", "doctor"]);
    let err = stderr(&out);
    assert!(err.contains("INFO"), "-v logs at info: {err}");
    assert!(
        !err.contains('\u{1b}'),
        "escape codes in a piped log: {err:?}"
    );
}

#[test]
fn library_errors_come_with_the_flag_that_fixes_them() {
    let sandbox = Sandbox::new();
    let missing = sandbox.path().join("none.sqlite");
    let missing = missing.to_str().unwrap();
    let text = failure(&sandbox.run(&["report", missing]));
    assert!(
        text.contains(&format!("create one with `egcfg bench --db {missing}`")),
        "{text}"
    );
    let db = sandbox.path().join("runs.sqlite");
    let text = failure(&sandbox.run(&[
        "bench",
        "--dataset",
        "no-such-dataset",
        "--model",
        NO_MODEL,
        "--db",
        db.to_str().unwrap(),
    ]));
    assert!(
        text.contains("`egcfg bench --list-datasets` lists them"),
        "{text}"
    );
}
