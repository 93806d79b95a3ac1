//! A real llama-server for egcfg's tests, shared by the engine crate's
//! tests and the binary's integration tests (a dev-dependency only).
//!
//! The served backend is tested against llama.cpp's own server, built once
//! by `scripts/llama-server.sh` and found through `$EGCFG_LLAMA_SERVER`
//! (`scripts/test.sh` exports it). Where it is unset, [`LlamaServer::start`]
//! says so and returns `None`, and the test skips.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to load its model and answer `/health`.
const READY_WITHIN: Duration = Duration::from_secs(120);

/// A llama-server on a free port of 127.0.0.1, killed when dropped.
pub struct LlamaServer {
    child: Child,
    url: String,
    port: u16,
}

impl LlamaServer {
    /// Serves `model` on one thread, with `slots` slots sharing a context of
    /// `ctx` tokens, once it answers `/health`; `None` (with a message) when
    /// `$EGCFG_LLAMA_SERVER` is unset.
    ///
    /// Panics when the server cannot be run or does not get ready: a test
    /// that meant to use it cannot go on.
    pub fn start(model: &Path, ctx: usize, slots: usize) -> Option<LlamaServer> {
        let Some(binary) = std::env::var_os("EGCFG_LLAMA_SERVER") else {
            eprintln!(
                "skipped: EGCFG_LLAMA_SERVER is unset; build the server with \
                 scripts/llama-server.sh and export its path (scripts/test.sh does)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port on 127.0.0.1")
            .port();
        let child = Command::new(binary)
            .arg("-m")
            .arg(model)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--threads", "1", "--threads-batch", "1"])
            .args(["-c", &ctx.to_string(), "-np", &slots.to_string()])
            // For [`LlamaServer::tokens_predicted`].
            .arg("--metrics")
            .env("OMP_WAIT_POLICY", "passive")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("EGCFG_LLAMA_SERVER names a runnable llama-server");
        // Owned at once, so a server that never gets ready is killed too.
        let server = LlamaServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
        };
        let deadline = Instant::now() + READY_WITHIN;
        while !healthy(port) {
            assert!(
                Instant::now() < deadline,
                "llama-server did not get ready in {READY_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(server)
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The tokens the server has generated in all, cancelled requests'
    /// included, from its Prometheus `/metrics`
    /// (`llamacpp:tokens_predicted_total`, counted when a slot ends a
    /// request).
    pub fn tokens_predicted(&self) -> u64 {
        let answer = get(self.port, "/metrics").expect("llama-server answers /metrics");
        answer
            .lines()
            .find_map(|line| line.strip_prefix("llamacpp:tokens_predicted_total "))
            .and_then(|n| n.trim().parse::<f64>().ok())
            .map(|n| n as u64)
            .unwrap_or_else(|| panic!("no tokens_predicted_total in /metrics: {answer}"))
    }

    /// Kills the server now, as a test of a server dying mid-run needs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether the server on `port` answers `GET /health` with 200 (it answers
/// 503 while it loads the model).
fn healthy(port: u16) -> bool {
    get(port, "/health").is_some_and(|answer| answer.starts_with("HTTP/1.1 200"))
}

/// The whole HTTP answer (status line, headers and body) to `GET path` on
/// `port`, or `None` when the server cannot be reached.
fn get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}
