//! Agent configurations, the grid file that lists them, the schedule order
//! and per-attempt seeds (docs/method.md §10).
//!
//! A grid file is TOML. The `[grid]` table takes lists and expands to their
//! product; `[[agent]]` tables add single configurations. Example:
//!
//! ```toml
//! [grid]
//! t = [0.7, 1.2]
//! s = [3]
//! d = [2, "inf"]      # lines sampled after the current one; "inf" = no limit
//! k = [1]
//! style = ["instruct", "long_code"]
//! gamma = [0.0, 0.5, 1.0, 3.0]
//!
//! [[agent]]
//! t = 0.9
//! s = 2
//! d = 4
//! k = 2
//! style = "long_code"
//! gamma = [1.0]
//! ```

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::error::MethodError;

/// Which prompt the attempt uses (docs/method.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptStyle {
    /// Short instruction with three worked examples.
    Instruct,
    /// Rules for writing the function over many short, runnable lines.
    LongCode,
}

impl PromptStyle {
    /// The reference's config-name suffix for this style.
    pub fn suffix(self) -> &'static str {
        match self {
            PromptStyle::Instruct => "ln",
            PromptStyle::LongCode => "lci_ln",
        }
    }
}

/// How many lines a candidate samples after finishing the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Horizon {
    /// Exactly this many more lines (so `d + 1` newline-terminated lines).
    Lines(u32),
    /// No line limit: the candidate runs to a fence, EOS or the token cap.
    Unlimited,
}

impl Horizon {
    /// The number of newlines after which a candidate stops, if any.
    pub fn newline_limit(self) -> Option<usize> {
        match self {
            Horizon::Lines(d) => Some(d as usize + 1),
            Horizon::Unlimited => None,
        }
    }
}

impl fmt::Display for Horizon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Horizon::Lines(d) => write!(f, "{d}"),
            Horizon::Unlimited => f.write_str("inf"),
        }
    }
}

impl Serialize for Horizon {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Horizon::Lines(d) => s.serialize_u32(*d),
            Horizon::Unlimited => s.serialize_str("inf"),
        }
    }
}

impl<'de> Deserialize<'de> for Horizon {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Lines(u32),
            Word(String),
        }
        match Raw::deserialize(d)? {
            Raw::Lines(n) => Ok(Horizon::Lines(n)),
            Raw::Word(w) if w == "inf" => Ok(Horizon::Unlimited),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "horizon must be a number of lines or \"inf\", not {w:?}"
            ))),
        }
    }
}

/// One agent configuration (everything but γ).
///
/// Serialised with the paper's one-letter names (`t`, `s`, `d`, `k`), as
/// grid files, records and bench databases have always spelled them: a
/// bench run is keyed by this JSON, so it must not change.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AgentConfig {
    /// Candidate sampling temperature (`t`).
    #[serde(rename = "t")]
    pub temperature: f32,
    /// Candidates sampled per refresh (`s`).
    #[serde(rename = "s")]
    pub candidates: usize,
    /// Candidate horizon in lines after the current one (`d`).
    #[serde(rename = "d")]
    pub horizon: Horizon,
    /// Refresh the signal at every `k`-th new line (`k`).
    #[serde(rename = "k")]
    pub refresh_interval: usize,
    /// Prompt style.
    pub style: PromptStyle,
}

impl AgentConfig {
    /// The reference-style name, e.g. `ns3t0.7d2k1_ln`.
    pub fn name(&self) -> String {
        format!(
            "ns{}t{}d{}k{}_{}",
            self.candidates,
            self.temperature,
            self.horizon,
            self.refresh_interval,
            self.style.suffix()
        )
    }
}

/// One attempt to run: a configuration at one γ, with its seed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AttemptSpec {
    /// Position in the schedule (0 = first).
    pub index: usize,
    /// The configuration.
    pub config: AgentConfig,
    /// Guidance strength.
    pub gamma: f32,
    /// Seed of every random choice the attempt makes.
    pub seed: u64,
    /// Nucleus mass of an answer that is *sampled* at `config.temperature`
    /// (the `sample` method, [`crate::sample`]); `None` for EG-CFG's
    /// attempts, whose answers are decoded greedily or with guidance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_top_p: Option<f32>,
}

