//! Tests against the committed tiny random-weight model
//! (fixtures/tiny, made by scripts/fixtures/make_tiny_model.py).
//!
//! Tolerances, all absolute, on logits of magnitude ≈ 1–12:
//! * [`REFERENCE_TOL`]: llama.cpp (F32 weights, F16 KV cache) against the
//!   float64 numpy forward pass of the generator script. Measured: at most
//!   1.0e-2 over the 15 reference positions, which is F16 rounding of keys
//!   and values (relative 1e-3).
//! * [`SAME_SHAPE_TOL`]: the same tokens decoded with the same batch shapes
//!   but with the cache laid out differently (a fork vs. a recompute, a
//!   rolled-back sequence vs. a fresh one); only summation order differs.
//! * [`BATCH_SHAPE_TOL`]: the same sequence decoded inside batches of a
//!   different composition or split differently across decode calls;
//!   llama.cpp picks kernels and F16 rounding points by batch shape.
//!   Measured: at most 1.1e-2 (a 150-token prefill in 64-token calls vs. one
//!   call); docs/engine.md measured up to 0.3 on the quantized 0.5B model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::*;
use crate::generate::{self, GenerateOptions, Prompt, StopReason};
use crate::text::{detokenize, TokenDecoder};

const REFERENCE_TOL: f32 = 2e-2;
const SAME_SHAPE_TOL: f32 = 1e-4;
const BATCH_SHAPE_TOL: f32 = 2e-2;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/tiny")
        .join(name)
}

fn tiny_config() -> EngineConfig {
    EngineConfig {
        n_ctx: 512,
        n_threads: 1,
        n_seq_max: 8,
        n_batch: 64,
        n_ubatch: 64,
    }
}

fn tiny_with(config: EngineConfig) -> LlamaEngine {
    LlamaEngine::load(&fixture("tiny-llama.gguf"), config).expect("the tiny fixture loads")
}

fn tiny() -> LlamaEngine {
    tiny_with(tiny_config())
}

#[derive(Deserialize)]
struct Reference {
    n_vocab: usize,
    special_tokens: HashMap<String, Token>,
    prompt: String,
    prompt_tokens: Vec<Token>,
    logits: Vec<Vec<f64>>,
    tokenization: Vec<TokenizationSample>,
}

#[derive(Deserialize)]
struct TokenizationSample {
    text: String,
    tokens: Vec<Token>,
}

