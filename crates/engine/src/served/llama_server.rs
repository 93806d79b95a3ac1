//! llama.cpp's `llama-server`: the requests egcfg sends and what it reads
//! back. Prompts go to `/completion` as token ids with `cache_prompt`, so
//! the slot's cache serves the shared prefix; `n_probs` gives the top-k of
//! each generated token. The server cannot score prompt tokens, so
//! verifying a line costs one request per token.

use serde_json::{json, Value};

use super::answer::{ranked, Answer};
use super::client::Client;
use super::meter::Tokens;
use super::protocol::Completion;
use crate::api::{ContinueRequest, TokenLogprob};
use crate::{ChatMessage, EngineError, ModelInfo, Token};

const SERVER: &str = "a llama-server";

/// Whether the answer to `GET /props` is llama-server's.
pub(super) fn recognises(props: &Value) -> bool {
    props
        .pointer("/default_generation_settings/n_ctx")
        .is_some()
}

/// The model's facts from `/props` (context, template, EOS) and
/// `/v1/models` (vocabulary size), and the server's number of slots (0 if
/// it does not say).
pub(super) fn model_info(client: &Client) -> Result<(ModelInfo, usize), EngineError> {
    let props = client.get("/props")?;
    let answer = Answer::new(client, "/props", SERVER);
    let n_ctx = answer.positive(&props, "/default_generation_settings/n_ctx")?;
    let models = client.get("/v1/models")?;
    let n_vocab =
        Answer::new(client, "/v1/models", SERVER).positive(&models, "/data/0/meta/n_vocab")?;
    let name = props
        .get("model_alias")
        .and_then(Value::as_str)
        .map(|path| path.rsplit('/').next().unwrap_or(path).to_string())
        .unwrap_or_else(|| client.endpoint().to_string());
    let chat_template = props
        .get("chat_template")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let eos_text = props.get("eos_token").and_then(Value::as_str).unwrap_or("");
    let mut eos_tokens = Vec::new();
    if !eos_text.is_empty() {
        if let [(id, _)] = tokenize(client, eos_text, true)?[..] {
            eos_tokens.push(id);
        }
    }
    let slots = props
        .get("total_slots")
        .and_then(Value::as_u64)
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let info = ModelInfo {
        name,
        n_vocab,
        n_ctx,
        eos_tokens,
        chat_template,
    };
    Ok((info, slots))
}

/// `/tokenize`, without BOS, with each token's bytes (`with_pieces`), which
/// the same request gives for free and spares a `/detokenize` per token
/// later.
pub(super) fn tokenize(
    client: &Client,
    text: &str,
    parse_special: bool,
) -> Result<Vec<(Token, Vec<u8>)>, EngineError> {
    let value = client.post(
        "/tokenize",
        &json!({
            "content": text,
            "add_special": false,
            "parse_special": parse_special,
            "with_pieces": true,
        }),
    )?;
    let answer = Answer::new(client, "/tokenize", SERVER);
    answer
        .list(&value, "/tokens")?
        .iter()
        .map(|entry| {
            let id = entry
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| answer.malformed("a token has no id"))?;
            let piece = entry
                .get("piece")
                .and_then(spelled_bytes)
                .ok_or_else(|| answer.malformed("a token has no piece"))?;
            Ok((answer.token_id(id)?, piece))
        })
        .collect()
}

/// A token's bytes as llama-server spells them: a string where they are
/// valid UTF-8, else a list of byte values.
fn spelled_bytes(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(text) => Some(text.clone().into_bytes()),
        Value::Array(bytes) => bytes
            .iter()
            .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
            .collect(),
        _ => None,
    }
}

/// `/detokenize`.
pub(super) fn detokenize(client: &Client, tokens: &[Token]) -> Result<String, EngineError> {
    let value = client.post("/detokenize", &json!({ "tokens": tokens }))?;
    Ok(Answer::new(client, "/detokenize", SERVER)
        .string(&value, "/content")?
        .to_string())
}

/// `/apply-template`: the conversation rendered by the model's template.
pub(super) fn apply_template(
    client: &Client,
    messages: &[ChatMessage],
    add_assistant_start: bool,
) -> Result<String, EngineError> {
    let value = client.post(
        "/apply-template",
        &json!({"messages": messages, "add_generation_prompt": add_assistant_start}),
    )?;
    Ok(Answer::new(client, "/apply-template", SERVER)
        .string(&value, "/prompt")?
        .to_string())
}

