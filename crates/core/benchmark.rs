//! `egcfg bench` on a dataset: solve its tasks, score them on the hidden
//! tests, and record them in a results database (through the `egcfg-bench`
//! harness). `egcfg bench engine|exec` measure speed instead (`speed.rs`).

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;

use std::path::Path;

use anyhow::{Context, Result};
use egcfg_bench::datasets::{self, plus::OutputOracle};
use egcfg_bench::{
    run_benchmark, samples, Dataset, DatasetSpec, RunId, RunKey, RunOptions, RunSummary, Selection,
    Store,
};
use egcfg_executor::{Executor, ExecutorConfig, UnplannedTests};
use egcfg_method::{PromptStyle, SolveOptions, StartRule};

use crate::flags::{BenchRunArgs, Method};
use crate::load;
use crate::output::{OutputFile, OutputKind};
use crate::sandbox::SandboxRunner;
use crate::solver::{sequences_for, DerivedSolver, MethodSolver};
use crate::stdout::outln;

/// Runs a benchmark dataset, or lists the datasets.
pub fn run(args: BenchRunArgs) -> Result<ExitCode> {
    if args.list_datasets {
        list_datasets()
    } else {
        dataset(args)
    }
}

/// One dataset per entry: its name and splits on the first line, its
/// licence and caveats indented below (licences and notes are too long to
/// share a line with anything).
fn list_datasets() -> Result<ExitCode> {
    let listings = datasets::list();
    let names: Vec<String> = listings
        .iter()
        .map(|l| {
            if l.aliases.is_empty() {
                l.name.to_string()
            } else {
                format!("{} ({})", l.name, l.aliases.join(", "))
            }
        })
        .collect();
    let width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
    outln!("{:<width$}  SPLITS (TASKS)", "NAME (ALIASES)")?;
    for (listing, name) in listings.iter().zip(&names) {
        let splits: Vec<String> = listing
            .splits
            .iter()
            .map(|s| {
                let default = if s.split == listing.default_split && listing.splits.len() > 1 {
                    "*"
                } else {
                    ""
                };
                format!("{}{default} {}", s.split, s.tasks)
            })
            .collect();
        outln!("{name:<width$}  {}", splits.join(", "))?;
        outln!("    licence: {}", listing.licence)?;
        outln!("    note:    {}", listing.note)?;
    }
    outln!("\n* the split a bare name runs (`--dataset mbpp` is mbpp:test).")?;
    outln!("Also: jsonl:PATH for your own tasks in MBPP's or HumanEval's schema.")?;
    Ok(ExitCode::SUCCESS)
}

