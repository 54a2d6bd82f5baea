//! Applying and reverting canonical blocks inside one write batch.
//!
//! Both inserts that extend the head and reorgs go through an [`Applier`]. It keeps what the
//! batch has written so far — the state, the blooms, the index entries — so later blocks of
//! the same batch read their predecessors' writes, and a revert followed by an apply of the
//! same key resolves to the last operation. Index and state entries are emitted sorted by key
//! when the batch is finished: an LSM memtable takes a sorted run much faster than keys at
//! random positions.

use std::collections::{BTreeMap, HashMap};

use storage_api::{KvStore, ReadExt, WriteBatch};

use crate::Pointers;
use crate::bloom::{Bloom, SECTION_SIZE, transpose};
use crate::canonical::{self, TxEntry};
use crate::error::ChainError;
use crate::model::{BlockRef, ChainModel, TxLocation};
use crate::schema::{
    AddressIndex, BloomBitsTable, Canonical, ChainMeta, ChangeSet, Fixed, LogBloom, MetaKey, MetaValue, State,
    StateChanges, StateRoots, Stored, TxIndex, block_key,
};
use crate::trie::{self, Overlay};

/// A finished batch and the pointers it leaves.
pub(crate) type Finished<'s, S, M> =
    (WriteBatch<<S as storage_api::KvWrite>::Batch<'s>>, Pointers<<M as ChainModel>::Hash>);

type AddressKey<M> = (<M as ChainModel>::Address, u64, u32);

/// A batch of canonical-chain changes under construction.
pub(crate) struct Applier<'s, S: KvStore + 's, M: ChainModel> {
    store: &'s S,
    pub(crate) batch: WriteBatch<S::Batch<'s>>,
    /// State written by this batch (`None`: deleted).
    state: HashMap<M::StateKey, Option<M::StateValue>>,
    /// Blooms written by this batch (`None`: deleted).
    blooms: HashMap<u64, Option<Bloom>>,
    tx_index: BTreeMap<M::Hash, Option<TxLocation<M::Hash>>>,
    address_index: BTreeMap<AddressKey<M>, Option<M::Hash>>,
    canonical: BTreeMap<u64, Option<M::Hash>>,
    /// The pointers as this batch leaves them.
    pub(crate) ptrs: Pointers<M::Hash>,
    meta_dirty: Vec<MetaKey>,
    /// The trie tables under this batch's writes, while the trie is built.
    trie: Option<Overlay<'s, S, M>>,
    /// The state root after each block this batch applied with state writes.
    roots: Vec<(BlockRef<M::Hash>, [u8; 32])>,
}

impl<'s, S: KvStore, M: ChainModel> Applier<'s, S, M> {
    pub(crate) fn new(store: &'s S, ptrs: Pointers<M::Hash>) -> Self {
        Applier {
            store,
            batch: store.batch(),
            state: HashMap::new(),
            blooms: HashMap::new(),
            tx_index: BTreeMap::new(),
            address_index: BTreeMap::new(),
            canonical: BTreeMap::new(),
            trie: ptrs.state_trie.then(|| Overlay::new(store)),
            ptrs,
            meta_dirty: Vec::new(),
            roots: Vec::new(),
        }
    }

    /// Starts maintaining the state trie (a store being initialised: its trie is empty).
    pub(crate) fn start_trie(&mut self) {
        if !self.ptrs.state_trie {
            self.ptrs.state_trie = true;
            self.trie = Some(Overlay::new(self.store));
            self.touch(MetaKey::StateTrie);
        }
    }

    /// Updates the state trie for `writes` (keys and the values the state now holds) and
    /// returns the new root, `None` while the trie is not built.
    fn update_trie<'k>(
        &mut self,
        writes: impl Iterator<Item = (&'k M::StateKey, Option<&'k M::StateValue>)>,
    ) -> Result<Option<[u8; 32]>, ChainError> {
        let Some(mut overlay) = self.trie.take() else { return Ok(None) };
        let writes: Vec<_> = writes.collect();
        let root = trie::update::<S, M>(&mut overlay, &writes, &mut |key| {
            Ok(self.current_values(std::iter::once(key))?.pop().flatten())
        });
        self.trie = Some(overlay);
        root.map(Some)
    }

    /// Makes block `at` canonical on top of the current state: indexes its transactions
    /// (`txs`, in order) and stores its bloom (if known), writes its state, and records the values its
    /// writes replace in its change set (stored if newly computed). A block without state
    /// writes has no change set.
    pub(crate) fn apply(
        &mut self,
        at: BlockRef<M::Hash>,
        txs: &[TxEntry<M>],
        bloom: Option<Bloom>,
        changes: Option<&mut ChangeSet<M>>,
        claimed_root: Option<[u8; 32]>,
    ) -> Result<(), ChainError> {
        let BlockRef { number, hash } = at;
        for entry in canonical::entries::<M>(at, txs, bloom.as_ref()) {
            self.set(entry, true);
        }
        if let Some(changes) = changes {
            if changes.previous.is_none() {
                changes.previous = Some(self.current_values(changes.writes.iter().map(|(k, _)| k))?);
                self.batch.put::<StateChanges<M>>(&block_key::<M>(&at), &Stored(changes.clone()))?;
            }
            for (key, value) in &changes.writes {
                self.state.insert(key.clone(), value.clone());
            }
            if let Some(root) = self.update_trie(changes.writes.iter().map(|(k, v)| (k, v.as_ref())))? {
                if let Some(claimed) = claimed_root
                    && claimed != root
                {
                    return Err(ChainError::StateRootMismatch {
                        block: crate::model::hex(hash.as_ref()),
                        number,
                        roots: Box::new(crate::error::Roots {
                            claimed: crate::model::hex(&claimed),
                            computed: crate::model::hex(&root),
                        }),
                    });
                }
                self.roots.push((at, root));
            }
        }
        if (number + 1).is_multiple_of(SECTION_SIZE) && number / SECTION_SIZE == self.ptrs.bloom_sections {
            self.build_section(number / SECTION_SIZE)?;
        }
        Ok(())
    }

    /// Removes the canonical block `at` (the current tip of this batch): drops its index
    /// entries and bloom and restores the state values its writes replaced.
    pub(crate) fn revert(
        &mut self,
        at: BlockRef<M::Hash>,
        txs: &[TxEntry<M>],
        changes: Option<&ChangeSet<M>>,
    ) -> Result<(), ChainError> {
        let BlockRef { number, hash } = at;
        let previous = match changes {
            Some(c) => match &c.previous {
                Some(p) => Some((c, p)),
                None => {
                    return Err(ChainError::Missing {
                        table: "state_changes (previous values)",
                        block: crate::model::hex(hash.as_ref()),
                        number,
                    });
                }
            },
            None => None,
        };
        for entry in canonical::entries::<M>(at, txs, None) {
            self.set(entry, false);
        }
        if let Some((changes, previous)) = previous {
            for ((key, _), prev) in changes.writes.iter().zip(previous) {
                self.state.insert(key.clone(), prev.clone());
            }
            self.update_trie(changes.writes.iter().map(|(k, _)| k).zip(previous.iter().map(Option::as_ref)))?;
        }
        let first_invalid = number / SECTION_SIZE;
        if self.ptrs.bloom_sections > first_invalid {
            self.ptrs.bloom_sections = first_invalid;
            self.meta_dirty.push(MetaKey::BloomSections);
        }
        Ok(())
    }

    /// Records one canonical entry as written (`present`) or removed, in this batch.
    fn set(&mut self, entry: canonical::Entry<'_, M>, present: bool) {
        match entry {
            canonical::Entry::Canonical { number, hash } => {
                self.canonical.insert(number, present.then_some(hash));
            }
            canonical::Entry::Tx { hash, at } => {
                self.tx_index.insert(hash, present.then_some(at));
            }
            canonical::Entry::Address { key, tx } => {
                self.address_index.insert(key, present.then_some(tx));
            }
            canonical::Entry::Bloom { number, bloom } => {
                self.blooms.insert(number, bloom.filter(|_| present).cloned());
            }
        }
    }

    /// The values `keys` hold as of this batch.
    fn current_values<'k>(
        &self,
        keys: impl Iterator<Item = &'k M::StateKey>,
    ) -> Result<Vec<Option<M::StateValue>>, ChainError> {
        let keys: Vec<&M::StateKey> = keys.collect();
        let missing: Vec<M::StateKey> =
            keys.iter().filter(|k| !self.state.contains_key(**k)).map(|k| (*k).clone()).collect();
        let mut stored = self.store.multi_get::<State<M>>(&missing)?.into_iter();
        Ok(keys
            .iter()
            .map(|k| match self.state.get(*k) {
                Some(v) => v.clone(),
                None => stored.next().flatten().map(|s| s.0),
            })
            .collect())
    }

    fn build_section(&mut self, section: u64) -> Result<(), ChainError> {
        let start = section * SECTION_SIZE;
        let end = start + SECTION_SIZE;
        let mut blooms: Vec<Option<Bloom>> = vec![None; SECTION_SIZE as usize];
        for entry in self.store.iter::<LogBloom<M>>(start..end, storage_api::Direction::Forward)? {
            let (h, bloom) = entry?;
            blooms[(h - start) as usize] = Some(bloom);
        }
        for (h, bloom) in &self.blooms {
            if (start..end).contains(h) {
                blooms[(h - start) as usize] = bloom.clone();
            }
        }
        let refs: Vec<Option<&Bloom>> = blooms.iter().map(Option::as_ref).collect();
        for (bit, bits) in transpose(&refs).iter().enumerate() {
            self.batch.put::<BloomBitsTable<M>>(&(section, bit as u16), bits)?;
        }
        self.ptrs.bloom_sections = section + 1;
        self.meta_dirty.push(MetaKey::BloomSections);
        Ok(())
    }

    /// Records a pointer change.
    pub(crate) fn touch(&mut self, key: MetaKey) {
        self.meta_dirty.push(key);
    }

    /// Emits the buffered entries and pointer records and returns the batch.
    pub(crate) fn finish(mut self) -> Result<Finished<'s, S, M>, ChainError> {
        for (number, hash) in &self.canonical {
            match hash {
                Some(h) => self.batch.put::<Canonical<M>>(number, &Stored(*h))?,
                None => self.batch.delete::<Canonical<M>>(number)?,
            };
        }
        for (tx, loc) in &self.tx_index {
            match loc {
                Some(l) => self.batch.put::<TxIndex<M>>(&Fixed(*tx), &Stored(*l))?,
                None => self.batch.delete::<TxIndex<M>>(&Fixed(*tx))?,
            };
        }
        for ((address, number, index), tx) in &self.address_index {
            let key = (Fixed(*address), *number, *index);
            match tx {
                Some(t) => self.batch.put::<AddressIndex<M>>(&key, &Stored(*t))?,
                None => self.batch.delete::<AddressIndex<M>>(&key)?,
            };
        }
        let mut blooms: Vec<_> = self.blooms.iter().collect();
        blooms.sort_unstable_by_key(|(h, _)| **h);
        for (h, bloom) in blooms {
            match bloom {
                Some(b) => self.batch.put::<LogBloom<M>>(h, b)?,
                None => self.batch.delete::<LogBloom<M>>(h)?,
            };
        }
        for (at, root) in &self.roots {
            self.batch.put::<StateRoots<M>>(&block_key::<M>(at), root)?;
        }
        if let Some(overlay) = self.trie.take() {
            overlay.write_into::<S>(&mut self.batch)?;
        }
        let mut state: Vec<_> = self.state.iter().collect();
        state.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (key, value) in state {
            match value {
                Some(v) => self.batch.put::<State<M>>(key, &Stored(v.clone()))?,
                None => self.batch.delete::<State<M>>(key)?,
            };
        }
        self.meta_dirty.sort_unstable_by_key(|k| *k as u8);
        self.meta_dirty.dedup();
        for key in &self.meta_dirty {
            let p = &self.ptrs;
            let value = match key {
                MetaKey::First => p.first.map(MetaValue::Block),
                MetaKey::Head => p.head.map(MetaValue::Block),
                MetaKey::Safe => p.safe.map(MetaValue::Block),
                MetaKey::Finalized => p.finalized.map(MetaValue::Block),
                MetaKey::PrunedBelow => Some(MetaValue::Number(p.pruned_below)),
                MetaKey::BloomSections => Some(MetaValue::Number(p.bloom_sections)),
                MetaKey::StateTrie => p.state_trie.then_some(MetaValue::Number(1)),
                // Written and removed by the bulk import only.
                MetaKey::BulkPending => continue,
            };
            match value {
                Some(v) => self.batch.put::<ChainMeta<M>>(&(*key as u8), &Stored(v))?,
                None => self.batch.delete::<ChainMeta<M>>(&(*key as u8))?,
            };
        }
        Ok((self.batch, self.ptrs))
    }
}
