//! Turning method flags into [`SolveOptions`].

use std::path::Path;

use anyhow::Result;
use egcfg_executor::render::{RenderLimits, TraceFormat};
use egcfg_method::signal::SignalLayout;
use egcfg_method::{Budget, DecodeOptions, Grid, SolveOptions, StartRule};

use crate::flags::{BlockLayout, Method, MethodArgs, StartRuleArg, TraceStyle};

/// The solve options the flags ask for; everything they leave out keeps the
/// method's defaults.
pub fn solve_options(args: &MethodArgs) -> Result<SolveOptions> {
    let defaults = DecodeOptions::default();
    let &[max_tokens] = &args.max_tokens[..] else {
        anyhow::bail!(
            "--max-tokens takes one budget here, not {}; a list of budgets is for `egcfg bench`",
            args.max_tokens.len()
        );
    };
    check_flags_apply(args)?;
    Ok(SolveOptions {
        grid: load_grid(args.agents.as_deref())?,
        decode: DecodeOptions {
            signal_max_tokens: args.signal_tokens.unwrap_or(defaults.signal_max_tokens),
            // A flag left out keeps the method's own default.
            signal_layout: args.signal_layout.map_or(
                defaults.signal_layout,
                |layout| match layout {
                    BlockLayout::PerRun => SignalLayout::PerRun,
                    BlockLayout::ByCandidate => SignalLayout::ByCandidate,
                    BlockLayout::SharedCode => SignalLayout::SharedCode,
                },
            ),
            trace_format: args
                .trace_format
                .map_or(defaults.trace_format, |style| match style {
                    TraceStyle::ChangedState => TraceFormat::ChangedState,
                    TraceStyle::Compat => TraceFormat::Compat,
                }),
            render_limits: RenderLimits {
                max_events: args
                    .trace_events
                    .unwrap_or(defaults.render_limits.max_events),
                ..defaults.render_limits
            },
            top_k: args.top_k.unwrap_or(defaults.top_k),
            cut_to_fit: args.cut_to_fit,
            early_stop: args.early_stop,
            ..defaults
        },
        budget: Budget {
            max_attempts: args.max_attempts.map(|n| n as usize),
            max_tokens: (max_tokens > 0).then_some(max_tokens),
            max_wall: args.max_seconds,
        },
        concurrency: usize::from(args.concurrency),
        retry: args.seed,
        start_rule: args
            .start_rule
            .map_or(StartRule::default(), |rule| match rule {
                StartRuleArg::Always => StartRule::Always,
                StartRuleArg::Affordable => StartRule::Affordable,
            }),
        sample_share: args
            .sample_share
            .unwrap_or(egcfg_method::DEFAULT_SAMPLE_SHARE),
        ..SolveOptions::default()
    })
}

/// Refuses a flag that the chosen method does not read, naming the methods
/// that do, so that a setting is never dropped in silence (`--agents` with
/// `--method sample`, say, would otherwise run no guided attempt at all
/// and look as if it had).
fn check_flags_apply(args: &MethodArgs) -> Result<()> {
    const GUIDED: &[Method] = &[Method::Egcfg, Method::SampleThenEgcfg];
    let flags: [(&str, bool, &[Method]); 10] = [
        ("--agents", args.agents.is_some(), GUIDED),
        ("--signal-tokens", args.signal_tokens.is_some(), GUIDED),
        ("--trace-events", args.trace_events.is_some(), GUIDED),
        ("--signal-layout", args.signal_layout.is_some(), GUIDED),
        ("--cut-to-fit", args.cut_to_fit, GUIDED),
        ("--trace-format", args.trace_format.is_some(), GUIDED),
        ("--top-k", args.top_k.is_some(), GUIDED),
        ("--early-stop", args.early_stop, GUIDED),
        ("--start-rule", args.start_rule.is_some(), GUIDED),
        (
            "--sample-share",
            args.sample_share.is_some(),
            &[Method::SampleThenEgcfg],
        ),
    ];
    let ignored = flags
        .into_iter()
        .find(|&(_, given, readers)| given && !readers.contains(&args.method));
    if let Some((flag, _, readers)) = ignored {
        let readers: Vec<String> = readers
            .iter()
            .map(|method| format!("`--method {}`", method.name()))
            .collect();
        anyhow::bail!(
            "{flag} applies to {} only, and this run's method is `--method {}`, which would ignore it; add {}, or drop {flag}",
            readers.join(" and "),
            args.method.name(),
            readers[0],
        );
    }
    Ok(())
}

/// The grid `--agents` names: the built-in `reference` grid, a grid file,
/// or (without the flag) the default grid.
fn load_grid(agents: Option<&Path>) -> Result<Grid> {
    Ok(match agents {
        Some(name) if name == Path::new(REFERENCE_GRID) => Grid::reference(),
        Some(path) => Grid::from_file(path)?,
        None => Grid::default(),
    })
}

