//! What the facade does with each optional capability of storage-api, written once: each
//! engine names, per capability, a type that either uses the storage-api trait ([`Present`],
//! [`Ingested`] — the compiler holds the engine to that trait) or refuses with a typed error
//! ([`Absent`]); [`Batched`] loads through plain write batches.
//!
//! | capability | uses | engines |
//! |---|---|---|
//! | [`Views`] (a live check, a logical backup of a running node) | [`KvSnapshots`] | RocksDB, redb |
//! | [`Compaction`] | [`KvCompact`] | RocksDB, redb |
//! | [`Loading`] (a copy to another engine, a logical restore, an era1 import) | [`KvIngest`], or batches | RocksDB and redb ingest, sled batches (and no import) |
//! | [`Physical`] (physical backups) | the engine's checkpoints | RocksDB, redb |

use std::path::Path;

use storage_api::{KvCompact, KvIngest, KvRead, KvSnapshots, KvStore, MaintenanceError, SnapshotView};
use storage_backup::{BackupError, ChunkLoader, LogicalWriter, StoreRecord};
use storage_migrate::MigrateError;

use super::{Backend, ViewVisitor, table_names};
use crate::error::StorageError;
use crate::store_id::StoreId;

/// The engine has the capability; the facade uses it through its storage-api trait.
#[derive(Debug)]
pub struct Present;

/// The engine lacks the capability; the facade refuses what needs it, saying so.
#[derive(Debug)]
pub struct Absent;

/// Loading through [`KvIngest`].
#[derive(Debug)]
pub struct Ingested;

/// Loading through write batches of [`COPY_BATCH`] entries.
#[derive(Debug)]
pub struct Batched;

/// Entries per atomic batch when an engine loads without ingestion.
pub const COPY_BATCH: usize = 10_000;