impl AttemptSpec {
    /// The attempt's name: config name plus γ, e.g. `ns3t0.7d2k1_ln@g0.5`;
    /// for a sampled answer its index, temperature, nucleus mass and prompt
    /// style, e.g. `sample3_t0.8p0.95_lci_ln`.
    pub fn name(&self) -> String {
        match self.answer_top_p {
            Some(top_p) => format!(
                "sample{}_t{}p{}_{}",
                self.index,
                self.config.temperature,
                top_p,
                self.config.style.suffix()
            ),
            None => format!("{}@g{}", self.config.name(), self.gamma),
        }
    }
}

/// A set of agent configurations, each with the γ values to run.
///
/// Two grids are built in: [`Grid::default`], sized for a CPU and chosen on
/// MBPP train tasks, and [`Grid::reference`], the reference implementation's
/// shipped grid, for reproducing the paper. Defaults may only ever be tuned
/// on MBPP train (601–974) and validation (511–600) tasks, never on test
/// tasks (docs/method.md §10, V3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// The product of these lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<GridProduct>,
    /// Single extra configurations.
    #[serde(default, rename = "agent", skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<GridAgent>,
}

/// Lists whose product forms configurations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridProduct {
    /// Temperatures.
    pub t: Vec<f32>,
    /// Candidate counts.
    pub s: Vec<usize>,
    /// Horizons.
    pub d: Vec<Horizon>,
    /// Refresh intervals.
    pub k: Vec<usize>,
    /// Prompt styles.
    pub style: Vec<PromptStyle>,
    /// γ values, run in this order for each configuration.
    pub gamma: Vec<f32>,
}

impl GridProduct {
    /// The names of the lists that hold no value (any one of them empties
    /// the whole product).
    fn empty_lists(&self) -> Vec<&'static str> {
        [
            ("t", self.t.is_empty()),
            ("s", self.s.is_empty()),
            ("d", self.d.is_empty()),
            ("k", self.k.is_empty()),
            ("style", self.style.is_empty()),
            ("gamma", self.gamma.is_empty()),
        ]
        .into_iter()
        .filter_map(|(name, empty)| empty.then_some(name))
        .collect()
    }
}

/// One explicitly listed configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridAgent {
    /// Temperature.
    pub t: f32,
    /// Candidates per refresh.
    pub s: usize,
    /// Horizon.
    pub d: Horizon,
    /// Refresh interval.
    pub k: usize,
    /// Prompt style.
    pub style: PromptStyle,
    /// γ values, in order.
    pub gamma: Vec<f32>,
}

/// The default grid as TOML: greedy decoding first (it is the baseline and
/// costs a few hundred tokens), then the two guided attempts tried on MBPP
/// train, cheaper first, within the default token budget. How it was chosen,
/// and what it did not show: `docs/tuning.md`.
pub const DEFAULT_GRID_TOML: &str = r#"
[[agent]]
t = 0.7
s = 3
d = 2
k = 1
style = "instruct"
gamma = [0.0, 1.0]

[[agent]]
t = 0.7
s = 3
d = 2
k = 1
style = "long_code"
gamma = [1.0]
"#;

/// The reference implementation's shipped grid as TOML: 48 configurations ×
/// 4 γ, up to 192 attempts per task (docs/method.md §10).
pub const REFERENCE_GRID_TOML: &str = r#"
[grid]
t = [0.7, 0.75, 0.85, 0.95, 1.2, 1.5]
s = [3]
d = [2, 3, 6, 8]
k = [1]
style = ["instruct", "long_code"]
gamma = [0.0, 0.5, 1.0, 3.0]
"#;

impl Default for Grid {
    fn default() -> Self {
        Grid::from_toml(DEFAULT_GRID_TOML).expect("the embedded default grid is valid")
    }
}

impl Grid {
    /// The reference implementation's shipped grid ([`REFERENCE_GRID_TOML`]).
    pub fn reference() -> Grid {
        Grid::from_toml(REFERENCE_GRID_TOML).expect("the embedded reference grid is valid")
    }

    /// Parse and validate a grid from TOML text.
    pub fn from_toml(text: &str) -> Result<Grid, MethodError> {
        let grid: Grid = toml::from_str(text).map_err(|e| MethodError::Grid(e.to_string()))?;
        grid.validate()?;
        Ok(grid)
    }

