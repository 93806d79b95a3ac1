//! EvalPlus datasets (HumanEval+ and MBPP+): inputs without outputs.
//!
//! EvalPlus ships test *inputs* only; the expected output of each input is
//! what the dataset's `canonical_solution` returns. [`OutputOracle`] runs
//! each canonical solution once, in the sandbox through the executor, on
//! all of its inputs, and caches the printed reprs on disk, keyed by the data
//! file's sha256 and the task id. Hidden tests are then scripts that call
//! the candidate on chunks of inputs and compare with the cached outputs
//! (exactly, or within `atol` plus a 1e-7 relative tolerance where floats
//! are involved, as EvalPlus does).
//!
//! Inputs are kept as raw JSON text end to end: some contain `NaN` and
//! `Infinity`, which Python's `json` reads and strict JSON parsers do not.
//! MBPP+ stores some tuple, set and complex arguments as lists or strings;
//! [`mbpp_input_shape`] records, per task, how they are rebuilt before the
//! call (the same for the oracle and the candidate).

use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use egcfg_executor::{ExecutorConfig, Invocation, Status, TraceRequest};
use egcfg_task::{Task, TestCase};
use serde::{Deserialize, Serialize};

use super::embedded::DataFile;
use super::humaneval::visible_task;
use super::schema::PlusRecord;
use super::{asserts, BenchTask, DatasetError, Selection, Suite};

/// Which EvalPlus family a file belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlusKind {
    /// HumanEval+: the canonical solution is a body for the prompt.
    HumanEval,
    /// MBPP+: the canonical solution is a whole program.
    Mbpp,
}

/// Inputs per hidden test script.
const CHUNK: usize = 10;

/// Expected outputs with a longer repr are left out (HumanEval/130 on
/// n = 10^6 returns a million floats): they would make test scripts of
/// tens of megabytes.
const MAX_REPR: usize = 256 << 10;

/// The per-test timeout of a chunk: generous, as EvalPlus allows each input
/// several times the canonical solution's time.
const CHUNK_TIMEOUT: Duration = Duration::from_secs(30);

/// Computes and caches expected outputs by running canonical solutions in
/// the sandbox.
pub struct OutputOracle<'a> {
    executor: &'a egcfg_executor::Executor,
    cache_dir: PathBuf,
}

impl<'a> OutputOracle<'a> {
    /// An oracle running on `executor` (start it with
    /// [`OutputOracle::executor_config`]) and caching under `cache_dir`
    /// (e.g. `$EGCFG_HOME/cache`, or the database's directory).
    pub fn new(executor: &'a egcfg_executor::Executor, cache_dir: impl Into<PathBuf>) -> Self {
        OutputOracle {
            executor,
            cache_dir: cache_dir.into(),
        }
    }

    /// Executor settings for the oracle: `base` with room for the printed
    /// outputs of a whole chunk of inputs and a generous time budget.
    /// (A trace is how the executor returns what a program printed; all the
    /// oracle's work runs as untraced setup.)
    pub fn executor_config(mut base: ExecutorConfig) -> ExecutorConfig {
        base.limits.timeout = Duration::from_secs(20);
        base.limits.max_lines = u64::MAX / 2;
        base.limits.head_events = 0;
        base.limits.max_samples = 0;
        base.limits.stdout_bytes = 64 << 20;
        base.limits.result_bytes = 80 << 20;
        base.limits.memory_bytes = 4 << 30;
        base.cache_capacity = 0;
        base
    }

    fn cache_path(&self, dataset: &str, file: &DataFile) -> PathBuf {
        let safe: String = dataset
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        self.cache_dir
            .join(format!("evalplus-{safe}-{}.json", &file.sha256[..16]))
    }
}

/// What the canonical solution did on one input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Expected {
    /// It returned a value with this (evaluable) repr.
    Value(String),
    /// It raised this exception type: the input is left out of the tests.
    Raised(String),
    /// Its value has no evaluable repr, or one over 256 KiB: the input is
    /// left out.
    Unrepresentable,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Cache {
    version: String,
    tasks: BTreeMap<String, Vec<Expected>>,
}

/// A task's record with its inputs kept as raw JSON text.
struct RawTask {
    record: PlusRecord,
    base: Vec<String>,
    plus: Vec<String>,
}

