//! The DAG's side of the history tier: finalized vertices as the archive keeps them (their
//! stored record, by finalization sequence) and read back without the store.

use storage_api::{KeyCodec, KvReader, ReadExt, Table, ValueCodec};

use crate::DagStore;
use crate::error::DagError;
use crate::model::{Status, StoredVertex, VertexHash, VertexRecord};
use crate::schema::{VertexMetas, Vertices};

impl<S: KvReader> DagStore<S> {
    /// The vertex finalized at `sequence`: its hash and its stored record (`Pruned` if it is
    /// gone locally; `None` past the finalized sequence).
    pub fn archive_vertex(&self, sequence: u64) -> Result<Option<(VertexHash, Vec<u8>)>, DagError> {
        let Some(hash) = self.finalized_at(sequence)? else { return Ok(None) };
        match self.store.get_raw_with(Vertices::NAME, &hash.to_key_bytes(), <[u8]>::to_vec)? {
            Some(record) => Ok(Some((hash, record))),
            None => match self.store.get::<VertexMetas>(&hash)? {
                Some(m) if m.status == Status::Pruned => Err(DagError::Pruned(hash)),
                _ => Err(DagError::NotFound(hash)),
            },
        }
    }

    /// Reloads what the store mirrors in memory (the tip set, a pending bulk import) from the
    /// tables, for a reader following a database another process writes.
    pub fn reload(&self) -> Result<(), DagError> {
        self.reload_tips()?;
        *self.pending_slot() =
            self.store.get::<crate::schema::DagMeta>(&(crate::schema::MetaKey::BulkPending as u8))?;
        Ok(())
    }
}

/// The vertex in an archived record, checked: the record decodes and its content hashes to
/// `hash` (`CorruptVertex` otherwise).
pub fn unarchive(hash: VertexHash, record: &[u8]) -> Result<StoredVertex, DagError> {
    let r = VertexRecord::decode_value(record).map_err(|_| DagError::CorruptVertex(hash))?;
    let v = r.into_stored(hash);
    if !v.vertex.hash_is_valid() {
        return Err(DagError::CorruptVertex(hash));
    }
    Ok(v)
}
