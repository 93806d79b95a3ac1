//! SGLang's native API: `/generate` with the prompt as `input_ids`,
//! `return_logprob` with `top_logprobs_num` for the top-k of each token,
//! and `logprob_start_len` so that scoring a proposed line returns the
//! lists of its tokens only while the radix cache keeps serving the
//! prefix. `/tokenize` and `/detokenize` are the tokenizer, `/tokenize`
//! with `messages` renders the chat template, and `/get_model_info` names
//! the model.

use serde_json::{json, Value};

use super::answer::{ranked, Answer};
use super::client::{clip, Client};
use super::meter::Tokens;
use super::protocol::Completion;
use crate::api::{ContinueRequest, TokenLogprob};
use crate::{ChatMessage, EngineError, Token};

const SERVER: &str = "an SGLang server";
const GENERATE: &str = "/generate";

/// Whether the answer to `GET /get_model_info` is SGLang's.
pub(super) fn recognises(info: &Value) -> bool {
    info.get("model_path").and_then(Value::as_str).is_some()
}

/// The model facts an SGLang server gives.
pub(super) struct Facts {
    /// The model's name: the last part of its path.
    pub(super) name: String,
    /// The longest sequence it takes.
    pub(super) n_ctx: usize,
}

/// Reads the model's name from `/get_model_info` and its context from
/// `/get_server_info`: the `--context-length` it was started with, or else
/// the longest input its scheduler admits. (The `max_model_len` of
/// `/tokenize` is the tokenizer's, often a placeholder, so it is not used.)
pub(super) fn connect(client: &Client) -> Result<Facts, EngineError> {
    let info = client.get("/get_model_info")?;
    let path = Answer::new(client, "/get_model_info", SERVER).string(&info, "/model_path")?;
    let name = path
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(path);
    let server = client.get("/get_server_info")?;
    let n_ctx = ["/context_length", "/max_req_input_len"]
        .iter()
        .find_map(|pointer| server.pointer(pointer).and_then(Value::as_u64))
        .filter(|&n| n > 0)
        .ok_or_else(|| EngineError::Server {
            endpoint: client.endpoint().to_string(),
            reason: "/get_server_info names no context length (context_length or \
                     max_req_input_len); start SGLang with --context-length N"
                .into(),
        })?;
    Ok(Facts {
        name: name.to_string(),
        n_ctx: n_ctx as usize,
    })
}

/// `/tokenize`, without BOS. The server's tokenizer always turns special
/// markers into their ids: `parse_special` cannot be honoured.
pub(super) fn tokenize(client: &Client, text: &str) -> Result<Vec<Token>, EngineError> {
    let value = client.post(
        "/tokenize",
        &json!({"prompt": text, "add_special_tokens": false}),
    )?;
    let answer = Answer::new(client, "/tokenize", SERVER);
    answer.token_ids(answer.field(&value, "/tokens")?)
}

/// `/detokenize`.
pub(super) fn detokenize(client: &Client, tokens: &[Token]) -> Result<String, EngineError> {
    let value = client.post(
        "/detokenize",
        &json!({"tokens": tokens, "skip_special_tokens": false}),
    )?;
    Ok(Answer::new(client, "/detokenize", SERVER)
        .string(&value, "/text")?
        .to_string())
}

/// The conversation rendered by the model's template: `/tokenize` with
/// `messages` applies it, `/detokenize` spells the ids out.
pub(super) fn apply_template(
    client: &Client,
    messages: &[ChatMessage],
    add_assistant_start: bool,
) -> Result<String, EngineError> {
    let body = json!({
        "messages": messages,
        "add_generation_prompt": add_assistant_start,
        "add_special_tokens": false,
    });
    let value = client
        .try_post("/tokenize", &body)?
        .map_err(|refusal| EngineError::Server {
            endpoint: client.endpoint().to_string(),
            reason: format!(
                "/tokenize refused a conversation (answered {}: {}); egcfg renders the chat \
             template through it, which needs an SGLang whose /tokenize takes messages",
                refusal.status,
                clip(&refusal.text)
            ),
        })?;
    let answer = Answer::new(client, "/tokenize", SERVER);
    let tokens = answer.token_ids(answer.field(&value, "/tokens")?)?;
    detokenize(client, &tokens)
}

/// The top-`k` next tokens after `prompt`: one greedy token with its top
/// list.
pub(super) fn next_top_k(
    client: &Client,
    prompt: &[Token],
    k: usize,
) -> Result<Vec<TokenLogprob>, EngineError> {
    let value = client.post(GENERATE, &greedy_token(prompt, k, -1))?;
    let answer = Answer::new(client, GENERATE, SERVER);
    count_tokens(client, std::slice::from_ref(&value));
    let tops = answer.list(&value, "/meta_info/output_top_logprobs")?;
    top_list(&answer, tops.first(), k)
}

/// What `prompt` says of its next token after each of its last `scored`
/// tokens, in one request: the input's top lists from where the scored
/// tokens start give all but the last list, the generated token the last.
pub(super) fn score(
    client: &Client,
    prompt: &[Token],
    scored: usize,
    k: usize,
) -> Result<Vec<Vec<TokenLogprob>>, EngineError> {
    let start = prompt.len() - scored;
    let value = client.post(GENERATE, &greedy_token(prompt, k, start as i64))?;
    let answer = Answer::new(client, GENERATE, SERVER);
    count_tokens(client, std::slice::from_ref(&value));
    let input_lists = answer.list(&value, "/meta_info/input_top_logprobs")?;
    // One list per input token from `start`; the first, for the token at
    // `start`, is not wanted (and is null when `start` is 0).
    if input_lists.len() < scored {
        return Err(answer.malformed(&format!(
            "input_top_logprobs has {} entries for {scored} scored tokens",
            input_lists.len()
        )));
    }
    let mut lists = input_lists[input_lists.len() + 1 - scored..]
        .iter()
        .map(|list| top_list(&answer, Some(list), k))
        .collect::<Result<Vec<_>, _>>()?;
    let tops = answer.list(&value, "/meta_info/output_top_logprobs")?;
    lists.push(top_list(&answer, tops.first(), k)?);
    Ok(lists)
}

