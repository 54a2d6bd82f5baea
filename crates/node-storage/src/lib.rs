//! node-storage: the storage of a blockchain node, composed.
//!
//! [`StorageHandle`] opens a chain store and a DAG store (plus a small `node` store for the
//! dead-letter table) on one engine, puts decoded-object caches in front of them, and runs:
//!
//! * a **writer thread** fed by three bounded priority lanes (high: finalization and head
//!   updates; normal: blocks and vertices; low: maintenance). It drains queued requests into
//!   groups: each run of inserts is one atomic engine batch, and the group ends with one sync,
//!   after which every request in it is acknowledged. Duplicate vertex inserts in a group
//!   coalesce. Transient engine errors are retried with exponential backoff; repeated engine
//!   failures open a circuit breaker (fast `Unavailable`); writes that fail for good and may
//!   succeed later go to a persisted dead-letter table, listable and replayable.
//! * reads on the caller's task when a cache answers, else on the blocking pool: they never
//!   wait for the writer. Caches are invalidated on every reorg and prune, with protection
//!   against a reader caching a value it read before the change.
//! * a **maintenance scheduler** (pruning per the retention config, compaction, service-level
//!   evaluation) and **metrics** served on `/metrics`.
//!
//! Configuration is one [`Config`], loaded from TOML and `NODE_STORAGE_*` variables.
//! The engine is a type parameter ([`Backend`]); [`with_backend`] turns the configured engine
//! into that type in one place. Engines are cargo features: `rocksdb` (default), `redb`, `sled`.
//! The vocabulary a node needs is re-exported here: [`chain`], [`eth`], [`dag`], [`backups`],
//! [`metrics`], and the stores by [`StoreId`].

#[cfg(not(any(feature = "rocksdb", feature = "redb", feature = "sled")))]
compile_error!("node-storage needs at least one engine: enable the cargo feature `rocksdb`, `redb` or `sled`");

pub mod admin;
mod backend;
mod backup;
mod breaker;
mod caches;
mod check;
mod config;
mod datadir;
mod deadletter;
mod era1;
mod error;
mod fallback;
mod handle;
mod history;
mod intake;
#[cfg(feature = "rocksdb")]
mod legacy;
mod maintenance;
mod migrate;
pub mod model;
mod offline;
pub mod ops;
mod reader;
#[cfg(feature = "rocksdb")]
mod recover;
mod replica;
mod request;
mod restore;
mod rpc_source;
mod schedule;
mod shared;
mod store_id;
mod stores;
mod uploader;
mod writer;

pub use backend::{
    Backend, BackendVisitor, ReplicaBackend, ReplicaVisitor, ViewVisitor, caps, with_backend, with_replica_backend,
};
pub use backup::{BackupReport, backup_stopped};
pub use breaker::BreakerState;
pub use chain_eth::import::{Era1Checks, Verified};
pub use chain_eth::inclusion::Item;
pub use check::{ChainCheck, CheckSummary, DagCheck, NodeStats, PruneSummary, StateCheck, StoreStats};
pub use config::{
    BackendKind, CachesConfig, Config, ConfigError, ENV_PREFIX, EngineConfig, ModelKind, ReplicaConfig,
    RetentionConfig, StateConfig, TrieSwitch, WriterConfig,
};
pub use datadir::{DataDirLock, ENGINE_FILE, LOCK_FILE, NODE_ID_FILE, read_node_id};
pub use deadletter::{DeadLetter, DeadLetterPage, DeadLetterSummary, Replayed};
pub use era1::{Era1Import, Era1Progress, era1_files, export_era1, import_era1};
pub use error::{Capability, ErrorKind, StorageError};
pub use fallback::{FallbackReport, StoreDiagnosis, Uncovered, diagnose, recover_from_backup};
pub use handle::StorageHandle;
pub use history::{ArchiveReport, ArchiveStatus, UploadRound};
#[cfg(feature = "rocksdb")]
pub use legacy::{LegacyImportReport, import_legacy, write_legacy_fixture};
pub use migrate::{
    CopyReport, MigrateOptions, MigrateProgress, MigrationReport, StoreMigration, copy_node, migrate_node, plan_node,
};
pub use model::{HistoryProofs, NodeModel, NodeVisitor, ReplicaNodeVisitor, with_node, with_replica_node};
pub use offline::execute_stopped;
pub use ops::{Operation, Outcome};
pub use reader::NodeReader;
#[cfg(feature = "rocksdb")]
pub use recover::{StoreRecovery, recover_wal_loss};
pub use replica::ReplicaHandle;
pub use restore::{RestoreReport, restore};
pub use schedule::{ScheduleStatus, ScheduledRun};
#[cfg(feature = "redb")]
pub use storage_redb::RedbStore;
#[cfg(feature = "rocksdb")]
pub use storage_rocksdb::{RocksStore, WalLoss};
#[cfg(feature = "sled")]
pub use storage_sled::SledStore;
pub use store_id::{StoreId, node_schema};

