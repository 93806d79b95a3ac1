//! Bookkeeping that mirrors llama.cpp's unified KV cache.
//!
//! llama.cpp addresses sequences by small integer slots (`0..n_seq_max`) and
//! knows nothing about ids, lengths or capacity until a decode fails. This
//! table hands out [`SeqId`]s (never reused) mapped to slots (reused through
//! a free list, lowest first, so runs are reproducible), tracks every
//! sequence's length, and counts occupied cache cells exactly: a fork shares
//! its parent's cells, so each cell carries a reference count, and a cell is
//! free again once no sequence refers to it. With that, a request that would
//! overflow one sequence or the shared cache is refused up front with
//! [`EngineError::ContextFull`] instead of reaching llama.cpp.

use std::collections::{BTreeSet, HashMap};

use crate::{EngineError, SeqId};

/// The llama.cpp sequence slot (`llama_seq_id`).
pub(crate) type Slot = i32;

/// Identifies one occupied KV cell (never reused).
type CellId = u64;

#[derive(Debug)]
struct Sequence {
    slot: Slot,
    /// The cell holding each position, in order; the length is `cells.len()`.
    cells: Vec<CellId>,
}

/// Sequence ids, slots, lengths and cache occupancy.
#[derive(Debug)]
pub(crate) struct SequenceTable {
    n_slots: usize,
    free_slots: BTreeSet<Slot>,
    live: HashMap<SeqId, Sequence>,
    next_seq: u64,
    /// Reference count of every occupied cell.
    cell_refs: HashMap<CellId, u32>,
    next_cell: CellId,
    /// Cells in the unified cache.
    capacity: usize,
    /// Most tokens one sequence may hold.
    max_len: usize,
}

impl SequenceTable {
    /// A table for `n_slots` sequences sharing `capacity` cells, each at most
    /// `max_len` tokens long.
    pub(crate) fn new(n_slots: usize, capacity: usize, max_len: usize) -> Self {
        let top = Slot::try_from(n_slots).expect("n_seq_max is at most 256");
        Self {
            n_slots,
            free_slots: (0..top).collect(),
            live: HashMap::new(),
            next_seq: 0,
            cell_refs: HashMap::new(),
            next_cell: 0,
            capacity,
            max_len,
        }
    }

    /// Cells in the unified cache.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Most tokens one sequence may hold.
    pub(crate) fn max_len(&self) -> usize {
        self.max_len
    }

    /// Cells currently holding some sequence's token.
    pub(crate) fn used_cells(&self) -> usize {
        self.cell_refs.len()
    }

    /// A new empty sequence and its slot.
    pub(crate) fn create(&mut self) -> Result<(SeqId, Slot), EngineError> {
        let slot = self.take_slot()?;
        let id = SeqId(self.next_seq);
        self.next_seq += 1;
        self.live.insert(
            id,
            Sequence {
                slot,
                cells: Vec::new(),
            },
        );
        Ok((id, slot))
    }

    /// A new sequence sharing all of `parent`'s cells; returns the new id,
    /// the parent's slot and the new slot.
    pub(crate) fn fork(&mut self, parent: SeqId) -> Result<(SeqId, Slot, Slot), EngineError> {
        let (parent_slot, cells) = {
            let seq = self.get(parent)?;
            (seq.slot, seq.cells.clone())
        };
        let (child, child_slot) = self.create()?;
        for cell in &cells {
            *self.cell_refs.get_mut(cell).expect("live cell") += 1;
        }
        self.live.get_mut(&child).expect("just created").cells = cells;
        Ok((child, parent_slot, child_slot))
    }

    /// The slot and length of `seq`.
    pub(crate) fn lookup(&self, seq: SeqId) -> Result<(Slot, usize), EngineError> {
        self.get(seq).map(|s| (s.slot, s.cells.len()))
    }

