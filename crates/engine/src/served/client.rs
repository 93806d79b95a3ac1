//! JSON over HTTP to one model server, answers whole or as a stream of
//! server-sent events, with timeouts and retries.
//!
//! Every failure comes back as [`EngineError::Server`] naming the server and
//! saying what to check: an unreachable or dying server (after retries with
//! exponential backoff), one that stalls past the timeout, one that answers
//! with an error status, and one whose answer is not JSON. Every attempt
//! counts as a request of the calling thread ([`Meter`]), and the requests
//! waiting for an answer are the server's load, by which requests are routed.

use std::io::{BufRead, BufReader};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde_json::Value;

use super::meter::Meter;
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
    meter: Arc<Meter>,
    in_flight: AtomicUsize,
}

/// An answer that is not a success: its status and body, for a caller that
/// tells a refusal it expects (an unknown path while detecting the kind, a
/// capped request) from a failure.
pub(crate) struct Refusal {
    /// The HTTP status (4xx).
    pub(crate) status: u16,
    /// The body, as text.
    pub(crate) text: String,
}

/// What one attempt at a request came to.
enum Failure {
    /// Worth another try: the connection failed or the server is overloaded.
    Transient(String),
    /// Trying again would not help.
    Final(String),
    /// The caller refused what was read (a malformed event of a stream).
    Refused(EngineError),
}

