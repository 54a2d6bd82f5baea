//! Bulk import of finalized DAG history through the backend's ingest path ([`KvIngest`]).
//!
//! Vertices that are final by construction (another node's finalized history, an archive)
//! arrive in finalization order, each taking the next sequence number; every parent must be
//! finalized already (stored, or earlier in the import). No vertex is stored twice: the
//! import is for history the store does not hold.
//!
//! A *range* of vertices (default 65,536) is one ingest. The finalized sequence is written as
//! the vertices arrive, already in key order; the vertices, their metadata, the height, time
//! and edge indexes go through memory-bounded [`Collector`]s that spill sorted runs to scratch
//! files, and the tip-set changes are written sorted when the range commits.
//!
//! **Crash safety** mirrors chain-store's bulk import: a range's first sequence number is
//! recorded (synced) before its ingest starts and removed in one synced write after every
//! table is ingested. A store that holds the record refuses writes
//! ([`DagError::ImportPending`]) until [`DagStore::roll_back_pending_import`] removes what
//! the range ingested — [`DagStore::bulk_import_finalized`] does that first, so a restarted
//! import resumes at [`DagStore::next_sequence`]. The finalized sequence is ingested first
//! and the vertices second, so every entry a range left behind is found from them.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use storage_api::ingest::{TableRuns, TypedIngest};
use storage_api::{Direction, Durability, KvIngest, KvStore, ReadExt};

use crate::error::DagError;
use crate::model::{Status, Vertex, VertexHash, VertexMeta, VertexRecord};
use crate::schema::{ByHeight, ByTime, Children, DagMeta, Finalized, MetaKey, Tips, VertexMetas, Vertices};
use crate::{DagStore, now_ms};

/// How a DAG bulk import runs.
#[derive(Debug, Clone)]
pub struct DagBulkOptions {
    /// Vertices per committed range (the unit of resumption).
    pub range_vertices: u64,
    /// Memory for the sorted runs of one range, in bytes; past it runs spill to `scratch`.
    pub memory_budget: usize,
    /// Directory for spilled runs (created if missing; emptied of this import's files).
    pub scratch: PathBuf,
}

impl DagBulkOptions {
    /// Defaults (65,536-vertex ranges, 256 MiB) spilling into `scratch`.
    pub fn new(scratch: impl Into<PathBuf>) -> Self {
        DagBulkOptions { range_vertices: 65_536, memory_budget: 256 << 20, scratch: scratch.into() }
    }
}

/// What a DAG bulk import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DagBulkReport {
    /// Vertices imported (committed).
    pub vertices: u64,
    /// Ranges committed.
    pub ranges: u64,
    /// Sorted runs spilled to scratch files.
    pub spilled_runs: u64,
    /// The most bytes the sorted runs of one table held in memory at once.
    pub peak_run_bytes: usize,
    /// Engine files ingested.
    pub files: u64,
}

/// The sorted runs of a range: the hash-keyed and index tables (the sequence is written
/// directly, already in order). Ingested vertices first (see the module docs).
struct Runs {
    vertices: TableRuns<Vertices>,
    metas: TableRuns<VertexMetas>,
    by_height: TableRuns<ByHeight>,
    by_time: TableRuns<ByTime>,
    children: TableRuns<Children>,
}

impl Runs {
    /// Tables collected.
    const TABLES: usize = 5;

    fn new(options: &DagBulkOptions, first: u64) -> Self {
        let budget = options.memory_budget / Self::TABLES;
        let (dir, tag) = (&options.scratch, first.to_string());
        Runs {
            vertices: TableRuns::new(dir, &tag, budget),
            metas: TableRuns::new(dir, &tag, budget),
            by_height: TableRuns::new(dir, &tag, budget),
            by_time: TableRuns::new(dir, &tag, budget),
            children: TableRuns::new(dir, &tag, budget),
        }
    }

