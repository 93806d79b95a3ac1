//! Each kind of server with a documented JSON API (vLLM's OpenAI API,
//! SGLang's native one) against its fake: the same checks for both.

use std::sync::Arc;

use serde_json::json;

use super::fake::{self, Log, Quirks, IM_END};
use super::{fast, server_error};
use crate::api::{ContinueRequest, ContinueStop, TokenLogprob, Usage};
use crate::sampler::SamplerConfig;
use crate::served::{ServedEngine, ServerKind};
use crate::{ChatMessage, Engine, EngineError, Logits, ModelInfo, Role, SeqId, SeqInput, Token};

type Fake = fn(Quirks) -> (String, Arc<Log>);

fn connect(fake: Fake) -> (ServedEngine, String, Arc<Log>) {
    let (url, log) = fake(Quirks::default());
    let engine = ServedEngine::connect(fast(&[&url])).expect("connects to the fake");
    (engine, url, log)
}

fn sequence(engine: &dyn Engine, tokens: &[Token]) -> SeqId {
    let seq = engine.new_sequence().unwrap();
    engine
        .append(&[SeqInput {
            seq,
            tokens: tokens.to_vec(),
        }])
        .unwrap();
    seq
}

fn prompt() -> Vec<Token> {
    fake::tokenize("<|im_start|>user\nwrite<|im_end|>\n<|im_start|>assistant\n")
}

fn detects_the_kind_and_reads_the_models_facts(fake: Fake, kind: ServerKind, top_k: usize) {
    let (engine, url, _) = connect(fake);
    assert_eq!(engine.kind(), kind);
    assert_eq!(engine.endpoints(), [url.as_str()]);
    let info = engine.info();
    assert_eq!(info.name, "fake-coder");
    assert_eq!(info.n_ctx, fake::MAX_MODEL_LEN);
    assert_eq!(info.eos_tokens, [IM_END], "the template's end of turn");
    assert_eq!(engine.top_k_limit(), Some(top_k));
    assert!(engine.scores_in_one_pass());
}

#[test]
fn openai_is_detected_and_capped_at_its_max_logprobs() {
    // The fake refuses more than vLLM's default 20 log-probabilities, and
    // the refusal names the cap.
    detects_the_kind_and_reads_the_models_facts(
        fake::openai,
        ServerKind::OpenAi,
        fake::MAX_LOGPROBS,
    );
}

#[test]
fn sglang_is_detected() {
    detects_the_kind_and_reads_the_models_facts(
        fake::sglang,
        ServerKind::Sglang,
        crate::served::DEFAULT_TOP_K,
    );
}

fn tokenizes_and_renders_through_the_server(fake: Fake) {
    let (engine, _, _) = connect(fake);
    let text = "a<|im_end|>é";
    assert_eq!(engine.tokenize(text, true).unwrap(), fake::tokenize(text));
    assert_eq!(engine.token_bytes(b'a' as Token).unwrap(), b"a");
    assert_eq!(engine.token_bytes(IM_END).unwrap(), b"<|im_end|>");
    let messages = [
        ChatMessage {
            role: Role::System,
            content: "Be brief.".into(),
        },
        ChatMessage {
            role: Role::User,
            content: "Hi".into(),
        },
    ];
    let expected = fake::render(
        &[
            json!({"role": "system", "content": "Be brief."}),
            json!({"role": "user", "content": "Hi"}),
        ],
        true,
    );
    assert_eq!(
        engine.apply_chat_template(&messages, true).unwrap(),
        expected
    );
}

#[test]
fn openai_tokenizes_and_renders_through_the_server() {
    tokenizes_and_renders_through_the_server(fake::openai);
}

#[test]
fn sglang_tokenizes_and_renders_through_the_server() {
    tokenizes_and_renders_through_the_server(fake::sglang);
}

fn top_k_lists_are_parsed_most_likely_first(fake: Fake) {
    let (engine, _, _) = connect(fake);
    let seq = engine.new_sequence().unwrap();
    let got = engine
        .decode_top_k(
            &[SeqInput {
                seq,
                tokens: prompt(),
            }],
            5,
        )
        .unwrap()
        .remove(0);
    assert_eq!(got, fake::top_k(prompt().len(), 5));
    assert_eq!(
        engine.tokens(seq).unwrap(),
        prompt(),
        "the sequence took the tokens"
    );
}

