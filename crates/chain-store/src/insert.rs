//! Storing blocks: the first block, then validated, idempotent inserts.

use std::collections::HashMap;

use storage_api::{KvStore, ReadExt};

use crate::ChainStore;
use crate::apply::Applier;
use crate::bloom::SECTION_SIZE;
use crate::error::ChainError;
use crate::model::{Block, BlockHeader, BlockRef, ChainModel, NewBlock, StateWrite, Transaction, hex};
use crate::schema::{Bodies, ChangeSet, Headers, MetaKey, Receipts, StateChanges, Stored};

/// What an insert did with one block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored, and it extended the canonical chain (its parent was the head).
    Canonical,
    /// Stored on a side branch; [`ChainStore::set_canonical_head`] can make it canonical.
    Side,
    /// Already stored (or earlier in the same call): nothing written.
    AlreadyStored,
}

/// One block of an insert, borrowed.
type BlockParts<'a, M> = (&'a Block<M>, &'a [<M as ChainModel>::Receipt], &'a [StateWrite<M>]);

impl<S: KvStore, M: ChainModel> ChainStore<S, M> {
    /// Stores the first block of an empty store — genesis, or a trusted checkpoint block at any
    /// height, whose parent is not needed — with its receipts and state writes (for genesis,
    /// the initial allocation). It becomes the canonical head. Always synced.
    pub fn init(&self, first: &NewBlock<M>) -> Result<(), ChainError> {
        validate(&first.block, &first.receipts)?;
        let _writer = self.write_lock();
        let ptrs = self.pointers();
        if let Some(f) = ptrs.first {
            if f.hash == first.block.hash() {
                return Ok(());
            }
            return Err(ChainError::AlreadyInitialized { number: f.number, hash: hex(f.hash.as_ref()) });
        }
        let block = &first.block;
        let at = block.block_ref();
        let mut applier = Applier::new(&self.store, ptrs);
        applier.ptrs.bloom_sections = at.number / SECTION_SIZE;
        applier.touch(MetaKey::BloomSections);
        put_block(&mut applier, block, &first.receipts)?;
        let mut changes = change_set::<M>(&first.state);
        applier.apply(at.number, at.hash, &block.transactions, &first.receipts, &mut changes)?;
        applier.ptrs.first = Some(at);
        applier.ptrs.head = Some(at);
        applier.touch(MetaKey::First);
        applier.touch(MetaKey::Head);
        let (batch, ptrs) = applier.finish()?;
        self.store.write(batch, storage_api::Durability::Synced)?;
        self.set_ptrs(ptrs);
        Ok(())
    }

    /// Validates and stores one block with its receipts (one per transaction) and the state
    /// writes its execution made. If its parent is the head, the block becomes the head in the
    /// same atomic batch, with every index and its state; otherwise it is stored as a side
    /// block. Idempotent.
    pub fn insert_block(
        &self,
        block: &Block<M>,
        receipts: &[M::Receipt],
        state: &[StateWrite<M>],
    ) -> Result<Inserted, ChainError> {
        Ok(self.insert_parts(&[(block, receipts, state)])?[0])
    }

    /// Stores many blocks in one atomic write, in order (a block's parent may come earlier in
    /// the slice). The fast path of a sync or import. On any error nothing is written.
    pub fn insert_blocks(&self, blocks: &[NewBlock<M>]) -> Result<Vec<Inserted>, ChainError> {
        let parts: Vec<BlockParts<'_, M>> =
            blocks.iter().map(|b| (&b.block, b.receipts.as_slice(), b.state.as_slice())).collect();
        self.insert_parts(&parts)
    }

    /// [`ChainStore::insert_blocks`] over borrowed blocks (no copies for callers that hold
    /// them elsewhere, such as a queue of requests).
    pub fn insert_block_refs(&self, blocks: &[&NewBlock<M>]) -> Result<Vec<Inserted>, ChainError> {
        let parts: Vec<BlockParts<'_, M>> =
            blocks.iter().map(|b| (&b.block, b.receipts.as_slice(), b.state.as_slice())).collect();
        self.insert_parts(&parts)
    }