    /// (runs spilled, peak bytes) of each table.
    fn figures(&self) -> [(usize, usize); Self::TABLES] {
        [
            (self.vertices.runs(), self.vertices.peak_bytes()),
            (self.metas.runs(), self.metas.peak_bytes()),
            (self.by_height.runs(), self.by_height.peak_bytes()),
            (self.by_time.runs(), self.by_time.peak_bytes()),
            (self.children.runs(), self.children.peak_bytes()),
        ]
    }

    /// Every collected entry into `ingest`, table by table, vertices first.
    fn drain_into<I: storage_api::Ingest>(self, ingest: &mut TypedIngest<I>) -> Result<(), DagError> {
        ingest.drain(self.vertices)?;
        ingest.drain(self.metas)?;
        ingest.drain(self.by_height)?;
        ingest.drain(self.by_time)?;
        ingest.drain(self.children)?;
        Ok(())
    }
}

/// The range under construction.
struct Range<'d, S: KvIngest + 'd> {
    ingest: TypedIngest<S::Ingest<'d>>,
    runs: Runs,
    /// Heights of the range's vertices (parents later in the range are looked up here).
    heights: HashMap<VertexHash, u64, foldhash::fast::RandomState>,
    /// Vertices of the range no later vertex builds on.
    new_tips: BTreeSet<VertexHash>,
    /// Stored tips a vertex of the range builds on.
    old_tips: BTreeSet<VertexHash>,
}

/// A bulk import of finalized vertices in progress; see the module docs.
pub struct DagBulkImport<'d, S: KvIngest + 'd> {
    dag: &'d DagStore<S>,
    options: DagBulkOptions,
    next: u64,
    range: Option<Range<'d, S>>,
    /// An open range whose vertices were dropped by a failure (sequences and why): every call
    /// but [`DagBulkImport::discard`] repeats it, so no later call reports them stored.
    lost: Option<(u64, u64, String)>,
    report: DagBulkReport,
    received_at_ms: u64,
}

impl<S: KvIngest> std::fmt::Debug for DagBulkImport<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DagBulkImport(next sequence {}, {:?})", self.next, self.report)
    }
}

impl<S: KvStore> DagStore<S> {
    /// The first sequence number of a bulk-import range that was interrupted while
    /// committing, if any (writes are refused until it is rolled back).
    pub fn pending_import(&self) -> Option<u64> {
        *self.pending_slot()
    }

    /// Removes what an interrupted bulk import ingested of its last, uncommitted range, if
    /// any, and returns the range's first sequence number. Nothing else is touched.
    pub fn roll_back_pending_import(&self) -> Result<Option<u64>, DagError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let Some(from) = *self.pending_slot() else { return Ok(None) };
        let entries: Vec<(u64, VertexHash)> =
            self.store.iter::<Finalized>(from.., Direction::Forward)?.collect::<Result<_, _>>()?;
        let hashes: Vec<VertexHash> = entries.iter().map(|(_, h)| *h).collect();
        let records = self.store.multi_get::<Vertices>(&hashes)?;
        let in_range: HashMap<VertexHash, &VertexRecord> =
            hashes.iter().zip(&records).filter_map(|(h, r)| Some((*h, r.as_ref()?))).collect();
        // Parents outside the range, with their heights (for their edge keys).
        let outside: BTreeSet<VertexHash> =
            in_range.values().flat_map(|r| r.parents.iter()).filter(|p| !in_range.contains_key(*p)).copied().collect();
        let outside: Vec<VertexHash> = outside.into_iter().collect();
        let outside_heights: HashMap<VertexHash, u64> = outside
            .iter()
            .zip(self.store.multi_get::<VertexMetas>(&outside)?)
            .filter_map(|(h, m)| Some((*h, m?.height)))
            .collect();
        let height_of = |p: &VertexHash| in_range.get(p).map(|r| r.height).or_else(|| outside_heights.get(p).copied());
        let mut batch = self.store.batch();
        for (seq, hash) in &entries {
            batch.delete::<Finalized>(seq)?;
            batch.delete::<VertexMetas>(hash)?;
            batch.delete::<Tips>(hash)?;
            let Some(record) = in_range.get(hash) else { continue };
            batch.delete::<Vertices>(hash)?;
            batch.delete::<ByHeight>(&(record.height, *hash))?;
            batch.delete::<ByTime>(&(record.timestamp_ms, *hash))?;
            for p in &record.parents {
                if let Some(h) = height_of(p) {
                    batch.delete::<Children>(&(h, *p, *hash))?;
                }
            }
        }
        // A parent outside the range that keeps no child is a tip again.
        for p in &outside {
            let Some(h) = outside_heights.get(p) else { continue };
            let mut children = self.store.iter_prefix::<Children, (u64, VertexHash)>(&(*h, *p), Direction::Forward)?;
            let keeps_one = children
                .try_fold(false, |found, e| e.map(|((_, _, child), ())| found || !in_range.contains_key(&child)))?;
            if !keeps_one {
                batch.put::<Tips>(p, &())?;
            }
        }
        batch.delete::<DagMeta>(&(MetaKey::BulkPending as u8))?;
        self.store.write(batch, Durability::Synced)?;
        *self.pending_slot() = None;
        self.reload_tips()?;
        Ok(Some(from))
    }
}

