//! Errors of the facade: one narrow type per concern and [`StorageError`] as the umbrella.

use std::path::PathBuf;
use std::time::Duration;

use chain_store::ChainError;
use dag_store::DagError;
use storage_api::{BackendErrorKind, FlushError, MaintenanceError, OpenError, ReadError, WriteError};

use crate::config::BackendKind;

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TOML syntax, an unknown key or a wrongly typed value.
    #[error("config: {0}")]
    Parse(String),
    /// An environment override could not be applied.
    #[error("config: environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// Why.
        reason: String,
    },
    /// A value that parses but is not allowed.
    #[error("config: `{key}` {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// A node-storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Another process (or another handle in this one) has the data directory open for
    /// writing.
    #[error(
        "{} is in use: a running node (or another nodestore command) holds its lock; stop it first, or enable the \
         node's admin endpoint (`[admin] enabled = true`) and nodestore runs stats, check, compact, prune, dead-letter \
         and backup create|schedule through it",
        data_dir.display()
    )]
    InUse {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// The data directory was written by another engine than the configured one.
    #[error(
        "{} holds {found} stores but the node is configured for {configured}: pass `--backend {found}` (or set \
         `backend = \"{found}\"`); to change engines, use `nodestore migrate copy` (nothing was changed)",
        data_dir.display()
    )]
    WrongEngine {
        /// The data directory.
        data_dir: PathBuf,
        /// The engine whose stores are there.
        found: BackendKind,
        /// The configured engine.
        configured: BackendKind,
    },
    /// The data directory's engine marker is unreadable.
    #[error("engine marker {}: {reason}", path.display())]
    EngineMarker {
        /// The marker file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The node identity file is unreadable.
    #[error("node identity {}: {reason}", path.display())]
    NodeId {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A read-only command found no node where it looked (read-only commands create nothing).
    #[error("no database at {} (run `nodestore demo` or pass --data-dir)", data_dir.display())]
    NoDatabase {
        /// The data directory.
        data_dir: PathBuf,
    },
    /// A file of the data directory itself (lock, marker) could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    DataDir {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The configured engine is not part of this build (its cargo feature was off).
    #[error("this build of node-storage has no {engine} engine (enable the cargo feature `{engine}`)")]
    EngineNotBuilt {
        /// The engine asked for.
        engine: crate::config::BackendKind,
    },
    /// A store could not be opened.
    #[error("opening the {store} store: {source}")]
    Open {
        /// Which store.
        store: crate::stores::StoreId,
        /// Why.
        source: OpenError,
    },
    /// The legacy flat database (`nodestore migrate import-legacy`) could not be opened or
    /// created.
    #[error("opening the legacy database {path}: {source}")]
    OpenLegacy {
        /// The database.
        path: PathBuf,
        /// Why.
        source: OpenError,
    },
    /// The chain store refused or failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// An era1 file does not read or verify, or cannot be written.
    #[error(transparent)]
    Era1(chain_eth::import::Era1ImportError),
    /// A backup, verification or restore failed.
    #[error(transparent)]
    Backup(#[from] storage_backup::BackupError),
    /// A migration or copy failed.
    #[error(transparent)]
    Migrate(#[from] storage_migrate::MigrateError),
    /// A legacy import found corrupt records or failed verification (nothing was committed).
    #[error(transparent)]
    Legacy(#[from] dag_store::legacy::LegacyError),
    /// The DAG store refused or failed.
    #[error(transparent)]
    Dag(#[from] DagError),
    /// A read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The writes were applied but could not be made durable; the store now refuses writes
    /// until it is reopened.
    #[error("sync failed, writes not durable: {0}")]
    Flush(#[from] FlushError),
    /// Compaction or statistics failed.
    #[error(transparent)]
    Maintenance(#[from] MaintenanceError),
    /// The request was not done in time. If it had already started it may still commit
    /// (inserts are idempotent, so resubmitting is safe).
    #[error("request {id} timed out after {after:?}")]
    Timeout {
        /// The request's correlation id.
        id: String,
        /// The configured timeout.
        after: Duration,
    },
    /// The circuit breaker is open after repeated engine failures; retry later.
    #[error(
        "storage unavailable (circuit breaker open after repeated failures; last: {last_error}); retry in {retry_in:?}"
    )]
    Unavailable {
        /// When the breaker lets a probe through.
        retry_in: Duration,
        /// The failure that opened it.
        last_error: String,
    },
    /// The handle is shutting down.
    #[error("storage is shutting down")]
    ShuttingDown,
    /// No such dead letter.
    #[error("dead letter {0} not found")]
    NoSuchDeadLetter(u64),
    /// A stored dead letter could not be decoded.
    #[error("dead letter {id} is unreadable: {reason}")]
    CorruptDeadLetter {
        /// Its id.
        id: u64,
        /// Why.
        reason: String,
    },
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] storage_metrics::MetricsError),
    /// The history archive failed: unreachable ([`storage_history::HistoryError::Unavailable`]
    /// — a read of pruned data then fails rather than answering "not found"), refused, or
    /// holding data that does not check out. Boxed: its variants carry several strings, and
    /// every result of the facade would otherwise be that much larger.
    #[error(transparent)]
    History(Box<storage_history::HistoryError>),
    /// The history archive holds another chain (or DAG) than this node's.
    #[error("the history archive {archive} does not continue this node's {history}: {reason}")]
    ArchiveMismatch {
        /// The archive.
        archive: String,
        /// `chain` or `dag`.
        history: &'static str,
        /// What differs.
        reason: String,
    },
    /// A consistent read of a running node (a live integrity check, a logical backup) needs
    /// snapshots, and this engine has none: it would have to stop every write meanwhile.
    #[error(
        "{operation} of a running node needs snapshots, and the {engine} engine has none (it would stop every write meanwhile): stop the node and run the command again (it then opens the stores itself), or use rocksdb or redb"
    )]
    NoSnapshots {
        /// What was asked.
        operation: &'static str,
        /// The engine.
        engine: crate::BackendKind,
    },
    /// The operation does not apply to this node (its engine lacks what it needs).
    #[error("not supported: {0}")]
    Unsupported(String),
    /// A background thread could not start, or died.
    #[error("internal: {0}")]
    Internal(String),
}

impl StorageError {
    /// A short, stable name for metrics (`errors_total{kind=…}`).
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::Config(_) => "config",
            StorageError::Open { .. }
            | StorageError::OpenLegacy { .. }
            | StorageError::EngineNotBuilt { .. }
            | StorageError::InUse { .. }
            | StorageError::WrongEngine { .. }
            | StorageError::EngineMarker { .. }
            | StorageError::NodeId { .. }
            | StorageError::NoDatabase { .. }
            | StorageError::DataDir { .. } => "open",
            StorageError::Chain(e) => match e {
                ChainError::Read(_)
                | ChainError::Write(_)
                | ChainError::Maintenance(_)
                | ChainError::Ingest(_)
                | ChainError::Runs(_)
                | ChainError::ScratchDir { .. } => "engine",
                _ => "chain_rejected",
            },
            StorageError::Dag(e) => match e {
                DagError::Read(_) | DagError::Write(_) | DagError::Maintenance(_) => "engine",
                _ => "dag_rejected",
            },
            StorageError::Read(_) | StorageError::Write(_) | StorageError::Maintenance(_) => "engine",
            StorageError::Flush(_) => "sync",
            StorageError::Timeout { .. } => "timeout",
            StorageError::Unavailable { .. } => "unavailable",
            StorageError::ShuttingDown => "shutting_down",
            StorageError::NoSuchDeadLetter(_) | StorageError::CorruptDeadLetter { .. } => "dead_letter",
            StorageError::Metrics(_) => "metrics",
            StorageError::History(e) if e.is_unavailable() => "archive_unavailable",
            StorageError::History(_) | StorageError::ArchiveMismatch { .. } => "archive",
            StorageError::Backup(_) => "backup",
            StorageError::Migrate(_) => "migrate",
            StorageError::Legacy(_) => "legacy",
            StorageError::Era1(_) => "era1",
            StorageError::Unsupported(_) | StorageError::NoSnapshots { .. } => "unsupported",
            StorageError::Internal(_) => "internal",
        }
    }

    /// Whether the engine failed (as opposed to the request being rejected): these count
    /// towards the circuit breaker.
    pub fn is_engine_failure(&self) -> bool {
        matches!(self.kind(), "engine" | "sync")
    }

    /// Whether retrying the same write may succeed: engine I/O, busy or unknown errors.
    /// Poisoned stores, corruption and rejected input are not transient.
    pub fn is_transient(&self) -> bool {
        let write = match self {
            StorageError::Write(w)
            | StorageError::Chain(ChainError::Write(w))
            | StorageError::Dag(DagError::Write(w)) => w,
            _ => return false,
        };
        matches!(write, WriteError::Backend(b) if matches!(b.kind, BackendErrorKind::Io | BackendErrorKind::Busy | BackendErrorKind::Other))
    }

    /// Whether the write could succeed later (a parent that has not arrived yet, an engine
    /// failure) — such writes go to the dead-letter table. Malformed input never does.
    pub fn is_retryable_later(&self) -> bool {
        match self {
            StorageError::Dag(DagError::MissingParents { .. } | DagError::UnfinalizedParents { .. }) => true,
            StorageError::Chain(
                ChainError::UnknownParent { .. } | ChainError::NotInitialized | ChainError::UnknownBlock(_),
            ) => true,
            StorageError::Timeout { .. } | StorageError::Unavailable { .. } => false,
            e => e.is_engine_failure(),
        }
    }
}

impl From<storage_history::HistoryError> for StorageError {
    fn from(e: storage_history::HistoryError) -> Self {
        StorageError::History(Box::new(e))
    }
}
