//! Uploading finalized history in order: one unit of blocks and one of vertices per round,
//! each starting exactly at the archive's watermark (so a crash or an outage resumes without a
//! gap or a duplicate), from the running node's background uploader (`crate::uploader`) or from
//! `nodestore archive upload` on a stopped one.

use chain_store::{ChainModel, ChainStore, SECTION_SIZE};
use dag_store::DagStore;
use storage_api::KvReader;
use storage_history::{BitSection, ChainItem, DagItem, HistoryTier, Kind, Mark, Uploaded};

use super::{History, Verified};
use crate::error::StorageError;

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

/// Uploads the next final unit of blocks and of vertices, if any. One round at a time in this
/// process (an `archive upload` beside the background uploader waits for it); other
/// processes are kept out by the archive's conditional watermark writes.
pub(crate) fn upload_round<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
    dag: &DagStore<S>,
) -> Result<UploadRound, StorageError> {
    let _one = history.uploading.lock().unwrap_or_else(|p| p.into_inner());
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

/// A watermark no upload writes: empty, or ending below where it starts (a hostile or damaged
/// archive; refused before any arithmetic on it).
fn check_mark(history: &History, kind: Kind, mark: &Mark) -> Result<(), StorageError> {
    if mark.next == 0 || mark.next <= mark.first {
        return Err(mismatch(
            history,
            kind,
            format!("its watermark is malformed (first {}, next {})", mark.first, mark.next),
        ));
    }
    Ok(())
}

/// Checks that the archive continues this node's chain and returns the next height to upload
/// (`None` before the chain has a first block), recording what of the archive is shown to be
/// this node's ([`History::verified`]).
fn chain_next<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
) -> Result<Option<u64>, StorageError> {
    let ptrs = chain.pointers();
    let Some(first) = ptrs.first else { return Ok(None) };
    let next = match history.mark(Kind::Chain)? {
        None => {
            history.set_verified(Kind::Chain, None);
            first.number.max(ptrs.pruned_below)
        }
        Some(mark) => {
            check_mark(history, Kind::Chain, &mark)?;
            let verified = verify_chain_mark(history, chain, &mark);
            history.set_verified(Kind::Chain, verified.as_ref().ok().copied().flatten());
            verified?;
            mark.next
        }
    };
    Ok(Some(next))
}