#[test]
fn openai_top_k_lists_are_parsed_most_likely_first() {
    top_k_lists_are_parsed_most_likely_first(fake::openai);
}

#[test]
fn sglang_top_k_lists_are_parsed_most_likely_first() {
    top_k_lists_are_parsed_most_likely_first(fake::sglang);
}

fn n_continuations_come_with_their_top_lists(fake: Fake) {
    let (engine, _, log) = connect(fake);
    let seq = sequence(&engine, &prompt());
    let before = generation_requests(&log);
    let request = ContinueRequest {
        max_tokens: 30,
        max_lines: 1,
        sampling: SamplerConfig::nucleus(1.0, 0.95, 7),
        n: 3,
        logprobs: 4,
    };
    let got = engine.continue_sequence(seq, &[], &request).unwrap();
    assert_eq!(got.len(), 3);
    for (i, continuation) in got.iter().enumerate() {
        // Sample i is seeded with seed + i; the fake picks by parity.
        let expected = fake::generate(&prompt(), 30, true, (7 + i) % 2);
        assert_eq!(continuation.tokens, expected.tokens, "sample {i}");
        let stop = match expected.end {
            fake::End::Newline => ContinueStop::Newline,
            fake::End::Eos => ContinueStop::Eos,
            fake::End::Length => ContinueStop::MaxTokens,
        };
        assert_eq!(continuation.stop, stop, "sample {i}");
        let tops: Vec<Vec<TokenLogprob>> = continuation.top.iter().map(|t| t.to_vec()).collect();
        let expected_tops: Vec<Vec<TokenLogprob>> = (0..expected.tokens.len())
            .map(|at| fake::top_k(prompt().len() + at, 4))
            .collect();
        assert_eq!(tops, expected_tops, "sample {i}");
    }
    assert_eq!(
        engine.len(seq).unwrap(),
        prompt().len(),
        "the parent is unchanged"
    );
    // A greedy continuation runs into the model's end of turn.
    let greedy = ContinueRequest {
        max_tokens: 30,
        max_lines: 0,
        sampling: SamplerConfig::GREEDY,
        n: 1,
        logprobs: 0,
    };
    let got = engine
        .continue_sequence(seq, &[], &greedy)
        .unwrap()
        .remove(0);
    assert_eq!(got.tokens, fake::generate(&prompt(), 30, false, 0).tokens);
    assert_eq!(got.stop, ContinueStop::Eos);
    assert_eq!(got.tokens.last(), Some(&IM_END));
    assert!(got.top.is_empty(), "not asked for");
    // One generation request each, samples included.
    assert_eq!(generation_requests(&log) - before, 2);
}

/// Requests to the path that generates, of either kind.
fn generation_requests(log: &Log) -> usize {
    log.count("/v1/completions") + log.count("/generate")
}

#[test]
fn openai_gives_n_continuations_with_their_top_lists() {
    n_continuations_come_with_their_top_lists(fake::openai);
}

#[test]
fn sglang_gives_n_continuations_with_their_top_lists() {
    n_continuations_come_with_their_top_lists(fake::sglang);
}

/// Everything but [`Engine::score_tokens`] and
/// [`Engine::scores_in_one_pass`], which keep the trait's per-token
/// defaults.
struct PerToken<'a>(&'a ServedEngine);