impl<S: KvIngest> DagStore<S> {
    /// Starts a bulk import of finalized vertices at [`DagStore::next_sequence`] (rolling
    /// back an interrupted range first). See the module docs.
    pub fn bulk_import_finalized(&self, options: DagBulkOptions) -> Result<DagBulkImport<'_, S>, DagError> {
        self.roll_back_pending_import()?;
        std::fs::create_dir_all(&options.scratch)
            .map_err(|source| DagError::ScratchDir { path: options.scratch.clone(), source: Arc::new(source) })?;
        let options = DagBulkOptions { range_vertices: options.range_vertices.max(1), ..options };
        Ok(DagBulkImport {
            dag: self,
            next: self.next_sequence()?,
            options,
            range: None,
            lost: None,
            report: DagBulkReport::default(),
            received_at_ms: now_ms(),
        })
    }
}

impl<'d, S: KvIngest> DagBulkImport<'d, S> {
    /// The sequence number the next vertex pushed takes.
    pub fn next_sequence(&self) -> u64 {
        self.next
    }

    /// Checks `vertex` (its hash; it is not stored; every parent is finalized) and adds it to
    /// the current range at the next sequence number, which it returns; commits the range
    /// when it is full. A refused vertex changes nothing.
    pub fn push(&mut self, vertex: &Vertex, signature: &[u8]) -> Result<u64, DagError> {
        self.not_lost()?;
        let actual = vertex.content_hash();
        if actual != vertex.hash {
            return Err(DagError::HashMismatch { claimed: vertex.hash, actual });
        }
        let (height, parent_heights) = self.place(vertex)?;
        if self.range.is_none() {
            self.range = Some(self.open_range()?);
        }
        if let Err(e) = self.add(vertex, signature, height, &parent_heights) {
            // Half added: the open range is dropped (nothing of it was visible).
            self.drop_range(&e);
            return Err(e);
        }
        let seq = self.next;
        self.next += 1;
        if self.range.as_ref().is_some_and(|r| r.heights.len() as u64 >= self.options.range_vertices) {
            self.commit()?;
        }
        Ok(seq)
    }

