//! Command-line flags: everything a user can type, and nothing else.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Write code line by line while running it.
///
/// egcfg implements EG-CFG (execution-guided classifier-free guidance): while a
/// local code model writes a function, it samples a few continuations of the
/// current line, runs them against the task's visible tests in a sandbox, shows
/// the model the line-by-line traces, and steers the next tokens towards what
/// the traces suggest. Several agents with different settings race; the first
/// program that passes every visible test wins.
///
/// On the small models measured (docs/tuning.md), plain best-of-N sampling,
/// filtered by the same visible tests under the same token budget, passed more
/// tasks, so that is what `solve` and `bench` run by default; `--method egcfg`
/// runs EG-CFG.
///
/// Start with `egcfg solve examples/tasks/second_largest.toml`; the default
/// model is fetched on first use.
#[derive(Debug, Parser)]
#[command(name = "egcfg", version, propagate_version = true)]
pub struct Cli {
    /// More log output (-v: info, -vv: debug, -vvv: trace). Logs go to stderr.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Solve one task file (JSON or TOML; see examples/tasks/): best-of-N
    /// sampling by default, EG-CFG with `--method egcfg`.
    Solve(SolveArgs),
    /// Plain generation from a prompt: the baseline EG-CFG is compared with.
    Generate(GenerateArgs),
    /// List, fetch and verify models.
    #[command(subcommand)]
    Model(ModelCommand),
    /// Run a benchmark dataset, or measure the engine or the executor.
    Bench(BenchArgs),
    /// Score samples made by any tool (EvalPlus or HumanEval JSON Lines) on
    /// a dataset's hidden tests, into a benchmark database.
    Evaluate(EvaluateArgs),
    /// Summarise a benchmark database as tables, or as an HTML page.
    Report(ReportArgs),
    /// Browse runs, tasks, attempts and guided tokens in a local web app.
    Explore(ExploreArgs),
    /// Show which sandbox layers work on this machine.
    Doctor,
}

/// How to load the model.
#[derive(Debug, Args, Clone)]
pub struct ModelArgs {
    /// A model name from `egcfg model list` (fetched on first use) or the path
    /// of a local GGUF file.
    #[arg(
        long,
        short,
        env = "EGCFG_MODEL",
        default_value = "qwen2.5-coder-0.5b-instruct"
    )]
    pub model: String,

    /// CPU threads for the model (default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub threads: Option<u32>,

    /// Context window in tokens, shared by all live sequences.
    #[arg(
        long,
        default_value_t = 16384,
        value_parser = clap::value_parser!(u32).range(1..=16_777_216),
        allow_negative_numbers = true
    )]
    pub ctx: u32,

    /// Use the model that inference servers host at these URLs instead of
    /// loading one (e.g. `http://127.0.0.1:8080`); `--model`, `--threads`
    /// and `--ctx` are then ignored. Repeat the flag or separate URLs by
    /// commas to spread the work over several servers of the same model.
    #[arg(long, value_delimiter = ',', env = "EGCFG_ENDPOINT")]
    pub endpoint: Vec<String>,

    /// The kind of server behind `--endpoint`; `auto` asks each server.
    #[arg(long, value_enum, default_value_t = EndpointKind::Auto)]
    pub endpoint_kind: EndpointKind,

    /// The environment variable that holds the endpoints' API key, sent as
    /// a bearer token [default: EGCFG_API_KEY, used when set]. A variable
    /// named here must be set.
    #[arg(long, value_name = "VARIABLE")]
    pub api_key_env: Option<String>,

    /// Seconds to wait for a server's answer before calling it stalled. One
    /// request may generate hundreds of tokens (three candidates of up to
    /// 512), which takes minutes on a busy CPU server; a task cut off by a
    /// stalled server is not recorded, and a resumed bench runs it again.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    pub endpoint_timeout: u64,
}

/// The inference servers egcfg can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EndpointKind {
    /// Detect the kind from what each server answers.
    Auto,
    /// llama.cpp's `llama-server`.
    LlamaServer,
    /// vLLM or another OpenAI-compatible server with vLLM's `/tokenize`.
    #[value(name = "openai")]
    OpenAi,
    /// SGLang.
    Sglang,
}

