//! redb, a comparison engine (cargo feature `redb`).

use std::path::Path;

use storage_api::{
    CheckpointError, KvCheckpoint, KvCompact, KvOpen, KvOpenReadOnly, KvRead, KvReader, KvSnapshots, MaintenanceError,
    OpenError, RawRange, Schema, VersionPolicy,
};
use storage_backup::{BackupError, ChunkLoader, LogicalWriter, StoreRecord};
use storage_metrics::Sample;
use storage_migrate::MigrateError;
use storage_redb::{RedbConfig, RedbReader, RedbStore};

use super::{Backend, table_names};
use crate::config::{BackendKind, Config};
use crate::stores::StoreId;

impl Backend for RedbStore {
    const KIND: BackendKind = BackendKind::Redb;
    const SNAPSHOTS: bool = true;

    /// None: redb counts cache hits only with its `cache_metrics` feature, which is off (it
    /// costs on every page access); the store's size is reported from the disk.
    fn engine_samples(&self, _store: StoreId, _out: &mut Vec<Sample>) {}

    /// None: a redb file carries no database identity.
    fn identity(_staging: &Path, _store: StoreId) -> Option<String> {
        None
    }

    fn checkpoint_into(&self, staging: &Path, store: StoreId) -> Result<bool, CheckpointError> {
        // redb checkpoints into a directory, under the source file's name.
        let dir = staging.join(format!(".checkpoint-{store}"));
        self.checkpoint(&dir)?;
        let target = Self::store_path(staging, store);
        let file = target.file_name().map(|f| dir.join(f)).unwrap_or_default();
        let io = |source| CheckpointError::Io { path: target.clone(), source };
        std::fs::rename(&file, &target).map_err(io)?;
        std::fs::remove_dir(&dir).map_err(|source| CheckpointError::Io { path: dir.clone(), source })?;
        Ok(true)
    }

    fn copy_from<S: KvRead + ?Sized>(
        &self,
        store: StoreId,
        source: &S,
        tables: &[&str],
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, MigrateError> {
        storage_migrate::ingest_tables(store.name(), source, self, tables, progress)
    }

    const LOAD_CHUNK: ChunkLoader<Self> = storage_backup::load_chunk_ingested;

    fn with_view<V: super::ViewVisitor>(&self, visitor: V) -> V::Output {
        visitor.visit(&storage_api::SnapshotView::new(self))
    }

    fn dump(&self, record: StoreRecord, writer: &mut LogicalWriter<'_>) -> Result<(), BackupError> {
        writer.dump_store(record, &self.snapshot(), &table_names(self))
    }

    fn open_store_with(
        config: &Config,
        store: StoreId,
        schema: Schema,
        policy: VersionPolicy,
    ) -> Result<Self, OpenError> {
        <RedbStore as KvOpen>::open(&redb_config(config, store), schema, policy)
    }

    type Reader = RedbReader;

    fn open_reader(config: &Config, store: StoreId, schema: Schema) -> Result<RedbReader, OpenError> {
        RedbStore::open_read_only(&redb_config(config, store), schema, VersionPolicy::Exact)
    }

    fn compact_all(&self) -> Result<bool, MaintenanceError> {
        for t in self.schema().tables() {
            self.compact_raw(t.name, &RawRange::all())?;
        }
        Ok(true)
    }
}

fn redb_config(config: &Config, store: StoreId) -> RedbConfig {
    let mut c = RedbConfig::at(RedbStore::store_path(&config.data_dir, store));
    c.cache_size = config.engine.cache_bytes;
    c
}
