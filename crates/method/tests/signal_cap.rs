//! The signal's token cap on a real byte-level BPE (the committed tiny
//! fixture's, trained on Python): the block that guesses most "does it
//! fit" answers from one tokenization keeps exactly the entries that
//! tokenizing the block for every entry keeps.

use std::path::Path;

use egcfg_engine::{Engine, EngineConfig, LlamaEngine};
use egcfg_method::signal::{block_text, build_signal, SignalEntry, SignalLayout};

fn engine() -> LlamaEngine {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/tiny-llama.gguf");
    let config = EngineConfig {
        n_ctx: 256,
        n_threads: 1,
        n_seq_max: 1,
        n_batch: 64,
        n_ubatch: 64,
    };
    LlamaEngine::load(&path, config).expect("the tiny fixture loads")
}

/// Twelve runs of four candidates, with programs, calls and traces of
/// varied length, as a refresh writes them.
fn entries() -> Vec<SignalEntry> {
    (0..12)
        .map(|i| {
            let candidate = i / 3;
            let program = format!(
                "def second_largest(numbers):\n    ordered = sorted(set(numbers))\n{}",
                "    if len(ordered) < 2:\n        return None\n".repeat(candidate % 3)
            );
            let trace = (0..1 + (i * 5) % 17)
                .map(|l| {
                    format!(
                        "line {}: ordered=[{}], numbers=({i}, {l})\n",
                        2 + l % 3,
                        l * i
                    )
                })
                .collect::<String>()
                + "return value: None";
            SignalEntry {
                candidate,
                test: i % 3,
                program,
                invocation: format!("second_largest([{i}, {}, 7])", i * 3),
                trace,
            }
        })
        .collect()
}

/// The rule itself: try each entry in turn, keep it when the tokenized
/// block still fits.
fn kept_by_tokenizing(
    engine: &dyn Engine,
    entries: &[SignalEntry],
    layout: SignalLayout,
    cap: usize,
) -> Option<String> {
    let mut kept: Vec<SignalEntry> = Vec::new();
    for entry in entries {
        kept.push(entry.clone());
        if engine
            .tokenize(&block_text(&kept, layout), false)
            .unwrap()
            .len()
            > cap
        {
            kept.pop();
        }
    }
    (!kept.is_empty()).then(|| block_text(&kept, layout))
}

#[test]
fn guessing_keeps_what_tokenizing_every_entry_keeps() {
    let engine = engine();
    let entries = entries();
    for layout in SignalLayout::ALL {
        let whole = engine
            .tokenize(&block_text(&entries, layout), false)
            .unwrap()
            .len();
        // Sixty caps, at odd steps so they fall at every kind of boundary.
        for cap in (40..whole + 20).step_by((whole / 60) | 1) {
            let built = build_signal(&engine, &entries, layout, cap).unwrap();
            let expected = kept_by_tokenizing(&engine, &entries, layout, cap);
            assert_eq!(
                built.as_ref().map(|s| &s.text),
                expected.as_ref(),
                "{layout:?} under a cap of {cap} of {whole}"
            );
            if let Some(signal) = built {
                assert_eq!(signal.tokens, engine.tokenize(&signal.text, false).unwrap());
                assert!(signal.tokens.len() <= cap);
            }
        }
    }
}
