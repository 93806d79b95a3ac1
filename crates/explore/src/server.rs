//! The HTTP side: requests routed to pages, on 127.0.0.1 only.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};

use egcfg_bench::RunId;
use percent_encoding::percent_decode_str;

use crate::page::{escape, layout, STYLE};
use crate::run::Filter;
use crate::source::Source;
use crate::{api, attempt, run, runs, task, ExploreError};

/// A rendered answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Response {
    fn html(body: String) -> Response {
        Response {
            status: 200,
            content_type: "text/html; charset=utf-8",
            body,
        }
    }

    fn json(body: String) -> Response {
        Response {
            status: 200,
            content_type: "application/json",
            body,
        }
    }

    fn not_found(what: &str) -> Response {
        Response {
            status: 404,
            content_type: "text/html; charset=utf-8",
            body: layout("Not found", &[], false, &format!("<p>{}</p>", escape(what))),
        }
    }

    fn error(error: &ExploreError) -> Response {
        Response {
            status: 500,
            content_type: "text/html; charset=utf-8",
            body: layout(
                "Cannot read the data",
                &[],
                false,
                &format!("<pre>{}</pre>", escape(&error.to_string())),
            ),
        }
    }
}

/// The explorer of one file: answers request paths with pages.
pub struct Explorer {
    source: Source,
}

impl Explorer {
    /// An explorer of `source`.
    pub fn new(source: Source) -> Explorer {
        Explorer { source }
    }

    /// The answer to a GET of `url` (path and query).
    pub fn handle(&self, url: &str) -> Response {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let params = parse_query(query);
        let get = |key: &str| params.get(key).map(String::as_str);
        let run_id = |key: &str| get(key).and_then(|v| v.parse().ok()).map(RunId);
        let result = match path {
            "/" => runs::page(&self.source)
                .map(Some)
                .map(|p| p.map(Response::html)),
            "/style.css" => Ok(Some(Response {
                status: 200,
                content_type: "text/css; charset=utf-8",
                body: STYLE.to_string(),
            })),
            "/run" => match run_id("id") {
                Some(id) => run::page(&self.source, id, run_id("vs"), Filter::parse(get("filter")))
                    .map(|p| p.map(Response::html)),
                None => Ok(None),
            },
            "/task" => match (run_id("run"), get("id")) {
                (Some(run), Some(id)) => {
                    task::page(&self.source, run, id, run_id("vs")).map(|p| p.map(Response::html))
                }
                _ => Ok(None),
            },
            "/attempt" => match (
                run_id("run"),
                get("id"),
                get("n").and_then(|n| n.parse().ok()),
            ) {
                (Some(run), Some(id), Some(n)) => attempt::page(
                    &self.source,
                    run,
                    id,
                    n,
                    get("token").and_then(|t| t.parse().ok()),
                )
                .map(|p| p.map(Response::html)),
                _ => Ok(None),
            },
            "/api/runs" => api::runs(&self.source).map(|j| Some(Response::json(j))),
            "/api/run" => match run_id("id") {
                Some(id) => api::run(&self.source, id).map(|j| Some(Response::json(j))),
                None => Ok(None),
            },
            "/api/task" => match (run_id("run"), get("id")) {
                (Some(run), Some(id)) => {
                    api::task(&self.source, run, id).map(|j| j.map(Response::json))
                }
                _ => Ok(None),
            },
            _ => Ok(None),
        };
        match result {
            Ok(Some(response)) => response,
            Ok(None) => Response::not_found(&format!("Nothing at {url}.")),
            Err(error) => Response::error(&error),
        }
    }
}

/// The query's parameters, percent- and plus-decoded.
fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(key), decode(value))
        })
        .collect()
}

