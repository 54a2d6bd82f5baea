//! Pruning old bodies, receipts, change sets and blooms.

use storage_api::{Durability, KvCompact, KvStore};

use crate::ChainStore;
use crate::apply::Applier;
use crate::bloom::SECTION_SIZE;
use crate::error::ChainError;
use crate::model::ChainModel;
use crate::schema::{
    BloomBitsTable, Bodies, LogBloom, MetaKey, Receipts, Senders, StateChanges, StateRoots, Transactions,
};

/// What a prune did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PruneReport {
    /// The pruning boundary before.
    pub previous: u64,
    /// The pruning boundary now: bodies, receipts, change sets and blooms below it are gone.
    pub pruned_below: u64,
    /// The boundary was held back to just above the finalized block: the change sets of
    /// blocks that a reorg could still revert are kept.
    pub limited_by_finalized: bool,
    /// The boundary was held back to the history archive's watermark: blocks not archived yet
    /// are kept.
    pub limited_by_archive: bool,
}

impl<S: KvStore, M: ChainModel> ChainStore<S, M> {
    /// Keeps the bodies, transactions, receipts, senders, state change sets and log blooms of the last `keep_last`
    /// blocks below the head (and never of the finalized block's descendants) and deletes the
    /// rest with range deletes, in one synced batch. Headers, the canonical index and the
    /// transaction and address indexes stay; reads of pruned data fail with `Pruned`.
    /// Call [`ChainStore::compact_pruned`] afterwards to release the disk space.
    pub fn prune(&self, keep_last: u64) -> Result<PruneReport, ChainError> {
        self.prune_archived(keep_last, None)
    }

    /// [`ChainStore::prune`], and never at or above height `archived_below` (the history
    /// archive's watermark: what is not archived yet stays) when given.
    pub fn prune_archived(&self, keep_last: u64, archived_below: Option<u64>) -> Result<PruneReport, ChainError> {
        let _writer = self.write_lock()?;
        let ptrs = self.pointers();
        let head = ptrs.head.ok_or(ChainError::NotInitialized)?;
        let wanted = (head.number + 1).saturating_sub(keep_last);
        let limit = ptrs.finalized.map_or(ptrs.pruned_below, |f| f.number + 1);
        let limited_by_finalized = wanted > limit;
        let limited_by_archive = archived_below.is_some_and(|a| wanted.min(limit) > a);
        let below = wanted.min(limit).min(archived_below.unwrap_or(u64::MAX));
        if below <= ptrs.pruned_below {
            return Ok(PruneReport {
                previous: ptrs.pruned_below,
                pruned_below: ptrs.pruned_below,
                limited_by_finalized,
                limited_by_archive,
            });
        }
        let mut applier = Applier::<S, M>::new(&self.store, ptrs);
        let b = &mut applier.batch;
        b.delete_prefix_range::<Bodies<M>, u64>(..below)?;
        b.delete_prefix_range::<Transactions<M>, u64>(..below)?;
        b.delete_prefix_range::<Receipts<M>, u64>(..below)?;
        b.delete_prefix_range::<Senders<M>, u64>(..below)?;
        b.delete_prefix_range::<StateChanges<M>, u64>(..below)?;
        b.delete_prefix_range::<StateRoots<M>, u64>(..below)?;
        b.delete_range::<LogBloom<M>>(..below)?;
        b.delete_prefix_range::<BloomBitsTable<M>, u64>(..below / SECTION_SIZE)?;
        applier.ptrs.pruned_below = below;
        applier.touch(MetaKey::PrunedBelow);
        let (batch, new_ptrs) = applier.finish()?;
        self.store.write(batch, Durability::Synced)?;
        self.set_ptrs(new_ptrs);
        Ok(PruneReport { previous: ptrs.pruned_below, pruned_below: below, limited_by_finalized, limited_by_archive })
    }
}

impl<S: KvStore + KvCompact, M: ChainModel> ChainStore<S, M> {
    /// Compacts the pruned key ranges so the engine releases their disk space.
    pub fn compact_pruned(&self) -> Result<(), ChainError> {
        let below = self.pointers().pruned_below;
        if below == 0 {
            return Ok(());
        }
        self.store.compact_prefix_range::<Bodies<M>, u64>(..below)?;
        self.store.compact_prefix_range::<Transactions<M>, u64>(..below)?;
        self.store.compact_prefix_range::<Receipts<M>, u64>(..below)?;
        self.store.compact_prefix_range::<Senders<M>, u64>(..below)?;
        self.store.compact_prefix_range::<StateChanges<M>, u64>(..below)?;
        self.store.compact_prefix_range::<StateRoots<M>, u64>(..below)?;
        self.store.compact::<LogBloom<M>>(..below)?;
        self.store.compact_prefix_range::<BloomBitsTable<M>, u64>(..below / SECTION_SIZE)?;
        Ok(())
    }
}
