//! Reads: vertices, edges, indexes, tips and bounded walks.

use std::collections::{HashSet, VecDeque};
use std::ops::{Bound, RangeBounds};

use storage_api::iter::Iter;
use storage_api::{Direction, KeyCodec, KvReader, RawRange, ReadExt, Table};

use crate::DagStore;
use crate::error::DagError;
use crate::model::{Status, StoredVertex, VertexHash, VertexRecord};
use crate::schema::{ByHeight, ByTime, Children, VertexMetas, Vertices};

/// Bounds of an ancestor or descendant walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    /// Edges to follow from the start at most.
    pub max_depth: u64,
    /// Vertices to return at most.
    pub max_count: usize,
}

impl Walk {
    /// At most `max_count` vertices, any depth.
    pub fn count(max_count: usize) -> Self {
        Walk { max_depth: u64::MAX, max_count }
    }

    /// At most `max_depth` edges away, any number of vertices.
    pub fn depth(max_depth: u64) -> Self {
        Walk { max_depth, max_count: usize::MAX }
    }
}

impl<S: KvReader> DagStore<S> {
    /// The stored vertex, verified against its hash. `Ok(None)` if unknown; `Pruned` if pruned;
    /// `CorruptVertex` if the stored bytes no longer hash to the key.
    pub fn vertex(&self, hash: &VertexHash) -> Result<Option<StoredVertex>, DagError> {
        match self.store.get::<Vertices>(hash)?.map(|r| r.into_stored(*hash)) {
            Some(v) if v.vertex.hash_is_valid() => Ok(Some(v)),
            Some(_) => Err(DagError::CorruptVertex(*hash)),
            None => match self.store.get::<VertexMetas>(hash)? {
                Some(m) if m.status == Status::Pruned => Err(DagError::Pruned(*hash)),
                _ => Ok(None),
            },
        }
    }

    /// Whether the vertex is stored (pruned vertices count as not stored).
    pub fn contains(&self, hash: &VertexHash) -> Result<bool, DagError> {
        Ok(self.store.contains::<Vertices>(hash)?)
    }

    fn existing(&self, hash: &VertexHash) -> Result<StoredVertex, DagError> {
        self.vertex(hash)?.ok_or(DagError::NotFound(*hash))
    }

    /// The vertex's parents.
    pub fn parents(&self, hash: &VertexHash) -> Result<Vec<VertexHash>, DagError> {
        Ok(self.existing(hash)?.vertex.parents)
    }

    /// The vertex's children, in hash order (empty for an unknown vertex).
    pub fn children(&self, hash: &VertexHash) -> Result<Vec<VertexHash>, DagError> {
        let Some(meta) = self.store.get::<VertexMetas>(hash)? else { return Ok(Vec::new()) };
        let it = self.store.iter_prefix::<Children, _>(&(meta.height, *hash), Direction::Forward)?;
        it.keys().map(|k| Ok(k?.2)).collect()
    }

    /// The vertices at `height`, in hash order.
    pub fn at_height(&self, height: u64) -> Result<Vec<VertexHash>, DagError> {
        let it = self.store.iter_prefix::<ByHeight, _>(&height, Direction::Forward)?;
        it.keys().map(|k| Ok(k?.1)).collect()
    }

    /// Streams `(timestamp, hash)` of the vertices whose timestamps lie in `range`.
    pub fn time_range(
        &self,
        range: impl RangeBounds<u64>,
        direction: Direction,
    ) -> Result<impl Iterator<Item = Result<(u64, VertexHash), DagError>> + '_, DagError> {
        // Timestamp bounds become bounds on the composite key: a timestamp prefix and its end.
        let lower = match range.start_bound() {
            Bound::Unbounded => None,
            Bound::Included(t) => Some(t.to_key_bytes()),
            Bound::Excluded(t) => t.checked_add(1).map(|t| t.to_key_bytes()),
        };
        let upper = match range.end_bound() {
            Bound::Unbounded => None,
            Bound::Included(t) => t.checked_add(1).map(|t| t.to_key_bytes()),
            Bound::Excluded(t) => Some(t.to_key_bytes()),
        };
        let empty = matches!(range.start_bound(), Bound::Excluded(t) if *t == u64::MAX);
        let raw = if empty {
            RawRange { lower: Some(vec![0xff; 9]), upper: Some(vec![0xff; 9]) }
        } else {
            RawRange { lower, upper }
        };
        let cursor = self.store.cursor(ByTime::NAME, raw, direction)?;
        Ok(Iter::<ByTime, _>::new(cursor).keys().map(|k| k.map_err(DagError::from)))
    }

    /// The current tips, in hash order (from the in-memory mirror of the `tips` table).
    pub fn tips(&self) -> Result<Vec<VertexHash>, DagError> {
        Ok(self.tip_set().iter().copied().collect())
    }

    /// Ancestors of `hash` breadth-first (nearest first), within `walk`'s bounds; stops at the
    /// pruning boundary.
    pub fn ancestors(&self, hash: &VertexHash, walk: Walk) -> Result<Vec<VertexHash>, DagError> {
        let start = self.existing(hash)?;
        self.bfs(start.vertex.parents, walk, |h| {
            let parents = self.store.get_raw_with(Vertices::NAME, &h.0, VertexRecord::parents_from_bytes)?;
            match parents {
                Some(Ok(p)) => Ok(p),
                Some(Err(source)) => Err(DagError::Read(storage_api::ReadError::Decode {
                    table: Vertices::NAME,
                    part: storage_api::error::Part::Value,
                    source,
                })),
                None => Ok(Vec::new()), // pruned: the walk stops at the boundary
            }
        })
    }

    /// Descendants of `hash` breadth-first (nearest first), within `walk`'s bounds.
    pub fn descendants(&self, hash: &VertexHash, walk: Walk) -> Result<Vec<VertexHash>, DagError> {
        let first = self.children(hash)?;
        if first.is_empty() && !self.contains(hash)? {
            return Err(DagError::NotFound(*hash));
        }
        self.bfs(first, walk, |h| self.children(h))
    }

    fn bfs(
        &self,
        first: Vec<VertexHash>,
        walk: Walk,
        next: impl Fn(&VertexHash) -> Result<Vec<VertexHash>, DagError>,
    ) -> Result<Vec<VertexHash>, DagError> {
        let mut seen: HashSet<VertexHash> = HashSet::new();
        let mut queue: VecDeque<(VertexHash, u64)> = VecDeque::new();
        let mut out = Vec::new();
        if walk.max_depth == 0 {
            return Ok(out);
        }
        for h in first {
            if seen.insert(h) {
                queue.push_back((h, 1));
            }
        }
        while let Some((h, depth)) = queue.pop_front() {
            if out.len() >= walk.max_count {
                break;
            }
            out.push(h);
            if depth >= walk.max_depth {
                continue;
            }
            for n in next(&h)? {
                if seen.insert(n) {
                    queue.push_back((n, depth + 1));
                }
            }
        }
        Ok(out)
    }
}
