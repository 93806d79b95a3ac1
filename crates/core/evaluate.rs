//! `egcfg evaluate`: samples made by any tool, scored like egcfg's own runs.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use egcfg_bench::samples::Samples;
use egcfg_bench::{
    report, run_benchmark, DatasetError, DatasetSpec, RunKey, RunOptions, Selection, Store,
};

use crate::benchmark::{load_dataset, print_summary, scoring_sandbox};
use crate::flags::EvaluateArgs;
use crate::stdout::out;

pub fn run(args: EvaluateArgs) -> Result<ExitCode> {
    let source = args.samples.display().to_string();
    let text = std::fs::read_to_string(&args.samples)
        .with_context(|| format!("cannot read the samples file {source}"))?;
    let samples = Samples::parse(&text, &source)?;
    let spec: DatasetSpec = args.dataset.parse()?;
    if args.db == args.samples {
        bail!(
            "--db {} is the samples file; give another database path",
            args.db.display()
        );
    }
    // The samples' tasks are checked before the database is opened, so
    // that samples of another dataset leave no new database behind.
    let data = match load_dataset(&spec, &Selection::Ids(samples.task_ids())) {
        Ok(data) => data,
        Err(err) => match err.downcast_ref::<DatasetError>() {
            Some(DatasetError::UnknownTask { dataset, id, example }) => bail!(
                "{source}, line {}: task {id} is not in {dataset} (its ids look like {example}); check --dataset",
                samples.line_of(id).unwrap_or_default()
            ),
            _ => return Err(err),
        },
    };
    let mut store = Store::open(&args.db)?;
    let key = RunKey {
        dataset: data.name.clone(),
        split: data.split.clone(),
        method: "samples".into(),
        model: args
            .name
            .clone()
            .unwrap_or_else(|| file_name(&args.samples)),
        // The file's content, so that changed samples make a new run rather
        // than resuming the old one.
        config: serde_json::json!({ "samples_sha256": egcfg_bench::samples::content_hash(&text) }),
    };
    // Scored as `egcfg bench` scores.
    let executor = scoring_sandbox()?;
    let solver = samples.into_solver();
    let summary = run_benchmark(
        &mut store,
        &executor,
        &solver,
        &data,
        &key,
        &RunOptions::default(),
    )?;
    print_summary(&store, &key, &summary, &args.db)?;
    // The scores as EvalPlus prints them, pass@k included: the report's
    // table of this run's group.
    let mut report = report::build(&store)?;
    report
        .groups
        .retain(|group| group.runs.iter().any(|r| r.info.id == summary.run));
    out!("{}", report::markdown(&report))?;
    Ok(ExitCode::SUCCESS)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
