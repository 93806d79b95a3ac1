//! The two prompt styles, rendered with the model's own chat template
//! (docs/method.md §2). All wording here is egcfg's own.
//!
//! A prompt is split into three parts so that the conditional and the
//! unconditional streams can share a KV prefix:
//!
//! * the **head**: everything up to the end of the user's message (system
//!   turn, instructions, examples, the problem and its tests);
//! * the **marker**: the end of the user turn and the start of the
//!   assistant's (for ChatML `<|im_end|>\n<|im_start|>assistant\n`), plus
//!   the forced opening fence if enabled;
//! * between them, only in the conditional prompt, the trace signal.

use egcfg_engine::{ChatMessage, Engine, Role};
use egcfg_task::{Task, TestCase};

use crate::code_text::FENCE;
use crate::config::PromptStyle;
use crate::error::MethodError;

/// The rendered prompt of one task in one style.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptParts {
    /// System turn and user message, up to where the signal goes.
    pub head: String,
    /// From the end of the user message to where the reply starts.
    pub marker: String,
    /// The part of the marker that is already the reply (the forced
    /// opening fence), so code-block parsing sees it.
    pub response_prefix: String,
}

/// Placed where the signal goes, to find the split in the rendered template.
const SPLIT_SENTINEL: &str = "\u{1F}EGCFG-SIGNAL-SPLIT\u{1F}";

/// The opening fence forced at the start of the reply.
pub const OPENING_FENCE: &str = "```python\n";

const SYSTEM_LINE: &str =
    "You are a careful Python programmer. You answer with one complete Python code block.";

const INSTRUCT_INTRO: &str = "Write a Python function for the task below. It must pass the \
given tests. Reply with the code only, in a single ```python block.

Three solved examples come first.";

const INSTRUCT_EXAMPLES: &[(&str, &str, &str)] = &[
    (
        "Return the sum of the squares of the numbers in a list.",
        "assert sum_of_squares([1, 2, 3]) == 14\nassert sum_of_squares([]) == 0",
        "def sum_of_squares(numbers):\n    total = 0\n    for n in numbers:\n        total += n * n\n    return total",
    ),
    (
        "Check whether a word reads the same forwards and backwards, ignoring case.",
        "assert is_mirror_word(\"Level\") == True\nassert is_mirror_word(\"python\") == False",
        "def is_mirror_word(word):\n    lowered = word.lower()\n    return lowered == lowered[::-1]",
    ),
    (
        "Count how often each character occurs in a string, as a dictionary.",
        "assert char_counts(\"abca\") == {'a': 2, 'b': 1, 'c': 1}\nassert char_counts(\"\") == {}",
        "def char_counts(text):\n    counts = {}\n    for ch in text:\n        counts[ch] = counts.get(ch, 0) + 1\n    return counts",
    ),
];