fn dataset(args: BenchRunArgs) -> Result<ExitCode> {
    let spec: DatasetSpec = args
        .dataset
        .as_deref()
        .context("--dataset is required")?
        .parse()?;
    // The flags are checked first, so that a refused setting leaves no
    // database behind.
    let method = args.options.method;
    let budgets = budgets(&args.options.max_tokens);
    let options_at = |tokens: u64| {
        let mut flags = args.options.clone();
        flags.max_tokens = vec![tokens];
        crate::options::solve_options(&flags)
    };
    let options = options_at(budgets[0])?;
    if args.samples_out.is_some() && budgets.len() > 1 {
        anyhow::bail!(
            "--samples-out writes the programs of one run; give one --max-tokens budget with it"
        );
    }
    // The tasks (quick to read) come next, so that a wrong id or file
    // leaves no database behind either.
    let selection = match (args.limit, args.ids.is_empty()) {
        (Some(n), _) => Selection::First(n as usize),
        (None, false) => Selection::Ids(args.ids.clone()),
        (None, true) => Selection::All,
    };
    let data = load_dataset(&spec, &selection)?;
    // The samples file and the database are checked (and the database
    // created, last) before the sandbox and the model load, so a wrong path
    // costs nothing and leaves nothing behind.
    let samples_out = args
        .samples_out
        .as_deref()
        .map(|path| OutputFile::claim(path, SAMPLES, &[&args.db]))
        .transpose()?;
    let mut store = Store::open(&args.db)?;
    // One sandbox serves the solver's visible-test traces and the hidden
    // tests.
    let runner = Arc::new(SandboxRunner::new(scoring_sandbox()?));

    let tasks_in_flight = args.tasks_in_flight();
    // The budget changes no engine setting, so one engine serves them all;
    // the tasks in flight share it.
    let engine = load::engine(
        &args.model,
        tasks_in_flight * sequences_for(method, &options),
    )?;
    // A served model is named by what its server reports (the URL may
    // change between runs of the same model).
    let model = if args.model.endpoint.is_empty() {
        args.model.model.clone()
    } else {
        format!("served:{}", engine.info().name)
    };
    let run_options = RunOptions {
        tasks_in_flight,
        ..RunOptions::default()
    };
    // Runs `method` at `tokens` on every selected task.
    let run_for_real = |store: &mut Store, tokens: u64| -> Result<(RunKey, RunSummary)> {
        let solver = MethodSolver {
            engine: engine.clone(),
            runner: runner.clone(),
            method,
            options: options_at(tokens)?,
        };
        let key = run_key(&data, &model, method, &solver.options);
        let summary = run_benchmark(store, runner.executor(), &solver, &data, &key, &run_options)?;
        print_summary(store, &key, &summary, &args.db)?;
        Ok((key, summary))
    };
    // A sample solve on a local model runs in lock-step, so a smaller
    // budget's run is a prefix of the largest's: only the largest runs, and
    // each smaller budget is a run of its own derived from its records. An
    // EG-CFG solve's attempts run on threads whose timing decides where
    // the budget cuts them, and a served model's requests are sized by the
    // budget left: those run every budget.
    let derives = method == Method::Sample && args.model.endpoint.is_empty() && budgets.len() > 1;
    let last = if derives {
        let largest = largest_budget(&budgets);
        let (from_key, summary) = run_for_real(&mut store, largest)?;
        let recorded = recorded(&store, summary.run)?;
        let smaller = budgets.iter().copied().filter(|&b| b != largest);
        if keeps_step_checks(&recorded) {
            let from = options_at(largest)?;
            // Only the tasks the largest run finished: the others get their
            // derived rows when a later sitting finishes them.
            let finished = Dataset {
                tasks: (data.tasks.iter())
                    .filter(|t| recorded.contains_key(t.id()))
                    .cloned()
                    .collect(),
                ..data.clone()
            };
            for tokens in smaller {
                let derived = DerivedSolver {
                    engine: engine.clone(),
                    from: from.clone(),
                    budget: tokens,
                    recorded: &recorded,
                };
                let mut key = run_key(&data, &model, method, &options_at(tokens)?);
                key.config["derived_from"] = serde_json::json!({
                    "config_hash": from_key.config_hash(),
                    "max_tokens": from.budget.max_tokens,
                });
                let summary = run_benchmark(
                    &mut store,
                    runner.executor(),
                    &derived,
                    &finished,
                    &key,
                    &run_options,
                )?;
                print_summary(&store, &key, &summary, &args.db)?;
            }
        } else {
            eprintln!(
                "note: the {largest}-token run holds tasks recorded before sample solves kept their budget checks, so every budget runs for real"
            );
            for tokens in smaller {
                run_for_real(&mut store, tokens)?;
            }
        }
        summary
    } else {
        // Each budget is a run of its own, smallest first so that the cheap
        // points of the curve come first; a killed curve resumes where it
        // was.
        let mut last = None;
        for &tokens in &budgets {
            last = Some(run_for_real(&mut store, tokens)?.1);
        }
        last.expect("--max-tokens gives at least one budget")
    };
    if let Some(out) = samples_out {
        let path = out.path().display().to_string();
        let results = store.results(last.run)?;
        out.write(samples::samples_jsonl(&data.tasks, &results).as_bytes())?;
        eprintln!("samples written to {path}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The budgets of `--max-tokens`, smallest first, each once.
fn budgets(listed: &[u64]) -> Vec<u64> {
    let mut budgets = listed.to_vec();
    budgets.sort_unstable();
    budgets.dedup();
    budgets
}

/// The largest of `budgets` (0, no limit, is larger than any).
fn largest_budget(budgets: &[u64]) -> u64 {
    if budgets.contains(&0) {
        0
    } else {
        budgets.iter().copied().max().unwrap_or(0)
    }
}

/// Whether every task `recorded` holds the budget checks a smaller budget
/// is derived from (records written before they were kept do not).
fn keeps_step_checks(recorded: &HashMap<String, Result<serde_json::Value, String>>) -> bool {
    recorded.values().flatten().all(|records| {
        records["step_checks"]
            .as_array()
            .is_some_and(|c| !c.is_empty())
    })
}

/// What `run` recorded, by task: its records, or why it could not run
/// the task.
fn recorded(
    store: &Store,
    run: RunId,
) -> Result<HashMap<String, Result<serde_json::Value, String>>> {
    let results = store.results(run)?.into_iter();
    let unrunnable = store.unrunnable(run)?.into_iter();
    Ok(results
        .map(|r| (r.task_id, Ok(r.solution.records)))
        .chain(unrunnable.map(|u| (u.task_id, Err(u.reason))))
        .collect())
}

/// The key of a run of `method` with `options` on `data`: everything that
/// changes its results.
fn run_key(data: &Dataset, model: &str, method: Method, options: &SolveOptions) -> RunKey {
    RunKey {
        dataset: data.name.clone(),
        split: data.split.clone(),
        method: method.name().to_owned(),
        model: model.to_owned(),
        config: match method {
            Method::Baseline => {
                serde_json::json!({ "style": PromptStyle::Instruct, "decode": options.decode })
            }
            Method::Egcfg => egcfg_config(options),
            // EG-CFG's setting, and the sampling stage's: its share of the
            // budget and, as for `sample`, how many answers decode at once.
            Method::SampleThenEgcfg => {
                let mut config = egcfg_config(options);
                config["sample_schedule"] = serde_json::json!(1);
                config["sample_share"] = serde_json::json!(options.sample_share);
                config["width"] = serde_json::json!(options.concurrency);
                config
            }
            // The schedule is fixed by the code (its module documents it);
            // how many answers decode at once decides which the budget
            // cuts, so it is part of the run.
            Method::Sample => serde_json::json!({
                "sample_schedule": 1,
                "decode": options.decode,
                "budget": options.budget,
                "seed": options.retry,
                "width": options.concurrency,
            }),
        },
    }
}

/// What an EG-CFG solve's results depend on, beside the dataset and the
/// model.
fn egcfg_config(options: &SolveOptions) -> serde_json::Value {
    let mut config = serde_json::json!({
        "grid": options.grid,
        "decode": options.decode,
        "budget": options.budget,
        "seed": options.retry,
    });
    // Only a rule other than the default joins the key, so runs recorded
    // before the rule existed still resume.
    if options.start_rule != StartRule::default() {
        config["start_rule"] = serde_json::json!(options.start_rule);
    }
    config
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
    outln!(
        "results in {}; summarise with `egcfg report {}`",
        db.display(),
        db.display()
    )?;
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
