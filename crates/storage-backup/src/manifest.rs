//! The manifest: what a backup holds, with every file's size and BLAKE3, and the completion
//! marker that makes a backup count. Layout at the destination:
//!
//! ```text
//! objects/<aa>/<blake3>.<ext>        content-addressed files, shared between backups
//! backups/<id>/archive.tar.<ext>     this backup's other files (or its logical dump)
//! backups/<id>/manifest.json         this manifest
//! backups/<id>/COMPLETE              written last: the manifest's BLAKE3
//! ```

use serde::{Deserialize, Serialize};

use crate::config::{BackupKind, Compression};
use crate::error::IntegrityError;

/// The manifest format this build writes and the newest it reads.
pub const MANIFEST_FORMAT: u32 = 1;

/// The largest completion marker read (a marker is about 100 bytes).
pub const MAX_MARKER_BYTES: u64 = 4 << 10;

/// The largest manifest read: 64 MiB, room for about 200,000 files (a record is about 300
/// bytes). Anything larger is refused unread.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 20;

/// Where a backed-up file's bytes are stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "in", rename_all = "lowercase")]
pub enum Location {
    /// A content-addressed object, possibly uploaded by an earlier backup.
    Object {
        /// The object's key.
        key: String,
        /// How the object is compressed.
        compression: Compression,
        /// Stored (compressed) size.
        stored_size: u64,
        /// BLAKE3 of the stored bytes, checked before decompressing.
        stored_blake3: String,
    },
    /// An entry of the backup's archive.
    Archive,
}

/// One backed-up file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Path relative to the data directory, `/`-separated.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the contents (hex).
    pub blake3: String,
    /// Modification time of an immutable source file (ns since the epoch); with the store's
    /// identity, path and size it lets the next backup reuse the hash without reading the file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modified_ns: Option<u64>,
    /// Where the bytes are.
    pub location: Location,
}

/// The backup's archive (a tar stream, compressed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveRecord {
    /// The object's key.
    pub key: String,
    /// Compression of the stream.
    pub compression: Compression,
    /// Stored size.
    pub stored_size: u64,
    /// BLAKE3 of the stored bytes.
    pub stored_blake3: String,
}

/// One table of a logical backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableRecord {
    /// The table.
    pub name: String,
    /// Entries.
    pub keys: u64,
    /// BLAKE3 over the ordered entries (see [`TableDigest`](crate::TableDigest)).
    pub digest: String,
}

/// One store (chain, DAG, node) in the backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreRecord {
    /// The store's name (`chain`, `dag`, `node`).
    pub name: String,
    /// The engine it was taken from.
    pub backend: String,
    /// The schema's name.
    pub schema: String,
    /// The schema version.
    pub schema_version: u32,
    /// Chain head height (chain store) or DAG height, when known.
    pub head: Option<u64>,
    /// Last finalized height or sequence, when known.
    pub finalized: Option<u64>,
    /// The engine's database identity (RocksDB `IDENTITY`), used to reuse file hashes.
    pub identity: Option<String>,
    /// The identity of the node the store belongs to (its data directory's `NODE_ID`), so a
    /// backup is never restored into another node; `None` in backups from before identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Tables of a logical backup.
    pub tables: Vec<TableRecord>,
}

/// Totals over the backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Files.
    pub files: u64,
    /// Bytes before compression.
    pub raw_bytes: u64,
    /// Bytes stored, counting shared objects.
    pub stored_bytes: u64,
    /// Bytes this backup uploaded (new objects and the archive).
    pub uploaded_bytes: u64,
    /// Files found already stored by an earlier backup.
    pub reused_files: u64,
}

impl Totals {
    /// The totals that follow from the file list and the archive: (files, raw bytes, stored
    /// bytes). The other two depend on what earlier backups had stored.
    pub fn derived(files: &[FileRecord], archive: Option<&ArchiveRecord>) -> (u64, u64, u64) {
        let stored = files
            .iter()
            .map(|f| match &f.location {
                Location::Object { stored_size, .. } => *stored_size,
                Location::Archive => 0,
            })
            .fold(0u64, u64::saturating_add);
        (
            files.len() as u64,
            files.iter().map(|f| f.size).fold(0u64, u64::saturating_add),
            stored.saturating_add(archive.map_or(0, |a| a.stored_size)),
        )
    }

    /// Raw bytes per stored byte.
    pub fn ratio(&self) -> f64 {
        if self.stored_bytes == 0 { 1.0 } else { self.raw_bytes as f64 / self.stored_bytes as f64 }
    }
}