/// How MBPP+ task `n`'s stored arguments are rebuilt (a Python expression
/// over `a`, the argument list), per EvalPlus's own loader.
pub fn mbpp_input_shape(n: u32) -> Option<&'static str> {
    const EACH_TUPLE: &str = "[tuple(x) for x in a]";
    const ITEMS_TUPLE: &str = "[[tuple(y) for y in x] for x in a]";
    const DEEP_TUPLE: &str = "[_egcfg_deep_tuple(x) for x in a]";
    Some(match n {
        2 | 116 | 132 | 143 | 222 | 261 | 273 | 394 | 399 | 421 | 424 | 429 | 470 | 560 | 579
        | 596 | 616 | 630 | 726 | 740 | 744 | 809 => EACH_TUPLE,
        63 | 64 | 70 | 94 | 120 | 237 | 272 | 299 | 400 | 409 | 417 | 438 | 473 | 614 | 780 => {
            ITEMS_TUPLE
        }
        75 | 413 | 444 | 753 => "[[tuple(y) for y in a[0]]] + a[1:]",
        106 | 750 => "[a[0], tuple(a[1])] + a[2:]",
        115 => "[[set(y) if isinstance(y, list) and y else {} for y in a[0]]]",
        124 => "[float(a[0]), complex(a[1])]",
        250 | 405 | 446 | 617 | 720 | 763 | 808 | 307 => "[tuple(a[0])] + a[1:]",
        259 | 401 | 445 => "[tuple(tuple(y) for y in x) for x in a]",
        278 => "[tuple(tuple(y) if isinstance(y, list) else y for y in a[0])] + a[1:]",
        722 => "[{k: tuple(v) for k, v in a[0].items()}] + a[1:]",
        252 => "[complex(a[0])]",
        580 | 615 | 791 => DEEP_TUPLE,
        _ => return None,
    })
}

/// How a task's output is judged, where plain equality is wrong (EvalPlus's
/// special oracles): a Python expression over `got`, `want` and `a`, with
/// `same(got, want)` the default comparison.
fn output_rule(kind: PlusKind, entry_point: &str) -> &'static str {
    const SET_EQUAL: &[&str] = &[
        "similar_elements",
        "find_char_long",
        "common_in_nested_lists",
        "extract_singly",
        "larg_nnum",
        "intersection_array",
        "find_dissimilar",
        "Diff",
    ];
    const SOMETHING_RETURNED: &[&str] = &["check_str", "text_match_three", "text_starta_endb"];
    match (kind, entry_point) {
        // Order (of a set's elements) is not part of the answer.
        (PlusKind::Mbpp, e) if SET_EQUAL.contains(&e) => "set(got) == set(want)",
        // Only whether a match object (or True) came back counts.
        (PlusKind::Mbpp, e) if SOMETHING_RETURNED.contains(&e) => "as_bool(got) == as_bool(want)",
        (PlusKind::Mbpp, "are_equivalent") => "True",
        (PlusKind::Mbpp, "sum_div") => "same(got, want) or got == 0",
        // Any root of the polynomial is right.
        (PlusKind::HumanEval, "find_zero") => "abs(poly(*a, got)) <= max(atol, 1e-6)",
        _ => "same(got, want)",
    }
}

/// The Python helper that rebuilds arguments for one task.
fn args_helper(kind: PlusKind, task_id: &str) -> String {
    let shape = match kind {
        PlusKind::HumanEval => None,
        PlusKind::Mbpp => task_id
            .rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .and_then(mbpp_input_shape),
    };
    format!(
        r#"def _egcfg_deep_tuple(x):
    return tuple(_egcfg_deep_tuple(y) for y in x) if isinstance(x, list) else x


def _egcfg_args(a):
    return list({})
"#,
        shape.unwrap_or("a")
    )
}

/// A Python string literal holding `text` (JSON string syntax is valid Python).
fn py_str(text: &str) -> String {
    serde_json::Value::String(text.to_string()).to_string()
}

/// The oracle's whole work as setup code, which the executor runs
/// untraced: the canonical solution, the argument helper and the driver.
/// The traced program itself is a bare `pass`.
fn oracle_setup(kind: PlusKind, raw: &RawTask, inputs: &[String]) -> String {
    let r = &raw.record;
    let solution = match kind {
        PlusKind::HumanEval => format!("{}{}", r.prompt, r.canonical_solution),
        PlusKind::Mbpp => r.canonical_solution.clone(),
    };
    format!(
        "{solution}\n\n{}\n\n{}",
        args_helper(kind, &r.task_id),
        oracle_driver(raw, inputs)
    )
}

