//! Uploading finalized history in order: one unit of blocks and one of vertices per round,
//! each starting exactly at the archive's watermark (so a crash or an outage resumes without a
//! gap or a duplicate), from a background thread of the running node or from
//! `nodestore archive upload` on a stopped one.

use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use chain_store::{ChainModel, ChainStore, SECTION_SIZE};
use dag_store::DagStore;
use storage_api::KvReader;
use storage_history::{BitSection, ChainItem, DagItem, HistoryTier, Kind, Mark, Uploaded};

use super::History;
use crate::backend::Backend;
use crate::error::StorageError;
use crate::shared::Shared;

/// What one round uploaded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadRound {
    /// The chain unit, if one was final and uploaded.
    pub chain: Option<(u64, u64)>,
    /// The DAG unit (sequences), if one was uploaded.
    pub dag: Option<(u64, u64)>,
    /// Bytes sent.
    pub bytes: u64,
}

impl UploadRound {
    /// Whether anything was uploaded (then another round may find more right away).
    pub fn progressed(&self) -> bool {
        self.chain.is_some() || self.dag.is_some()
    }
}

/// Uploads the next final unit of blocks and of vertices, if any.
pub(crate) fn upload_round<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
    dag: &DagStore<S>,
) -> Result<UploadRound, StorageError> {
    let mut round = UploadRound::default();
    if let Some(up) = chain_unit(history, chain)? {
        round.chain = Some((up.first, up.mark.next - 1));
        round.bytes += up.bytes;
    }
    if let Some(up) = dag_unit(history, dag)? {
        round.dag = Some((up.first, up.mark.next - 1));
        round.bytes += up.bytes;
    }
    history.uploaded(round.bytes);
    Ok(round)
}

struct Done {
    first: u64,
    mark: Mark,
    bytes: u64,
}

impl Done {
    fn of(first: u64, up: Uploaded) -> Self {
        Done { first, mark: up.mark, bytes: up.bytes }
    }
}

fn mismatch(history: &History, kind: Kind, reason: String) -> StorageError {
    StorageError::ArchiveMismatch { archive: history.archive.describe(), history: kind.as_str(), reason }
}

/// Checks that the archive continues this node's chain (then trusting its watermark for
/// pruning) and returns the next height to upload; `None` before the chain has a first block.
fn chain_next<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
) -> Result<Option<u64>, StorageError> {
    let ptrs = chain.pointers();
    let Some(first) = ptrs.first else { return Ok(None) };
    let next = match history.mark(Kind::Chain)? {
        None => first.number.max(ptrs.pruned_below),
        Some(mark) => {
            // The archive must end where this node's chain continues.
            let last = mark.next - 1;
            if last >= first.number
                && let Some(hash) = chain.canonical_hash(last)?
                && hash.as_ref() != mark.last_hash.as_slice()
            {
                return Err(mismatch(
                    history,
                    Kind::Chain,
                    format!("its block {last} is not this node's canonical block {last}"),
                ));
            }
            history.confirm(Kind::Chain, mark.next);
            mark.next
        }
    };
    Ok(Some(next))
}

fn chain_unit<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
) -> Result<Option<Done>, StorageError> {
    let Some(next) = chain_next(history, chain)? else { return Ok(None) };
    let ptrs = chain.pointers();
    let (Some(first), Some(finalized)) = (ptrs.first, ptrs.finalized) else { return Ok(None) };
    if next < ptrs.pruned_below || next < first.number {
        return Err(mismatch(
            history,
            Kind::Chain,
            format!(
                "the archive ends before height {next}, but this node holds blocks only from {} (pruned below {}); \
                 the blocks in between cannot be uploaded from here",
                first.number.max(ptrs.pruned_below),
                ptrs.pruned_below
            ),
        ));
    }
    let Some(unit) = history.archive.next_unit(Kind::Chain, next, finalized.number) else { return Ok(None) };
    let mut items = Vec::with_capacity((unit.end() - unit.start() + 1) as usize);
    let mut sections = Vec::new();
    for n in unit.clone() {
        let b = chain.archive_block(n)?;
        items.push(ChainItem {
            number: n,
            hash: b.hash.as_ref().to_vec(),
            record: b.record,
            bloom: b.bloom.0.to_vec(),
            tx_hashes: b.tx_hashes.iter().map(|h| h.as_ref().to_vec()).collect(),
        });
        if (n + 1).is_multiple_of(SECTION_SIZE)
            && let Some(vectors) = chain.section_vectors(n / SECTION_SIZE)?
        {
            sections.push(BitSection {
                section: n / SECTION_SIZE,
                vectors: vectors.iter().map(|v| v.0.to_vec()).collect(),
            });
        }
    }
    let up = history.archive.upload_chain(&items, &sections)?;
    history.set_mark(Kind::Chain, up.mark.clone());
    tracing::info!(from = unit.start(), to = unit.end(), bytes = up.bytes, "archived blocks");
    Ok(Some(Done::of(*unit.start(), up)))
}