    /// The height of `vertex` and of each of its parents, if it can be imported: not stored,
    /// every parent finalized.
    fn place(&self, vertex: &Vertex) -> Result<(u64, Vec<u64>), DagError> {
        let in_range = |h: &VertexHash| self.range.as_ref().and_then(|r| r.heights.get(h).copied());
        if in_range(&vertex.hash).is_some() || self.dag.store.get::<VertexMetas>(&vertex.hash)?.is_some() {
            return Err(DagError::AlreadyStored(vertex.hash));
        }
        let outside: Vec<VertexHash> = vertex.parents.iter().filter(|p| in_range(p).is_none()).copied().collect();
        let metas = self.dag.store.multi_get::<VertexMetas>(&outside)?;
        let (mut missing, mut unfinalized) = (Vec::new(), Vec::new());
        let mut stored = HashMap::with_capacity(outside.len());
        for (p, meta) in outside.iter().zip(&metas) {
            match meta {
                None => missing.push(*p),
                Some(m) if m.status == Status::Pruned => {
                    return Err(DagError::ParentPruned { vertex: vertex.hash, parent: *p });
                }
                Some(m) if m.status != Status::Finalized => unfinalized.push(*p),
                Some(m) => {
                    stored.insert(*p, m.height);
                }
            }
        }
        if !missing.is_empty() {
            return Err(DagError::MissingParents { vertex: vertex.hash, missing });
        }
        if !unfinalized.is_empty() {
            return Err(DagError::UnfinalizedParents { vertex: vertex.hash, parents: unfinalized });
        }
        let parents: Vec<u64> =
            vertex.parents.iter().map(|p| in_range(p).or_else(|| stored.get(p).copied()).unwrap_or(0)).collect();
        let height = parents.iter().map(|h| h + 1).max().unwrap_or(0);
        Ok((height, parents))
    }

