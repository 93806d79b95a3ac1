//! LPW's function-form CodeContests and LiveCode sets.

use egcfg_task::Task;

use super::embedded::DataFile;
use super::humaneval::records;
use super::schema::LpwRecord;
use super::{asserts, check_script, BenchTask, DatasetError, Suite};

/// The prompts use `List` and friends without importing them.
const TYPING_PRELUDE: &str = "from typing import *";

/// Loads an LPW file: visible = `given_tests`, hidden = `check(candidate)`
/// as the suite `suite_name`.
pub(super) fn load(file: &DataFile, suite_name: &str) -> Result<Vec<BenchTask>, DatasetError> {
    Ok(records::<LpwRecord>(file)?
        .into_iter()
        .map(|r| {
            let task = Task {
                id: r.task_id.clone(),
                prompt: r.prompt.clone(),
                entry_point: r.entry_point.clone(),
                visible: asserts(&r.given_tests),
                hidden: Vec::new(),
                setup: Some(TYPING_PRELUDE.to_string()),
            };
            let suite = Suite {
                name: suite_name.to_string(),
                tests: vec![check_script(&r.test, &r.entry_point)],
                timeout: None,
            };
            BenchTask::new(task, vec![suite])
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::super::embedded::{CODECONTESTS_LPW, LIVECODE_LPW};
    use super::*;

    #[test]
    fn lpw_sets_load_with_given_tests_visible() {
        let cc = load(&CODECONTESTS_LPW, "codecontests-lpw").unwrap();
        assert_eq!(cc.len(), 150);
        assert!(cc
            .iter()
            .all(|t| (1..=5).contains(&t.visible.visible.len())));
        let lc = load(&LIVECODE_LPW, "livecode-lpw").unwrap();
        assert_eq!(lc.len(), 140);
        assert!(lc
            .iter()
            .all(|t| (1..=4).contains(&t.visible.visible.len())));
        assert_eq!(lc[0].id(), "LiveCode/3455");
    }
}
