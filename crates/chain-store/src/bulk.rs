//! Bulk import of finalized history through the backend's ingest path ([`KvIngest`]).
//!
//! Blocks that are final by construction (an archive, another node's history) skip the reorg
//! machinery: each must extend the head. A *range* of blocks (default 8,192) is one ingest:
//! height-keyed tables (bodies, transactions, receipts, senders, canonical, blooms, change
//! sets, bloom-bit sections) are written as the blocks arrive, already in key order; the
//! hash-keyed tables (headers, the transaction index, the address index) go through
//! memory-bounded [`Collector`]s that spill sorted runs to scratch files; the state touched by
//! the range is kept as one overlay and written sorted at the end.
//!
//! **Crash safety.** Before a range's ingest starts its bounds are recorded (synced) in the
//! meta table; the pointers (head, safe, finalized) move and the record is removed in one synced
//! batch after every table is ingested. A store that holds the record refuses writes
//! ([`ChainError::ImportPending`]) until [`ChainStore::roll_back_pending_import`] removes
//! what the range ingested (its blocks are found from the height-keyed tables, which are
//! ingested first; the state is restored from the range's change sets, ingested before the
//! state) — [`ChainStore::bulk_import`] does this first, so a restarted import resumes after
//! the last committed range.

use std::collections::HashMap;
use std::path::PathBuf;

use storage_api::ingest::{TableRuns, TypedIngest};
use storage_api::{Durability, KvIngest, KvStore, ReadExt, Table};

use crate::bloom::{Bloom, SECTION_SIZE, transpose};
use crate::canonical::TxEntry;
use crate::error::ChainError;
use crate::insert::{Checks, body_record, change_set, pack, validate};
use crate::model::{Block, BlockHeader, BlockRef, ChainModel, NewBlock, Transaction, hex};
use crate::schema::{
    AddressIndex, BloomBitsTable, Bodies, Canonical, ChainMeta, Fixed, Headers, LogBloom, MetaKey, MetaValue, Receipts,
    Senders, State, StateChanges, Stored, Transactions, TxIndex, block_key,
};
use crate::{ChainStore, canonical};

/// How a bulk import runs.
#[derive(Debug, Clone)]
pub struct BulkOptions {
    /// Blocks per committed range (the unit of resumption).
    pub range_blocks: u64,
    /// Memory for the sorted runs of one range, in bytes; past it runs spill to `scratch`.
    pub memory_budget: usize,
    /// Directory for spilled runs (created if missing; emptied of this import's files).
    pub scratch: PathBuf,
    /// Worker threads that prepare and check blocks for [`BulkImport::push_all`] while the
    /// calling thread stores them.
    pub threads: usize,
}

impl BulkOptions {
    /// Defaults (8,192-block ranges, 256 MiB, one worker per core) spilling into `scratch`.
    pub fn new(scratch: impl Into<PathBuf>) -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        BulkOptions { range_blocks: 8_192, memory_budget: 256 << 20, scratch: scratch.into(), threads }
    }
}

/// A block that passed every check of the bulk path that needs no store — hashes, roots,
/// receipts, bloom, senders — ready for [`BulkImport::push_checked`]. Checking reads nothing,
/// so it can run on any thread.
pub struct CheckedBlock<M: ChainModel> {
    new: NewBlock<M>,
    checks: Checks<M>,
}

impl<M: ChainModel> std::fmt::Debug for CheckedBlock<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CheckedBlock({} {})", self.new.block.number(), hex(self.new.block.hash().as_ref()))
    }
}

impl<M: ChainModel> CheckedBlock<M> {
    /// Checks `new`; a block that fails is refused with the mismatch named.
    pub fn check(new: NewBlock<M>) -> Result<Self, ChainError> {
        let checks = validate(&new)?;
        Ok(CheckedBlock { new, checks })
    }

    /// The checks of [`CheckedBlock::check`] that need no senders (hashes, roots, receipt
    /// count, bloom): a block's contents against its header, without signature recovery.
    pub fn check_contents(new: &NewBlock<M>) -> Result<(), ChainError> {
        crate::insert::check_contents(new).map(drop)
    }

