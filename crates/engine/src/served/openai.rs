//! vLLM and other OpenAI-compatible servers: `/v1/completions` with the
//! prompt as token ids, `logprobs` for the top-k of each generated token,
//! `prompt_logprobs` (vLLM) to score a whole proposed line in one request,
//! and `return_tokens_as_token_ids` (vLLM) so every generated token comes
//! back as its id. vLLM's `/tokenize` and `/detokenize` are the tokenizer,
//! and `/tokenize` with `messages` renders the chat template.
//!
//! vLLM refuses more log-probabilities per token than its `--max-logprobs`
//! (20 by default); [`connect`] asks for the configured `k` once and, when
//! refused, uses the cap the refusal names.

use serde_json::{json, Map, Value};

use super::answer::{ranked, Answer};
use super::client::{clip, Client};
use super::meter::Tokens;
use super::protocol::Completion;
use crate::api::{ContinueRequest, TokenLogprob};
use crate::{ChatMessage, EngineError, Token};

const SERVER: &str = "a vLLM or OpenAI-compatible server";
const COMPLETIONS: &str = "/v1/completions";

/// Whether the answer to `GET /v1/models` lists a model.
pub(super) fn recognises(models: &Value) -> bool {
    models
        .pointer("/data/0/id")
        .and_then(Value::as_str)
        .is_some()
}

/// What egcfg needs to know of an OpenAI-compatible server.
pub(super) struct Server {
    /// The model's id, which every request names.
    pub(super) model: String,
    /// The longest sequence it takes (`max_model_len`).
    pub(super) n_ctx: usize,
    /// The most log-probabilities per token it gives, at most the `k`
    /// asked for.
    pub(super) top_k: usize,
}

/// Reads the model's id and context from `/v1/models` (or `/tokenize`) and
/// finds how many log-probabilities per token the server gives, up to
/// `top_k`.
pub(super) fn connect(client: &Client, top_k: usize) -> Result<Server, EngineError> {
    let models = client.get("/v1/models")?;
    let answer = Answer::new(client, "/v1/models", SERVER);
    let model = answer.string(&models, "/data/0/id")?.to_string();
    let probe = client.post(
        "/tokenize",
        &json!({"model": model, "prompt": "def", "add_special_tokens": false}),
    )?;
    let tokenized = Answer::new(client, "/tokenize", SERVER);
    let n_ctx = match models.pointer("/data/0/max_model_len") {
        Some(_) => answer.positive(&models, "/data/0/max_model_len")?,
        None => tokenized.positive(&probe, "/max_model_len")?,
    };
    let probe_tokens = tokenized.token_ids(tokenized.field(&probe, "/tokens")?)?;
    let mut server = Server {
        model,
        n_ctx,
        top_k,
    };
    server.top_k = logprobs_cap(client, &server, &probe_tokens)?;
    Ok(server)
}

/// Asks for `server.top_k` log-probabilities of prompt and generated
/// tokens once; a refusal that names the server's cap gives the cap.
fn logprobs_cap(client: &Client, server: &Server, prompt: &[Token]) -> Result<usize, EngineError> {
    let body = json!({
        "model": server.model,
        "prompt": prompt,
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": server.top_k,
        "prompt_logprobs": server.top_k,
    });
    let refusal = match client.try_post(COMPLETIONS, &body)? {
        Ok(_) => return Ok(server.top_k),
        Err(refusal) => refusal,
    };
    let cap = refusal
        .text
        .split("max allowed")
        .nth(1)
        .and_then(|rest| {
            rest.trim_start_matches(|c: char| !c.is_ascii_digit())
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse::<usize>().ok())
        })
        .filter(|&cap| cap > 0);
    match cap {
        Some(cap) => {
            tracing::warn!(
                endpoint = client.endpoint(),
                asked = server.top_k,
                cap,
                "the server caps log-probabilities per token; start vLLM with \
                 --max-logprobs {} for the full top-k",
                server.top_k
            );
            Ok(cap.min(server.top_k))
        }
        None => Err(EngineError::Server {
            endpoint: client.endpoint().to_string(),
            reason: format!(
                "{COMPLETIONS}: refused {} log-probabilities per generated and prompt token \
                 (answered {}: {}); start vLLM with --max-logprobs {} or more (a vLLM \
                 older than 0.9 also refuses prompt log-probabilities with prefix caching on)",
                server.top_k,
                refusal.status,
                clip(&refusal.text),
                server.top_k
            ),
        }),
    }
}

