//! Integration tests of the `egcfg` binary: whole behaviours as a user sees
//! them, run against the real executable.

mod util;

mod bad_input;
mod bench;
mod bench_bad_tasks;
mod cli;
mod docs;
mod engine_options;
mod explore;
mod fetch;
mod sample;
mod sample_then_egcfg;
mod samples;
mod served;
mod solve;