    /// Checks `new`, whose senders are not known yet: the cheap checks first (hashes, roots,
    /// receipts, bloom), and only for a block that passes them `senders` is asked for its
    /// senders (signature recovery, the expensive part) before the rest. A block whose roots
    /// are wrong costs no recovery.
    pub fn check_recovering<E: From<ChainError>>(
        mut new: NewBlock<M>,
        senders: impl FnOnce(&Block<M>) -> Result<Vec<M::Address>, E>,
    ) -> Result<Self, E> {
        let bloom = crate::insert::check_contents(&new)?;
        if new.block.transactions.iter().any(|tx| tx.sender().is_none()) {
            new.senders = senders(&new.block)?;
        }
        let checks = crate::insert::entries(&new, bloom)?;
        Ok(CheckedBlock { new, checks })
    }

    /// The block.
    pub fn block(&self) -> &NewBlock<M> {
        &self.new
    }

    /// The block, given back.
    pub fn into_inner(self) -> NewBlock<M> {
        self.new
    }
}

/// What a bulk import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkReport {
    /// Blocks imported (committed).
    pub blocks: u64,
    /// Transactions imported (committed).
    pub transactions: u64,
    /// Ranges committed.
    pub ranges: u64,
    /// Sorted runs spilled to scratch files.
    pub spilled_runs: u64,
    /// The most bytes the sorted runs held in memory at once.
    pub peak_run_bytes: usize,
    /// Engine files ingested.
    pub files: u64,
}

/// The range under construction.
struct Range<'c, S: KvIngest + 'c, M: ChainModel> {
    ingest: TypedIngest<S::Ingest<'c>>,
    first: u64,
    headers: TableRuns<Headers<M>>,
    tx_index: TableRuns<TxIndex<M>>,
    address_index: TableRuns<AddressIndex<M>>,
    /// The state the range wrote (foldhash: SipHash was 4 % of a bulk import's profile).
    state: HashMap<M::StateKey, Option<M::StateValue>, foldhash::fast::RandomState>,
    /// Blocks and transactions added (counted in the report when the range commits).
    blocks: u64,
    transactions: u64,
}

/// A bulk import in progress; see the module docs.
pub struct BulkImport<'c, S: KvIngest + 'c, M: ChainModel> {
    chain: &'c ChainStore<S, M>,
    options: BulkOptions,
    head: BlockRef<M::Hash>,
    bloom_sections: u64,
    /// Blooms of the current bloom-bit section from this import (by offset in the section).
    section: Vec<Option<Bloom>>,
    range: Option<Range<'c, S, M>>,
    /// An open range whose blocks were dropped by a failure (heights and why): every call but
    /// [`BulkImport::discard`] repeats it, so no later call reports them stored.
    lost: Option<(u64, u64, String)>,
    report: BulkReport,
}

impl<S: KvIngest, M: ChainModel> std::fmt::Debug for BulkImport<'_, S, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BulkImport(head {}, {:?})", self.head.number, self.report)
    }
}

/// The record of a range being committed (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending<H> {
    pub(crate) from: u64,
    pub(crate) to: u64,
    /// The blocks stored at heights `from..=to` before the range began: side blocks above the
    /// head, the import's to leave alone (a rollback removes only what the range wrote).
    pub(crate) kept: Vec<BlockRef<H>>,
}

