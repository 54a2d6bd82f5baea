//! Errors of the facade: one narrow type per concern and [`StorageError`] as the umbrella.

use std::path::PathBuf;
use std::time::Duration;

use chain_store::ChainError;
use dag_store::DagError;
use storage_api::{BackendErrorKind, FlushError, MaintenanceError, OpenError, ReadError, WriteError};

use crate::config::{BackendKind, ConfigError, ModelKind};
use crate::store_id::StoreId;

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
        engine: BackendKind,
    },
    /// A store could not be opened.
    #[error("opening the {store} store: {source}")]
    Open {
        /// Which store.
        store: StoreId,
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
    /// An era1 file does not read or verify, or cannot be written. Boxed, as
    /// [`StorageError::History`] is: it carries a path beside a chain error.
    #[error(transparent)]
    Era1(Box<chain_eth::import::Era1ImportError>),
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
        engine: BackendKind,
    },
    /// The engine lacks what the operation needs (another than snapshots, see
    /// [`StorageError::NoSnapshots`]).
    #[error("{operation} needs {needs}, which the {engine} engine does not have")]
    Incapable {
        /// What was asked.
        operation: &'static str,
        /// What it needs.
        needs: Capability,
        /// The engine.
        engine: BackendKind,
    },
    /// The operation is for another chain model than the node's.
    #[error("{operation} needs the {needs} model; this node's model is {model}")]
    WrongModel {
        /// What was asked.
        operation: &'static str,
        /// The model it needs.
        needs: ModelKind,
        /// The node's model.
        model: ModelKind,
    },
    /// No history archive is configured, and the operation reads or writes one.
    #[error("no history archive is configured (set `history.kind`)")]
    NoArchive,
    /// A range whose start is after its end.
    #[error("{what} {from}..={to} is empty: its start is after its end")]
    EmptyRange {
        /// What the range is of.
        what: &'static str,
        /// Its start.
        from: u64,
        /// Its end.
        to: u64,
    },
    /// A height above the chain's head (or a chain with no block).
    #[error("block {number} is above the chain's head ({})", head.map_or_else(|| "the chain is empty".to_owned(), |h| h.to_string()))]
    AboveHead {
        /// The height asked for.
        number: u64,
        /// The head, if any.
        head: Option<u64>,
    },
    /// A name that would go into file names and may not.
    #[error("{what} {name:?}: {reason}")]
    InvalidName {
        /// What the name is.
        what: &'static str,
        /// The name.
        name: String,
        /// What a valid one is.
        reason: &'static str,
    },
    /// A recovery from a backup found nothing wrong with the node.
    #[error("every store opens and passes its integrity check: nothing to recover (force it to restore anyway)")]
    NothingToRecover,
    /// A recovery from a backup found no complete backup of the node.
    #[error("no complete backup at {destination}: nothing to recover from")]
    NoBackups {
        /// The backup destination.
        destination: String,
    },
    /// A recovery from a backup found no backup that verified and restored cleanly.
    #[error("no backup verified and restored cleanly: {}", tried.iter().map(|(id, why)| format!("{id}: {why}")).collect::<Vec<_>>().join("; "))]
    NoUsableBackup {
        /// Each backup tried, with why it was passed over.
        tried: Vec<(String, String)>,
    },
    /// The operation changes the node (or asks the running node about itself), and the stores
    /// were opened read-only (a read-only open, or a replica of a running node).
    #[error("{operation} is not a read: it cannot run on stores opened read-only")]
    ReadOnly {
        /// The operation's name.
        operation: &'static str,
    },
    /// The admin socket could not be set up or used.
    #[error("admin socket {}: {action}: {source}", path.display())]
    AdminSocket {
        /// The socket.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// A background thread could not start, or died.
    #[error("internal: {0}")]
    Internal(String),
}

