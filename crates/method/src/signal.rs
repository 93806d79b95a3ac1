//! The dynamic signal: the text block of execution traces spliced into the
//! conditional prompt (docs/method.md §7). The wording is egcfg's own.

use serde::{Deserialize, Serialize};

use egcfg_engine::{Engine, EngineError, Token};

use crate::code_text::FENCE;
use crate::token_estimate::TokenEstimate;

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

/// The opening of a block laid out by candidate.
const GROUPED_INTRO: &str = "\n### Execution traces of sampled continuations
Each program below is the code written so far with one sampled continuation \
appended. The continuations are plausible guesses and may be unfinished or \
wrong. Every program was run on the test calls above; under each program, \
every run has two parts:
- Invocation: the call (or the standard input) it was run with;
- Trace: the lines it executed and the values of its variables.
Use what the traces reveal to write a function that passes the tests.
";

/// The opening of a block whose programs share their first lines.
const SHARED_INTRO: &str = "\n### Execution traces of sampled continuations
Each program below is the code written so far with one sampled continuation \
appended. The continuations are plausible guesses and may be unfinished or \
wrong. The lines every program starts with are written once, as the shared \
code; each program then shows only the lines that follow it. Every program \
was run on the test calls above; under each program, every run has two parts:
- Invocation: the call (or the standard input) it was run with;
- Trace: the lines it executed and the values of its variables.
Use what the traces reveal to write a function that passes the tests.
";

/// How the (candidate, test) runs are laid out in the block. The layout
/// changes what the model reads, so it is part of a run's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalLayout {
    /// One entry per run: program, invocation, trace (the reference's
    /// layout).
    #[default]
    PerRun,
    /// One entry per candidate: its program once, then the invocation and
    /// trace of each of its runs. A program is as long as the code so far,
    /// so this spends on traces the tokens the repeats took.
    ByCandidate,
    /// As [`SignalLayout::ByCandidate`], but the whole lines every program
    /// starts with (mostly the code written so far) are written once, first,
    /// and each program shows only its own lines after them. The shared
    /// part only grows from one refresh to the next, so it also stays in the
    /// conditional stream's cache.
    SharedCode,
}

impl SignalLayout {
    /// Every layout, the default first.
    pub const ALL: [SignalLayout; 3] = [
        SignalLayout::PerRun,
        SignalLayout::ByCandidate,
        SignalLayout::SharedCode,
    ];
}

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
        format!("{}\n{}", self.program_text(), self.run_text())
    }

    /// The program section: a newline, the label, the fenced code.
    fn program_text(&self) -> String {
        format!(
            "\nProgram:\n{FENCE}python\n{}\n{FENCE}\n",
            self.program.trim_end()
        )
    }

    /// The invocation and trace sections, separated by a blank line.
    fn run_text(&self) -> String {
        format!(
            "Invocation:\n{FENCE}\n{}\n{FENCE}\n\nTrace:\n{FENCE}\n{}\n{FENCE}\n",
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

/// The block text for these entries in `layout` (empty input gives an empty
/// string: no entries means no signal).
pub fn block_text(entries: &[SignalEntry], layout: SignalLayout) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let by_candidate = || entries.chunk_by(|a, b| a.candidate == b.candidate);
    let (intro, body): (&str, Vec<String>) = match layout {
        SignalLayout::PerRun => (BLOCK_INTRO, entries.iter().map(SignalEntry::text).collect()),
        SignalLayout::ByCandidate => (
            GROUPED_INTRO,
            by_candidate()
                .map(|runs| candidate_text(&runs[0].program_text(), runs))
                .collect(),
        ),
        SignalLayout::SharedCode => {
            let programs: Vec<&str> = by_candidate()
                .map(|runs| runs[0].program.as_str())
                .collect();
            let shared = shared_lines(&programs);
            let mut body = vec![format!(
                "\nShared code:\n{FENCE}python\n{}\n{FENCE}\n",
                shared.trim_end()
            )];
            body.extend(by_candidate().map(|runs| {
                let own = runs[0].program[shared.len()..].trim_end();
                let program =
                    format!("\nProgram, after the shared code:\n{FENCE}python\n{own}\n{FENCE}\n");
                candidate_text(&program, runs)
            }));
            (SHARED_INTRO, body)
        }
    };
    format!("{intro}\n{}\n", body.join("\n"))
}

/// A candidate's entry: its program section, then each of its runs.
fn candidate_text(program_section: &str, runs: &[SignalEntry]) -> String {
    let runs_text: Vec<String> = runs.iter().map(SignalEntry::run_text).collect();
    format!("{program_section}\n{}", runs_text.join("\n"))
}

/// The whole lines every one of `programs` starts with, short of each
/// program's last line, so every program keeps a line of its own.
fn shared_lines<'p>(programs: &[&'p str]) -> &'p str {
    let Some(first) = programs.first() else {
        return "";
    };
    let common = programs.iter().fold(first.len(), |len, p| {
        let own_line = p.trim_end().rfind('\n').map_or(0, |i| i + 1);
        let same = first
            .bytes()
            .zip(p.bytes())
            .take_while(|(a, b)| a == b)
            .count();
        len.min(same).min(own_line)
    });
    // Cut at a newline, which is also a character boundary.
    first.as_bytes()[..common]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or("", |end| &first[..=end])
}

