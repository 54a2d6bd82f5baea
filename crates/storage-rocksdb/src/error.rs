//! The one place RocksDB errors become storage-api errors.

use storage_api::{BackendError, BackendErrorKind};

/// The backend's name in errors.
pub(crate) const BACKEND: &str = "rocksdb";

/// Maps a RocksDB error.
pub(crate) fn map_err(e: rocksdb::Error) -> BackendError {
    use rocksdb::ErrorKind as K;
    let kind = match e.kind() {
        K::IOError if e.as_ref().contains("lock") => BackendErrorKind::Busy,
        K::IOError => BackendErrorKind::Io,
        K::Corruption => BackendErrorKind::Corruption,
        K::Busy | K::TryAgain | K::TimedOut => BackendErrorKind::Busy,
        K::InvalidArgument => BackendErrorKind::InvalidArgument,
        K::NotSupported => BackendErrorKind::NotSupported,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(BACKEND, kind, e.into_string())
}