impl StorageError {
    /// What kind of failure this is: metrics label it (`errors_total{kind=…}`), the admin
    /// protocol carries it, and retries and the circuit breaker decide by it.
    pub fn kind(&self) -> ErrorKind {
        use ErrorKind as K;
        match self {
            StorageError::Config(_) => K::Config,
            StorageError::Open { .. }
            | StorageError::OpenLegacy { .. }
            | StorageError::EngineNotBuilt { .. }
            | StorageError::InUse { .. }
            | StorageError::WrongEngine { .. }
            | StorageError::EngineMarker { .. }
            | StorageError::NodeId { .. }
            | StorageError::NoDatabase { .. }
            | StorageError::DataDir { .. } => K::Open,
            StorageError::Chain(e) => match e {
                ChainError::Read(_)
                | ChainError::Write(_)
                | ChainError::Maintenance(_)
                | ChainError::Ingest(_)
                | ChainError::Runs(_)
                | ChainError::ScratchDir { .. } => K::Engine,
                _ => K::ChainRejected,
            },
            StorageError::Dag(e) => match e {
                DagError::Read(_) | DagError::Write(_) | DagError::Maintenance(_) => K::Engine,
                _ => K::DagRejected,
            },
            StorageError::Read(_) | StorageError::Write(_) | StorageError::Maintenance(_) => K::Engine,
            StorageError::Flush(_) => K::Sync,
            StorageError::Timeout { .. } => K::Timeout,
            StorageError::Unavailable { .. } => K::Unavailable,
            StorageError::ShuttingDown => K::ShuttingDown,
            StorageError::NoSuchDeadLetter(_) | StorageError::CorruptDeadLetter { .. } => K::DeadLetter,
            StorageError::Metrics(_) => K::Metrics,
            StorageError::History(e) if e.is_unavailable() => K::ArchiveUnavailable,
            StorageError::History(_) | StorageError::ArchiveMismatch { .. } => K::Archive,
            StorageError::Backup(_) => K::Backup,
            StorageError::Migrate(_) => K::Migrate,
            StorageError::Legacy(_) => K::Legacy,
            StorageError::Era1(_) => K::Era1,
            StorageError::NoSnapshots { .. } | StorageError::Incapable { .. } | StorageError::WrongModel { .. } => {
                K::Unsupported
            }
            StorageError::NoArchive => K::Archive,
            StorageError::EmptyRange { .. }
            | StorageError::AboveHead { .. }
            | StorageError::InvalidName { .. }
            | StorageError::ReadOnly { .. } => K::Invalid,
            StorageError::NothingToRecover | StorageError::NoBackups { .. } | StorageError::NoUsableBackup { .. } => {
                K::Backup
            }
            StorageError::AdminSocket { .. } => K::Admin,
            StorageError::Internal(_) => K::Internal,
        }
    }

    /// Whether the engine failed (as opposed to the request being rejected): these count
    /// towards the circuit breaker.
    pub fn is_engine_failure(&self) -> bool {
        matches!(self.kind(), ErrorKind::Engine | ErrorKind::Sync)
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

/// The kinds of [`StorageError`]: what metrics label (`errors_total{kind}`), what the admin
/// protocol sends, what retries and the circuit breaker decide by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Bad configuration.
    Config,
    /// A store or the data directory would not open.
    Open,
    /// The engine failed.
    Engine,
    /// A sync failed: writes not durable.
    Sync,
    /// The chain store refused the input.
    ChainRejected,
    /// The DAG store refused the input.
    DagRejected,
    /// A request timed out.
    Timeout,
    /// The circuit breaker is open.
    Unavailable,
    /// The handle is shutting down.
    ShuttingDown,
    /// A dead letter is missing or unreadable.
    DeadLetter,
    /// Metrics could not be set up.
    Metrics,
    /// The history archive could not be reached.
    ArchiveUnavailable,
    /// The history archive refused, holds bad data, or is not configured.
    Archive,
    /// A backup or restore failed.
    Backup,
    /// A migration failed.
    Migrate,
    /// A legacy import failed.
    Legacy,
    /// An era1 file failed.
    Era1,
    /// The engine or model lacks what the operation needs.
    Unsupported,
    /// An argument is out of range.
    Invalid,
    /// The admin socket failed.
    Admin,
    /// A background thread failed.
    Internal,
}

impl ErrorKind {
    /// The kind as metrics label it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Config => "config",
            ErrorKind::Open => "open",
            ErrorKind::Engine => "engine",
            ErrorKind::Sync => "sync",
            ErrorKind::ChainRejected => "chain_rejected",
            ErrorKind::DagRejected => "dag_rejected",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::ShuttingDown => "shutting_down",
            ErrorKind::DeadLetter => "dead_letter",
            ErrorKind::Metrics => "metrics",
            ErrorKind::ArchiveUnavailable => "archive_unavailable",
            ErrorKind::Archive => "archive",
            ErrorKind::Backup => "backup",
            ErrorKind::Migrate => "migrate",
            ErrorKind::Legacy => "legacy",
            ErrorKind::Era1 => "era1",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Invalid => "invalid",
            ErrorKind::Admin => "admin",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A capability an engine may lack (see [`StorageError::Incapable`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Read replicas of a running node (RocksDB secondary instances).
    Replicas,
    /// A write-ahead log to recover (RocksDB).
    WriteAheadLog,
    /// Bulk ingestion of sorted files (RocksDB, redb).
    BulkIngest,
    /// Checkpoints for physical backups (RocksDB, redb).
    Checkpoints,
}

impl std::fmt::Display for Capability {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Capability::Replicas => {
                "read replicas of a running node (RocksDB secondary instances; readers elsewhere use the history archive)"
            }
            Capability::WriteAheadLog => "a write-ahead log (only RocksDB keeps one)",
            Capability::BulkIngest => "a bulk-ingest path (RocksDB or redb; copy the node to another engine afterwards)",
            Capability::Checkpoints => "checkpoints (use a logical backup instead)",
        })
    }
}
