//! Choosing which tasks of a dataset to run (`--limit N`, `--ids ...`).

use super::{Dataset, DatasetError};

/// Which tasks of a dataset to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Selection {
    /// Every task.
    #[default]
    All,
    /// The first N tasks, in dataset order.
    First(usize),
    /// These task ids (dataset order is kept); unknown ids are an error.
    Ids(Vec<String>),
}

impl Selection {
    /// The selected ids among `ids` (in their order), or an error naming an
    /// id that is not there.
    pub fn pick(&self, dataset: &str, ids: &[String]) -> Result<Vec<String>, DatasetError> {
        match self {
            Selection::All => Ok(ids.to_vec()),
            Selection::First(n) => Ok(ids.iter().take(*n).cloned().collect()),
            Selection::Ids(wanted) => {
                if let Some(missing) = wanted.iter().find(|w| !ids.contains(w)) {
                    return Err(DatasetError::UnknownTask {
                        dataset: dataset.to_string(),
                        id: missing.clone(),
                        example: ids.first().cloned().unwrap_or_default(),
                    });
                }
                Ok(ids
                    .iter()
                    .filter(|id| wanted.contains(id))
                    .cloned()
                    .collect())
            }
        }
    }
}

impl Dataset {
    /// Keeps only the selected tasks.
    pub fn select(&mut self, selection: &Selection) -> Result<(), DatasetError> {
        let ids: Vec<String> = self.tasks.iter().map(|t| t.id().to_string()).collect();
        let keep = selection.pick(&self.name, &ids)?;
        self.tasks.retain(|t| keep.iter().any(|k| k == t.id()));
        Ok(())
    }
}
