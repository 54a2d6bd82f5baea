//! The data directory's own files: `ENGINE`, naming the engine that wrote the stores, `LOCK`,
//! held (an exclusive `flock`) by whoever has the node open for writing, and `NODE_ID`, the
//! node's identity (random, written once), which its backups carry so a recovery never
//! restores another node's backup found at a shared destination.
//!
//! * Every open checks the engine: a directory written by RocksDB opened with `--backend redb`
//!   would otherwise come up as a new, empty node beside the real stores. Directories from
//!   before the marker existed are recognised by their stores' file layout, and adopted.
//! * The lock covers the whole node (the engines lock only their own files), so a restore can
//!   tell a running node from a stopped one without opening, and so changing, any live store.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};

use crate::config::BackendKind;
use crate::error::StorageError;
use crate::store_id::StoreId;

/// The engine marker's file name.
pub const ENGINE_FILE: &str = "ENGINE";
/// The node lock's file name.
pub const LOCK_FILE: &str = "LOCK";
/// The node identity's file name.
pub const NODE_ID_FILE: &str = "NODE_ID";

/// The identity of the node at `data_dir` (`None`: none recorded, a node from before identities
/// or a directory no node opened).
pub fn read_node_id(data_dir: &Path) -> Result<Option<String>, StorageError> {
    let path = data_dir.join(NODE_ID_FILE);
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() <= 128 => {
            let id = String::from_utf8_lossy(&bytes).trim().to_owned();
            if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(StorageError::NodeId { path, reason: format!("{id:?} is not a node identity") });
            }
            Ok(Some(id))
        }
        Ok(bytes) => Err(StorageError::NodeId { path, reason: format!("{} bytes, not a node identity", bytes.len()) }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error("reading", &path, e)),
    }
}

/// Writes `id` as the identity of the node at `data_dir`, durably (file, then directory).
pub(crate) fn write_node_id(data_dir: &Path, id: &str) -> Result<(), StorageError> {
    let path = data_dir.join(NODE_ID_FILE);
    let tmp = data_dir.join(format!(".{NODE_ID_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{id}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        File::open(data_dir)?.sync_all()
    };
    write().map_err(|e| io_error("writing", &path, e))
}

/// The identity of the node at `data_dir`, created (128 random bits, hex) if it has none.
pub(crate) fn ensure_node_id(data_dir: &Path) -> Result<String, StorageError> {
    if let Some(id) = read_node_id(data_dir)? {
        return Ok(id);
    }
    let mut random = [0u8; 16];
    let urandom = Path::new("/dev/urandom");
    File::open(urandom)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .map_err(|e| io_error("reading", urandom, e))?;
    let id: String = random.iter().map(|b| format!("{b:02x}")).collect();
    write_node_id(data_dir, &id)?;
    Ok(id)
}

/// An exclusive hold on a data directory; released when dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
    path: PathBuf,
}

impl DataDirLock {
    /// Takes the lock of `data_dir` (which must exist), creating the lock file if needed.
    /// Fails with [`StorageError::InUse`] when another process (or another handle in this
    /// one) holds it.
    pub(crate) fn acquire(data_dir: &Path) -> Result<Self, StorageError> {
        let path = data_dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| io_error("opening", &path, e))?;
        Self::lock(file, path, data_dir)
    }

    /// Takes the lock of `data_dir` only if its lock file exists (creating nothing):
    /// `Ok(None)` when there is none, so no node of this version has run there.
    pub(crate) fn acquire_existing(data_dir: &Path) -> Result<Option<Self>, StorageError> {
        let path = data_dir.join(LOCK_FILE);
        match File::open(&path) {
            Ok(file) => Self::lock(file, path, data_dir).map(Some),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("opening", &path, e)),
        }
    }

    fn lock(file: File, path: PathBuf, data_dir: &Path) -> Result<Self, StorageError> {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DataDirLock { _file: file, path }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(StorageError::InUse { data_dir: data_dir.to_owned() }),
            Err(e) => Err(io_error("locking", &path, e.into())),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> StorageError {
    StorageError::DataDir { action, path: path.to_owned(), source }
}

/// The engines whose stores are present in `data_dir`, judged by their file layout.
fn engines_on_disk(data_dir: &Path) -> Vec<BackendKind> {
    BackendKind::ALL
        .into_iter()
        .filter(|kind| StoreId::ALL.iter().any(|store| kind.holds_store(&store.path(*kind, data_dir))))
        .collect()
}

/// The engine the marker in `data_dir` names, if there is a marker.
fn read_marker(data_dir: &Path) -> Result<Option<BackendKind>, StorageError> {
    let path = data_dir.join(ENGINE_FILE);
    let text = match std::fs::read(&path) {
        Ok(bytes) if bytes.len() <= 64 => String::from_utf8_lossy(&bytes).into_owned(),
        Ok(bytes) => {
            return Err(StorageError::EngineMarker {
                path,
                reason: format!("{} bytes, not an engine name", bytes.len()),
            });
        }
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error("reading", &path, e)),
    };
    BackendKind::from_name(text.trim())
        .map(Some)
        .ok_or_else(|| StorageError::EngineMarker { path, reason: format!("unknown engine {:?}", text.trim()) })
}

