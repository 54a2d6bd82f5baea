//! Finalization: a strictly increasing, gap-free sequence starting at 0.
//!
//! A vertex may be finalized only when all of its parents are (or were pruned, which implies
//! finalized); otherwise `UnfinalizedParents` names them and nothing changes. Consensus
//! finalizes causal history in order, so this is the check that catches a skipped step.

use std::ops::RangeBounds;

use storage_api::{Direction, Durability, KvReader, KvStore, ReadExt};

use crate::DagStore;
use crate::error::DagError;
use crate::model::{Status, VertexHash, VertexMeta};
use crate::schema::{Finalized, VertexMetas};

impl<S: KvReader> DagStore<S> {
    /// The sequence number the next finalization must use.
    pub fn next_sequence(&self) -> Result<u64, DagError> {
        Ok(self.store.last::<Finalized>()?.map_or(0, |(seq, _)| seq + 1))
    }
}

impl<S: KvStore> DagStore<S> {
    /// Finalizes `hash` at `sequence` (synced).
    pub fn mark_finalized(&self, hash: &VertexHash, sequence: u64) -> Result<(), DagError> {
        let _writer = self.write_lock()?;
        let meta = self.store.get::<VertexMetas>(hash)?.ok_or(DagError::NotFound(*hash))?;
        if let (Status::Finalized | Status::Pruned, Some(seq)) = (meta.status, meta.finalized_seq) {
            return Err(DagError::AlreadyFinalized { vertex: *hash, seq });
        }
        let expected = self.next_sequence()?;
        if sequence != expected {
            return Err(DagError::SequenceOutOfOrder { expected, got: sequence });
        }
        let parents = self.parents(hash)?;
        let metas = self.store.multi_get::<VertexMetas>(&parents)?;
        let unfinalized: Vec<VertexHash> = parents
            .iter()
            .zip(&metas)
            .filter(|(_, m)| !matches!(m, Some(VertexMeta { status: Status::Finalized | Status::Pruned, .. })))
            .map(|(p, _)| *p)
            .collect();
        if !unfinalized.is_empty() {
            return Err(DagError::UnfinalizedParents { vertex: *hash, parents: unfinalized });
        }
        let mut batch = self.store.batch();
        batch.put::<Finalized>(&sequence, hash)?;
        batch.put::<VertexMetas>(
            hash,
            &VertexMeta { status: Status::Finalized, finalized_seq: Some(sequence), ..meta },
        )?;
        self.store.write(batch, Durability::Synced)?;
        Ok(())
    }
}

impl<S: KvReader> DagStore<S> {
    /// The vertex finalized at `sequence`.
    pub fn finalized_at(&self, sequence: u64) -> Result<Option<VertexHash>, DagError> {
        Ok(self.store.get::<Finalized>(&sequence)?)
    }

    /// The sequence number at which `hash` was finalized, if it was.
    pub fn finalization_of(&self, hash: &VertexHash) -> Result<Option<u64>, DagError> {
        Ok(self.store.get::<VertexMetas>(hash)?.and_then(|m| m.finalized_seq))
    }

    /// The last finalized vertex and its sequence number.
    pub fn last_finalized(&self) -> Result<Option<(u64, VertexHash)>, DagError> {
        Ok(self.store.last::<Finalized>()?)
    }

    /// The finalized sequence over `range`, in order.
    pub fn finalized_range(&self, range: impl RangeBounds<u64>) -> Result<Vec<(u64, VertexHash)>, DagError> {
        self.store.iter::<Finalized>(range, Direction::Forward)?.map(|e| Ok(e?)).collect()
    }
}
