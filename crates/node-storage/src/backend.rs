//! The engines the facade can run on, and the one place the configured engine is chosen.

use std::path::{Path, PathBuf};

use storage_api::{KvFlush, KvReader, KvStats, KvStore, OpenError, Schema, VersionPolicy};
use storage_metrics::Sample;

use crate::config::{BackendKind, Config};
use crate::error::StorageError;
use crate::store_id::StoreId;

pub mod caps;
#[cfg(feature = "redb")]
mod redb;
#[cfg(feature = "rocksdb")]
mod rocksdb;
#[cfg(feature = "sled")]
mod sled;
#[cfg(feature = "rocksdb")]
pub(crate) use rocksdb::rocks_config;

/// An engine the facade can run on: how its stores are opened and laid out, what engine
/// figures it reports, and — for each optional capability — whether it has it (see [`caps`]:
/// a capability an engine has is used through its storage-api trait, written once; one it
/// lacks is refused with a typed error). Implemented for the three backends.
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

    /// Engine internals for the metrics (store label `store`). Poisoning is not here: every
    /// store reports it through [`KvWrite::is_poisoned`](storage_api::KvWrite::is_poisoned).
    fn engine_samples(&self, store: StoreId, out: &mut Vec<Sample>);

    /// Consistent views of the live store: [`caps::Present`] with [`storage_api::KvSnapshots`].
    type Views: caps::Views<Self>;

    /// Whole-store compaction: [`caps::Present`] with [`storage_api::KvCompact`].
    type Compaction: caps::Compaction<Self>;

    /// Bulk loading of empty tables: [`caps::Ingested`] with [`storage_api::KvIngest`],
    /// [`caps::Batched`] otherwise.
    type Loading: caps::Loading<Self>;

    /// Physical backups: the engine's checkpoints, or [`caps::Absent`].
    type Physical: caps::Physical<Self>;
}

/// Code to run on one store's consistent read view (see [`caps::Views::with_view`]).
pub trait ViewVisitor {
    /// The result.
    type Output;
    /// Runs on `view`.
    fn visit<R: KvReader>(self, view: &R) -> Self::Output;
}

/// An engine whose stores can be followed while a running node writes them: a read replica
/// (RocksDB secondary instances). Engines without it (redb, sled: one process per file) do not
/// implement it; [`with_replica_backend`] says so at run time.
pub trait ReplicaBackend: Backend {
    /// Opens `store` of the running node at `config.data_dir` as a replica, keeping the
    /// replica's own files under `scratch` (temporary if `None`).
    fn open_replica(
        config: &Config,
        store: StoreId,
        schema: Schema,
        scratch: Option<&Path>,
    ) -> Result<Self::Reader, OpenError>;

    /// Makes `reader` see everything the primary has written since.
    fn catch_up(reader: &Self::Reader) -> Result<(), storage_api::ReadError>;
}

/// Code to run on an engine with read replicas (see [`with_replica_backend`]).
pub trait ReplicaVisitor {
    /// The result.
    type Output;
    /// Runs with the engine `B`.
    fn visit<B: ReplicaBackend>(self) -> Self::Output;
}

/// Calls `visitor` with the configured engine if it has read replicas (RocksDB);
/// [`StorageError::Unsupported`] otherwise.
pub fn with_replica_backend<V: ReplicaVisitor>(config: &Config, visitor: V) -> Result<V::Output, StorageError> {
    match config.backend {
        #[cfg(feature = "rocksdb")]
        BackendKind::Rocksdb => Ok(visitor.visit::<storage_rocksdb::RocksStore>()),
        engine => Err(StorageError::Incapable {
            operation: "reading a running node",
            needs: crate::error::Capability::Replicas,
            engine,
        }),
    }
}

pub(crate) fn table_names<S: KvStore>(store: &S) -> Vec<&'static str> {
    store.schema().tables().iter().map(|t| t.name).collect()
}

/// Code to run with a handle on whichever engine the config names (see [`with_backend`]).
pub trait BackendVisitor {
    /// The result.
    type Output;
    /// Runs with the engine `B`.
    fn visit<B: Backend>(self) -> Self::Output;
}

/// Calls `visitor` with the engine `config.backend` names: the one place a runtime choice
/// becomes a static type. An engine this build was compiled without (its cargo feature off) is
/// [`StorageError::EngineNotBuilt`].
pub fn with_backend<V: BackendVisitor>(config: &Config, visitor: V) -> Result<V::Output, StorageError> {
    match config.backend {
        #[cfg(feature = "rocksdb")]
        BackendKind::Rocksdb => Ok(visitor.visit::<storage_rocksdb::RocksStore>()),
        #[cfg(feature = "redb")]
        BackendKind::Redb => Ok(visitor.visit::<storage_redb::RedbStore>()),
        #[cfg(feature = "sled")]
        BackendKind::Sled => Ok(visitor.visit::<storage_sled::SledStore>()),
        #[allow(unreachable_patterns)] // every engine built
        engine => Err(StorageError::EngineNotBuilt { engine }),
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