impl Engine for PerToken<'_> {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }
    fn tokenize(&self, text: &str, parse_special: bool) -> Result<Vec<Token>, EngineError> {
        self.0.tokenize(text, parse_special)
    }
    fn token_bytes(&self, token: Token) -> Result<Vec<u8>, EngineError> {
        self.0.token_bytes(token)
    }
    fn apply_chat_template(
        &self,
        messages: &[ChatMessage],
        add: bool,
    ) -> Result<String, EngineError> {
        self.0.apply_chat_template(messages, add)
    }
    fn new_sequence(&self) -> Result<SeqId, EngineError> {
        self.0.new_sequence()
    }
    fn fork(&self, seq: SeqId) -> Result<SeqId, EngineError> {
        self.0.fork(seq)
    }
    fn len(&self, seq: SeqId) -> Result<usize, EngineError> {
        self.0.len(seq)
    }
    fn truncate(&self, seq: SeqId, len: usize) -> Result<(), EngineError> {
        self.0.truncate(seq, len)
    }
    fn free(&self, seq: SeqId) {
        self.0.free(seq)
    }
    fn decode(&self, inputs: &[SeqInput]) -> Result<Vec<Logits>, EngineError> {
        self.0.decode(inputs)
    }
    fn decode_top_k(
        &self,
        inputs: &[SeqInput],
        k: usize,
    ) -> Result<Vec<Vec<TokenLogprob>>, EngineError> {
        self.0.decode_top_k(inputs, k)
    }
}

fn scoring_in_one_request_equals_the_per_token_default(fake: Fake) {
    let (engine, _, log) = connect(fake);
    let seq = sequence(&engine, &prompt());
    let line = fake::tokenize("y = 2\n");
    let before = generation_requests(&log);
    let one_pass = engine.score_tokens(seq, &line, 6).unwrap();
    assert_eq!(
        generation_requests(&log) - before,
        1,
        "one request for the whole line"
    );
    let per_token = PerToken(&engine).score_tokens(seq, &line, 6).unwrap();
    assert_eq!(one_pass.len(), line.len());
    assert_eq!(one_pass, per_token);
    // And both are the model's lists after each prefix of the line.
    for (i, list) in one_pass.iter().enumerate() {
        assert_eq!(list.to_vec(), fake::top_k(prompt().len() + i + 1, 6));
    }
    assert_eq!(engine.tokens(seq).unwrap(), prompt(), "seq is unchanged");
}

#[test]
fn openai_scores_a_line_in_one_request_as_the_default_does() {
    scoring_in_one_request_equals_the_per_token_default(fake::openai);
}

#[test]
fn sglang_scores_a_line_in_one_request_as_the_default_does() {
    scoring_in_one_request_equals_the_per_token_default(fake::sglang);
}

fn usage_counts_requests_and_tokens_of_the_calling_thread(fake: Fake) {
    let (engine, _, _) = connect(fake);
    let start = engine.thread_usage();
    let seq = engine.new_sequence().unwrap();
    engine
        .decode_top_k(
            &[SeqInput {
                seq,
                tokens: prompt(),
            }],
            3,
        )
        .unwrap();
    engine
        .decode_top_k(
            &[SeqInput {
                seq,
                tokens: vec![b'x' as Token],
            }],
            3,
        )
        .unwrap();
    let spent = engine.thread_usage().since(&start);
    let n = prompt().len() as u64;
    assert_eq!(
        spent,
        Usage {
            requests: 2,
            prompt_tokens: n + n + 1,
            // The second prompt extends the first, which the fake caches.
            cached_prompt_tokens: n,
            generated_tokens: 2,
        }
    );
    // Another thread spent nothing.
    std::thread::scope(|s| {
        s.spawn(|| assert_eq!(engine.thread_usage(), Usage::default()));
    });
}

#[test]
fn openai_usage_is_counted_per_thread() {
    usage_counts_requests_and_tokens_of_the_calling_thread(fake::openai);
}

#[test]
fn sglang_usage_is_counted_per_thread() {
    usage_counts_requests_and_tokens_of_the_calling_thread(fake::sglang);
}

fn lists_that_do_not_match_the_tokens_are_a_clear_error(fake: Fake, expected: &str) {
    let (url, _) = fake(Quirks {
        short_top_lists: true,
        ..Quirks::default()
    });
    let engine = ServedEngine::connect(fast(&[&url])).unwrap();
    let seq = sequence(&engine, &prompt());
    let request = ContinueRequest {
        max_tokens: 5,
        max_lines: 0,
        sampling: SamplerConfig::GREEDY,
        n: 1,
        logprobs: 2,
    };
    let Err(EngineError::Server { endpoint, reason }) =
        engine.continue_sequence(seq, &[], &request)
    else {
        panic!("a malformed answer must be an error");
    };
    assert_eq!(endpoint, url);
    assert!(reason.contains(expected), "{reason}");
    assert!(reason.contains("malformed answer"), "{reason}");
}

