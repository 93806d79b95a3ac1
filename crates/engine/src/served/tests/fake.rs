//! In-process fake servers answering the documented JSON of vLLM's OpenAI
//! API and SGLang's native API, over a tiny deterministic model.
//!
//! The model's vocabulary is the 256 bytes plus `<|im_start|>` (256) and
//! `<|im_end|>` (257, its end of turn). After a prompt of `L` tokens the
//! most likely token is `TEXT[L % TEXT.len()]` with probability 1/2, and
//! the `j`-th next id after it has 2^-(j+1): every top-k list is known in
//! closed form, and greedy text is `TEXT` over and over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{fake_server, Behaviour, Request};
use crate::api::TokenLogprob;
use crate::Token;

pub(super) const VOCAB: i32 = 258;
pub(super) const IM_START: Token = 256;
pub(super) const IM_END: Token = 257;
/// What the model says, token by token: two lines, then its end of turn.
pub(super) fn text() -> Vec<Token> {
    let mut tokens: Vec<Token> = b"x = 1\ny = 2\n".iter().map(|&b| b as Token).collect();
    tokens.push(IM_END);
    tokens
}
/// vLLM's default `--max-logprobs`.
pub(super) const MAX_LOGPROBS: usize = 20;
pub(super) const MAX_MODEL_LEN: usize = 4096;

/// Text to ids: markers are always parsed, as a Hugging Face tokenizer does.
pub(super) fn tokenize(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<|im_start|>") {
            tokens.push(IM_START);
            rest = after;
        } else if let Some(after) = rest.strip_prefix("<|im_end|>") {
            tokens.push(IM_END);
            rest = after;
        } else {
            let c = rest.chars().next().unwrap();
            let mut buf = [0; 4];
            tokens.extend(c.encode_utf8(&mut buf).bytes().map(|b| b as Token));
            rest = &rest[c.len_utf8()..];
        }
    }
    tokens
}