/// `/tokenize`, without BOS. The server's tokenizer always turns special
/// markers into their ids: `parse_special` cannot be honoured.
pub(super) fn tokenize(
    client: &Client,
    server: &Server,
    text: &str,
) -> Result<Vec<Token>, EngineError> {
    let value = client.post(
        "/tokenize",
        &json!({"model": server.model, "prompt": text, "add_special_tokens": false}),
    )?;
    let answer = Answer::new(client, "/tokenize", SERVER);
    answer.token_ids(answer.field(&value, "/tokens")?)
}

/// `/detokenize`.
pub(super) fn detokenize(
    client: &Client,
    server: &Server,
    tokens: &[Token],
) -> Result<String, EngineError> {
    let value = client.post(
        "/detokenize",
        &json!({"model": server.model, "tokens": tokens}),
    )?;
    Ok(Answer::new(client, "/detokenize", SERVER)
        .string(&value, "/prompt")?
        .to_string())
}

/// The conversation rendered by the model's template: `/tokenize` with
/// `messages` applies it, `/detokenize` spells the ids out.
pub(super) fn apply_template(
    client: &Client,
    server: &Server,
    messages: &[ChatMessage],
    add_assistant_start: bool,
) -> Result<String, EngineError> {
    let value = client.post(
        "/tokenize",
        &json!({
            "model": server.model,
            "messages": messages,
            "add_generation_prompt": add_assistant_start,
            "add_special_tokens": false,
        }),
    )?;
    let answer = Answer::new(client, "/tokenize", SERVER);
    let tokens = answer.token_ids(answer.field(&value, "/tokens")?)?;
    detokenize(client, server, &tokens)
}

/// The top-`k` next tokens after `prompt`: one greedy token with
/// `logprobs`.
pub(super) fn next_top_k(
    client: &Client,
    server: &Server,
    prompt: &[Token],
    k: usize,
) -> Result<Vec<TokenLogprob>, EngineError> {
    let value = client.post(COMPLETIONS, &greedy_token(server, prompt, k))?;
    let answer = Answer::new(client, COMPLETIONS, SERVER);
    count_tokens(client, &value);
    let choice = answer.field(&value, "/choices/0")?;
    let tops = answer.list(choice, "/logprobs/top_logprobs")?;
    top_list(&answer, tops.first(), k)
}

/// What `prompt` says of its next token after each of its last
/// `scored` tokens, in one request: the prompt's log-probabilities give
/// all but the last list, the one generated token the last.
pub(super) fn score(
    client: &Client,
    server: &Server,
    prompt: &[Token],
    scored: usize,
    k: usize,
) -> Result<Vec<Vec<TokenLogprob>>, EngineError> {
    let mut body = greedy_token(server, prompt, k);
    body["prompt_logprobs"] = json!(k);
    let value = client.post(COMPLETIONS, &body)?;
    let answer = Answer::new(client, COMPLETIONS, SERVER);
    count_tokens(client, &value);
    let choice = answer.field(&value, "/choices/0")?;
    let prompt_lists = answer.list(choice, "/prompt_logprobs")?;
    if prompt_lists.len() != prompt.len() {
        return Err(answer.malformed(&format!(
            "prompt_logprobs has {} entries for a prompt of {} tokens",
            prompt_lists.len(),
            prompt.len()
        )));
    }
    let mut lists = prompt_lists[prompt.len() + 1 - scored..]
        .iter()
        .map(|entry| prompt_list(&answer, entry, k))
        .collect::<Result<Vec<_>, _>>()?;
    let tops = answer.list(choice, "/logprobs/top_logprobs")?;
    lists.push(top_list(&answer, tops.first(), k)?);
    Ok(lists)
}

/// A request for one greedy token after `prompt` with its top `k`.
fn greedy_token(server: &Server, prompt: &[Token], k: usize) -> Value {
    json!({
        "model": server.model,
        "prompt": prompt,
        "max_tokens": 1,
        "temperature": 0.0,
        "logprobs": k,
        "return_tokens_as_token_ids": true,
    })
}