#[test]
fn openai_lists_that_do_not_match_the_tokens_are_a_clear_error() {
    lists_that_do_not_match_the_tokens_are_a_clear_error(
        fake::openai,
        "/v1/completions: malformed answer (top_logprobs and tokens differ in length)",
    );
}

#[test]
fn sglang_lists_that_do_not_match_the_tokens_are_a_clear_error() {
    lists_that_do_not_match_the_tokens_are_a_clear_error(
        fake::sglang,
        "/generate: malformed answer (output_top_logprobs and the tokens differ in length)",
    );
}

#[test]
fn openai_tokens_not_given_as_ids_are_a_clear_error() {
    let (url, _) = fake::openai(Quirks {
        tokens_as_text: true,
        ..Quirks::default()
    });
    let engine = ServedEngine::connect(fast(&[&url])).unwrap();
    let seq = sequence(&engine, &prompt());
    let request = ContinueRequest {
        max_tokens: 5,
        max_lines: 0,
        sampling: SamplerConfig::GREEDY,
        n: 1,
        logprobs: 0,
    };
    let Err(EngineError::Server { reason, .. }) = engine.continue_sequence(seq, &[], &request)
    else {
        panic!("a malformed answer must be an error");
    };
    assert!(reason.contains("return_tokens_as_token_ids"), "{reason}");
}

#[test]
fn a_server_of_no_known_kind_is_named_with_what_to_do() {
    let url = super::fake_server(super::Behaviour::Route(Arc::new(|_: &super::Request| {
        (404, r#"{"detail":"Not Found"}"#.to_string())
    })));
    let (endpoint, reason) = server_error(ServedEngine::connect(fast(&[&url])));
    assert_eq!(endpoint, url);
    assert!(reason.contains("--endpoint-kind"), "{reason}");
    assert!(!reason.contains("API key"), "{reason}");
    let locked = super::fake_server(super::Behaviour::Route(Arc::new(|_: &super::Request| {
        (401, r#"{"error":"Unauthorized"}"#.to_string())
    })));
    let (_, reason) = server_error(ServedEngine::connect(fast(&[&locked])));
    assert!(reason.contains("refused access (401)"), "{reason}");
    assert!(reason.contains("--api-key-env"), "{reason}");
}

#[test]
fn an_sglang_that_cannot_render_conversations_says_so() {
    let (url, _) = fake::sglang(Quirks {
        no_chat_tokenize: true,
        ..Quirks::default()
    });
    let (endpoint, reason) = server_error(ServedEngine::connect(fast(&[&url])));
    assert_eq!(endpoint, url);
    assert!(
        reason.contains("/tokenize refused a conversation (answered 400"),
        "{reason}"
    );
    assert!(
        reason.contains("needs an SGLang whose /tokenize takes messages"),
        "{reason}"
    );
}

#[test]
fn an_openai_server_refusing_log_probabilities_without_a_cap_is_a_clear_error() {
    let (url, _) = fake::openai(Quirks {
        no_prompt_logprobs: true,
        ..Quirks::default()
    });
    let (endpoint, reason) = server_error(ServedEngine::connect(fast(&[&url])));
    assert_eq!(endpoint, url);
    assert!(reason.contains("refused 64 log-probabilities"), "{reason}");
    assert!(reason.contains("not yet supported on VLLM V1"), "{reason}");
    assert!(reason.contains("--max-logprobs 64"), "{reason}");
}

#[test]
fn a_retried_request_counts_twice() {
    let requests = |quirks: Quirks| {
        let (url, _) = fake::openai(quirks);
        let engine = ServedEngine::connect(fast(&[&url])).unwrap();
        engine.thread_usage().requests
    };
    // The first completion request, the cap probe at connection, is
    // answered 503 and retried.
    let overloaded = requests(Quirks {
        overloaded_once: true,
        ..Quirks::default()
    });
    assert_eq!(overloaded, requests(Quirks::default()) + 1);
}
