//! What identifies a run, and the hash that names its configuration.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What identifies a run: the same key on the same database resumes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunKey {
    /// Dataset name, e.g. `mbpp`.
    pub dataset: String,
    /// Split, e.g. `validation`, or `all`.
    pub split: String,
    /// Method name, e.g. `baseline` or `egcfg`.
    pub method: String,
    /// Model name or path, as the user gave it.
    pub model: String,
    /// Everything else that changes the outcome (agent grid, sampling,
    /// limits); hashed into the key.
    pub config: serde_json::Value,
}

impl RunKey {
    /// The config's hash: sha256 of its canonical JSON (keys sorted), first
    /// 16 hex digits.
    pub fn config_hash(&self) -> String {
        let mut text = String::new();
        canonical_json(&self.config, &mut text);
        hex::encode(&Sha256::digest(text.as_bytes())[..8])
    }
}

impl std::fmt::Display for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{} {} {} [{}]",
            self.dataset,
            self.split,
            self.method,
            self.model,
            self.config_hash()
        )
    }
}

/// JSON with object keys in sorted order, whatever serde_json's map order.
fn canonical_json(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use crate::store::tests::key;

    #[test]
    fn config_hash_ignores_key_order() {
        let mut other = key("x");
        other.config = serde_json::json!({"a": [1, {"x": 1, "y": 2}], "b": 1});
        assert_eq!(key("x").config_hash(), other.config_hash());
        other.config = serde_json::json!({"a": [1, {"x": 1, "y": 3}], "b": 1});
        assert_ne!(key("x").config_hash(), other.config_hash());
        assert_eq!(key("x").config_hash().len(), 16);
    }
}
