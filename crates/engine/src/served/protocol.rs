//! The kinds of inference server egcfg speaks to, behind one interface so
//! that [`super::ServedEngine`] does not care which one answers: each kind's
//! requests and answers live in its own module, and [`Protocol`] sends each
//! operation to the right one.

use std::fmt;

use serde_json::Value;

use super::client::Client;
use super::{llama_server, openai, sglang};
use crate::api::{ContinueRequest, TokenLogprob};
use crate::{ChatMessage, EngineError, ModelInfo, Role, Token};

/// A path only one kind of server answers, and how to recognise its answer.
type Probe = (&'static str, fn(&Value) -> bool, ServerKind);

/// A kind of inference server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerKind {
    /// llama.cpp's `llama-server`.
    LlamaServer,
    /// vLLM, or another server of the OpenAI completions API with vLLM's
    /// `/tokenize` and `/detokenize`.
    OpenAi,
    /// SGLang's native API.
    Sglang,
}

impl fmt::Display for ServerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ServerKind::LlamaServer => "llama-server",
            ServerKind::OpenAi => "openai",
            ServerKind::Sglang => "sglang",
        })
    }
}

impl ServerKind {
    /// Finds the kind of the server behind `client` by asking what only
    /// each kind answers: llama-server's `/props`, SGLang's
    /// `/get_model_info`, the OpenAI API's `/v1/models` (in this order, as
    /// the first two also serve `/v1/models`).
    pub(super) fn detect(client: &Client) -> Result<ServerKind, EngineError> {
        let probes: [Probe; 3] = [
            ("/props", llama_server::recognises, ServerKind::LlamaServer),
            ("/get_model_info", sglang::recognises, ServerKind::Sglang),
            ("/v1/models", openai::recognises, ServerKind::OpenAi),
        ];
        let mut refused_access = None;
        for (path, recognises, kind) in probes {
            match client.try_get(path)? {
                Ok(answer) if recognises(&answer) => {
                    tracing::info!(endpoint = client.endpoint(), %kind, "detected the server's kind");
                    return Ok(kind);
                }
                Err(refusal) if matches!(refusal.status, 401 | 403) => {
                    refused_access = Some(refusal.status)
                }
                _ => {}
            }
        }
        let hint = match refused_access {
            Some(status) => format!(
                " It refused access ({status}): put its API key in the variable \
                 that --api-key-env names."
            ),
            None => String::new(),
        };
        Err(EngineError::Server {
            endpoint: client.endpoint().to_string(),
            reason: format!(
                "answers none of /props, /get_model_info and /v1/models as llama-server, \
                 SGLang or an OpenAI-compatible server (vLLM) do; check the URL, or pass \
                 --endpoint-kind to name the server's kind.{hint}"
            ),
        })
    }
}

/// A tokenization, with the bytes of the tokens the server spelled out.
pub(super) struct Tokenized {
    /// The token ids.
    pub(super) tokens: Vec<Token>,
    /// Each token with its bytes, where the server gave them (else empty).
    pub(super) spelled: Vec<(Token, Vec<u8>)>,
}

/// One completion as a server reported it.
pub(super) struct Completion {
    /// The generated ids, the one that met a stop included.
    pub(super) tokens: Vec<Token>,
    /// Whether it ended on an end-of-generation token.
    pub(super) eos: bool,
    /// The exact bytes of generated tokens, where the answer gives them.
    pub(super) pieces: Vec<(Token, Vec<u8>)>,
    /// For each token, the top of the distribution it came from; empty
    /// when not asked for or when the server's lists do not line up with
    /// the tokens.
    pub(super) top: Vec<Vec<TokenLogprob>>,
    /// The slot it was written in, where the server has slots and says.
    pub(super) slot: Option<usize>,
}

/// How to talk to one server, with what its kind needs to remember.
pub(super) enum Protocol {
    /// llama-server.
    LlamaServer,
    /// vLLM or compatible.
    OpenAi(openai::Server),
    /// SGLang.
    Sglang,
}

