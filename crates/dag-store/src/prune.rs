//! Pruning finalized history below a height.

use storage_api::{Direction, Durability, KvCompact, KvReader, KvStore, ReadExt};

use crate::DagStore;
use crate::error::DagError;
use crate::model::{Status, VertexHash, VertexMeta};
use crate::schema::{ByHeight, ByTime, Children, DagMeta, MetaKey, Tips, VertexMetas, Vertices};

/// What a prune removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct PruneReport {
    /// Vertices removed.
    pub vertices: u64,
    /// The boundary now in force: every vertex below this height is pruned.
    pub pruned_below: u64,
}

impl<S: KvReader> DagStore<S> {
    /// The pruning boundary: every vertex below this height has been pruned.
    pub fn pruned_below(&self) -> Result<u64, DagError> {
        Ok(self.store.get::<DagMeta>(&(MetaKey::PrunedBelow as u8))?.unwrap_or(0))
    }

    /// The highest boundary at most `height` that [`DagStore::prune_below`] can take when
    /// only vertices finalized at a sequence in `archived` may go (the rest are not in the
    /// history archive): the height of the lowest vertex at or above the current boundary that
    /// is not finalized, or finalized outside `archived`.
    pub fn prunable_below(&self, height: u64, archived: std::ops::Range<u64>) -> Result<u64, DagError> {
        let current = self.pruned_below()?;
        if height <= current {
            return Ok(current);
        }
        let range = (current, VertexHash::default())..(height, VertexHash::default());
        for key in self.store.iter::<ByHeight>(range, Direction::Forward)?.keys() {
            let (h, hash) = key?;
            let meta = self.store.get::<VertexMetas>(&hash)?.ok_or(DagError::NotFound(hash))?;
            if meta.status != Status::Finalized || meta.finalized_seq.is_none_or(|s| !archived.contains(&s)) {
                return Ok(h);
            }
        }
        Ok(height)
    }
}

impl<S: KvStore> DagStore<S> {
    /// Removes every vertex below `height` with its index entries, in one synced batch. Every
    /// such vertex must be finalized. The finalized sequence and each vertex's metadata (now
    /// `Pruned`) remain, so reads of pruned vertices fail with `DagError::Pruned`.
    pub fn prune_below(&self, height: u64) -> Result<PruneReport, DagError> {
        let _writer = self.write_lock()?;
        let current = self.pruned_below()?;
        if height <= current {
            return Ok(PruneReport { vertices: 0, pruned_below: current });
        }
        let mut doomed = Vec::new();
        for key in self
            .store
            .iter::<ByHeight>((current, Default::default())..(height, Default::default()), Direction::Forward)?
            .keys()
        {
            let (h, hash) = key?;
            let meta = self.store.get::<VertexMetas>(&hash)?.ok_or(DagError::NotFound(hash))?;
            if meta.status != Status::Finalized {
                return Err(DagError::PruneNotFinalized { height, vertex: hash, vertex_height: h });
            }
            doomed.push((hash, meta));
        }
        let mut batch = self.store.batch();
        for (hash, meta) in &doomed {
            let stored = self.store.get::<Vertices>(hash)?.ok_or(DagError::NotFound(*hash))?;
            batch.delete::<Vertices>(hash)?;
            batch.delete::<ByTime>(&(stored.timestamp_ms, *hash))?;
            batch.delete_prefix::<Children, _>(&(meta.height, *hash))?;
            batch.delete::<Tips>(hash)?;
            batch.put::<VertexMetas>(hash, &VertexMeta { status: Status::Pruned, ..*meta })?;
        }
        batch.delete_range::<ByHeight>((current, Default::default())..(height, Default::default()))?;
        batch.put::<DagMeta>(&(MetaKey::PrunedBelow as u8), &height)?;
        self.store.write(batch, Durability::Synced)?;
        let mut tips = self.tip_set_mut();
        for (hash, _) in &doomed {
            tips.remove(hash);
        }
        Ok(PruneReport { vertices: doomed.len() as u64, pruned_below: height })
    }

    /// Compacts the tables pruning shrinks, so the engine releases the disk space.
    pub fn compact_pruned(&self) -> Result<(), DagError>
    where
        S: KvCompact,
    {
        self.store.compact_table::<Vertices>()?;
        self.store.compact_table::<Children>()?;
        self.store.compact_table::<ByHeight>()?;
        self.store.compact_table::<ByTime>()?;
        self.store.compact_table::<Tips>()?;
        Ok(())
    }
}