/// Build the signal from entries in order (a candidate's runs next to each
/// other, as the by-candidate layout groups only neighbours), skipping any
/// entry that would push the block past `max_tokens` (so one long trace does
/// not hide the short ones after it). `None` when no entry fits (or there
/// are none), which means no guidance.
///
/// Every "does it still fit" is answered as if the block were tokenized
/// with that entry, but on a served model each tokenization is a request:
/// so the whole block is tokenized once, and each answer is guessed from
/// it ([`TokenEstimate`]); only a guess within its slack of the cap is
/// tokenized. Should a guess have been wrong after all (the kept block
/// does not fit), every entry is decided by tokenizing.
pub fn build_signal(
    engine: &dyn Engine,
    entries: &[SignalEntry],
    layout: SignalLayout,
    max_tokens: usize,
) -> Result<Option<Signal>, EngineError> {
    if entries.is_empty() {
        return Ok(None);
    }
    let whole = block_text(entries, layout);
    let whole_tokens = engine.tokenize(&whole, false)?;
    if whole_tokens.len() <= max_tokens {
        return Ok(Some(Signal {
            text: whole,
            tokens: whole_tokens,
            entries_used: entries.len(),
            entries_dropped: 0,
        }));
    }
    let whole_bytes = engine.known_token_bytes(&whole_tokens);
    let estimate = TokenEstimate::measure(&whole, whole_tokens.len(), whole_bytes.as_deref());
    let sure_guess = |text: &str| {
        let guess = estimate.guess(text);
        let slack = estimate.slack(guess);
        if guess + slack <= max_tokens {
            Some(true)
        } else if guess > max_tokens + slack {
            Some(false)
        } else {
            None
        }
    };
    match choose_entries(engine, entries, layout, max_tokens, sure_guess)? {
        Some(signal) if signal.tokens.len() > max_tokens => {
            tracing::debug!(
                tokens = signal.tokens.len(),
                max_tokens,
                "a guessed signal block did not fit; tokenizing for every entry"
            );
            choose_entries(engine, entries, layout, max_tokens, |_| None)
        }
        chosen => Ok(chosen),
    }
}

/// The line that ends a trace [`cut_to_fit`] shortened.
const CUT_MARKER: &str = "... (the rest of this trace is cut to fit the block)";

/// The first of `entries` alone, its trace cut to as many leading lines as
/// let the block fit in `max_tokens`, then [`CUT_MARKER`]: what a refresh
/// shows when [`build_signal`] finds that not one whole run fits, so that a
/// run that was traced still guides the line. `None` when not even its
/// first trace line fits (or there is no entry, or its trace is one line,
/// which cannot be cut).
pub fn cut_to_fit(
    engine: &dyn Engine,
    entries: &[SignalEntry],
    layout: SignalLayout,
    max_tokens: usize,
) -> Result<Option<Signal>, EngineError> {
    let Some(first) = entries.first() else {
        return Ok(None);
    };
    let lines: Vec<&str> = first.trace.lines().collect();
    let block_keeping = |kept: usize| {
        let cut = SignalEntry {
            trace: format!("{}\n{CUT_MARKER}", lines[..kept].join("\n")),
            ..first.clone()
        };
        block_text(std::slice::from_ref(&cut), layout)
    };
    // The block grows with every line kept: the most lines that fit are
    // found by bisection, a few tokenizations whatever the trace's length.
    let mut fitting = None;
    let (mut low, mut high) = (1, lines.len().saturating_sub(1));
    while low <= high {
        let kept = (low + high) / 2;
        let text = block_keeping(kept);
        let tokens = engine.tokenize(&text, false)?;
        if tokens.len() <= max_tokens {
            fitting = Some((text, tokens));
            low = kept + 1;
        } else {
            high = kept - 1;
        }
    }
    Ok(fitting.map(|(text, tokens)| Signal {
        text,
        tokens,
        entries_used: 1,
        entries_dropped: entries.len() - 1,
    }))
}

