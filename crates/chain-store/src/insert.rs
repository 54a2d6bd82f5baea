//! Storing blocks: the first block (a full genesis, or a trusted checkpoint header alone),
//! then validated, idempotent inserts.

use std::collections::HashMap;

use storage_api::{KvStore, ReadExt, Table};

use crate::ChainStore;
use crate::apply::Applier;
use crate::bloom::{Bloom, SECTION_SIZE};
use crate::canonical::TxEntry;
use crate::error::ChainError;
use crate::model::{BlockHeader, BlockRef, ChainModel, NewBlock, StateWrite, Transaction, hex};
use crate::packed::Packed;
use crate::schema::{
    Bodies, BodyRecord, ChangeSet, Fixed, Headers, MetaKey, Receipts, Senders, StateChanges, Stored, Transactions,
    block_key,
};

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

impl<S: KvStore, M: ChainModel> ChainStore<S, M> {
    /// Stores the first block of an empty store — genesis, or a block at any height whose
    /// parent is not needed — with its receipts and state writes (for genesis, the initial
    /// allocation). It becomes the canonical head. Always synced.
    pub fn init(&self, first: &NewBlock<M>) -> Result<(), ChainError> {
        let Checks { entries, bloom } = validate(first)?;
        let _writer = self.write_lock()?;
        let ptrs = self.pointers();
        let at = first.block.block_ref();
        if let Some(f) = ptrs.first {
            return if f.hash == at.hash {
                Ok(())
            } else {
                Err(ChainError::AlreadyInitialized { number: f.number, hash: hex(f.hash.as_ref()) })
            };
        }
        let mut applier = Applier::new(&self.store, ptrs);
        applier.ptrs.bloom_sections = at.number / SECTION_SIZE;
        applier.touch(MetaKey::BloomSections);
        put_block(&mut applier, first, &entries)?;
        if self.build_state_trie {
            applier.start_trie();
        }
        let mut changes = change_set::<M>(&first.state);
        let claimed = self.claimed_root(&first.block.header);
        applier.apply(at, &entries, Some(bloom), changes.as_mut(), claimed)?;
        applier.ptrs.first = Some(at);
        applier.ptrs.head = Some(at);
        applier.touch(MetaKey::First);
        applier.touch(MetaKey::Head);
        let (batch, ptrs) = applier.finish()?;
        self.store.write(batch, storage_api::Durability::Synced)?;
        self.set_ptrs(ptrs);
        Ok(())
    }

    /// Starts an empty store from a trusted checkpoint: the header alone (a node syncing from
    /// a checkpoint has no body, receipts or state for it). It becomes the first block and the
    /// canonical head; its body is reported as pruned, and its bloom is the header's when the
    /// model's headers carry one. Always synced.
    pub fn init_checkpoint(&self, header: &M::Header) -> Result<(), ChainError> {
        let _writer = self.write_lock()?;
        let ptrs = self.pointers();
        let at = BlockRef { number: header.number(), hash: header.hash() };
        if let Some(f) = ptrs.first {
            return if f.hash == at.hash {
                Ok(())
            } else {
                Err(ChainError::AlreadyInitialized { number: f.number, hash: hex(f.hash.as_ref()) })
            };
        }
        let mut applier = Applier::<S, M>::new(&self.store, ptrs);
        applier.batch.put::<Headers<M>>(&Fixed(at.hash), &Stored(header.clone()))?;
        applier.ptrs.bloom_sections = at.number / SECTION_SIZE;
        if self.build_state_trie {
            applier.start_trie();
        }
        // Without a header bloom none is known for it (filters cannot reach it anyway).
        applier.apply(at, &[], M::header_bloom(header), None, None)?;
        applier.ptrs.first = Some(at);
        applier.ptrs.head = Some(at);
        applier.ptrs.pruned_below = at.number + 1;
        for key in [MetaKey::First, MetaKey::Head, MetaKey::PrunedBelow, MetaKey::BloomSections] {
            applier.touch(key);
        }
        let (batch, ptrs) = applier.finish()?;
        self.store.write(batch, storage_api::Durability::Synced)?;
        self.set_ptrs(ptrs);
        Ok(())
    }

    /// Validates and stores one block with its receipts (one per transaction), senders and the
    /// state writes its execution made. If its parent is the head, the block becomes the head
    /// in the same atomic batch, with every index and its state; otherwise it is stored as a
    /// side block. Idempotent: a stored block is recognised before anything is checked again.
    pub fn insert_block(&self, block: &NewBlock<M>) -> Result<Inserted, ChainError> {
        Ok(self.insert_block_refs(&[block])?[0])
    }

