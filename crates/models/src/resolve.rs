//! Turning what the user typed after `--model` into a local GGUF path.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::fetch::{self, FetchOptions};
use crate::registry::Registry;
use crate::store::{io_error, Store};

/// The first four bytes of every GGUF file.
const GGUF_MAGIC: &[u8; 4] = b"GGUF";

/// A registry name (or alias) becomes the stored model's path, fetched on
/// first use; anything else must be an existing, readable GGUF file.
pub(crate) fn resolve(
    spec: &str,
    registry: &Registry,
    store: &Store,
    options: &FetchOptions,
) -> Result<PathBuf, Error> {
    if let Some(model) = registry.find(spec) {
        return fetch::fetch(store, model, options);
    }
    let path = Path::new(spec);
    if path.exists() {
        check_gguf(path)?;
        return Ok(path.to_owned());
    }
    if looks_like_path(spec) {
        return Err(Error::FileNotFound {
            path: path.to_owned(),
        });
    }
    Err(Error::UnknownModel {
        name: spec.to_owned(),
        known: registry.names(),
    })
}

/// Checks that `path` is a readable file that starts with the GGUF magic.
///
/// This is a quick sanity check, not validation: the engine still parses
/// the file when it loads it.
pub fn check_gguf(path: &Path) -> Result<(), Error> {
    let mut head = Vec::with_capacity(GGUF_MAGIC.len());
    File::open(path)
        .and_then(|file| file.take(GGUF_MAGIC.len() as u64).read_to_end(&mut head))
        .map_err(|e| io_error("cannot read", path, e))?;
    if head != GGUF_MAGIC {
        return Err(Error::NotGguf {
            path: path.to_owned(),
            found: head.escape_ascii().to_string(),
        });
    }
    Ok(())
}

/// Whether `spec` was clearly meant as a path rather than a model name.
fn looks_like_path(spec: &str) -> bool {
    spec.contains('/')
        || spec.contains(std::path::MAIN_SEPARATOR)
        || spec.to_ascii_lowercase().ends_with(".gguf")
}

#[cfg(test)]
mod tests {
    use crate::error::Error;
    use crate::registry::Source;
    use crate::testing::{model_bytes, spec, Sandbox};

    #[test]
    fn a_gguf_path_resolves_to_itself() {
        let sandbox = Sandbox::new();
        let path = sandbox.file("local.gguf", &model_bytes(64, 1));
        let models = sandbox.models(vec![]);

        assert_eq!(models.resolve(path.to_str().unwrap()).unwrap(), path);
    }

    #[test]
    fn a_file_that_is_not_gguf_is_refused_clearly() {
        let sandbox = Sandbox::new();
        let path = sandbox.file("weights.bin", b"PK\x03\x04 a zip, not a model");
        let tiny = sandbox.file("tiny.bin", b"GG");
        let models = sandbox.models(vec![]);

        let text = models
            .resolve(path.to_str().unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            text.contains("weights.bin is not a GGUF model file"),
            "{text}"
        );
        assert!(text.contains(r#"starts with "PK\\x03\\x04""#), "{text}");
        let error = models.resolve(tiny.to_str().unwrap()).unwrap_err();
        assert!(
            matches!(error, Error::NotGguf { ref found, .. } if found == "GG"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_name_lists_the_known_ones() {
        let sandbox = Sandbox::new();
        let models = sandbox.models(vec![
            spec("alpha", b"GGUF", vec![]),
            spec("beta", b"GGUF", vec![]),
        ]);

        let text = models.resolve("gamma").unwrap_err().to_string();

        assert_eq!(
            text,
            r#"unknown model "gamma"; known models: alpha, beta; or give the path of a .gguf file"#
        );
    }

    #[test]
    fn a_missing_path_is_not_mistaken_for_a_name() {
        let sandbox = Sandbox::new();
        let missing = sandbox.missing("absent.gguf");
        let models = sandbox.models(vec![]);

        let error = models.resolve(missing.to_str().unwrap()).unwrap_err();

        assert!(
            matches!(error, Error::FileNotFound { ref path } if *path == missing),
            "{error}"
        );
    }

    #[test]
    fn a_registry_name_is_fetched_into_the_store() {
        let sandbox = Sandbox::new();
        let bytes = model_bytes(2048, 2);
        let source = sandbox.file("source.gguf", &bytes);
        let model = spec("tiny", &bytes, vec![Source::LocalFile(source)]);
        let models = sandbox.models(vec![model.clone()]);

        let path = models.resolve("tiny").unwrap();

        assert_eq!(path, models.store().model_path(&model));
        assert_eq!(std::fs::read(path).unwrap(), bytes);
    }
}
