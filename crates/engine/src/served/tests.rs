//! The served backend against fake servers: servers that misbehave on
//! purpose (here), and fakes of vLLM and SGLang over a tiny model
//! ([`fake`]; the real llama-server is exercised in `tests/served.rs`).

mod fake;
mod kinds;
mod pool;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::*;

/// One request a fake server received.
pub(super) struct Request {
    pub(super) path: String,
    /// The JSON body (`Null` for none).
    pub(super) body: Value,
}

/// How a fake server answers a request: a status and a body.
type Handler = Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

/// How a fake server answers every request.
#[derive(Clone)]
enum Behaviour {
    /// `200 OK` with this body.
    Answer(&'static str),
    /// Reads the request and never answers.
    Stall,
    /// Whatever the handler says.
    Route(Handler),
}

/// Serves `behaviour` on a free port of 127.0.0.1 and returns its URL.
fn fake_server(behaviour: Behaviour) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let behaviour = behaviour.clone();
            thread::spawn(move || serve(stream, behaviour));
        }
    });
    url
}

fn serve(stream: TcpStream, behaviour: Behaviour) {
    let mut reader = BufReader::new(stream);
    loop {
        let mut content_length = 0;
        let mut path = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if path.is_empty() {
                path = line.split(' ').nth(1).unwrap_or("").to_string();
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                content_length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; content_length];
        reader.read_exact(&mut body).unwrap();
        let (status, text) = match &behaviour {
            Behaviour::Stall => {
                thread::sleep(Duration::from_secs(30));
                return;
            }
            Behaviour::Answer(text) => (200, text.to_string()),
            Behaviour::Route(handler) => handler(&Request {
                path,
                body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            }),
        };
        let response = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            if status == 200 { "OK" } else { "Error" },
            text.len()
        );
        reader.get_mut().write_all(response.as_bytes()).unwrap();
    }
}

fn quick(endpoint: &str) -> ServedConfig {
    ServedConfig {
        kind: Some(ServerKind::LlamaServer),
        client: ClientConfig {
            timeout: Duration::from_secs(1),
            retries: 1,
            first_backoff: Duration::from_millis(10),
            api_key: None,
        },
        ..ServedConfig::new(endpoint)
    }
}

/// Patient enough for a fake server, quick to give up on a dead one; the
/// kind detected.
fn fast(endpoints: &[&str]) -> ServedConfig {
    ServedConfig {
        kind: None,
        ..quick("")
    }
    .with_endpoints(endpoints)
}

impl ServedConfig {
    fn with_endpoints(self, endpoints: &[&str]) -> Self {
        ServedConfig {
            endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
            ..self
        }
    }
}

fn server_error(result: Result<ServedEngine, EngineError>) -> (String, String) {
    match result {
        Err(EngineError::Server { endpoint, reason }) => (endpoint, reason),
        Err(other) => panic!("expected a server error, got {other}"),
        Ok(_) => panic!("expected a server error, got an engine"),
    }
}

#[test]
fn a_stalled_server_times_out_naming_it() {
    let url = fake_server(Behaviour::Stall);
    let started = Instant::now();
    let (endpoint, reason) = server_error(ServedEngine::connect(quick(&url)));
    assert_eq!(endpoint, url);
    assert!(reason.contains("no answer within 1s"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(10), "not retried");
}

#[test]
fn an_answer_that_is_not_json_is_a_clear_error() {
    let url = fake_server(Behaviour::Answer("<html>proxy error</html>"));
    let (endpoint, reason) = server_error(ServedEngine::connect(quick(&url)));
    assert_eq!(endpoint, url);
    assert!(
        reason.contains("/props: the answer to /props is not valid JSON"),
        "{reason}"
    );
    assert!(reason.contains("<html>proxy error</html>"), "{reason}");
}

#[test]
fn json_of_the_wrong_shape_is_a_clear_error() {
    let url = fake_server(Behaviour::Answer(r#"{"default_generation_settings": {}}"#));
    let (_, reason) = server_error(ServedEngine::connect(quick(&url)));
    assert!(
        reason.contains("malformed answer (the answer has no /default_generation_settings/n_ctx)"),
        "{reason}"
    );
}

#[test]
fn nothing_listening_is_retried_then_named() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let (endpoint, reason) = server_error(ServedEngine::connect(quick(&url)));
    assert_eq!(endpoint, url);
    assert!(reason.contains("is the server running?"), "{reason}");
    assert!(reason.contains("gave up after 1 retries"), "{reason}");
}

#[test]
fn an_endpoint_that_is_no_http_url_is_refused_before_any_request() {
    for endpoint in [
        "notaurl",
        "127.0.0.1:8080",
        "ftp://host:21",
        "http://",
        "/v1",
    ] {
        let error = ServedEngine::connect(quick(endpoint)).err().unwrap();
        assert!(
            matches!(&error, EngineError::InvalidConfig(m) if m.contains(&format!("`{endpoint}` is not an http"))),
            "{endpoint}: {error}"
        );
    }
    for endpoint in [
        "http://127.0.0.1:8080",
        "https://gpu.example/v1",
        "http://[::1]:8000",
    ] {
        assert!(is_http_url(endpoint), "{endpoint}");
    }
}

/// A client of `url` that retries once, quickly.
fn client(url: &str) -> client::Client {
    client::Client::new(url, quick(url).client, Arc::new(meter::Meter::default()))
}

/// Reads the stream at `url` into a list until `wanted` events are read.
fn read_events(url: &str, wanted: usize) -> Result<Vec<Value>, EngineError> {
    let mut events = Vec::new();
    client(url).post_stream("/completion", &Value::Null, |event| {
        events.push(event);
        Ok(events.len() < wanted)
    })?;
    Ok(events)
}

#[test]
fn a_stream_is_read_event_by_event_until_the_reader_has_enough() {
    let stream =
        "data: {\"n\": 1}\n\n: ping\n\ndata: {\"n\": 2}\n\ndata: {\"n\": 3}\n\ndata: [DONE]\n\n";
    let url = fake_server(Behaviour::Answer(stream));
    let numbers = |events: Vec<Value>| {
        events
            .iter()
            .map(|e| e["n"].as_u64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(read_events(&url, 2).unwrap()), [1, 2]);
    assert_eq!(numbers(read_events(&url, 10).unwrap()), [1, 2, 3]);
}

#[test]
fn a_malformed_or_failed_stream_is_a_clear_error() {
    for (stream, expected) in [
        (
            "data: {\"n\": 1}\n\ndata: {\"n\": \n\n",
            "/completion: an event of /completion is not valid JSON",
        ),
        (
            "data: {\"n\": 1}\n\ndata: {\"error\": {\"message\": \"out of memory\"}}\n\n",
            "the stream of /completion ended in an error: {\"message\":\"out of memory\"}",
        ),
    ] {
        let url = fake_server(Behaviour::Answer(stream));
        let Err(EngineError::Server { endpoint, reason }) = read_events(&url, 10) else {
            panic!("{stream:?} must fail");
        };
        assert_eq!(endpoint, url);
        assert!(reason.contains(expected), "{reason}");
    }
}

#[test]
fn a_stream_refused_before_its_first_event_is_retried() {
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let url = fake_server(Behaviour::Route(Arc::new(move |_| {
        match seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) {
            0 => (503, "loading model".to_string()),
            _ => (200, "data: {\"n\": 1}\n\n".to_string()),
        }
    })));
    assert_eq!(read_events(&url, 10).unwrap().len(), 1);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}
