//! Turning `--model` or `--endpoint` flags into a running engine.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use egcfg_engine::served::ClientConfig;
use egcfg_engine::{Engine, EngineConfig, LlamaEngine, ServedConfig, ServedEngine, ServerKind};
use egcfg_models::{FetchOptions, Models};

use crate::flags::{EndpointKind, ModelArgs};

/// The engine the flags name: the model served at the `--endpoint`s, or
/// else the local model, resolved (fetching a known one on first use) and
/// loaded with room for `n_seq_max` live sequences (for a solve,
/// [`egcfg_method::sequences_needed`]).
pub fn engine(args: &ModelArgs, n_seq_max: usize) -> Result<Arc<dyn Engine>> {
    if args.endpoint.is_empty() {
        Ok(local(args, n_seq_max)?)
    } else {
        served(args)
    }
}

/// The local GGUF model.
fn local(args: &ModelArgs, n_seq_max: usize) -> Result<Arc<LlamaEngine>> {
    let models = Models::from_env(FetchOptions::default())?;
    let path = models.resolve(&args.model)?;
    let mut config = EngineConfig {
        n_ctx: args.ctx as usize,
        n_seq_max,
        ..EngineConfig::default()
    };
    if let Some(threads) = args.threads {
        config.n_threads = threads as usize;
    }
    tracing::info!(model = %path.display(), ?config, "loading model");
    let engine = LlamaEngine::load(&path, config)
        .with_context(|| format!("loading model `{}`", args.model))?;
    Ok(Arc::new(engine))
}

/// The model served at the `--endpoint`s.
fn served(args: &ModelArgs) -> Result<Arc<dyn Engine>> {
    let endpoints: Vec<String> = args
        .endpoint
        .iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect();
    if endpoints.is_empty() {
        bail!("--endpoint names no URL; give one such as http://127.0.0.1:8080");
    }
    let api_key = api_key(args.api_key_env.as_deref())?;
    let config = ServedConfig {
        kind: server_kind(args.endpoint_kind),
        client: ClientConfig {
            api_key,
            timeout: Duration::from_secs(args.endpoint_timeout),
            ..ClientConfig::default()
        },
        ..ServedConfig::several(&endpoints)
    };
    let engine = ServedEngine::connect(config)
        .with_context(|| format!("connecting to the model served at {}", endpoints.join(", ")))?;
    Ok(Arc::new(engine))
}

/// The variable that holds the API key unless `--api-key-env` names
/// another.
const DEFAULT_API_KEY_ENV: &str = "EGCFG_API_KEY";

/// The API key: from the variable `--api-key-env` names, which must then be
/// set (a misspelt name would otherwise send no key and surface only as
/// the server's refusal), or else from [`DEFAULT_API_KEY_ENV`] when set.
fn api_key(named: Option<&str>) -> Result<Option<String>> {
    let read = |name: &str| std::env::var(name).ok().filter(|key| !key.is_empty());
    match named {
        Some(name) => read(name).map(Some).with_context(|| {
            format!(
                "--api-key-env {name}: the environment variable {name} is not set or empty; \
                 set it to the API key, or leave the flag out"
            )
        }),
        None => Ok(read(DEFAULT_API_KEY_ENV)),
    }
}

/// The server kind `--endpoint-kind` names, or `None` to detect it.
fn server_kind(kind: EndpointKind) -> Option<ServerKind> {
    match kind {
        EndpointKind::Auto => None,
        EndpointKind::LlamaServer => Some(ServerKind::LlamaServer),
        EndpointKind::OpenAi => Some(ServerKind::OpenAi),
        EndpointKind::Sglang => Some(ServerKind::Sglang),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::flags::{Cli, Command};

    fn model_args(flags: &[&str]) -> ModelArgs {
        let mut argv = vec!["egcfg", "solve", "task.toml"];
        argv.extend_from_slice(flags);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Solve(args) => args.model,
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn endpoints_repeat_or_come_comma_separated() {
        let args = model_args(&[
            "--endpoint",
            "http://a:1,http://b:2",
            "--endpoint",
            "http://c:3",
        ]);
        assert_eq!(args.endpoint, ["http://a:1", "http://b:2", "http://c:3"]);
    }

    #[test]
    fn a_named_api_key_variable_must_be_set() {
        let name = "EGCFG_TEST_API_KEY_THAT_NO_ONE_SETS";
        let err = api_key(Some(name)).unwrap_err().to_string();
        assert!(
            err.contains(&format!("variable {name} is not set")),
            "{err}"
        );
        assert_eq!(
            model_args(&["--api-key-env", name]).api_key_env.as_deref(),
            Some(name)
        );
        assert_eq!(model_args(&[]).api_key_env, None);
    }

    #[test]
    fn the_kind_is_detected_unless_named() {
        let detected = model_args(&["--endpoint", "http://a:1"]).endpoint_kind;
        assert_eq!(server_kind(detected), None);
        for (name, kind) in [
            ("llama-server", ServerKind::LlamaServer),
            ("openai", ServerKind::OpenAi),
            ("sglang", ServerKind::Sglang),
        ] {
            let args = model_args(&["--endpoint", "http://a:1", "--endpoint-kind", name]);
            assert_eq!(server_kind(args.endpoint_kind), Some(kind), "{name}");
        }
    }
}