/// Flags of `egcfg solve`.
#[derive(Debug, Args)]
pub struct SolveArgs {
    /// The task file (TOML or JSON), or `-` to read it from standard input.
    pub task: PathBuf,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub options: MethodArgs,

    /// Print one JSON object (code, visible-test results, winner, costs)
    /// instead of the bare program.
    #[arg(long)]
    pub json: bool,

    /// Print an account of every attempt: its answer, visible-test results
    /// and why it stopped, and for guided attempts (`--method egcfg`) each
    /// line's candidates, traces and guided choices.
    #[arg(long)]
    pub explain: bool,

    /// Write the full generation record (JSON) to this file for replay
    /// (checked before the solve starts; only an earlier record is replaced).
    #[arg(long)]
    pub record: Option<PathBuf>,
}

/// How EG-CFG solves a task: agents, budgets and decoding knobs, shared by
/// `egcfg solve` and `egcfg bench`.
#[derive(Debug, Args, Clone)]
pub struct MethodArgs {
    /// The agents: a TOML grid file (see examples/agents.toml), or
    /// `reference` for the reference implementation's 192-attempt grid
    /// (default: a CPU-sized grid chosen on MBPP train, see docs/tuning.md).
    #[arg(long)]
    pub agents: Option<PathBuf>,

    /// Per task: start at most this many attempts.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..), allow_negative_numbers = true)]
    pub max_attempts: Option<u32>,

    /// Per task: stop after this many forward tokens (prefill, decode and
    /// candidates) over all attempts; 0 for no limit. Unlike --max-seconds it
    /// does not depend on the machine's speed or load. `egcfg bench` takes a
    /// comma-separated list (e.g. 3000,6000,12000,24000) and runs the same
    /// tasks at each budget into one database: the budget curve `egcfg
    /// report` draws. With `--method sample` on a local model only the
    /// largest budget runs; each smaller one is derived exactly from its
    /// records (its answers run in lock-step, so a smaller budget's run is a
    /// prefix of the largest's) and recorded as a run of its own, marked as
    /// derived. EG-CFG and the baseline, and any method on a served model,
    /// run every budget.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = token_budget,
        allow_negative_numbers = true,
        default_values_t = [egcfg_method::DEFAULT_TASK_TOKENS]
    )]
    pub max_tokens: Vec<u64>,

    /// Per task: stop after this many seconds (a positive number; fractions
    /// allowed).
    #[arg(long, value_parser = parse_seconds, allow_negative_numbers = true)]
    pub max_seconds: Option<Duration>,

    /// Attempts run at once; they share the model's batched decode.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub concurrency: u16,

    /// Token cap of the execution-trace block the model is shown (every
    /// refresh prefills it again, so it sets the cost of a guided line).
    #[arg(long)]
    pub signal_tokens: Option<usize>,

    /// Events (executed lines, returns, exceptions) kept per trace; fewer
    /// events let more candidates and tests into the capped block.
    #[arg(long)]
    pub trace_events: Option<usize>,

    /// How the trace block lays out its runs; `by-candidate` writes each
    /// candidate's program once, above the traces of its tests, and
    /// `shared-code` also writes the lines all programs start with once,
    /// for fewer prefilled tokens per guided line [default: per-run].
    #[arg(long, value_enum)]
    pub signal_layout: Option<BlockLayout>,

    /// When not one whole run fits the trace block's cap, show the first
    /// run with its trace cut to the lines that fit, rather than no block
    /// (which leaves the line unguided).
    #[arg(long)]
    pub cut_to_fit: bool,

    /// How traces are written for the model [default: changed-state].
    #[arg(long, value_enum)]
    pub trace_format: Option<TraceStyle>,

    /// Keep only the k most likely tokens before guidance (0: all)
    /// [default: 0].
    #[arg(long)]
    pub top_k: Option<usize>,

    /// Stop an attempt early when its candidates keep agreeing on one
    /// finished program.
    #[arg(long)]
    pub early_stop: bool,

    /// Seed mixed into every random choice (with the task and agent
    /// settings); the same seed reproduces the same run.
    #[arg(long, default_value_t = 0)]
    pub seed: u32,

    /// When a guided attempt may start: `always` (while budget is left), or
    /// `affordable` (only when the budget left can carry it and the guided
    /// attempts already running to their end at their expected cost)
    /// [default: always].
    #[arg(long, value_enum)]
    pub start_rule: Option<StartRuleArg>,

    /// How to solve each task: best-of-N sampling filtered by the visible
    /// tests, EG-CFG, greedy decoding, or sampling first and EG-CFG with
    /// the budget it leaves. Sampling is the default because it passed
    /// the most tasks at every budget on the MBPP train curves of
    /// qwen2.5-coder 0.5B and 1.5B (docs/tuning.md, "The decision");
    /// `--method egcfg` runs the paper's execution-guided decoding.
    #[arg(long, value_enum, default_value_t = Method::Sample)]
    pub method: Method,

    /// With `--method sample-then-egcfg`: the share of the token budget
    /// (and of `--max-attempts`) sampling may spend before the guided
    /// attempts start, above 0 and below 1 [default: 0.5].
    #[arg(long, value_parser = parse_share)]
    pub sample_share: Option<f32>,
}

