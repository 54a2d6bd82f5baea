//! The one place redb errors become storage-api errors.

use storage_api::{BackendError, BackendErrorKind};

/// The backend's name in errors.
pub(crate) const BACKEND: &str = "redb";

/// Maps any redb error (they all convert into `redb::Error`).
pub(crate) fn map_err(e: impl Into<redb::Error>) -> BackendError {
    let e: redb::Error = e.into();
    let kind = match &e {
        redb::Error::Corrupted(_) => BackendErrorKind::Corruption,
        redb::Error::Io(_) => BackendErrorKind::Io,
        redb::Error::DatabaseAlreadyOpen | redb::Error::TransactionInProgress => BackendErrorKind::Busy,
        redb::Error::ValueTooLarge(_) => BackendErrorKind::InvalidArgument,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(BACKEND, kind, e.to_string())
}
