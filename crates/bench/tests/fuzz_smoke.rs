//! A short, deterministic run of the fuzz targets' inputs on stable Rust:
//! the seed corpus in `fuzz/corpus/` and thousands of mutations of it go
//! through the task-file and jsonl-dataset parsers, which must return
//! (an error is fine) and never panic. `cargo +nightly fuzz run NAME` in
//! `fuzz/` searches far longer; this keeps what it guards from regressing.

use std::path::{Path, PathBuf};

use egcfg_task::{Task, TaskFormat};

/// Mutations per seed file; `EGCFG_FUZZ_ROUNDS` sets more for a longer
/// search on stable.
fn rounds() -> usize {
    std::env::var("EGCFG_FUZZ_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

/// Fragments that steer mutations toward the parsers' edge cases.
const TOKENS: [&str; 22] = [
    "\"",
    "'",
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "=",
    "\n",
    "\\u",
    "\\ud800",
    "null",
    "1e999",
    "-0",
    "\"\"\"",
    "'''",
    "\0",
    "[[",
    "]]",
    "assert ",
    "\"tests\": [",
];

/// xorshift64*: a small, seeded source of choices, so a failure replays.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One random edit of `input`: flip, delete, duplicate, insert a token,
/// truncate or splice in a piece of `other`.
fn mutate(input: &mut Vec<u8>, other: &[u8], choices: &mut Choices) {
    let at = choices.below(input.len() + 1);
    match choices.below(6) {
        0 if !input.is_empty() => {
            let i = at.min(input.len() - 1);
            input[i] ^= 1 << choices.below(8);
        }
        1 => {
            let end = (at + choices.below(16)).min(input.len());
            input.drain(at..end);
        }
        2 => {
            let end = (at + choices.below(64)).min(input.len());
            let piece = input[at..end].to_vec();
            input.splice(at..at, piece);
        }
        3 => {
            let token = TOKENS[choices.below(TOKENS.len())];
            input.splice(at..at, token.bytes());
        }
        4 => input.truncate(at),
        _ => {
            let from = choices.below(other.len() + 1);
            let end = (from + choices.below(128)).min(other.len());
            input.splice(at..at, other[from..end].iter().copied());
        }
    }
}

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no seeds in {}", dir.display());
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// Feeds every seed and [`rounds`] cumulative mutations of each to `parse`,
/// which says whether the input was accepted. Seeds must be accepted, and
/// some mutants too: a run that only ever hits the first syntax error
/// would test nothing deeper.
fn run(target: &str, parse: impl Fn(&[u8]) -> bool) {
    let seeds = seeds(target);
    let mut choices = Choices(0x9e37_79b9_7f4a_7c15);
    let rounds = rounds();
    let mut accepted = 0;
    for (n, seed) in seeds.iter().enumerate() {
        assert!(parse(seed), "seed {n} of {target} is refused");
        let other = &seeds[(n + 1) % seeds.len()];
        let mut input = seed.clone();
        for round in 0..rounds {
            // Start over now and then, so edits do not pile into noise.
            if round % 50 == 0 {
                input.clone_from(seed);
            }
            mutate(&mut input, other, &mut choices);
            accepted += usize::from(parse(&input));
        }
    }
    let total = rounds * seeds.len();
    assert!(
        accepted > 0 && accepted < total,
        "{accepted} of {total} mutants of {target} accepted"
    );
}

#[test]
fn task_files_never_panic() {
    run("task_file", |data| {
        let text = String::from_utf8_lossy(data);
        [TaskFormat::Toml, TaskFormat::Json]
            .into_iter()
            .filter(|&format| {
                Task::from_text(&text, format, "fuzz input", "fuzz".to_owned()).is_ok()
            })
            .count()
            > 0
    });
}

#[test]
fn user_datasets_never_panic() {
    run("user_dataset", |data| {
        egcfg_bench::datasets::parse_jsonl("fuzz input", data).is_ok()
    });
}
