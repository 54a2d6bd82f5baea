//! The engines the facade can run on, and the one place the configured engine is chosen.

use std::path::{Path, PathBuf};

use storage_api::{KvCompact, KvFlush, KvStats, KvStore, MaintenanceError, OpenError, RawRange, Schema};
use storage_metrics::{Observed, Sample};
use storage_redb::{RedbConfig, RedbStore};
use storage_rocksdb::{RocksConfig, RocksStore};
use storage_sled::{SledConfig, SledStore};

use crate::config::{BackendKind, Config};

/// An engine the facade can run on: the storage-api capabilities it uses plus how to open a
/// store and what engine figures to report. Implemented for the three backends.
pub trait Backend: KvStore + KvFlush + KvStats + Sized + Send + Sync + 'static {
    /// Which engine this is.
    const KIND: BackendKind;

    /// Where store `name` (`chain`, `dag`, `node`) lives under `data_dir`.
    fn store_path(data_dir: &Path, name: &str) -> PathBuf;

    /// Opens (creating if missing) store `name` for `schema`.
    fn open_store(config: &Config, name: &str, schema: Schema) -> Result<Self, OpenError>;

    /// Compacts every table; `Ok(false)` if the engine cannot compact.
    fn compact_all(&self) -> Result<bool, MaintenanceError>;

    /// Whether the store refuses writes after a failed sync.
    fn is_poisoned(&self) -> bool {
        false
    }

    /// Engine internals for the metrics (store label `store`).
    fn engine_samples(&self, _store: &'static str, _out: &mut Vec<Sample>) {}
}

impl Backend for RocksStore {
    const KIND: BackendKind = BackendKind::Rocksdb;

    fn store_path(data_dir: &Path, name: &str) -> PathBuf {
        data_dir.join(name)
    }

    fn open_store(config: &Config, name: &str, schema: Schema) -> Result<Self, OpenError> {
        let mut c = RocksConfig::at(Self::store_path(&config.data_dir, name));
        c.block_cache_size = config.engine.cache_bytes;
        c.write_buffer_size = config.engine.write_buffer_bytes;
        c.statistics = config.engine.statistics;
        RocksStore::open(&c, schema)
    }

    fn compact_all(&self) -> Result<bool, MaintenanceError> {
        for t in self.schema().tables() {
            self.compact_raw(t.name, &RawRange::all())?;
        }
        Ok(true)
    }

    fn is_poisoned(&self) -> bool {
        RocksStore::is_poisoned(self)
    }

    fn engine_samples(&self, store: &'static str, out: &mut Vec<Sample>) {
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

impl Backend for RedbStore {
    const KIND: BackendKind = BackendKind::Redb;

    fn store_path(data_dir: &Path, name: &str) -> PathBuf {
        data_dir.join(format!("{name}.redb"))
    }

    fn open_store(config: &Config, name: &str, schema: Schema) -> Result<Self, OpenError> {
        let mut c = RedbConfig::at(Self::store_path(&config.data_dir, name));
        c.cache_size = config.engine.cache_bytes;
        RedbStore::open(&c, schema)
    }

    fn compact_all(&self) -> Result<bool, MaintenanceError> {
        for t in self.schema().tables() {
            self.compact_raw(t.name, &RawRange::all())?;
        }
        Ok(true)
    }
}

impl Backend for SledStore {
    const KIND: BackendKind = BackendKind::Sled;

    fn store_path(data_dir: &Path, name: &str) -> PathBuf {
        data_dir.join(format!("{name}.sled"))
    }

    fn open_store(config: &Config, name: &str, schema: Schema) -> Result<Self, OpenError> {
        let mut c = SledConfig::at(Self::store_path(&config.data_dir, name));
        c.cache_capacity = config.engine.cache_bytes;
        SledStore::open(&c, schema)
    }

    fn compact_all(&self) -> Result<bool, MaintenanceError> {
        Ok(false)
    }
}

/// Code to run with a handle on whichever engine the config names (see [`with_backend`]).
pub trait BackendVisitor {
    /// The result.
    type Output;
    /// Runs with the engine `B`.
    fn visit<B: Backend>(self) -> Self::Output;
}

/// Calls `visitor` with the engine `config.backend` names: the one place a runtime choice
/// becomes a static type.
pub fn with_backend<V: BackendVisitor>(config: &Config, visitor: V) -> V::Output {
    match config.backend {
        BackendKind::Rocksdb => visitor.visit::<RocksStore>(),
        BackendKind::Redb => visitor.visit::<RedbStore>(),
        BackendKind::Sled => visitor.visit::<SledStore>(),
    }
}

/// Bytes under `path` (a file or a directory tree).
pub(crate) fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if meta.is_file() {
        return meta.len();
    }
    if !meta.is_dir() {
        return 0;
    }
    std::fs::read_dir(path)
        .map(|entries| entries.filter_map(Result::ok).map(|e| disk_usage(&e.path())).sum())
        .unwrap_or(0)
}
