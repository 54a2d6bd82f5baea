//! The production backend of node-storage: RocksDB on local disk.
//!
//! * one column family per table, created on open, tuned from the table's access hint and the
//!   per-table overrides in [`RocksConfig`];
//! * atomic batches map onto RocksDB write batches, `Durability::Synced` onto a synced WAL
//!   write;
//! * snapshots, compaction, statistics (from RocksDB properties) and checkpoints (RocksDB's
//!   checkpoint API, hard links) are all available;
//! * after a failed write or flush the store is poisoned and refuses writes until reopened.
//!
//! [`RocksFlat`] reads plain single-keyspace RocksDB databases (for importing the legacy layout).
//!
//! Opening first reads the schema record through a read-only instance (with its info log sent
//! to a scratch directory), so a database that must be refused is left exactly as it was.

mod acked;
mod batch;
mod checkpoint;
mod config;
mod error;
mod flat;
mod ingest;
mod iter;
mod maintenance;
mod open;
mod read;
mod reader;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

pub use acked::ACKNOWLEDGED_FILE;
pub use batch::RocksBatch;
pub use config::{Codec, CompactionStyle, RocksConfig, TableTuning};
pub use flat::{FLAT_TABLE, RocksFlat};
pub use ingest::RocksIngest;
pub use iter::RocksCursor;
pub use open::WalLoss;
pub use reader::RocksReader;
pub use snapshot::RocksSnapshot;
use storage_api::error::Poison;
use storage_api::{KvOpen, KvOpenReadOnly, KvReader, OpenError, Schema, VersionPolicy};

/// A RocksDB-backed store.
pub struct RocksStore {
    db: rocksdb::DB,
    schema: Schema,
    stored_version: u32,
    path: PathBuf,
    wal: bool,
    cache: rocksdb::Cache,
    /// The database options, kept when statistics are enabled (tickers are read from them).
    statistics: Option<rocksdb::Options>,
    poison: Poison,
    /// Held by every write and sync, so the sequence number read after a synced write is that
    /// write's (and no later, unsynced one's); guards the acknowledged-sequence record.
    writes: Mutex<acked::Acked>,
    /// Each physical table's options (in schema order), for building SST files to ingest.
    ingest_options: Vec<rocksdb::Options>,
}

impl std::fmt::Debug for RocksStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksStore").field("path", &self.path).field("schema", &self.schema.name()).finish()
    }
}

impl RocksStore {
    /// Opens the store at `config.path` for `schema`, requiring the stored version to match.
    pub fn open(config: &RocksConfig, schema: Schema) -> Result<Self, OpenError> {
        open::open(config, schema, VersionPolicy::Exact)
    }

    /// Opens the store with an explicit schema-version policy (migration tools accept older
    /// versions).
    pub fn open_with_policy(config: &RocksConfig, schema: Schema, policy: VersionPolicy) -> Result<Self, OpenError> {
        open::open(config, schema, policy)
    }