    /// Read a grid file.
    pub fn from_file(path: &Path) -> Result<Grid, MethodError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| MethodError::Grid(format!("cannot read {}: {e}", path.display())))?;
        // The file's name goes inside the grid error's own message, which
        // already says "invalid agent grid".
        Grid::from_toml(&text).map_err(|e| match e {
            MethodError::Grid(message) => {
                MethodError::Grid(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// A grid of one configuration.
    pub fn single(config: AgentConfig, gammas: Vec<f32>) -> Grid {
        Grid {
            grid: None,
            agents: vec![GridAgent {
                t: config.temperature,
                s: config.candidates,
                d: config.horizon,
                k: config.refresh_interval,
                style: config.style,
                gamma: gammas,
            }],
        }
    }

    fn validate(&self) -> Result<(), MethodError> {
        let bad = |m: &str| Err(MethodError::Grid(m.to_string()));
        if self.grid.is_none() && self.agents.is_empty() {
            return bad("the grid lists no configuration; add a [grid] table or [[agent]] entries");
        }
        if let Some(product) = &self.grid {
            let empty = product.empty_lists();
            if !empty.is_empty() {
                return Err(MethodError::Grid(format!(
                    "[grid] list(s) {} are empty, so the grid multiplies out to no attempt; give each at least one value",
                    empty.join(", ")
                )));
            }
        }
        for (config, gammas) in self.configurations() {
            if config.candidates == 0 {
                return bad("s (candidates per refresh) must be at least 1");
            }
            if config.refresh_interval == 0 {
                return bad("k (refresh interval in lines) must be at least 1");
            }
            if !(config.temperature >= 0.0 && config.temperature.is_finite()) {
                return bad("t (temperature) must be a finite number ≥ 0");
            }
            if gammas.is_empty() || gammas.iter().any(|g| !(*g >= 0.0 && g.is_finite())) {
                return bad("every configuration needs γ values, each finite and ≥ 0");
            }
        }
        Ok(())
    }

    /// Every configuration with its γ list: the product in schedule order
    /// (sorted keys d, k, s, style, t; the last varies fastest), then the
    /// explicit agents in file order.
    pub fn configurations(&self) -> Vec<(AgentConfig, Vec<f32>)> {
        let mut out = Vec::new();
        if let Some(g) = &self.grid {
            for &d in &g.d {
                for &k in &g.k {
                    for &s in &g.s {
                        for &style in &g.style {
                            for &t in &g.t {
                                let config = AgentConfig {
                                    temperature: t,
                                    candidates: s,
                                    horizon: d,
                                    refresh_interval: k,
                                    style,
                                };
                                out.push((config, g.gamma.clone()));
                            }
                        }
                    }
                }
            }
        }
        for a in &self.agents {
            let config = AgentConfig {
                temperature: a.t,
                candidates: a.s,
                horizon: a.d,
                refresh_interval: a.k,
                style: a.style,
            };
            out.push((config, a.gamma.clone()));
        }
        out
    }

    /// The attempts of one task in schedule order, with their seeds. Within
    /// a configuration γ runs in the listed order. γ = 0 is the same plain
    /// greedy decode for every configuration of a prompt style, so only its
    /// first occurrence per style is scheduled.
    pub fn schedule(&self, task_id: &str, retry: u32) -> Vec<AttemptSpec> {
        let mut out: Vec<AttemptSpec> = Vec::new();
        let mut greedy_done: Vec<PromptStyle> = Vec::new();
        for (config, gammas) in self.configurations() {
            for gamma in gammas {
                if gamma == 0.0 {
                    if greedy_done.contains(&config.style) {
                        continue;
                    }
                    greedy_done.push(config.style);
                }
                out.push(AttemptSpec {
                    index: out.len(),
                    config,
                    gamma,
                    seed: attempt_seed(task_id, &config, gamma, retry),
                    answer_top_p: None,
                });
            }
        }
        out
    }
}

/// The seed of an attempt: the first 8 bytes of SHA-256 over the task id and
/// (t, s, d, k, style, γ, retry), so it is stable across runs and machines.
pub fn attempt_seed(task_id: &str, config: &AgentConfig, gamma: f32, retry: u32) -> u64 {
    let key = serde_json::json!([
        task_id,
        config.temperature,
        config.candidates,
        config.horizon,
        config.refresh_interval,
        config.style,
        gamma,
        retry
    ]);
    let digest = Sha256::digest(key.to_string().as_bytes());
    u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

/// A seed derived from a parent seed and a path of indices (refresh, sample).
pub fn derive_seed(parent: u64, path: &[u64]) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(parent.to_le_bytes());
    for p in path {
        hasher.update(p.to_le_bytes());
    }
    let digest = hasher.finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("sha256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_configs_serialise_with_the_papers_letters() {
        // Bench databases key their runs by this JSON: it must not change.
        let config = AgentConfig {
            temperature: 0.7,
            candidates: 3,
            horizon: Horizon::Lines(2),
            refresh_interval: 1,
            style: PromptStyle::Instruct,
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(json, r#"{"t":0.7,"s":3,"d":2,"k":1,"style":"instruct"}"#);
        assert_eq!(serde_json::from_str::<AgentConfig>(&json).unwrap(), config);
    }

    #[test]
    fn reference_grid_has_the_reference_shape_and_order() {
        let grid = Grid::reference();
        let configs = grid.configurations();
        assert_eq!(configs.len(), 48);
        let first = configs[0].0;
        assert_eq!(first.name(), "ns3t0.7d2k1_ln");
        assert_eq!(configs[5].0.name(), "ns3t1.5d2k1_ln");
        assert_eq!(configs[6].0.name(), "ns3t0.7d2k1_lci_ln");
        assert_eq!(configs[12].0.name(), "ns3t0.7d3k1_ln");
        let schedule = grid.schedule("mbpp/511", 0);
        // 48 × 4 attempts minus the 46 repeated γ=0 runs (one per style).
        assert_eq!(schedule.len(), 48 * 4 - 46);
        let gammas: Vec<f32> = schedule[..4].iter().map(|a| a.gamma).collect();
        assert_eq!(gammas, vec![0.0, 0.5, 1.0, 3.0]);
        assert_eq!(schedule[4].gamma, 0.5, "second config skips its γ=0");
        assert!(schedule.iter().enumerate().all(|(i, a)| a.index == i));
    }

    #[test]
    fn default_grid_starts_with_the_greedy_baseline() {
        let schedule = Grid::default().schedule("mbpp/601", 0);
        assert_eq!(schedule[0].gamma, 0.0);
        assert_eq!(schedule[0].config.style, PromptStyle::Instruct);
        assert!(schedule[1..].iter().all(|a| a.gamma > 0.0));
    }

    #[test]
    fn seeds_depend_on_every_key() {
        let c = Grid::reference().configurations()[0].0;
        let base = attempt_seed("t", &c, 0.5, 0);
        assert_eq!(base, attempt_seed("t", &c, 0.5, 0));
        assert_ne!(base, attempt_seed("u", &c, 0.5, 0));
        assert_ne!(base, attempt_seed("t", &c, 1.0, 0));
        assert_ne!(base, attempt_seed("t", &c, 0.5, 1));
        let other = AgentConfig {
            refresh_interval: 2,
            ..c
        };
        assert_ne!(base, attempt_seed("t", &other, 0.5, 0));
    }

    #[test]
    fn grid_file_with_agents_and_inf_horizon() {
        let grid = Grid::from_toml(
            "[[agent]]\nt = 0.9\ns = 2\nd = \"inf\"\nk = 2\nstyle = \"long_code\"\ngamma = [1.0]\n",
        )
        .unwrap();
        let configs = grid.configurations();
        assert_eq!(configs.len(), 1);
        assert_eq!(configs[0].0.horizon, Horizon::Unlimited);
        assert_eq!(configs[0].0.name(), "ns2t0.9dinfk2_lci_ln");
    }

    #[test]
    fn invalid_grids_are_explained() {
        let err = Grid::from_toml("").unwrap_err().to_string();
        assert!(err.contains("no configuration"), "{err}");
        let err = Grid::from_toml(
            "[[agent]]\nt = 0.9\ns = 0\nd = 2\nk = 1\nstyle = \"instruct\"\ngamma = [1.0]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("s (candidates"), "{err}");
        let err = Grid::from_toml(
            "[[agent]]\nt = 0.9\ns = 1\nd = \"all\"\nk = 1\nstyle = \"instruct\"\ngamma = [1.0]\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("inf"), "{err}");
    }

    #[test]
    fn a_bad_grid_file_is_named_once_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid.toml");
        std::fs::write(&path, "prompt = \"not a grid\"\n").unwrap();
        let err = Grid::from_file(&path).unwrap_err().to_string();
        assert_eq!(err.matches("invalid agent grid").count(), 1, "{err}");
        assert!(err.contains(&format!("{}: ", path.display())), "{err}");
        assert!(err.contains("unknown field `prompt`"), "{err}");
    }

    #[test]
    fn a_grid_list_left_empty_is_named() {
        let err = Grid::from_toml(
            "[grid]\nt = []\ns = [3]\nd = [2]\nk = [1]\nstyle = [\"instruct\"]\ngamma = []\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("t, gamma") && err.contains("empty"), "{err}");
    }
}
