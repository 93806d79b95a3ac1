//! `egcfg bench` on a dataset: solve its tasks, score them on the hidden
//! tests, and record them in a results database (through the `egcfg-bench`
//! harness). `egcfg bench engine|exec` measure speed instead (`speed.rs`).

use std::process::ExitCode;
use std::sync::Arc;

use std::path::Path;

use anyhow::{Context, Result};
use egcfg_bench::datasets::{self, plus::OutputOracle};
use egcfg_bench::{
    run_benchmark, samples, Dataset, DatasetSpec, RunKey, RunOptions, RunSummary, Selection, Store,
};
use egcfg_executor::{Executor, ExecutorConfig, UnplannedTests};
use egcfg_method::{baseline_options, sequences_needed, PromptStyle};

use crate::flags::{BenchRunArgs, Method};
use crate::load;
use crate::output::{OutputFile, OutputKind};
use crate::sandbox::SandboxRunner;
use crate::solver::MethodSolver;

/// Runs a benchmark dataset, or lists the datasets.
pub fn run(args: BenchRunArgs) -> Result<ExitCode> {
    if args.list_datasets {
        list_datasets()
    } else {
        dataset(args)
    }
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
    // The database and the samples file are checked (and the database
    // created) before anything is loaded, so a wrong path costs nothing.
    let mut store = Store::open(&args.db)?;
    let samples_out = args
        .samples_out
        .as_deref()
        .map(|path| OutputFile::claim(path, SAMPLES, &[&args.db]))
        .transpose()?;
    let selection = match (args.limit, args.ids.is_empty()) {
        (Some(n), _) => Selection::First(n as usize),
        (None, false) => Selection::Ids(args.ids.clone()),
        (None, true) => Selection::All,
    };
    let data = load_dataset(&spec, &selection)?;
    // One sandbox serves the solver's visible-test traces and the hidden
    // tests.
    let runner = Arc::new(SandboxRunner::new(scoring_sandbox()?));

    let options = crate::options::solve_options(&args.options)?;
    let method_name = match args.method {
        Method::Baseline => "baseline",
        Method::Egcfg => "egcfg",
    };
    let sequences = match args.method {
        Method::Baseline => sequences_needed(&baseline_options(PromptStyle::Instruct, &options)),
        Method::Egcfg => sequences_needed(&options),
    };
    let engine = load::engine(&args.model, sequences)?;
    // A served model is named by what its server reports (the URL may
    // change between runs of the same model).
    let model = if args.model.endpoint.is_empty() {
        args.model.model.clone()
    } else {
        format!("served:{}", engine.info().name)
    };
    let key = RunKey {
        dataset: data.name.clone(),
        split: data.split.clone(),
        method: method_name.to_owned(),
        model,
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
    let mut solver = MethodSolver {
        engine,
        runner: runner.clone(),
        method: args.method,
        options,
    };
    let summary = run_benchmark(
        &mut store,
        runner.executor(),
        &mut solver,
        &data,
        &key,
        &RunOptions::default(),
    )?;
    print_summary(&store, &key, &summary, &args.db)?;
    if let Some(out) = samples_out {
        let path = out.path().display().to_string();
        let results = store.results(summary.run)?;
        out.write(samples::samples_jsonl(&data.tasks, &results).as_bytes())?;
        eprintln!("samples written to {path}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The sandbox that scores benchmark suites. They hold scripts that compute
/// their own expected values (EvalPlus, a few HumanEval checks), which can
/// only run in the candidate's process.
pub fn scoring_sandbox() -> Result<Executor> {
    Ok(Executor::start(ExecutorConfig {
        unplanned_tests: UnplannedTests::RunInChild,
        ..ExecutorConfig::default()
    })?)
}

/// Loads the selected tasks of a dataset, computing EvalPlus's expected
/// outputs in a sandbox of their own where the dataset needs them, and
/// prints the dataset's caveats.
pub fn load_dataset(spec: &DatasetSpec, selection: &Selection) -> Result<Dataset> {
    let oracle_executor =
        Executor::start(OutputOracle::executor_config(ExecutorConfig::default()))?;
    let cache = egcfg_models::Store::from_env()?.root().join("cache");
    let mut oracle = OutputOracle::new(&oracle_executor, cache);
    let data = datasets::load(spec, selection, Some(&mut oracle))?;
    for note in &data.notes {
        eprintln!("note: {note}");
    }
    Ok(data)
}

/// What a dataset run did, and where its results are.
pub fn print_summary(store: &Store, key: &RunKey, summary: &RunSummary, db: &Path) -> Result<()> {
    // Tasks that could not run in this or an earlier sitting are finished
    // but in no score.
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
        db.display(),
        db.display()
    );
    Ok(())
}

/// `--samples-out` files: EvalPlus samples; an earlier one may be replaced
/// (its first line is a sample), nothing else.
const SAMPLES: OutputKind = OutputKind {
    flag: "--samples-out",
    what: "samples file",
    is_earlier_output: |head| {
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(first)
            .is_ok_and(|v| v.get("task_id").is_some() && v.get("solution").is_some())
    },
};
