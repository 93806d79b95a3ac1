//! [`Models`]: the registry, the store and fetch options in one handle.

use std::path::PathBuf;

use crate::error::Error;
use crate::fetch::{self, FetchOptions};
use crate::list::{self, ModelEntry};
use crate::registry::{ModelSpec, Registry};
use crate::resolve;
use crate::store::Store;

/// Everything needed to name, fetch, check and list models.
#[derive(Clone, Debug)]
pub struct Models {
    registry: Registry,
    store: Store,
    options: FetchOptions,
}

impl Models {
    /// A handle over any registry and store (tests build their own).
    pub fn new(registry: Registry, store: Store, options: FetchOptions) -> Self {
        Self {
            registry,
            store,
            options,
        }
    }

    /// The built-in registry over the store at `$EGCFG_HOME` (or the user
    /// cache directory).
    pub fn from_env(options: FetchOptions) -> Result<Self, Error> {
        Ok(Self::new(Registry::builtin(), Store::from_env()?, options))
    }

    /// The registry in use.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The store in use.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The model answering to `name`, or an error listing the known names.
    pub fn spec(&self, name: &str) -> Result<&ModelSpec, Error> {
        self.registry.find(name).ok_or_else(|| Error::UnknownModel {
            name: name.to_owned(),
            known: self.registry.names(),
        })
    }

    /// Makes the named model present and verified in the store (downloading
    /// it if needed) and returns its path.
    pub fn fetch(&self, name: &str) -> Result<PathBuf, Error> {
        fetch::fetch(&self.store, self.spec(name)?, &self.options)
    }

    /// Resolves a `--model` argument: a registry name becomes a stored
    /// path (fetched on first use); a file path must be a readable GGUF file.
    pub fn resolve(&self, model: &str) -> Result<PathBuf, Error> {
        resolve::resolve(model, &self.registry, &self.store, &self.options)
    }

    /// Re-hashes the named model's stored file against its official digest.
    pub fn verify(&self, name: &str) -> Result<PathBuf, Error> {
        self.store.verify(self.spec(name)?)
    }

    /// Every registered model and whether it is installed.
    pub fn list(&self) -> Vec<ModelEntry> {
        list::list(&self.registry, &self.store)
    }
}
