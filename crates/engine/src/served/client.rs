//! JSON over HTTP to one model server, with timeouts and retries.
//!
//! Every failure comes back as [`EngineError::Server`] naming the server and
//! saying what to check: an unreachable or dying server (after retries with
//! exponential backoff), one that stalls past the timeout, one that answers
//! with an error status, and one whose answer is not JSON.

use std::thread;
use std::time::Duration;

use serde_json::Value;

use crate::EngineError;

/// How patiently a [`Client`] talks to its server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Give up on a request that has not been answered after this long
    /// (a stalled server). Generating a line takes seconds on a CPU server,
    /// so this is generous by default.
    pub timeout: Duration,
    /// Retries after a failed connection or a 5xx answer, with the wait
    /// doubling from [`ClientConfig::first_backoff`].
    pub retries: u32,
    /// The wait before the first retry.
    pub first_backoff: Duration,
    /// Sent as `Authorization: Bearer <key>` when set.
    pub api_key: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            timeout: Duration::from_secs(120),
            retries: 3,
            first_backoff: Duration::from_millis(250),
            api_key: None,
        }
    }
}

/// A connection pool to one server.
pub(crate) struct Client {
    endpoint: String,
    agent: ureq::Agent,
    config: ClientConfig,
}

/// What one attempt at a request came to.
enum Failure {
    /// Worth another try: the connection failed or the server is overloaded.
    Transient(String),
    /// Trying again would not help.
    Final(String),
}

impl Client {
    /// A client of the server at `endpoint` (its base URL; a trailing `/`
    /// is dropped).
    pub(crate) fn new(endpoint: &str, config: ClientConfig) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            agent,
            config,
        }
    }

    /// The server's base URL.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `GET path`, parsed as JSON.
    pub(crate) fn get(&self, path: &str) -> Result<Value, EngineError> {
        self.with_retries(path, || {
            let mut request = self.agent.get(format!("{}{path}", self.endpoint));
            if let Some(key) = &self.config.api_key {
                request = request.header("Authorization", format!("Bearer {key}"));
            }
            request.call()
        })
    }

    /// `POST path` with a JSON `body`, the answer parsed as JSON.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, EngineError> {
        let body = body.to_string();
        self.with_retries(path, || {
            let mut request = self
                .agent
                .post(format!("{}{path}", self.endpoint))
                .header("Content-Type", "application/json");
            if let Some(key) = &self.config.api_key {
                request = request.header("Authorization", format!("Bearer {key}"));
            }
            request.send(body.as_str())
        })
    }

    /// Sends with `send` until it succeeds, fails for good, or the retries
    /// are spent.
    fn with_retries(
        &self,
        path: &str,
        send: impl Fn() -> Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, EngineError> {
        let mut backoff = self.config.first_backoff;
        let mut attempt = 0;
        loop {
            let failure = match self.once(path, send()) {
                Ok(value) => return Ok(value),
                Err(failure) => failure,
            };
            let reason = match failure {
                Failure::Transient(reason) if attempt < self.config.retries => {
                    tracing::warn!(endpoint = %self.endpoint, path, %reason, "retrying in {backoff:?}");
                    thread::sleep(backoff);
                    backoff *= 2;
                    attempt += 1;
                    continue;
                }
                Failure::Transient(reason) if attempt > 0 => {
                    format!("{reason} (gave up after {} retries)", attempt)
                }
                Failure::Transient(reason) | Failure::Final(reason) => reason,
            };
            return Err(EngineError::Server {
                endpoint: self.endpoint.clone(),
                reason: format!("{path}: {reason}"),
            });
        }
    }

    /// Reads one answer.
    fn once(
        &self,
        path: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, Failure> {
        let mut response = sent.map_err(|e| self.transport_failure(e))?;
        let status = response.status();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.transport_failure(e))?;
        if status.is_server_error() {
            return Err(Failure::Transient(format!(
                "answered {status}: {}",
                clip(&text)
            )));
        }
        if !status.is_success() {
            return Err(Failure::Final(format!(
                "answered {status}: {}; check that {} is a server of the kind given",
                clip(&text),
                self.endpoint
            )));
        }
        serde_json::from_str(&text).map_err(|e| {
            Failure::Final(format!(
                "the answer to {path} is not valid JSON ({e}): {}",
                clip(&text)
            ))
        })
    }

    fn transport_failure(&self, error: ureq::Error) -> Failure {
        match error {
            ureq::Error::Timeout(_) => Failure::Final(format!(
                "no answer within {:?}: the server stalled or is overloaded",
                self.config.timeout
            )),
            ureq::Error::Io(e) => {
                Failure::Transient(format!("connection failed ({e}); is the server running?"))
            }
            ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::Protocol(_) => {
                Failure::Transient(format!("{error}; is the server running?"))
            }
            other => Failure::Final(other.to_string()),
        }
    }
}

/// At most 200 characters of an answer, for error messages.
fn clip(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