pub(super) fn detokenize(tokens: &[Token]) -> String {
    let mut bytes = Vec::new();
    for &t in tokens {
        match t {
            IM_START => bytes.extend(b"<|im_start|>"),
            IM_END => bytes.extend(b"<|im_end|>"),
            t => bytes.push(t as u8),
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// ChatML.
pub(super) fn render(messages: &[Value], add_generation_prompt: bool) -> String {
    let mut out = String::new();
    for m in messages {
        out += &format!(
            "<|im_start|>{}\n{}<|im_end|>\n",
            m["role"].as_str().unwrap(),
            m["content"].as_str().unwrap()
        );
    }
    if add_generation_prompt {
        out += "<|im_start|>assistant\n";
    }
    out
}

/// The top `k` after a prompt of `len` tokens, most likely first.
pub(super) fn top_k(len: usize, k: usize) -> Vec<TokenLogprob> {
    let best = text()[len % text().len()];
    (0..k)
        .map(|j| TokenLogprob {
            token: (best + j as i32) % VOCAB,
            logprob: -((j + 1) as f32) * std::f32::consts::LN_2,
        })
        .collect()
}

fn logprob_of(len: usize, token: Token) -> f32 {
    let best = text()[len % text().len()];
    let j = (token - best).rem_euclid(VOCAB);
    -((j + 1) as f32) * std::f32::consts::LN_2
}

/// One generation: greedy takes the best token, a sample the best or the
/// second by its seed's parity. Stops after a newline when asked, at the
/// end of turn, or at `max` tokens.
pub(super) struct Generation {
    pub(super) tokens: Vec<Token>,
    pub(super) end: End,
}

#[derive(PartialEq)]
pub(super) enum End {
    Newline,
    Eos,
    Length,
}

pub(super) fn generate(prompt: &[Token], max: usize, newline: bool, pick: usize) -> Generation {
    let mut tokens = Vec::new();
    loop {
        let token = top_k(prompt.len() + tokens.len(), pick + 1)[pick].token;
        tokens.push(token);
        if token == IM_END {
            return Generation {
                tokens,
                end: End::Eos,
            };
        }
        if newline && token == b'\n' as Token {
            return Generation {
                tokens,
                end: End::Newline,
            };
        }
        if tokens.len() >= max {
            return Generation {
                tokens,
                end: End::Length,
            };
        }
    }
}

/// A fake server's record: requests by path, and the last prompt (its
/// "prefix cache").
#[derive(Default)]
pub(super) struct Log {
    pub(super) by_path: Mutex<HashMap<String, usize>>,
    last_prompt: Mutex<Vec<Token>>,
}

impl Log {
    pub(super) fn count(&self, path: &str) -> usize {
        self.by_path.lock().unwrap().get(path).copied().unwrap_or(0)
    }

    /// Tokens `prompt` shares with the previous prompt.
    fn cached(&self, prompt: &[Token]) -> usize {
        let mut last = self.last_prompt.lock().unwrap();
        let shared = last.iter().zip(prompt).take_while(|(a, b)| a == b).count();
        *last = prompt.to_vec();
        shared
    }
}

/// How a fake server bends the truth, to test the client's checks.
#[derive(Clone, Copy, Default)]
pub(super) struct Quirks {
    /// Another model name than `fake-coder`.
    pub(super) name: Option<&'static str>,
    /// Generated tokens spelled as text instead of `token_id:N`.
    pub(super) tokens_as_text: bool,
    /// Top lists one short of the tokens.
    pub(super) short_top_lists: bool,
    /// Takes half a second to generate.
    pub(super) slow: bool,
    /// `/tokenize` refuses conversations (an older SGLang).
    pub(super) no_chat_tokenize: bool,
    /// Refuses prompt log-probabilities (an older vLLM with prefix caching).
    pub(super) no_prompt_logprobs: bool,
    /// Answers the first request for a completion with 503, as an
    /// overloaded server does.
    pub(super) overloaded_once: bool,
}

fn ids(value: &Value) -> Vec<Token> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap() as Token)
        .collect()
}

fn not_found() -> (u16, String) {
    (404, r#"{"detail":"Not Found"}"#.into())
}

fn tokenize_answer(body: &Value) -> Vec<Token> {
    match body.get("messages") {
        Some(messages) => tokenize(&render(
            messages.as_array().unwrap(),
            body["add_generation_prompt"].as_bool().unwrap_or(true),
        )),
        None => tokenize(body["prompt"].as_str().unwrap()),
    }
}

/// A vLLM-like server; returns its URL and its log.
pub(super) fn openai(quirks: Quirks) -> (String, Arc<Log>) {
    let log = Arc::new(Log::default());
    let seen = log.clone();
    let url = fake_server(Behaviour::Route(Arc::new(move |request: &Request| {
        *seen
            .by_path
            .lock()
            .unwrap()
            .entry(request.path.clone())
            .or_default() += 1;
        openai_answer(&seen, quirks, request)
    })));
    (url, log)
}

fn openai_answer(log: &Log, quirks: Quirks, request: &Request) -> (u16, String) {
    let body = &request.body;
    let answer = match request.path.as_str() {
        "/v1/models" => json!({"object": "list", "data": [{
            "id": quirks.name.unwrap_or("fake-coder"), "object": "model",
            "owned_by": "vllm", "max_model_len": MAX_MODEL_LEN}]}),
        "/tokenize" => {
            let tokens = tokenize_answer(body);
            json!({"count": tokens.len(), "max_model_len": MAX_MODEL_LEN, "tokens": tokens})
        }
        "/detokenize" => json!({"prompt": detokenize(&ids(&body["tokens"]))}),
        "/v1/completions" if quirks.overloaded_once && log.count("/v1/completions") == 1 => {
            return (503, r#"{"error":"overloaded"}"#.into())
        }
        "/v1/completions" => return openai_completion(log, quirks, body),
        _ => return not_found(),
    };
    (200, answer.to_string())
}

fn openai_completion(log: &Log, quirks: Quirks, body: &Value) -> (u16, String) {
    if quirks.slow {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let prompt = ids(&body["prompt"]);
    let logprobs = body["logprobs"].as_u64().map(|k| k as usize);
    let prompt_logprobs = body["prompt_logprobs"].as_u64().map(|k| k as usize);
    if quirks.no_prompt_logprobs && prompt_logprobs.is_some() {
        let message = "Prefix caching with prompt logprobs not yet supported on VLLM V1.";
        return (
            400,
            json!({"object": "error", "message": message, "code": 400}).to_string(),
        );
    }
    for asked in [logprobs, prompt_logprobs].into_iter().flatten() {
        if asked > MAX_LOGPROBS {
            let message = format!(
                "Requested sample logprobs of {asked}, which is greater than max allowed: {MAX_LOGPROBS}"
            );
            let error = json!({"object": "error", "message": message,
                "type": "BadRequestError", "param": null, "code": 400});
            return (400, error.to_string());
        }
    }
    let n = body["n"].as_u64().unwrap_or(1) as usize;
    let max = body["max_tokens"].as_u64().unwrap() as usize;
    let newline = body["stop"] == json!(["\n"]);
    let greedy = body["temperature"].as_f64().unwrap_or(1.0) == 0.0;
    let seed = body["seed"].as_u64().unwrap_or(0) as usize;
    let id = |t: Token| format!("token_id:{t}");
    let mut completion_tokens = 0;
    let choices: Vec<Value> = (0..n)
        .map(|i| {
            let pick = if greedy { 0 } else { (seed + i) % 2 };
            let generation = generate(&prompt, max, newline, pick);
            completion_tokens += generation.tokens.len();
            let mut tops: Vec<Value> = generation
                .tokens
                .iter()
                .enumerate()
                .map(|(at, &token)| {
                    let len = prompt.len() + at;
                    // vLLM adds the chosen token to its top k.
                    let mut top: serde_json::Map<String, Value> = top_k(len, logprobs.unwrap_or(0))
                        .iter()
                        .map(|e| (id(e.token), json!(e.logprob)))
                        .collect();
                    top.insert(id(token), json!(logprob_of(len, token)));
                    Value::Object(top)
                })
                .collect();
            if quirks.short_top_lists {
                tops.pop();
            }
            let tokens: Vec<Value> = generation
                .tokens
                .iter()
                .map(|&t| if quirks.tokens_as_text { json!(detokenize(&[t])) } else { json!(id(t)) })
                .collect();
            let (finish, stop_reason) = match generation.end {
                End::Newline => ("stop", json!("\n")),
                End::Eos => ("stop", Value::Null),
                End::Length => ("length", Value::Null),
            };
            let mut choice = json!({
                "index": i,
                "text": detokenize(&generation.tokens),
                "logprobs": {"tokens": tokens, "top_logprobs": tops,
                    "token_logprobs": [], "text_offset": []},
                "finish_reason": finish,
                "stop_reason": stop_reason,
            });
            if let Some(k) = prompt_logprobs {
                let lists: Vec<Value> = (0..prompt.len())
                    .map(|p| {
                        if p == 0 {
                            return Value::Null;
                        }
                        let mut list: serde_json::Map<String, Value> = top_k(p, k)
                            .iter()
                            .enumerate()
                            .map(|(rank, e)| (e.token.to_string(),
                                json!({"logprob": e.logprob, "rank": rank + 1, "decoded_token": id(e.token)})))
                            .collect();
                        list.insert(prompt[p].to_string(), json!({"logprob": logprob_of(p, prompt[p]),
                            "rank": 99, "decoded_token": id(prompt[p])}));
                        Value::Object(list)
                    })
                    .collect();
                choice["prompt_logprobs"] = json!(lists);
            }
            choice
        })
        .collect();
    // Lists in reverse, as a server may: the client orders by `index`.
    let choices: Vec<Value> = choices.into_iter().rev().collect();
    let answer = json!({
        "id": "cmpl-1", "object": "text_completion", "model": "fake-coder",
        "choices": choices,
        "usage": {"prompt_tokens": prompt.len(), "completion_tokens": completion_tokens,
            "total_tokens": prompt.len() + completion_tokens,
            "prompt_tokens_details": {"cached_tokens": log.cached(&prompt)}},
    });
    (200, answer.to_string())
}

/// An SGLang-like server; returns its URL and its log.
pub(super) fn sglang(quirks: Quirks) -> (String, Arc<Log>) {
    let log = Arc::new(Log::default());
    let seen = log.clone();
    let url = fake_server(Behaviour::Route(Arc::new(move |request: &Request| {
        *seen
            .by_path
            .lock()
            .unwrap()
            .entry(request.path.clone())
            .or_default() += 1;
        sglang_answer(&seen, quirks, request)
    })));
    (url, log)
}

fn sglang_answer(log: &Log, quirks: Quirks, request: &Request) -> (u16, String) {
    let body = &request.body;
    let answer = match request.path.as_str() {
        "/get_model_info" => json!({
            "model_path": format!("/models/{}", quirks.name.unwrap_or("fake-coder")),
            "tokenizer_path": "/models/fake-coder", "is_generation": true}),
        "/get_server_info" => json!({"model_path": "/models/fake-coder", "context_length": null,
            "max_req_input_len": MAX_MODEL_LEN, "version": "0.5"}),
        "/v1/models" => json!({"object": "list", "data": [{"id": "fake-coder"}]}),
        "/tokenize" if quirks.no_chat_tokenize && body.get("messages").is_some() => {
            return (
                400,
                r#"{"object":"error","message":"Field required: prompt"}"#.into(),
            )
        }
        "/tokenize" => {
            // The tokenizer's placeholder length, which is not the context.
            let tokens = tokenize_answer(body);
            serde_json::from_str(&format!(
                r#"{{"tokens": {tokens:?}, "count": {}, "max_model_len": 1000000000000000019884624838656}}"#,
                tokens.len()
            ))
            .unwrap()
        }
        "/detokenize" => {
            // Special tokens are skipped unless asked not to be.
            let tokens: Vec<Token> = ids(&body["tokens"])
                .into_iter()
                .filter(|&t| body["skip_special_tokens"] == json!(false) || t < IM_START)
                .collect();
            json!({"text": detokenize(&tokens)})
        }
        "/generate" => {
            let batch = body["input_ids"][0].is_array();
            let prompts: Vec<Vec<Token>> = if batch {
                body["input_ids"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(ids)
                    .collect()
            } else {
                vec![ids(&body["input_ids"])]
            };
            let outputs: Vec<Value> = prompts
                .iter()
                .enumerate()
                .map(|(i, prompt)| {
                    let params = if batch {
                        &body["sampling_params"][i]
                    } else {
                        &body["sampling_params"]
                    };
                    sglang_output(log, quirks, body, params, prompt)
                })
                .collect();
            if batch {
                json!(outputs)
            } else {
                outputs.into_iter().next().unwrap()
            }
        }
        _ => return not_found(),
    };
    (200, answer.to_string())
}

fn sglang_output(
    log: &Log,
    quirks: Quirks,
    body: &Value,
    params: &Value,
    prompt: &[Token],
) -> Value {
    let k = body["top_logprobs_num"].as_u64().unwrap_or(0) as usize;
    let max = params["max_new_tokens"].as_u64().unwrap() as usize;
    let newline = params["stop"] == json!(["\n"]);
    let greedy = params["temperature"].as_f64().unwrap_or(1.0) == 0.0;
    let pick = if greedy {
        0
    } else {
        params["sampling_seed"].as_u64().unwrap() as usize % 2
    };
    let generation = generate(prompt, max, newline, pick);
    let entry = |len: usize, t: Token| json!([logprob_of(len, t), t, null]);
    let list =
        |len: usize| -> Value { top_k(len, k).iter().map(|e| entry(len, e.token)).collect() };
    let mut output_tops: Vec<Value> = (0..generation.tokens.len())
        .map(|at| list(prompt.len() + at))
        .collect();
    if quirks.short_top_lists {
        output_tops.pop();
    }
    let start = body["logprob_start_len"].as_i64().unwrap_or(-1);
    let (input_tokens, input_tops): (Vec<Value>, Vec<Value>) = if start < 0 {
        (Vec::new(), Vec::new())
    } else {
        (start as usize..prompt.len())
            .map(|p| {
                if p == 0 {
                    (json!([null, prompt[p], null]), Value::Null)
                } else {
                    (entry(p, prompt[p]), list(p))
                }
            })
            .unzip()
    };
    let finish = match generation.end {
        End::Newline => json!({"type": "stop", "matched": "\n"}),
        End::Eos => json!({"type": "stop", "matched": IM_END}),
        End::Length => json!({"type": "length", "length": max}),
    };
    json!({
        "text": detokenize(&generation.tokens),
        "output_ids": generation.tokens,
        "meta_info": {
            "id": "req-1",
            "finish_reason": finish,
            "prompt_tokens": prompt.len(),
            "completion_tokens": generation.tokens.len(),
            "cached_tokens": log.cached(prompt),
            "output_token_logprobs": generation.tokens.iter().enumerate()
                .map(|(at, &t)| entry(prompt.len() + at, t)).collect::<Vec<_>>(),
            "output_top_logprobs": output_tops,
            "input_token_logprobs": input_tokens,
            "input_top_logprobs": input_tops,
        }
    })
}