    /// Opens like [`RocksStore::open_with_policy`], but where that refuses because the
    /// write-ahead log is damaged or missing ([`OpenError::DamagedLog`]), copies the logs aside
    /// (to `<path>.damaged-<ms>`) and recovers what they hold up to their first damage,
    /// reporting what was lost. For an operator who has chosen to accept the loss; never the
    /// normal path.
    pub fn open_accepting_wal_loss(
        config: &RocksConfig,
        schema: Schema,
        policy: VersionPolicy,
    ) -> Result<(Self, Option<WalLoss>), OpenError> {
        open::open_accepting_wal_loss(config, schema, policy)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// An integer RocksDB property of the whole database (for example
    /// `rocksdb.estimate-pending-compaction-bytes`), summed over tables where RocksDB reports
    /// it per column family. `None` if RocksDB does not know it.
    pub fn property_int(&self, name: &str) -> Option<u64> {
        let mut total = None;
        for t in self.schema.physical_tables() {
            let cf = self.db.cf_handle(t)?;
            if let Ok(Some(v)) = self.db.property_int_value_cf(cf, name) {
                *total.get_or_insert(0) += v;
            }
        }
        total
    }

    /// An integer RocksDB property of one table.
    pub fn table_property_int(&self, table: &str, name: &str) -> Option<u64> {
        let cf = self.db.cf_handle(table)?;
        self.db.property_int_value_cf(cf, name).ok().flatten()
    }

    /// Bytes the shared block cache currently holds.
    pub fn block_cache_usage(&self) -> u64 {
        self.cache.get_usage() as u64
    }

    /// Block-cache hits and misses since open (RocksDB tickers), or `None` unless the store
    /// was opened with `statistics = true`.
    pub fn block_cache_hits_misses(&self) -> Option<(u64, u64)> {
        let o = self.statistics.as_ref()?;
        Some((
            o.get_ticker_count(rocksdb::statistics::Ticker::BlockCacheHit),
            o.get_ticker_count(rocksdb::statistics::Ticker::BlockCacheMiss),
        ))
    }

    /// Bytes written through the write path since open (the `rocksdb.bytes.written` ticker:
    /// the keys and values of every batch), or `None` unless the store was opened with
    /// `statistics = true`.
    pub fn bytes_written(&self) -> Option<u64> {
        Some(self.statistics.as_ref()?.get_ticker_count(rocksdb::statistics::Ticker::BytesWritten))
    }

    /// The underlying RocksDB handle, for engine-specific tooling (benchmarks, backups).
    /// Writes made through it bypass poisoning and the schema: use with care.
    pub fn raw_db(&self) -> &rocksdb::DB {
        &self.db
    }

    fn cf(&self, table: &str) -> Option<&rocksdb::ColumnFamily> {
        self.db.cf_handle(table)
    }

    /// Takes the write lock (see `writes`).
    fn write_lock(&self) -> MutexGuard<'_, acked::Acked> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that every write so far is durable: called with the write lock held, after a
    /// synced write or a log sync returned.
    fn acknowledge(&self, acked: &mut acked::Acked) -> Result<(), storage_api::BackendError> {
        acked.record(self.db.latest_sequence_number()).map_err(|e| {
            storage_api::BackendError::new(
                error::BACKEND,
                storage_api::BackendErrorKind::Io,
                format!("recording the acknowledged sequence in {}: {e}", acked.path().display()),
            )
        })
    }
}

impl Drop for RocksStore {
    /// A clean close syncs the log and the acknowledged-sequence record, so the next open
    /// checks against everything written.
    fn drop(&mut self) {
        if self.poison.is_poisoned() {
            return;
        }
        let mut acked = self.write_lock();
        let synced =
            if self.wal { self.db.flush_wal(true).map_err(error::map_err) } else { self.flush_all_memtables() };
        let result = synced.and_then(|()| self.acknowledge(&mut acked)).and_then(|()| {
            acked.sync().map_err(|e| {
                storage_api::BackendError::new(error::BACKEND, storage_api::BackendErrorKind::Io, e.to_string())
            })
        });
        if let Err(e) = result {
            tracing::error!(path = %self.path.display(), error = %e, "syncing on close failed");
        }
    }
}

impl KvReader for RocksStore {
    const BACKEND: &'static str = error::BACKEND;

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn stored_schema_version(&self) -> u32 {
        self.stored_version
    }
}

impl KvOpen for RocksStore {
    type Config = RocksConfig;

    fn open(config: &RocksConfig, schema: Schema, policy: VersionPolicy) -> Result<Self, OpenError> {
        open::open(config, schema, policy)
    }
}

impl KvOpenReadOnly for RocksStore {
    type ReadOnly = RocksReader;

    fn open_read_only(config: &RocksConfig, schema: Schema, policy: VersionPolicy) -> Result<RocksReader, OpenError> {
        RocksReader::open(config, schema, policy)
    }
}