/// The `--agents` value that selects [`Grid::reference`].
const REFERENCE_GRID: &str = "reference";

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;

    use super::*;
    use crate::flags::{Cli, Command};

    /// The method flags of `egcfg solve task.toml EXTRA...`.
    fn method_args(extra: &[&str]) -> MethodArgs {
        let mut argv = vec!["egcfg", "solve", "task.toml"];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).expect("flags parse").command {
            Command::Solve(args) => args.options,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// The options of `egcfg solve task.toml EXTRA...`, or the refusal.
    fn try_options_of(extra: &[&str]) -> Result<SolveOptions, String> {
        solve_options(&method_args(extra)).map_err(|err| err.to_string())
    }

    fn options_of(extra: &[&str]) -> SolveOptions {
        try_options_of(extra).expect("options")
    }

    #[test]
    fn no_flags_keep_the_method_defaults() {
        let options = options_of(&[]);
        let defaults = SolveOptions::default();
        assert_eq!(options.decode, defaults.decode);
        assert_eq!(options.budget, defaults.budget);
        assert_eq!(options.grid, defaults.grid);
        assert_eq!(options.concurrency, defaults.concurrency);
    }

    #[test]
    fn without_method_a_solve_samples() {
        assert_eq!(method_args(&[]).method, Method::Sample);
        // A guided flag alone is refused rather than dropped: it names the
        // method that reads it.
        let err = try_options_of(&["--agents=reference"]).unwrap_err();
        assert!(err.contains("add `--method egcfg`"), "{err}");
    }

    #[test]
    fn every_flag_reaches_its_option() {
        let options = options_of(&[
            "--method=egcfg",
            "--max-attempts=3",
            "--max-tokens=9000",
            "--max-seconds=1.5",
            "--concurrency=4",
            "--signal-tokens=700",
            "--trace-events=9",
            "--signal-layout=by-candidate",
            "--cut-to-fit",
            "--trace-format=compat",
            "--top-k=20",
            "--early-stop",
            "--seed=7",
        ]);
        assert_eq!(
            options.budget,
            Budget {
                max_attempts: Some(3),
                max_tokens: Some(9000),
                max_wall: Some(Duration::from_millis(1500)),
            }
        );
        assert_eq!(options.concurrency, 4);
        assert_eq!(options.decode.signal_max_tokens, 700);
        assert_eq!(options.decode.render_limits.max_events, 9);
        assert_eq!(options.decode.signal_layout, SignalLayout::ByCandidate);
        assert!(options.decode.cut_to_fit);
        assert_eq!(options.decode.trace_format, TraceFormat::Compat);
        assert_eq!(options.decode.top_k, 20);
        assert!(options.decode.early_stop);
        assert_eq!(options.retry, 7);
    }

    #[test]
    fn a_flag_the_method_ignores_is_refused_by_name() {
        let guided_flags = [
            &["--agents=reference"][..],
            &["--signal-tokens=700"],
            &["--trace-events=9"],
            &["--signal-layout=per-run"],
            &["--cut-to-fit"],
            &["--trace-format=changed-state"],
            &["--top-k=0"],
            &["--early-stop"],
            &["--start-rule=always"],
        ];
        let parse = |method: &str, flag: &[&str]| {
            try_options_of(&[&["--method", method][..], flag].concat())
        };
        for flag in guided_flags {
            for method in ["egcfg", "sample-then-egcfg"] {
                assert!(parse(method, flag).is_ok(), "{method} {flag:?}");
            }
            for method in ["sample", "baseline"] {
                let err = parse(method, flag).unwrap_err();
                let name = flag[0].split('=').next().unwrap();
                assert!(err.starts_with(name), "{method} {flag:?}: {err}");
                assert!(err.contains("add `--method egcfg`"), "{err}");
                assert!(err.contains(&format!("`--method {method}`")), "{err}");
            }
        }
        for method in ["egcfg", "sample", "baseline"] {
            let err = parse(method, &["--sample-share=0.5"]).unwrap_err();
            assert!(err.contains("add `--method sample-then-egcfg`"), "{err}");
        }
        assert!(parse("sample-then-egcfg", &["--sample-share=0.5"]).is_ok());
    }

    #[test]
    fn a_solve_takes_one_budget_only() {
        let err = try_options_of(&["--max-tokens=3000,6000"]).unwrap_err();
        assert!(err.contains("takes one budget here, not 2"), "{err}");
    }

    #[test]
    fn zero_tokens_lifts_the_token_budget() {
        assert_eq!(options_of(&["--max-tokens=0"]).budget.max_tokens, None);
    }

    #[test]
    fn reference_names_the_built_in_reference_grid() {
        let options = options_of(&["--method=egcfg", "--agents=reference"]);
        assert_eq!(options.grid, Grid::reference());
        assert_ne!(Grid::reference(), Grid::default());
    }

    /// The parse error of `egcfg solve t.toml FLAG VALUE`.
    fn refusal(flag: &str, value: &str) -> String {
        Cli::try_parse_from(["egcfg", "solve", "t.toml", flag, value])
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn values_outside_their_range_are_refused_by_name() {
        let cases = [
            (
                "--max-seconds",
                &["-1", "0", "NaN", "inf", "1e300", "soon"][..],
            ),
            ("--max-attempts", &["0", "-2"]),
            ("--concurrency", &["0", "9"]),
        ];
        for (flag, values) in cases {
            for value in values {
                let err = refusal(flag, value);
                assert!(err.contains(flag), "{flag} {value}: {err}");
            }
        }
    }
}
