//! `nodestore archive verify`: the archive read back whole and checked twice over — by the
//! archive itself (presence, sizes, BLAKE3, decompression, indexes) and against the chain's
//! own rules (every block's roots and hash as an insert checks them, parent links, the local
//! canonical hash where the node still has it; every vertex's content hash and the local
//! finalized sequence).

use chain_store::{BlockHeader, ChainModel, ChainStore, Unarchived};
use dag_store::{DagStore, VertexRecord};
use storage_api::{KvReader, ValueCodec};
use storage_history::{HistoryTier, Kind, TierReport};

use super::History;
use crate::error::StorageError;

/// What verifying the archive found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArchiveReport {
    /// The archive, as shown to operators.
    pub archive: String,
    /// What was read and every problem found.
    pub tier: TierReport,
    /// Blocks whose contents were checked.
    pub blocks: u64,
    /// Vertices whose contents were checked.
    pub vertices: u64,
}

impl ArchiveReport {
    /// Whether no problem was found.
    pub fn is_ok(&self) -> bool {
        self.tier.problems.is_empty()
    }
}

pub(crate) fn verify_archive<S: KvReader, M: ChainModel>(
    history: &History,
    chain: &ChainStore<S, M>,
    dag: &DagStore<S>,
    progress: &dyn storage_history::Progress,
) -> Result<ArchiveReport, StorageError> {
    let (mut blocks, mut vertices) = (0u64, 0u64);
    let mut previous: Option<(u64, M::Hash)> = None;
    let mut check = |kind: Kind, n: u64, record: &[u8]| -> Result<(), String> {
        match kind {
            Kind::Chain => {
                let local = chain.canonical_hash(n).map_err(|e| e.to_string())?;
                let u = Unarchived::<M>::decode(n, record, local.as_ref()).map_err(|e| e.to_string())?;
                u.verify(None).map_err(|e| e.to_string())?;
                if let Some((p, hash)) = previous
                    && p + 1 == n
                    && u.header().parent_hash() != hash
                {
                    return Err(format!("does not extend archived block {p}"));
                }
                previous = Some((n, u.header().hash()));
                blocks += 1;
            }
            Kind::Dag => {
                let r = VertexRecord::decode_value(record).map_err(|e| e.to_string())?;
                let v = r.into_stored(Default::default());
                let hash = v.vertex.content_hash();
                if let Some(local) = dag.finalized_at(n).map_err(|e| e.to_string())?
                    && local != hash
                {
                    return Err(format!("is vertex {hash:?}, but this node finalized {local:?} at that sequence"));
                }
                vertices += 1;
            }
        }
        Ok(())
    };
    let tier = history.archive.verify(progress, &mut check)?;
    Ok(ArchiveReport { archive: history.archive.describe(), tier, blocks, vertices })
}
