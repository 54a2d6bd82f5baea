//! Errors: one narrow type per operation, and [`Error`] as the crate's umbrella.
//!
//! Backends map their engine's errors into [`BackendError`] in one function each; everything
//! above storage-api sees only these types.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::codec::CodecError;

/// What kind of engine failure a [`BackendError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// An I/O error (including a full disk).
    Io,
    /// The engine found corrupt data on disk.
    Corruption,
    /// The database is locked by another process, or a resource is busy.
    Busy,
    /// An argument the engine rejected.
    InvalidArgument,
    /// The engine does not support the request.
    NotSupported,
    /// Anything else.
    Other,
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendErrorKind::Io => "I/O error",
            BackendErrorKind::Corruption => "corruption",
            BackendErrorKind::Busy => "busy",
            BackendErrorKind::InvalidArgument => "invalid argument",
            BackendErrorKind::NotSupported => "not supported",
            BackendErrorKind::Other => "engine error",
        })
    }
}

/// An error reported by a storage engine, mapped at the backend's boundary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{backend}: {kind}: {message}")]
pub struct BackendError {
    /// Which backend reported it (`rocksdb`, `redb`, …).
    pub backend: &'static str,
    /// The category.
    pub kind: BackendErrorKind,
    /// The engine's own message.
    pub message: String,
}

impl BackendError {
    /// A new backend error.
    pub fn new(backend: &'static str, kind: BackendErrorKind, message: impl Into<String>) -> Self {
        BackendError { backend, kind, message: message.into() }
    }
}

/// Whether the bytes that failed to decode were a key or a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// A key.
    Key,
    /// A value.
    Value,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Key => "key",
            Part::Value => "value",
        })
    }
}

