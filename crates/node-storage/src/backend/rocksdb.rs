//! RocksDB, the production engine (cargo feature `rocksdb`, on by default).

use std::path::Path;

use storage_api::{KvOpenReadOnly, OpenError, Schema, VersionPolicy};
use storage_metrics::{Observed, Sample};
use storage_rocksdb::{RocksConfig, RocksReader, RocksStore};

use super::{Backend, caps};
use crate::config::{BackendKind, Config};
use crate::error::StorageError;
use crate::store_id::StoreId;

impl Backend for RocksStore {
    const KIND: BackendKind = BackendKind::Rocksdb;
    type Views = caps::Present;
    type Compaction = caps::Present;
    type Loading = caps::Ingested;
    type Physical = RocksCheckpoints;

    fn open_store_with(
        config: &Config,
        store: StoreId,
        schema: Schema,
        policy: VersionPolicy,
    ) -> Result<Self, OpenError> {
        RocksStore::open_with_policy(&rocks_config(config, store), schema, policy)
    }

    type Reader = RocksReader;

    fn open_reader(config: &Config, store: StoreId, schema: Schema) -> Result<RocksReader, OpenError> {
        RocksStore::open_read_only(&rocks_config(config, store), schema, VersionPolicy::Exact)
    }

    fn engine_samples(&self, store: StoreId, out: &mut Vec<Sample>) {
        let store = store.name();
        let gauge = |what, value: Option<u64>| value.map(|v| Sample::new(what, v as f64).label("store", store));
        out.extend(gauge(
            Observed::PendingCompactionBytes,
            self.property_int("rocksdb.estimate-pending-compaction-bytes"),
        ));
        out.extend(gauge(Observed::MemtableBytes, self.property_int("rocksdb.size-all-mem-tables")));
        out.push(Sample::new(Observed::BlockCacheUsageBytes, self.block_cache_usage() as f64).label("store", store));
        let stalled = self.property_int("rocksdb.actual-delayed-write-rate").unwrap_or(0) > 0
            || self.property_int("rocksdb.is-write-stopped").unwrap_or(0) > 0;
        out.push(Sample::new(Observed::WriteStall, f64::from(u8::from(stalled))).label("store", store));
        for level in 0..7 {
            let files = self.property_int(&format!("rocksdb.num-files-at-level{level}")).unwrap_or(0);
            out.push(
                Sample::new(Observed::SstFiles, files as f64).label("store", store).label("level", level.to_string()),
            );
        }
        if let Some((hits, misses)) = self.block_cache_hits_misses() {
            let ratio = if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 };
            out.push(
                Sample::new(Observed::CacheHitRatio, ratio)
                    .label("cache", format!("engine_{store}"))
                    .label("level", "l2"),
            );
        }
    }
}

/// RocksDB's checkpoints (hard links of its table files), for physical backups.
#[derive(Debug)]
pub struct RocksCheckpoints;

impl caps::Physical<RocksStore> for RocksCheckpoints {
    fn checkpoint_into(store: &RocksStore, staging: &Path, id: StoreId) -> Result<(), StorageError> {
        // No memtable flush: WAL copies instead, so the time does not grow with unflushed data.
        store
            .checkpoint_without_flush(&RocksStore::store_path(staging, id))
            .map_err(|e| storage_backup::BackupError::store(id.name(), e).into())
    }

    fn identity(staging: &Path, id: StoreId) -> Option<String> {
        let text = std::fs::read_to_string(RocksStore::store_path(staging, id).join("IDENTITY")).ok()?;
        Some(text.trim().to_owned())
    }
}

impl super::ReplicaBackend for RocksStore {
    fn open_replica(
        config: &Config,
        store: StoreId,
        schema: Schema,
        scratch: Option<&Path>,
    ) -> Result<RocksReader, OpenError> {
        RocksReader::open_secondary(&rocks_config(config, store), scratch, schema)
    }

    fn catch_up(reader: &RocksReader) -> Result<(), storage_api::ReadError> {
        reader.catch_up().map(|_| ())
    }
}

/// The RocksDB settings of `store`.
pub(crate) fn rocks_config(config: &Config, store: StoreId) -> RocksConfig {
    let mut c = RocksConfig::at(RocksStore::store_path(&config.data_dir, store));
    c.block_cache_size = config.engine.cache_bytes;
    c.write_buffer_size = config.engine.write_buffer_bytes;
    c.statistics = config.engine.statistics;
    c
}