/// Checks that `data_dir` holds no stores of another engine than `engine`. With `adopt`, writes
/// the marker when it is missing (durably: file, then directory).
pub(crate) fn check_engine(data_dir: &Path, engine: BackendKind, adopt: bool) -> Result<(), StorageError> {
    let wrong =
        |found: BackendKind| StorageError::WrongEngine { data_dir: data_dir.to_owned(), found, configured: engine };
    if let Some(found) = read_marker(data_dir)? {
        return if found == engine { Ok(()) } else { Err(wrong(found)) };
    }
    if let Some(other) = engines_on_disk(data_dir).into_iter().find(|k| *k != engine) {
        return Err(wrong(other));
    }
    if adopt {
        write_marker(data_dir, engine)?;
    }
    Ok(())
}

fn write_marker(data_dir: &Path, engine: BackendKind) -> Result<(), StorageError> {
    let path = data_dir.join(ENGINE_FILE);
    let tmp = data_dir.join(format!(".{ENGINE_FILE}.tmp"));
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut f = File::create(&tmp)?;
        f.write_all(format!("{engine}\n").as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        File::open(data_dir)?.sync_all()
    };
    write().map_err(|e| io_error("writing", &path, e))
}

/// Prepares `data_dir` for a read-write open on `engine`: creates it, takes the node lock and
/// checks (or writes) the engine marker.
pub(crate) fn open_for_writing(data_dir: &Path, engine: BackendKind) -> Result<DataDirLock, StorageError> {
    // Durably: the stores below it are lost with it if its name never reaches the disk.
    storage_api::durable::create_dir_all(data_dir).map_err(|e| io_error("creating", data_dir, e))?;
    let lock = DataDirLock::acquire(data_dir)?;
    check_engine(data_dir, engine, true)?;
    ensure_node_id(data_dir)?;
    Ok(lock)
}

/// Checks `data_dir` before a read-only open on `engine`: it must exist and hold no stores of
/// another engine. Nothing is created or written.
pub(crate) fn open_for_reading(data_dir: &Path, engine: BackendKind) -> Result<(), StorageError> {
    if !data_dir.is_dir() {
        return Err(StorageError::NoDatabase { data_dir: data_dir.to_owned() });
    }
    check_engine(data_dir, engine, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_excludes_a_second_holder_and_is_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        assert!(matches!(DataDirLock::acquire(dir.path()), Err(StorageError::InUse { .. })));
        assert!(matches!(DataDirLock::acquire_existing(dir.path()), Err(StorageError::InUse { .. })));
        drop(first);
        assert!(DataDirLock::acquire_existing(dir.path()).unwrap().is_some());
        let empty = tempfile::tempdir().unwrap();
        assert!(DataDirLock::acquire_existing(empty.path()).unwrap().is_none());
        assert!(!empty.path().join(LOCK_FILE).exists());
    }

    #[test]
    fn stores_of_another_engine_are_refused_with_or_without_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join(StoreId::Chain.name())).unwrap();
        std::fs::write(dir.path().join("chain/CURRENT"), "MANIFEST-000001\n").unwrap();
        let err = check_engine(dir.path(), BackendKind::Redb, true).unwrap_err();
        assert!(matches!(err, StorageError::WrongEngine { found: BackendKind::Rocksdb, .. }), "{err}");
        assert!(!dir.path().join(ENGINE_FILE).exists(), "a refused check wrote the marker");
        check_engine(dir.path(), BackendKind::Rocksdb, true).unwrap();
        assert_eq!(read_marker(dir.path()).unwrap(), Some(BackendKind::Rocksdb));
        // With the marker, the layout no longer matters.
        let err = check_engine(dir.path(), BackendKind::Sled, false).unwrap_err();
        assert!(err.to_string().contains("rocksdb") && err.to_string().contains("sled"), "{err}");
        std::fs::write(dir.path().join(ENGINE_FILE), "leveldb\n").unwrap();
        assert!(matches!(
            check_engine(dir.path(), BackendKind::Rocksdb, false),
            Err(StorageError::EngineMarker { .. })
        ));
    }
}
