//! The object caches in front of the chain and DAG stores, and the invalidation rules that
//! keep them from serving anything a reorg or prune has changed.

use std::sync::Arc;

use chain_store::{Block, BlockHeader, ChainModel, NewBlock, PruneReport, Reorg};
use dag_store::{StoredVertex, VertexHash};
use storage_cache::{CacheStats, TypedCache};

use crate::config::CachesConfig;
use crate::config::ConfigError;
use crate::error::StorageError;

/// Decoded objects by key. Blocks, receipts and vertices are immutable by hash (only pruning
/// removes them); the canonical index and state change with reorgs and new blocks.
pub(crate) struct Caches<M: ChainModel> {
    pub(crate) blocks: TypedCache<M::Hash, Arc<Block<M>>>,
    pub(crate) canonical: TypedCache<u64, M::Hash>,
    pub(crate) receipts: TypedCache<M::Hash, Arc<Vec<M::Receipt>>>,
    pub(crate) state: TypedCache<M::StateKey, Option<M::StateValue>>,
    pub(crate) vertices: TypedCache<VertexHash, Arc<StoredVertex>>,
}

fn cache<K, V>(name: &'static str, c: &storage_cache::CacheConfig) -> Result<TypedCache<K, V>, StorageError>
where
    K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    TypedCache::new(name, c).map_err(|e| {
        StorageError::Config(ConfigError::Invalid { key: format!("caches.{name}.{}", e.field), reason: e.problem })
    })
}

impl<M: ChainModel> Caches<M> {
    pub(crate) fn new(c: &CachesConfig) -> Result<Self, StorageError> {
        Ok(Caches {
            blocks: cache("blocks", &c.blocks)?,
            canonical: cache("canonical", &c.canonical)?,
            receipts: cache("receipts", &c.receipts)?,
            state: cache("state", &c.state)?,
            vertices: cache("vertices", &c.vertices)?,
        })
    }

    /// After a block was stored: if it extended the canonical chain, its state writes
    /// changed the current state.
    pub(crate) fn after_block(&self, block: &NewBlock<M>, canonical: bool) {
        if canonical {
            for (key, _) in &block.state {
                self.state.invalidate(key);
            }
        }
    }

    /// After the head moved: heights above the fork point may map to other blocks, and the
    /// state was reverted and re-applied.
    pub(crate) fn after_reorg(&self, reorg: &Reorg<M::Hash>) {
        if reorg.removed.is_empty() && reorg.added.is_empty() {
            return;
        }
        let fork = reorg.fork_point.number;
        self.canonical.invalidate_if(move |n, _| *n > fork);
        self.state.invalidate_all();
    }

    /// After chain pruning: bodies and receipts below the boundary are gone.
    pub(crate) fn after_chain_prune(&self, report: &PruneReport) {
        let below = report.pruned_below;
        self.blocks.invalidate_if(move |_, b| b.header.number() < below);
        self.receipts.invalidate_all();
    }

    /// After DAG pruning: vertices below the boundary are gone.
    pub(crate) fn after_dag_prune(&self, below: u64) {
        self.vertices.invalidate_if(move |_, v| v.height < below);
    }

    pub(crate) fn stats(&self) -> [(&'static str, CacheStats); 5] {
        [
            (self.blocks.name(), self.blocks.stats()),
            (self.canonical.name(), self.canonical.stats()),
            (self.receipts.name(), self.receipts.stats()),
            (self.state.name(), self.state.stats()),
            (self.vertices.name(), self.vertices.stats()),
        ]
    }
}