/// When an attempt may start (the method's `StartRule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StartRuleArg {
    /// Whenever a worker is free and budget is left.
    Always,
    /// A guided attempt only when the budget can carry it to its end.
    Affordable,
}

/// How the trace block lays out its (candidate, test) runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BlockLayout {
    /// Program, invocation and trace for every run (the reference's layout).
    PerRun,
    /// Each candidate's program once, then the invocation and trace of each
    /// of its runs.
    ByCandidate,
    /// As by-candidate, with the lines every program starts with written
    /// once, first.
    SharedCode,
}

/// How execution traces are rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TraceStyle {
    /// One line per executed line with the variables it changed (ours);
    /// `improved` is its earlier name.
    #[value(name = "changed-state", alias = "improved")]
    ChangedState,
    /// The reference implementation's text, for reproducing the paper.
    Compat,
}

/// Flags of `egcfg generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// The prompt text, the path of a file holding it, or `-` for standard
    /// input.
    pub prompt: String,

    #[command(flatten)]
    pub model: ModelArgs,

    /// Complete the text as it is instead of wrapping it in the model's chat
    /// template.
    #[arg(long)]
    pub raw: bool,

    /// Stop after this many new tokens.
    #[arg(long, default_value_t = 512)]
    pub max_tokens: usize,

    /// Stop when this text appears (may be repeated).
    #[arg(long)]
    pub stop: Vec<String>,

    /// Sampling temperature; 0 decodes greedily.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f32,

    /// Nucleus sampling mass (with --temperature > 0).
    #[arg(long, default_value_t = 0.95)]
    pub top_p: f32,

    /// Seed for sampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// `egcfg model ...`.
#[derive(Debug, Subcommand)]
pub enum ModelCommand {
    /// List known models and whether they are installed.
    List,
    /// Download (or assemble) a model and verify its official checksum.
    Fetch {
        /// A name from `egcfg model list`.
        name: String,
    },
    /// Re-hash an installed model against its official checksum.
    Verify {
        /// A name from `egcfg model list`.
        name: String,
    },
    /// Print where an installed model lives (fails when not installed).
    Path {
        /// A name from `egcfg model list`.
        name: String,
    },
}

/// What `egcfg bench` measures.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Measure the engine or the executor instead of running a dataset.
    #[command(subcommand)]
    pub target: Option<SpeedTarget>,

    #[command(flatten)]
    pub run: BenchRunArgs,
}

