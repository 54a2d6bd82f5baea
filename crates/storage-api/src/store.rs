//! The store itself and its optional capabilities.
//!
//! [`KvStore`] is what every backend provides: reads, atomic writes and its schema. Everything
//! else is a separate capability trait a backend implements only when its engine really has
//! it; generic code asks for exactly the capabilities it needs in its bounds.

use std::ops::RangeBounds;
use std::path::Path;

use crate::batch::KvWrite;
use crate::codec::KeyPrefix;
use crate::error::{CheckpointError, FlushError, MaintenanceError, OpenError};
use crate::iter::RawRange;
use crate::read::KvRead;
use crate::schema::VersionPolicy;
use crate::table::{Schema, Table};

/// What every open store provides, whether it may write or only read: typed reads (through
/// [`ReadExt`](crate::ReadExt)) and the schema it was opened with.
pub trait KvReader: KvRead + Send + Sync {
    /// The backend's short name (`memory`, `rocksdb`, …), used in errors and metrics.
    const BACKEND: &'static str;

    /// The schema the store was opened with.
    fn schema(&self) -> &Schema;

    /// The schema version recorded on disk when the store was opened (lower than
    /// `schema().version()` only when opened with [`VersionPolicy::AllowOlder`]).
    fn stored_schema_version(&self) -> u32;
}

/// A key-value store that writes: a [`KvReader`] with atomic batches ([`KvWrite`]). Every type
/// with both is one.
pub trait KvStore: KvReader + KvWrite {}

impl<T: KvReader + KvWrite> KvStore for T {}

/// Opening a store from a backend configuration.
pub trait KvOpen: KvStore + Sized {
    /// The backend's configuration.
    type Config;

    /// Opens (creating if needed) the store described by `config` for `schema`. A database
    /// written by a newer schema, holding unknown tables or (with [`VersionPolicy::Exact`]) an
    /// older version is refused before anything on disk changes.
    fn open(config: &Self::Config, schema: Schema, policy: VersionPolicy) -> Result<Self, OpenError>;
}

/// Opening an existing store for reading only. Nothing on disk changes (no log replayed into
/// the files, no table created, no lock taken where the engine allows), and a store that does
/// not exist is [`OpenError::NotFound`], never created. The read-only store is a separate type
/// with no write methods. Engines that must write to open (sled) lack this capability.
pub trait KvOpenReadOnly: KvOpen {
    /// The read-only store.
    type ReadOnly: KvReader;

    /// Opens the store described by `config` for reading, after the same schema checks as
    /// [`KvOpen::open`] (tables the schema adds but the database lacks read as unknown).
    fn open_read_only(
        config: &Self::Config,
        schema: Schema,
        policy: VersionPolicy,
    ) -> Result<Self::ReadOnly, OpenError>;
}

/// Consistent point-in-time reads.
pub trait KvSnapshots {
    /// A read-only view of the store as it was when taken.
    type Snapshot<'a>: KvRead
    where
        Self: 'a;

    /// Takes a snapshot. Writes made afterwards are invisible through it.
    fn snapshot(&self) -> Self::Snapshot<'_>;
}

/// Making buffered writes durable.
pub trait KvFlush {
    /// Makes every write acknowledged so far durable (an fsync of the log, and for engines with
    /// in-memory tables, writing them out). A failure poisons the store.
    fn flush(&self) -> Result<(), FlushError>;

    /// Makes every write so far durable, as cheaply as the engine allows: engines with a
    /// write-ahead log sync the log only (group commit uses this after a run of buffered
    /// writes). Defaults to [`KvFlush::flush`].
    fn sync(&self) -> Result<(), FlushError> {
        self.flush()
    }
}

/// Compaction: rewriting a key range to drop deleted data and release disk space.
pub trait KvCompact {
    /// Compacts the keys of `table` in `range`.
    fn compact_raw(&self, table: &str, range: &RawRange) -> Result<(), MaintenanceError>;

    /// Compacts the whole store — every table — in the fewest passes the engine needs
    /// (RocksDB: each column family once; redb: its one file once, however many tables).
    fn compact_all(&self) -> Result<(), MaintenanceError>;

    /// Compacts the keys of table `T` in `range`.
    fn compact<T: Table>(&self, range: impl RangeBounds<T::Key>) -> Result<(), MaintenanceError> {
        self.compact_raw(T::NAME, &RawRange::from_bounds(&range))
    }

    /// Compacts the keys of table `T` whose leading components lie in `range`.
    fn compact_prefix_range<T: Table, P: KeyPrefix<T::Key>>(
        &self,
        range: impl RangeBounds<P>,
    ) -> Result<(), MaintenanceError> {
        self.compact_raw(T::NAME, &RawRange::from_prefix_bounds::<T::Key, P>(&range))
    }

    /// Compacts the whole of table `T`.
    fn compact_table<T: Table>(&self) -> Result<(), MaintenanceError> {
        self.compact_raw(T::NAME, &RawRange::all())
    }
}

/// Approximate figures for one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Approximate number of live keys.
    pub approx_keys: u64,
    /// Approximate bytes on disk (for in-memory stores: bytes held).
    pub approx_bytes: u64,
}

/// Size and key-count statistics.
pub trait KvStats: KvReader {
    /// Statistics of `table`.
    fn table_stats_raw(&self, table: &str) -> Result<TableStats, MaintenanceError>;

    /// Statistics of table `T`.
    fn table_stats<T: Table>(&self) -> Result<TableStats, MaintenanceError> {
        self.table_stats_raw(T::NAME)
    }

    /// Statistics of every table of the schema, in declaration order.
    fn all_table_stats(&self) -> Result<Vec<(&'static str, TableStats)>, MaintenanceError> {
        self.schema().tables().iter().map(|t| Ok((t.name, self.table_stats_raw(t.name)?))).collect()
    }
}

/// A consistent on-disk copy of the whole store, cheap where the engine can hard-link its
/// immutable files. The copy opens as a store of the same backend.
pub trait KvCheckpoint {
    /// Writes a checkpoint into `target`, which must not exist yet.
    fn checkpoint(&self, target: &Path) -> Result<(), CheckpointError>;
}
