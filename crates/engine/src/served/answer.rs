//! Reading a server's JSON answer: every field egcfg relies on is checked
//! (present, of the right type, token ids in range), so a misbehaving
//! server gives a clear [`EngineError::Server`] naming it, the path and
//! what was wrong, rather than a wrong token.

use serde_json::Value;

use super::client::Client;
use crate::api::TokenLogprob;
use crate::{EngineError, Token};

/// The answer to one request of one kind of server, for error messages.
#[derive(Clone, Copy)]
pub(super) struct Answer<'a> {
    client: &'a Client,
    path: &'a str,
    /// The server as egcfg expects it, e.g. "a llama-server".
    server: &'static str,
}

impl<'a> Answer<'a> {
    /// Reads answers from `client` to requests on `path` of a `server`.
    pub(super) fn new(client: &'a Client, path: &'a str, server: &'static str) -> Self {
        Answer {
            client,
            path,
            server,
        }
    }

    /// The value at JSON `pointer` in `value`.
    pub(super) fn field<'v>(
        &self,
        value: &'v Value,
        pointer: &str,
    ) -> Result<&'v Value, EngineError> {
        value
            .pointer(pointer)
            .ok_or_else(|| self.malformed(&format!("the answer has no {pointer}")))
    }

    /// The string at `pointer`.
    pub(super) fn string<'v>(
        &self,
        value: &'v Value,
        pointer: &str,
    ) -> Result<&'v str, EngineError> {
        self.field(value, pointer)?
            .as_str()
            .ok_or_else(|| self.malformed(&format!("{pointer} is not a string")))
    }

    /// The positive integer at `pointer`.
    pub(super) fn positive(&self, value: &Value, pointer: &str) -> Result<usize, EngineError> {
        self.field(value, pointer)?
            .as_u64()
            .filter(|&n| n > 0)
            .map(|n| n as usize)
            .ok_or_else(|| self.malformed(&format!("{pointer} is not a positive integer")))
    }

    /// The list at `pointer`.
    pub(super) fn list<'v>(
        &self,
        value: &'v Value,
        pointer: &str,
    ) -> Result<&'v [Value], EngineError> {
        self.field(value, pointer)?
            .as_array()
            .map(Vec::as_slice)
            .ok_or_else(|| self.malformed(&format!("{pointer} is not a list")))
    }

    /// A list of token ids.
    pub(super) fn token_ids(&self, value: &Value) -> Result<Vec<Token>, EngineError> {
        value
            .as_array()
            .ok_or_else(|| self.malformed("tokens is not a list"))?
            .iter()
            .map(|v| {
                v.as_i64()
                    .ok_or_else(|| self.malformed("a token id is not an integer"))
                    .and_then(|id| self.token_id(id))
            })
            .collect()
    }

    /// A token id, checked to be in range.
    pub(super) fn token_id(&self, id: i64) -> Result<Token, EngineError> {
        Token::try_from(id)
            .ok()
            .filter(|&t| t >= 0)
            .ok_or_else(|| self.malformed(&format!("token id {id} is out of range")))
    }

    /// A log-probability: a number, at most 0.
    pub(super) fn logprob(&self, value: Option<&Value>) -> Result<f32, EngineError> {
        value
            .and_then(Value::as_f64)
            .filter(|&l| l <= 0.0)
            .map(|l| l as f32)
            .ok_or_else(|| self.malformed("a log-probability is missing or above 0"))
    }

    /// The error for an answer that is not what the API promises.
    pub(super) fn malformed(&self, what: &str) -> EngineError {
        EngineError::Server {
            endpoint: self.client.endpoint().to_string(),
            reason: format!(
                "{}: malformed answer ({what}); is this {} of a compatible version?",
                self.path, self.server
            ),
        }
    }
}

/// A top-k list, most likely first (ties to the lower id), cut to `k`: a
/// server may add the chosen token to its top `k`.
pub(super) fn ranked(mut top: Vec<TokenLogprob>, k: usize) -> Vec<TokenLogprob> {
    top.sort_by(|a, b| b.logprob.total_cmp(&a.logprob).then(a.token.cmp(&b.token)));
    top.dedup_by_key(|entry| entry.token);
    top.truncate(k);
    top
}