/// Consistent reads of a store while the node writes it.
pub trait Views<S: Backend> {
    /// `Ok` if the live store can be read consistently; the refusal for `what` otherwise
    /// (checked before a long operation starts, so it fails at once with its typed error).
    fn require(what: &'static str) -> Result<(), StorageError>;

    /// Runs `visitor` on a consistent view of `store`; `what` names the operation for a refusal.
    fn with_view<V: ViewVisitor>(store: &S, visitor: V, what: &'static str) -> Result<V::Output, StorageError>;

    /// Dumps every table of `store` into a logical backup, consistently.
    fn dump(store: &S, record: StoreRecord, writer: &mut LogicalWriter<'_>) -> Result<(), BackupError>;
}

impl<S: Backend + KvSnapshots> Views<S> for Present
where
    for<'a> S::Snapshot<'a>: Send + Sync,
{
    fn require(_what: &'static str) -> Result<(), StorageError> {
        Ok(())
    }

    fn with_view<V: ViewVisitor>(store: &S, visitor: V, _what: &'static str) -> Result<V::Output, StorageError> {
        Ok(visitor.visit(&SnapshotView::new(store)))
    }

    fn dump(store: &S, record: StoreRecord, writer: &mut LogicalWriter<'_>) -> Result<(), BackupError> {
        writer.dump_store(record, &store.snapshot(), &table_names(store))
    }
}

impl<S: Backend> Views<S> for Absent {
    fn require(what: &'static str) -> Result<(), StorageError> {
        Err(StorageError::NoSnapshots { operation: what, engine: S::KIND })
    }

    fn with_view<V: ViewVisitor>(_store: &S, _visitor: V, what: &'static str) -> Result<V::Output, StorageError> {
        Err(StorageError::NoSnapshots { operation: what, engine: S::KIND })
    }

    fn dump(_store: &S, record: StoreRecord, _writer: &mut LogicalWriter<'_>) -> Result<(), BackupError> {
        let refusal = StorageError::NoSnapshots { operation: "a logical backup", engine: S::KIND };
        Err(BackupError::store(&record.name, refusal))
    }
}

/// Compacting a whole store.
pub trait Compaction<S> {
    /// Compacts every table; `false` where the engine cannot compact.
    fn compact(store: &S) -> Result<bool, MaintenanceError>;
}

impl<S: KvCompact> Compaction<S> for Present {
    fn compact(store: &S) -> Result<bool, MaintenanceError> {
        store.compact_all()?;
        Ok(true)
    }
}

impl<S> Compaction<S> for Absent {
    fn compact(_store: &S) -> Result<bool, MaintenanceError> {
        Ok(false)
    }
}

/// Code to run on a store as a bulk-ingest target (see [`Loading::ingesting`]).
pub trait IngestVisitor {
    /// The result.
    type Output;
    /// Runs on `store`.
    fn visit<I: KvIngest>(self, store: I) -> Self::Output;
}

/// Filling empty tables in bulk: a copy to another engine, a logical restore, an import.
pub trait Loading<S: KvStore> {
    /// `Ok` if the engine ingests sorted files; the refusal of `operation` otherwise (checked
    /// before a long operation starts).
    fn require_ingest(operation: &'static str) -> Result<(), StorageError>;

    /// Runs `visitor` on `store` as a bulk-ingest target; the refusal of `operation` where the
    /// engine has no ingestion.
    fn ingesting<V: IngestVisitor>(store: S, visitor: V, operation: &'static str) -> Result<V::Output, StorageError>;

    /// Fills `target`'s empty `tables` from `source` (a store of the same schema on any
    /// engine); `progress` receives the entries copied so far. Returns them all.
    fn copy_from<R: KvRead + ?Sized>(
        target: &S,
        store: StoreId,
        source: &R,
        tables: &[&str],
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, MigrateError>;

    /// How a logical backup's chunks are loaded on restore.
    const LOAD_CHUNK: ChunkLoader<S>;
}

impl<S: KvIngest> Loading<S> for Ingested {
    fn require_ingest(_operation: &'static str) -> Result<(), StorageError> {
        Ok(())
    }

    fn ingesting<V: IngestVisitor>(store: S, visitor: V, _operation: &'static str) -> Result<V::Output, StorageError> {
        Ok(visitor.visit(store))
    }

    fn copy_from<R: KvRead + ?Sized>(
        target: &S,
        store: StoreId,
        source: &R,
        tables: &[&str],
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, MigrateError> {
        storage_migrate::ingest_tables(store.name(), source, target, tables, progress)
    }

    const LOAD_CHUNK: ChunkLoader<S> = storage_backup::load_chunk_ingested;
}

impl<S: Backend> Loading<S> for Batched {
    fn require_ingest(operation: &'static str) -> Result<(), StorageError> {
        Err(StorageError::Incapable { operation, needs: crate::error::Capability::BulkIngest, engine: S::KIND })
    }

    fn ingesting<V: IngestVisitor>(_store: S, _visitor: V, operation: &'static str) -> Result<V::Output, StorageError> {
        Err(StorageError::Incapable { operation, needs: crate::error::Capability::BulkIngest, engine: S::KIND })
    }

    fn copy_from<R: KvRead + ?Sized>(
        target: &S,
        store: StoreId,
        source: &R,
        tables: &[&str],
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, MigrateError> {
        storage_migrate::copy_tables(store.name(), source, target, tables, COPY_BATCH, progress)
    }

    const LOAD_CHUNK: ChunkLoader<S> = storage_backup::load_chunk_in_batches;
}

/// Physical backups: a consistent copy of a store's files.
pub trait Physical<S> {
    /// Writes a consistent copy of `store` to where [`Backend::store_path`] puts store `id`
    /// under `staging`.
    fn checkpoint_into(store: &S, staging: &Path, id: StoreId) -> Result<(), StorageError>;

    /// The database identity recorded in the copy (scopes the reuse of file hashes between
    /// backups); `None` for engines that record none, so no hash is reused.
    fn identity(staging: &Path, id: StoreId) -> Option<String>;
}

impl<S: Backend> Physical<S> for Absent {
    fn checkpoint_into(_store: &S, _staging: &Path, _id: StoreId) -> Result<(), StorageError> {
        Err(StorageError::Incapable {
            operation: "a physical backup",
            needs: crate::error::Capability::Checkpoints,
            engine: S::KIND,
        })
    }

    fn identity(_staging: &Path, _id: StoreId) -> Option<String> {
        None
    }
}
