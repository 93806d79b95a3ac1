//! llama-server's HTTP API: the requests egcfg sends and what it reads back.
//!
//! Every answer is checked against what the API promises (fields present,
//! of the right type, ids inside the vocabulary), so a misbehaving server
//! gives a clear [`EngineError::Server`] rather than a wrong token.

use serde_json::{json, Value};

use super::client::Client;
use crate::api::{ContinueRequest, TokenLogprob};
use crate::{ChatMessage, EngineError, ModelInfo, Token};

/// The model's facts from `/props` (context, template, EOS) and
/// `/v1/models` (vocabulary size).
pub(super) fn model_info(client: &Client) -> Result<ModelInfo, EngineError> {
    let props = client.get("/props")?;
    let n_ctx = field(
        client,
        &props,
        "/props",
        "/default_generation_settings/n_ctx",
    )?
    .as_u64()
    .filter(|&n| n > 0)
    .ok_or_else(|| malformed(client, "/props", "n_ctx is not a positive integer"))?
        as usize;
    let models = client.get("/v1/models")?;
    let n_vocab = field(client, &models, "/v1/models", "/data/0/meta/n_vocab")?
        .as_u64()
        .filter(|&n| n > 0)
        .ok_or_else(|| malformed(client, "/v1/models", "n_vocab is not a positive integer"))?
        as usize;
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
        if let [id] = tokenize(client, eos_text, true)?[..] {
            eos_tokens.push(id);
        }
    }
    Ok(ModelInfo {
        name,
        n_vocab,
        n_ctx,
        eos_tokens,
        chat_template,
    })
}

/// `/tokenize`, without BOS.
pub(super) fn tokenize(
    client: &Client,
    text: &str,
    parse_special: bool,
) -> Result<Vec<Token>, EngineError> {
    let answer = client.post(
        "/tokenize",
        &json!({"content": text, "add_special": false, "parse_special": parse_special}),
    )?;
    token_ids(
        client,
        "/tokenize",
        field(client, &answer, "/tokenize", "/tokens")?,
    )
}

/// `/detokenize`.
pub(super) fn detokenize(client: &Client, tokens: &[Token]) -> Result<String, EngineError> {
    let answer = client.post("/detokenize", &json!({ "tokens": tokens }))?;
    field(client, &answer, "/detokenize", "/content")?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| malformed(client, "/detokenize", "content is not a string"))
}

/// `/apply-template`: the conversation rendered by the model's template.
pub(super) fn apply_template(
    client: &Client,
    messages: &[ChatMessage],
    add_assistant_start: bool,
) -> Result<String, EngineError> {
    let answer = client.post(
        "/apply-template",
        &json!({"messages": messages, "add_generation_prompt": add_assistant_start}),
    )?;
    field(client, &answer, "/apply-template", "/prompt")?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| malformed(client, "/apply-template", "prompt is not a string"))
}

/// The top-`k` next tokens after `prompt`: a one-token greedy completion
/// with `n_probs`, whose list is taken before sampling (the full softmax).
pub(super) fn next_top_k(
    client: &Client,
    prompt: &[Token],
    k: usize,
) -> Result<Vec<TokenLogprob>, EngineError> {
    let answer = client.post(
        "/completion",
        &json!({
            "prompt": prompt,
            "n_predict": 1,
            "n_probs": k,
            "temperature": 0.0,
            "cache_prompt": true,
            "post_sampling_probs": false,
        }),
    )?;
    let list = field(
        client,
        &answer,
        "/completion",
        "/completion_probabilities/0/top_logprobs",
    )?;
    top_list(client, list)
}