/// The top-`k` next tokens after `prompt`: a one-token greedy completion
/// with `n_probs`, whose list is taken before sampling (the full softmax).
pub(super) fn next_top_k(
    client: &Client,
    prompt: &[Token],
    k: usize,
    slot: Option<usize>,
) -> Result<Vec<TokenLogprob>, EngineError> {
    let mut body = json!({
        "prompt": prompt,
        "n_predict": 1,
        "n_probs": k,
        "temperature": 0.0,
        "cache_prompt": true,
        "post_sampling_probs": false,
    });
    in_slot(&mut body, slot);
    let value = client.post("/completion", &body)?;
    let answer = Answer::new(client, "/completion", SERVER);
    count_tokens(client, prompt, std::slice::from_ref(&value));
    top_list(
        &answer,
        answer.field(&value, "/completion_probabilities/0/top_logprobs")?,
        k,
    )
}

/// A `top_logprobs` list as [`TokenLogprob`]s, most likely first.
fn top_list(answer: &Answer, list: &Value, k: usize) -> Result<Vec<TokenLogprob>, EngineError> {
    let list = list
        .as_array()
        .filter(|list| !list.is_empty())
        .ok_or_else(|| answer.malformed("top_logprobs is not a non-empty list"))?;
    let top = list
        .iter()
        .map(|entry| {
            let token = entry
                .get("id")
                .and_then(Value::as_i64)
                .ok_or_else(|| answer.malformed("a top_logprobs entry lacks an integer id"))?;
            Ok(TokenLogprob {
                token: answer.token_id(token)?,
                logprob: answer.logprob(entry.get("logprob"))?,
            })
        })
        .collect::<Result<_, EngineError>>()?;
    Ok(ranked(top, k))
}

/// Sends a request to `slot` (`id_slot`), or lets the server choose.
fn in_slot(body: &mut Value, slot: Option<usize>) {
    if let Some(slot) = slot {
        body["id_slot"] = json!(slot);
    }
}

/// Continues `prompt` as `request` says, in one `/completion` request
/// (`n_cmpl` samples at once; the first in `slot`, the others in slots the
/// server chooses).
pub(super) fn complete(
    client: &Client,
    prompt: &[Token],
    request: &ContinueRequest,
    slot: Option<usize>,
) -> Result<Vec<Completion>, EngineError> {
    let sampling = &request.sampling;
    let mut body = json!({
        "prompt": prompt,
        "n_predict": request.max_tokens,
        "temperature": sampling.temperature.max(0.0),
        "top_p": sampling.top_p,
        "top_k": sampling.top_k,
        "min_p": 0.0,
        "seed": sampling.seed,
        "cache_prompt": true,
        "return_tokens": true,
        // One entry per token: the exact bytes of what was generated, and
        // the top of its distribution when asked for.
        "n_probs": request.logprobs.max(1),
    });
    if request.max_lines == 1 {
        // The server keeps the token that met the stop in `tokens`.
        body["stop"] = json!(["\n"]);
    }
    if request.n > 1 {
        body["n_cmpl"] = json!(request.n);
    }
    in_slot(&mut body, slot);
    let answer = Answer::new(client, "/completion", SERVER);
    let answers = if request.max_lines > 1 {
        // No stop string ends a sample after its n-th line, so the samples
        // are streamed and the stream closed once each has its lines;
        // otherwise they would run on to the token cap.
        stream_lines(client, body, request, &answer)?
    } else {
        match client.post("/completion", &body)? {
            Value::Array(list) => list,
            one => vec![one],
        }
    };
    if answers.len() != request.n {
        return Err(answer.malformed(&format!(
            "asked for {} completions, got {}",
            request.n,
            answers.len()
        )));
    }
    count_tokens(client, prompt, &answers);
    answers
        .iter()
        .map(|value| one_completion(&answer, value, request.logprobs))
        .collect()
}

/// The samples of a `/completion` request `body`, streamed until each has
/// ended or holds `request.max_lines` lines, each put together as the
/// server would have answered it without streaming. The server sends every
/// token of every sample as an event of its own (with the sample's `index`,
/// and, with `timings_per_token`, the prompt tokens its slot took from the
/// cache); a sample's last event, with `stop`, says why it ended and in
/// which slot it ran, and is never read for a sample cut short.
fn stream_lines(
    client: &Client,
    mut body: Value,
    request: &ContinueRequest,
    answer: &Answer,
) -> Result<Vec<Value>, EngineError> {
    body["stream"] = json!(true);
    body["timings_per_token"] = json!(true);
    let mut samples: Vec<StreamedSample> =
        (0..request.n).map(|_| StreamedSample::default()).collect();
    client.post_stream("/completion", &body, |event| {
        let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
        let sample = usize::try_from(index)
            .ok()
            .and_then(|i| samples.get_mut(i))
            .ok_or_else(|| {
                answer.malformed(&format!("an event for sample {index} of {}", request.n))
            })?;
        sample.take(answer, event)?;
        Ok(samples.iter().any(|s| !s.has_ended(request)))
    })?;
    if let Some(i) = samples.iter().position(|s| !s.has_ended(request)) {
        return Err(answer.malformed(&format!("the stream ended before sample {i} did")));
    }
    Ok(samples
        .into_iter()
        .map(StreamedSample::into_answer)
        .collect())
}

