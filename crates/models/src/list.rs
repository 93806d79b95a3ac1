//! What `egcfg model list` shows.

use std::path::PathBuf;

use crate::registry::Registry;
use crate::store::Store;

/// One registered model and its state in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelEntry {
    /// Canonical name.
    pub name: String,
    /// Other accepted names.
    pub aliases: Vec<String>,
    /// One-line description.
    pub description: String,
    /// Weight quantization (`Q4_K_M`).
    pub quantization: String,
    /// File size in bytes.
    pub size: u64,
    /// SPDX licence identifier.
    pub licence: String,
    /// Upstream repository.
    pub upstream: String,
    /// Whether the file is in the store and unchanged since it was verified.
    pub installed: bool,
    /// Where the file is, or will be once fetched.
    pub path: PathBuf,
}

/// Every registered model, in registry order, with its store state.
pub(crate) fn list(registry: &Registry, store: &Store) -> Vec<ModelEntry> {
    registry
        .models()
        .iter()
        .map(|model| ModelEntry {
            name: model.name.clone(),
            aliases: model.aliases.clone(),
            description: model.description.clone(),
            quantization: model.quantization.clone(),
            size: model.size,
            licence: model.licence.clone(),
            upstream: model.upstream.clone(),
            installed: store.is_installed(model),
            path: store.model_path(model),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use crate::registry::Source;
    use crate::testing::{model_bytes, spec, Sandbox};

    #[test]
    fn lists_every_model_in_order_with_its_state() {
        let sandbox = Sandbox::new();
        let bytes = model_bytes(1024, 3);
        let source = sandbox.file("b.gguf", &bytes);
        let a = spec("a", b"GGUF", vec![]);
        let b = spec("b", &bytes, vec![Source::LocalFile(source)]);
        let models = sandbox.models(vec![a.clone(), b.clone()]);
        models.fetch("b").unwrap();

        let entries = models.list();

        let summary: Vec<(&str, bool, u64)> = entries
            .iter()
            .map(|e| (e.name.as_str(), e.installed, e.size))
            .collect();
        assert_eq!(summary, [("a", false, 4), ("b", true, 1024)]);
        assert_eq!(entries[0].path, models.store().model_path(&a));
        assert_eq!(entries[1].path, models.store().model_path(&b));
        assert_eq!(entries[1].licence, "MIT");
    }
}
