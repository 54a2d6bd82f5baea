//! The integrity check: reads everything, changes nothing, reports every problem found.
//!
//! It holds one small entry per stored vertex in memory (parents, height, timestamp).

use std::collections::{HashMap, HashSet};
use std::fmt;

use storage_api::iter::{RawCursor, decode_entry};
use storage_api::{Direction, KvReader, RawRange, ReadExt, Table};

use crate::DagStore;
use crate::error::DagError;
use crate::model::{Status, VertexHash};
use crate::schema::{ByHeight, ByTime, Children, DagMeta, Finalized, MetaKey, Tips, VertexMetas, Vertices};

/// One inconsistency.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// A stored vertex that does not decode.
    UndecodableVertex {
        /// The raw key, hex.
        key: String,
        /// The decode error.
        error: String,
    },
    /// A stored vertex whose content does not hash to its key.
    HashMismatch(VertexHash),
    /// A vertex without metadata, or metadata saying it was pruned.
    BadMeta(VertexHash),
    /// A stored height that is not 1 + the highest parent height.
    HeightMismatch {
        /// The vertex.
        vertex: VertexHash,
        /// Stored height.
        stored: u64,
        /// Height computed from the parents.
        expected: u64,
    },
    /// A parent that is neither stored nor pruned.
    MissingParent {
        /// The vertex.
        vertex: VertexHash,
        /// The parent.
        parent: VertexHash,
    },
    /// A parent → child edge missing from the children index.
    MissingEdge {
        /// Parent.
        parent: VertexHash,
        /// Child.
        child: VertexHash,
    },
    /// A children-index entry no vertex accounts for.
    StaleEdge {
        /// Parent.
        parent: VertexHash,
        /// Child.
        child: VertexHash,
    },
    /// A vertex missing from the height index.
    MissingHeightEntry(VertexHash),
    /// A height-index entry no vertex accounts for.
    StaleHeightEntry(VertexHash),
    /// A vertex missing from the time index.
    MissingTimeEntry(VertexHash),
    /// A time-index entry no vertex accounts for.
    StaleTimeEntry(VertexHash),
    /// A vertex without children that is not in the tip set.
    MissingTip(VertexHash),
    /// A tip that is not stored or has children.
    StaleTip(VertexHash),
    /// The finalized sequence skips a number.
    FinalizedGap {
        /// The sequence number expected.
        expected: u64,
        /// The one found.
        found: u64,
    },
    /// A finalized-sequence entry whose vertex metadata disagrees.
    FinalizedMismatch {
        /// The sequence number.
        seq: u64,
        /// The vertex it names.
        vertex: VertexHash,
    },
    /// A bulk import's range from this finalization sequence was interrupted while
    /// committing (the next import, or `roll_back_pending_import`, removes it).
    ImportPending {
        /// First sequence number of the range.
        from: u64,
    },
    /// A table could not be read.
    Unreadable {
        /// The table.
        table: &'static str,
        /// The error.
        error: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::UndecodableVertex { key, error } => write!(f, "vertex under key {key} does not decode: {error}"),
            Problem::HashMismatch(h) => write!(f, "vertex {h}: content does not hash to its key"),
            Problem::BadMeta(h) => write!(f, "vertex {h}: metadata missing or says pruned"),
            Problem::HeightMismatch { vertex, stored, expected } => {
                write!(f, "vertex {vertex}: height {stored}, parents imply {expected}")
            }
            Problem::MissingParent { vertex, parent } => {
                write!(f, "vertex {vertex}: parent {parent} neither stored nor pruned")
            }
            Problem::MissingEdge { parent, child } => {
                write!(f, "edge {parent} -> {child} missing from the children index")
            }
            Problem::StaleEdge { parent, child } => {
                write!(f, "children index has {parent} -> {child}, which no vertex has")
            }
            Problem::MissingHeightEntry(h) => write!(f, "vertex {h} missing from the height index"),
            Problem::StaleHeightEntry(h) => write!(f, "height index names {h}, which is not stored at that height"),
            Problem::MissingTimeEntry(h) => write!(f, "vertex {h} missing from the time index"),
            Problem::StaleTimeEntry(h) => write!(f, "time index names {h}, which is not stored at that time"),
            Problem::MissingTip(h) => write!(f, "vertex {h} has no children but is not a tip"),
            Problem::StaleTip(h) => write!(f, "tip {h} is not stored or has children"),
            Problem::FinalizedGap { expected, found } => {
                write!(f, "finalized sequence jumps from {expected} to {found}")
            }
            Problem::FinalizedMismatch { seq, vertex } => {
                write!(f, "finalized sequence {seq} names {vertex}, whose metadata disagrees")
            }
            Problem::ImportPending { from } => write!(
                f,
                "a bulk import from finalization sequence {from} was interrupted while committing; resume it or roll it back"
            ),
            Problem::Unreadable { table, error } => write!(f, "table {table} unreadable: {error}"),
        }
    }
}

