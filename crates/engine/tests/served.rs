//! The served backend against a real llama-server (built by
//! `scripts/llama-server.sh`, found through `$EGCFG_LLAMA_SERVER`), serving
//! the tiny fixture model that the local engine loads too, so the two
//! backends can be compared token for token.

#![cfg(all(feature = "llama", feature = "served"))]

use std::path::{Path, PathBuf};
use std::time::Duration;

use egcfg_engine::sampler::SamplerConfig;
use egcfg_engine::served::ClientConfig;
use egcfg_engine::{
    newlines, top_k_logprobs, ContinueRequest, ContinueStop, Engine, EngineConfig, EngineError,
    LlamaEngine, SeqInput, ServedConfig, ServedEngine, ServerKind, Token, TokenLogprob,
};
use egcfg_test_server::LlamaServer;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/tiny/tiny-llama.gguf")
}

/// Serves the fixture with three slots of 512 tokens (`n_cmpl` samples
/// may use up to one each), or `None` when `$EGCFG_LLAMA_SERVER` is unset;
/// `scripts/test.sh` always sets it.
fn start_server() -> Option<LlamaServer> {
    LlamaServer::start(&fixture(), 1536, 3)
}

fn connect(server: &LlamaServer) -> ServedEngine {
    ServedEngine::connect(ServedConfig::new(server.url())).expect("connects to llama-server")
}

fn local() -> LlamaEngine {
    let config = EngineConfig {
        n_ctx: 512,
        n_threads: 1,
        n_seq_max: 4,
        n_batch: 64,
        n_ubatch: 64,
    };
    LlamaEngine::load(&fixture(), config).expect("the tiny fixture loads")
}

fn prompt(engine: &dyn Engine) -> Vec<Token> {
    engine
        .tokenize("def add(a, b):\n    return", false)
        .unwrap()
}

#[test]
fn the_server_tokenizes_and_renders_like_the_local_engine() {
    let Some(server) = start_server() else { return };
    let (served, local) = (connect(&server), local());
    assert_eq!(served.info().n_vocab, local.info().n_vocab);
    assert_eq!(served.info().n_ctx, 512);
    for text in [
        "def add(a, b):\n    return a + b\n",
        "<|im_start|>user\nhé ✓<|im_end|>",
    ] {
        for special in [false, true] {
            assert_eq!(
                served.tokenize(text, special).unwrap(),
                local.tokenize(text, special).unwrap(),
                "{text:?} special={special}"
            );
        }
    }
    for token in prompt(&local) {
        assert_eq!(
            served.token_bytes(token).unwrap(),
            local.token_bytes(token).unwrap()
        );
    }
}

#[test]
fn tokenizing_plain_text_teaches_the_client_its_tokens_bytes() {
    let Some(server) = start_server() else { return };
    let (served, local) = (connect(&server), local());
    // Bytes that are not whole UTF-8 characters come back as byte lists.
    let text = "def größe(x):\n    return '✓' * x  # ok\n";
    let tokens = served.tokenize(text, false).unwrap();
    assert_eq!(
        served.known_token_bytes(&tokens),
        local.known_token_bytes(&tokens)
    );
    assert_eq!(
        served.known_token_bytes(&tokens).unwrap().concat(),
        text.as_bytes()
    );
    // Parsed markers teach nothing: they could be spelled otherwise.
    let marker = served.tokenize("<|im_start|>", true).unwrap();
    assert!(served.known_token_bytes(&marker).is_none());
}

