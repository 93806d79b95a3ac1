//! Turning `--model` or `--endpoint` flags into a running engine.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use egcfg_engine::served::ClientConfig;
use egcfg_engine::{Engine, EngineConfig, LlamaEngine, ServedConfig, ServedEngine};
use egcfg_models::{FetchOptions, Models};

use crate::flags::{EndpointKind, ModelArgs};

/// The engine the flags name: the served model at `--endpoint`, or else the
/// local model, resolved (fetching a known one on first use) and loaded with
/// room for `n_seq_max` live sequences (for a solve,
/// [`egcfg_method::sequences_needed`]).
pub fn engine(args: &ModelArgs, n_seq_max: usize) -> Result<Arc<dyn Engine>> {
    match &args.endpoint[..] {
        [] => Ok(local(args, n_seq_max)?),
        [endpoint] => served(args, endpoint),
        several => bail!(
            "{} endpoints were given, but egcfg uses one server so far; \
             give one --endpoint",
            several.len()
        ),
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

/// The model served at `endpoint`.
fn served(args: &ModelArgs, endpoint: &str) -> Result<Arc<dyn Engine>> {
    let api_key = std::env::var(&args.api_key_env)
        .ok()
        .filter(|k| !k.is_empty());
    let config = ServedConfig {
        client: ClientConfig {
            api_key,
            ..ClientConfig::default()
        },
        ..ServedConfig::new(endpoint)
    };
    let engine = match args.endpoint_kind {
        EndpointKind::LlamaServer => ServedEngine::connect(config)
            .with_context(|| format!("connecting to the llama-server at {endpoint}"))?,
    };
    Ok(Arc::new(engine))
}
