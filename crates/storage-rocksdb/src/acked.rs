//! The acknowledged-sequence record: the highest RocksDB sequence number the store has told a
//! caller is durable, kept in a small file beside the database (`ACKNOWLEDGED`).
//!
//! RocksDB's own recovery cannot tell a log that ends early because the last, unsynced writes
//! never reached the disk (a torn tail, which may be dropped) from one that was truncated,
//! damaged or deleted after the writes in it were acknowledged (which must not be). This record
//! can: on open, the sequence number the logs recover to must reach it.
//!
//! * It is written (a positional overwrite of 24 bytes) after every synced write or log sync
//!   has returned, with the sequence number that write made durable; never before. It can lag
//!   behind the log (a crash between the sync and the overwrite, or a power cut that drops the
//!   unsynced overwrite) but never run ahead of it, so it never refuses a sound log.
//! * It is fsynced when created and on every full flush and clean close, not on every write:
//!   the page cache carries it across process crashes, which is where an operator's damage
//!   happens; after a power cut it may be a few writes behind.
//! * RocksDB ignores files it does not know, and its checkpoints do not copy this one: a
//!   restored store starts a new record at its first open.

use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use storage_api::OpenError;

/// The record's file name inside the database directory.
pub const ACKNOWLEDGED_FILE: &str = "ACKNOWLEDGED";

const MAGIC: &[u8; 8] = b"nsacked1";
const LEN: usize = 24;

fn encode(seq: u64) -> [u8; LEN] {
    let mut out = [0u8; LEN];
    out[..8].copy_from_slice(MAGIC);
    out[8..16].copy_from_slice(&seq.to_le_bytes());
    let check = checksum(&out[..16]);
    out[16..].copy_from_slice(&check);
    out
}

fn checksum(bytes: &[u8]) -> [u8; 8] {
    // FNV-1a, 64-bit: enough to tell a torn or foreign file from a record.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h.to_le_bytes()
}

fn decode(bytes: &[u8]) -> Option<u64> {
    if bytes.len() != LEN || &bytes[..8] != MAGIC || checksum(&bytes[..16]) != bytes[16..] {
        return None;
    }
    Some(u64::from_le_bytes(bytes[8..16].try_into().ok()?))
}

fn path_of(dir: &Path) -> PathBuf {
    dir.join(ACKNOWLEDGED_FILE)
}

/// Reads the record of the database in `dir`: `None` when there is none (a database created
/// before the record existed, or by an interrupted creation). A record that exists but cannot
/// be read is an error: the check it enables would otherwise be skipped silently.
pub(crate) fn read(dir: &Path) -> Result<Option<u64>, OpenError> {
    let path = path_of(dir);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(OpenError::Io { action: "reading", path, source }),
    };
    decode(&bytes).map(Some).ok_or_else(|| OpenError::DamagedLog {
        path: dir.to_owned(),
        detail: format!(
            "{} is not a valid acknowledged-sequence record ({} bytes), so whether acknowledged writes are \
             missing cannot be told",
            path.display(),
            bytes.len()
        ),
        acknowledged: None,
        recovered: None,
    })
}

/// The open record of a read-write store.
#[derive(Debug)]
pub(crate) struct Acked {
    file: File,
    path: PathBuf,
    last: u64,
}

impl Acked {
    /// Creates or overwrites the record of the database in `dir` with `seq`, durably (the file
    /// and, when it is new, the directory entry).
    pub(crate) fn create(dir: &Path, seq: u64) -> Result<Self, OpenError> {
        let path = path_of(dir);
        let io = |action: &'static str, path: &Path| {
            let path = path.to_owned();
            move |source| OpenError::Io { action, path, source }
        };
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io("opening", &path))?;
        file.write_all_at(&encode(seq), 0).map_err(io("writing", &path))?;
        file.set_len(LEN as u64).map_err(io("writing", &path))?;
        file.sync_all().map_err(io("syncing", &path))?;
        if !existed {
            File::open(dir).and_then(|d| d.sync_all()).map_err(io("syncing", dir))?;
        }
        Ok(Acked { file, path, last: seq })
    }

    /// Records that every write up to `seq` is durable. Never lowers the record.
    pub(crate) fn record(&mut self, seq: u64) -> std::io::Result<()> {
        if seq <= self.last {
            return Ok(());
        }
        self.file.write_all_at(&encode(seq), 0)?;
        self.last = seq;
        Ok(())
    }

    /// Makes the record itself durable.
    pub(crate) fn sync(&self) -> std::io::Result<()> {
        self.file.sync_data()
    }

    /// The file, for error messages.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_damage() {
        assert_eq!(decode(&encode(0)), Some(0));
        assert_eq!(decode(&encode(u64::MAX - 3)), Some(u64::MAX - 3));
        let mut bytes = encode(77);
        for i in 0..LEN {
            bytes[i] ^= 0x10;
            assert_eq!(decode(&bytes), None, "flipped byte {i} accepted");
            bytes[i] ^= 0x10;
        }
        assert_eq!(decode(&bytes[..LEN - 1]), None);
    }

    #[test]
    fn record_only_rises() {
        let dir = tempfile::tempdir().unwrap();
        let mut acked = Acked::create(dir.path(), 5).unwrap();
        acked.record(9).unwrap();
        acked.record(7).unwrap();
        assert_eq!(read(dir.path()).unwrap(), Some(9));
        std::fs::write(path_of(dir.path()), b"garbage").unwrap();
        let err = read(dir.path()).unwrap_err();
        assert!(matches!(err, OpenError::DamagedLog { .. }), "{err}");
    }
}
