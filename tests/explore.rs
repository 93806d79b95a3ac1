//! `egcfg explore` in a real browser: headless Chromium (Debian's package,
//! installed by scripts/install-deps.sh) renders the pages of an explorer
//! over a database that `egcfg bench` wrote, and the test follows the
//! links a user clicks: from a run to a task to an attempt to a guided
//! token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::util::{success, tiny_model, Sandbox};

/// The browser: `$EGCFG_BROWSER` (scripts/test.sh sets it, and then the
/// test must run), else `chromium` on the PATH, else the test says why it
/// skips.
fn browser() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("EGCFG_BROWSER") {
        return Some(PathBuf::from(path));
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("chromium"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        eprintln!("chromium is not installed: skipping the browser test (scripts/install-deps.sh installs it)");
    }
    found
}

/// `egcfg explore` on a free port, stopped when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(sandbox: &Sandbox, db: &str) -> Server {
        let mut child = sandbox
            .command(&["explore", db, "--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start egcfg explore");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://127.0.0.1:"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .trim_end_matches('/')
            .to_string();
        Server { child, url }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The DOM Chromium builds for `url`.
fn render(browser: &Path, profile: &Path, url: &str) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stderr(Stdio::null())
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium failed on {url}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The target of the first link after `marker` (an attribute such as
/// `data-task="Mbpp/511"`), as the browser serialised it.
fn link_after(dom: &str, marker: &str) -> String {
    let at = dom
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} on the page:\n{dom}"));
    let rest = &dom[at..];
    let start = rest.find("href=\"").expect("a link") + 6;
    let end = start + rest[start..].find('"').unwrap();
    rest[start..end].replace("&amp;", "&")
}

fn bench(sandbox: &Sandbox, model: &str, method: &str, extra: &[&str]) {
    let mut args = vec![
        "bench",
        "--dataset",
        "mbpp:validation",
        "--method",
        method,
        "--model",
        model,
        "--threads",
        "2",
        "--db",
        "runs.sqlite",
    ];
    args.extend_from_slice(extra);
    success(&sandbox.run(&args));
}

/// One guided agent: each line is sampled, run and traced, and the tokens
/// after the first are chosen under guidance (γ = 1).
const GUIDED: &str =
    "[[agent]]\nt = 0.7\ns = 2\nd = 1\nk = 2\nstyle = \"instruct\"\ngamma = [1.0]\n";

#[test]
fn a_browser_follows_a_run_to_a_task_to_a_guided_token() {
    let Some(browser) = browser() else { return };
    let sandbox = Sandbox::new();
    let tiny = tiny_model();
    let tiny = tiny.to_str().unwrap();
    let ids = ["--ids", "Mbpp/511,Mbpp/512"];
    bench(&sandbox, tiny, "baseline", &ids);
    // The tiny random model never writes the target function, so it is
    // never guided; the real model (scripts/test.sh provides it) is.
    let real = std::env::var("EGCFG_E2E_MODEL").ok();
    let grid = sandbox.write("guided.toml", GUIDED);
    let grid = grid.to_str().unwrap();
    let model = real.as_deref().unwrap_or(tiny);
    let guided_ids = [
        "--ids",
        "Mbpp/511",
        "--agents",
        grid,
        "--max-tokens",
        "2000",
    ];
    if let Some(real) = &real {
        bench(&sandbox, real, "baseline", &guided_ids[..2]);
    }
    bench(&sandbox, model, "egcfg", &guided_ids);
    let server = Server::start(&sandbox, "runs.sqlite");
    let profile = sandbox.path().join("chromium-profile");
    let open = |href: &str| render(&browser, &profile, &format!("{}{href}", server.url));

    let runs = open("/");
    assert!(
        runs.contains("<h1>Runs</h1>") && runs.contains("mbpp:validation"),
        "{runs}"
    );
    let egcfg_run = if real.is_some() { 3 } else { 2 };
    let run = open(&link_after(&runs, &format!("data-run=\"{egcfg_run}\"")));
    assert!(
        run.contains("1 tasks done") && run.contains("strict pass@1"),
        "{run}"
    );
    if real.is_some() {
        assert!(
            run.contains("data-filter=\"fixed\""),
            "compared with the baseline:\n{run}"
        );
    }
    let task = open(&link_after(&run, "data-task=\"Mbpp/511\""));
    assert!(
        task.contains("Hidden tests of the chosen program"),
        "{task}"
    );
    assert!(
        task.contains("<td class=\"l\">mbpp</td>"),
        "the hidden suite's verdict:\n{task}"
    );
    assert!(task.contains("id=\"chosen\""), "{task}");
    let attempt = open(&link_after(&task, "data-attempt=\"0\""));
    assert!(attempt.contains("The program as it grew"), "{attempt}");
    let Some(_) = real else {
        eprintln!("EGCFG_E2E_MODEL is not set: the tiny model is never guided, so the guided-token page is not reached");
        return;
    };
    assert!(
        attempt.contains("refresh at token"),
        "refreshes are listed:\n{attempt}"
    );
    let marker = if attempt.contains("data-changed=\"true\"") {
        "data-changed=\"true\""
    } else {
        "data-changed=\"false\""
    };
    let token = open(&link_after(&attempt, marker));
    assert!(token.contains("<section id=\"dist\">"), "{token}");
    for dist in ["P", "P_c", "guided"] {
        assert!(
            token.contains(&format!("data-dist=\"{dist}\"")),
            "no {dist} table:\n{token}"
        );
    }
    assert!(
        token.contains("class=\"chosen\""),
        "the chosen token is marked:\n{token}"
    );
    if marker.ends_with("\"true\"") {
        assert!(
            token.contains("where plain decoding would have chosen"),
            "{token}"
        );
        assert!(
            token.contains("class=\"argmax\""),
            "P's choice is marked:\n{token}"
        );
    }
}
