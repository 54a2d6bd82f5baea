//! redb, a comparison engine (cargo feature `redb`).

use std::path::Path;

use storage_api::{CheckpointError, KvCheckpoint, KvOpen, KvOpenReadOnly, OpenError, Schema, VersionPolicy};
use storage_metrics::Sample;
use storage_redb::{RedbConfig, RedbReader, RedbStore};

use super::{Backend, caps};
use crate::config::{BackendKind, Config};
use crate::error::StorageError;
use crate::store_id::StoreId;

impl Backend for RedbStore {
    const KIND: BackendKind = BackendKind::Redb;
    type Views = caps::Present;
    type Compaction = caps::Present;
    type Loading = caps::Ingested;
    type Physical = RedbCheckpoints;

    /// None: redb counts cache hits only with its `cache_metrics` feature, which is off (it
    /// costs on every page access); the store's size is reported from the disk.
    fn engine_samples(&self, _store: StoreId, _out: &mut Vec<Sample>) {}

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
}

/// redb's checkpoints (a copy of its file from one read transaction), for physical backups.
#[derive(Debug)]
pub struct RedbCheckpoints;

impl caps::Physical<RedbStore> for RedbCheckpoints {
    fn checkpoint_into(store: &RedbStore, staging: &Path, id: StoreId) -> Result<(), StorageError> {
        let failed = |e| storage_backup::BackupError::store(id.name(), e);
        // redb checkpoints into a directory, under the source file's name.
        let dir = staging.join(format!(".checkpoint-{id}"));
        store.checkpoint(&dir).map_err(failed)?;
        let target = RedbStore::store_path(staging, id);
        let file = target.file_name().map(|f| dir.join(f)).unwrap_or_default();
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| failed(CheckpointError::Io { path, source })
        };
        std::fs::rename(&file, &target).map_err(io(&target))?;
        std::fs::remove_dir(&dir).map_err(io(&dir))?;
        Ok(())
    }

    /// None: a redb file carries no database identity.
    fn identity(_staging: &Path, _id: StoreId) -> Option<String> {
        None
    }
}

fn redb_config(config: &Config, store: StoreId) -> RedbConfig {
    let mut c = RedbConfig::at(RedbStore::store_path(&config.data_dir, store));
    c.cache_size = config.engine.cache_bytes;
    c
}