/// Keeps each entry in turn whose block fits in `max_tokens`, as `sure`
/// says where it can tell and the tokenizer where `sure` gives `None`,
/// then tokenizes the kept block unless the last count already did.
fn choose_entries(
    engine: &dyn Engine,
    entries: &[SignalEntry],
    layout: SignalLayout,
    max_tokens: usize,
    sure: impl Fn(&str) -> Option<bool>,
) -> Result<Option<Signal>, EngineError> {
    let mut kept: Vec<SignalEntry> = Vec::new();
    // The kept block's tokens, while the count that kept it is the last.
    let mut kept_tokens: Option<Vec<Token>> = None;
    for entry in entries {
        kept.push(entry.clone());
        let text = block_text(&kept, layout);
        let fits = match sure(&text) {
            Some(fits) => {
                if fits {
                    kept_tokens = None;
                }
                fits
            }
            None => {
                let tokens = engine.tokenize(&text, false)?;
                let fits = tokens.len() <= max_tokens;
                if fits {
                    kept_tokens = Some(tokens);
                }
                fits
            }
        };
        if !fits {
            kept.pop();
        }
    }
    if kept.is_empty() {
        return Ok(None);
    }
    let text = block_text(&kept, layout);
    let tokens = match kept_tokens {
        Some(tokens) => tokens,
        None => engine.tokenize(&text, false)?,
    };
    Ok(Some(Signal {
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
    use std::sync::atomic::Ordering;

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
        let text = block_text(&[entry(0, 0), entry(0, 1)], SignalLayout::PerRun);
        assert!(text.starts_with("\n### Execution traces"));
        assert!(text.ends_with("```\n\n"));
        assert_eq!(text.matches("\nProgram:\n").count(), 2);
        assert_eq!(block_text(&[], SignalLayout::PerRun), "");
    }

    #[test]
    fn token_cap_skips_entries_that_do_not_fit() {
        let engine = ScriptedEngine::new(|_| None);
        let entries = vec![entry(0, 0), entry(1, 0), entry(2, 0)];
        let one = engine
            .tokenize(&block_text(&entries[..1], SignalLayout::PerRun), false)
            .unwrap()
            .len();
        let two = engine
            .tokenize(&block_text(&entries[..2], SignalLayout::PerRun), false)
            .unwrap()
            .len();
        let s = build_signal(&engine, &entries, SignalLayout::PerRun, two)
            .unwrap()
            .unwrap();
        assert_eq!((s.entries_used, s.entries_dropped), (2, 1));
        assert_eq!(s.tokens.len(), two);
        assert!(
            build_signal(&engine, &entries, SignalLayout::PerRun, one - 1)
                .unwrap()
                .is_none()
        );
        // A long entry in the middle is skipped, the short one after it kept.
        let mut long = entry(1, 0);
        long.trace = "x = 1\n".repeat(200);
        let mixed = vec![entry(0, 0), long, entry(2, 0)];
        let s = build_signal(&engine, &mixed, SignalLayout::PerRun, two)
            .unwrap()
            .unwrap();
        assert_eq!((s.entries_used, s.entries_dropped), (2, 1));
        assert!(!s.text.contains(&"x = 1\n".repeat(200)));
        assert!(build_signal(&engine, &[], SignalLayout::PerRun, 10_000)
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_run_too_long_for_the_cap_is_cut_to_the_lines_that_fit() {
        let engine = ScriptedEngine::new(|_| None);
        let mut long = entry(0, 0);
        long.trace = (0..40).map(|i| format!("  L2 y = {i} | y={i}\n")).collect();
        let entries = vec![
            long.clone(),
            SignalEntry {
                candidate: 1,
                ..long.clone()
            },
        ];
        let tokens = |text: &str| engine.tokenize(text, false).unwrap().len();
        let keeping = |lines: usize| {
            let cut = SignalEntry {
                trace: format!(
                    "{}\n{CUT_MARKER}",
                    long.trace
                        .lines()
                        .take(lines)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
                ..long.clone()
            };
            block_text(&[cut], SignalLayout::PerRun)
        };
        // A cap that holds 20 of the 40 lines, and not 21.
        let cap = tokens(&keeping(20));
        assert!(tokens(&keeping(21)) > cap);
        assert!(build_signal(&engine, &entries, SignalLayout::PerRun, cap)
            .unwrap()
            .is_none());
        let cut = cut_to_fit(&engine, &entries, SignalLayout::PerRun, cap)
            .unwrap()
            .expect("20 lines fit");
        assert_eq!(
            cut.text,
            keeping(20),
            "the trace's first 20 lines, then the marker"
        );
        assert_eq!(cut.tokens.len(), cap);
        assert_eq!((cut.entries_used, cut.entries_dropped), (1, 1));
        // Nothing to cut, or not even one line fits: no signal.
        assert!(cut_to_fit(&engine, &[], SignalLayout::PerRun, cap)
            .unwrap()
            .is_none());
        assert!(cut_to_fit(
            &engine,
            &entries,
            SignalLayout::PerRun,
            tokens(&keeping(1)) - 1
        )
        .unwrap()
        .is_none());
        let mut one_line = entry(0, 0);
        one_line.trace = "x = 1".repeat(200);
        assert!(cut_to_fit(&engine, &[one_line], SignalLayout::PerRun, cap)
            .unwrap()
            .is_none());
    }

    /// Nine entries of three candidates, with traces of 1 to 20 lines.
    fn varied_entries() -> Vec<SignalEntry> {
        (0..9)
            .map(|i| {
                let mut e = entry(i / 3, i % 3);
                e.program = format!("def f(x):\n    y = x * {}\n    return y", i / 3);
                e.invocation = format!("f({i})");
                e.trace = (0..1 + (i * 7) % 20)
                    .map(|l| format!("line {}: y={}\n", 2 + l % 2, l * i))
                    .collect();
                e
            })
            .collect()
    }

    #[test]
    fn guesses_choose_what_tokenizing_every_entry_chooses_with_fewer_requests() {
        let engine = ScriptedEngine::new(|_| None);
        let entries = varied_entries();
        let requests = || engine.tokenizations.load(Ordering::SeqCst);
        for layout in SignalLayout::ALL {
            let whole = engine
                .tokenize(&block_text(&entries, layout), false)
                .unwrap()
                .len();
            let (mut guessing, mut exact) = (0, 0);
            for cap in (50..whole + 50).step_by(7) {
                let before = requests();
                let built = build_signal(&engine, &entries, layout, cap).unwrap();
                guessing += requests() - before;
                let before = requests();
                let expected = choose_entries(&engine, &entries, layout, cap, |_| None).unwrap();
                exact += requests() - before;
                assert_eq!(built, expected, "{layout:?} under a cap of {cap}");
                if let Some(signal) = built {
                    assert!(signal.tokens.len() <= cap);
                }
            }
            assert!(
                guessing * 2 < exact,
                "{layout:?}: {guessing} tokenizations guessing, {exact} exactly"
            );
        }
    }

    #[test]
    fn by_candidate_layout_shows_each_program_once_above_its_runs() {
        let mut second_test = entry(0, 1);
        second_test.invocation = "f(2)".into();
        second_test.trace = "line 2: x=2\nreturn 2".into();
        let mut other = entry(1, 0);
        other.program = "def f(x):\n    return x + 1".into();
        let entries = [entry(0, 0), second_test, other];
        let text = block_text(&entries, SignalLayout::ByCandidate);
        assert!(text.starts_with("\n### Execution traces"));
        assert_eq!(text.matches("\nProgram:\n").count(), 2);
        assert_eq!(text.matches("Invocation:\n").count(), 3);
        assert!(text.contains(
            "\nProgram:\n```python\ndef f(x):\n    return x\n```\n\nInvocation:\n```\nf(1)\n```\n\nTrace:\n```\nline 2: x=1\nreturn 1\n```\n\nInvocation:\n```\nf(2)\n```\n"
        ));
        assert!(text.ends_with("return x + 1\n```\n\nInvocation:\n```\nf(1)\n```\n\nTrace:\n```\nline 2: x=1\nreturn 1\n```\n\n"));
        let per_run = block_text(&entries, SignalLayout::PerRun);
        assert!(text.len() < per_run.len());
        // The per-run layout is the one every earlier run was shown.
        assert_eq!(per_run.matches("\nProgram:\n").count(), 3);
    }

    #[test]
    fn shared_code_layout_writes_the_common_lines_once() {
        let program = |candidate: usize, body: &str| SignalEntry {
            program: format!("def f(x):\n    y = x\n{body}"),
            ..entry(candidate, 0)
        };
        let entries = [program(0, "    return y\n"), program(1, "    return -y\n")];
        let text = block_text(&entries, SignalLayout::SharedCode);
        assert!(text.contains(
            "\nShared code:\n```python\ndef f(x):\n    y = x\n```\n\n\nProgram, after the shared code:\n```python\n    return y\n```\n\nInvocation:"
        ));
        assert!(text.contains("after the shared code:\n```python\n    return -y\n```\n"));
        assert_eq!(text.matches("def f(x)").count(), 1);
        assert_eq!(text.matches("    y = x").count(), 1);
        // Every program keeps its last line, a lone one too.
        assert_eq!(shared_lines(&["a\nb\n"]), "a\n");
        assert_eq!(shared_lines(&["a\nb\n", "a\nb\nc\n"]), "a\n");
        assert_eq!(shared_lines(&["é\n", "é\n"]), "");
        assert_eq!(shared_lines(&["ab\nc", "ax\nc"]), "");
        assert_eq!(shared_lines(&[]), "");
    }
}
