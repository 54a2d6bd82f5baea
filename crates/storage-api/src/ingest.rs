//! Bulk ingestion of sorted runs: the capability behind bulk history import.
//!
//! An [`Ingest`] takes entries table by table in ascending key order (tables may interleave;
//! within one table every key is greater than the one before) and makes them visible at
//! [`Ingest::commit`]. Engines that can build their files directly do so: RocksDB writes SST
//! files and ingests them, with no memtable, no write-ahead log and no rewrite by compaction of
//! the fresh data. redb and the in-memory backend insert in order in one transaction. sled has
//! no such path, so it does not implement [`KvIngest`].
//!
//! Atomicity is per engine: redb and the in-memory backend make the whole ingest visible at
//! once; RocksDB ingests table by table in the order the tables were first written, so a crash
//! inside `commit` can leave some tables ingested and others not. Callers that need a range to
//! appear whole (chain-store's bulk import) record the range before committing and roll it
//! back on restart. [`Collector`] gives the sorted runs for keys that do not arrive in order.

mod collector;
mod typed;

pub use collector::{Collector, CollectorError, Lent, Merged};
pub use typed::{TableRuns, TypedIngest};

use crate::error::{BackendError, WriteError};
use crate::store::KvStore;
use crate::table::Schema;

/// An ingest failed. Nothing of an ingest that failed before [`Ingest::commit`] is visible.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The table is not part of the schema the store was opened with.
    #[error("table `{0}` is not part of the open schema")]
    UnknownTable(String),
    /// A key was not greater than the previous key of the same table.
    #[error("ingest into `{table}`: keys must be strictly ascending within a table (key {key} after {previous})")]
    OutOfOrder {
        /// The table.
        table: String,
        /// The key refused, hex.
        key: String,
        /// The key before it, hex.
        previous: String,
    },
    /// The store refused the write (poisoned, or the engine failed).
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The engine failed while building or ingesting files.
    #[error("ingest: {0}")]
    Backend(#[from] BackendError),
    /// A sorted run (see [`Collector`]) could not be written or read back.
    #[error(transparent)]
    Runs(#[from] CollectorError),
    /// A scratch file of the ingest could not be written.
    #[error("ingest scratch file {path}: {source}")]
    Scratch {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What an ingest wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestStats {
    /// Entries (puts and deletes).
    pub entries: u64,
    /// Key and value bytes.
    pub bytes: u64,
    /// Engine files built and ingested (0 for engines that insert).
    pub files: u64,
}

/// One bulk ingest under construction.
pub trait Ingest {
    /// Adds `key` → `value` to `table`. Keys of one table come strictly ascending.
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), IngestError>;

    /// Deletes `key` from `table` (in the same order as puts).
    fn delete(&mut self, table: &str, key: &[u8]) -> Result<(), IngestError>;

    /// Makes every entry visible and durable. See the module docs for atomicity.
    fn commit(self) -> Result<IngestStats, IngestError>;
}

/// Bulk ingestion of sorted entries.
pub trait KvIngest: KvStore {
    /// An ingest in progress.
    type Ingest<'a>: Ingest
    where
        Self: 'a;

    /// Starts an ingest. Dropping it uncommitted discards it.
    fn ingest(&self) -> Result<Self::Ingest<'_>, IngestError>;
}

/// The ordering checks every [`Ingest`] applies: the table exists, keys ascend per table.
/// Backends share it so the rules are one.
#[derive(Debug)]
pub struct IngestOrder {
    names: Vec<&'static str>,
    last: Vec<Option<Vec<u8>>>,
    /// Tables in the order they were first written.
    first_seen: Vec<usize>,
    stats: IngestStats,
}

impl IngestOrder {
    /// Checks for the tables of `schema`.
    pub fn new(schema: &Schema) -> Self {
        let names: Vec<&'static str> = schema.physical_tables().collect();
        let last = vec![None; names.len()];
        IngestOrder { names, last, first_seen: Vec::new(), stats: IngestStats::default() }
    }

    /// Checks the next entry of `table` and returns the table's index in the schema.
    pub fn check(&mut self, table: &str, key: &[u8], value_len: usize) -> Result<usize, IngestError> {
        let t =
            self.names.iter().position(|n| *n == table).ok_or_else(|| IngestError::UnknownTable(table.to_owned()))?;
        match &mut self.last[t] {
            Some(prev) if key <= prev.as_slice() => {
                return Err(IngestError::OutOfOrder { table: table.to_owned(), key: hex(key), previous: hex(prev) });
            }
            Some(prev) => {
                prev.clear();
                prev.extend_from_slice(key);
            }
            slot @ None => {
                *slot = Some(key.to_vec());
                self.first_seen.push(t);
            }
        }
        self.stats.entries += 1;
        self.stats.bytes += (key.len() + value_len) as u64;
        Ok(t)
    }

    /// The name of table `t`.
    pub fn name(&self, t: usize) -> &'static str {
        self.names[t]
    }

    /// Tables written, in the order they were first written.
    pub fn tables_in_order(&self) -> &[usize] {
        &self.first_seen
    }

    /// Entries and bytes so far.
    pub fn stats(&self) -> IngestStats {
        self.stats
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
