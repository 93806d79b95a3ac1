//! The `egcfg` command line (being written).
fn main() {}
