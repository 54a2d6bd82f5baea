//! The one place sled errors become storage-api errors.

use storage_api::{BackendError, BackendErrorKind};

/// The backend's name in errors.
pub(crate) const BACKEND: &str = "sled";

/// Maps a sled error.
pub(crate) fn map_err(e: sled::Error) -> BackendError {
    let kind = match &e {
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => BackendErrorKind::Busy,
        sled::Error::Io(_) => BackendErrorKind::Io,
        sled::Error::Corruption { .. } => BackendErrorKind::Corruption,
        sled::Error::Unsupported(_) => BackendErrorKind::NotSupported,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(BACKEND, kind, e.to_string())
}