    /// Stores many blocks in one atomic write, in order (a block's parent may come earlier in
    /// the slice). The fast path of a sync or import. On any error nothing is written.
    pub fn insert_blocks(&self, blocks: &[NewBlock<M>]) -> Result<Vec<Inserted>, ChainError> {
        let refs: Vec<&NewBlock<M>> = blocks.iter().collect();
        self.insert_block_refs(&refs)
    }

    /// [`ChainStore::insert_blocks`] over borrowed blocks (no copies for callers that hold
    /// them elsewhere, such as a queue of requests).
    pub fn insert_block_refs(&self, blocks: &[&NewBlock<M>]) -> Result<Vec<Inserted>, ChainError> {
        let _writer = self.write_lock()?;
        let ptrs = self.pointers();
        if ptrs.first.is_none() {
            return Err(ChainError::NotInitialized);
        }
        let hashes: Vec<Fixed<M::Hash>> = blocks.iter().map(|b| Fixed(b.block.hash())).collect();
        let stored = self.store.multi_get::<Headers<M>>(&hashes)?;
        let mut outcome = vec![Inserted::AlreadyStored; blocks.len()];
        // The blocks new in this call, by hash: position in the call and height.
        let mut fresh: HashMap<M::Hash, (usize, u64)> = HashMap::new();
        let mut todo = Vec::new();
        for (i, s) in stored.iter().enumerate() {
            if s.is_none() && !fresh.contains_key(&hashes[i].0) {
                fresh.insert(hashes[i].0, (i, blocks[i].block.number()));
                todo.push(i);
            }
        }
        if todo.is_empty() {
            return Ok(outcome);
        }
        // Only blocks not stored yet are checked (hashes, roots, receipts, senders).
        let checked: Vec<Checks<M>> = todo.iter().map(|&i| validate(blocks[i])).collect::<Result<_, _>>()?;
        let outside: Vec<Fixed<M::Hash>> = todo
            .iter()
            .map(|&i| blocks[i].block.header.parent_hash())
            .filter(|p| !fresh.contains_key(p))
            .map(Fixed)
            .collect();
        let outside_headers = self.store.multi_get::<Headers<M>>(&outside)?;
        let known: HashMap<M::Hash, u64> =
            outside.iter().zip(&outside_headers).filter_map(|(h, s)| Some((h.0, s.as_ref()?.0.number()))).collect();
        for &i in &todo {
            let block = &blocks[i].block;
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
        for (&i, checks) in todo.iter().zip(checked) {
            let new = blocks[i];
            put_block(&mut applier, new, &checks.entries)?;
            let at = new.block.block_ref();
            let mut changes = change_set::<M>(&new.state);
            if applier.ptrs.head.map(|h| h.hash) == Some(new.block.header.parent_hash()) {
                let claimed = self.claimed_root(&new.block.header);
                applier.apply(at, &checks.entries, Some(checks.bloom), changes.as_mut(), claimed)?;
                applier.ptrs.head = Some(at);
                applier.touch(MetaKey::Head);
                outcome[i] = Inserted::Canonical;
            } else {
                if let Some(changes) = changes {
                    applier.batch.put::<StateChanges<M>>(&block_key::<M>(&at), &Stored(changes))?;
                }
                outcome[i] = Inserted::Side;
            }
        }
        let (batch, ptrs) = applier.finish()?;
        self.store.write(batch, self.durability)?;
        self.set_ptrs(ptrs);
        Ok(outcome)
    }
}

/// Queues a block's header, body record, transactions, receipts and (for models whose
/// transactions do not carry them) senders.
fn put_block<S: KvStore, M: ChainModel>(
    applier: &mut Applier<'_, S, M>,
    new: &NewBlock<M>,
    entries: &[TxEntry<M>],
) -> Result<(), ChainError> {
    let block = &new.block;
    let at = block.block_ref();
    let key = block_key::<M>(&at);
    let b = &mut applier.batch;
    b.put::<Headers<M>>(&Fixed(at.hash), &Stored(block.header.clone()))?;
    b.put::<Bodies<M>>(&key, &body_record(new))?;
    b.put::<Transactions<M>>(&key, &pack(Transactions::<M>::NAME, &block.transactions)?)?;
    b.put::<Receipts<M>>(&key, &pack(Receipts::<M>::NAME, &new.receipts)?)?;
    if block.transactions.iter().any(|tx| tx.sender().is_none()) {
        let senders: Vec<M::Address> = entries.iter().map(|e| e.sender).collect();
        b.put::<Senders<M>>(&key, &pack(Senders::<M>::NAME, &senders)?)?;
    }
    Ok(())
}

/// The body record of `new`.
pub(crate) fn body_record<M: ChainModel>(new: &NewBlock<M>) -> BodyRecord<M> {
    BodyRecord::<M> {
        tx_count: new.block.transactions.len() as u32,
        has_changes: !new.state.is_empty(),
        extra: new.block.extra.clone(),
    }
}

/// Packs `items` as one value of `table`.
pub(crate) fn pack<T: serde::Serialize + serde::de::DeserializeOwned>(
    table: &'static str,
    items: &[T],
) -> Result<Packed<T>, ChainError> {
    Packed::pack(items.iter()).map_err(|source| {
        ChainError::Write(storage_api::WriteError::Encode { table, part: storage_api::error::Part::Value, source })
    })
}

/// The block's writes sorted by key, the last write to a key winning; `None` without writes.
pub(crate) fn change_set<M: ChainModel>(writes: &[StateWrite<M>]) -> Option<ChangeSet<M>> {
    if writes.is_empty() {
        return None;
    }
    let mut sorted: Vec<(usize, &StateWrite<M>)> = writes.iter().enumerate().collect();
    sorted.sort_by(|a, b| a.1.0.cmp(&b.1.0).then(b.0.cmp(&a.0)));
    sorted.dedup_by(|later, earlier| later.1.0 == earlier.1.0);
    Some(ChangeSet { writes: sorted.into_iter().map(|(_, w)| w.clone()).collect(), previous: None })
}

/// What the checks of a new block found: each transaction's index entry, and the block's
/// bloom (computed once, for the header check and the store).
pub(crate) struct Checks<M: ChainModel> {
    pub(crate) entries: Vec<TxEntry<M>>,
    pub(crate) bloom: Bloom,
}

/// Checks a new block: one receipt and one sender per transaction, the body and receipts
/// against the header (the model's checks), the header's bloom against the receipts. Returns
/// what the indexes need of each transaction, and the bloom. Reads no store.
pub(crate) fn validate<M: ChainModel>(new: &NewBlock<M>) -> Result<Checks<M>, ChainError> {
    let bloom = check_contents(new)?;
    entries(new, bloom)
}

/// The checks of [`validate`] that need no senders (the cheap ones: hashes and roots, run
/// before anything recovers a signature): the height, one receipt per transaction, the body
/// and receipts against the header, the header's bloom against the receipts. Returns the bloom.
pub(crate) fn check_contents<M: ChainModel>(new: &NewBlock<M>) -> Result<Bloom, ChainError> {
    let block = &new.block;
    let shown = || hex(block.hash().as_ref());
    let count = block.transactions.len();
    if block.number() == u64::MAX {
        return Err(ChainError::HeightOutOfRange { block: shown(), number: block.number() });
    }
    if new.receipts.len() != count {
        return Err(ChainError::ReceiptCount { block: shown(), transactions: count, receipts: new.receipts.len() });
    }
    M::verify_body(&block.header, &block.transactions, &block.extra)
        .map_err(|m| ChainError::BodyMismatch { block: shown(), mismatch: m })?;
    let bloom = M::verify_receipts(&block.header, &new.receipts)
        .map_err(|m| ChainError::BodyMismatch { block: shown(), mismatch: m })?
        .unwrap_or_else(|| Bloom::of_receipts::<M>(&new.receipts));
    if let Some(claimed) = M::header_bloom(&block.header)
        && claimed != bloom
    {
        return Err(ChainError::BodyMismatch {
            block: shown(),
            mismatch: crate::model::Mismatch {
                what: "logs bloom".into(),
                claimed: format!("{claimed:?}"),
                computed: format!("{bloom:?}"),
            },
        });
    }
    Ok(bloom)
}

/// What the indexes need of each transaction of a block whose contents checked (one sender
/// per transaction, carried or given).
pub(crate) fn entries<M: ChainModel>(new: &NewBlock<M>, bloom: Bloom) -> Result<Checks<M>, ChainError> {
    let block = &new.block;
    let shown = || hex(block.hash().as_ref());
    let count = block.transactions.len();
    if !new.senders.is_empty() && new.senders.len() != count {
        return Err(ChainError::SenderCount { block: shown(), transactions: count, senders: new.senders.len() });
    }
    let entries = block
        .transactions
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            let sender = tx
                .sender()
                .or_else(|| new.senders.get(i).copied())
                .ok_or_else(|| ChainError::SenderCount { block: shown(), transactions: count, senders: 0 })?;
            Ok(TxEntry { hash: tx.hash(), sender, to: tx.to() })
        })
        .collect::<Result<_, ChainError>>()?;
    Ok(Checks { entries, bloom })
}