fn reference() -> Reference {
    let text = std::fs::read_to_string(fixture("reference.json")).expect("reference.json");
    serde_json::from_str(&text).expect("reference.json parses")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Extend one sequence and return its logits.
fn step(engine: &dyn Engine, seq: SeqId, tokens: &[Token]) -> Logits {
    let mut out = engine
        .decode(&[SeqInput {
            seq,
            tokens: tokens.to_vec(),
        }])
        .expect("decode");
    out.pop().unwrap()
}

/// A fresh sequence holding `tokens`, and its last logits.
fn fresh(engine: &dyn Engine, tokens: &[Token]) -> (SeqId, Logits) {
    let seq = engine.new_sequence().unwrap();
    let logits = step(engine, seq, tokens);
    (seq, logits)
}

fn prompt_of(len: usize) -> Vec<Token> {
    // Deterministic, varied, inside the 731-token vocabulary.
    (0..len)
        .map(|i| ((i * 97 + 13) % 700) as Token + 3)
        .collect()
}

#[test]
fn model_info_comes_from_the_gguf() {
    let engine = tiny();
    let reference = reference();
    let info = engine.info();
    assert_eq!(info.name, "egcfg tiny test llama");
    assert_eq!(info.n_vocab, reference.n_vocab);
    // The model allows 4096 positions; the engine's cache holds 512 cells.
    assert_eq!(info.n_ctx, 512);
    let im_end = reference.special_tokens["<|im_end|>"];
    let end_of_text = reference.special_tokens["<|endoftext|>"];
    assert!(info.eos_tokens.contains(&im_end) && info.eos_tokens.contains(&end_of_text));
    assert!(info
        .chat_template
        .as_deref()
        .unwrap()
        .contains("<|im_start|>"));
}

#[test]
fn tokenizer_matches_hugging_face_tokenizers() {
    let engine = tiny();
    let reference = reference();
    assert_eq!(
        engine.tokenize(&reference.prompt, false).unwrap(),
        reference.prompt_tokens
    );
    for sample in &reference.tokenization {
        assert_eq!(
            engine.tokenize(&sample.text, false).unwrap(),
            sample.tokens,
            "{:?}",
            sample.text
        );
        assert_eq!(detokenize(&engine, &sample.tokens).unwrap(), sample.text);
    }
    let im_start = reference.special_tokens["<|im_start|>"];
    assert_eq!(
        engine.tokenize("<|im_start|>user", true).unwrap()[0],
        im_start
    );
    assert!(!engine
        .tokenize("<|im_start|>user", false)
        .unwrap()
        .contains(&im_start));
    assert_eq!(engine.token_bytes(im_start).unwrap(), b"<|im_start|>");
    assert!(matches!(
        engine.token_bytes(-1),
        Err(EngineError::InvalidRequest(_))
    ));
    assert!(matches!(
        engine.token_bytes(reference.n_vocab as Token),
        Err(EngineError::InvalidRequest(_))
    ));
}

#[test]
fn logits_match_the_numpy_reference() {
    let engine = tiny();
    let reference = reference();
    let expected: Vec<Vec<f32>> = reference
        .logits
        .iter()
        .map(|row| row.iter().map(|&x| x as f32).collect())
        .collect();

    // The whole prompt in one decode: logits after its last token.
    let (_, last) = fresh(&engine, &reference.prompt_tokens);
    let diff = max_abs_diff(&last, expected.last().unwrap());
    assert!(
        diff < REFERENCE_TOL,
        "prefill differs from the reference by {diff}"
    );

    // One token at a time: logits at every position.
    let seq = engine.new_sequence().unwrap();
    for (i, (&token, row)) in reference.prompt_tokens.iter().zip(&expected).enumerate() {
        let logits = step(&engine, seq, &[token]);
        let diff = max_abs_diff(&logits, row);
        assert!(
            diff < REFERENCE_TOL,
            "position {i} differs from the reference by {diff}"
        );
        assert_eq!(crate::sampler::argmax(&logits), crate::sampler::argmax(row));
    }
    assert_eq!(engine.len(seq).unwrap(), reference.prompt_tokens.len());
}

#[test]
fn logits_are_deterministic() {
    let tokens = prompt_of(40);
    let a = tiny();
    let b = tiny();
    let (_, first) = fresh(&a, &tokens);
    let (_, again) = fresh(&a, &tokens);
    let (_, other_engine) = fresh(&b, &tokens);
    assert_eq!(first[..], again[..]);
    assert_eq!(first[..], other_engine[..]);
}

#[test]
fn a_fork_equals_recomputing_the_prefix() {
    let engine = tiny();
    let prefix = prompt_of(30);
    let extension = [101, 202, 303];

    let (parent, _) = fresh(&engine, &prefix);
    let child = engine.fork(parent).unwrap();
    assert_eq!(engine.len(child).unwrap(), prefix.len());
    let forked = step(&engine, child, &extension);
    // The parent is untouched by the child's extension.
    let parent_extended = step(&engine, parent, &extension);
    let diff = max_abs_diff(&forked, &parent_extended);
    assert!(
        diff < SAME_SHAPE_TOL,
        "fork vs parent fed the same tokens: {diff}"
    );

    // Recompute: the same calls (prefix, then extension) on a fresh sequence.
    let (recomputed_seq, _) = fresh(&engine, &prefix);
    let recomputed = step(&engine, recomputed_seq, &extension);
    let diff = max_abs_diff(&forked, &recomputed);
    assert!(diff < SAME_SHAPE_TOL, "fork vs recompute: {diff}");

    // And prefix + extension in a single decode (different batch shape).
    let all: Vec<Token> = prefix.iter().chain(&extension).copied().collect();
    let (_, one_shot) = fresh(&engine, &all);
    let diff = max_abs_diff(&forked, &one_shot);
    assert!(diff < BATCH_SHAPE_TOL, "fork vs one-shot prefill: {diff}");
}

#[test]
fn truncate_rolls_back_to_a_position() {
    let engine = tiny();
    let prefix = prompt_of(20);
    let (seq, _) = fresh(&engine, &prefix);
    step(&engine, seq, &[7, 8, 9, 10]);
    assert_eq!(engine.len(seq).unwrap(), 24);

    engine.truncate(seq, 20).unwrap();
    assert_eq!(engine.len(seq).unwrap(), 20);
    let after_rollback = step(&engine, seq, &[42]);

    let (fresh_seq, _) = fresh(&engine, &prefix);
    let expected = step(&engine, fresh_seq, &[42]);
    let diff = max_abs_diff(&after_rollback, &expected);
    assert!(diff < SAME_SHAPE_TOL, "rolled back vs fresh: {diff}");

    assert!(matches!(
        engine.truncate(seq, 99),
        Err(EngineError::InvalidRequest(_))
    ));
    engine.truncate(seq, 0).unwrap();
    assert_eq!(engine.len(seq).unwrap(), 0);
}

#[test]
fn a_batched_step_equals_stepping_each_sequence_alone() {
    let engine = tiny();
    let prefixes = [prompt_of(3), prompt_of(9), prompt_of(17)];
    let next: [&[Token]; 3] = [&[11], &[22, 23, 24, 25], &[33]];

    let alone: Vec<Logits> = prefixes
        .iter()
        .zip(next)
        .map(|(prefix, tokens)| {
            let (seq, _) = fresh(&engine, prefix);
            step(&engine, seq, tokens)
        })
        .collect();

    let seqs: Vec<SeqId> = prefixes.iter().map(|p| fresh(&engine, p).0).collect();
    let inputs: Vec<SeqInput> = seqs
        .iter()
        .zip(next)
        .map(|(&seq, tokens)| SeqInput {
            seq,
            tokens: tokens.to_vec(),
        })
        .collect();
    let before = engine.stats();
    let batched = engine.decode(&inputs).unwrap();
    assert_eq!(
        engine.stats().llama_decodes - before.llama_decodes,
        1,
        "one decode call"
    );

    for (i, (a, b)) in alone.iter().zip(&batched).enumerate() {
        let diff = max_abs_diff(a, b);
        assert!(
            diff < BATCH_SHAPE_TOL,
            "sequence {i}: batched vs alone differ by {diff}"
        );
    }
    let lens: Vec<usize> = seqs.iter().map(|&s| engine.len(s).unwrap()).collect();
    assert_eq!(lens, vec![4, 13, 18]);
}

#[test]
fn concurrent_callers_get_their_own_results() {
    let engine = tiny();
    let streams: Vec<Vec<Token>> = (0..4).map(|k| prompt_of(12 + 5 * k)).collect();

    // Serial ground truth, one token at a time per stream.
    let serial: Vec<Vec<Logits>> = streams
        .iter()
        .map(|tokens| {
            let seq = engine.new_sequence().unwrap();
            tokens.iter().map(|&t| step(&engine, seq, &[t])).collect()
        })
        .collect();

    let before = engine.stats();
    let concurrent: Vec<Vec<Logits>> = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .iter()
            .map(|tokens| {
                let engine = &engine;
                scope.spawn(move || {
                    let seq = engine.new_sequence().unwrap();
                    tokens
                        .iter()
                        .map(|&t| step(engine, seq, &[t]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let stats = engine.stats();
    let requests = stats.decode_requests - before.decode_requests;
    assert_eq!(requests, streams.iter().map(Vec::len).sum::<usize>() as u64);
    // Merging depends on timing; report it rather than assert it.
    eprintln!(
        "{requests} concurrent decode requests ran in {} rounds",
        stats.rounds - before.rounds
    );

    for (k, (expected, got)) in serial.iter().zip(&concurrent).enumerate() {
        for (i, (a, b)) in expected.iter().zip(got).enumerate() {
            let diff = max_abs_diff(a, b);
            assert!(diff < BATCH_SHAPE_TOL, "stream {k}, token {i}: {diff}");
        }
    }
}

#[test]
fn long_inputs_are_split_into_several_decode_calls() {
    let tokens = prompt_of(150);
    let split = tiny(); // n_batch = 64
    let before = split.stats();
    let (seq, logits) = fresh(&split, &tokens);
    assert_eq!(split.stats().llama_decodes - before.llama_decodes, 3);
    assert_eq!(split.len(seq).unwrap(), 150);

    let whole = tiny_with(EngineConfig {
        n_batch: 256,
        n_ubatch: 256,
        ..tiny_config()
    });
    let (_, expected) = fresh(&whole, &tokens);
    let diff = max_abs_diff(&logits, &expected);
    assert!(diff < BATCH_SHAPE_TOL, "split vs whole prefill: {diff}");
}

#[test]
fn overflowing_a_sequence_or_the_cache_is_context_full() {
    // 256 cells, so one sequence holds at most 256 tokens.
    let engine = tiny_with(EngineConfig {
        n_ctx: 256,
        ..tiny_config()
    });
    let long = engine.new_sequence().unwrap();
    let err = engine
        .decode(&[SeqInput {
            seq: long,
            tokens: prompt_of(257),
        }])
        .unwrap_err();
    assert!(
        matches!(err, EngineError::ContextFull { seq, needed: 257, n_ctx: 256 } if seq == long),
        "{err}"
    );
    assert_eq!(
        engine.len(long).unwrap(),
        0,
        "a refused decode changes nothing"
    );

    let (a, _) = fresh(&engine, &prompt_of(200));
    let b = engine.new_sequence().unwrap();
    let err = engine
        .decode(&[SeqInput {
            seq: b,
            tokens: prompt_of(100),
        }])
        .unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::ContextFull {
                needed: 300,
                n_ctx: 256,
                ..
            }
        ),
        "{err}"
    );

    // Forks share cells: a fork of `a` costs nothing until it grows.
    let fork = engine.fork(a).unwrap();
    step(&engine, fork, &prompt_of(50));
    engine.free(fork);
    engine.free(a);
    step(&engine, b, &prompt_of(100));
    assert_eq!(engine.len(b).unwrap(), 100);
}

#[test]
fn slots_run_out_and_come_back() {
    let engine = tiny_with(EngineConfig {
        n_seq_max: 2,
        ..tiny_config()
    });
    let a = engine.new_sequence().unwrap();
    let b = engine.fork(a).unwrap();
    assert!(matches!(
        engine.new_sequence(),
        Err(EngineError::NoFreeSlot(2))
    ));
    assert!(matches!(engine.fork(b), Err(EngineError::NoFreeSlot(2))));
    engine.free(a);
    let c = engine.new_sequence().unwrap();
    assert_ne!(c, a, "ids are never reused");
    // The reused slot starts empty.
    assert_eq!(engine.len(c).unwrap(), 0);
    step(&engine, c, &[5, 6]);
}

#[test]
fn malformed_requests_are_refused() {
    let engine = tiny();
    let seq = engine.new_sequence().unwrap();
    let input = |seq, tokens: &[Token]| SeqInput {
        seq,
        tokens: tokens.to_vec(),
    };
    let invalid =
        |inputs: &[SeqInput]| matches!(engine.decode(inputs), Err(EngineError::InvalidRequest(_)));
    assert!(invalid(&[input(seq, &[])]));
    assert!(invalid(&[input(seq, &[1]), input(seq, &[2])]));
    assert!(invalid(&[input(seq, &[1, 100_000])]));
    assert!(engine.decode(&[]).unwrap().is_empty());

    engine.free(seq);
    engine.free(seq); // freeing twice is a no-op
    assert!(
        matches!(engine.decode(&[input(seq, &[1])]), Err(EngineError::UnknownSequence(s)) if s == seq)
    );
    assert!(matches!(
        engine.len(seq),
        Err(EngineError::UnknownSequence(_))
    ));
    assert!(matches!(
        engine.fork(seq),
        Err(EngineError::UnknownSequence(_))
    ));
    assert!(matches!(
        engine.truncate(seq, 0),
        Err(EngineError::UnknownSequence(_))
    ));
}

#[test]
fn broken_model_files_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read(fixture("tiny-llama.gguf")).unwrap();
    let mut random = vec![0u8; 4096];
    for (i, byte) in random.iter_mut().enumerate() {
        *byte = (i * 131 % 251) as u8;
    }
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("random", random),
        ("html", b"<!DOCTYPE html><html>404</html>".to_vec()),
        ("header-only", good[..40].to_vec()),
        ("cut-in-metadata", good[..2000].to_vec()),
        ("cut-in-tensor-data", good[..good.len() / 2].to_vec()),
        ("cut-at-the-end", good[..good.len() - 100].to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(format!("{name}.gguf"));
        std::fs::write(&path, bytes).unwrap();
        match LlamaEngine::load(&path, tiny_config()) {
            Err(EngineError::Load { path: p, reason }) => {
                assert_eq!(p, path.display().to_string());
                assert!(!reason.is_empty(), "{name}: empty reason");
                eprintln!("{name}: {reason}");
            }
            Err(other) => panic!("{name}: expected a load error, got {other}"),
            Ok(_) => panic!("{name}: a broken file loaded"),
        }
    }
    let missing = dir.path().join("missing.gguf");
    let err = LlamaEngine::load(&missing, tiny_config())
        .err()
        .expect("missing file fails");
    assert!(err.to_string().contains("cannot open"), "{err}");
    let bad_config = EngineConfig {
        n_seq_max: 0,
        ..tiny_config()
    };
    let err = LlamaEngine::load(&fixture("tiny-llama.gguf"), bad_config)
        .err()
        .unwrap();
    assert!(err.to_string().contains("n_seq_max"), "{err}");
}

#[test]
fn settings_out_of_range_are_named_and_not_blamed_on_the_file() {
    for config in [
        EngineConfig {
            n_ctx: 0,
            ..tiny_config()
        },
        EngineConfig {
            n_threads: 0,
            ..tiny_config()
        },
    ] {
        let err = LlamaEngine::load(&fixture("tiny-llama.gguf"), config)
            .err()
            .unwrap();
        assert!(matches!(err, EngineError::InvalidConfig(_)), "{err}");
        let text = err.to_string();
        assert!(text.contains("must be"), "{text}");
        assert!(!text.contains("fetch"), "{text}");
    }
}

#[test]
fn chat_messages_render_with_the_gguf_template() {
    let engine = tiny();
    let messages = [
        ChatMessage {
            role: Role::System,
            content: "Be brief.".to_owned(),
        },
        ChatMessage {
            role: Role::User,
            content: "Add two numbers.".to_owned(),
        },
    ];
    let rendered = engine.apply_chat_template(&messages, true).unwrap();
    assert_eq!(
        rendered,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nAdd two numbers.<|im_end|>\n<|im_start|>assistant\n"
    );
    let without = engine.apply_chat_template(&messages, false).unwrap();
    assert!(!without.ends_with("assistant\n"));
}

#[test]
fn split_characters_decode_cleanly() {
    let engine = tiny();
    let text = "x = 'café ✓'";
    let tokens = engine.tokenize(text, false).unwrap();
    let split = tokens
        .iter()
        .any(|&t| std::str::from_utf8(&engine.token_bytes(t).unwrap()).is_err());
    assert!(split, "the tiny vocabulary splits é or ✓ across tokens");
    let mut decoder = TokenDecoder::new(&engine);
    let pieces: Vec<String> = tokens.iter().map(|&t| decoder.push(t).unwrap()).collect();
    assert!(pieces
        .iter()
        .all(|p| !p.contains(char::REPLACEMENT_CHARACTER)));
    assert_eq!(pieces.concat() + &decoder.finish(), text);
}

#[test]
fn generation_streams_and_stops() {
    let engine = tiny();
    let options = GenerateOptions {
        max_tokens: 24,
        ..GenerateOptions::default()
    };
    let prompt = Prompt::user("def add(a, b):");
    let mut streamed = String::new();
    let first =
        generate::generate(&engine, &prompt, &options, &mut |s| streamed.push_str(s)).unwrap();
    assert_eq!(streamed, first.text);
    assert!(first.generated_tokens > 0 && first.generated_tokens <= 24);
    assert!(first.prompt_tokens > 5);
    if first.stop_reason == StopReason::MaxTokens {
        assert_eq!(first.generated_tokens, 24);
    } else {
        assert_eq!(first.stop_reason, StopReason::EndOfText);
    }
    // Greedy generation is reproducible, and frees its sequence.
    let again = generate::generate(&engine, &prompt, &options, &mut |_| {}).unwrap();
    assert_eq!(again, first);

    // Stop at a string taken from the middle of the first output.
    let chars: Vec<char> = first.text.chars().collect();
    assert!(chars.len() >= 6, "the random model wrote {:?}", first.text);
    let stop: String = chars[3..5].iter().collect();
    let expected: String = first.text[..first.text.find(&stop).unwrap()].to_owned();
    let stopping = GenerateOptions {
        stop: vec![stop.clone()],
        ..options.clone()
    };
    let mut streamed = String::new();
    let stopped =
        generate::generate(&engine, &prompt, &stopping, &mut |s| streamed.push_str(s)).unwrap();
    assert_eq!(stopped.stop_reason, StopReason::StopString(stop));
    assert_eq!(stopped.text, expected);
    assert_eq!(streamed, expected);

    // Raw completion skips the template (and spells out special markers).
    let raw_text = "<|im_start|>def add(a, b):";
    let raw = generate::generate(
        &engine,
        &Prompt::Raw(raw_text.into()),
        &options,
        &mut |_| {},
    )
    .unwrap();
    assert_eq!(
        raw.prompt_tokens,
        engine.tokenize(raw_text, false).unwrap().len()
    );
    assert!(raw.prompt_tokens > engine.tokenize(raw_text, true).unwrap().len());
}

#[test]
fn the_benchmark_runs() {
    let engine = tiny();
    let options = crate::speed::BenchOptions {
        prompt_tokens: 40,
        decode_steps: 3,
        batch_sizes: vec![1, 3],
        forks: 2,
    };
    let report = crate::speed::run(&engine, &options).unwrap();
    assert_eq!(report.prefill.tokens, 40);
    let batches: Vec<(usize, usize)> = report
        .decode
        .iter()
        .map(|r| (r.batch, r.throughput.tokens))
        .collect();
    assert_eq!(batches, vec![(1, 3), (3, 9)]);
    assert!(report.decode.iter().all(|r| r.throughput.seconds > 0.0));
    let shown = report.to_string();
    assert!(shown.contains("prefill") && shown.contains("batch   3") && shown.contains("fork"));
    // Everything the benchmark created was freed: all 8 slots are available.
    let seqs: Vec<SeqId> = (0..8).map(|_| engine.new_sequence().unwrap()).collect();
    assert_eq!(seqs.len(), 8);
}

#[test]
fn dropping_the_engine_stops_its_thread() {
    let engine = tiny();
    let (_seq, _) = fresh(&engine, &prompt_of(10));
    let handle_thread_name = engine
        .worker
        .as_ref()
        .unwrap()
        .thread()
        .name()
        .map(str::to_owned);
    assert_eq!(handle_thread_name.as_deref(), Some("egcfg-engine"));
    drop(engine); // joins the engine thread; a hang here fails the suite
}

#[test]
fn top_k_by_default_is_the_head_of_the_full_softmax() {
    let engine = tiny();
    assert_eq!(engine.top_k_limit(), None, "a local model has full logits");
    let prompt = prompt_of(12);
    let (a, logits) = fresh(&engine, &prompt[..11]);
    let (b, _) = fresh(&engine, &prompt[..10]);
    let top = engine
        .decode_top_k(
            &[SeqInput {
                seq: b,
                tokens: vec![prompt[10]],
            }],
            5,
        )
        .unwrap()
        .remove(0);
    assert_eq!(top.len(), 5);
    let log_probs = crate::sampler::log_softmax(&logits, 1.0);
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&x, &y| logits[y].total_cmp(&logits[x]).then(x.cmp(&y)));
    for (entry, &id) in top.iter().zip(&order) {
        assert_eq!(entry.token, id as Token);
        assert!((entry.logprob as f64 - log_probs[id]).abs() < 1e-4);
    }
    engine.free(a);
    engine.free(b);
}

#[test]
fn continuing_by_default_is_the_decode_loop_on_a_fork() {
    let engine = tiny();
    let prompt = prompt_of(8);
    let seq = engine.new_sequence().unwrap();
    step(&engine, seq, &prompt[..6]);
    let request = crate::ContinueRequest {
        max_tokens: 7,
        max_lines: 0,
        sampling: crate::sampler::SamplerConfig::GREEDY,
        n: 2,
        logprobs: 0,
    };
    let out = engine
        .continue_sequence(seq, &prompt[6..], &request)
        .unwrap();
    assert_eq!(
        engine.len(seq).unwrap(),
        8,
        "the parent keeps only `append`"
    );
    // The same greedy loop by hand.
    let (by_hand, mut logits) = fresh(&engine, &prompt);
    let mut expected = Vec::new();
    for _ in 0..7 {
        let token = crate::sampler::argmax(&logits);
        expected.push(token);
        if engine.info().eos_tokens.contains(&token) {
            break;
        }
        logits = step(&engine, by_hand, &[token]);
    }
    assert_eq!(out.len(), 2);
    for c in &out {
        assert_eq!(c.tokens, expected);
    }
    engine.free(by_hand);
    engine.free(seq);
    // Forks were freed: every slot but none is free again.
    let mut all = Vec::new();
    while let Ok(s) = engine.new_sequence() {
        all.push(s);
    }
    assert_eq!(all.len(), tiny_config().n_seq_max);
}