/// One sample of a streamed `/completion`, as its events arrive.
#[derive(Default)]
struct StreamedSample {
    tokens: Vec<Value>,
    probabilities: Vec<Value>,
    newlines: usize,
    /// The prompt tokens its slot took from the cache.
    cache_n: Option<Value>,
    /// Its last event, once read.
    last: Option<Value>,
}

impl StreamedSample {
    fn take(&mut self, answer: &Answer, mut event: Value) -> Result<(), EngineError> {
        if self.last.is_some() {
            return Err(answer.malformed("an event for a sample that had ended"));
        }
        if let Some(Value::Array(tokens)) = event.get_mut("tokens").map(Value::take) {
            self.tokens.extend(tokens);
        }
        if let Some(Value::Array(list)) = event.get_mut("completion_probabilities").map(Value::take)
        {
            self.probabilities.extend(list);
        }
        let content = event.get("content").and_then(Value::as_str).unwrap_or("");
        self.newlines += crate::api::newlines(content.as_bytes());
        if self.cache_n.is_none() {
            self.cache_n = event.pointer("/timings/cache_n").cloned();
        }
        if event.get("stop").and_then(Value::as_bool) == Some(true) {
            self.last = Some(event);
        }
        Ok(())
    }

    fn has_ended(&self, request: &ContinueRequest) -> bool {
        self.last.is_some() || request.has_its_lines(self.newlines)
    }

    /// The sample as the server's answer without streaming: every token
    /// read (a few may follow its last line; they are cut on the client),
    /// and the last event's fields, which a sample cut short lacks.
    fn into_answer(self) -> Value {
        let mut value = self.last.unwrap_or_else(|| json!({}));
        value["tokens_predicted"] = json!(self.tokens.len());
        value["tokens"] = Value::Array(self.tokens);
        value["completion_probabilities"] = Value::Array(self.probabilities);
        if let Some(cache_n) = self.cache_n {
            value["timings"]["cache_n"] = cache_n;
        }
        value
    }
}

/// Counts what answers to one request of `prompt` cost. The samples of one
/// request share the prompt's processing; each reports the prompt tokens
/// its slot took from the cache (`timings.cache_n`).
fn count_tokens(client: &Client, prompt: &[Token], answers: &[Value]) {
    let number = |value: &Value, pointer: &str| value.pointer(pointer).and_then(Value::as_u64);
    let generated = answers
        .iter()
        .map(|a| {
            number(a, "/tokens_predicted")
                .or_else(|| {
                    a.get("tokens")
                        .and_then(Value::as_array)
                        .map(|t| t.len() as u64)
                })
                .unwrap_or(0)
        })
        .sum();
    let cached = answers
        .first()
        .and_then(|a| number(a, "/timings/cache_n"))
        .unwrap_or(0);
    client.meter().count_tokens(Tokens {
        prompt: prompt.len() as u64,
        cached: cached.min(prompt.len() as u64),
        generated,
    });
}

fn one_completion(answer: &Answer, value: &Value, k: usize) -> Result<Completion, EngineError> {
    let tokens = answer.token_ids(answer.field(value, "/tokens")?)?;
    // Left out when no token was spelled out (the first one met a stop).
    let probs = match value.get("completion_probabilities") {
        None => &[][..],
        Some(_) => answer.list(value, "/completion_probabilities")?,
    };
    // The entries are not aligned with `tokens`: the server leaves out
    // tokens whose text is an incomplete UTF-8 character. Each entry still
    // gives its own token's exact bytes.
    let mut pieces = Vec::with_capacity(probs.len());
    let mut top = Vec::new();
    for entry in probs {
        if k > 0 {
            let list = entry
                .get("top_logprobs")
                .ok_or_else(|| answer.malformed("a generated token has no top_logprobs"))?;
            top.push(top_list(answer, list, k)?);
        }
        let token = entry
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| answer.malformed("a generated token has no id"))?;
        let bytes = entry
            .get("bytes")
            .filter(|b| b.is_array())
            .and_then(spelled_bytes)
            .ok_or_else(|| answer.malformed("a generated token has no bytes"))?;
        pieces.push((answer.token_id(token)?, bytes));
    }
    // Only when every token was spelled out do the lists describe them all.
    if top.len() != tokens.len() {
        top.clear();
    }
    let eos = value.get("stop_type").and_then(Value::as_str) == Some("eos");
    let slot = value
        .get("id_slot")
        .and_then(Value::as_u64)
        .and_then(|slot| usize::try_from(slot).ok());
    Ok(Completion {
        tokens,
        eos,
        pieces,
        top,
        slot,
    })
}