/// A read failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// The table is not part of the schema the store was opened with.
    #[error("table `{0}` is not part of the open schema")]
    UnknownTable(String),
    /// Stored bytes could not be decoded.
    #[error("cannot decode {part} in table `{table}`: {source}")]
    Decode {
        /// The table read.
        table: &'static str,
        /// Key or value.
        part: Part,
        /// Why.
        source: CodecError,
    },
    /// The engine failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A write failed. Nothing of the batch was applied.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// An earlier write or fsync failed, so the store refuses writes until it is reopened: the
    /// engine's state after a failed fsync cannot be trusted.
    #[error("store is poisoned: an earlier write or fsync failed ({0}); reopen the store to continue")]
    Poisoned(String),
    /// The table is not part of the schema the store was opened with.
    #[error("table `{0}` is not part of the open schema")]
    UnknownTable(String),
    /// A key or value could not be encoded.
    #[error("cannot encode {part} for table `{table}`: {source}")]
    Encode {
        /// The table written.
        table: &'static str,
        /// Key or value.
        part: Part,
        /// Why.
        source: CodecError,
    },
    /// A range delete with start after end.
    #[error("invalid range for table `{0}`: start is after end")]
    InvalidRange(String),
    /// The engine failed; the store is now poisoned.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Opening a store failed. Nothing on disk was changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The database was written by a newer schema version than this build supports.
    #[error(
        "database schema `{schema}` is version {found}, newer than version {supported} supported by this build; \
         upgrade node-storage (nothing was changed on disk)"
    )]
    NewerSchema {
        /// The schema's name.
        schema: &'static str,
        /// The version on disk.
        found: u32,
        /// The newest version this build supports.
        supported: u32,
    },
    /// The database has an older schema version and must be migrated first.
    #[error(
        "database schema `{schema}` is version {found} but this build needs version {expected}; \
         run `nodestore migrate` to upgrade it (nothing was changed on disk)"
    )]
    OlderSchema {
        /// The schema's name.
        schema: &'static str,
        /// The version on disk.
        found: u32,
        /// The version this build needs.
        expected: u32,
    },
    /// The database holds tables the schema does not know.
    #[error(
        "database holds tables unknown to schema `{schema}`: {}; it was written by another build or another \
         program (nothing was changed on disk)", .tables.join(", ")
    )]
    UnknownTables {
        /// The schema's name.
        schema: &'static str,
        /// The unknown tables, sorted.
        tables: Vec<String>,
    },
    /// The database belongs to a different schema.
    #[error("database holds schema `{found}`, not `{expected}` (nothing was changed on disk)")]
    WrongSchema {
        /// The schema being opened.
        expected: &'static str,
        /// The schema on disk.
        found: String,
    },
    /// The directory holds tables but no schema record.
    #[error(
        "database has tables ({}) but no schema record; it was not written by node-storage (nothing was changed on disk)",
        .tables.join(", ")
    )]
    MissingSchemaRecord {
        /// The tables found.
        tables: Vec<String>,
    },
    /// The schema record could not be decoded.
    #[error("schema record is corrupt: {0}")]
    CorruptSchemaRecord(CodecError),
    /// The engine's log is damaged, truncated or missing in a way that would lose writes the
    /// store had acknowledged as durable (or whose extent cannot be told). Only a torn tail of
    /// writes that were never acknowledged may be dropped silently; this is everything else.
    #[error(
        "{}: the write-ahead log is damaged or missing: {detail}; refusing to open, nothing was changed on disk \
         (restore from a backup, or accept the loss: `nodestore recover --accept-wal-loss`)",
        path.display()
    )]
    DamagedLog {
        /// The database.
        path: PathBuf,
        /// What was found.
        detail: String,
        /// The highest sequence number acknowledged as durable, when recorded.
        acknowledged: Option<u64>,
        /// The sequence number the intact part of the log recovers to, when known.
        recovered: Option<u64>,
    },
    /// The configuration is invalid.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A read-only open found no database (read-only opens never create one).
    #[error("no database at {}", .0.display())]
    NotFound(PathBuf),
    /// A filesystem operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The engine failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Flushing buffered writes to durable storage failed; the store is now poisoned.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The store was already poisoned.
    #[error("store is poisoned: an earlier write or fsync failed ({0}); reopen the store to continue")]
    Poisoned(String),
    /// The engine failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A maintenance request (compaction, statistics) failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MaintenanceError {
    /// The table is not part of the schema the store was opened with.
    #[error("table `{0}` is not part of the open schema")]
    UnknownTable(String),
    /// The engine failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Writing a checkpoint failed. A partially written target directory is removed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// The target already exists; checkpoints never overwrite.
    #[error("checkpoint target {0} already exists")]
    TargetExists(PathBuf),
    /// A filesystem operation failed.
    #[error("checkpoint into {path}: {source}")]
    Io {
        /// The target.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The engine failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Any storage-api error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Opening failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A read failed.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A flush failed.
    #[error(transparent)]
    Flush(#[from] FlushError),
    /// Maintenance failed.
    #[error(transparent)]
    Maintenance(#[from] MaintenanceError),
    /// A checkpoint failed.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
}

/// The poisoned state of a store: set after a failed write or fsync, cleared only by reopening.
#[derive(Debug, Default)]
pub struct Poison {
    poisoned: AtomicBool,
    reason: std::sync::OnceLock<String>,
}

impl Poison {
    /// Fails with [`WriteError::Poisoned`] if the store is poisoned.
    #[inline]
    pub fn check_write(&self) -> Result<(), WriteError> {
        if self.poisoned.load(Ordering::Acquire) { Err(WriteError::Poisoned(self.reason())) } else { Ok(()) }
    }

    /// Fails with [`FlushError::Poisoned`] if the store is poisoned.
    #[inline]
    pub fn check_flush(&self) -> Result<(), FlushError> {
        if self.poisoned.load(Ordering::Acquire) { Err(FlushError::Poisoned(self.reason())) } else { Ok(()) }
    }

    /// Poisons the store, remembering the first reason.
    pub fn poison(&self, reason: &dyn fmt::Display) {
        let _ = self.reason.set(reason.to_string());
        self.poisoned.store(true, Ordering::Release);
    }

    /// Runs a write: refuses it if the store is poisoned, and poisons the store if it fails.
    pub fn guard_write(&self, write: impl FnOnce() -> Result<(), BackendError>) -> Result<(), WriteError> {
        self.check_write()?;
        write().map_err(|e| {
            self.poison(&e);
            WriteError::Backend(e)
        })
    }

    /// Runs a flush: refuses it if the store is poisoned, and poisons the store if it fails.
    pub fn guard_flush(&self, flush: impl FnOnce() -> Result<(), BackendError>) -> Result<(), FlushError> {
        self.check_flush()?;
        flush().map_err(|e| {
            self.poison(&e);
            FlushError::Backend(e)
        })
    }

    /// Whether the store is poisoned.
    pub fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::Acquire)
    }

    fn reason(&self) -> String {
        self.reason.get().cloned().unwrap_or_default()
    }
}