#[test]
fn top_k_from_the_server_matches_the_local_logits() {
    let Some(server) = start_server() else { return };
    let (served, local) = (connect(&server), local());
    let tokens = prompt(&local);
    let seq = local.new_sequence().unwrap();
    let logits = local
        .decode(&[SeqInput {
            seq,
            tokens: tokens.clone(),
        }])
        .unwrap()
        .remove(0);
    let expected = top_k_logprobs(&logits, 10);
    let s = served.new_sequence().unwrap();
    let got = served
        .decode_top_k(
            &[SeqInput {
                seq: s,
                tokens: tokens.clone(),
            }],
            10,
        )
        .unwrap()
        .remove(0);
    assert_eq!(got.len(), 10);
    let ids = |l: &[egcfg_engine::TokenLogprob]| l.iter().map(|e| e.token).collect::<Vec<_>>();
    assert_eq!(ids(&got[..3]), ids(&expected[..3]), "{got:?}\n{expected:?}");
    for e in &expected[..3] {
        let g = got.iter().find(|g| g.token == e.token).unwrap();
        assert!((g.logprob - e.logprob).abs() < 0.05, "{g:?} vs {e:?}");
    }
    // The server's prompt is the client's sequence, as ids.
    assert_eq!(served.tokens(s).unwrap(), tokens);
    // A full-logits decode is refused, naming the server.
    let refused = served.decode(&[SeqInput {
        seq: s,
        tokens: vec![tokens[0]],
    }]);
    let Err(EngineError::Unsupported(why)) = refused else {
        panic!("decode must be refused");
    };
    assert!(why.contains(server.url()), "{why}");
}

#[test]
fn a_greedy_continuation_equals_the_local_engines() {
    let Some(server) = start_server() else { return };
    let (served, local) = (connect(&server), local());
    let tokens = prompt(&local);
    let request = ContinueRequest {
        max_tokens: 12,
        max_lines: 0,
        sampling: SamplerConfig::GREEDY,
        n: 1,
        logprobs: 0,
    };
    let seq = local.new_sequence().unwrap();
    let expected = local.continue_sequence(seq, &tokens, &request).unwrap();
    let s = served.new_sequence().unwrap();
    let got = served.continue_sequence(s, &tokens, &request).unwrap();
    assert_eq!(got, expected);
    assert_eq!(
        served.len(s).unwrap(),
        tokens.len(),
        "the parent keeps only `append`"
    );

    // Several samples in one request, each ending at its first newline.
    let lines = ContinueRequest {
        max_tokens: 40,
        max_lines: 1,
        sampling: SamplerConfig::nucleus(1.0, 0.95, 5),
        n: 3,
        logprobs: 0,
    };
    let got = served.continue_sequence(s, &[], &lines).unwrap();
    assert_eq!(got.len(), 3);
    for c in &got {
        let newlines: Vec<bool> = c
            .tokens
            .iter()
            .map(|&t| served.token_bytes(t).unwrap().contains(&b'\n'))
            .collect();
        match c.stop {
            ContinueStop::Newline => {
                assert_eq!(newlines.iter().position(|&n| n), Some(c.tokens.len() - 1))
            }
            _ => assert!(!newlines.contains(&true)),
        }
    }
}

#[test]
fn a_server_killed_mid_run_is_a_clear_error_naming_it() {
    let Some(mut server) = start_server() else {
        return;
    };
    let served = ServedEngine::connect(ServedConfig {
        client: ClientConfig {
            retries: 2,
            first_backoff: Duration::from_millis(20),
            ..ClientConfig::default()
        },
        ..ServedConfig::new(server.url())
    })
    .unwrap();
    let seq = served.new_sequence().unwrap();
    let tokens = served.tokenize("def f(x):", false).unwrap();
    served
        .decode_top_k(&[SeqInput { seq, tokens }], 5)
        .expect("the live server answers");
    server.kill();
    let next = served.decode_top_k(
        &[SeqInput {
            seq,
            tokens: vec![1],
        }],
        5,
    );
    let Err(EngineError::Server { endpoint, reason }) = next else {
        panic!("expected a server error, got {next:?}");
    };
    assert_eq!(endpoint, server.url());
    assert!(reason.contains("is the server running?"), "{reason}");
    assert!(reason.contains("gave up after 2 retries"), "{reason}");
}

/// The top-`k` list after `tokens`, from a fresh sequence.
fn top_after(served: &ServedEngine, tokens: &[Token], k: usize) -> Vec<TokenLogprob> {
    let seq = served.new_sequence().unwrap();
    let list = served
        .decode_top_k(
            &[SeqInput {
                seq,
                tokens: tokens.to_vec(),
            }],
            k,
        )
        .unwrap()
        .remove(0);
    served.free(seq);
    list
}

