//! The dynamic signal: the text block of execution traces spliced into the
//! conditional prompt (docs/method.md §7). The wording is egcfg's own.

use serde::{Deserialize, Serialize};

use egcfg_engine::{Engine, EngineError, Token};

use crate::code_text::FENCE;

/// The block's fixed opening: heading and explanation.
const BLOCK_INTRO: &str = "\n### Execution traces of sampled continuations
Each entry below comes from running the code written so far with one sampled \
continuation appended. The continuations are plausible guesses and may be \
unfinished or wrong. Every candidate was run on the test calls above, and each \
entry has three parts:
- Program: the candidate code that was executed;
- Invocation: the call (or the standard input) it was run with;
- Trace: the lines it executed and the values of its variables.
Use what the traces reveal to write a function that passes the tests.
";

/// One (candidate, test) run as shown to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalEntry {
    /// Index of the candidate among the unique executable ones.
    pub candidate: usize,
    /// Index of the visible test.
    pub test: usize,
    /// The executable program.
    pub program: String,
    /// The invocation label (call expression, or stdin and expected stdout).
    pub invocation: String,
    /// The rendered trace.
    pub trace: String,
}

impl SignalEntry {
    /// The entry's text: a newline, the three labelled sections separated by
    /// blank lines, a newline.
    pub fn text(&self) -> String {
        format!(
            "\nProgram:\n{FENCE}python\n{}\n{FENCE}\n\nInvocation:\n{FENCE}\n{}\n{FENCE}\n\nTrace:\n{FENCE}\n{}\n{FENCE}\n",
            self.program.trim_end(),
            self.invocation.trim_end(),
            self.trace.trim_end()
        )
    }
}

/// A signal ready to splice: its text and token ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The block's text.
    pub text: String,
    /// Its token ids (tokenized on its own, so it splices at an id boundary).
    pub tokens: Vec<Token>,
    /// Entries included.
    pub entries_used: usize,
    /// Entries left out to respect the token cap.
    pub entries_dropped: usize,
}

/// The block text for these entries (empty input gives an empty string: no
/// entries means no signal).
pub fn block_text(entries: &[SignalEntry]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let body: Vec<String> = entries.iter().map(SignalEntry::text).collect();
    format!("{BLOCK_INTRO}\n{}\n", body.join("\n"))
}

/// Build the signal from entries in order, skipping any entry that would
/// push the block past `max_tokens` (so one long trace does not hide the
/// short ones after it). `None` when no entry fits (or there are none),
/// which means no guidance.
pub fn build_signal(
    engine: &dyn Engine,
    entries: &[SignalEntry],
    max_tokens: usize,
) -> Result<Option<Signal>, EngineError> {
    let mut kept: Vec<SignalEntry> = Vec::new();
    let mut best: Option<(String, Vec<Token>)> = None;
    for entry in entries {
        kept.push(entry.clone());
        let text = block_text(&kept);
        let tokens = engine.tokenize(&text, false)?;
        if tokens.len() <= max_tokens {
            best = Some((text, tokens));
        } else {
            kept.pop();
        }
    }
    Ok(best.map(|(text, tokens)| Signal {
        text,
        tokens,
        entries_used: kept.len(),
        entries_dropped: entries.len() - kept.len(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ScriptedEngine;

    fn entry(candidate: usize, test: usize) -> SignalEntry {
        SignalEntry {
            candidate,
            test,
            program: "def f(x):\n    return x".into(),
            invocation: "f(1)".into(),
            trace: "line 2: x=1\nreturn 1".into(),
        }
    }

    #[test]
    fn entry_layout() {
        assert_eq!(
            entry(0, 0).text(),
            "\nProgram:\n```python\ndef f(x):\n    return x\n```\n\nInvocation:\n```\nf(1)\n```\n\nTrace:\n```\nline 2: x=1\nreturn 1\n```\n"
        );
    }

    #[test]
    fn block_starts_with_newline_and_ends_with_newline() {
        let text = block_text(&[entry(0, 0), entry(0, 1)]);
        assert!(text.starts_with("\n### Execution traces"));
        assert!(text.ends_with("```\n\n"));
        assert_eq!(text.matches("\nProgram:\n").count(), 2);
        assert_eq!(block_text(&[]), "");
    }

    #[test]
    fn token_cap_skips_entries_that_do_not_fit() {
        let engine = ScriptedEngine::new(|_| None);
        let entries = vec![entry(0, 0), entry(1, 0), entry(2, 0)];
        let one = engine
            .tokenize(&block_text(&entries[..1]), false)
            .unwrap()
            .len();
        let two = engine
            .tokenize(&block_text(&entries[..2]), false)
            .unwrap()
            .len();
        let s = build_signal(&engine, &entries, two).unwrap().unwrap();
        assert_eq!((s.entries_used, s.entries_dropped), (2, 1));
        assert_eq!(s.tokens.len(), two);
        assert!(build_signal(&engine, &entries, one - 1).unwrap().is_none());
        // A long entry in the middle is skipped, the short one after it kept.
        let mut long = entry(1, 0);
        long.trace = "x = 1\n".repeat(200);
        let mixed = vec![entry(0, 0), long, entry(2, 0)];
        let s = build_signal(&engine, &mixed, two).unwrap().unwrap();
        assert_eq!((s.entries_used, s.entries_dropped), (2, 1));
        assert!(!s.text.contains(&"x = 1\n".repeat(200)));
        assert!(build_signal(&engine, &[], 10_000).unwrap().is_none());
    }
}