/// The driver that prints, per input, `V repr`, `E ExceptionType` or `U`.
fn oracle_driver(raw: &RawTask, inputs: &[String]) -> String {
    format!(
        r#"def _egcfg_oracle():
    import json
    env = {{'__builtins__': {{}}, 'inf': float('inf'), 'nan': float('nan')}}
    for a in json.loads({inputs}):
        try:
            out = {entry}(*_egcfg_args(a))
        except BaseException as e:
            print('E ' + type(e).__name__)
            continue
        try:
            text = repr(out)
            eval(text, env)
            ok = '\n' not in text and len(text) <= {max_repr}
        except BaseException:
            ok = False
        print('V ' + text if ok else 'U')


_egcfg_oracle()
"#,
        inputs = py_str(&format!("[{}]", inputs.join(", "))),
        entry = raw.record.entry_point,
        max_repr = MAX_REPR,
    )
}

fn parse_oracle_output(stdout: &str, expected_lines: usize) -> Option<Vec<Expected>> {
    let out: Vec<Expected> = stdout
        .lines()
        .map(|line| match line.split_once(' ') {
            Some(("V", repr)) => Expected::Value(repr.to_string()),
            Some(("E", name)) => Expected::Raised(name.to_string()),
            _ => Expected::Unrepresentable,
        })
        .collect();
    (out.len() == expected_lines).then_some(out)
}

/// The hidden test for one chunk of inputs with their expected outputs.
fn check_script(kind: PlusKind, raw: &RawTask, chunk: &[(&String, &String)]) -> TestCase {
    let inputs: Vec<&str> = chunk.iter().map(|(i, _)| i.as_str()).collect();
    let expected: Vec<&str> = chunk.iter().map(|(_, e)| e.as_str()).collect();
    TestCase::Script {
        code: format!(
            r#"{helper}

def _egcfg_check():
    import json, math
    inf, nan = float('inf'), float('nan')
    atol = {atol:?}

    def same(got, want):
        if type(got) is type(want) and got == want:
            return True
        numbers = (int, float)
        if (isinstance(got, numbers) and isinstance(want, numbers)
                and not isinstance(got, bool) and not isinstance(want, bool)
                and (isinstance(got, float) or isinstance(want, float))):
            if math.isnan(want) or math.isnan(got):
                return math.isnan(want) and math.isnan(got)
            return abs(got - want) <= atol + 1e-07 * abs(want)
        if isinstance(want, (list, tuple)) and type(got) is type(want) and len(got) == len(want):
            return all(same(g, w) for g, w in zip(got, want))
        return got == want

    def as_bool(x):
        return x if isinstance(x, bool) else x is not None

    inputs = json.loads({inputs})
    expected = [{expected}]
    for k, (a, want) in enumerate(zip(inputs, expected)):
        got = {entry}(*_egcfg_args(a))
        assert {rule}, 'wrong output on input %d of this chunk' % k


_egcfg_check()
"#,
            helper = args_helper(kind, &raw.record.task_id),
            atol = raw.record.atol,
            inputs = py_str(&format!("[{}]", inputs.join(", "))),
            expected = expected.join(", "),
            entry = raw.record.entry_point,
            rule = output_rule(kind, &raw.record.entry_point),
        ),
    }
}