/// Two top lists of the same distribution: the same leading ids, and
/// log-probabilities that differ only by the batch's rounding.
fn assert_same_list(got: &[TokenLogprob], expected: &[TokenLogprob], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    let ids = |l: &[TokenLogprob]| l.iter().map(|e| e.token).collect::<Vec<_>>();
    assert_eq!(
        ids(&got[..3]),
        ids(&expected[..3]),
        "{what}: {got:?}\n{expected:?}"
    );
    for e in &expected[..3] {
        let g = got.iter().find(|g| g.token == e.token).unwrap();
        assert!(
            (g.logprob - e.logprob).abs() < 0.01,
            "{what}: {g:?} vs {e:?}"
        );
    }
}

#[test]
fn continuation_top_lists_and_scores_agree_with_decode_top_k() {
    let Some(server) = start_server() else { return };
    let served = connect(&server);
    assert_eq!(served.kind(), ServerKind::LlamaServer, "detected");
    assert!(
        !served.scores_in_one_pass(),
        "llama-server scores token by token"
    );
    let tokens = prompt(&served);
    let request = ContinueRequest {
        max_tokens: 8,
        max_lines: 0,
        sampling: SamplerConfig::GREEDY,
        n: 1,
        logprobs: 5,
    };
    let s = served.new_sequence().unwrap();
    let line = served
        .continue_sequence(s, &tokens, &request)
        .unwrap()
        .remove(0);
    assert_eq!(line.top.len(), line.tokens.len(), "one list per token");
    for (i, top) in line.top.iter().enumerate() {
        let prefix = [&tokens[..], &line.tokens[..i]].concat();
        assert_same_list(top, &top_after(&served, &prefix, 5), &format!("token {i}"));
        assert_eq!(top[0].token, line.tokens[i], "greedy takes the top token");
    }
    // Scoring the line gives, after each of its tokens, the list the next
    // token was drawn from.
    let scores = served.score_tokens(s, &line.tokens, 5).unwrap();
    assert_eq!(scores.len(), line.tokens.len());
    for (i, list) in scores.iter().enumerate() {
        let prefix = [&tokens[..], &line.tokens[..=i]].concat();
        assert_eq!(list.to_vec(), top_after(&served, &prefix, 5), "score {i}");
        if let Some(next) = line.top.get(i + 1) {
            assert_same_list(list, next, &format!("score {i} vs the next token's list"));
        }
    }
    assert_eq!(
        served.tokens(s).unwrap(),
        tokens,
        "scoring leaves seq as it was"
    );
}

#[test]
fn usage_counts_what_llama_server_reports() {
    let Some(server) = start_server() else { return };
    let served = connect(&server);
    let tokens = prompt(&served);
    let start = served.thread_usage();
    top_after(&served, &tokens, 3);
    top_after(&served, &tokens, 3);
    let spent = served.thread_usage().since(&start);
    assert_eq!(spent.requests, 2);
    assert_eq!(spent.prompt_tokens, 2 * tokens.len() as u64);
    assert_eq!(spent.generated_tokens, 2);
    // The second request finds the whole prompt but its last token in the
    // slot's cache (the server recomputes at least one).
    assert!(
        spent.cached_prompt_tokens >= tokens.len() as u64 - 1,
        "{spent:?}"
    );
}