/// Checks that the archive continues this node's finalized DAG and returns the next sequence
/// to upload.
fn dag_next<S: KvReader>(history: &History, dag: &DagStore<S>) -> Result<u64, StorageError> {
    Ok(match history.mark(Kind::Dag)? {
        None => 0,
        Some(mark) => {
            let last = mark.next - 1;
            if let Some(hash) = dag.finalized_at(last)?
                && hash.0.as_slice() != mark.last_hash.as_slice()
            {
                return Err(mismatch(
                    history,
                    Kind::Dag,
                    format!("its vertex {last} is not this node's finalized vertex {last}"),
                ));
            }
            history.confirm(Kind::Dag, mark.next);
            mark.next
        }
    })
}

/// Below which height local chain data is archived (see [`History::archived_below`]),
/// checking the archive now if the uploader has not yet (a prune right after opening); an
/// archive that cannot be checked archives nothing, so nothing is pruned.
pub(crate) fn chain_archived_below<S: KvReader, M: ChainModel>(history: &History, chain: &ChainStore<S, M>) -> u64 {
    if history.archived_below(Kind::Chain).is_none()
        && let Err(e) = chain_next(history, chain)
    {
        tracing::warn!(error = %e, "the archive's chain watermark could not be checked; pruning nothing");
    }
    history.archived_below(Kind::Chain).unwrap_or(0)
}

/// Below which sequence finalized vertices are archived; as [`chain_archived_below`].
pub(crate) fn dag_archived_below<S: KvReader>(history: &History, dag: &DagStore<S>) -> u64 {
    if history.archived_below(Kind::Dag).is_none()
        && let Err(e) = dag_next(history, dag)
    {
        tracing::warn!(error = %e, "the archive's DAG watermark could not be checked; pruning nothing");
    }
    history.archived_below(Kind::Dag).unwrap_or(0)
}

/// Re-reads both watermarks and checks them against this node, uploading nothing (a node
/// that reads a shared archive another node uploads to).
pub(crate) fn follow<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
    dag: &DagStore<S>,
) -> Result<(), StorageError> {
    history.refresh(Kind::Chain)?;
    history.refresh(Kind::Dag)?;
    chain_next(history, chain)?;
    dag_next(history, dag)?;
    Ok(())
}

fn dag_unit<S: KvReader>(history: &History, dag: &DagStore<S>) -> Result<Option<Done>, StorageError> {
    let Some(last_final) = dag.next_sequence()?.checked_sub(1) else { return Ok(None) };
    let next = dag_next(history, dag)?;
    let Some(unit) = history.archive.next_unit(Kind::Dag, next, last_final) else { return Ok(None) };
    let mut items = Vec::with_capacity((unit.end() - unit.start() + 1) as usize);
    for seq in unit.clone() {
        let (hash, record) = match dag.archive_vertex(seq) {
            Ok(Some(v)) => v,
            Ok(None) => return Ok(None),
            Err(dag_store::DagError::Pruned(_)) => {
                return Err(mismatch(
                    history,
                    Kind::Dag,
                    format!("the archive ends before sequence {seq}, whose vertex this node has pruned already"),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        items.push(DagItem { sequence: seq, hash: hash.0.to_vec(), record });
    }
    let up = history.archive.upload_dag(&items)?;
    history.set_mark(Kind::Dag, up.mark.clone());
    tracing::info!(from = unit.start(), to = unit.end(), bytes = up.bytes, "archived vertices");
    Ok(Some(Done::of(*unit.start(), up)))
}

/// The running node's uploader: rounds back to back while there is work, then every
/// `upload_interval_ms`; after a failure it backs off exponentially up to `max_backoff_ms`.
/// A node that does not upload (`upload = false`) still follows the watermarks, which bound
/// its pruning.
pub(crate) struct Uploader {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Uploader {
    pub(crate) fn start<B: Backend, M: ChainModel>(shared: Weak<Shared<B, M>>) -> Result<Self, StorageError> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("node-storage-history".into())
            .spawn(move || run(shared, stopped))
            .map_err(|e| StorageError::Internal(format!("starting the history uploader: {e}")))?;
        Ok(Uploader { stop, thread })
    }

    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn run<B: Backend, M: ChainModel>(shared: Weak<Shared<B, M>>, stopped: mpsc::Receiver<()>) {
    let mut delay = Duration::ZERO;
    let mut failures = 0u32;
    loop {
        match stopped.recv_timeout(delay) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(s) = shared.upgrade() else { return };
        let Some(history) = &s.history else { return };
        let interval = Duration::from_millis(history.config.upload_interval_ms);
        let result = if history.config.upload {
            upload_round(history, &s.stores.chain, &s.stores.dag)
        } else {
            follow(history, &s.stores.chain, &s.stores.dag).map(|_| UploadRound::default())
        };
        delay = match result {
            Ok(round) => {
                failures = 0;
                if round.progressed() { Duration::ZERO } else { interval }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                history.upload_failed(&e);
                tracing::warn!(error = %e, failures, "history upload failed; retrying");
                let max = Duration::from_millis(history.config.max_backoff_ms);
                interval.saturating_mul(1 << failures.min(16)).min(max)
            }
        };
    }
}
