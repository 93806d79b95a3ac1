//! Samples in the field's formats: programs made by any tool, in and out.
//!
//! Code-generation benchmarks pass programs around as JSON Lines, one
//! sample per line, keyed by `task_id`:
//!
//! * EvalPlus: `{"task_id": "HumanEval/0", "solution": "<whole program>"}`;
//! * HumanEval (and EvalPlus's alternative): `{"task_id": ...,
//!   "completion": "<text appended to the prompt>"}`.
//!
//! [`Samples`] reads either (a line may hold both keys; `solution` wins, as
//! in EvalPlus), and [`SampleSolver`] hands them to [`crate::run_benchmark`]
//! so they are scored by the same sandbox, hidden suites, metrics and
//! database as egcfg's own runs. Several samples of one task become its
//! attempts, in file order: the first is the strict pass@1 program, all of
//! them feed any-of-N and pass@k. [`samples_jsonl`] writes a run's chosen
//! programs in EvalPlus's format.

use std::collections::HashMap;
use std::convert::Infallible;

use egcfg_task::Task;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::datasets::BenchTask;
use crate::solver::{Attempt, Cost, ServerUsage, Solution, Solver, VisibleTask};
use crate::store::TaskResult;

/// Why a samples file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    /// A line is not a sample.
    #[error("{source_name}, line {line}: {message}")]
    Malformed {
        /// The file.
        source_name: String,
        /// The 1-based line number.
        line: usize,
        /// What is wrong and what is expected.
        message: String,
    },
    /// The file holds no sample at all.
    #[error("{source_name} holds no samples; expected JSON Lines like {{\"task_id\": \"HumanEval/0\", \"solution\": \"def ...\"}}")]
    Empty {
        /// The file.
        source_name: String,
    },
}

/// The code of one sample, as the file gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SampleCode {
    /// A whole program (EvalPlus's `solution`).
    Solution(String),
    /// Text that continues the task's prompt (HumanEval's `completion`).
    Completion(String),
}

impl SampleCode {
    /// The program this sample runs as for `task`.
    ///
    /// A completion continues the prompt when the prompt is code: tasks
    /// whose prompt is a function stub run it as their setup (HumanEval),
    /// and the sample is that stub plus the completion. A prose prompt
    /// (MBPP) cannot be continued by code; harnesses give such tasks a
    /// docstring prompt that runs nothing, so the completion alone is the
    /// program.
    pub fn program(&self, task: &Task) -> String {
        match self {
            SampleCode::Solution(code) => code.clone(),
            SampleCode::Completion(code) if task.setup.as_deref() == Some(&task.prompt) => {
                format!("{}{code}", task.prompt)
            }
            SampleCode::Completion(code) => code.clone(),
        }
    }
}

/// One sample and the line it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Its 1-based line in the file.
    pub line: usize,
    /// The task it answers.
    pub task_id: String,
    /// Its code.
    pub code: SampleCode,
}

/// A line as written by the tools; unknown keys (scores, model names) are
/// ignored, as EvalPlus does.
#[derive(Deserialize)]
struct RawSample {
    task_id: Option<String>,
    solution: Option<String>,
    completion: Option<String>,
}

/// The samples of one file, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Samples {
    /// Every sample.
    pub samples: Vec<Sample>,
}

impl Samples {
    /// Parses JSON Lines text (blank lines are skipped), naming the first
    /// line that is not a sample and saying what a sample looks like.
    pub fn parse(text: &str, source_name: &str) -> Result<Samples, SamplesError> {
        let malformed = |line: usize, message: String| SamplesError::Malformed {
            source_name: source_name.to_string(),
            line,
            message,
        };
        let mut samples = Vec::new();
        for (index, text) in text.lines().enumerate() {
            let line = index + 1;
            if text.trim().is_empty() {
                continue;
            }
            let raw: RawSample = serde_json::from_str(text).map_err(|e| {
                malformed(
                    line,
                    format!("not a JSON object with `task_id` and `solution` or `completion` strings ({e})"),
                )
            })?;
            let task_id = raw
                .task_id
                .filter(|id| !id.trim().is_empty())
                .ok_or_else(|| malformed(line, "no `task_id`".into()))?;
            let code = match (raw.solution, raw.completion) {
                (Some(solution), _) => SampleCode::Solution(solution),
                (None, Some(completion)) => SampleCode::Completion(completion),
                (None, None) => {
                    return Err(malformed(
                        line,
                        format!("task {task_id} has neither `solution` (a whole program) nor `completion` (text after the prompt)"),
                    ))
                }
            };
            samples.push(Sample {
                line,
                task_id,
                code,
            });
        }
        if samples.is_empty() {
            return Err(SamplesError::Empty {
                source_name: source_name.to_string(),
            });
        }
        Ok(Samples { samples })
    }

