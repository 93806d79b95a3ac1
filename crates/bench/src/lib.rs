//! egcfg-bench (being written).
