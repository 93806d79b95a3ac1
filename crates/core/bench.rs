//! `egcfg bench`: dataset runs, and the engine and executor benchmarks.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use egcfg_bench::datasets::{self, plus::OutputOracle};
use egcfg_bench::{run_benchmark, DatasetSpec, RunKey, RunOptions, Selection, Store};
use egcfg_executor::{Executor, ExecutorConfig};
use egcfg_method::PromptStyle;

use crate::flags::{BenchArgs, BenchRunArgs, BenchTarget, Method};
use crate::load;
use crate::solver::MethodSolver;

pub fn run(args: BenchArgs) -> Result<ExitCode> {
    match args.target {
        Some(BenchTarget::Engine { model }) => engine(&model),
        Some(BenchTarget::Exec {
            executions,
            spawn_executions,
        }) => exec(executions, spawn_executions),
        None if args.run.list_datasets => list_datasets(),
        None => dataset(args.run),
    }
}

fn engine(model: &crate::flags::ModelArgs) -> Result<ExitCode> {
    let options = egcfg_engine::bench::BenchOptions::default();
    // The prompt, the largest batch of its forks, and one timed fork.
    let slots = options.batch_sizes.iter().copied().max().unwrap_or(1) + 2;
    let engine = load::engine(model, slots)?;
    let report = egcfg_engine::bench::run(engine.as_ref(), &options)?;
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn exec(executions: usize, spawn_executions: usize) -> Result<ExitCode> {
    let options = egcfg_executor::bench::BenchOptions {
        executions,
        spawn_executions,
        ..Default::default()
    };
    let report = egcfg_executor::bench::run(&options)?;
    eprintln!("isolation:\n{}", report.caps);
    eprintln!("traced lines per execution: {:.0}", report.lines_per_exec);
    println!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn list_datasets() -> Result<ExitCode> {
    println!(
        "{:<18} {:<34} {:<26} NOTE",
        "NAME", "SPLITS (TASKS)", "LICENCE"
    );
    for listing in datasets::list() {
        let splits: Vec<String> = listing
            .splits
            .iter()
            .map(|s| format!("{} ({})", s.split, s.tasks))
            .collect();
        println!(
            "{:<18} {:<34} {:<26} {}",
            listing.name,
            splits.join(", "),
            listing.licence,
            listing.note
        );
    }
    println!("\nAlso: jsonl:PATH for your own tasks in MBPP's or HumanEval's schema.");
    Ok(ExitCode::SUCCESS)
}

fn dataset(args: BenchRunArgs) -> Result<ExitCode> {
    let spec: DatasetSpec = args
        .dataset
        .as_deref()
        .context("--dataset is required")?
        .parse()?;
    // The database is checked (and created) before anything is loaded, so
    // a wrong --db costs nothing.
    let mut store = Store::open(&args.db)?;
    let selection = match (args.limit, args.ids.is_empty()) {
        (Some(n), _) => Selection::First(n as usize),
        (None, false) => Selection::Ids(args.ids.clone()),
        (None, true) => Selection::All,
    };
    // One sandbox serves the solver's visible-test traces and the hidden
    // tests; the EvalPlus oracle needs other limits, so it has its own.
    let executor = Arc::new(Executor::start(ExecutorConfig::default())?);
    let data = {
        let oracle_executor =
            Executor::start(OutputOracle::executor_config(ExecutorConfig::default()))?;
        let cache = egcfg_models::Store::from_env()?.root().join("cache");
        let mut oracle = OutputOracle::new(&oracle_executor, cache);
        datasets::load(&spec, &selection, Some(&mut oracle))?
    };
    for note in &data.notes {
        eprintln!("note: {note}");
    }

    let options = crate::options::solve_options(&args.options)?;
    let method_name = match args.method {
        Method::Baseline => "baseline",
        Method::Egcfg => "egcfg",
    };
    let key = RunKey {
        dataset: data.name.clone(),
        split: data.split.clone(),
        method: method_name.to_owned(),
        model: args.model.model.clone(),
        config: match args.method {
            Method::Baseline => {
                serde_json::json!({ "style": PromptStyle::Instruct, "decode": options.decode })
            }
            Method::Egcfg => serde_json::json!({
                "grid": options.grid,
                "decode": options.decode,
                "budget": options.budget,
                "seed": options.retry,
            }),
        },
    };
    let engine = load::engine(&args.model, load::SEQUENCES_PER_SOLVE)?;
    let mut solver = MethodSolver {
        engine,
        executor: executor.clone(),
        method: args.method,
        options,
    };
    let summary = run_benchmark(
        &mut store,
        executor.as_ref(),
        &mut solver,
        &data,
        &key,
        &RunOptions::default(),
    )?;
    let unrunnable = store.unrunnable(summary.run)?.len();
    eprintln!(
        "{key}: {} of {} tasks pass (strict pass@1 over the {} finished), {} recorded now, {} already done, {:.0} s",
        summary.passed,
        summary.tasks,
        summary.skipped + summary.recorded + summary.unrunnable - unrunnable,
        summary.recorded,
        summary.skipped,
        summary.wall_s
    );
    if unrunnable > 0 {
        eprintln!(
            "{unrunnable} task(s) could not run (each is listed with its reason by `egcfg report`) and are in no score"
        );
    }
    println!(
        "results in {}; summarise with `egcfg report {}`",
        args.db.display(),
        args.db.display()
    );
    Ok(ExitCode::SUCCESS)
}