/// The outcome of [`DagStore::check`].
#[derive(Debug, Clone, Default)]
pub struct IntegrityReport {
    /// Vertices examined.
    pub vertices: u64,
    /// Every problem found.
    pub problems: Vec<Problem>,
}

impl IntegrityReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Seen {
    parents: Vec<VertexHash>,
    height: u64,
    timestamp: u64,
}

/// The edges stored, and those filed under another height than their parent's.
#[derive(Default)]
struct Edges {
    found: HashSet<(VertexHash, VertexHash)>,
    wrong_height: HashSet<(VertexHash, VertexHash)>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl<S: KvReader> DagStore<S> {
    /// The vertices whose keys are in `range`, each decoded and its hash verified.
    fn scan_vertices(&self, range: RawRange) -> Result<(HashMap<VertexHash, Seen>, Vec<Problem>), DagError> {
        let mut vertices = HashMap::new();
        let mut problems = Vec::new();
        let mut cursor = self.store.cursor(Vertices::NAME, range, Direction::Forward)?;
        while let Some(entry) = cursor.next_entry() {
            let (k, v) = entry?;
            match decode_entry::<Vertices>(k, v) {
                Ok((hash, record)) => {
                    let stored = record.into_stored(hash);
                    if !stored.vertex.hash_is_valid() {
                        problems.push(Problem::HashMismatch(hash));
                    }
                    vertices.insert(
                        hash,
                        Seen {
                            parents: stored.vertex.parents,
                            height: stored.height,
                            timestamp: stored.vertex.timestamp_ms,
                        },
                    );
                }
                Err(e) => problems.push(Problem::UndecodableVertex { key: hex(k), error: e.to_string() }),
            }
        }
        Ok((vertices, problems))
    }

    /// Metas (present, not pruned, same height) and heights against the parents; the edges the
    /// parents imply.
    #[allow(clippy::type_complexity)]
    fn check_parents(
        &self,
        vertices: &HashMap<VertexHash, Seen>,
    ) -> Result<(Vec<Problem>, HashSet<(VertexHash, VertexHash)>), DagError> {
        let mut problems = Vec::new();
        let hashes: Vec<VertexHash> = vertices.keys().copied().collect();
        let metas = self.store.multi_get::<VertexMetas>(&hashes)?;
        for (hash, meta) in hashes.iter().zip(&metas) {
            if !matches!(meta, Some(m) if m.status != Status::Pruned && m.height == vertices[hash].height) {
                problems.push(Problem::BadMeta(*hash));
            }
        }
        let mut edges_expected: HashSet<(VertexHash, VertexHash)> = HashSet::new();
        for (hash, seen) in vertices {
            let mut expected = 0;
            for p in &seen.parents {
                let parent_height = match vertices.get(p) {
                    Some(ps) => {
                        edges_expected.insert((*p, *hash));
                        Some(ps.height)
                    }
                    None => self.store.get::<VertexMetas>(p)?.filter(|m| m.status == Status::Pruned).map(|m| m.height),
                };
                match parent_height {
                    Some(h) => expected = expected.max(h + 1),
                    None => problems.push(Problem::MissingParent { vertex: *hash, parent: *p }),
                }
            }
            if expected != seen.height {
                problems.push(Problem::HeightMismatch { vertex: *hash, stored: seen.height, expected });
            }
        }
        Ok((problems, edges_expected))
    }

    /// The edges stored, and the parents that have children.
    fn scan_edges(
        &self,
        vertices: &HashMap<VertexHash, Seen>,
    ) -> Result<(Vec<Problem>, Edges, HashSet<VertexHash>), DagError> {
        let mut problems = Vec::new();
        let mut with_children: HashSet<VertexHash> = HashSet::new();
        let mut edges = Edges::default();
        for key in self.store.iter_all::<Children>(Direction::Forward)?.keys() {
            match key {
                Ok((parent_height, parent, child)) => {
                    with_children.insert(parent);
                    if vertices.get(&parent).is_none_or(|p| p.height != parent_height) {
                        edges.wrong_height.insert((parent, child));
                    }
                    edges.found.insert((parent, child));
                }
                Err(e) => problems.push(Problem::Unreadable { table: Children::NAME, error: e.to_string() }),
            }
        }
        Ok((problems, edges, with_children))
    }

    /// The height and time indexes against the vertices.
    fn check_indexes(&self, vertices: &HashMap<VertexHash, Seen>) -> Result<Vec<Problem>, DagError> {
        let mut problems = Vec::new();
        let mut in_height: HashSet<VertexHash> = HashSet::new();
        for key in self.store.iter_all::<ByHeight>(Direction::Forward)?.keys() {
            let (h, hash) = key?;
            match vertices.get(&hash) {
                Some(s) if s.height == h => {
                    in_height.insert(hash);
                }
                _ => problems.push(Problem::StaleHeightEntry(hash)),
            }
        }
        let mut in_time: HashSet<VertexHash> = HashSet::new();
        for key in self.store.iter_all::<ByTime>(Direction::Forward)?.keys() {
            let (t, hash) = key?;
            match vertices.get(&hash) {
                Some(s) if s.timestamp == t => {
                    in_time.insert(hash);
                }
                _ => problems.push(Problem::StaleTimeEntry(hash)),
            }
        }
        for hash in vertices.keys() {
            if !in_height.contains(hash) {
                problems.push(Problem::MissingHeightEntry(*hash));
            }
            if !in_time.contains(hash) {
                problems.push(Problem::MissingTimeEntry(*hash));
            }
        }
        Ok(problems)
    }

    /// Verifies hashes, edge symmetry, the height and time indexes, the tip set and the
    /// finalized sequence. Reads only.
    pub fn check(&self) -> Result<IntegrityReport, DagError> {
        let mut report = IntegrityReport::default();
        let problems = &mut report.problems;
        if let Some(from) = self.store.get::<DagMeta>(&(MetaKey::BulkPending as u8))? {
            problems.push(Problem::ImportPending { from });
        }
        // The vertex scan (decoding and hashing every vertex) is most of the work: the key
        // space (uniform hashes) is split by first byte into one range per core.
        let parts = std::thread::available_parallelism().map_or(1, |n| n.get()).min(16);
        let bound = |i: usize| (i > 0 && i < parts).then(|| vec![(i * 256 / parts) as u8]);
        let scans = std::thread::scope(|scope| {
            let scans: Vec<_> = (0..parts)
                .map(|i| {
                    let range = RawRange { lower: bound(i), upper: bound(i + 1) };
                    scope.spawn(move || self.scan_vertices(range))
                })
                .collect();
            scans.into_iter().map(|t| t.join().unwrap_or_else(|e| std::panic::resume_unwind(e))).collect::<Vec<_>>()
        });
        let mut vertices: HashMap<VertexHash, Seen> = HashMap::new();
        for scan in scans {
            let (part, found) = scan?;
            vertices.extend(part);
            problems.extend(found);
        }
        report.vertices = vertices.len() as u64;
        // The metas and parents, the edges, and the two indexes are checked side by side.
        let vertices = &vertices;
        let (parents, edges, indexes) = std::thread::scope(|scope| {
            let parents = scope.spawn(|| self.check_parents(vertices));
            let edges = scope.spawn(|| self.scan_edges(vertices));
            let indexes = scope.spawn(|| self.check_indexes(vertices));
            let parents = parents.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            let edges = edges.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (parents, edges, indexes.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        });
        let (found, edges_expected) = parents?;
        problems.extend(found);
        let (found, edges, with_children) = edges?;
        problems.extend(found);
        for edge in &edges.found {
            if !edges_expected.contains(edge) || edges.wrong_height.contains(edge) {
                problems.push(Problem::StaleEdge { parent: edge.0, child: edge.1 });
            }
        }
        for edge in &edges_expected {
            if !edges.found.contains(edge) {
                problems.push(Problem::MissingEdge { parent: edge.0, child: edge.1 });
            }
        }
        problems.extend(indexes?);
        // Tips.
        // The table itself, not the in-memory mirror: the check is about what is on disk.
        let tips: HashSet<VertexHash> =
            self.store.iter_all::<Tips>(Direction::Forward)?.keys().collect::<Result<_, _>>()?;
        for hash in vertices.keys() {
            if !with_children.contains(hash) && !tips.contains(hash) {
                problems.push(Problem::MissingTip(*hash));
            }
        }
        for tip in &tips {
            if !vertices.contains_key(tip) || with_children.contains(tip) {
                problems.push(Problem::StaleTip(*tip));
            }
        }
        // Finalized sequence.
        let mut expected = 0;
        for entry in self.store.iter_all::<Finalized>(Direction::Forward)? {
            let (seq, hash) = entry?;
            if seq != expected {
                problems.push(Problem::FinalizedGap { expected, found: seq });
            }
            expected = seq + 1;
            let meta = self.store.get::<VertexMetas>(&hash)?;
            if !matches!(meta, Some(m) if m.finalized_seq == Some(seq) && m.status != Status::Pending) {
                problems.push(Problem::FinalizedMismatch { seq, vertex: hash });
            }
        }
        problems.sort_by_key(ToString::to_string);
        Ok(report)
    }
}