/// What connecting to a server found.
pub(super) struct Connected {
    pub(super) protocol: Protocol,
    /// The model's facts.
    pub(super) info: ModelInfo,
    /// How many log-probabilities per token the server gives.
    pub(super) top_k: usize,
    /// The slots a request can be sent to (`id_slot`); 0 where the server
    /// has none (it caches prefixes by itself).
    pub(super) slots: usize,
}

impl Protocol {
    /// Connects to a server of `kind` and reads the model's facts; `top_k`
    /// is how many log-probabilities per token egcfg would like.
    pub(super) fn connect(
        kind: ServerKind,
        client: &Client,
        top_k: usize,
    ) -> Result<Connected, EngineError> {
        let (protocol, name, n_ctx, top_k) = match kind {
            ServerKind::LlamaServer => {
                let (info, slots) = llama_server::model_info(client)?;
                return Ok(Connected {
                    protocol: Protocol::LlamaServer,
                    info,
                    top_k,
                    slots,
                });
            }
            ServerKind::OpenAi => {
                let server = openai::connect(client, top_k)?;
                let (name, n_ctx, cap) = (server.model.clone(), server.n_ctx, server.top_k);
                (Protocol::OpenAi(server), name, n_ctx, cap)
            }
            ServerKind::Sglang => {
                let facts = sglang::connect(client)?;
                (Protocol::Sglang, facts.name, facts.n_ctx, top_k)
            }
        };
        let eos_tokens = protocol.end_of_turn(client)?;
        let info = ModelInfo {
            name,
            // These servers do not say; a served model gives no logits.
            n_vocab: 0,
            n_ctx,
            eos_tokens,
            chat_template: None,
        };
        Ok(Connected {
            protocol,
            info,
            top_k,
            slots: 0,
        })
    }

    /// The kind of server.
    pub(super) fn kind(&self) -> ServerKind {
        match self {
            Protocol::LlamaServer => ServerKind::LlamaServer,
            Protocol::OpenAi(_) => ServerKind::OpenAi,
            Protocol::Sglang => ServerKind::Sglang,
        }
    }

    /// Text to ids, without BOS.
    pub(super) fn tokenize(
        &self,
        client: &Client,
        text: &str,
        parse_special: bool,
    ) -> Result<Vec<Token>, EngineError> {
        Ok(self.tokenize_spelled(client, text, parse_special)?.tokens)
    }

    /// Text to ids, without BOS, and the bytes of those tokens the server
    /// spelled out in the same answer (none, on servers that do not).
    pub(super) fn tokenize_spelled(
        &self,
        client: &Client,
        text: &str,
        parse_special: bool,
    ) -> Result<Tokenized, EngineError> {
        Ok(match self {
            Protocol::LlamaServer => {
                let spelled = llama_server::tokenize(client, text, parse_special)?;
                Tokenized {
                    tokens: spelled.iter().map(|(token, _)| *token).collect(),
                    spelled,
                }
            }
            Protocol::OpenAi(server) => Tokenized {
                tokens: openai::tokenize(client, server, text)?,
                spelled: Vec::new(),
            },
            Protocol::Sglang => Tokenized {
                tokens: sglang::tokenize(client, text)?,
                spelled: Vec::new(),
            },
        })
    }

    /// Ids to text.
    pub(super) fn detokenize(
        &self,
        client: &Client,
        tokens: &[Token],
    ) -> Result<String, EngineError> {
        match self {
            Protocol::LlamaServer => llama_server::detokenize(client, tokens),
            Protocol::OpenAi(server) => openai::detokenize(client, server, tokens),
            Protocol::Sglang => sglang::detokenize(client, tokens),
        }
    }

