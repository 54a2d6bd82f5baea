//! A read-only integrity check of the whole chain store.

use std::collections::BTreeMap;
use std::fmt;

mod indexes;

use indexes::{Doubt, Expected, IndexSums};
use storage_api::{Direction, KvReader, ReadExt, Table};

use crate::ChainStore;
use crate::bloom::Bloom;
use crate::error::ChainError;
use crate::model::{BlockHeader, BlockRef, ChainModel, hex};
use crate::schema::{
    AddressIndex, BloomBitsTable, Bodies, Canonical, ChainMeta, Fixed, Headers, LogBloom, Receipts, Senders, State,
    StateChanges, Transactions, TxIndex, block_key,
};

/// Examples kept in a report.
const EXAMPLES: usize = 20;

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The table holding (or missing) the entry.
    pub table: &'static str,
    /// The entry's key, readable.
    pub key: String,
    /// What is wrong.
    pub what: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.table, self.key, self.what)
    }
}

/// The result of [`ChainStore::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegrityReport {
    /// Canonical blocks walked.
    pub blocks_checked: u64,
    /// Problems found, in total.
    pub problems: u64,
    /// Problems per table.
    pub by_table: BTreeMap<&'static str, u64>,
    /// The first problems found.
    pub examples: Vec<Problem>,
}

impl IntegrityReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems == 0
    }

    /// Adds `other`'s problems (its examples after this report's, up to the limit).
    fn merge(&mut self, other: IntegrityReport) {
        self.blocks_checked += other.blocks_checked;
        self.problems += other.problems;
        for (table, n) in other.by_table {
            *self.by_table.entry(table).or_default() += n;
        }
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }

    fn note(&mut self, table: &'static str, key: impl fmt::Display, what: impl fmt::Display) {
        self.problems += 1;
        *self.by_table.entry(table).or_default() += 1;
        if self.examples.len() < EXAMPLES {
            self.examples.push(Problem { table, key: key.to_string(), what: what.to_string() });
        }
    }
}