/// Continues `prompt` as `request` says, in one request of `n` samples.
pub(super) fn complete(
    client: &Client,
    server: &Server,
    prompt: &[Token],
    request: &ContinueRequest,
) -> Result<Vec<Completion>, EngineError> {
    let sampling = &request.sampling;
    let mut body = json!({
        "model": server.model,
        "prompt": prompt,
        "max_tokens": request.max_tokens,
        "n": request.n,
        "temperature": sampling.temperature.max(0.0),
        "top_p": sampling.top_p,
        // vLLM's "no limit" is -1, ours 0.
        "top_k": if sampling.top_k == 0 { -1 } else { sampling.top_k as i64 },
        "seed": sampling.seed,
        // The ids of the generated tokens come only with their
        // log-probabilities.
        "logprobs": request.logprobs.max(1),
        "return_tokens_as_token_ids": true,
        "skip_special_tokens": false,
    });
    if request.max_lines == 1 {
        body["stop"] = json!(["\n"]);
        // Keeps the token that met the stop, which ends the line.
        body["include_stop_str_in_output"] = json!(true);
    }
    let value = client.post(COMPLETIONS, &body)?;
    let answer = Answer::new(client, COMPLETIONS, SERVER);
    count_tokens(client, &value);
    let mut choices = answer.list(&value, "/choices")?.iter().collect::<Vec<_>>();
    if choices.len() != request.n {
        return Err(answer.malformed(&format!(
            "asked for {} completions, got {}",
            request.n,
            choices.len()
        )));
    }
    choices.sort_by_key(|choice| choice.get("index").and_then(Value::as_u64));
    choices
        .into_iter()
        .map(|choice| one_completion(&answer, choice, request.logprobs))
        .collect()
}

fn one_completion(answer: &Answer, choice: &Value, k: usize) -> Result<Completion, EngineError> {
    let tokens = answer
        .list(choice, "/logprobs/tokens")?
        .iter()
        .map(|token| {
            token
                .as_str()
                .and_then(id_of)
                .ok_or_else(|| {
                    answer.malformed(
                        "a generated token is not \"token_id:N\"; \
                         is return_tokens_as_token_ids supported?",
                    )
                })
                .and_then(|id| answer.token_id(id))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let top = if k > 0 {
        let lists = answer.list(choice, "/logprobs/top_logprobs")?;
        if lists.len() != tokens.len() {
            return Err(answer.malformed("top_logprobs and tokens differ in length"));
        }
        lists
            .iter()
            .map(|list| top_list(answer, Some(list), k))
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    // A stop by a string names it in `stop_reason`; by an end-of-generation
    // token, leaves it null.
    let eos = choice.get("finish_reason").and_then(Value::as_str) == Some("stop")
        && choice.get("stop_reason").is_none_or(Value::is_null);
    Ok(Completion {
        tokens,
        eos,
        pieces: Vec::new(),
        top,
        slot: None,
    })
}

/// A generated token's `top_logprobs` entry, `{"token_id:N": logprob}`.
fn top_list(
    answer: &Answer,
    list: Option<&Value>,
    k: usize,
) -> Result<Vec<TokenLogprob>, EngineError> {
    let list = list
        .and_then(Value::as_object)
        .filter(|list| !list.is_empty())
        .ok_or_else(|| answer.malformed("a top_logprobs entry is not a non-empty object"))?;
    entries(answer, list, k, |value| Some(value))
}

/// A `prompt_logprobs` entry, `{"N": {"logprob": l, ...}}`.
fn prompt_list(answer: &Answer, list: &Value, k: usize) -> Result<Vec<TokenLogprob>, EngineError> {
    let list = list
        .as_object()
        .filter(|list| !list.is_empty())
        .ok_or_else(|| answer.malformed("a prompt_logprobs entry is not a non-empty object"))?;
    entries(answer, list, k, |value| value.get("logprob"))
}

fn entries(
    answer: &Answer,
    list: &Map<String, Value>,
    k: usize,
    logprob: impl Fn(&Value) -> Option<&Value>,
) -> Result<Vec<TokenLogprob>, EngineError> {
    let top = list
        .iter()
        .map(|(key, value)| {
            let id = id_of(key)
                .ok_or_else(|| answer.malformed(&format!("{key:?} is not a token id")))?;
            Ok(TokenLogprob {
                token: answer.token_id(id)?,
                logprob: answer.logprob(logprob(value))?,
            })
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(ranked(top, k))
}

/// The id in `"token_id:N"` (vLLM's spelling of a token as its id) or `"N"`.
fn id_of(token: &str) -> Option<i64> {
    token
        .strip_prefix("token_id:")
        .unwrap_or(token)
        .parse()
        .ok()
}

/// Counts `usage`, with the cached prompt tokens when the server reports
/// them (vLLM with `--enable-prompt-tokens-details`).
fn count_tokens(client: &Client, value: &Value) {
    let number = |pointer: &str| value.pointer(pointer).and_then(Value::as_u64).unwrap_or(0);
    client.meter().count_tokens(Tokens {
        prompt: number("/usage/prompt_tokens"),
        cached: number("/usage/prompt_tokens_details/cached_tokens"),
        generated: number("/usage/completion_tokens"),
    });
}