impl<S: KvStore, M: ChainModel> ChainStore<S, M> {
    /// Removes what an interrupted bulk import ingested of its last, uncommitted range, if
    /// any, and returns that range. Nothing else is touched: blocks stored in the range's
    /// heights before it began (side blocks above the head) keep their records, and only
    /// index entries that point at the range's own blocks are removed.
    ///
    /// What the range wrote is found from what it ingests first (the module docs): its blocks'
    /// records from the height-keyed tables (minus the blocks kept), the blocks it made
    /// canonical from [`Canonical`] (above the committed head only the range writes it), and
    /// the state to restore from all those blocks' change sets, newest first.
    pub fn roll_back_pending_import(&self) -> Result<Option<(u64, u64)>, ChainError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(Pending { from, to, kept }) = self.pending_import_slot().clone() else { return Ok(None) };
        let heights = from..=to;
        let canonical: Vec<BlockRef<M::Hash>> = self
            .store
            .iter::<Canonical<M>>(heights.clone(), storage_api::Direction::Forward)?
            .map(|e| e.map(|(number, hash)| BlockRef { number, hash: hash.0 }))
            .collect::<Result<_, _>>()?;
        let written: Vec<BlockRef<M::Hash>> = self
            .store
            .iter_prefix_range::<Bodies<M>, u64>(heights.clone(), storage_api::Direction::Forward)?
            .keys()
            .map(|k| k.map(|(number, hash)| BlockRef { number, hash: hash.0 }))
            .filter(|b| b.as_ref().map_or(true, |b| !kept.contains(b)))
            .collect::<Result<_, _>>()?;
        // The blocks whose state writes the range may have applied: those it brought and
        // those it made canonical (a side block it brought again).
        let mut applied: Vec<BlockRef<M::Hash>> = written.clone();
        applied.extend(canonical.iter().filter(|b| !written.contains(b)));
        applied.sort_by_key(|b| std::cmp::Reverse(b.number));
        let mut batch = self.store.batch();
        // State first, newest block first, so each key ends at its value before the range (for
        // a block whose writes never reached the state, its values before are the state's).
        for at in &applied {
            if let Some(Stored(changes)) = self.store.get::<StateChanges<M>>(&block_key::<M>(at))?
                && let Some(previous) = &changes.previous
            {
                for ((key, _), old) in changes.writes.iter().zip(previous) {
                    match old {
                        Some(v) => batch.put::<State<M>>(key, &Stored(v.clone()))?,
                        None => batch.delete::<State<M>>(key)?,
                    };
                }
            }
        }
        // The canonical entries of every block the range wrote or made canonical (a block whose
        // transactions were not ingested has none of its index entries ingested either: they
        // come after them).
        for at in &applied {
            let txs = match self.tx_entries(at) {
                Ok(txs) => txs,
                Err(ChainError::Missing { .. }) => Vec::new(),
                Err(e) => return Err(e),
            };
            for entry in canonical::entries::<M>(*at, &txs, None) {
                match entry {
                    canonical::Entry::Canonical { number, .. } => {
                        batch.delete::<Canonical<M>>(&number)?;
                    }
                    // Only an entry that names this block: the transaction may be canonical elsewhere.
                    canonical::Entry::Tx { hash, at: location } => {
                        if self.store.get::<TxIndex<M>>(&Fixed(hash))?.is_some_and(|l| l.0 == location) {
                            batch.delete::<TxIndex<M>>(&Fixed(hash))?;
                        }
                    }
                    canonical::Entry::Address { key: (party, number, index), .. } => {
                        batch.delete::<AddressIndex<M>>(&(Fixed(party), number, index))?;
                    }
                    canonical::Entry::Bloom { number, .. } => {
                        batch.delete::<LogBloom<M>>(&number)?;
                    }
                }
            }
        }
        // The records of the blocks the range brought.
        for at in &written {
            let key = block_key::<M>(at);
            batch.delete::<Headers<M>>(&Fixed(at.hash))?;
            batch.delete::<Bodies<M>>(&key)?;
            batch.delete::<Transactions<M>>(&key)?;
            batch.delete::<Receipts<M>>(&key)?;
            batch.delete::<Senders<M>>(&key)?;
            batch.delete::<StateChanges<M>>(&key)?;
        }
        // Above the committed head every height-keyed canonical entry is the range's: whatever
        // of them no block above could name goes too.
        batch.delete_range::<Canonical<M>>(heights.clone())?;
        batch.delete_range::<LogBloom<M>>(heights)?;
        let built = self.pointers().bloom_sections;
        batch.delete_prefix_range::<BloomBitsTable<M>, u64>(built..)?;
        batch.delete::<ChainMeta<M>>(&(MetaKey::BulkPending as u8))?;
        self.store.write(batch, Durability::Synced)?;
        *self.pending_import_slot() = None;
        Ok(Some((from, to)))
    }
}