/// A backup's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`] when written.
    pub format: u32,
    /// The backup's id (sortable by time).
    pub id: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// Creation time, RFC 3339 (for people).
    pub created_at: String,
    /// Physical or logical.
    pub kind: BackupKind,
    /// The stores captured.
    pub stores: Vec<StoreRecord>,
    /// Every file, in path order.
    pub files: Vec<FileRecord>,
    /// The archive, when any file is in it.
    pub archive: Option<ArchiveRecord>,
    /// Totals.
    pub totals: Totals,
}

/// The completion marker's contents.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Completion {
    /// BLAKE3 of the manifest bytes as stored.
    pub manifest_blake3: String,
    /// When the backup completed, milliseconds since the Unix epoch.
    pub completed_at_ms: u64,
}

/// The key of a backup's manifest.
pub fn manifest_key(id: &str) -> String {
    format!("backups/{id}/manifest.json")
}

/// The key of a backup's completion marker.
pub fn marker_key(id: &str) -> String {
    format!("backups/{id}/COMPLETE")
}

/// The key of a content-addressed object.
pub fn object_key(hash: &str, compression: Compression) -> String {
    format!("objects/{}/{hash}.{}", &hash[..2], compression.extension())
}

/// Checks that `id` is a backup id this crate could have made (no separators, no dots).
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 80 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Manifest {
    /// Serializes the manifest (pretty JSON: operators read these).
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest always serializes")
    }

    /// Parses and checks manifest bytes against the completion marker's hash.
    pub fn from_bytes(id: &str, bytes: &[u8], completion: &Completion) -> Result<Self, IntegrityError> {
        let bad = |message: String| IntegrityError::Manifest { backup: id.to_owned(), message };
        let found = blake3::hash(bytes).to_hex().to_string();
        if found != completion.manifest_blake3 {
            return Err(bad(format!(
                "BLAKE3 {found} does not match the completion marker's {}",
                completion.manifest_blake3
            )));
        }
        #[derive(Deserialize)]
        struct Head {
            format: u32,
        }
        let head: Head = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if head.format > MANIFEST_FORMAT {
            return Err(IntegrityError::NewerFormat {
                backup: id.to_owned(),
                found: head.format,
                supported: MANIFEST_FORMAT,
            });
        }
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if manifest.id != id {
            return Err(bad(format!("names backup `{}`", manifest.id)));
        }
        for f in &manifest.files {
            check_path(&f.path).map_err(|reason| bad(format!("file `{}`: {reason}", f.path)))?;
            if let Location::Object { key, .. } = &f.location
                && (!key.starts_with("objects/") || check_path(key).is_err())
            {
                return Err(bad(format!("file `{}` points outside objects/: `{key}`", f.path)));
            }
        }
        if let Some(a) = &manifest.archive
            && (!a.key.starts_with(&format!("backups/{id}/")) || check_path(&a.key).is_err())
        {
            return Err(bad(format!("the archive points outside the backup: `{}`", a.key)));
        }
        let t = &manifest.totals;
        let (files, raw, stored) = Totals::derived(&manifest.files, manifest.archive.as_ref());
        if (t.files, t.raw_bytes, t.stored_bytes) != (files, raw, stored) || t.reused_files > files {
            return Err(bad(format!(
                "totals (files {}, raw bytes {}, stored bytes {}, reused {}) disagree with the file list (files \
                 {files}, raw bytes {raw}, stored bytes {stored})",
                t.files, t.raw_bytes, t.stored_bytes, t.reused_files
            )));
        }
        Ok(manifest)
    }

    /// The files stored in the archive.
    pub fn archived(&self) -> impl Iterator<Item = &FileRecord> {
        self.files.iter().filter(|f| f.location == Location::Archive)
    }

    /// Keys of every object this backup references (objects, archive, manifest, marker).
    pub fn referenced_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| match &f.location {
                Location::Object { key, .. } => Some(key.clone()),
                Location::Archive => None,
            })
            .collect();
        keys.extend(self.archive.iter().map(|a| a.key.clone()));
        keys
    }
}

/// Checks a stored path: relative, `/`-separated, no empty, `.` or `..` components.
pub fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > 4096 {
        return Err("empty or over-long path".into());
    }
    if path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err("absolute path or forbidden character".into());
    }
    for part in path.split('/') {
        match part {
            "" | "." => return Err("empty or `.` path component".into()),
            ".." => return Err("`..` path component".into()),
            _ => {}
        }
    }
    Ok(())
}