impl OutputOracle<'_> {
    /// Expected outputs of `raw`'s base and plus inputs, in that order.
    fn compute(&self, kind: PlusKind, raw: &RawTask) -> Vec<Expected> {
        let inputs: Vec<String> = raw.base.iter().chain(&raw.plus).cloned().collect();
        let chunks: Vec<&[String]> = inputs.chunks(CHUNK).collect();
        let mut out = Vec::with_capacity(inputs.len());
        for (chunk, result) in chunks.iter().zip(self.run(kind, raw, &chunks)) {
            match result {
                Ok(expected) => out.extend(expected),
                // A slow or huge input spoils its chunk: run those inputs
                // one by one and leave out the ones that still fail.
                Err(why) => {
                    let singles: Vec<&[String]> = chunk.chunks(1).collect();
                    for (input, single) in singles.iter().zip(self.run(kind, raw, &singles)) {
                        match single {
                            Ok(expected) => out.extend(expected),
                            Err(why_single) => {
                                tracing::warn!(task = %raw.record.task_id, input = %input[0],
                                    chunk = %why, reason = %why_single, "input left out");
                                out.push(Expected::Unrepresentable);
                            }
                        }
                    }
                }
            }
        }
        out
    }

    /// Runs the oracle on each group of inputs, in parallel.
    fn run(
        &self,
        kind: PlusKind,
        raw: &RawTask,
        groups: &[&[String]],
    ) -> Vec<Result<Vec<Expected>, String>> {
        let requests: Vec<TraceRequest> = groups
            .iter()
            .map(|group| TraceRequest {
                program: "pass".into(),
                setup: Some(oracle_setup(kind, raw, group)),
                invocation: Invocation::Stdin {
                    stdin: String::new(),
                },
            })
            .collect();
        let results = self.executor.trace(&requests);
        results
            .iter()
            .zip(groups)
            .map(|(result, group)| {
                if result.stdout_bytes as usize != result.stdout.len() {
                    return Err(format!(
                        "printed {} bytes, over the cap",
                        result.stdout_bytes
                    ));
                }
                if result.status != Status::Ok {
                    let why = result.detail.clone().or_else(|| {
                        result
                            .exception
                            .as_ref()
                            .map(|e| format!("{}: {}", e.type_name, e.message))
                    });
                    return Err(format!("{} {}", result.status, why.unwrap_or_default()));
                }
                parse_oracle_output(&result.stdout, group.len())
                    .ok_or_else(|| "printed an unexpected number of lines".to_string())
            })
            .collect()
    }

    /// Expected outputs for every task, from the cache where present;
    /// missing tasks are computed and the cache rewritten.
    fn expected(
        &mut self,
        kind: PlusKind,
        dataset: &str,
        file: &DataFile,
        tasks: &[RawTask],
    ) -> Result<BTreeMap<String, Vec<Expected>>, DatasetError> {
        let path = self.cache_path(dataset, file);
        let oracle_err = |message: String| DatasetError::Oracle {
            dataset: dataset.to_string(),
            message,
        };
        let mut cache: Cache = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .filter(|c: &Cache| c.version == file.sha256)
            .unwrap_or_else(|| Cache {
                version: file.sha256.to_string(),
                tasks: BTreeMap::new(),
            });
        let missing: Vec<&RawTask> = tasks
            .iter()
            .filter(|t| !cache.tasks.contains_key(&t.record.task_id))
            .collect();
        if !missing.is_empty() {
            tracing::info!(dataset, tasks = missing.len(), cache = %path.display(),
                "computing expected outputs from the canonical solutions (once)");
            for raw in missing {
                let expected = self.compute(kind, raw);
                cache.tasks.insert(raw.record.task_id.clone(), expected);
            }
            std::fs::create_dir_all(&self.cache_dir)
                .and_then(|_| {
                    let tmp = path.with_extension("json.tmp");
                    std::fs::write(&tmp, serde_json::to_vec(&cache).unwrap_or_default())?;
                    std::fs::rename(&tmp, &path)
                })
                .map_err(|e| oracle_err(format!("cannot write cache {}: {e}", path.display())))?;
        }
        Ok(cache.tasks)
    }
}

/// Splits a JSON object's top-level `key: value` pairs into raw text spans.
fn top_level_fields(line: &str) -> Option<Vec<(String, &str)>> {
    let body = line.trim().strip_prefix('{')?.strip_suffix('}')?;
    let mut fields = Vec::new();
    for part in split_top_level(body, ',') {
        let (key, value) = split_key(part)?;
        fields.push((key, value.trim()));
    }
    Some(fields)
}

/// Splits `text` at `sep` characters outside strings and brackets.
fn split_top_level(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut in_str, mut escaped, mut start) = (0i32, false, false, 0);
    for (i, c) in text.char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '[' | '{' => depth += 1,
            ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    if !text[start..].trim().is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

/// `"key": value` → (key, value text).
fn split_key(part: &str) -> Option<(String, &str)> {
    let part = part.trim_start();
    let bytes = part.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while i < bytes.len() && bytes[i] != b'"' {
        i += if bytes[i] == b'\\' { 2 } else { 1 };
    }
    let key: String = serde_json::from_str(part.get(..=i)?).ok()?;
    let value = part.get(i + 1..)?.trim_start().strip_prefix(':')?;
    Some((key, value))
}