/// What of the archive's chain `mark` is shown to be this node's: the archive's block at the
/// highest height both hold (`min(head, next - 1)`) must be this node's canonical block there;
/// then `first..=` that height is verified. `None` when they share no height (a new or lagging
/// node below the archive's start, or an archive ending below this node's first block).
fn verify_chain_mark<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
    mark: &Mark,
) -> Result<Option<Verified>, StorageError> {
    let ptrs = chain.pointers();
    let (Some(first), Some(head)) = (ptrs.first, ptrs.head) else { return Ok(None) };
    let last = mark.next - 1;
    let at = last.min(head.number);
    if at < mark.first.max(first.number) {
        return Ok(None);
    }
    let Some(ours) = chain.canonical_hash(at)? else { return Ok(None) };
    let theirs = if at == last {
        mark.last_hash.clone()
    } else {
        let record = history.read(history.archive.chain_record(at))?.ok_or_else(|| {
            mismatch(history, Kind::Chain, format!("it holds no block {at} although its watermark covers it"))
        })?;
        chain_store::Unarchived::<M>::decode(at, &record, None)?.block_ref().hash.as_ref().to_vec()
    };
    if theirs.as_slice() != ours.as_ref() {
        return Err(mismatch(history, Kind::Chain, format!("its block {at} is not this node's canonical block {at}")));
    }
    Ok(Some(Verified { first: mark.first, next: at + 1 }))
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
/// to upload, recording what of the archive is shown to be this node's.
fn dag_next<S: KvReader>(history: &History, dag: &DagStore<S>) -> Result<u64, StorageError> {
    Ok(match history.mark(Kind::Dag)? {
        None => {
            history.set_verified(Kind::Dag, None);
            0
        }
        Some(mark) => {
            check_mark(history, Kind::Dag, &mark)?;
            let verified = verify_dag_mark(history, dag, &mark);
            history.set_verified(Kind::Dag, verified.as_ref().ok().copied().flatten());
            verified?;
            mark.next
        }
    })
}

/// What of the archive's finalized DAG `mark` is shown to be this node's: the archive's vertex
/// at the highest sequence both finalized must be this node's (see [`verify_chain_mark`]).
fn verify_dag_mark<S: KvReader>(
    history: &History,
    dag: &DagStore<S>,
    mark: &Mark,
) -> Result<Option<Verified>, StorageError> {
    let Some(local_last) = dag.next_sequence()?.checked_sub(1) else { return Ok(None) };
    let last = mark.next - 1;
    let at = last.min(local_last);
    if at < mark.first {
        return Ok(None);
    }
    let Some(ours) = dag.finalized_at(at)? else { return Ok(None) };
    let theirs = if at == last {
        mark.last_hash.clone()
    } else {
        let (hash, _) = history.read(history.archive.vertex(at))?.ok_or_else(|| {
            mismatch(history, Kind::Dag, format!("it holds no vertex {at} although its watermark covers it"))
        })?;
        hash
    };
    if theirs.as_slice() != ours.0.as_slice() {
        return Err(mismatch(history, Kind::Dag, format!("its vertex {at} is not this node's finalized vertex {at}")));
    }
    Ok(Some(Verified { first: mark.first, next: at + 1 }))
}

/// Reads the archive's watermarks and checks them against this node if that was not done yet
/// (before a prune: the writer thread only reads what this found). Network calls: never on
/// the writer thread. A failure is logged and leaves nothing verified, so nothing is pruned.
pub(crate) fn check_archive<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
    dag: &DagStore<S>,
) {
    let local_chain = chain.head().map(|h| h.number);
    if stale(history, Kind::Chain, local_chain)
        && let Err(e) = chain_next(history, chain)
    {
        tracing::warn!(error = %e, "the archive's chain watermark could not be checked; pruning nothing it should hold");
    }
    let local_dag = dag.next_sequence().ok().and_then(|n| n.checked_sub(1));
    if stale(history, Kind::Dag, local_dag)
        && let Err(e) = dag_next(history, dag)
    {
        tracing::warn!(error = %e, "the archive's DAG watermark could not be checked; pruning nothing it should hold");
    }
}

/// Whether what is verified of `kind` could be more: never checked, or the node (at `local`)
/// and the archive's known watermark now share heights beyond it.
fn stale(history: &History, kind: Kind, local: Option<u64>) -> bool {
    let Some(v) = history.verified(kind) else { return true };
    let known = history.known_mark(kind);
    let shared_end = match (known, local) {
        (Some(Some(m)), Some(l)) => m.next.min(l.saturating_add(1)),
        _ => return false,
    };
    v.next < shared_end
}

/// What of the archive's chain is shown to be this node's, checking it now if that was not
/// done yet (a reader that uploads nothing).
pub(crate) fn verified_chain<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
) -> Result<Option<Verified>, StorageError> {
    if history.verified(Kind::Chain).is_none() {
        history.refresh(Kind::Chain)?;
        chain_next(history, chain)?;
    }
    Ok(history.verified(Kind::Chain))
}

/// Below which height chain data may be pruned with this archive: what it verifiably holds of
/// this node's chain, and only if that starts at or below the lowest height this node still
/// holds (a prune deletes everything below its boundary). Reads nothing: see [`check_archive`].
pub(crate) fn chain_prune_limit<H>(history: &History, ptrs: &chain_store::Pointers<H>) -> u64 {
    let Some(v) = history.verified(Kind::Chain) else { return 0 };
    let local_start = ptrs.first.as_ref().map_or(0, |f| f.number).max(ptrs.pruned_below);
    if v.first <= local_start { v.next } else { 0 }
}

/// The finalization sequences whose vertices may be pruned with this archive (what it
/// verifiably holds of this node's DAG). Reads nothing: see [`check_archive`].
pub(crate) fn dag_prune_range(history: &History) -> std::ops::Range<u64> {
    history.verified(Kind::Dag).map_or(0..0, |v| v.first..v.next)
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