/// Speed measurements of one part (no dataset involved).
#[derive(Debug, Subcommand)]
pub enum SpeedTarget {
    /// Prefill and decode tokens/s at batch 1, 2, 4, 8, and the cost of a fork.
    Engine {
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Traced executions/s through the sandboxed fork-server pool and through
    /// a fresh interpreter per execution.
    Exec {
        /// Traced executions through the fork-server pool.
        #[arg(long, default_value_t = 2000)]
        executions: usize,
        /// Executions with a fresh interpreter each (slower; fewer suffice).
        #[arg(long, default_value_t = 150)]
        spawn_executions: usize,
    },
}

/// The solving method of a solve or a benchmark run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Method {
    /// Greedy decoding with the instruct prompt (γ = 0), no execution.
    Baseline,
    /// EG-CFG with the agent grid.
    Egcfg,
    /// Whole answers sampled from both prompts at a seeded schedule of
    /// temperatures, side by side in one batch, until one passes every
    /// visible test or the token budget is spent; the same selection as
    /// EG-CFG. No attempt is guided, so `--agents` and the other flags of
    /// guided attempts are refused; `--concurrency` answers decode at once.
    Sample,
    /// Sampling as `sample` under `--sample-share` of the token budget,
    /// then, when no answer passed every visible test, EG-CFG's agents
    /// with the rest of it (their greedy attempt left out: sampling's
    /// first answer is the same decode).
    SampleThenEgcfg,
}

impl Method {
    /// The method's name in results databases and reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Baseline => "baseline",
            Method::Egcfg => "egcfg",
            Method::Sample => "sample",
            Method::SampleThenEgcfg => "sample-then-egcfg",
        }
    }
}

/// Flags of a dataset run.
#[derive(Debug, Args)]
pub struct BenchRunArgs {
    /// List the datasets and exit.
    #[arg(long)]
    pub list_datasets: bool,

    /// The dataset and split, e.g. `mbpp:validation`, or `jsonl:PATH`.
    #[arg(long, required_unless_present = "list_datasets")]
    pub dataset: Option<String>,

    /// Run only the first N tasks (in dataset order).
    #[arg(long, conflicts_with = "ids", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,

    /// Run only these task ids (comma separated).
    #[arg(long, value_delimiter = ',', value_parser = task_id)]
    pub ids: Vec<String>,

    #[command(flatten)]
    pub model: ModelArgs,

    /// The results database (created when missing; runs resume from it).
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,

    /// Also write the chosen programs to this file as EvalPlus samples
    /// (JSON Lines of `task_id` and `solution`), for other harnesses.
    #[arg(long)]
    pub samples_out: Option<PathBuf>,

    /// Tasks solved at once. Default: 1 with a local model; with
    /// `--endpoint`, 2 per endpoint, since this machine then only runs the
    /// sandbox. Results do not depend on it, only the order tasks finish in.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tasks_in_flight: Option<u32>,

    #[command(flatten)]
    pub options: MethodArgs,
}

impl BenchRunArgs {
    /// `--tasks-in-flight`, or its default for where the model runs.
    pub fn tasks_in_flight(&self) -> usize {
        match self.tasks_in_flight {
            Some(n) => n as usize,
            None if self.model.endpoint.is_empty() => 1,
            None => 2 * self.model.endpoint.len(),
        }
    }
}

/// Where benchmark results go unless `--db` says otherwise.
const DEFAULT_DB: &str = "egcfg-bench.sqlite";

/// Flags of `egcfg evaluate`.
#[derive(Debug, Args)]
pub struct EvaluateArgs {
    /// The samples: JSON Lines with `task_id` and either `solution` (a whole
    /// program, EvalPlus) or `completion` (text after the prompt, HumanEval).
    /// Several lines for one task are scored as its attempts (pass@k).
    pub samples: PathBuf,

    /// The dataset the samples answer, e.g. `humaneval` or `mbpp:test`.
    #[arg(long)]
    pub dataset: String,

    /// What made the samples, shown as the run's model in reports
    /// (default: the samples file's name).
    #[arg(long)]
    pub name: Option<String>,

    /// The results database (created when missing; the same samples resume).
    #[arg(long, default_value = DEFAULT_DB)]
    pub db: PathBuf,
}

