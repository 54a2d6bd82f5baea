//! The history tier, wired in: finalized history uploaded in order to the configured archive
//! (`upload`), pruning held at the archive's verified watermark, reads of pruned heights
//! answered from it (`read`), and the whole archive checked against the chain's own rules
//! (`verify`).
//!
//! The archive (storage-history) knows no chain; the domain crates encode and decode what it
//! stores (`chain_store::ArchivedBlock` / `Unarchived`, `dag_store::unarchive`). This module
//! only composes them.

mod read;
mod upload;
mod verify;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use storage_cache::{CacheConfig, TypedCache};
use storage_history::{Archive, HistoryConfig, HistoryError, HistoryTier, Kind, Mark};
use storage_metrics::{Observed, Sample};

pub(crate) use read::Through;
pub use upload::UploadRound;
pub(crate) use upload::{chain_prune_limit, check_archive, dag_prune_range, follow, upload_round};
pub use verify::ArchiveReport;
pub(crate) use verify::verify_archive;

use crate::config::ConfigError;
use crate::error::StorageError;

/// A watermark as this node knows it: `None` until read from the archive (pruning waits until
/// then), `Some(None)` for an empty archive.
type Known = Option<Option<Mark>>;

/// The part of an archive's history shown to be this node's own: heights (sequences)
/// `first..next`, of which the archive's item at `next - 1` was compared with this node's
/// canonical block (finalized vertex) there. Only this much is pruned locally or read through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Verified {
    pub(crate) first: u64,
    pub(crate) next: u64,
}

impl Verified {
    /// Whether every item `from..=to` is verified.
    pub(crate) fn covers(&self, from: u64, to: u64) -> bool {
        self.first <= from && to < self.next
    }
}

/// The configured archive and what the node knows of it.
pub(crate) struct History {
    pub(crate) archive: Archive,
    pub(crate) config: HistoryConfig,
    marks: Mutex<[Known; 2]>,
    /// Per history, what the archive was shown to hold of this node's own chain (DAG): only
    /// so much may be pruned or read through. An archive of another chain is never trusted.
    verified: Mutex<[Option<Verified>; 2]>,
    /// Held by an upload round: one at a time in this process (the archive's conditional
    /// watermark writes keep other processes out).
    pub(crate) uploading: Mutex<()>,
    uploaded_bytes: AtomicU64,
    upload_failures: AtomicU64,
    reads: [AtomicU64; 3],
    last_error: Mutex<Option<String>>,
    /// Archived block records by height (immutable below the watermark), each checked
    /// before it was cached.
    records: TypedCache<u64, Arc<Vec<u8>>>,
}

impl std::fmt::Debug for History {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("History").field("archive", &self.archive).finish()
    }
}

/// Read results, as labelled in the metrics.
#[derive(Clone, Copy)]
enum ReadResult {
    Ok = 0,
    Unavailable = 1,
    Error = 2,
}

impl History {
    /// Opens the archive `config` names; `None` without one. Opening does not reach the
    /// archive (a node starts while its archive is down).
    pub(crate) fn open(config: &HistoryConfig, cache: &CacheConfig) -> Result<Option<Self>, StorageError> {
        let Some(archive) = Archive::open(config)? else { return Ok(None) };
        let records = TypedCache::recent("archive", cache).map_err(|e| {
            StorageError::Config(ConfigError::Invalid { key: format!("caches.archive.{}", e.field), reason: e.problem })
        })?;
        Ok(Some(History {
            archive,
            config: config.clone(),
            marks: Mutex::new([None, None]),
            verified: Mutex::new([None, None]),
            uploading: Mutex::new(()),
            uploaded_bytes: AtomicU64::new(0),
            upload_failures: AtomicU64::new(0),
            reads: Default::default(),
            last_error: Mutex::new(None),
            records,
        }))
    }

    /// The archived record of block `number`, `check`ed when it is fetched (cached only once
    /// it passed: whatever the cache holds was checked).
    pub(crate) fn chain_record(
        &self,
        number: u64,
        check: impl FnOnce(&[u8]) -> Result<(), StorageError>,
    ) -> Result<Option<Arc<Vec<u8>>>, StorageError> {
        if let Some(r) = self.records.get(&number) {
            return Ok(Some(r));
        }
        let Some(record) = self.read(self.archive.chain_record(number))? else { return Ok(None) };
        check(&record)?;
        let record = Arc::new(record);
        self.records.insert(number, record.clone());
        Ok(Some(record))
    }

