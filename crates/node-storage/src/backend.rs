//! The engines the facade can run on, and the one place the configured engine is chosen.

use std::path::{Path, PathBuf};

use storage_api::{
    CheckpointError, KvCheckpoint, KvCompact, KvFlush, KvOpen, KvOpenReadOnly, KvReader, KvSnapshots, KvStats, KvStore,
    MaintenanceError, OpenError, RawRange, Schema, VersionPolicy,
};
use storage_backup::{BackupError, LogicalWriter, StoreRecord};
use storage_metrics::{Observed, Sample};
use storage_redb::{RedbConfig, RedbReader, RedbStore};
use storage_rocksdb::{RocksConfig, RocksReader, RocksStore};
use storage_sled::{SledConfig, SledStore};

use crate::config::{BackendKind, Config};
use crate::stores::StoreId;

/// An engine the facade can run on: the storage-api capabilities it uses plus how to open a
/// store and what engine figures to report. Implemented for the three backends.
pub trait Backend: KvStore + KvFlush + KvStats + Sized + Send + Sync + 'static {
    /// Which engine this is.
    const KIND: BackendKind;

    /// Where `store` lives under `data_dir`.
    fn store_path(data_dir: &Path, store: StoreId) -> PathBuf {
        store.path(Self::KIND, data_dir)
    }

    /// Opens (creating if missing) `store` for `schema`; an older schema version on disk is
    /// refused (it needs `nodestore migrate`).
    fn open_store(config: &Config, store: StoreId, schema: Schema) -> Result<Self, OpenError> {
        Self::open_store_with(config, store, schema, VersionPolicy::Exact)
    }

    /// Opens `store` for `schema` with an explicit version policy (migrations open older
    /// versions with [`VersionPolicy::AllowOlder`]).
    fn open_store_with(
        config: &Config,
        store: StoreId,
        schema: Schema,
        policy: VersionPolicy,
    ) -> Result<Self, OpenError>;

    /// The store opened for reading only.
    type Reader: KvReader + KvStats + std::fmt::Debug + 'static;

    /// Opens the existing `store` for reading only: nothing on disk changes, and a store that
    /// is not there is [`OpenError::NotFound`].
    fn open_reader(config: &Config, store: StoreId, schema: Schema) -> Result<Self::Reader, OpenError>;

    /// Compacts every table; `Ok(false)` if the engine cannot compact.
    fn compact_all(&self) -> Result<bool, MaintenanceError>;

    /// Engine internals for the metrics (store label `store`). Poisoning is not here: every
    /// store reports it through [`KvWrite::is_poisoned`](storage_api::KvWrite::is_poisoned).
    fn engine_samples(&self, store: StoreId, out: &mut Vec<Sample>);

    /// Whether [`Backend::dump`] reads from a snapshot. When not, the facade pauses writes
    /// around it.
    const SNAPSHOTS: bool;

    /// Writes a consistent copy of the store to `store_path(staging, store)`; `Ok(false)` if
    /// the engine cannot take checkpoints.
    fn checkpoint_into(&self, staging: &Path, store: StoreId) -> Result<bool, CheckpointError>;

    /// The database identity recorded in a checkpoint (scopes the reuse of file hashes);
    /// `None` for engines that record none, so no file hash is reused across databases.
    fn identity(staging: &Path, store: StoreId) -> Option<String>;

    /// Dumps every table of the store into a logical backup.
    fn dump(&self, record: StoreRecord, writer: &mut LogicalWriter<'_>) -> Result<(), BackupError>;
}

fn table_names<S: KvStore>(store: &S) -> Vec<&'static str> {
    store.schema().tables().iter().map(|t| t.name).collect()
}

impl Backend for RocksStore {
    const KIND: BackendKind = BackendKind::Rocksdb;
    const SNAPSHOTS: bool = true;

    fn checkpoint_into(&self, staging: &Path, store: StoreId) -> Result<bool, CheckpointError> {
        // No memtable flush: WAL copies instead, so the time does not grow with unflushed data.
        self.checkpoint_without_flush(&Self::store_path(staging, store))?;
        Ok(true)
    }

    fn identity(staging: &Path, store: StoreId) -> Option<String> {
        let text = std::fs::read_to_string(Self::store_path(staging, store).join("IDENTITY")).ok()?;
        Some(text.trim().to_owned())
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
        RocksStore::open_with_policy(&rocks_config(config, store), schema, policy)
    }

    type Reader = RocksReader;

    fn open_reader(config: &Config, store: StoreId, schema: Schema) -> Result<RocksReader, OpenError> {
        RocksStore::open_read_only(&rocks_config(config, store), schema, VersionPolicy::Exact)
    }

    fn compact_all(&self) -> Result<bool, MaintenanceError> {
        for t in self.schema().tables() {
            self.compact_raw(t.name, &RawRange::all())?;
        }
        Ok(true)
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

/// The RocksDB settings of `store`.
pub(crate) fn rocks_config(config: &Config, store: StoreId) -> RocksConfig {
    let mut c = RocksConfig::at(RocksStore::store_path(&config.data_dir, store));
    c.block_cache_size = config.engine.cache_bytes;
    c.write_buffer_size = config.engine.write_buffer_bytes;
    c.statistics = config.engine.statistics;
    c
}

fn redb_config(config: &Config, store: StoreId) -> RedbConfig {
    let mut c = RedbConfig::at(RedbStore::store_path(&config.data_dir, store));
    c.cache_size = config.engine.cache_bytes;
    c
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
