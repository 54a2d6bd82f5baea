//! Errors: one narrow type per operation family and [`BackupError`], the crate's umbrella.
//! Object-store failures are mapped in one place, [`DestinationError::from_store`], which never
//! includes credentials (object_store's errors carry paths and HTTP statuses, not secrets).

use std::path::PathBuf;

use thiserror::Error;

/// A failure talking to the backup destination.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// The destination configuration is incomplete or invalid.
    #[error("backup destination {destination}: {message}")]
    Config {
        /// The destination, as shown to operators (no credentials).
        destination: String,
        /// What is wrong.
        message: String,
    },
    /// The destination refused the credentials.
    #[error("backup destination {destination} refused the credentials while {action} `{key}` (check {hint}): {source}")]
    Denied {
        /// The destination.
        destination: String,
        /// What was being done.
        action: &'static str,
        /// The object key.
        key: String,
        /// Which environment variables supply the credentials.
        hint: &'static str,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
    /// An object that must exist does not.
    #[error("backup destination {destination}: `{key}` does not exist")]
    NotFound {
        /// The destination.
        destination: String,
        /// The object key.
        key: String,
    },
    /// A conditional write found the object changed (or created, or deleted) since it was
    /// read: someone else wrote it meanwhile. Nothing was written.
    #[error("backup destination {destination}: `{key}` changed since it was read (another writer?); not overwritten")]
    Conflict {
        /// The destination.
        destination: String,
        /// The object key.
        key: String,
    },
    /// Any other failure (network, server, local disk), after the configured retries.
    #[error("backup destination {destination}: {action} `{key}` failed: {source}")]
    Store {
        /// The destination.
        destination: String,
        /// What was being done.
        action: &'static str,
        /// The object key.
        key: String,
        /// The store's error.
        #[source]
        source: object_store::Error,
    },
}

impl DestinationError {
    /// Maps an object_store error: the one place destination failures are classified, by their
    /// kind. `refused` says a generic failure was shown to be a refusal of the credentials (see
    /// `Destination::failed`); nothing is classified by its text.
    pub(crate) fn from_store(
        destination: &str,
        hint: &'static str,
        action: &'static str,
        key: &str,
        source: object_store::Error,
        refused: bool,
    ) -> Self {
        let (destination, key) = (destination.to_owned(), key.to_owned());
        match source {
            object_store::Error::NotFound { .. } => DestinationError::NotFound { destination, key },
            object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
                DestinationError::Conflict { destination, key }
            }
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                DestinationError::Denied { destination, action, key, hint, source }
            }
            // A generic failure the destination showed to be a refusal of the credentials.
            other if refused => DestinationError::Denied { destination, action, key, hint, source: other },
            other => DestinationError::Store { destination, action, key, source: other },
        }
    }
}

/// A stored file or archive entry that does not match its manifest. Nothing it came from is
/// used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The manifest or completion marker is unreadable or inconsistent.
    #[error("backup {backup}: manifest is invalid: {message}")]
    Manifest {
        /// The backup id.
        backup: String,
        /// What is wrong.
        message: String,
    },
    /// The manifest was written by a newer format than this build reads.
    #[error("backup {backup}: manifest format {found} is newer than this build reads ({supported}); upgrade nodestore")]
    NewerFormat {
        /// The backup id.
        backup: String,
        /// The manifest's format.
        found: u32,
        /// The newest format this build reads.
        supported: u32,
    },
    /// A metadata object (manifest, marker) is larger than any this build writes; it is not
    /// read.
    #[error("`{path}`: {size} bytes, over the {limit}-byte limit for such objects; not read")]
    TooLarge {
        /// The object key.
        path: String,
        /// Its size (or the bytes read before it passed the limit).
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// An object's or file's size differs from the manifest.
    #[error("`{path}`: size {found} bytes, manifest says {expected}")]
    Size {
        /// The file or object.
        path: String,
        /// What the manifest says.
        expected: u64,
        /// What was found.
        found: u64,
    },
    /// An object's or file's BLAKE3 differs from the manifest.
    #[error("`{path}`: BLAKE3 {found}, manifest says {expected}")]
    Hash {
        /// The file or object.
        path: String,
        /// What the manifest says.
        expected: String,
        /// What was found.
        found: String,
    },
    /// An archive entry is unsafe or not what the manifest lists.
    #[error("archive `{archive}`: entry `{entry}` rejected: {reason}")]
    Entry {
        /// The archive.
        archive: String,
        /// The entry's path as stored (lossily decoded).
        entry: String,
        /// Why.
        reason: String,
    },
    /// The archive is truncated, corrupt or larger than the manifest allows.
    #[error("archive `{archive}` is malformed: {reason}")]
    Archive {
        /// The archive.
        archive: String,
        /// Why.
        reason: String,
    },
    /// Files the manifest lists were not found in the backup's archive.
    #[error("archive `{backup}`: {count} file(s) listed in the manifest are missing, first `{first}`")]
    Missing {
        /// The archive.
        backup: String,
        /// How many.
        count: usize,
        /// The first missing path.
        first: String,
    },
    /// A restored table's key count or digest differs from the manifest.
    #[error("store {store}, table {table}: {what} differs after restore (manifest {expected}, restored {found})")]
    Table {
        /// The store.
        store: String,
        /// The table.
        table: String,
        /// `key count` or `digest`.
        what: &'static str,
        /// What the manifest says.
        expected: String,
        /// What the restored table holds.
        found: String,
    },
}

/// The crate's umbrella error.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The destination failed (boxed: object_store errors are large).
    #[error(transparent)]
    Destination(Box<DestinationError>),
    /// Stored data failed verification.
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    /// A local file operation failed.
    #[error("{action} `{path}`: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// Reading or writing a store failed.
    #[error("store {store}: {message}")]
    Store {
        /// The store.
        store: String,
        /// The failure.
        message: String,
    },
    /// No backup matches the request.
    #[error("no complete backup {0}")]
    NoSuchBackup(String),
    /// The request cannot be carried out as asked.
    #[error("{0}")]
    Invalid(String),
}

impl From<DestinationError> for BackupError {
    fn from(e: DestinationError) -> Self {
        BackupError::Destination(Box::new(e))
    }
}

impl BackupError {
    /// An I/O failure on `path`.
    pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| BackupError::Io { action, path, source }
    }

    /// An I/O failure on `path` (for callers composing backups).
    pub fn io_error(action: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        BackupError::Io { action, path: path.to_owned(), source }
    }

    /// A store failure.
    pub fn store(store: &str, error: impl std::fmt::Display) -> Self {
        BackupError::Store { store: store.to_owned(), message: error.to_string() }
    }
}
