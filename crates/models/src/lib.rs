//! egcfg-models (being written).