/// A request for one greedy token after `prompt` with its top `k`, and the
/// input's top lists from `logprob_start_len` (-1: none).
fn greedy_token(prompt: &[Token], k: usize, logprob_start_len: i64) -> Value {
    json!({
        "input_ids": prompt,
        "sampling_params": {"max_new_tokens": 1, "temperature": 0.0},
        "return_logprob": true,
        "top_logprobs_num": k,
        "logprob_start_len": logprob_start_len,
    })
}

/// Continues `prompt` as `request` says: one request, a batch of `n`
/// copies of the prompt when `n > 1` so that sample `i` is seeded with
/// `seed + i`.
pub(super) fn complete(
    client: &Client,
    prompt: &[Token],
    request: &ContinueRequest,
) -> Result<Vec<Completion>, EngineError> {
    let sampling = &request.sampling;
    let params = |i: usize| {
        let mut params = json!({
            "max_new_tokens": request.max_tokens,
            "temperature": sampling.temperature.max(0.0),
            "top_p": sampling.top_p,
            // SGLang's "no limit" is -1, ours 0.
            "top_k": if sampling.top_k == 0 { -1 } else { sampling.top_k as i64 },
            // Keeps the stop (a newline, an end-of-generation token) in
            // the output, where it ends the line.
            "no_stop_trim": true,
            "skip_special_tokens": false,
        });
        if sampling.temperature > 0.0 {
            params["sampling_seed"] = json!(sampling.seed.wrapping_add(i as u64));
        }
        if request.max_lines == 1 {
            params["stop"] = json!(["\n"]);
        }
        params
    };
    let mut body = json!({
        "return_logprob": true,
        // The ids of the generated tokens come with their log-probabilities.
        "top_logprobs_num": request.logprobs,
        "logprob_start_len": -1,
    });
    if request.n == 1 {
        body["input_ids"] = json!(prompt);
        body["sampling_params"] = params(0);
    } else {
        body["input_ids"] = json!(vec![prompt; request.n]);
        body["sampling_params"] = Value::Array((0..request.n).map(params).collect());
    }
    let value = client.post(GENERATE, &body)?;
    let outputs = match value {
        Value::Array(list) => list,
        one => vec![one],
    };
    let answer = Answer::new(client, GENERATE, SERVER);
    if outputs.len() != request.n {
        return Err(answer.malformed(&format!(
            "asked for {} completions, got {}",
            request.n,
            outputs.len()
        )));
    }
    count_tokens(client, &outputs);
    outputs
        .iter()
        .map(|output| one_completion(&answer, output, request.logprobs))
        .collect()
}

fn one_completion(answer: &Answer, output: &Value, k: usize) -> Result<Completion, EngineError> {
    // Each generated token as `[logprob, id, text]`.
    let tokens = answer
        .list(output, "/meta_info/output_token_logprobs")?
        .iter()
        .map(|entry| {
            entry
                .get(1)
                .and_then(Value::as_i64)
                .ok_or_else(|| answer.malformed("an output_token_logprobs entry has no id"))
                .and_then(|id| answer.token_id(id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let top = if k > 0 {
        let lists = answer.list(output, "/meta_info/output_top_logprobs")?;
        if lists.len() != tokens.len() {
            return Err(answer.malformed("output_top_logprobs and the tokens differ in length"));
        }
        lists
            .iter()
            .map(|list| top_list(answer, Some(list), k))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    // A stop by a token names its id in `matched`; by a string, the string.
    let eos = output
        .pointer("/meta_info/finish_reason/type")
        .and_then(Value::as_str)
        == Some("stop")
        && output
            .pointer("/meta_info/finish_reason/matched")
            .is_some_and(Value::is_i64);
    Ok(Completion {
        tokens,
        eos,
        pieces: Vec::new(),
        top,
        slot: None,
    })
}

/// A top list, `[[logprob, id, text], ...]`.
fn top_list(
    answer: &Answer,
    list: Option<&Value>,
    k: usize,
) -> Result<Vec<TokenLogprob>, EngineError> {
    let list = list
        .and_then(Value::as_array)
        .filter(|list| !list.is_empty())
        .ok_or_else(|| answer.malformed("a top-logprobs list is not a non-empty list"))?;
    let top = list
        .iter()
        .map(|entry| {
            let id = entry
                .get(1)
                .and_then(Value::as_i64)
                .ok_or_else(|| answer.malformed("a top-logprobs entry has no id"))?;
            Ok(TokenLogprob {
                token: answer.token_id(id)?,
                logprob: answer.logprob(entry.get(0))?,
            })
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(ranked(top, k))
}

/// Counts each output's `meta_info`: prompt tokens, the cached ones, and
/// the generated ones.
fn count_tokens(client: &Client, outputs: &[Value]) {
    for output in outputs {
        let number = |pointer: &str| output.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
        client.meter().count_tokens(Tokens {
            prompt: number("/meta_info/prompt_tokens"),
            cached: number("/meta_info/cached_tokens"),
            generated: number("/meta_info/completion_tokens"),
        });
    }
}