/// The read-only Ethereum JSON-RPC endpoint (the `eth-rpc` crate): [`rpc::serve`] on a
/// [`StorageHandle`] or a [`ReplicaHandle`] (both are its [`rpc::EthSource`]), or
/// [`rpc::module`] to mount its methods on a server of the node's own; `[rpc]` configures it.
pub mod rpc {
    pub use eth_rpc::{
        EthSource, HISTORY_UNAVAILABLE, LIMIT_EXCEEDED, METHODS, NOT_FOUND, Read, RpcConfig, RpcError, RpcServer,
        ServeError, SourceError, TIMEOUT, module, serve,
    };
}

/// The linear chain's vocabulary (chain-store): blocks and the model trait, what writes and
/// queries return, and the synthetic EVM-style model with its generator.
pub mod chain {
    pub use chain_store::{
        AddressCursor, AddressPage, AddressQuery, AddressTx, Block, BlockHeader, BlockRef, ChainError, ChainModel, Id,
        Inserted, IntegrityReport, Located, Log, LogFilter, LogMatch, LogMatchOf, NewBlock, Order, Pointers, Problem,
        ProofError, PruneReport, Receipt, Reorg, StateProof, StateWrite, Transaction, TrieBuildReport, TriePlace,
        TxInBlock, TxLocation,
    };
    pub use chain_store::{generator, synthetic, trie};
}

/// The Ethereum model (chain-eth, on alloy): its block parts, its generator and the era1 format.
pub mod eth {
    pub use chain_eth::era1::Era1Summary;
    pub use chain_eth::generator;
    pub use chain_eth::{Eth, EthBody, EthHeader, EthLog, EthReceipt, EthStateKey, EthStateValue, EthTx};
}

/// The DAG's vocabulary (dag-store): vertices, what writes and checks return, and the
/// synthetic DAG generator.
pub mod dag {
    pub use dag_store::generator;
    pub use dag_store::{
        DagError, Inserted, IntegrityReport, Problem, PruneReport, Status, StoredVertex, Vertex, VertexBuilder,
        VertexHash, Walk,
    };
}

/// Backups (storage-backup): their configuration, kinds, catalogue and manifests.
pub mod backups {
    pub use storage_backup::{
        BackupConfig, BackupError, BackupInfo, BackupKind, Backups, Compression, Credentials, Manifest, Progress,
        RetentionPolicy, Selector, parse_time, rfc3339,
    };
}

/// The history archive's vocabulary (storage-history): its configuration, watermarks, errors
/// and verification figures.
pub mod history_tier {
    pub use storage_history::{
        BigtableConfig, HistoryConfig, HistoryError, Kind, Mark, Progress, SegmentConfig, TierKind, TierReport,
    };
}

/// Metrics and health (storage-metrics), and the caches' figures (storage-cache).
pub mod metrics {
    pub use storage_cache::{CacheConfig, CacheStats};
    pub use storage_metrics::{Health, Metrics, MetricsConfig, SloConfig, SloReport, Status};
}

pub use storage_api::{KvIngest, OpenError};
pub use storage_migrate::{Plan, StepReport};
