//! [`Sequence`]: a live engine sequence that frees itself.
//!
//! Every caller that makes sequences must free them on every path out,
//! errors and cancellations included, or the KV cells and slots they hold
//! leak until the engine is dropped. A handle that frees on drop makes that
//! the default instead of a guard each caller writes for itself.

use std::fmt;

use crate::{Engine, EngineError, SeqId};

/// A live sequence of an engine, freed ([`Engine::free`]) when dropped.
///
/// Forks made with [`Sequence::fork`] are handles of their own: dropping
/// the parent does not free them.
pub struct Sequence<'e> {
    engine: &'e dyn Engine,
    id: SeqId,
}

impl<'e> Sequence<'e> {
    /// A new, empty sequence of `engine` ([`Engine::new_sequence`]).
    pub fn new(engine: &'e dyn Engine) -> Result<Self, EngineError> {
        Ok(Sequence {
            engine,
            id: engine.new_sequence()?,
        })
    }

    /// A new sequence holding the same tokens as this one and sharing its
    /// cache ([`Engine::fork`]).
    pub fn fork(&self) -> Result<Sequence<'e>, EngineError> {
        Ok(Sequence {
            engine: self.engine,
            id: self.engine.fork(self.id)?,
        })
    }

    /// The id to name this sequence by in [`crate::SeqInput`]s.
    pub fn id(&self) -> SeqId {
        self.id
    }

    /// Number of tokens the sequence holds ([`Engine::len`]).
    pub fn len(&self) -> Result<usize, EngineError> {
        self.engine.len(self.id)
    }

    /// Whether the sequence holds no token.
    pub fn is_empty(&self) -> Result<bool, EngineError> {
        Ok(self.len()? == 0)
    }

    /// Drop everything after the first `len` tokens ([`Engine::truncate`]).
    pub fn truncate(&self, len: usize) -> Result<(), EngineError> {
        self.engine.truncate(self.id, len)
    }
}

impl fmt::Debug for Sequence<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Sequence").field(&self.id).finish()
    }
}

impl Drop for Sequence<'_> {
    fn drop(&mut self) {
        self.engine.free(self.id);
    }
}
