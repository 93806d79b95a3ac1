//! Turning `--model` flags into a running engine.

use std::sync::Arc;

use anyhow::{Context, Result};
use egcfg_engine::{EngineConfig, LlamaEngine};
use egcfg_models::{FetchOptions, Models};

use crate::flags::ModelArgs;

/// Resolve the model (fetching a known one on first use) and load it, with
/// room for `n_seq_max` live sequences (for a solve,
/// [`egcfg_method::sequences_needed`]).
pub fn engine(args: &ModelArgs, n_seq_max: usize) -> Result<Arc<LlamaEngine>> {
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