    /// The tasks the samples answer, each once, in file order.
    pub fn task_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for sample in &self.samples {
            if !ids.contains(&sample.task_id) {
                ids.push(sample.task_id.clone());
            }
        }
        ids
    }

    /// The first line that answers `task_id`.
    pub fn line_of(&self, task_id: &str) -> Option<usize> {
        self.samples
            .iter()
            .find(|s| s.task_id == task_id)
            .map(|s| s.line)
    }

    /// A solver that answers each task with its samples.
    pub fn into_solver(self) -> SampleSolver {
        let mut by_task: HashMap<String, Vec<Sample>> = HashMap::new();
        for sample in self.samples {
            by_task
                .entry(sample.task_id.clone())
                .or_default()
                .push(sample);
        }
        SampleSolver { by_task }
    }
}

/// Answers each task with the samples a file gave for it: the first sample
/// is the selected program, every sample is an attempt.
pub struct SampleSolver {
    by_task: HashMap<String, Vec<Sample>>,
}

impl Solver for SampleSolver {
    type Error = Infallible;

    fn solve(&self, task: &VisibleTask) -> Result<Solution, Infallible> {
        let samples = self.by_task.get(&task.id).map_or(&[][..], Vec::as_slice);
        let attempts: Vec<Attempt> = samples
            .iter()
            .map(|sample| Attempt {
                label: format!("sample (line {})", sample.line),
                program: sample.code.program(task.task()),
                // Samples are scored as given; nobody ran visible tests.
                visible_passed: 0,
                visible_total: 0,
                gamma: None,
                wall_s: None,
                usage: ServerUsage::default(),
            })
            .collect();
        let lines: Vec<usize> = samples.iter().map(|s| s.line).collect();
        Ok(Solution {
            program: attempts
                .first()
                .map(|a| a.program.clone())
                .unwrap_or_default(),
            attempts,
            cost: Cost::default(),
            records: serde_json::json!({ "sample_lines": lines }),
            profile: None,
        })
    }
}

/// What identifies a samples file's content: the first 16 hex digits of
/// its sha256 (a run of changed samples is a new run).
pub fn content_hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// One line of EvalPlus's samples format.
#[derive(Serialize)]
struct SampleLine<'a> {
    task_id: &'a str,
    solution: String,
}

/// The chosen programs of `results` as EvalPlus samples (one JSON object
/// per line, in the order of `tasks`). Each solution stands alone: a task
/// whose programs run after a setup (HumanEval's prompt with its imports)
/// gets that setup in front, since other harnesses run the solution by
/// itself.
pub fn samples_jsonl(tasks: &[BenchTask], results: &[TaskResult]) -> String {
    let mut out = String::new();
    for task in tasks {
        let Some(result) = results.iter().find(|r| r.task_id == task.id()) else {
            continue;
        };
        let line = SampleLine {
            task_id: task.id(),
            solution: standalone(task.visible.task(), &result.solution.program),
        };
        out.push_str(&serde_json::to_string(&line).expect("strings serialise"));
        out.push('\n');
    }
    out
}

