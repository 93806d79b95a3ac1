//! Whole-file HTTP(S) downloads.

use std::io::Read;
use std::time::Duration;

use crate::error::SourceError;

/// How long to wait for response headers once connected.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// Sends a GET for `url` and returns the body, after checking that any
/// announced length equals `expected`. DNS and connect each give up after
/// `connect_timeout`, so an unreachable host fails fast; every read gives
/// up after `read_timeout` without data, so a server that stalls does not
/// hold the fetch forever.
pub(super) fn open(
    url: &str,
    expected: u64,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<impl Read, SourceError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_resolve(Some(connect_timeout))
        .timeout_connect(Some(connect_timeout))
        .timeout_recv_response(Some(RESPONSE_TIMEOUT))
        .timeout_per_read(Some(read_timeout))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|error| match error {
        ureq::Error::Timeout(phase) => SourceError::TimedOut {
            phase: phase.to_string(),
        },
        error => SourceError::Http(Box::new(error)),
    })?;
    if let Some(announced) = response.body().content_length() {
        if announced != expected {
            return Err(SourceError::UnexpectedLength {
                announced,
                expected,
            });
        }
    }
    Ok(response.into_body().into_reader())
}
