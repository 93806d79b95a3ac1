//! Any bytes as a task file, read as TOML and as JSON: an error is fine,
//! a panic is a bug.
#![no_main]

use egcfg_task::{Task, TaskFormat};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for format in [TaskFormat::Toml, TaskFormat::Json] {
        let _ = Task::from_text(&text, format, "fuzz input", "fuzz".to_owned());
    }
});
