//! Solve task files with a local GGUF model and print what it cost.
//!
//! A measurement tool for the method (the `egcfg` CLI is the user-facing
//! front end):
//!
//! ```text
//! cargo run --release -p egcfg-method --example solve_tasks -- \
//!     MODEL.gguf [--grid GRID.toml] [--threads N] [--ctx N] [--concurrency N] \
//!     [--explain] [--json DIR] TASK.json...
//! ```
//!
//! For every task it prints one line per attempt (forward tokens split by
//! kind, wall time per phase, the reference's estimated forward tokens on
//! the same trajectory) and the chosen program.

use std::path::PathBuf;
use std::sync::Arc;

use egcfg_engine::{Engine, EngineConfig, LlamaEngine};
use egcfg_executor::{Executor, ExecutorConfig};
use egcfg_method::{explain, solve, CodeRunner, Grid, ProgressEvent, SolveOptions};
use egcfg_task::Task;

struct Args {
    model: PathBuf,
    grid: Option<PathBuf>,
    threads: usize,
    ctx: usize,
    concurrency: usize,
    explain: bool,
    json: Option<PathBuf>,
    tasks: Vec<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mut args = Args {
        model: PathBuf::new(),
        grid: None,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        ctx: 8192,
        concurrency: 1,
        explain: false,
        json: None,
        tasks: Vec::new(),
    };
    let number = |v: Option<String>, flag: &str| {
        v.and_then(|v| v.parse::<usize>().ok())
            .ok_or(format!("{flag} needs a number"))
    };
    while let Some(a) = it.next() {
        match a.as_str() {
            "--grid" => args.grid = Some(it.next().ok_or("--grid needs a file")?.into()),
            "--threads" => args.threads = number(it.next(), "--threads")?,
            "--ctx" => args.ctx = number(it.next(), "--ctx")?,
            "--concurrency" => args.concurrency = number(it.next(), "--concurrency")?,
            "--explain" => args.explain = true,
            "--json" => args.json = Some(it.next().ok_or("--json needs a directory")?.into()),
            _ if args.model.as_os_str().is_empty() => args.model = a.into(),
            _ => args.tasks.push(a.into()),
        }
    }
    if args.model.as_os_str().is_empty() || args.tasks.is_empty() {
        return Err("usage: solve_tasks MODEL.gguf [options] TASK.json...".into());
    }
    Ok(args)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let engine: Arc<dyn Engine> = Arc::new(LlamaEngine::load(
        &args.model,
        EngineConfig {
            n_ctx: args.ctx,
            n_threads: args.threads,
            ..EngineConfig::default()
        },
    )?);
    let executor: Arc<dyn CodeRunner> = Arc::new(Executor::start(ExecutorConfig::default())?);
    let options = SolveOptions {
        grid: match &args.grid {
            Some(path) => Grid::from_file(path)?,
            None => Grid::default(),
        },
        concurrency: args.concurrency,
        ..SolveOptions::default()
    };
    let progress =
        |e: ProgressEvent| eprintln!("  {}", serde_json::to_string(&e).unwrap_or_default());
    for path in &args.tasks {
        let task = Task::from_file(path)?;
        let out = solve(&task, engine.clone(), executor.clone(), &options, &progress)?;
        for a in &out.attempts {
            let c = &a.cost;
            let t = &c.times;
            println!(
                "{}\t{}\tpassed {}/{}\tstop {:?}\tforward {} (prefill {}, decode {}, candidates {})\texec {}\twall {:.1}s (prefill {:.1}, decode {:.1}, sampling {:.1}, exec {:.2})\treference {} (uncond {}, cond {}, cand {} + {})\trefreshes {}",
                task.id,
                a.name,
                a.passed_count(),
                a.visible.len(),
                a.stop,
                c.forward_tokens(),
                c.prefill_tokens,
                c.decode_tokens,
                c.candidate_tokens,
                c.executions,
                t.total_s,
                t.prefill_s,
                t.guided_decode_s,
                t.sampling_s,
                t.execution_s,
                c.reference.forward_tokens(),
                c.reference.unconditional,
                c.reference.conditional,
                c.reference.candidate_prefill,
                c.reference.candidate_decode,
                a.refreshes.len(),
            );
        }
        println!(
            "{}\tTOTAL\tsolved {}\tattempts {}\thead {}\tforward {}\treference {}\twall {:.1}s\twinner {}",
            task.id,
            out.passed,
            out.cost.attempts_run,
            out.cost.head_prefill_tokens,
            out.cost.forward_tokens,
            out.cost.reference_forward_tokens,
            out.cost.wall_s,
            out.winner_name.as_deref().unwrap_or("-")
        );
        println!("{}\n", out.code);
        if args.explain {
            let piece = |t| {
                engine
                    .token_bytes(t)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default()
            };
            println!("{}", explain::explain_outcome(&out, &piece));
        }
        if let Some(dir) = &args.json {
            std::fs::create_dir_all(dir)?;
            let file = dir.join(format!("{}.json", task.id.replace('/', "_")));
            std::fs::write(file, serde_json::to_string(&out)?)?;
        }
    }
    Ok(())
}