/// Serves `explorer` on 127.0.0.1:`port` (0: any free port) until the
/// process ends; `ready` is told the address once the socket listens.
pub fn serve(
    explorer: Explorer,
    port: u16,
    ready: impl FnOnce(SocketAddr),
) -> Result<(), ExploreError> {
    let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let server = tiny_http::Server::http(address).map_err(|e| ExploreError::Listen {
        address: address.to_string(),
        message: e.to_string(),
    })?;
    let bound = server
        .server_addr()
        .to_ip()
        .ok_or_else(|| ExploreError::Listen {
            address: address.to_string(),
            message: "not an IP socket".into(),
        })?;
    ready(bound);
    for request in server.incoming_requests() {
        let response = if *request.method() == tiny_http::Method::Get {
            explorer.handle(request.url())
        } else {
            Response {
                status: 405,
                content_type: "text/plain; charset=utf-8",
                body: "the explorer only reads: use GET\n".into(),
            }
        };
        tracing::debug!(url = request.url(), status = response.status, "request");
        let header = tiny_http::Header::from_bytes("Content-Type", response.content_type)
            .expect("a valid header");
        let reply = tiny_http::Response::from_string(response.body)
            .with_status_code(response.status)
            .with_header(header);
        if let Err(error) = request.respond(reply) {
            tracing::debug!(%error, "the browser went away");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A solve record of the real default model on Mbpp/511 (one guided
    /// attempt), with model-written markup put into its program and its
    /// first token.
    fn hostile_record(dir: &std::path::Path) -> std::path::PathBuf {
        let text = include_str!("../testdata/record.json");
        let mut record: serde_json::Value = serde_json::from_str(text).unwrap();
        let attack = "<script>alert(1)</script>";
        record["code"] = format!("def f():\n    return '{attack}'\n").into();
        record["attempts"][0]["tokens"][0]["piece"] = attack.into();
        let path = dir.join("record.json");
        std::fs::write(&path, record.to_string()).unwrap();
        path
    }

    fn explorer() -> (tempfile::TempDir, Explorer) {
        let dir = tempfile::tempdir().unwrap();
        let path = hostile_record(dir.path());
        let source = Source::open(&path).unwrap();
        (dir, Explorer::new(source))
    }

    fn ok(explorer: &Explorer, url: &str) -> String {
        let response = explorer.handle(url);
        assert_eq!(response.status, 200, "{url}: {}", response.body);
        assert!(
            !response.body.contains("<script"),
            "{url}: model-written markup reached the page unescaped"
        );
        response.body
    }

    #[test]
    fn a_solve_record_is_browsed_from_the_run_to_a_guided_token() {
        let (_dir, explorer) = explorer();
        let runs = ok(&explorer, "/");
        assert!(runs.contains("href=\"/run?id=1\""), "{runs}");
        let run = ok(&explorer, "/run?id=1");
        assert!(run.contains("Mbpp%2F511"), "{run}");
        let task = ok(&explorer, "/task?run=1&id=Mbpp%2F511");
        assert!(
            task.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{task}"
        );
        assert!(task.contains("No hidden tests were run"), "{task}");
        assert!(
            task.contains("cancelled (budget)") || task.contains("cancelled"),
            "{task}"
        );
        let attempt = ok(&explorer, "/attempt?run=1&id=Mbpp%2F511&n=0");
        assert_eq!(
            attempt.matches("data-changed=\"true\"").count(),
            3,
            "{attempt}"
        );
        assert!(
            attempt.contains("refresh at token 6 (line 0): 2 sampled, 2 unique"),
            "{attempt}"
        );
        let token = ok(&explorer, "/attempt?run=1&id=Mbpp%2F511&n=0&token=21");
        assert!(
            token.contains("Guidance chose &quot; int&quot; where plain decoding would have chosen &quot; n&quot;."),
            "{token}"
        );
        for dist in ["P", "P_c", "guided"] {
            assert!(token.contains(&format!("data-dist=\"{dist}\"")), "{dist}");
        }
        assert!(
            token.contains(
                "<tr class=\"chosen\"><td class=\"l tok\">&quot; int&quot;</td><td>0.676</td>"
            ),
            "{token}"
        );
    }

    #[test]
    fn json_endpoints_and_unknown_paths() {
        let (_dir, explorer) = explorer();
        let runs: serde_json::Value =
            serde_json::from_str(&explorer.handle("/api/runs").body).unwrap();
        assert_eq!(runs[0]["tasks_done"], 1);
        let task = explorer.handle("/api/task?run=1&id=Mbpp%2F511");
        assert_eq!(task.content_type, "application/json");
        let task: serde_json::Value = serde_json::from_str(&task.body).unwrap();
        assert_eq!(task["task_id"], "Mbpp/511");
        for missing in [
            "/nothing",
            "/run?id=9",
            "/task?run=1&id=Mbpp%2F1",
            "/attempt?run=1&id=Mbpp%2F511&n=5",
            "/run?id=x",
        ] {
            let response = explorer.handle(missing);
            assert_eq!(response.status, 404, "{missing}");
            assert!(!response.body.contains("<script"));
        }
        let echoed = explorer.handle("/<script>alert(1)</script>");
        assert!(!echoed.body.contains("<script>"), "the path is escaped too");
    }

    #[test]
    fn a_database_being_written_shows_its_progress() {
        use egcfg_bench::{Cost, RunKey, Solution, Store, SuiteScore, TaskResult};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runs.sqlite");
        let mut store = Store::open(&path).unwrap();
        let key = RunKey {
            dataset: "mbpp".into(),
            split: "validation".into(),
            method: "egcfg".into(),
            model: "/models/tiny.gguf".into(),
            config: serde_json::json!({}),
        };
        let run = store.open_run(&key, "v1").unwrap();
        let result = TaskResult {
            task_id: "Mbpp/511".into(),
            solution: Solution {
                program: "print('<b>')".into(),
                attempts: Vec::new(),
                cost: Cost::default(),
                records: serde_json::json!({ "sample_lines": [1] }),
                profile: None,
            },
            wall_ms: 1.0,
            scores: vec![SuiteScore {
                suite: "mbpp".into(),
                passed: true,
                tests_passed: 3,
                tests_total: 3,
                detail: String::new(),
                attempts_passed: None,
            }],
        };
        store.record(run, &result).unwrap();
        // The writer is still open, as `egcfg bench` is mid-run.
        let explorer = Explorer::new(Source::open(&path).unwrap());
        let runs = ok(&explorer, "/");
        assert!(runs.contains("in progress"), "{runs}");
        assert!(runs.contains("http-equiv=\"refresh\""), "{runs}");
        assert!(
            runs.contains("1/1 (100.0%) on mbpp") && runs.contains(">tiny.gguf<"),
            "{runs}"
        );
        let task = ok(&explorer, "/task?run=1&id=Mbpp%2F511");
        assert!(task.contains("No generation record"), "{task}");
        assert!(task.contains("print(&#39;&lt;b&gt;&#39;)"), "{task}");
        drop(store);
    }

    #[test]
    fn a_file_that_is_neither_a_database_nor_a_record_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.txt");
        std::fs::write(&path, "hello").unwrap();
        let err = Source::open(&path).err().unwrap().to_string();
        assert!(
            err.contains("neither an egcfg results database nor"),
            "{err}"
        );
    }

    #[test]
    fn queries_are_percent_and_plus_decoded() {
        let params = parse_query("id=Mbpp%2F511&x=a+b&flag");
        assert_eq!(params["id"], "Mbpp/511");
        assert_eq!(params["x"], "a b");
        assert_eq!(params["flag"], "");
    }
}
