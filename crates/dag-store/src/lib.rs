//! DAG-consensus persistence, generic over any storage-api backend.
//!
//! Vertices are addressed by the BLAKE3 hash of a canonical, versioned encoding of their
//! content ([`Vertex::content_hash`]); the creator's signature is stored beside the vertex.
//! Every insert writes the vertex, its metadata, the parent → child edges, the height and
//! timestamp indexes and the tip-set update in one atomic batch.
//!
//! * [`DagStore::insert_vertex`] / [`DagStore::insert_batch`]: validated, idempotent inserts
//!   (a batch may contain parents and children in any order);
//! * reads: vertices, parents, children, heights, time ranges (streaming, both directions),
//!   tips, bounded ancestor / descendant walks;
//! * finalization: a gap-free sequence; a vertex can be finalized only after all its parents
//!   (an error names the unfinalized parents — the caller finalizes causal history in order);
//! * pruning below a finalized height, keeping the finalized sequence and per-vertex
//!   metadata so reads of pruned vertices say so;
//! * [`DagStore::check`]: a read-only integrity check reporting every problem.
//!
//! Writes are serialised by an internal lock (parents are checked, then the batch written);
//! reads never take it.

mod archive;
mod bulk;
mod check;
mod error;
mod finalize;
pub mod generator;
mod insert;
pub mod legacy;
pub mod migrate;
mod model;
mod prune;
mod read;
pub mod schema;

use std::collections::BTreeSet;
use std::sync::{Mutex, MutexGuard, RwLock};

pub use archive::unarchive;
pub use bulk::{DagBulkImport, DagBulkOptions, DagBulkReport};
pub use check::{IntegrityReport, Problem};
pub use error::DagError;
pub use insert::Inserted;
pub use model::{Status, StoredVertex, Vertex, VertexBuilder, VertexHash, VertexMeta, VertexRecord};
pub use prune::PruneReport;
pub use read::Walk;
pub use schema::dag_schema;
use storage_api::{Durability, KvReader, ReadExt};

/// The DAG store over backend `S` (opened with [`dag_schema`]).
#[derive(Debug)]
pub struct DagStore<S> {
    store: S,
    durability: Durability,
    writer: Mutex<()>,
    /// The tip set, mirrored from the `tips` table: loaded on open, updated after each
    /// successful write. Tips churn with every insert, so the table fills with deletion
    /// markers that a scan would have to step over; reads come from here instead.
    tips: RwLock<BTreeSet<VertexHash>>,
    /// The first sequence of a bulk-import range left uncommitted (writes are refused until
    /// it is rolled back), mirrored from the meta table.
    pending: Mutex<Option<u64>>,
}

impl<S: KvReader> DagStore<S> {
    /// Wraps a store opened with [`dag_schema`]. Inserts are synced by default.
    pub fn new(store: S) -> Result<Self, DagError> {
        if store.schema().name() != schema::SCHEMA_NAME {
            return Err(DagError::WrongSchema(store.schema().name().to_owned()));
        }
        let tips = load_tips(&store)?;
        let pending = store.get::<schema::DagMeta>(&(schema::MetaKey::BulkPending as u8))?;
        Ok(DagStore {
            store,
            durability: Durability::Synced,
            writer: Mutex::new(()),
            tips: RwLock::new(tips),
            pending: Mutex::new(pending),
        })
    }

    /// Sets the durability of vertex inserts. Finalization and pruning are always synced.
    pub fn with_insert_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The backend.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Unwraps the backend.
    pub fn into_inner(self) -> S {
        self.store
    }

    /// The writer lock, refused while an interrupted bulk import's range is pending.
    fn write_lock(&self) -> Result<MutexGuard<'_, ()>, DagError> {
        let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match *self.pending_slot() {
            Some(from) => Err(DagError::ImportPending { from }),
            None => Ok(guard),
        }
    }

    fn pending_slot(&self) -> MutexGuard<'_, Option<u64>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reloads the tip set from the `tips` table.
    fn reload_tips(&self) -> Result<(), DagError> {
        *self.tip_set_mut() = load_tips(&self.store)?;
        Ok(())
    }

    fn tip_set(&self) -> std::sync::RwLockReadGuard<'_, BTreeSet<VertexHash>> {
        self.tips.read().unwrap_or_else(|p| p.into_inner())
    }

    fn tip_set_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeSet<VertexHash>> {
        self.tips.write().unwrap_or_else(|p| p.into_inner())
    }
}

fn load_tips<S: KvReader>(store: &S) -> Result<BTreeSet<VertexHash>, DagError> {
    Ok(store.iter_all::<schema::Tips>(storage_api::Direction::Forward)?.keys().collect::<Result<BTreeSet<_>, _>>()?)
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