const LONG_CODE_RULES: &str = "### How to write the solution
Spread the function over many short lines, one small step per line:
- store every intermediate result in its own variable with a telling name;
- use plain `for`/`while` loops and `if` statements instead of comprehensions, \
`lambda`, `map`/`filter` chains or other dense one-line expressions;
- keep each line simple, so that the code written so far can run at any point.
Reply with the code only, in a single ```python block.";

const LONG_CODE_EXAMPLES: &[(&str, &str)] = &[
    (
        "def evens(xs):\n    return [x for x in xs if x % 2 == 0]",
        "def evens(xs):\n    result = []\n    for x in xs:\n        is_even = x % 2 == 0\n        if is_even:\n            result.append(x)\n    return result",
    ),
    (
        "def longest(words):\n    return max(words, key=lambda w: len(w)) if words else ''",
        "def longest(words):\n    best = ''\n    for word in words:\n        if len(word) > len(best):\n            best = word\n    return best",
    ),
    (
        "def digit_sum(n):\n    return sum(map(int, str(abs(n))))",
        "def digit_sum(n):\n    digits = str(abs(n))\n    total = 0\n    for ch in digits:\n        value = int(ch)\n        total += value\n    return total",
    ),
    (
        "def pair_sums(a, b):\n    return {x + y for x in a for y in b}",
        "def pair_sums(a, b):\n    sums = set()\n    for x in a:\n        for y in b:\n            pair_total = x + y\n            sums.add(pair_total)\n    return sums",
    ),
];

/// The user message of `task` in `style`, without the signal.
pub fn user_message(task: &Task, style: PromptStyle) -> String {
    let problem = problem_text(task);
    let tests = tests_text(&task.visible);
    match style {
        PromptStyle::Instruct => {
            let mut out = String::from(INSTRUCT_INTRO);
            for (i, (text, asserts, code)) in INSTRUCT_EXAMPLES.iter().enumerate() {
                out.push_str(&format!(
                    "\n\n### Example {}\nTask: {text}\nTests:\n{asserts}\nSolution:\n{FENCE}python\n{code}\n{FENCE}",
                    i + 1
                ));
            }
            out.push_str(&format!(
                "\n\n### Your task\nTask: {problem}\nTests:\n{tests}"
            ));
            out
        }
        PromptStyle::LongCode => {
            let mut out = format!("### Task\n{problem}\nTests:\n{tests}\n\n{LONG_CODE_RULES}\n\n### Examples of the style");
            for (i, (dense, spread)) in LONG_CODE_EXAMPLES.iter().enumerate() {
                out.push_str(&format!(
                    "\n\nPair {}, too dense:\n{FENCE}python\n{dense}\n{FENCE}\nThe same, written out:\n{FENCE}python\n{spread}\n{FENCE}",
                    i + 1
                ));
            }
            out
        }
    }
}

/// The problem statement, with the stdin/stdout contract for IO tasks.
fn problem_text(task: &Task) -> String {
    let statement = task.prompt.trim();
    let io = task
        .visible
        .iter()
        .any(|t| matches!(t, TestCase::Stdio { .. }));
    if io {
        format!(
            "{statement}\nPut the whole solution in a function `{name}()` that reads standard \
input and prints the answer. Do not call `{name}()` yourself; the tests call it.",
            name = task.entry_point
        )
    } else {
        statement.to_string()
    }
}

/// The visible tests as shown to the model: asserts one per line, IO cases
/// numbered with stdin and stdout as Python literals.
pub fn tests_text(tests: &[TestCase]) -> String {
    let mut lines = Vec::new();
    let mut io_case = 0;
    for test in tests {
        match test {
            TestCase::Assert { code } | TestCase::Script { code } => {
                lines.push(code.trim().to_string())
            }
            TestCase::Stdio { stdin, stdout } => {
                io_case += 1;
                lines.push(format!(
                    "Case {io_case}:\nstdin: {}\nexpected stdout: {}",
                    py_repr(stdin),
                    py_repr(stdout)
                ));
            }
        }
    }
    lines.join("\n")
}

/// A Python string literal for `s`, as Python's `repr` writes it.
pub fn py_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Render the prompt of `task` in `style` with the engine's chat template and
/// split it into head and marker.
pub fn build_prompt(
    engine: &dyn Engine,
    task: &Task,
    style: PromptStyle,
    force_fence: bool,
) -> Result<PromptParts, MethodError> {
    let user = user_message(task, style);
    let render = |content: String| {
        engine.apply_chat_template(
            &[
                ChatMessage {
                    role: Role::System,
                    content: SYSTEM_LINE.to_string(),
                },
                ChatMessage {
                    role: Role::User,
                    content,
                },
            ],
            true,
        )
    };
    let marked = render(format!("{user}{SPLIT_SENTINEL}"))?;
    let (head, marker) = match marked.split_once(SPLIT_SENTINEL) {
        Some((h, m)) if !m.contains(SPLIT_SENTINEL) => (h.to_string(), m.to_string()),
        _ => {
            return Err(MethodError::Template(
                "the split marker was lost or repeated".into(),
            ))
        }
    };
    let plain = render(user)?;
    if plain != format!("{head}{marker}") {
        return Err(MethodError::Template(
            "rendering changes the end of the user message".into(),
        ));
    }
    let response_prefix = if force_fence {
        OPENING_FENCE.to_string()
    } else {
        String::new()
    };
    Ok(PromptParts {
        head,
        marker: format!("{marker}{response_prefix}"),
        response_prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedEngine;

    fn task(visible: Vec<TestCase>) -> Task {
        Task {
            id: "t".into(),
            prompt: "Add one to a number.".into(),
            entry_point: "add_one".into(),
            visible,
            hidden: vec![],
            setup: None,
        }
    }

    #[test]
    fn repr_matches_python() {
        assert_eq!(py_repr("a\nb"), "'a\\nb'");
        assert_eq!(py_repr("it's"), "\"it's\"");
        assert_eq!(py_repr("'\""), "'\\'\"'");
        assert_eq!(py_repr("\u{1}\\"), "'\\x01\\\\'");
    }

    #[test]
    fn tests_block() {
        let tests = vec![
            TestCase::Assert {
                code: "assert add_one(1) == 2".into(),
            },
            TestCase::Stdio {
                stdin: "3\n".into(),
                stdout: "4\n".into(),
            },
        ];
        assert_eq!(
            tests_text(&tests),
            "assert add_one(1) == 2\nCase 1:\nstdin: '3\\n'\nexpected stdout: '4\\n'"
        );
    }

    #[test]
    fn both_styles_end_with_the_tests_or_rules_and_split_at_the_user_turn() {
        let engine = ScriptedEngine::new(|_| None);
        let t = task(vec![TestCase::Assert {
            code: "assert add_one(1) == 2".into(),
        }]);
        for style in [PromptStyle::Instruct, PromptStyle::LongCode] {
            let parts = build_prompt(&engine, &t, style, true).unwrap();
            assert!(parts.head.starts_with("<|im_start|>system\n"));
            assert!(parts.head.contains("assert add_one(1) == 2"));
            assert_eq!(
                parts.marker,
                "<|im_end|>\n<|im_start|>assistant\n```python\n"
            );
            assert_eq!(parts.response_prefix, OPENING_FENCE);
        }
        let instruct = build_prompt(&engine, &t, PromptStyle::Instruct, false).unwrap();
        assert!(instruct.head.ends_with("Tests:\nassert add_one(1) == 2"));
        assert_eq!(instruct.marker, "<|im_end|>\n<|im_start|>assistant\n");
    }
}
