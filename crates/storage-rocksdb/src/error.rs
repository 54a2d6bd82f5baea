//! The one place RocksDB errors become storage-api errors.

use storage_api::{BackendError, BackendErrorKind};

/// The backend's name in errors.
pub(crate) const BACKEND: &str = "rocksdb";

/// Maps a RocksDB error by its kind (never its text).
pub(crate) fn map_err(e: rocksdb::Error) -> BackendError {
    use rocksdb::ErrorKind as K;
    let kind = match e.kind() {
        K::IOError => BackendErrorKind::Io,
        K::Corruption => BackendErrorKind::Corruption,
        K::Busy | K::TryAgain | K::TimedOut => BackendErrorKind::Busy,
        K::InvalidArgument => BackendErrorKind::InvalidArgument,
        K::NotSupported => BackendErrorKind::NotSupported,
        _ => BackendErrorKind::Other,
    };
    BackendError::new(BACKEND, kind, e.into_string())
}

/// Maps a failed read-write open of the database in `dir`. RocksDB reports a database another
/// holder has open as a plain I/O error; whether its `LOCK` file is locked tells that case
/// apart, by asking the kernel rather than reading the message.
pub(crate) fn map_open_err(dir: &std::path::Path, e: rocksdb::Error) -> BackendError {
    let mut mapped = map_err(e);
    if mapped.kind == BackendErrorKind::Io && lock_held(&dir.join("LOCK")) {
        mapped.kind = BackendErrorKind::Busy;
    }
    mapped
}

/// Whether a lock is held on `path` (RocksDB holds a POSIX record lock on its `LOCK` file).
/// Asked with an open-file-description lock query, which sees the locks of every other holder,
/// this process's own POSIX locks included; takes no lock itself.
#[allow(unsafe_code)] // fcntl(F_OFD_GETLK) on a file this function owns
fn lock_held(path: &std::path::Path) -> bool {
    use std::os::fd::AsRawFd;
    let Ok(file) = std::fs::OpenOptions::new().read(true).write(true).open(path) else { return false };
    // SAFETY: a zeroed `flock` is a valid value of this plain C struct.
    let mut query: libc::flock = unsafe { std::mem::zeroed() };
    query.l_type = libc::F_WRLCK as libc::c_short;
    query.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: `file` is open for the duration of the call and `query` is a valid `flock`.
    let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut query) };
    r == 0 && query.l_type != libc::F_UNLCK as libc::c_short
}