impl Client {
    /// A client of the server at `endpoint` (its base URL; a trailing `/`
    /// is dropped) whose requests count on `meter`.
    pub(crate) fn new(endpoint: &str, config: ClientConfig, meter: Arc<Meter>) -> Self {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(config.timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            agent,
            config,
            meter,
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Requests sent and not yet answered.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Where the calling thread's spending is counted.
    pub(crate) fn meter(&self) -> &Meter {
        &self.meter
    }

    /// The server's base URL.
    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// `GET path`, parsed as JSON.
    pub(crate) fn get(&self, path: &str) -> Result<Value, EngineError> {
        self.try_get(path)?
            .map_err(|refusal| self.refused(path, refusal))
    }

    /// `POST path` with a JSON `body`, the answer parsed as JSON.
    pub(crate) fn post(&self, path: &str, body: &Value) -> Result<Value, EngineError> {
        self.try_post(path, body)?
            .map_err(|refusal| self.refused(path, refusal))
    }

    /// Like [`Client::get`], but a 4xx answer comes back as a [`Refusal`].
    pub(crate) fn try_get(&self, path: &str) -> Result<Result<Value, Refusal>, EngineError> {
        self.with_retries(path, || {
            let sent = self
                .authorized(self.agent.get(format!("{}{path}", self.endpoint)))
                .call();
            self.once(path, sent)
        })
    }

    /// Like [`Client::post`], but a 4xx answer comes back as a [`Refusal`].
    pub(crate) fn try_post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Result<Value, Refusal>, EngineError> {
        let body = body.to_string();
        self.with_retries(path, || {
            let sent = self.json_post(path).send(body.as_str());
            self.once(path, sent)
        })
    }

    /// `POST path` with a JSON `body` that asks for a stream of server-sent
    /// events: each `data:` event is parsed as JSON and handed to `each`,
    /// which says whether it wants more. When it does not, the connection
    /// is closed, which is how a client tells a server to stop generating.
    /// A failure before the first event is retried like any request; one
    /// after it is not, since events already handed on cannot be taken back.
    pub(crate) fn post_stream(
        &self,
        path: &str,
        body: &Value,
        mut each: impl FnMut(Value) -> Result<bool, EngineError>,
    ) -> Result<(), EngineError> {
        let body = body.to_string();
        let mut events = 0;
        self.with_retries(path, || {
            let sent = self
                .json_post(path)
                .header("Accept", "text/event-stream")
                .send(body.as_str());
            self.read_stream(path, sent, &mut each, &mut events)
        })?
        .map_err(|refusal| self.refused(path, refusal))
    }

    /// A `POST path` of a JSON body.
    fn json_post(&self, path: &str) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        self.authorized(self.agent.post(format!("{}{path}", self.endpoint)))
            .header("Content-Type", "application/json")
    }

    /// `request` with the API key, when there is one.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.config.api_key {
            Some(key) => request.header("Authorization", format!("Bearer {key}")),
            None => request,
        }
    }

    /// A refusal as the error of a request that had to succeed.
    fn refused(&self, path: &str, refusal: Refusal) -> EngineError {
        EngineError::Server {
            endpoint: self.endpoint.clone(),
            reason: format!(
                "{path}: answered {}: {}; check that {} is a server of the kind given",
                refusal.status,
                clip(&refusal.text),
                self.endpoint
            ),
        }
    }

    /// Makes `attempt` (a request sent and its answer read) until it
    /// succeeds, fails for good, or the retries are spent.
    fn with_retries<T>(
        &self,
        path: &str,
        mut attempt: impl FnMut() -> Result<T, Failure>,
    ) -> Result<T, EngineError> {
        let mut backoff = self.config.first_backoff;
        let mut retries = 0;
        loop {
            self.meter.count_request();
            self.in_flight.fetch_add(1, Ordering::Relaxed);
            let answer = attempt();
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            let failure = match answer {
                Ok(answer) => return Ok(answer),
                Err(failure) => failure,
            };
            let reason = match failure {
                Failure::Transient(reason) if retries < self.config.retries => {
                    tracing::warn!(endpoint = %self.endpoint, path, %reason, "retrying in {backoff:?}");
                    thread::sleep(backoff);
                    backoff *= 2;
                    retries += 1;
                    continue;
                }
                Failure::Transient(reason) if retries > 0 => {
                    format!("{reason} (gave up after {retries} retries)")
                }
                Failure::Transient(reason) | Failure::Final(reason) => reason,
                Failure::Refused(error) => return Err(error),
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
    ) -> Result<Result<Value, Refusal>, Failure> {
        let mut response = sent.map_err(|e| self.transport_failure(e))?;
        if !response.status().is_success() {
            return self.refusal(response).map(Err);
        }
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| self.transport_failure(e))?;
        serde_json::from_str(&text).map(Ok).map_err(|e| {
            Failure::Final(format!(
                "the answer to {path} is not valid JSON ({e}): {}",
                clip(&text)
            ))
        })
    }

    /// Reads a stream of server-sent events into `each` until the stream
    /// ends or `each` wants no more; `events` counts those read so far,
    /// over all attempts.
    fn read_stream(
        &self,
        path: &str,
        sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
        each: &mut impl FnMut(Value) -> Result<bool, EngineError>,
        events: &mut usize,
    ) -> Result<Result<(), Refusal>, Failure> {
        let response = sent.map_err(|e| self.transport_failure(e))?;
        if !response.status().is_success() {
            return self.refusal(response).map(Err);
        }
        let lines = BufReader::new(response.into_body().into_reader()).lines();
        // Dropping the reader before the stream ends closes the connection.
        for line in lines {
            let line = line.map_err(|e| {
                let reason = format!("the event stream broke off ({e}); is the server running?");
                if *events == 0 {
                    Failure::Transient(reason)
                } else {
                    Failure::Final(reason)
                }
            })?;
            // Blank lines end events and lines opening with `:` are
            // comments (keep-alive pings); only `data:` carries answers.
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let data = data.trim();
            if data == "[DONE]" {
                break;
            }
            let event: Value = serde_json::from_str(data).map_err(|e| {
                Failure::Final(format!(
                    "an event of {path} is not valid JSON ({e}): {}",
                    clip(data)
                ))
            })?;
            if let Some(error) = event.get("error") {
                return Err(Failure::Final(format!(
                    "the stream of {path} ended in an error: {}",
                    clip(&error.to_string())
                )));
            }
            *events += 1;
            if !each(event).map_err(Failure::Refused)? {
                break;
            }
        }
        Ok(Ok(()))
    }

    /// What an answer that is not a success comes to, its body read: a 5xx
    /// is worth another try, a 4xx is the caller's to judge.
    fn refusal(&self, mut response: ureq::http::Response<ureq::Body>) -> Result<Refusal, Failure> {
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
        Ok(Refusal {
            status: status.as_u16(),
            text,
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
pub(crate) fn clip(text: &str) -> String {
    match text.char_indices().nth(200) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