    fn insert_parts(&self, blocks: &[BlockParts<'_, M>]) -> Result<Vec<Inserted>, ChainError> {
        for (block, receipts, _) in blocks {
            validate(block, receipts)?;
        }
        let _writer = self.write_lock();
        let ptrs = self.pointers();
        if ptrs.first.is_none() {
            return Err(ChainError::NotInitialized);
        }
        let hashes: Vec<M::Hash> = blocks.iter().map(|(b, _, _)| b.hash()).collect();
        let stored = self.store.multi_get::<Headers<M>>(&hashes)?;
        let mut outcome = vec![Inserted::AlreadyStored; blocks.len()];
        // The blocks new in this call, by hash: position in the call and height.
        let mut fresh: HashMap<M::Hash, (usize, u64)> = HashMap::new();
        let mut todo = Vec::new();
        for (i, s) in stored.iter().enumerate() {
            if s.is_none() && !fresh.contains_key(&hashes[i]) {
                fresh.insert(hashes[i], (i, blocks[i].0.number()));
                todo.push(i);
            }
        }
        if todo.is_empty() {
            return Ok(outcome);
        }
        let outside: Vec<M::Hash> =
            todo.iter().map(|&i| blocks[i].0.header.parent_hash()).filter(|p| !fresh.contains_key(p)).collect();
        let outside_headers = self.store.multi_get::<Headers<M>>(&outside)?;
        let known: HashMap<M::Hash, u64> =
            outside.iter().zip(&outside_headers).filter_map(|(h, s)| Some((*h, s.as_ref()?.0.number()))).collect();
        for &i in &todo {
            let block = blocks[i].0;
            let (number, parent) = (block.number(), block.header.parent_hash());
            let parent_number = match known.get(&parent) {
                Some(n) => *n,
                // A parent later in the slice is not a parent "earlier in the same call".
                None => match fresh.get(&parent) {
                    Some(&(j, n)) if j < i => n,
                    _ => {
                        return Err(ChainError::UnknownParent {
                            block: hex(block.hash().as_ref()),
                            number,
                            parent: hex(parent.as_ref()),
                        });
                    }
                },
            };
            if number != parent_number + 1 {
                return Err(ChainError::BadNumber { block: hex(block.hash().as_ref()), number, parent_number });
            }
            if let Some(f) = ptrs.finalized
                && number <= f.number
            {
                return Err(ChainError::ConflictsWithFinalized {
                    block: hex(block.hash().as_ref()),
                    number,
                    finalized: hex(f.hash.as_ref()),
                    finalized_number: f.number,
                });
            }
        }
        let mut applier = Applier::new(&self.store, ptrs);
        for &i in &todo {
            let (block, receipts, state) = blocks[i];
            put_block(&mut applier, block, receipts)?;
            let at = block.block_ref();
            let mut changes = change_set::<M>(state);
            if applier.ptrs.head.map(|h| h.hash) == Some(block.header.parent_hash()) {
                applier.apply(at.number, at.hash, &block.transactions, receipts, &mut changes)?;
                applier.ptrs.head = Some(at);
                applier.touch(MetaKey::Head);
                outcome[i] = Inserted::Canonical;
            } else {
                applier.batch.put::<StateChanges<M>>(&(at.number, at.hash), &Stored(changes))?;
                outcome[i] = Inserted::Side;
            }
        }
        let (batch, ptrs) = applier.finish()?;
        self.store.write(batch, self.durability)?;
        self.set_ptrs(ptrs);
        Ok(outcome)
    }
}

fn put_block<S: KvStore, M: ChainModel>(
    applier: &mut Applier<'_, S, M>,
    block: &Block<M>,
    receipts: &[M::Receipt],
) -> Result<(), ChainError> {
    let BlockRef { number, hash } = block.block_ref();
    applier.batch.put::<Headers<M>>(&hash, &Stored(block.header.clone()))?;
    applier.batch.put::<Bodies<M>>(&(number, hash), &Stored(block.transactions.clone()))?;
    applier.batch.put::<Receipts<M>>(&(number, hash), &Stored(receipts.to_vec()))?;
    Ok(())
}

/// The block's writes sorted by key, the last write to a key winning.
fn change_set<M: ChainModel>(writes: &[StateWrite<M>]) -> ChangeSet<M> {
    let mut sorted: Vec<(usize, &StateWrite<M>)> = writes.iter().enumerate().collect();
    sorted.sort_by(|a, b| a.1.0.cmp(&b.1.0).then(b.0.cmp(&a.0)));
    sorted.dedup_by(|later, earlier| later.1.0 == earlier.1.0);
    ChangeSet { writes: sorted.into_iter().map(|(_, w)| w.clone()).collect(), previous: None }
}

/// Checks what the model can check: hashes against content, one receipt per transaction.
fn validate<M: ChainModel>(block: &Block<M>, receipts: &[M::Receipt]) -> Result<(), ChainError> {
    let hash = block.hash();
    if receipts.len() != block.transactions.len() {
        return Err(ChainError::ReceiptCount {
            block: hex(hash.as_ref()),
            transactions: block.transactions.len(),
            receipts: receipts.len(),
        });
    }
    for (index, tx) in block.transactions.iter().enumerate() {
        if let Some(computed) = M::compute_tx_hash(tx)
            && computed != tx.hash()
        {
            return Err(ChainError::TxHashMismatch {
                block: hex(hash.as_ref()),
                index,
                claimed: hex(tx.hash().as_ref()),
                computed: hex(computed.as_ref()),
            });
        }
    }
    if let Some(computed) = M::compute_block_hash(&block.header, &block.transactions)
        && computed != hash
    {
        return Err(ChainError::HashMismatch { block: hex(hash.as_ref()), computed: hex(computed.as_ref()) });
    }
    Ok(())
}
