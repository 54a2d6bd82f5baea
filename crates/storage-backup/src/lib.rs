//! Backups for node-storage.
//!
//! * **Physical** backups package a checkpoint of the engine's files. Immutable files (RocksDB
//!   SSTs and blob files) and large files are stored once as content-addressed objects
//!   (`objects/<blake3>`) shared by every backup that contains them; the rest go into the
//!   backup's compressed tar archive. An unchanged database backs up by reference.
//! * **Logical** backups stream every table's entries from one consistent view into the
//!   archive; they restore into any engine.
//!
//! Every backup has a versioned JSON [`Manifest`] listing each file's size and BLAKE3, and
//! counts only once its completion marker (holding the manifest's BLAKE3) is written — last.
//! Restores verify every byte against the manifest before anything is used, extract into a
//! fresh staging directory through one validating archive reader, and swap the result in
//! atomically. The crate knows no engine: the facade supplies checkpoints, consistent readers
//! and stores, and checks restored stores.

mod archive;
mod catalog;
mod config;
mod create;
mod destination;
mod error;
mod logical;
mod manifest;
mod restore;
mod retention;
#[cfg(feature = "testkit")]
pub mod testkit;

use std::time::{SystemTime, UNIX_EPOCH};

pub use catalog::{BackupInfo, Selector};
pub use config::{BackupConfig, BackupKind, Compression, Credentials, RetentionPolicy};
pub use destination::{Destination, Listed, ObjectVersion};
pub use error::{BackupError, DestinationError, IntegrityError};
pub use logical::{
    CHUNK_BYTES, ChunkLoader, LogicalWriter, TableDigest, load_chunk_in_batches, load_chunk_ingested, verify_store,
};
pub use manifest::check_path;
pub use manifest::{
    ArchiveRecord, Completion, FileRecord, Location, MANIFEST_FORMAT, MAX_MANIFEST_BYTES, MAX_MARKER_BYTES, Manifest,
    StoreRecord, TableRecord, Totals, manifest_key, marker_key, object_key, valid_id,
};
pub use restore::{RestoredFrom, swap_in};
pub use retention::{PruneReport, select_kept};

/// Progress of a long operation, for progress bars. Called from worker threads.
pub trait Progress: Send + Sync {
    /// A new phase begins, expected to process `total` bytes.
    fn phase(&self, _name: &str, _total: u64) {}
    /// `bytes` more were processed.
    fn advance(&self, _bytes: u64) {}
}

/// No progress reporting.
impl Progress for () {}

/// Backups at one destination: create, list, verify, restore, prune.
#[derive(Debug, Clone)]
pub struct Backups {
    dest: Destination,
    config: BackupConfig,
}

impl Backups {
    /// Opens the destination `config` names.
    pub fn open(config: &BackupConfig) -> Result<Self, BackupError> {
        if let Err((key, why)) = config.validate() {
            return Err(BackupError::Invalid(format!("backup.{key}: {why}")));
        }
        Ok(Backups { dest: Destination::open(config)?, config: config.clone() })
    }

    /// The destination.
    pub fn destination(&self) -> &Destination {
        &self.dest
    }

    /// The configuration.
    pub fn config(&self) -> &BackupConfig {
        &self.config
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// RFC 3339 (seconds) of a millisecond timestamp.
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + std::time::Duration::from_millis(ms)).to_string()
}

/// Parses an operator-given time (`2026-11-22T10:00:00Z`, `2026-11-22 10:00:00`, UTC) into
/// milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<u64, BackupError> {
    let t = humantime::parse_rfc3339_weak(text.trim())
        .map_err(|e| BackupError::Invalid(format!("`{text}` is not a time like 2026-11-22T10:00:00Z: {e}")))?;
    Ok(t.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0))
}

/// Runs `tasks` at most `limit` at a time. After the first failure no further task starts,
/// but those already started run to completion — their worker threads write files the caller
/// removes afterwards, so none may outlive the call — then the first error is returned.
/// Tasks are boxed: unboxed closure-made futures trip rustc's `Send` analysis when the
/// caller's future is spawned.
async fn run_limited<T>(
    tasks: Vec<futures::future::BoxFuture<'_, Result<T, BackupError>>>,
    limit: usize,
) -> Result<Vec<T>, BackupError> {
    use futures::{FutureExt, StreamExt};
    use std::sync::atomic::{AtomicBool, Ordering};
    let failed = std::sync::Arc::new(AtomicBool::new(false));
    let mut guarded = Vec::with_capacity(tasks.len());
    for task in tasks {
        let failed = failed.clone();
        guarded.push(
            async move {
                if failed.load(Ordering::SeqCst) {
                    return None; // never polled: nothing started
                }
                let outcome = task.await;
                if outcome.is_err() {
                    failed.store(true, Ordering::SeqCst);
                }
                Some(outcome)
            }
            .boxed(),
        );
    }
    let outcomes: Vec<Option<Result<T, BackupError>>> =
        futures::stream::iter(guarded).buffer_unordered(limit).collect().await;
    outcomes.into_iter().flatten().collect()
}

/// A new backup id: UTC time, kind and a random suffix (sorts by creation time).
fn new_id(kind: BackupKind, ms: u64) -> String {
    let stamp: String = rfc3339(ms).chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    format!("{stamp}-{kind}-{:04x}", rand::random::<u16>())
}
