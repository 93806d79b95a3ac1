//! Any bytes as a user's `jsonl:` dataset: an error is fine, a panic is a
//! bug.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = egcfg_bench::datasets::parse_jsonl("fuzz input", data);
});
