//! The canonical chain: reorgs and the safe / finalized pointers.

use storage_api::{Durability, KvStore, ReadExt};

use crate::ChainStore;
use crate::apply::Applier;
use crate::bloom::Bloom;
use crate::error::ChainError;
use crate::model::{BlockHeader, BlockRef, ChainModel, hex};
use crate::schema::{Canonical, ChangeSet, Fixed, Headers, MetaKey, StateChanges};

/// What a head change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorg<H> {
    /// The newest block both chains share.
    pub fork_point: BlockRef<H>,
    /// Blocks that left the canonical chain, newest first.
    pub removed: Vec<BlockRef<H>>,
    /// Blocks that joined it, oldest first.
    pub added: Vec<BlockRef<H>>,
}

impl<S: KvStore, M: ChainModel> ChainStore<S, M> {
    /// Makes the stored block `hash` the canonical head, in one synced batch: the old branch
    /// above the common ancestor is reverted (its canonical heights, transaction and address
    /// index entries, blooms and state writes undone, newest first) and the new branch applied,
    /// oldest first. The head may move forward, backward or sideways. A safe block that leaves
    /// the canonical chain is cleared. Fails, writing nothing, if the change would remove a
    /// finalized block.
    pub fn set_canonical_head(&self, hash: &M::Hash) -> Result<Reorg<M::Hash>, ChainError> {
        let _writer = self.write_lock()?;
        let ptrs = self.pointers();
        let head = ptrs.head.ok_or(ChainError::NotInitialized)?;
        if head.hash == *hash {
            return Ok(Reorg { fork_point: head, removed: Vec::new(), added: Vec::new() });
        }
        let header =
            self.store.get::<Headers<M>>(&Fixed(*hash))?.ok_or_else(|| ChainError::UnknownBlock(hex(hash.as_ref())))?.0;
        // Walk back from the target to the canonical chain.
        let mut added = Vec::new();
        let mut cur = BlockRef { number: header.number(), hash: *hash };
        let mut parent = header.parent_hash();
        while !self.is_canonical_at(cur, head.number)? {
            added.push(cur);
            let p = self.store.get::<Headers<M>>(&Fixed(parent))?.ok_or_else(|| ChainError::Missing {
                table: <Headers<M> as storage_api::Table>::NAME,
                block: hex(parent.as_ref()),
                number: cur.number.saturating_sub(1),
            })?;
            cur = BlockRef { number: p.0.number(), hash: parent };
            parent = p.0.parent_hash();
        }
        let fork_point = cur;
        added.reverse();
        if let Some(f) = ptrs.finalized
            && fork_point.number < f.number
        {
            return Err(ChainError::ReorgPastFinalized {
                target: hex(hash.as_ref()),
                fork_number: fork_point.number,
                finalized: hex(f.hash.as_ref()),
                finalized_number: f.number,
            });
        }
        let mut removed = Vec::new();
        for entry in
            self.store.iter::<Canonical<M>>(fork_point.number + 1..=head.number, storage_api::Direction::Reverse)?
        {
            let (number, hash) = entry?;
            removed.push(BlockRef { number, hash: hash.0 });
        }
        let mut applier = Applier::new(&self.store, ptrs);
        for b in &removed {
            let entries = self.tx_entries(b)?;
            let changes = self.change_set(b)?;
            applier.revert(*b, &entries, changes.as_ref())?;
        }
        for b in &added {
            let entries = self.tx_entries(b)?;
            // The header's bloom where the model's headers carry one; else from the receipts.
            let header = self.header(&b.hash)?;
            let bloom = match header.as_ref().and_then(M::header_bloom) {
                Some(bloom) => bloom,
                None => Bloom::of_receipts::<M>(&self.block_receipts(b)?),
            };
            let claimed = header.as_ref().and_then(|h| self.claimed_root(h));
            let mut changes = self.change_set(b)?;
            applier.apply(*b, &entries, Some(bloom), changes.as_mut(), claimed)?;
        }
        applier.ptrs.head = Some(BlockRef { number: header.number(), hash: *hash });
        applier.touch(MetaKey::Head);
        if let Some(s) = applier.ptrs.safe
            && s.number > fork_point.number
        {
            applier.ptrs.safe = None;
            applier.touch(MetaKey::Safe);
        }
        let (batch, new_ptrs) = applier.finish()?;
        self.store.write(batch, Durability::Synced)?;
        self.set_ptrs(new_ptrs);
        Ok(Reorg { fork_point, removed, added })
    }

    /// Marks the canonical block `hash` safe.
    pub fn set_safe(&self, hash: &M::Hash) -> Result<(), ChainError> {
        self.set_pointer(MetaKey::Safe, hash)
    }

    /// Marks the canonical block `hash` finalized: it and its ancestors can no longer be
    /// reorged out. The finalized height never decreases.
    pub fn set_finalized(&self, hash: &M::Hash) -> Result<(), ChainError> {
        self.set_pointer(MetaKey::Finalized, hash)
    }

    fn set_pointer(&self, key: MetaKey, hash: &M::Hash) -> Result<(), ChainError> {
        let _writer = self.write_lock()?;
        let ptrs = self.pointers();
        let head = ptrs.head.ok_or(ChainError::NotInitialized)?;
        let header =
            self.store.get::<Headers<M>>(&Fixed(*hash))?.ok_or_else(|| ChainError::UnknownBlock(hex(hash.as_ref())))?.0;
        let at = BlockRef { number: header.number(), hash: *hash };
        if !self.is_canonical_at(at, head.number)? {
            return Err(ChainError::NotCanonical(hex(hash.as_ref())));
        }
        let mut applier = Applier::<S, M>::new(&self.store, ptrs);
        match key {
            MetaKey::Finalized => {
                if let Some(f) = ptrs.finalized
                    && at.number < f.number
                {
                    return Err(ChainError::FinalizedBackwards { current: f.number, requested: at.number });
                }
                applier.ptrs.finalized = Some(at);
            }
            _ => applier.ptrs.safe = Some(at),
        }
        applier.touch(key);
        let (batch, new_ptrs) = applier.finish()?;
        self.store.write(batch, Durability::Synced)?;
        self.set_ptrs(new_ptrs);
        Ok(())
    }
}

impl<S: storage_api::KvReader, M: ChainModel> ChainStore<S, M> {
    /// The change set of block `at`: `None` if it made no state writes, `Missing` if it did
    /// and the change set is gone.
    pub(crate) fn change_set(&self, at: &BlockRef<M::Hash>) -> Result<Option<ChangeSet<M>>, ChainError> {
        if !self.body_record(at)?.has_changes {
            return Ok(None);
        }
        Ok(Some(self.required::<StateChanges<M>, _>(at)?))
    }

    /// Whether `block` is canonical, given the head's height.
    pub(crate) fn is_canonical_at(&self, block: BlockRef<M::Hash>, head: u64) -> Result<bool, ChainError> {
        Ok(block.number <= head && self.store.get::<Canonical<M>>(&block.number)?.is_some_and(|h| h.0 == block.hash))
    }
}
