//! [`RedbReader`]: an existing database file opened read-only.

use std::path::{Path, PathBuf};

use redb::{ReadTransaction, ReadableDatabase};
use storage_api::schema::{SchemaAction, check_schema};
use storage_api::{Direction, KvRead, KvReader, OpenError, RawRange, ReadError, Schema, VersionPolicy};

use crate::error::map_err;
use crate::iter::RedbCursor;
use crate::open::{RedbConfig, inspect_open};
use crate::read::{cursor, get_with, multi_get_with, named};

/// A redb database opened read-only (redb's `ReadOnlyDatabase`, a shared lock on the file):
/// the reads of [`RedbStore`](crate::RedbStore), no write methods, nothing on disk changed. A
/// file that needs recovery (not closed cleanly) is refused rather than repaired, and a missing
/// file is [`OpenError::NotFound`].
pub struct RedbReader {
    db: redb::ReadOnlyDatabase,
    schema: Schema,
    names: Vec<&'static str>,
    stored_version: u32,
    path: PathBuf,
}

impl std::fmt::Debug for RedbReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbReader").field("path", &self.path).field("schema", &self.schema.name()).finish()
    }
}

impl RedbReader {
    /// Opens the database file at `config.path` read-only for `schema`.
    pub fn open(config: &RedbConfig, schema: Schema, policy: VersionPolicy) -> Result<Self, OpenError> {
        let path = &config.path;
        if !path.exists() {
            return Err(OpenError::NotFound(path.clone()));
        }
        let db =
            redb::Builder::new().set_cache_size(config.cache_size as usize).open_read_only(path).map_err(map_err)?;
        let (record, on_disk) = inspect_open(&db)?;
        if record.is_none() && on_disk.is_empty() {
            return Err(OpenError::NotFound(path.clone()));
        }
        let stored_version = match check_schema(&schema, record.as_ref(), &on_disk, policy)? {
            SchemaAction::Initialize => schema.version(),
            SchemaAction::Open { stored_version } => stored_version,
        };
        // Only tables that exist can be opened in a read transaction.
        let names = schema.physical_tables().filter(|n| on_disk.iter().any(|t| t == n)).collect();
        Ok(RedbReader { db, schema, names, stored_version, path: path.clone() })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read_txn(&self) -> Result<ReadTransaction, ReadError> {
        self.db.begin_read().map_err(|e| ReadError::Backend(map_err(e)))
    }
}

impl KvRead for RedbReader {
    type Cursor<'a> = RedbCursor;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        get_with(&self.read_txn()?, named(&self.names, table)?, key, f)
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        multi_get_with(&self.read_txn()?, named(&self.names, table)?, keys, f)
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<RedbCursor, ReadError> {
        cursor(&self.read_txn()?, named(&self.names, table)?, range, direction)
    }
}

impl KvReader for RedbReader {
    const BACKEND: &'static str = crate::error::BACKEND;

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn stored_schema_version(&self) -> u32 {
        self.stored_version
    }
}

impl storage_api::KvStats for RedbReader {
    /// As for [`RedbStore`](crate::RedbStore); a table the file lacks counts as empty.
    fn table_stats_raw(&self, table: &str) -> Result<storage_api::TableStats, storage_api::MaintenanceError> {
        if !self.schema.physical_tables().any(|t| t == table) {
            return Err(storage_api::MaintenanceError::UnknownTable(table.to_owned()));
        }
        let Ok(def) = named(&self.names, table) else { return Ok(storage_api::TableStats::default()) };
        crate::maintenance::stats_of(&self.db.begin_read().map_err(map_err)?, def)
    }
}
