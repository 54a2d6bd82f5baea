//! Errors of the DAG store.

use std::sync::Arc;

use storage_api::ingest::CollectorError;
use storage_api::{IngestError, MaintenanceError, ReadError, WriteError};

use crate::model::VertexHash;

/// A DAG operation failed. Nothing was written.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DagError {
    /// The vertex's hash does not match its content.
    #[error("vertex {claimed}: hash does not match its content (content hashes to {actual})")]
    HashMismatch {
        /// The hash the vertex claims.
        claimed: VertexHash,
        /// The hash of its content.
        actual: VertexHash,
    },
    /// Parents are neither stored nor in the same batch.
    #[error("vertex {vertex}: {} missing parent(s): {}", .missing.len(), list(.missing))]
    MissingParents {
        /// The vertex.
        vertex: VertexHash,
        /// The parents not found.
        missing: Vec<VertexHash>,
    },
    /// A parent was pruned, so the vertex cannot be placed.
    #[error("vertex {vertex}: parent {parent} was pruned")]
    ParentPruned {
        /// The vertex.
        vertex: VertexHash,
        /// The pruned parent.
        parent: VertexHash,
    },
    /// A stored vertex no longer matches its hash: the data was damaged on disk.
    #[error("stored vertex {0} is corrupt: its content no longer hashes to its key")]
    CorruptVertex(VertexHash),
    /// The vertex is not stored.
    #[error("vertex {0} is not stored")]
    NotFound(VertexHash),
    /// The vertex was pruned.
    #[error("vertex {0} was pruned (finalized history below the pruning boundary)")]
    Pruned(VertexHash),
    /// A finalization sequence number out of order.
    #[error("finalization sequence {got} out of order: expected {expected}")]
    SequenceOutOfOrder {
        /// The next sequence number the store expects.
        expected: u64,
        /// The one given.
        got: u64,
    },
    /// The vertex is already finalized.
    #[error("vertex {vertex} is already finalized at sequence {seq}")]
    AlreadyFinalized {
        /// The vertex.
        vertex: VertexHash,
        /// Its sequence number.
        seq: u64,
    },
    /// Finalizing a vertex requires its parents to be finalized first.
    #[error("vertex {vertex} has {} unfinalized parent(s): {}; finalize its causal history first", .parents.len(), list(.parents))]
    UnfinalizedParents {
        /// The vertex.
        vertex: VertexHash,
        /// Its parents not yet finalized.
        parents: Vec<VertexHash>,
    },
    /// Pruning below a height that is not wholly finalized.
    #[error("cannot prune below height {height}: vertex {vertex} at height {vertex_height} is not finalized")]
    PruneNotFinalized {
        /// The requested boundary.
        height: u64,
        /// A vertex below it that is not finalized.
        vertex: VertexHash,
        /// Its height.
        vertex_height: u64,
    },
    /// A bulk import takes vertices the store does not hold.
    #[error("vertex {0} is already stored; a bulk import takes finalized history the store does not hold")]
    AlreadyStored(VertexHash),
    /// A bulk import stopped while committing the range from sequence `from`; it must be
    /// rolled back before anything else is written.
    #[error(
        "a bulk import from finalization sequence {from} was interrupted while committing; resume the import (or roll the range back) before writing"
    )]
    ImportPending {
        /// First sequence number of the range.
        from: u64,
    },
    /// A bulk import's open range failed to commit and was rolled back: its vertices are not
    /// stored. Repeated by every later call until [`crate::DagBulkImport::discard`]
    /// acknowledges it (then the import goes on at the committed sequence).
    #[error(
        "the bulk-import range of sequences {from}..={to} was rolled back after its commit failed ({reason}); nothing of it is stored: discard and push its vertices again"
    )]
    RangeLost {
        /// First sequence number of the range.
        from: u64,
        /// Last sequence number pushed to it.
        to: u64,
        /// Why its commit failed.
        reason: String,
    },
    /// The bulk import's scratch directory could not be created.
    #[error("bulk import scratch directory {path}: {source}")]
    ScratchDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: Arc<std::io::Error>,
    },
    /// A sorted-run file of a bulk import failed.
    #[error("bulk import: {0}")]
    Runs(Arc<CollectorError>),
    /// The backend's ingest failed.
    #[error(transparent)]
    Ingest(Arc<IngestError>),
    /// The store was opened with another schema.
    #[error("store holds schema `{0}`, not the DAG schema")]
    WrongSchema(String),
    /// A read failed (including stored data that does not decode).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Compaction failed.
    #[error(transparent)]
    Maintenance(#[from] MaintenanceError),
}

fn list(hashes: &[VertexHash]) -> String {
    hashes.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

impl From<CollectorError> for DagError {
    fn from(e: CollectorError) -> Self {
        DagError::Runs(Arc::new(e))
    }
}

impl From<IngestError> for DagError {
    fn from(e: IngestError) -> Self {
        DagError::Ingest(Arc::new(e))
    }
}