    /// A conversation rendered by the model's chat template.
    pub(super) fn apply_template(
        &self,
        client: &Client,
        messages: &[ChatMessage],
        add_assistant_start: bool,
    ) -> Result<String, EngineError> {
        match self {
            Protocol::LlamaServer => {
                llama_server::apply_template(client, messages, add_assistant_start)
            }
            Protocol::OpenAi(server) => {
                openai::apply_template(client, server, messages, add_assistant_start)
            }
            Protocol::Sglang => sglang::apply_template(client, messages, add_assistant_start),
        }
    }

    /// The top-`k` next tokens after `prompt`, computed in `slot` where
    /// the server has slots (`None`: the server chooses).
    pub(super) fn next_top_k(
        &self,
        client: &Client,
        prompt: &[Token],
        k: usize,
        slot: Option<usize>,
    ) -> Result<Vec<TokenLogprob>, EngineError> {
        match self {
            Protocol::LlamaServer => llama_server::next_top_k(client, prompt, k, slot),
            Protocol::OpenAi(server) => openai::next_top_k(client, server, prompt, k),
            Protocol::Sglang => sglang::next_top_k(client, prompt, k),
        }
    }

    /// `request.n` continuations of `prompt`, in one request (the first
    /// in `slot`, as [`Protocol::next_top_k`]).
    pub(super) fn complete(
        &self,
        client: &Client,
        prompt: &[Token],
        request: &ContinueRequest,
        slot: Option<usize>,
    ) -> Result<Vec<Completion>, EngineError> {
        match self {
            Protocol::LlamaServer => llama_server::complete(client, prompt, request, slot),
            Protocol::OpenAi(server) => openai::complete(client, server, prompt, request),
            Protocol::Sglang => sglang::complete(client, prompt, request),
        }
    }

    /// Whether [`Protocol::score`] takes one request.
    pub(super) fn scores_in_one_pass(&self) -> bool {
        !matches!(self, Protocol::LlamaServer)
    }

    /// The top-`k` lists after each of the last `scored` tokens of
    /// `prompt` (at least one): one request where the server scores prompt
    /// tokens, otherwise one per token (all in `slot`, as
    /// [`Protocol::next_top_k`]).
    pub(super) fn score(
        &self,
        client: &Client,
        prompt: &[Token],
        scored: usize,
        k: usize,
        slot: Option<usize>,
    ) -> Result<Vec<Vec<TokenLogprob>>, EngineError> {
        match self {
            Protocol::LlamaServer => (prompt.len() + 1 - scored..=prompt.len())
                .map(|end| llama_server::next_top_k(client, &prompt[..end], k, slot))
                .collect(),
            Protocol::OpenAi(server) => openai::score(client, server, prompt, scored, k),
            Protocol::Sglang => sglang::score(client, prompt, scored, k),
        }
    }

    /// The end-of-turn token of a model whose server does not name its
    /// end-of-generation tokens: the first token the chat template puts
    /// after an assistant message's content. Empty (with a warning) when
    /// the template does not render that way; the server still reports
    /// each end of generation.
    fn end_of_turn(&self, client: &Client) -> Result<Vec<Token>, EngineError> {
        const CONTENT: &str = "ok";
        let user = ChatMessage {
            role: Role::User,
            content: "hi".into(),
        };
        let reply = ChatMessage {
            role: Role::Assistant,
            content: CONTENT.into(),
        };
        let opening = self.apply_template(client, std::slice::from_ref(&user), true)?;
        let turn = self.apply_template(client, &[user, reply], false)?;
        let found = turn
            .strip_prefix(&opening)
            .and_then(|rest| rest.strip_prefix(CONTENT))
            .filter(|after| !after.is_empty())
            .map(|after| self.tokenize(client, after, true))
            .transpose()?
            .and_then(|tokens| tokens.first().copied());
        match found {
            Some(token) => Ok(vec![token]),
            None => {
                tracing::warn!(
                    endpoint = client.endpoint(),
                    "the chat template shows no end-of-turn token; ends of generation are \
                     known only from the server's stop reasons"
                );
                Ok(Vec::new())
            }
        }
    }
}