impl<S: KvIngest, M: ChainModel> ChainStore<S, M> {
    /// Starts a bulk import of finalized blocks after the current head (rolling back an
    /// interrupted range first). Every block pushed must extend the head; the store's safe
    /// and finalized pointers follow the head.
    pub fn bulk_import(&self, options: BulkOptions) -> Result<BulkImport<'_, S, M>, ChainError> {
        self.roll_back_pending_import()?;
        let ptrs = self.pointers();
        let head = ptrs.head.ok_or(ChainError::NotInitialized)?;
        std::fs::create_dir_all(&options.scratch)
            .map_err(|source| ChainError::ScratchDir { path: options.scratch.clone(), source })?;
        let options = BulkOptions { range_blocks: options.range_blocks.max(1), ..options };
        Ok(BulkImport {
            chain: self,
            options,
            head,
            bloom_sections: ptrs.bloom_sections,
            section: Vec::new(),
            range: None,
            lost: None,
            report: BulkReport::default(),
        })
    }
}

impl<'c, S: KvIngest, M: ChainModel> BulkImport<'c, S, M> {
    /// The head after the blocks pushed so far.
    pub fn head(&self) -> BlockRef<M::Hash> {
        self.head
    }

    /// The chain store being imported into (for a model's own tables, written beside the
    /// import: see [`ChainModel::with_model_tables`]).
    pub fn chain(&self) -> &'c ChainStore<S, M> {
        self.chain
    }

    /// The last committed head (what a restarted import resumes after).
    pub fn committed_head(&self) -> Option<BlockRef<M::Hash>> {
        self.chain.head()
    }

    /// Checks `new` (hashes, roots, receipts, bloom, senders; it must extend the head) and
    /// adds it to the current range, committing the range when it is full.
    pub fn push(&mut self, new: &NewBlock<M>) -> Result<(), ChainError> {
        self.not_lost()?;
        self.extends_head(new)?;
        let checks = validate(new)?;
        self.add_checked(new, &checks)
    }

    /// Adds a block checked by [`CheckedBlock::check`] (it must extend the head), committing
    /// the range when it is full.
    pub fn push_checked(&mut self, block: &CheckedBlock<M>) -> Result<(), ChainError> {
        self.not_lost()?;
        self.extends_head(&block.new)?;
        self.add_checked(&block.new, &block.checks)
    }

    /// Pushes every item of `items` in order, each turned into a block by `prepare` and
    /// checked on worker threads ([`BulkOptions::threads`]) while this thread stores the
    /// blocks before it: decoding, sender recovery and the model's checks overlap with
    /// storing. `pushed` is called after each block is added. Stops at the first error (the
    /// blocks before it stay in the open range, as with [`BulkImport::push`]); returns the
    /// blocks pushed.
    pub fn push_all<I, E>(
        &mut self,
        items: I,
        prepare: impl Fn(I::Item) -> Result<NewBlock<M>, E> + Sync,
        pushed: &mut dyn FnMut(&NewBlock<M>),
    ) -> Result<u64, E>
    where
        I: Iterator + Send,
        I::Item: Send,
        E: From<ChainError> + Send,
    {
        self.push_all_checked(items, |item| CheckedBlock::check(prepare(item)?).map_err(E::from), pushed)
    }

    /// [`BulkImport::push_all`] with `check` turning each item into a checked block itself
    /// (for example with [`CheckedBlock::check_recovering`], so the cheap checks run before
    /// signature recovery), on the worker threads.
    pub fn push_all_checked<I, E>(
        &mut self,
        items: I,
        check: impl Fn(I::Item) -> Result<CheckedBlock<M>, E> + Sync,
        pushed: &mut dyn FnMut(&NewBlock<M>),
    ) -> Result<u64, E>
    where
        I: Iterator + Send,
        I::Item: Send,
        E: From<ChainError> + Send,
    {
        let threads = self.options.threads.max(1);
        let mut count = 0;
        crate::pipeline::ordered(items, check, threads, |block: CheckedBlock<M>| {
            self.push_checked(&block)?;
            pushed(&block.new);
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    fn extends_head(&self, new: &NewBlock<M>) -> Result<(), ChainError> {
        let block = &new.block;
        let number = block.number();
        if block.header.parent_hash() != self.head.hash || number != self.head.number + 1 {
            return Err(ChainError::NotExtendingHead {
                block: hex(block.hash().as_ref()),
                number,
                head: hex(self.head.hash.as_ref()),
                head_number: self.head.number,
            });
        }
        Ok(())
    }

    /// Adds a block whose checks passed; past this point a failure leaves the block half
    /// added, so the open range is dropped (nothing of it was visible) and the import is
    /// *lost* until [`BulkImport::discard`]: the blocks pushed to the range are not stored.
    fn add_checked(&mut self, new: &NewBlock<M>, checks: &Checks<M>) -> Result<(), ChainError> {
        let first = self.range.as_ref().map_or(new.block.number(), |r| r.first);
        if let Err(e) = self.add(new, &checks.entries, &checks.bloom) {
            self.drop_range(first, new.block.number(), &e);
            return Err(e);
        }
        Ok(())
    }

    /// Rolls back the open range after a failure (the store refuses writes until that
    /// succeeds) and marks the import lost.
    fn drop_range(&mut self, first: u64, last: u64, cause: &ChainError) {
        if self.lost.is_none() {
            self.lost = Some((first, last, cause.to_string()));
        }
        self.range = None;
        // Best effort: if this fails too, the pending record stays and the store refuses
        // writes until the next import (or `roll_back_pending_import`) succeeds.
        let _ = self.chain.roll_back_pending_import();
    }

    /// [`ChainError::RangeLost`] while a failure's range is not acknowledged.
    fn not_lost(&self) -> Result<(), ChainError> {
        match &self.lost {
            Some((from, to, reason)) => Err(ChainError::RangeLost { from: *from, to: *to, reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Adds a checked block to the open range (opening one if needed).
    fn add(&mut self, new: &NewBlock<M>, entries: &[TxEntry<M>], bloom: &Bloom) -> Result<(), ChainError> {
        let block = &new.block;
        let number = block.number();
        if self.range.is_none() {
            self.range = Some(self.open_range(number)?);
        }
        let at = block.block_ref();
        let range = self.range.as_mut().expect("opened above");
        let key = block_key::<M>(&at);
        // The block's own records, height-keyed (they arrive in key order).
        let ing = &mut range.ingest;
        ing.put::<Bodies<M>>(&key, &body_record(new))?;
        ing.put::<Transactions<M>>(&key, &pack(Transactions::<M>::NAME, &block.transactions)?)?;
        ing.put::<Receipts<M>>(&key, &pack(Receipts::<M>::NAME, &new.receipts)?)?;
        if block.transactions.iter().any(|tx| tx.sender().is_none()) {
            let senders: Vec<M::Address> = entries.iter().map(|e| e.sender).collect();
            ing.put::<Senders<M>>(&key, &pack(Senders::<M>::NAME, &senders)?)?;
        }
        if let Some(mut changes) = change_set::<M>(&new.state) {
            let missing: Vec<M::StateKey> =
                changes.writes.iter().map(|(k, _)| k).filter(|k| !range.state.contains_key(*k)).cloned().collect();
            let mut stored = self.chain.store.multi_get::<State<M>>(&missing)?.into_iter();
            let previous = changes
                .writes
                .iter()
                .map(|(k, _)| match range.state.get(k) {
                    Some(v) => v.clone(),
                    None => stored.next().flatten().map(|s| s.0),
                })
                .collect();
            changes.previous = Some(previous);
            range.ingest.put::<StateChanges<M>>(&key, &Stored(changes.clone()))?;
            for (k, v) in changes.writes {
                range.state.insert(k, v);
            }
        }
        range.headers.insert(&Fixed(at.hash), &Stored(block.header.clone()))?;
        // What makes it canonical: height-keyed entries in order, hash-keyed ones through runs.
        for entry in canonical::entries::<M>(at, entries, Some(bloom)) {
            match entry {
                canonical::Entry::Canonical { number, hash } => {
                    range.ingest.put::<Canonical<M>>(&number, &Stored(hash))?;
                }
                canonical::Entry::Tx { hash, at } => range.tx_index.insert(&Fixed(hash), &Stored(at))?,
                canonical::Entry::Address { key: (party, number, index), tx } => {
                    range.address_index.insert(&(Fixed(party), number, index), &Stored(tx))?;
                }
                canonical::Entry::Bloom { number, bloom } => {
                    if let Some(bloom) = bloom {
                        range.ingest.put::<LogBloom<M>>(&number, bloom)?;
                    }
                }
            }
        }
        // Bloom-bit sections: built when the section's last block arrives.
        let offset = (number % SECTION_SIZE) as usize;
        if self.section.len() <= offset {
            self.section.resize(offset + 1, None);
        }
        self.section[offset] = Some(bloom.clone());
        if (number + 1).is_multiple_of(SECTION_SIZE) && number / SECTION_SIZE == self.bloom_sections {
            self.build_section(number / SECTION_SIZE)?;
        }
        let range = self.range.as_mut().expect("opened above");
        range.blocks += 1;
        range.transactions += entries.len() as u64;
        self.head = at;
        if number + 1 - self.range.as_ref().map_or(number, |r| r.first) >= self.options.range_blocks {
            self.commit_range()?;
        }
        Ok(())
    }

    /// Records the range as pending (synced), then starts its ingest. The record comes first:
    /// an engine whose ingest holds the write transaction (redb) takes no other write until
    /// the ingest ends.
    fn open_range(&self, first: u64) -> Result<Range<'c, S, M>, ChainError> {
        let chain = self.chain;
        let last = first.saturating_add(self.options.range_blocks - 1);
        // Side blocks already stored at these heights are not the range's to roll back.
        let kept: Vec<BlockRef<M::Hash>> = chain
            .store
            .iter_prefix_range::<Bodies<M>, u64>(first..=last, storage_api::Direction::Forward)?
            .keys()
            .map(|k| k.map(|(number, hash)| BlockRef { number, hash: hash.0 }))
            .collect::<Result<_, _>>()?;
        let mut batch = chain.store.batch();
        let record = MetaValue::<M::Hash>::Import { from: first, to: last, kept: kept.clone() };
        batch.put::<ChainMeta<M>>(&(MetaKey::BulkPending as u8), &Stored(record))?;
        chain.store.write(batch, Durability::Synced)?;
        *chain.pending_import_slot() = Some(Pending { from: first, to: last, kept });
        let budget = self.options.memory_budget / 3;
        let dir = &self.options.scratch;
        Ok(Range {
            ingest: TypedIngest::new(self.chain.store.ingest()?),
            first,
            headers: TableRuns::new(dir, &first.to_string(), budget),
            tx_index: TableRuns::new(dir, &first.to_string(), budget),
            address_index: TableRuns::new(dir, &first.to_string(), budget),
            state: HashMap::default(),
            blocks: 0,
            transactions: 0,
        })
    }

    fn build_section(&mut self, section: u64) -> Result<(), ChainError> {
        let start = section * SECTION_SIZE;
        // Blooms of the section stored before this import began.
        let mut blooms: Vec<Option<Bloom>> = vec![None; SECTION_SIZE as usize];
        for entry in
            self.chain.store.iter::<LogBloom<M>>(start..start + SECTION_SIZE, storage_api::Direction::Forward)?
        {
            let (h, bloom) = entry?;
            blooms[(h - start) as usize] = Some(bloom);
        }
        for (i, b) in std::mem::take(&mut self.section).into_iter().enumerate() {
            if b.is_some() {
                blooms[i] = b;
            }
        }
        let refs: Vec<Option<&Bloom>> = blooms.iter().map(Option::as_ref).collect();
        let ing = &mut self.range.as_mut().expect("a range is open").ingest;
        for (bit, bits) in transpose(&refs).iter().enumerate() {
            ing.put::<BloomBitsTable<M>>(&(section, bit as u16), bits)?;
        }
        self.bloom_sections = section + 1;
        Ok(())
    }

    /// Ingests the open range and moves the pointers past it; a failure drops the range (see
    /// [`BulkImport::add_checked`]).
    fn commit_range(&mut self) -> Result<(), ChainError> {
        self.not_lost()?;
        let Some(range) = self.range.take() else { return Ok(()) };
        let (first, last) = (range.first, self.head.number);
        self.ingest_range(range).inspect_err(|e| self.drop_range(first, last, e))
    }

    fn ingest_range(&mut self, mut range: Range<'c, S, M>) -> Result<(), ChainError> {
        let (range_blocks, range_transactions) = (range.blocks, range.transactions);
        let chain = self.chain;
        for (runs, peak) in [
            (range.headers.runs(), range.headers.peak_bytes()),
            (range.tx_index.runs(), range.tx_index.peak_bytes()),
            (range.address_index.runs(), range.address_index.peak_bytes()),
        ] {
            self.report.spilled_runs += runs as u64;
            self.report.peak_run_bytes = self.report.peak_run_bytes.max(peak);
        }
        range.ingest.drain(range.headers)?;
        range.ingest.drain(range.tx_index)?;
        range.ingest.drain(range.address_index)?;
        let mut state: Vec<_> = range.state.into_iter().collect();
        state.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // The state trie follows in the batch that moves the head (after the state is
        // ingested, so accounts read their values): a range rolled back leaves it as it was.
        let touched = if chain.pointers().state_trie { state.clone() } else { Vec::new() };
        for (k, v) in state {
            match v {
                Some(v) => range.ingest.put::<State<M>>(&k, &Stored(v))?,
                None => range.ingest.delete::<State<M>>(&k)?,
            }
        }
        let stats = range.ingest.commit()?;
        self.report.files += stats.files;
        let mut ptrs = chain.pointers();
        ptrs.head = Some(self.head);
        ptrs.safe = Some(self.head);
        ptrs.finalized = Some(self.head);
        ptrs.bloom_sections = self.bloom_sections;
        let mut batch = chain.store.batch();
        for (key, value) in [
            (MetaKey::Head, MetaValue::Block(self.head)),
            (MetaKey::Safe, MetaValue::Block(self.head)),
            (MetaKey::Finalized, MetaValue::Block(self.head)),
            (MetaKey::BloomSections, MetaValue::Number(self.bloom_sections)),
        ] {
            batch.put::<ChainMeta<M>>(&(key as u8), &Stored(value))?;
        }
        batch.delete::<ChainMeta<M>>(&(MetaKey::BulkPending as u8))?;
        if !touched.is_empty() {
            let mut overlay = crate::trie::Overlay::new(&chain.store);
            let pairs: Vec<_> = touched.iter().map(|(k, v)| (k, v.as_ref())).collect();
            let root = crate::trie::update::<S, M>(&mut overlay, &pairs, &mut |k| chain.state(k))?;
            overlay.write_into::<S>(&mut batch)?;
            batch.put::<crate::schema::StateRoots<M>>(&block_key::<M>(&self.head), &root)?;
        }
        chain.store.write(batch, Durability::Synced)?;
        chain.set_ptrs(ptrs);
        *chain.pending_import_slot() = None;
        self.report.ranges += 1;
        self.report.blocks += range_blocks;
        self.report.transactions += range_transactions;
        Ok(())
    }

    /// Commits the open range now (a caller that verifies whole files commits at each
    /// file's end, with `range_blocks` set past a file's length).
    pub fn commit(&mut self) -> Result<(), ChainError> {
        self.commit_range()
    }

    /// Discards the open range (nothing of it becomes visible), acknowledges a range lost to
    /// a failure, and continues from the last committed head.
    pub fn discard(&mut self) -> Result<(), ChainError> {
        if self.range.take().is_some() || self.lost.is_some() {
            self.chain.roll_back_pending_import()?;
        }
        self.lost = None;
        let ptrs = self.chain.pointers();
        self.head = ptrs.head.ok_or(ChainError::NotInitialized)?;
        self.bloom_sections = ptrs.bloom_sections;
        self.section.clear();
        Ok(())
    }

    /// Commits the last range and returns what the import did.
    pub fn finish(mut self) -> Result<BulkReport, ChainError> {
        self.commit_range()?;
        Ok(self.report)
    }
}

/// An import dropped before [`BulkImport::finish`] discards its open range (nothing of it was
/// ingested) and removes the range's pending record, best effort: if that fails, the next
/// import or [`ChainStore::roll_back_pending_import`] does it.
impl<S: KvIngest, M: ChainModel> Drop for BulkImport<'_, S, M> {
    fn drop(&mut self) {
        if self.range.take().is_some() {
            let _ = self.chain.roll_back_pending_import();
        }
    }
}