/// An attempt's two streams share only the prompt head. On a thread whose
/// work is pinned, each keeps a slot of its own, so alternating between
/// them finds every prompt cached but its newest token. Left to itself,
/// the server puts the second stream in the slot holding the head (it
/// skips empty slots), and the two evict each other's part at every
/// request.
#[test]
fn a_pinned_threads_two_streams_keep_a_cache_each() {
    // Two slots for the thread, two left free for samples.
    let Some(server) = LlamaServer::start(&fixture(), 2048, 4) else {
        return;
    };
    let served = connect(&server);
    served.start_work();
    // A head much longer than either stream's own part, as in an attempt:
    // the server moves a slot's cache to its RAM cache (and back) only when
    // a request would drop most of it.
    let head = prompt(&served).repeat(8);
    let tail = |text: &str| served.tokenize(text, false).unwrap();
    let streams = [
        [
            head.clone(),
            tail(" a + b  # the execution signal's traces, long"),
        ]
        .concat(),
        [
            head.clone(),
            tail(" (a) + (b)  # the plain stream, differently"),
        ]
        .concat(),
    ]
    .map(|tokens| {
        let seq = served.new_sequence().unwrap();
        served.append(&[SeqInput { seq, tokens }]).unwrap();
        seq
    });
    let next = |seq| {
        served
            .decode_top_k(
                &[SeqInput {
                    seq,
                    tokens: vec![head[0]],
                }],
                1,
            )
            .unwrap();
    };
    // Each stream's first request fills its slot.
    streams.iter().for_each(|&seq| next(seq));
    let start = served.thread_usage();
    for _ in 0..3 {
        streams.iter().for_each(|&seq| next(seq));
    }
    let spent = served.thread_usage().since(&start);
    assert_eq!(spent.requests, 6);
    // The server computes at least the one new token of each prompt.
    assert!(
        spent.cached_prompt_tokens + 2 * spent.requests >= spent.prompt_tokens,
        "{spent:?}"
    );
}

/// No stop string ends a sample after its n-th line, so samples of several
/// lines are streamed and the stream is closed once each has its lines;
/// the server then stops writing them rather than go on to the token cap.
#[test]
fn samples_of_several_lines_end_after_them_on_the_server_too() {
    let Some(server) = start_server() else { return };
    let (served, local) = (connect(&server), local());
    let tokens = prompt(&local);
    let request = |sampling, n| ContinueRequest {
        max_tokens: 400,
        max_lines: 2,
        sampling,
        n,
        logprobs: 0,
    };
    let greedy = request(SamplerConfig::GREEDY, 1);
    let seq = local.new_sequence().unwrap();
    let expected = local.continue_sequence(seq, &tokens, &greedy).unwrap();
    let s = served.new_sequence().unwrap();
    assert_eq!(
        served.continue_sequence(s, &tokens, &greedy).unwrap(),
        expected
    );

    // The fixture's weights are random, and its likeliest tokens seldom
    // hold a newline: a hot temperature spreads the draws over the whole
    // vocabulary, where newlines come every few dozen tokens.
    let hot = SamplerConfig::nucleus(4.0, 1.0, 5);
    let before = server.tokens_predicted();
    let got = served.continue_sequence(s, &[], &request(hot, 3)).unwrap();
    assert_eq!(got.len(), 3);
    for c in &got {
        let mut lines = 0;
        let completed: Vec<bool> = c
            .tokens
            .iter()
            .map(|&t| {
                lines += newlines(&served.token_bytes(t).unwrap());
                lines >= 2
            })
            .collect();
        match c.stop {
            ContinueStop::Newline => {
                assert_eq!(completed.iter().position(|&c| c), Some(c.tokens.len() - 1))
            }
            _ => assert!(!completed.contains(&true), "{c:?}"),
        }
    }
    assert!(
        got.iter().any(|c| c.stop == ContinueStop::Newline)
            && got.iter().all(|c| c.stop != ContinueStop::MaxTokens),
        "the test needs samples that end before the cap, most at their lines: {got:?}"
    );

    // The server stopped them too: past the samples' last lines it wrote
    // only what it made before it saw the stream closed (about 15 tokens a
    // sample here, where the tiny model writes thousands a second), far
    // from the 400 each would otherwise have run to (measured: 875 in all
    // for these three, 221 read). A slot counts its tokens when it ends the
    // request, so this waits for that.
    let read: u64 = got.iter().map(|c| c.tokens.len() as u64).sum();
    let written = (0..200)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(50));
            server.tokens_predicted() - before
        })
        .find(|&written| written >= read)
        .expect("the server counts the samples' tokens within 10 s");
    let run_on = 3 * 400;
    assert!(
        written < read + (run_on - read) / 2,
        "wrote {written}, read {read}"
    );
}