    fn marks(&self) -> std::sync::MutexGuard<'_, [Known; 2]> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The watermark of `kind`, read from the archive (and remembered).
    pub(crate) fn refresh(&self, kind: Kind) -> Result<Option<Mark>, StorageError> {
        let mark = self.archive.mark(kind)?;
        self.marks()[kind as usize] = Some(mark.clone());
        Ok(mark)
    }

    /// The watermark of `kind` as last known, without reading the archive (`None`: never read).
    pub(crate) fn known_mark(&self, kind: Kind) -> Known {
        self.marks()[kind as usize].clone()
    }

    /// The watermark of `kind` as last known, reading it if never read.
    pub(crate) fn mark(&self, kind: Kind) -> Result<Option<Mark>, StorageError> {
        let known = self.marks()[kind as usize].clone();
        match known {
            Some(known) => Ok(known),
            None => self.refresh(kind),
        }
    }

    /// Records the watermark an upload of this node's own history left (the upload continued
    /// a verified archive, or started an empty one).
    pub(crate) fn set_mark(&self, kind: Kind, mark: Mark) {
        self.set_verified(kind, Some(Verified { first: mark.first, next: mark.next }));
        self.marks()[kind as usize] = Some(Some(mark));
    }

    /// Records what of the archive was shown to be this node's history (`None`: nothing).
    pub(crate) fn set_verified(&self, kind: Kind, verified: Option<Verified>) {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())[kind as usize] = verified;
    }

    /// What of the archive is shown to be this node's history; `None` until the archive has
    /// been checked against this node (then nothing is pruned or read through), or when
    /// nothing of it could be.
    pub(crate) fn verified(&self, kind: Kind) -> Option<Verified> {
        self.verified.lock().unwrap_or_else(|p| p.into_inner())[kind as usize]
    }

    /// The archived records of blocks `numbers` (cached), the missing ones fetched together
    /// and each `check`ed (height, record) before it is cached.
    pub(crate) fn chain_records(
        &self,
        numbers: &[u64],
        check: impl Fn(u64, &[u8]) -> Result<(), StorageError>,
    ) -> Result<Vec<Option<Arc<Vec<u8>>>>, StorageError> {
        let mut out: Vec<Option<Arc<Vec<u8>>>> = numbers.iter().map(|n| self.records.get(n)).collect();
        let missing: Vec<u64> = numbers.iter().zip(&out).filter(|(_, r)| r.is_none()).map(|(n, _)| *n).collect();
        if missing.is_empty() {
            return Ok(out);
        }
        let mut fetched = self.read(self.archive.chain_records(&missing))?.into_iter();
        for (n, slot) in numbers.iter().zip(out.iter_mut()) {
            if slot.is_none()
                && let Some(Some(record)) = fetched.next()
            {
                check(*n, &record)?;
                let record = Arc::new(record);
                self.records.insert(*n, record.clone());
                *slot = Some(record);
            }
        }
        Ok(out)
    }

    /// Counts a failed upload round.
    pub(crate) fn upload_failed(&self, e: &StorageError) {
        self.upload_failures.fetch_add(1, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    pub(crate) fn uploaded(&self, bytes: u64) {
        self.uploaded_bytes.fetch_add(bytes, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// The last upload failure, until an upload succeeds.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Counts a read answered from the archive and maps its error.
    pub(crate) fn read<T>(&self, r: Result<T, HistoryError>) -> Result<T, StorageError> {
        let result = match &r {
            Ok(_) => ReadResult::Ok,
            Err(e) if e.is_unavailable() => ReadResult::Unavailable,
            Err(_) => ReadResult::Error,
        };
        self.reads[result as usize].fetch_add(1, Ordering::Relaxed);
        Ok(r?)
    }

    /// The archive's figures, with the local final heights (`None` if there is none).
    pub(crate) fn samples(&self, chain_final: Option<u64>, dag_final: Option<u64>, out: &mut Vec<Sample>) {
        for (kind, last_final) in [(Kind::Chain, chain_final), (Kind::Dag, dag_final)] {
            let known = self.marks()[kind as usize].clone();
            if let Some(Some(m)) = known {
                out.push(Sample::new(Observed::ArchiveWatermark, m.next as f64).label("history", kind.as_str()));
            }
            if let (Some(v), Some(last)) = (self.verified(kind), last_final) {
                let lag = (last + 1).saturating_sub(v.next);
                out.push(Sample::new(Observed::ArchiveLag, lag as f64).label("history", kind.as_str()));
            }
        }
        let c = self.records.stats();
        out.push(Sample::new(Observed::CacheRequests, c.hits as f64).label("cache", "archive").label("result", "hit"));
        out.push(
            Sample::new(Observed::CacheRequests, c.misses as f64).label("cache", "archive").label("result", "miss"),
        );
        out.push(Sample::new(Observed::CacheEntries, c.entries as f64).label("cache", "archive"));
        out.push(Sample::new(Observed::ArchiveUploadedBytes, self.uploaded_bytes.load(Ordering::Relaxed) as f64));
        out.push(Sample::new(Observed::ArchiveUploadFailures, self.upload_failures.load(Ordering::Relaxed) as f64));
        for (label, i) in [("ok", 0), ("unavailable", 1), ("error", 2)] {
            let n = self.reads[i].load(Ordering::Relaxed) as f64;
            out.push(Sample::new(Observed::ArchiveReads, n).label("result", label));
        }
    }
}

/// Where the archive stands against this node (for `nodestore archive status` and `/health`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveStatus {
    /// The archive, as shown to operators.
    pub archive: String,
    /// The chain watermark: heights `first..next` are archived (`None`: nothing yet).
    pub chain: Option<Mark>,
    /// The DAG watermark: sequences `first..next` are archived.
    pub dag: Option<Mark>,
    /// The local finalized height.
    pub chain_finalized: Option<u64>,
    /// The local last finalized sequence.
    pub dag_finalized: Option<u64>,
    /// Local chain data below this height is pruned.
    pub chain_pruned_below: u64,
    /// Local DAG vertices below this height are pruned.
    pub dag_pruned_below: u64,
    /// Bytes this process uploaded.
    pub uploaded_bytes: u64,
    /// Upload rounds that failed in this process.
    pub upload_failures: u64,
    /// The last upload failure, if the last round failed.
    pub last_error: Option<String>,
}

impl ArchiveStatus {
    /// Blocks final locally and not archived yet.
    pub fn chain_lag(&self) -> Option<u64> {
        let next = self.chain.as_ref().map_or(self.chain_pruned_below, |m| m.next);
        self.chain_finalized.map(|f| (f + 1).saturating_sub(next))
    }

    /// Vertices final locally and not archived yet.
    pub fn dag_lag(&self) -> Option<u64> {
        let next = self.dag.as_ref().map_or(0, |m| m.next);
        self.dag_finalized.map(|f| (f + 1).saturating_sub(next))
    }
}

impl History {
    /// The archive against the local stores (reads both watermarks from the archive).
    pub(crate) fn status<S: storage_api::KvReader, M: chain_store::ChainModel>(
        &self,
        chain: &chain_store::ChainStore<S, M>,
        dag: &dag_store::DagStore<S>,
    ) -> Result<ArchiveStatus, StorageError> {
        let ptrs = chain.pointers();
        Ok(ArchiveStatus {
            archive: self.archive.describe(),
            chain: self.refresh(Kind::Chain)?,
            dag: self.refresh(Kind::Dag)?,
            chain_finalized: ptrs.finalized.map(|f| f.number),
            dag_finalized: dag.next_sequence()?.checked_sub(1),
            chain_pruned_below: ptrs.pruned_below,
            dag_pruned_below: dag.pruned_below()?,
            uploaded_bytes: self.uploaded_bytes.load(Ordering::Relaxed),
            upload_failures: self.upload_failures.load(Ordering::Relaxed),
            last_error: self.last_error(),
        })
    }
}
