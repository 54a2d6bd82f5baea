//! Write requests: what is asked, in which lane, and how the answer travels back.

use std::time::Instant;

use chain_store::{ChainModel, NewBlock, Reorg};
use dag_store::{Vertex, VertexHash};
use serde::{Deserialize, Serialize};
use storage_metrics::Lane;
use tokio::sync::oneshot;

use crate::error::StorageError;

/// A write, as queued (and, when it fails for good, as kept in the dead-letter table).
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Op<M: ChainModel> {
    InsertVertex {
        vertex: Vertex,
        signature: Vec<u8>,
    },
    FinalizeVertex {
        hash: VertexHash,
        sequence: u64,
    },
    InitChain(Box<NewBlock<M>>),
    InsertBlock(Box<NewBlock<M>>),
    SetHead(M::Hash),
    SetSafe(M::Hash),
    SetFinalized(M::Hash),
    PruneChain {
        keep_last: u64,
    },
    PruneDag {
        below: u64,
    },
    Compact,
    /// Holds the writer until the gate's sender is dropped (a consistent dump of an engine
    /// without snapshots). Never dead-lettered, never serialized.
    #[serde(skip)]
    Pause(PauseGate),
}

/// Signals that the writer has paused, and holds it until `resume`'s sender is dropped.
pub(crate) struct PauseGate {
    pub(crate) paused: std::sync::mpsc::Sender<()>,
    pub(crate) resume: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl<M: ChainModel> Op<M> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::InsertVertex { .. } => "insert_vertex",
            Op::FinalizeVertex { .. } => "finalize_vertex",
            Op::InitChain(_) => "init_chain",
            Op::InsertBlock(_) => "insert_block",
            Op::SetHead(_) => "set_head",
            Op::SetSafe(_) => "set_safe",
            Op::SetFinalized(_) => "set_finalized",
            Op::PruneChain { .. } => "prune_chain",
            Op::PruneDag { .. } => "prune_dag",
            Op::Compact => "compact",
            Op::Pause(_) => "pause",
        }
    }

    pub(crate) fn lane(&self) -> Lane {
        match self {
            Op::FinalizeVertex { .. } | Op::SetHead(_) | Op::SetSafe(_) | Op::SetFinalized(_) => Lane::High,
            Op::InsertVertex { .. } | Op::InitChain(_) | Op::InsertBlock(_) => Lane::Normal,
            Op::PruneChain { .. } | Op::PruneDag { .. } | Op::Compact | Op::Pause(_) => Lane::Low,
        }
    }

    /// Estimated payload bytes, for the group-commit byte limit.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Op::InsertVertex { vertex, signature } => {
                160 + vertex.payload.len() + signature.len() + vertex.parents.len() * 32 + vertex.id.len()
            }
            Op::InitChain(b) | Op::InsertBlock(b) => 512 + b.block.transactions.len() * 256 + b.state.len() * 96,
            _ => 64,
        }
    }

    /// Whether a failed request of this kind is kept in the dead-letter table.
    pub(crate) fn dead_letters(&self) -> bool {
        self.lane() != Lane::Low
    }
}

/// What a write did.
pub(crate) enum Done<M: ChainModel> {
    Vertex(dag_store::Inserted),
    Block(chain_store::Inserted),
    Reorg(Reorg<M::Hash>),
    Unit,
    ChainPruned(chain_store::PruneReport),
    DagPruned(dag_store::PruneReport),
    Compacted(bool),
}

impl<M: ChainModel> Done<M> {
    /// The answer to a vertex insert.
    pub(crate) fn into_vertex(self) -> dag_store::Inserted {
        match self {
            Done::Vertex(i) => i,
            _ => unreachable!("a vertex insert answers with Vertex"),
        }
    }

    /// The answer to a block insert.
    pub(crate) fn into_block(self) -> chain_store::Inserted {
        match self {
            Done::Block(i) => i,
            _ => unreachable!("a block insert answers with Block"),
        }
    }
}

pub(crate) type Reply<M> = oneshot::Sender<Result<Done<M>, StorageError>>;

/// A queued write.
pub(crate) struct Request<M: ChainModel> {
    pub(crate) op: Op<M>,
    pub(crate) id: String,
    pub(crate) enqueued: Instant,
    pub(crate) deadline: Instant,
    pub(crate) reply: Reply<M>,
    pub(crate) span: tracing::Span,
    /// Attempts so far (replays of dead letters start above 0).
    pub(crate) attempts: u32,
    /// The dead letter this request replays (a failure updates that entry instead of adding
    /// one).
    pub(crate) replay_of: Option<u64>,
}
