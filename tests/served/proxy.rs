//! A recording HTTP proxy: it stands between egcfg and a model server,
//! forwards every request unchanged and keeps its JSON body, so a test can
//! check exactly what egcfg asked the server.
//!
//! It speaks only what egcfg's client and llama-server need: one request
//! per connection (it asks the server to close, and the server's answer
//! tells the client so), bodies sized by `Content-Length`.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread;

/// One request that went through the proxy.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The request's path, e.g. `/completion`.
    pub path: String,
    /// Its JSON body (`Null` for a request without one).
    pub body: serde_json::Value,
}

/// A proxy on a free port of 127.0.0.1. Its threads live as long as the
/// test process: each serves one connection and ends with it.
pub struct RecordingProxy {
    /// Where egcfg sends its requests.
    pub url: String,
    requests: Arc<Mutex<Vec<Recorded>>>,
}

impl RecordingProxy {
    /// Starts forwarding to the server at `upstream` (`http://HOST:PORT`).
    pub fn start(upstream: &str) -> RecordingProxy {
        let upstream = upstream.trim_start_matches("http://").to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&requests);
        thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (upstream, recorded) = (upstream.clone(), Arc::clone(&recorded));
                thread::spawn(move || {
                    // A client that hangs up early only ends its own relay.
                    let _ = relay(client, &upstream, &recorded);
                });
            }
        });
        RecordingProxy { url, requests }
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
}

/// Reads one request from `client`, records it, sends it on to `upstream`
/// and hands back the server's whole answer.
fn relay(client: TcpStream, upstream: &str, recorded: &Mutex<Vec<Recorded>>) -> io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, path) = (
        parts.next().unwrap_or_default().to_string(),
        parts.next().unwrap_or_default().to_string(),
    );
    let mut length = 0;
    let mut headers = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if line.trim_end().is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').unwrap_or((&line, ""));
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = value.trim().parse().unwrap_or(0);
                headers.push_str(&line);
            }
            // The proxy sets these itself.
            "connection" | "host" => {}
            _ => headers.push_str(&line),
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    recorded.lock().unwrap().push(Recorded {
        path: path.clone(),
        body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    });

    let mut server = TcpStream::connect(upstream)?;
    write!(
        server,
        "{method} {path} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n{headers}\r\n"
    )?;
    server.write_all(&body)?;
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    let mut client = client;
    client.write_all(&answer)
}
