//! sled, a comparison engine (cargo feature `sled`).

use std::path::Path;

use storage_api::{CheckpointError, KvOpen, KvRead, MaintenanceError, OpenError, Schema, VersionPolicy};
use storage_backup::{BackupError, ChunkLoader, LogicalWriter, StoreRecord};
use storage_metrics::Sample;
use storage_migrate::MigrateError;
use storage_sled::{SledConfig, SledStore};

use super::{Backend, table_names};
use crate::config::{BackendKind, Config};
use crate::stores::StoreId;

/// Entries per atomic batch when copying into sled.
const COPY_BATCH: usize = 10_000;

impl Backend for SledStore {
    const KIND: BackendKind = BackendKind::Sled;
    const SNAPSHOTS: bool = false;

    /// None: sled exposes no cache or compaction figures; the store's size is reported from
    /// the disk.
    fn engine_samples(&self, _store: StoreId, _out: &mut Vec<Sample>) {}

    /// None: sled takes no checkpoints, so there is nothing to identify.
    fn identity(_staging: &Path, _store: StoreId) -> Option<String> {
        None
    }

    fn checkpoint_into(&self, _staging: &Path, _store: StoreId) -> Result<bool, CheckpointError> {
        Ok(false)
    }

    /// No bulk ingestion in sled: atomic batches of [`COPY_BATCH`] entries.
    fn copy_from<S: KvRead + ?Sized>(
        &self,
        store: StoreId,
        source: &S,
        tables: &[&str],
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, MigrateError> {
        storage_migrate::copy_tables(store.name(), source, self, tables, COPY_BATCH, progress)
    }

    const LOAD_CHUNK: ChunkLoader<Self> = storage_backup::load_chunk_in_batches;

    fn with_view<V: super::ViewVisitor>(&self, visitor: V) -> V::Output {
        // No snapshots: the facade has paused writes around this call.
        visitor.visit(self)
    }

    fn dump(&self, record: StoreRecord, writer: &mut LogicalWriter<'_>) -> Result<(), BackupError> {
        // No snapshots: the facade has paused writes around this call.
        writer.dump_store(record, self, &table_names(self))
    }

    fn open_store_with(
        config: &Config,
        store: StoreId,
        schema: Schema,
        policy: VersionPolicy,
    ) -> Result<Self, OpenError> {
        let mut c = SledConfig::at(Self::store_path(&config.data_dir, store));
        c.cache_capacity = config.engine.cache_bytes;
        <SledStore as KvOpen>::open(&c, schema, policy)
    }

    /// sled cannot open a database without writing to its files, so its reader is the store
    /// opened normally (it needs the node stopped, and refuses to create a missing store).
    type Reader = SledStore;

    fn open_reader(config: &Config, store: StoreId, schema: Schema) -> Result<SledStore, OpenError> {
        let path = Self::store_path(&config.data_dir, store);
        if !path.exists() {
            return Err(OpenError::NotFound(path));
        }
        Self::open_store(config, store, schema)
    }

    fn compact_all(&self) -> Result<bool, MaintenanceError> {
        Ok(false)
    }
}
