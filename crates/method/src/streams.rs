//! Ownership of engine sequences: a sequence is freed when its guard drops,
//! so an error or a cancellation never leaks KV cells.

use egcfg_engine::{Engine, SeqId};

/// A live engine sequence that is freed on drop.
pub struct SeqGuard<'e> {
    engine: &'e dyn Engine,
    id: SeqId,
}

impl<'e> SeqGuard<'e> {
    /// Take ownership of `id`.
    pub fn new(engine: &'e dyn Engine, id: SeqId) -> Self {
        SeqGuard { engine, id }
    }

    /// The sequence id.
    pub fn id(&self) -> SeqId {
        self.id
    }
}

impl Drop for SeqGuard<'_> {
    fn drop(&mut self) {
        self.engine.free(self.id);
    }
}
