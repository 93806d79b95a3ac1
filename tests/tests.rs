//! Integration tests of the `egcfg` binary (being written).
