//! The JSON records of each data file, exactly as upstream names them.

use serde::Deserialize;

/// A HumanEval record (also HumanEval-ET's, which adds `test_case_list`).
#[derive(Debug, Deserialize)]
pub struct HumanEvalRecord {
    pub task_id: String,
    pub prompt: String,
    pub entry_point: String,
    pub test: String,
    #[serde(default)]
    pub test_case_list: Vec<String>,
}

/// An MBPP record (full MBPP and MBPP-ET share the schema; users' `jsonl:`
/// files may add `entry_point`).
#[derive(Debug, Deserialize)]
pub struct MbppRecord {
    pub task_id: serde_json::Value,
    pub text: String,
    pub test_list: Vec<String>,
    #[serde(default)]
    pub challenge_test_list: Vec<String>,
    #[serde(default)]
    pub test_setup_code: String,
    #[serde(default)]
    pub entry_point: Option<String>,
}

/// A sanitized-MBPP record.
#[derive(Debug, Deserialize)]
pub struct SanitizedRecord {
    pub task_id: u32,
    pub prompt: String,
    pub test_list: Vec<String>,
    #[serde(default)]
    pub test_imports: Vec<String>,
}

/// An LPW record (CodeContests and LiveCode function forms).
#[derive(Debug, Deserialize)]
pub struct LpwRecord {
    pub task_id: String,
    pub prompt: String,
    pub entry_point: String,
    pub test: String,
    pub given_tests: Vec<String>,
}

/// An EvalPlus record (HumanEval+ and MBPP+) without its inputs, which
/// are kept as raw JSON text (see `plus.rs`).
#[derive(Debug, Deserialize)]
pub struct PlusRecord {
    pub task_id: String,
    pub prompt: String,
    pub entry_point: String,
    pub canonical_solution: String,
    #[serde(default)]
    pub atol: f64,
}
