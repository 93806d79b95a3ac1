//! Running the `egcfg` binary in an isolated home.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn egcfg_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_egcfg"))
}

/// A scratch `$EGCFG_HOME` and working directory for one test.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `egcfg ARGS` with this sandbox as `$EGCFG_HOME` and working directory.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(egcfg_bin());
        command
            .args(args)
            .current_dir(self.path())
            .env("EGCFG_HOME", self.path().join("home"))
            .env("OMP_WAIT_POLICY", "passive")
            .env_remove("EGCFG_MODEL")
            .env_remove("EGCFG_ENDPOINT")
            .env_remove("RUST_LOG");
        command
    }

    /// Runs `egcfg ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run egcfg")
    }

    /// `egcfg bench --method METHOD` of the tiny model on one thread over
    /// `dataset`, into the database `db`, with `flags` added.
    pub fn bench_tiny(&self, dataset: &str, method: &str, db: &str, flags: &[&str]) -> Output {
        let model = tiny_model();
        let mut args = vec![
            "bench",
            "--dataset",
            dataset,
            "--method",
            method,
            "--model",
            model.to_str().unwrap(),
            "--threads",
            "1",
            "--db",
            db,
        ];
        args.extend_from_slice(flags);
        self.run(&args)
    }

    /// [`Sandbox::bench_tiny`] of the greedy baseline over the `jsonl:`
    /// dataset `tasks` (written here as `tasks.jsonl`).
    pub fn bench_tiny_baseline(&self, tasks: &str, db: &str, flags: &[&str]) -> Output {
        let data = self.write("tasks.jsonl", tasks);
        self.bench_tiny(&format!("jsonl:{}", data.display()), "baseline", db, flags)
    }

    /// Writes `text` to `name` inside the sandbox and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, text).expect("write fixture");
        path
    }
}

/// The committed tiny random-weight model (loads in milliseconds).
pub fn tiny_model() -> PathBuf {
    repo().join("fixtures/tiny/tiny-llama.gguf")
}

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The stdout of a run that must have succeeded (failing with its stderr
/// otherwise).
pub fn success(output: &Output) -> String {
    assert!(output.status.success(), "egcfg failed:\n{}", stderr(output));
    stdout(output)
}

/// The stderr of a run that must have failed (failing with its stdout
/// otherwise).
pub fn failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "egcfg succeeded but should not have:\n{}",
        stdout(output)
    );
    stderr(output)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `egcfg solve TASK --json` on the tiny model with one thread and `args`,
/// in `sandbox`: its JSON answer.
pub fn solve_json(sandbox: &Sandbox, task: &Path, args: &[&str]) -> serde_json::Value {
    let model = tiny_model();
    let mut argv = vec!["solve", task.to_str().unwrap()];
    argv.extend_from_slice(args);
    argv.extend([
        "--model",
        model.to_str().unwrap(),
        "--threads",
        "1",
        "--json",
    ]);
    let out = sandbox.run(&argv);
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)))
}

/// The names of the attempts in `egcfg solve --json`'s answer, in schedule
/// order.
pub fn attempt_names(json: &serde_json::Value) -> Vec<String> {
    json["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}
