//! Runs `egcfg bench exec`'s measurement: `cargo run --release -p
//! egcfg-executor --example bench_exec [executions] [spawn_executions]`.
fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|a| a.parse::<usize>().expect("a count"));
    let mut options = egcfg_executor::speed::BenchOptions::default();
    if let Some(n) = args.next() {
        options.executions = n;
    }
    if let Some(n) = args.next() {
        options.spawn_executions = n;
    }
    match egcfg_executor::speed::run(&options) {
        Ok(report) => {
            println!("{report}");
            eprintln!(
                "({:.0} traced lines per execution, {:.2} ms CPU per fork-server execution, isolation {:.2} ms per child)\n{}",
                report.lines_per_exec, report.fork_server_cpu_ms, report.iso_ms, report.caps
            );
        }
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    }
}