/// `program` with the task's setup in front, unless it already starts with it.
fn standalone(task: &Task, program: &str) -> String {
    match task.setup.as_deref().map(str::trim_end) {
        Some(setup) if !setup.is_empty() && !program.starts_with(setup) => {
            format!("{setup}\n\n{program}")
        }
        _ => program.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::solver::Cost;

    fn task(prompt: &str, setup: Option<&str>) -> Task {
        Task {
            id: "HumanEval/0".into(),
            prompt: prompt.into(),
            entry_point: "f".into(),
            visible: Vec::new(),
            hidden: Vec::new(),
            setup: setup.map(str::to_string),
        }
    }

    #[test]
    fn both_formats_are_read_and_a_solution_wins_over_a_completion() {
        let text = concat!(
            r#"{"task_id": "HumanEval/0", "solution": "def f():\n    return 1\n"}"#,
            "\n\n",
            r#"{"task_id": "HumanEval/0", "completion": "    return 2\n", "model": "x"}"#,
            "\n",
            r#"{"task_id": "Mbpp/2", "solution": "a", "completion": "b"}"#,
            "\n"
        );
        let samples = Samples::parse(text, "s.jsonl").unwrap();
        assert_eq!(samples.samples.len(), 3);
        assert_eq!(samples.samples[1].line, 3, "blank lines still count");
        assert_eq!(
            samples.samples[1].code,
            SampleCode::Completion("    return 2\n".into())
        );
        assert_eq!(samples.samples[2].code, SampleCode::Solution("a".into()));
        assert_eq!(samples.task_ids(), vec!["HumanEval/0", "Mbpp/2"]);
        assert_eq!(samples.line_of("Mbpp/2"), Some(4));
    }

    #[test]
    fn a_malformed_line_is_named_with_what_was_expected() {
        for (line, expected) in [
            (r#"{"task_id": "A"}"#, "neither `solution`"),
            (r#"{"solution": "x"}"#, "no `task_id`"),
            (r#"["A", "x"]"#, "not a JSON object"),
            (r#"{"task_id": "A", "solution": 3}"#, "not a JSON object"),
        ] {
            let text = format!("{}\n{line}\n", r#"{"task_id": "B", "solution": "x"}"#);
            let err = Samples::parse(&text, "s.jsonl").unwrap_err().to_string();
            assert!(
                err.starts_with("s.jsonl, line 2: ") && err.contains(expected),
                "{err}"
            );
        }
        let err = Samples::parse("\n \n", "e.jsonl").unwrap_err().to_string();
        assert!(err.contains("no samples"), "{err}");
    }

    #[test]
    fn a_completion_continues_a_code_prompt_only() {
        let stub = "def f():\n    \"\"\"One.\"\"\"\n";
        let code = SampleCode::Completion("    return 1\n".into());
        assert_eq!(
            code.program(&task(stub, Some(stub))),
            format!("{stub}    return 1\n")
        );
        assert_eq!(
            code.program(&task("Write a function f.", None)),
            "    return 1\n"
        );
    }

    #[test]
    fn the_solver_answers_with_every_sample_of_the_task_in_order() {
        let text = concat!(
            r#"{"task_id": "HumanEval/0", "solution": "first"}"#,
            "\n",
            r#"{"task_id": "other", "solution": "x"}"#,
            "\n",
            r#"{"task_id": "HumanEval/0", "solution": "second"}"#,
        );
        let solver = Samples::parse(text, "s").unwrap().into_solver();
        let solution = solver.solve(&VisibleTask::new(task("p", None))).unwrap();
        assert_eq!(solution.program, "first");
        let programs: Vec<&str> = solution
            .attempts
            .iter()
            .map(|a| a.program.as_str())
            .collect();
        assert_eq!(programs, vec!["first", "second"]);
        assert_eq!(solution.cost, Cost::default());
    }

    #[test]
    fn written_samples_stand_alone_and_read_back() {
        let stub = "from typing import List\n\ndef f():\n    \"\"\"One.\"\"\"\n";
        let bench_task = BenchTask::new(task(stub, Some(stub)), Vec::new());
        let result = |program: &str| TaskResult {
            task_id: "HumanEval/0".into(),
            solution: Solution {
                program: program.into(),
                attempts: Vec::new(),
                cost: Cost::default(),
                records: serde_json::Value::Null,
                profile: None,
            },
            wall_ms: 0.0,
            scores: Vec::new(),
        };
        let text = samples_jsonl(
            std::slice::from_ref(&bench_task),
            &[result("def f():\n    return 1\n")],
        );
        let back = Samples::parse(&text, "out").unwrap();
        assert_eq!(
            back.samples[0].code,
            SampleCode::Solution(format!("{}\n\ndef f():\n    return 1\n", stub.trim_end()))
        );
        // A program that already holds its setup is written as it is.
        let whole = format!("{stub}    return 1\n");
        let text = samples_jsonl(&[bench_task], &[result(&whole)]);
        assert_eq!(
            Samples::parse(&text, "out").unwrap().samples[0].code,
            SampleCode::Solution(whole)
        );
    }
}
