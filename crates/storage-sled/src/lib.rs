//! The sled comparison backend of node-storage — **for comparison only**.
//!
//! sled 0.34.7 is the last stable release. Its durability guarantees are weaker than RocksDB's
//! and redb's (`flush` does not fsync on every path), and two of its dependencies carry RustSec
//! advisories (RUSTSEC-2024-0384, RUSTSEC-2025-0057). Do not run a node on it.
//!
//! * one sled tree per storage-api table;
//! * a batch is one multi-tree sled transaction, so it is atomic across tables;
//!   `Durability::Synced` flushes the database after the commit;
//! * sled transactions cannot iterate, so a range delete lists the keys in range first; a
//!   writer lock makes that consistent for writes through this store;
//! * sled has no point-in-time snapshots, no checkpoint and no manual compaction: those
//!   capabilities are absent (the conformance suite skips them visibly);
//! * statistics scan the tree (exact, linear in its size; bytes are logical, not on-disk);
//! * a failed commit or flush poisons the store until it is reopened.

mod batch;
mod error;
mod iter;
mod maintenance;
mod open;
mod read;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use iter::SledCursor;
pub use open::SledConfig;
use storage_api::error::Poison;
use storage_api::{KvOpen, KvReader, OpenError, Schema, VersionPolicy};

/// A sled-backed store.
pub struct SledStore {
    db: sled::Db,
    /// One tree per physical table, in the schema's physical order.
    trees: Vec<sled::Tree>,
    names: Vec<&'static str>,
    schema: Schema,
    stored_version: u32,
    path: PathBuf,
    /// Serialises writers, so range deletes see no concurrent change between listing the keys
    /// and removing them.
    writer: Mutex<()>,
    poison: Poison,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").field("path", &self.path).field("schema", &self.schema.name()).finish()
    }
}

impl SledStore {
    /// Opens the store described by `config` for `schema`, requiring the stored version to match.
    pub fn open(config: &SledConfig, schema: Schema) -> Result<Self, OpenError> {
        open::open(config, schema, VersionPolicy::Exact)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes sled reports on disk for the whole database.
    pub fn size_on_disk(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }

    pub(crate) fn index(&self, table: &str) -> Option<usize> {
        self.names.iter().position(|n| *n == table)
    }
}

impl Drop for SledStore {
    /// Flushes, so a clean close loses no buffered write.
    fn drop(&mut self) {
        if let Err(e) = self.db.flush() {
            tracing::error!(path = %self.path.display(), error = %e, "flush on close failed");
        }
    }
}

impl KvReader for SledStore {
    const BACKEND: &'static str = error::BACKEND;

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn stored_schema_version(&self) -> u32 {
        self.stored_version
    }
}

impl KvOpen for SledStore {
    type Config = SledConfig;

    fn open(config: &SledConfig, schema: Schema, policy: VersionPolicy) -> Result<Self, OpenError> {
        open::open(config, schema, policy)
    }
}
