//! Shared test fixtures: small generated model files, registry entries
//! built around them, a throw-away store, and a one-shot HTTP server on
//! 127.0.0.1.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use crate::digest::Sha256Digest;
use crate::fetch::FetchOptions;
use crate::registry::{ModelSpec, Registry, Source};
use crate::store::Store;
use crate::Models;

/// `len` deterministic bytes that start with the GGUF magic.
pub(crate) fn model_bytes(len: usize, seed: u8) -> Vec<u8> {
    let mut bytes = b"GGUF".to_vec();
    bytes.extend((4..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes.truncate(len);
    bytes
}

/// A registry entry whose official size and digest are those of `bytes`.
pub(crate) fn spec(name: &str, bytes: &[u8], sources: Vec<Source>) -> ModelSpec {
    ModelSpec {
        name: name.to_owned(),
        aliases: vec![format!("{name}-alias")],
        description: format!("test model {name}"),
        quantization: "F32".to_owned(),
        file_name: format!("{name}.gguf"),
        size: bytes.len() as u64,
        sha256: Sha256Digest::of_bytes(bytes),
        licence: "MIT".to_owned(),
        upstream: format!("tests/{name}"),
        sources,
    }
}

/// Fetch options for tests: no progress bars, an interpreter that must not
/// be needed, and a short connect timeout.
pub(crate) fn options() -> FetchOptions {
    FetchOptions {
        progress: false,
        python: PathBuf::from("/nonexistent/python-for-tests"),
        connect_timeout: Duration::from_secs(2),
        read_timeout: Duration::from_secs(2),
    }
}

/// A temporary directory with a store under `store/` and room for sources.
pub(crate) struct Sandbox {
    pub(crate) dir: TempDir,
}

impl Sandbox {
    pub(crate) fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// The store inside the sandbox.
    pub(crate) fn store(&self) -> Store {
        Store::at(self.dir.path().join("store"))
    }

    /// Writes `bytes` to `name` inside the sandbox and returns its path.
    pub(crate) fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).expect("write fixture");
        path
    }

    /// A path inside the sandbox that does not exist.
    pub(crate) fn missing(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A [`Models`] over these specs and the sandbox store.
    pub(crate) fn models(&self, specs: Vec<ModelSpec>) -> Models {
        self.models_with(specs, options())
    }

    /// Like [`Sandbox::models`], with explicit options.
    pub(crate) fn models_with(&self, specs: Vec<ModelSpec>, options: FetchOptions) -> Models {
        Models::new(Registry::new(specs), self.store(), options)
    }
}

/// Every file name in `dir` (empty when it does not exist), sorted.
pub(crate) fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Serves one HTTP response on 127.0.0.1 announcing `announced` bytes and
/// sending `body`; returns the URL to fetch.
pub(crate) fn serve_once(body: Vec<u8>, announced: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
            line.clear();
        }
        let mut stream = reader.into_inner();
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Length: {announced}\r\nConnection: close\r\n\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    });
    format!("http://{address}/model.gguf")
}

/// A URL on 127.0.0.1 whose server accepts connections, reads nothing and
/// answers nothing until the returned listener's thread ends with the test
/// process; with `head`, it first sends that much of a response.
pub(crate) fn silent_server(head: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for mut stream in listener.incoming().flatten() {
            let _ = stream.write_all(head);
            held.push(stream);
        }
    });
    format!("http://{address}/model.gguf")
}

/// A URL on 127.0.0.1 where nothing listens.
pub(crate) fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    drop(listener);
    format!("http://{address}/model.gguf")
}
