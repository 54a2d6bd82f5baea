//! The redb comparison backend of node-storage.
//!
//! * one redb table (`&[u8] → &[u8]`) per storage-api table, all in one database file;
//! * a batch is one write transaction: `Durability::Synced` commits with redb's immediate
//!   durability, `Buffered` with none — made durable by the next synced commit or flush (and by
//!   closing the store, which flushes);
//! * snapshots are read transactions; compaction is redb's whole-file `compact` (the key range
//!   is not narrower in redb); statistics come from redb's table stats;
//! * checkpoints are a logical copy of every table from one read transaction into a new
//!   database file: consistent, but linear in the data size (redb has no hard-link checkpoint);
//! * a failed commit or flush poisons the store until it is reopened.

mod batch;
mod checkpoint;
mod error;
mod iter;
mod maintenance;
mod open;
mod read;
mod reader;
mod snapshot;

use std::path::{Path, PathBuf};
use std::sync::RwLock;

pub use iter::RedbCursor;
pub use open::RedbConfig;
pub use reader::RedbReader;
use redb::TableDefinition;
pub use snapshot::RedbSnapshot;
use storage_api::error::Poison;
use storage_api::{KvOpen, KvOpenReadOnly, KvReader, OpenError, Schema, VersionPolicy};

/// Every table is raw bytes to raw bytes; storage-api does the encoding.
pub(crate) type RawTable<'a> = TableDefinition<'a, &'static [u8], &'static [u8]>;

/// A redb-backed store.
pub struct RedbStore {
    /// Write-locked only by compaction, which needs the database to itself.
    db: RwLock<redb::Database>,
    schema: Schema,
    names: Vec<&'static str>,
    stored_version: u32,
    path: PathBuf,
    poison: Poison,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("path", &self.path).field("schema", &self.schema.name()).finish()
    }
}

impl RedbStore {
    /// Opens the store described by `config` for `schema`, requiring the stored version to match.
    pub fn open(config: &RedbConfig, schema: Schema) -> Result<Self, OpenError> {
        open::open(config, schema, VersionPolicy::Exact)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The physical table named `table`, if the schema has it.
    pub(crate) fn table(&self, table: &str) -> Option<RawTable<'static>> {
        self.names.iter().find(|n| **n == table).map(|n| TableDefinition::new(n))
    }

    pub(crate) fn db(&self) -> std::sync::RwLockReadGuard<'_, redb::Database> {
        self.db.read().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for RedbStore {
    /// Makes buffered commits durable, so a clean close loses nothing.
    fn drop(&mut self) {
        if !self.poison.is_poisoned()
            && let Err(e) = storage_api::KvFlush::flush(self)
        {
            tracing::error!(path = %self.path.display(), error = %e, "flush on close failed");
        }
    }
}

impl KvReader for RedbStore {
    const BACKEND: &'static str = error::BACKEND;

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn stored_schema_version(&self) -> u32 {
        self.stored_version
    }
}

impl KvOpen for RedbStore {
    type Config = RedbConfig;

    fn open(config: &RedbConfig, schema: Schema, policy: VersionPolicy) -> Result<Self, OpenError> {
        open::open(config, schema, policy)
    }
}

impl KvOpenReadOnly for RedbStore {
    type ReadOnly = RedbReader;

    fn open_read_only(config: &RedbConfig, schema: Schema, policy: VersionPolicy) -> Result<RedbReader, OpenError> {
        RedbReader::open(config, schema, policy)
    }
}