/// Flags of `egcfg explore`.
#[derive(Debug, Args)]
pub struct ExploreArgs {
    /// A results database from `egcfg bench` (it may still be running) or a
    /// record from `egcfg solve --record`.
    pub file: PathBuf,

    /// The port on 127.0.0.1 (0: any free port; the address is printed).
    #[arg(long, default_value_t = egcfg_explore::DEFAULT_PORT)]
    pub port: u16,
}

/// Flags of `egcfg report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The results database written by `egcfg bench`.
    pub db: PathBuf,

    /// Also write a self-contained HTML page with charts to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,

    /// Leave the runs with this config hash (as the tables print it) out of
    /// every table and of the budget curve, whose points count only the
    /// tasks every run finished; comma-separated or repeated.
    #[arg(long, value_name = "CONFIG_HASH", value_delimiter = ',')]
    pub leave_out: Vec<String>,
}

/// The longest `--max-seconds` accepted: a year, far beyond any run, and
/// safely inside what a [`Duration`] and the clocks can hold.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// Parses `--sample-share`: a fraction strictly between 0 and 1 (at 0
/// sampling would not start, at 1 the guided attempts never would).
fn parse_share(text: &str) -> Result<f32, String> {
    let share: f32 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number (give a share such as 0.5)"))?;
    if !(share > 0.0 && share < 1.0) {
        return Err(format!(
            "`{text}` is no share of the budget; give a number above 0 and below 1, such as 0.5"
        ));
    }
    Ok(share)
}

/// Parses a positive, finite number of seconds; zero, negative, `NaN`,
/// infinite and absurdly large values are refused with the accepted range,
/// since none of them is a budget a run could keep.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds (e.g. 90 or 2.5)"))?;
    if !(seconds > 0.0 && seconds <= MAX_SECONDS) {
        return Err(format!(
            "`{text}` is no usable time limit; give a number of seconds above 0 and at most {MAX_SECONDS:.0} (a year)"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Parses one budget of `--max-tokens`: a whole number of forward tokens,
/// 0 for none; a negative, fractional or empty one is refused with an
/// example.
fn token_budget(text: &str) -> Result<u64, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "`{text}` is no token budget; give whole numbers of forward tokens, 0 for no limit, \
             separated by commas (e.g. 3000,6000,12000)"
        )
    })
}

/// Parses one id of `--ids`, trimmed; an empty one (two commas in a row,
/// or one at an end) is refused here rather than looked up as a task.
fn task_id(text: &str) -> Result<String, String> {
    let id = text.trim();
    if id.is_empty() {
        return Err("an id is empty; separate ids by single commas, e.g. Mbpp/511,Mbpp/512".into());
    }
    Ok(id.to_string())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn an_empty_task_id_is_refused_and_ids_are_trimmed() {
        let parse =
            |ids: &str| Cli::try_parse_from(["egcfg", "bench", "--dataset", "mbpp", "--ids", ids]);
        for ids in ["Mbpp/511,,Mbpp/512", "Mbpp/511,", ","] {
            let err = parse(ids).unwrap_err().to_string();
            assert!(err.contains("an id is empty"), "{ids}: {err}");
        }
        match parse("Mbpp/511, Mbpp/512").unwrap().command {
            Command::Bench(args) => assert_eq!(args.run.ids, ["Mbpp/511", "Mbpp/512"]),
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn a_budget_that_is_no_whole_number_of_tokens_is_refused_with_an_example() {
        let parse = |budgets: &str| {
            Cli::try_parse_from([
                "egcfg",
                "bench",
                "--dataset",
                "mbpp",
                "--max-tokens",
                budgets,
            ])
        };
        for budgets in ["-5", "3000,-1", "1.5", "3000,,6000", "lots"] {
            let err = parse(budgets).unwrap_err().to_string();
            assert!(
                err.contains("is no token budget") && err.contains("3000,6000,12000"),
                "{budgets}: {err}"
            );
        }
        match parse("6000, 3000,0").unwrap().command {
            Command::Bench(args) => assert_eq!(args.run.options.max_tokens, [6000, 3000, 0]),
            other => panic!("parsed as {other:?}"),
        }
    }
}
