//! Integration tests of the `egcfg` binary: whole behaviours as a user sees
//! them, run against the real executable.

mod util;

mod bad_input;
mod bench;
mod cli;
mod explore;
mod samples;
mod solve;