/// The elements of a JSON array, as raw text. Anything else has none
/// (Mbpp/793 stores its missing plus inputs as `{}`).
fn raw_items(array: &str) -> Vec<String> {
    let Some(inner) = array
        .trim()
        .strip_prefix('[')
        .and_then(|a| a.strip_suffix(']'))
    else {
        return Vec::new();
    };
    split_top_level(inner, ',')
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn raw_tasks(file: &DataFile) -> Result<Vec<RawTask>, DatasetError> {
    let text = file.text().map_err(|error| DatasetError::Read {
        source_name: file.path.into(),
        error,
    })?;
    let mut tasks = Vec::new();
    for (index, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let malformed = |message: String| DatasetError::Malformed {
            source_name: file.path.into(),
            line: index + 1,
            message,
        };
        let fields = top_level_fields(line).ok_or_else(|| malformed("not a JSON object".into()))?;
        let (mut base, mut plus) = (Vec::new(), Vec::new());
        let mut rest = Vec::new();
        for (key, value) in fields {
            match key.as_str() {
                "base_input" => base = raw_items(value),
                "plus_input" => plus = raw_items(value),
                _ => rest.push(format!("{}: {value}", py_str(&key))),
            }
        }
        let record: PlusRecord = serde_json::from_str(&format!("{{{}}}", rest.join(", ")))
            .map_err(|e| malformed(e.to_string()))?;
        tasks.push(RawTask { record, base, plus });
    }
    Ok(tasks)
}

fn mbpp_number(task_id: &str) -> u32 {
    task_id
        .rsplit('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// MBPP+'s visible part: the prompt docstring's text is the problem and its
/// one assert the visible test.
fn mbpp_visible(record: &PlusRecord) -> Task {
    let body = record.prompt.trim().trim_matches('"').trim();
    let (tests, text): (Vec<&str>, Vec<&str>) = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .partition(|l| l.starts_with("assert"));
    Task {
        id: record.task_id.clone(),
        prompt: text.join("\n"),
        entry_point: record.entry_point.clone(),
        visible: asserts(&tests.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        hidden: Vec::new(),
        setup: None,
    }
}

/// The tasks of an EvalPlus file and how many of their inputs are scored.
pub(super) struct PlusTasks {
    /// The tasks.
    pub tasks: Vec<BenchTask>,
    /// Inputs with an expected output.
    pub inputs_used: usize,
    /// All inputs.
    pub inputs_total: usize,
}

/// Loads an EvalPlus file: suites `<name>` (base and plus inputs) and
/// `<name>/base` (base inputs only), inputs whose canonical output could not
/// be computed or represented left out.
pub(super) fn load(
    kind: PlusKind,
    file: &DataFile,
    name: &str,
    ids: RangeInclusive<u32>,
    selection: &Selection,
    oracle: &mut OutputOracle<'_>,
) -> Result<PlusTasks, DatasetError> {
    let family = match kind {
        PlusKind::HumanEval => "humaneval+",
        PlusKind::Mbpp => "mbpp+",
    };
    let in_split: Vec<RawTask> = raw_tasks(file)?
        .into_iter()
        .filter(|t| kind == PlusKind::HumanEval || ids.contains(&mbpp_number(&t.record.task_id)))
        .collect();
    let all_ids: Vec<String> = in_split.iter().map(|t| t.record.task_id.clone()).collect();
    let keep = selection.pick(name, &all_ids)?;
    let raw: Vec<RawTask> = in_split
        .into_iter()
        .filter(|t| keep.contains(&t.record.task_id))
        .collect();
    let expected = oracle.expected(kind, name, file, &raw)?;
    let inputs_total = raw.iter().map(|t| t.base.len() + t.plus.len()).sum();
    let inputs_used = raw
        .iter()
        .flat_map(|t| &expected[&t.record.task_id])
        .filter(|e| matches!(e, Expected::Value(_)))
        .count();
    let tasks = raw
        .iter()
        .map(|t| {
            let outputs = &expected[&t.record.task_id];
            let inputs: Vec<&String> = t.base.iter().chain(&t.plus).collect();
            let usable = |range: std::ops::Range<usize>| -> Vec<(&String, &String)> {
                range
                    .filter_map(|i| match &outputs[i] {
                        Expected::Value(v) => Some((inputs[i], v)),
                        _ => None,
                    })
                    .collect()
            };
            let suite = |suite_name: String, pairs: Vec<(&String, &String)>| Suite {
                name: suite_name,
                tests: pairs
                    .chunks(CHUNK)
                    .map(|c| check_script(kind, t, c))
                    .collect(),
                timeout: Some(CHUNK_TIMEOUT),
            };
            let suites = vec![
                suite(family.to_string(), usable(0..inputs.len())),
                suite(format!("{family}/base"), usable(0..t.base.len())),
            ];
            let visible = match kind {
                PlusKind::HumanEval => {
                    visible_task(&t.record.task_id, &t.record.prompt, &t.record.entry_point)
                }
                PlusKind::Mbpp => mbpp_visible(&t.record),
            };
            BenchTask::new(visible, suites)
        })
        .collect();
    Ok(PlusTasks {
        tasks,
        inputs_used,
        inputs_total,
    })
}

/// The full-strength EvalPlus suite (`humaneval+` or `mbpp+`) of each of
/// `ids` that EvalPlus has, by task id: for scoring HumanEval and MBPP runs
/// on the stronger tests too.
pub(super) fn companion_suites(
    kind: PlusKind,
    file: &DataFile,
    name: &str,
    ids: &[String],
    oracle: &mut OutputOracle<'_>,
) -> Result<BTreeMap<String, Suite>, DatasetError> {
    let known: Vec<String> = raw_tasks(file)?
        .into_iter()
        .map(|t| t.record.task_id)
        .filter(|id| ids.contains(id))
        .collect();
    let tasks = load(
        kind,
        file,
        name,
        1..=u32::MAX,
        &Selection::Ids(known),
        oracle,
    )?;
    Ok(tasks
        .tasks
        .into_iter()
        .map(|mut t| (t.id().to_string(), t.suites.swap_remove(0)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::embedded::{HUMANEVAL_PLUS_MINI, MBPP_PLUS};
    use super::*;

    #[test]
    fn raw_inputs_survive_nan_and_infinity() {
        let tasks = raw_tasks(&MBPP_PLUS).unwrap();
        assert_eq!(tasks.len(), 378);
        let base: usize = tasks.iter().map(|t| t.base.len()).sum();
        let plus: usize = tasks.iter().map(|t| t.plus.len()).sum();
        assert_eq!((base, plus), (1_174, 39_841), "MANIFEST counts");
        let t404 = tasks
            .iter()
            .find(|t| t.record.task_id == "Mbpp/404")
            .unwrap();
        assert!(t404
            .plus
            .iter()
            .any(|i| i.contains("Infinity") || i.contains("NaN")));
        let mini = raw_tasks(&HUMANEVAL_PLUS_MINI).unwrap();
        let plus: usize = mini.iter().map(|t| t.plus.len()).sum();
        assert_eq!(plus, 1_107);
    }

    #[test]
    fn mbpp_plus_split_counts_and_visible_assert() {
        let tasks = raw_tasks(&MBPP_PLUS).unwrap();
        let in_split = |r: RangeInclusive<u32>| {
            tasks
                .iter()
                .filter(|t| r.contains(&mbpp_number(&t.record.task_id)))
                .count()
        };
        assert_eq!(
            [
                in_split(1..=10),
                in_split(11..=510),
                in_split(511..=600),
                in_split(601..=974)
            ],
            [7, 224, 39, 108]
        );
        let visible = mbpp_visible(&tasks[0].record);
        assert_eq!(
            visible.prompt,
            "Write a function to find the shared elements from the given two lists."
        );
        assert_eq!(visible.visible.len(), 1);
        assert!(tasks
            .iter()
            .all(|t| mbpp_visible(&t.record).visible.len() == 1));
    }

    #[test]
    fn oracle_output_parsing() {
        let out = parse_oracle_output("V [1, 2]\nE ValueError\nU\n", 3).unwrap();
        assert_eq!(
            out,
            vec![
                Expected::Value("[1, 2]".into()),
                Expected::Raised("ValueError".into()),
                Expected::Unrepresentable
            ]
        );
        assert!(parse_oracle_output("V 1\n", 2).is_none());
    }

    #[test]
    fn special_output_rules() {
        assert_eq!(
            output_rule(PlusKind::Mbpp, "similar_elements"),
            "set(got) == set(want)"
        );
        assert_eq!(
            output_rule(PlusKind::HumanEval, "similar_elements"),
            "same(got, want)"
        );
        assert!(output_rule(PlusKind::HumanEval, "find_zero").contains("poly"));
    }

    #[test]
    fn shapes_cover_the_converted_tasks() {
        assert_eq!(mbpp_input_shape(2), Some("[tuple(x) for x in a]"));
        assert_eq!(mbpp_input_shape(3), None);
        assert!(args_helper(PlusKind::HumanEval, "HumanEval/2").contains("return list(a)"));
    }
}