impl fmt::Display for IntegrityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} canonical blocks checked, {} problem(s)", self.blocks_checked, self.problems)?;
        for p in &self.examples {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// Walks the canonical chain and every table, verifying parent links, the height index,
    /// the transaction and address indexes, blooms and change sets, and that every stored value
    /// decodes. Modifies nothing; reports every problem (a count per table and the first
    /// examples). Errors only if the backend itself fails.
    ///
    /// The canonical walk is split into height ranges checked side by side (one per core),
    /// alongside the index and table scans; the report is the same as one thread's. The two
    /// indexes are compared with what the walk expects as order-independent sums, and gone
    /// through entry by entry only where those differ (see `check/indexes.rs`).
    pub fn check(&self) -> Result<IntegrityReport, ChainError> {
        let mut r = IntegrityReport::default();
        let ptrs = self.pointers();
        for entry in self.store.iter_all::<ChainMeta<M>>(Direction::Forward)? {
            decoded(&mut r, ChainMeta::<M>::NAME, "meta", entry);
        }
        if let Some((from, to)) = self.pending_import() {
            let why = format!(
                "a bulk import of blocks {from}..={to} was interrupted while committing; resume it (or open the node, which rolls it back)"
            );
            r.note(ChainMeta::<M>::NAME, "bulk_pending", why);
        }
        let (Some(first), Some(head)) = (ptrs.first, ptrs.head) else { return Ok(r) };
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
        let span = (head.number - first.number + 1).div_ceil(parts).max(1);
        let ranges: Vec<(u64, Option<u64>)> = (0..parts)
            .map(|i| first.number + i * span)
            .take_while(|lo| *lo <= head.number)
            .map(|lo| (lo, Some(lo + span - 1).filter(|hi| *hi < head.number)))
            .collect();
        let (walks, indexes, tables) = std::thread::scope(|scope| {
            let walks: Vec<_> = ranges
                .iter()
                .map(|&(lo, hi)| scope.spawn(move || self.walk(lo, hi, first.number, head.number, ptrs.pruned_below)))
                .collect();
            let indexes = scope.spawn(|| {
                let mut r = IntegrityReport::default();
                self.index_sums(&mut r, &ptrs).map(|sums| (r, sums))
            });
            let tables = scope.spawn(|| {
                let mut r = IntegrityReport::default();
                self.check_tables(&mut r, head.number).map(|()| r)
            });
            let walks: Vec<_> =
                walks.into_iter().map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect();
            let indexes = indexes.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (walks, indexes, tables.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        let mut expected = IndexSums::default();
        for walk in walks {
            let (part, sums) = walk?;
            r.merge(part);
            expected.merge(sums);
        }
        let (part, held) = indexes?;
        r.merge(part);
        // An index whose sums differ is checked entry by entry, to name what is wrong.
        let doubt = Doubt { txs: held.txs != expected.txs, addresses: held.addresses != expected.addresses };
        if doubt.txs || doubt.addresses {
            let before = r.by_table.clone();
            self.index_entries(&mut r, &ptrs, doubt)?;
            // Sums that differ are a problem even where no single entry could be named (the
            // entries of a block whose transactions do not decode, say).
            for (table, held, expected) in [
                (TxIndex::<M>::NAME, held.txs, expected.txs),
                (AddressIndex::<M>::NAME, held.addresses, expected.addresses),
            ] {
                if held != expected && r.by_table.get(table) == before.get(table) {
                    let what = format!(
                        "the index holds {held} at or above the pruning boundary; its canonical blocks imply {expected}"
                    );
                    r.note(table, "sum", what);
                }
            }
        }
        r.merge(tables?);
        Ok(r)
    }

    /// The canonical blocks from `lo` to `hi` (`None`: to the end, where entries above the head
    /// and a head missing from the index are noted); returns the report and the number of
    /// index entries the blocks should have, summed.
    fn walk(
        &self,
        lo: u64,
        hi: Option<u64>,
        first: u64,
        head: u64,
        pruned_below: u64,
    ) -> Result<(IntegrityReport, IndexSums), ChainError> {
        let mut r = IntegrityReport::default();
        let mut expected = IndexSums::default();
        // The parent link into this range is checked against the canonical entry below it.
        let mut prev: Option<M::Hash> = match lo > first {
            true => self.store.get::<Canonical<M>>(&(lo - 1)).ok().flatten().map(|h| h.0),
            false => None,
        };
        let mut next = lo;
        let range = match hi {
            Some(hi) => self.store.iter::<Canonical<M>>(lo..=hi, Direction::Forward)?,
            None => self.store.iter::<Canonical<M>>(lo.., Direction::Forward)?,
        };
        for entry in range {
            let Some((h, hash)) = decoded(&mut r, Canonical::<M>::NAME, "entry", entry) else {
                prev = None;
                continue;
            };
            let hash = hash.0;
            if h > head {
                r.note(Canonical::<M>::NAME, h, "entry above the head");
                continue;
            }
            if h != next {
                r.note(Canonical::<M>::NAME, next, format!("heights {next}..{h} missing"));
            }
            next = h + 1;
            r.blocks_checked += 1;
            if let Some(entries) = self.check_block(&mut r, BlockRef { number: h, hash }, prev, pruned_below)? {
                entries.sum(&mut expected);
            }
            prev = Some(hash);
        }
        match hi {
            Some(hi) if next != hi + 1 => {
                r.note(Canonical::<M>::NAME, next, format!("heights {next}..{} missing", hi + 1))
            }
            None if next != head + 1 => r.note(Canonical::<M>::NAME, head, "the head is not on the canonical index"),
            _ => {}
        }
        Ok((r, expected))
    }

    /// One canonical block; returns the index entries it should have (`None` below the pruning
    /// boundary or without a body record).
    fn check_block(
        &self,
        r: &mut IntegrityReport,
        at: BlockRef<M::Hash>,
        parent: Option<M::Hash>,
        pruned_below: u64,
    ) -> Result<Option<Expected<M>>, ChainError> {
        let key = format!("{} {}", at.number, hex(at.hash.as_ref()));
        let header = match decoded(r, Headers::<M>::NAME, &key, self.store.get::<Headers<M>>(&Fixed(at.hash))) {
            Some(Some(h)) => {
                if h.0.number() != at.number || h.0.hash() != at.hash {
                    r.note(Headers::<M>::NAME, &key, "header does not match its canonical height and hash");
                }
                if parent.is_some_and(|p| p != h.0.parent_hash()) {
                    r.note(Headers::<M>::NAME, &key, "parent hash is not the canonical block below");
                }
                Some(h.0)
            }
            Some(None) => {
                r.note(Headers::<M>::NAME, &key, "canonical block has no header");
                None
            }
            None => None,
        };
        if at.number < pruned_below {
            return Ok(None);
        }
        let Some(record) = present(r, Bodies::<M>::NAME, &key, self.store.get::<Bodies<M>>(&block_key::<M>(&at)))
        else {
            return Ok(None);
        };
        let txs = self.packed::<Transactions<M>, _>(r, &at, &key, true)?;
        let receipts = self.packed::<Receipts<M>, _>(r, &at, &key, true)?;
        let needs_senders = txs.iter().any(|(_, t)| crate::model::Transaction::sender(t).is_none());
        let senders = self.packed::<Senders<M>, _>(r, &at, &key, needs_senders)?;
        let count = record.tx_count as usize;
        if txs.len() != count {
            r.note(
                Transactions::<M>::NAME,
                &key,
                format!("{} transaction(s) stored, the body says {count}", txs.len()),
            );
        }
        if receipts.len() != count {
            r.note(
                Receipts::<M>::NAME,
                &key,
                format!("{} receipt(s) stored for {count} transaction(s)", receipts.len()),
            );
        }
        let changes = self.store.get::<StateChanges<M>>(&block_key::<M>(&at));
        match decoded(r, StateChanges::<M>::NAME, &key, changes) {
            Some(Some(c)) if c.0.previous.as_ref().is_none_or(|p| p.len() != c.0.writes.len()) => {
                r.note(StateChanges::<M>::NAME, &key, "canonical block lacks the previous values of its writes");
            }
            Some(None) if record.has_changes => {
                r.note(StateChanges::<M>::NAME, &key, "missing for a canonical block with state writes");
            }
            _ => {}
        }
        let receipt_values: Vec<M::Receipt> = receipts.iter().map(|(_, v)| v.clone()).collect();
        let tx_values: Vec<M::Tx> = txs.iter().map(|(_, v)| v.clone()).collect();
        // The receipts' check may compute the bloom on the way; the comparison below reuses it.
        let mut computed_bloom = None;
        if let Some(h) = &header
            && txs.len() == count
        {
            if let Err(m) = M::verify_body(h, &tx_values, &record.extra) {
                r.note(Transactions::<M>::NAME, &key, m);
            }
            if receipts.len() == count {
                match M::verify_receipts(h, &receipt_values) {
                    Ok(bloom) => computed_bloom = bloom,
                    Err(m) => r.note(Receipts::<M>::NAME, &key, m),
                }
            }
        }
        let bloom = present(r, LogBloom::<M>::NAME, &key, self.store.get::<LogBloom<M>>(&at.number));
        if receipts.len() == count
            && bloom.is_some_and(|b| b != computed_bloom.unwrap_or_else(|| Bloom::of_receipts::<M>(&receipt_values)))
        {
            r.note(LogBloom::<M>::NAME, &key, "bloom does not match the receipts");
        }
        let (expected, without_sender) = Expected::of(at, &txs, &senders);
        for index in without_sender {
            r.note(Senders::<M>::NAME, format!("{key} {index}"), "no sender stored for a transaction that needs one");
        }
        Ok(Some(expected))
    }

    /// The items of packed table `T` for block `at` with their indexes; notes a value that is
    /// missing (when `required`) or does not decode.
    fn packed<T, X>(
        &self,
        r: &mut IntegrityReport,
        at: &BlockRef<M::Hash>,
        key: &str,
        required: bool,
    ) -> Result<Vec<(u32, X)>, ChainError>
    where
        T: Table<Key = (u64, Fixed<M::Hash>), Value = crate::packed::Packed<X>>,
        X: serde::Serialize + serde::de::DeserializeOwned,
    {
        let value = self.store.get::<T>(&block_key::<M>(at));
        let packed = if required { present(r, T::NAME, key, value) } else { decoded(r, T::NAME, key, value).flatten() };
        let Some(packed) = packed else { return Ok(Vec::new()) };
        match packed.unpack() {
            Ok(items) => Ok(items.into_iter().enumerate().map(|(i, x)| (i as u32, x)).collect()),
            Err(e) => {
                r.note(T::NAME, key, format!("cannot decode value: {e}"));
                Ok(Vec::new())
            }
        }
    }

    /// Values the walk did not decode: state, side blocks, bloom bits, strays above the head.
    fn check_tables(&self, r: &mut IntegrityReport, head: u64) -> Result<(), ChainError> {
        for entry in self.store.iter_all::<State<M>>(Direction::Forward)? {
            decoded(r, State::<M>::NAME, "entry", entry);
        }
        for entry in self.store.iter_all::<Headers<M>>(Direction::Forward)? {
            decoded(r, Headers::<M>::NAME, "entry", entry);
        }
        for entry in self.store.iter_all::<BloomBitsTable<M>>(Direction::Forward)? {
            decoded(r, BloomBitsTable::<M>::NAME, "entry", entry);
        }
        for entry in self.store.iter::<LogBloom<M>>(head + 1.., Direction::Forward)? {
            if let Some((h, _)) = decoded(r, LogBloom::<M>::NAME, "entry", entry) {
                r.note(LogBloom::<M>::NAME, h, "bloom above the head");
            }
        }
        self.side_values::<Bodies<M>>(r, head)?;
        self.side_values::<StateChanges<M>>(r, head)?;
        self.side_values::<Transactions<M>>(r, head)?;
        self.side_values::<Receipts<M>>(r, head)?;
        self.side_values::<Senders<M>>(r, head)?;
        Ok(())
    }

    /// Decodes the values of `T` that belong to non-canonical blocks.
    fn side_values<T>(&self, r: &mut IntegrityReport, head: u64) -> Result<(), ChainError>
    where
        T: Table<Key = (u64, Fixed<M::Hash>)>,
    {
        for key in self.store.iter_all::<T>(Direction::Forward)?.keys() {
            let Some((h, hash)) = decoded(r, T::NAME, "key", key) else { continue };
            if self.canonical_matches(BlockRef { number: h, hash: hash.0 }, head)? == Some(false) {
                decoded(r, T::NAME, format!("{h} {}", hex(hash.0.as_ref())), self.store.get::<T>(&(h, hash)));
            }
        }
        Ok(())
    }
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// Whether `block` is canonical; `None` if the canonical entry does not decode (the walk
    /// reports that once).
    fn canonical_matches(&self, block: BlockRef<M::Hash>, head: u64) -> Result<Option<bool>, ChainError> {
        match self.is_canonical_at(block, head) {
            Ok(b) => Ok(Some(b)),
            Err(ChainError::Read(storage_api::ReadError::Decode { .. })) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The value, or `None` after noting a decode (or backend) error.
fn decoded<T>(
    r: &mut IntegrityReport,
    table: &'static str,
    key: impl fmt::Display,
    result: Result<T, storage_api::ReadError>,
) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            r.note(table, key, e);
            None
        }
    }
}

/// A value that must exist: notes decode errors and absence.
fn present<T>(
    r: &mut IntegrityReport,
    table: &'static str,
    key: &str,
    result: Result<Option<T>, storage_api::ReadError>,
) -> Option<T> {
    match decoded(r, table, key, result)? {
        Some(v) => Some(v),
        None => {
            r.note(table, key, "missing for a canonical block");
            None
        }
    }
}
