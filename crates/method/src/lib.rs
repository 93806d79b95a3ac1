//! egcfg-method (being written).