    /// Records the range as pending (synced), then starts its ingest (the record comes
    /// first: redb's ingest holds the write transaction).
    fn open_range(&self) -> Result<Range<'d, S>, DagError> {
        let dag = self.dag;
        let mut batch = dag.store.batch();
        batch.put::<DagMeta>(&(MetaKey::BulkPending as u8), &self.next)?;
        dag.store.write(batch, Durability::Synced)?;
        *dag.pending_slot() = Some(self.next);
        Ok(Range {
            ingest: TypedIngest::new(dag.store.ingest()?),
            runs: Runs::new(&self.options, self.next),
            heights: HashMap::default(),
            new_tips: BTreeSet::new(),
            old_tips: BTreeSet::new(),
        })
    }

    fn add(&mut self, v: &Vertex, signature: &[u8], height: u64, parent_heights: &[u64]) -> Result<(), DagError> {
        let seq = self.next;
        let range = self.range.as_mut().expect("opened by push");
        range.ingest.put::<Finalized>(&seq, &v.hash)?;
        let record = VertexRecord {
            parents: v.parents.clone(),
            height,
            timestamp_ms: v.timestamp_ms,
            id: v.id.clone(),
            creator: v.creator.clone(),
            payload: v.payload.clone(),
            signature: signature.to_vec(),
        };
        let meta = VertexMeta {
            status: Status::Finalized,
            height,
            finalized_seq: Some(seq),
            received_at_ms: self.received_at_ms,
        };
        let runs = &mut range.runs;
        runs.vertices.insert(&v.hash, &record)?;
        runs.metas.insert(&v.hash, &meta)?;
        runs.by_height.insert(&(height, v.hash), &())?;
        runs.by_time.insert(&(v.timestamp_ms, v.hash), &())?;
        for (p, ph) in v.parents.iter().zip(parent_heights) {
            runs.children.insert(&(*ph, *p, v.hash), &())?;
            if !range.new_tips.remove(p) && self.dag.tip_set().contains(p) {
                range.old_tips.insert(*p);
            }
        }
        range.heights.insert(v.hash, height);
        range.new_tips.insert(v.hash);
        Ok(())
    }

    /// Ingests the open range and removes its pending record: its vertices become visible.
    /// On a failure what was ingested is rolled back and the import is *lost* until
    /// [`DagBulkImport::discard`]: the range's vertices are not stored, and every call but
    /// `discard` says so ([`DagError::RangeLost`]).
    pub fn commit(&mut self) -> Result<(), DagError> {
        self.not_lost()?;
        let Some(Range { ingest, runs, heights, new_tips, old_tips }) = self.range.take() else { return Ok(()) };
        let dag = self.dag;
        // The ingest is consumed (or dropped) before any rollback: redb's holds the write
        // transaction.
        let stats = match self.ingest_range(ingest, runs, &old_tips, &new_tips) {
            Ok(stats) => stats,
            Err(e) => {
                self.drop_range(&e);
                return Err(e);
            }
        };
        *dag.pending_slot() = None;
        {
            let mut tips = dag.tip_set_mut();
            for h in &old_tips {
                tips.remove(h);
            }
            tips.extend(new_tips.iter().copied());
        }
        self.report.files += stats.files;
        self.report.ranges += 1;
        self.report.vertices += heights.len() as u64;
        Ok(())
    }

    /// Feeds the range's sorted runs and tip changes to `ingest`, commits it, and removes the
    /// pending record.
    fn ingest_range(
        &mut self,
        mut ingest: TypedIngest<S::Ingest<'d>>,
        runs: Runs,
        old_tips: &BTreeSet<VertexHash>,
        new_tips: &BTreeSet<VertexHash>,
    ) -> Result<storage_api::IngestStats, DagError> {
        for (spilled, peak) in runs.figures() {
            self.report.spilled_runs += spilled as u64;
            self.report.peak_run_bytes = self.report.peak_run_bytes.max(peak);
        }
        runs.drain_into(&mut ingest)?;
        // Tip changes in key order: stored tips that gained a child go, new tips come.
        let mut changes: Vec<(VertexHash, bool)> = old_tips.iter().map(|h| (*h, false)).collect();
        changes.extend(new_tips.iter().map(|h| (*h, true)));
        changes.sort_unstable();
        for (hash, tip) in changes {
            if tip {
                ingest.put::<Tips>(&hash, &())?;
            } else {
                ingest.delete::<Tips>(&hash)?;
            }
        }
        let stats = ingest.commit()?;
        let mut batch = self.dag.store.batch();
        batch.delete::<DagMeta>(&(MetaKey::BulkPending as u8))?;
        self.dag.store.write(batch, Durability::Synced)?;
        Ok(stats)
    }

    /// Discards the open range (nothing of it becomes visible) and acknowledges a range lost
    /// to a failure; the import continues at the last committed sequence number.
    pub fn discard(&mut self) -> Result<(), DagError> {
        // The open ingest is dropped first: redb's holds the write transaction.
        let open = self.range.take().is_some();
        if open || self.lost.is_some() {
            self.dag.roll_back_pending_import()?;
        }
        self.lost = None;
        self.next = self.dag.next_sequence()?;
        Ok(())
    }

    /// Rolls back the open range after a failure (the store refuses writes until that
    /// succeeds) and marks the import lost.
    fn drop_range(&mut self, cause: &DagError) {
        let first = self.dag.pending_import().unwrap_or(self.next);
        if self.lost.is_none() {
            self.lost = Some((first, self.next.saturating_sub(1).max(first), cause.to_string()));
        }
        self.range = None;
        // Best effort: if this fails too, the pending record stays and the store refuses
        // writes until the next import (or `roll_back_pending_import`) succeeds.
        let _ = self.dag.roll_back_pending_import();
    }

    /// [`DagError::RangeLost`] while a failure's range is not acknowledged.
    fn not_lost(&self) -> Result<(), DagError> {
        match &self.lost {
            Some((from, to, reason)) => Err(DagError::RangeLost { from: *from, to: *to, reason: reason.clone() }),
            None => Ok(()),
        }
    }

    /// Commits the last range and returns what the import did.
    pub fn finish(mut self) -> Result<DagBulkReport, DagError> {
        self.commit()?;
        Ok(self.report)
    }
}

/// An import dropped before [`DagBulkImport::finish`] discards its open range, best effort:
/// if that fails, the next import or [`DagStore::roll_back_pending_import`] does it.
impl<S: KvIngest> Drop for DagBulkImport<'_, S> {
    fn drop(&mut self) {
        let open = self.range.take().is_some();
        if open {
            let _ = self.dag.roll_back_pending_import();
        }
    }
}