/// A `top_logprobs` list as [`TokenLogprob`]s, most likely first.
fn top_list(client: &Client, list: &Value) -> Result<Vec<TokenLogprob>, EngineError> {
    let list = list
        .as_array()
        .filter(|list| !list.is_empty())
        .ok_or_else(|| {
            malformed(
                client,
                "/completion",
                "top_logprobs is not a non-empty list",
            )
        })?;
    let mut top: Vec<TokenLogprob> = list
        .iter()
        .map(|entry| {
            let token = entry.get("id").and_then(Value::as_i64);
            let logprob = entry.get("logprob").and_then(Value::as_f64);
            match (token, logprob) {
                (Some(token), Some(logprob)) if logprob <= 0.0 => Ok(TokenLogprob {
                    token: token_id(client, "/completion", token)?,
                    logprob: logprob as f32,
                }),
                _ => Err(malformed(
                    client,
                    "/completion",
                    "a top_logprobs entry lacks an integer id or a log-probability <= 0",
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob).then(a.token.cmp(&b.token)));
    Ok(top)
}

/// One completion as the server reported it.
pub(super) struct Completion {
    /// The generated ids, the one that met a stop included.
    pub(super) tokens: Vec<Token>,
    /// Whether it ended on an end-of-generation token.
    pub(super) eos: bool,
    /// The exact bytes of the generated tokens the answer spelled out.
    pub(super) pieces: Vec<(Token, Vec<u8>)>,
    /// For each spelled-out token, the top of the distribution it came
    /// from, when the request asked for more than one entry.
    pub(super) top: Vec<Vec<TokenLogprob>>,
}

/// Continues `prompt` as `request` says, in one `/completion` request
/// (`n_cmpl` samples at once).
pub(super) fn complete(
    client: &Client,
    prompt: &[Token],
    request: &ContinueRequest,
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
    if request.stop_at_newline {
        // The server keeps the token that met the stop in `tokens`.
        body["stop"] = json!(["\n"]);
    }
    if request.n > 1 {
        body["n_cmpl"] = json!(request.n);
    }
    let answer = client.post("/completion", &body)?;
    let answers = match answer {
        Value::Array(list) => list,
        one => vec![one],
    };
    if answers.len() != request.n {
        return Err(malformed(
            client,
            "/completion",
            &format!("asked for {} completions, got {}", request.n, answers.len()),
        ));
    }
    answers
        .iter()
        .map(|answer| one_completion(client, answer, request.logprobs > 0))
        .collect()
}

fn one_completion(
    client: &Client,
    answer: &Value,
    want_top: bool,
) -> Result<Completion, EngineError> {
    let path = "/completion";
    let tokens = token_ids(client, path, field(client, answer, path, "/tokens")?)?;
    // Left out when no token was spelled out (the first one met a stop).
    let probs = match answer.get("completion_probabilities") {
        None => &Vec::new(),
        Some(list) => list
            .as_array()
            .ok_or_else(|| malformed(client, path, "completion_probabilities is not a list"))?,
    };
    // The entries are not aligned with `tokens`: the server leaves out
    // tokens whose text is an incomplete UTF-8 character. Each entry still
    // gives its own token's exact bytes.
    let mut pieces = Vec::with_capacity(probs.len());
    let mut top = Vec::new();
    for entry in probs {
        if want_top {
            let list = entry
                .get("top_logprobs")
                .ok_or_else(|| malformed(client, path, "a generated token has no top_logprobs"))?;
            top.push(top_list(client, list)?);
        }
        let token = entry
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| malformed(client, path, "a generated token has no id"))?;
        let bytes = entry
            .get("bytes")
            .and_then(Value::as_array)
            .and_then(|b| {
                b.iter()
                    .map(|x| x.as_u64().and_then(|x| u8::try_from(x).ok()))
                    .collect::<Option<Vec<u8>>>()
            })
            .ok_or_else(|| malformed(client, path, "a generated token has no bytes"))?;
        pieces.push((token_id(client, path, token)?, bytes));
    }
    let eos = answer.get("stop_type").and_then(Value::as_str) == Some("eos");
    Ok(Completion {
        tokens,
        eos,
        pieces,
        top,
    })
}

/// The value at JSON `pointer` in `answer`, or a clear error.
fn field<'a>(
    client: &Client,
    answer: &'a Value,
    path: &str,
    pointer: &str,
) -> Result<&'a Value, EngineError> {
    answer
        .pointer(pointer)
        .ok_or_else(|| malformed(client, path, &format!("the answer has no {pointer}")))
}

/// A list of token ids.
fn token_ids(client: &Client, path: &str, value: &Value) -> Result<Vec<Token>, EngineError> {
    value
        .as_array()
        .ok_or_else(|| malformed(client, path, "tokens is not a list"))?
        .iter()
        .map(|v| {
            v.as_i64()
                .ok_or_else(|| malformed(client, path, "a token id is not an integer"))
                .and_then(|id| token_id(client, path, id))
        })
        .collect()
}

fn token_id(client: &Client, path: &str, id: i64) -> Result<Token, EngineError> {
    Token::try_from(id)
        .ok()
        .filter(|&t| t >= 0)
        .ok_or_else(|| malformed(client, path, &format!("token id {id} is out of range")))
}

fn malformed(client: &Client, path: &str, what: &str) -> EngineError {
    EngineError::Server {
        endpoint: client.endpoint().to_string(),
        reason: format!(
            "{path}: malformed answer ({what}); is this a llama-server of a compatible version?"
        ),
    }
}