    /// Cut `seq` to `len` tokens. Returns its slot when cells were dropped
    /// (the caller then removes positions `len..` from llama.cpp's cache).
    pub(crate) fn truncate(&mut self, seq: SeqId, len: usize) -> Result<Option<Slot>, EngineError> {
        let current = self.get(seq)?.cells.len();
        if len > current {
            return Err(EngineError::InvalidRequest(format!(
                "cannot truncate {seq:?} to {len} tokens: it holds only {current}"
            )));
        }
        if len == current {
            return Ok(None);
        }
        let sequence = self.live.get_mut(&seq).expect("checked above");
        let dropped: Vec<CellId> = sequence.cells.drain(len..).collect();
        let slot = sequence.slot;
        self.release(&dropped);
        Ok(Some(slot))
    }

    /// Append `n` new cells (positions) to `seq`.
    pub(crate) fn extend(&mut self, seq: SeqId, n: usize) -> Result<(), EngineError> {
        let first = self.next_cell;
        self.next_cell += n as u64;
        let sequence = self
            .live
            .get_mut(&seq)
            .ok_or(EngineError::UnknownSequence(seq))?;
        sequence.cells.extend(first..first + n as u64);
        self.cell_refs
            .extend((first..first + n as u64).map(|cell| (cell, 1)));
        Ok(())
    }

    /// Forget `seq`; returns its slot (now free) if it was live.
    pub(crate) fn free(&mut self, seq: SeqId) -> Option<Slot> {
        let sequence = self.live.remove(&seq)?;
        self.release(&sequence.cells);
        self.free_slots.insert(sequence.slot);
        Some(sequence.slot)
    }

    fn get(&self, seq: SeqId) -> Result<&Sequence, EngineError> {
        self.live.get(&seq).ok_or(EngineError::UnknownSequence(seq))
    }

    fn take_slot(&mut self) -> Result<Slot, EngineError> {
        self.free_slots
            .pop_first()
            .ok_or(EngineError::NoFreeSlot(self.n_slots))
    }

    fn release(&mut self, cells: &[CellId]) {
        for cell in cells {
            let refs = self.cell_refs.get_mut(cell).expect("live cell");
            *refs -= 1;
            if *refs == 0 {
                self.cell_refs.remove(cell);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forks_share_cells_until_they_diverge() {
        let mut table = SequenceTable::new(4, 100, 50);
        let (a, slot_a) = table.create().unwrap();
        table.extend(a, 10).unwrap();
        let (b, parent_slot, slot_b) = table.fork(a).unwrap();
        assert_eq!((parent_slot, slot_a), (0, 0));
        assert_eq!(slot_b, 1);
        assert_eq!(table.lookup(b).unwrap(), (1, 10));
        assert_eq!(table.used_cells(), 10);

        table.extend(b, 3).unwrap();
        assert_eq!(table.used_cells(), 13);
        // Cutting the parent below the fork point frees nothing the child uses.
        assert_eq!(table.truncate(a, 4).unwrap(), Some(0));
        assert_eq!(table.used_cells(), 13);
        assert_eq!(table.free(b), Some(1));
        assert_eq!(table.used_cells(), 4);
        assert_eq!(table.lookup(a).unwrap(), (0, 4));
    }

    #[test]
    fn slots_are_reused_lowest_first_but_ids_never() {
        let mut table = SequenceTable::new(2, 10, 10);
        let (a, _) = table.create().unwrap();
        let (b, _) = table.create().unwrap();
        assert!(matches!(table.create(), Err(EngineError::NoFreeSlot(2))));
        table.free(a);
        let (c, slot_c) = table.create().unwrap();
        assert_eq!(slot_c, 0);
        assert!(c > b);
        assert!(matches!(table.lookup(a), Err(EngineError::UnknownSequence(id)) if id == a));
        assert_eq!(table.free(a), None);
    }

    #[test]
    fn truncate_checks_bounds() {
        let mut table = SequenceTable::new(1, 10, 10);
        let (a, _) = table.create().unwrap();
        table.extend(a, 3).unwrap();
        assert_eq!(table.truncate(a, 3).unwrap(), None);
        assert!(matches!(
            table.truncate(a, 4),
            Err(EngineError::InvalidRequest(_))
        ));
        assert_eq!(table.truncate(a, 0).unwrap(), Some(0));
        assert_eq!(table.used_cells(), 0);
    }
}
