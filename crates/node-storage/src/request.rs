//! Write requests: what is asked, in which lane, and how the answer travels back.

use std::time::Instant;

use chain_store::{ChainModel, NewBlock, Reorg};
use dag_store::{Vertex, VertexHash};
use serde::{Deserialize, Serialize};
use storage_metrics::Lane;
use tokio::sync::oneshot;

use crate::error::StorageError;

/// A write's answer: its typed result, or why it failed.
pub(crate) type Answer<T> = Result<T, StorageError>;

/// Where one write's answer goes: the typed channel its caller waits on, or (a replayed dead
/// letter) a channel that only learns whether it succeeded. The writer holds the answer back
/// until the write is durable. Not serialized: a dead letter carries no reply.
pub(crate) struct Reply<T> {
    to: To<T>,
    outcome: Option<Answer<T>>,
}

enum To<T> {
    Nobody,
    Caller(oneshot::Sender<Answer<T>>),
    Status(oneshot::Sender<Answer<()>>),
}

impl<T> Default for Reply<T> {
    fn default() -> Self {
        Reply { to: To::Nobody, outcome: None }
    }
}

impl<T> Reply<T> {
    /// A reply and the receiver its caller waits on.
    pub(crate) fn channel() -> (Self, oneshot::Receiver<Answer<T>>) {
        let (tx, rx) = oneshot::channel();
        (Reply { to: To::Caller(tx), outcome: None }, rx)
    }

    /// Records the write's result (sent by [`Pending::send`]).
    pub(crate) fn set(&mut self, answer: Answer<T>) {
        self.outcome = Some(answer);
    }
}

/// What the writer does with any request's reply without knowing its type.
pub(crate) trait Pending: Send {
    /// The failure recorded so far, if any.
    fn error(&self) -> Option<&StorageError>;
    /// Whether a success is recorded.
    fn succeeded(&self) -> bool;
    /// Records a failure in place of whatever was recorded (an expired request, a failed
    /// sync that makes a recorded success not durable).
    fn fail(&mut self, e: StorageError);
    /// Routes the answer to a channel that learns only success or failure (a replay).
    fn watch(&mut self) -> oneshot::Receiver<Answer<()>>;
    /// Sends the recorded answer (a request with none recorded is answered `ShuttingDown`).
    fn send(&mut self);
}

impl<T: Send> Pending for Reply<T> {
    fn error(&self) -> Option<&StorageError> {
        self.outcome.as_ref().and_then(|o| o.as_ref().err())
    }

    fn succeeded(&self) -> bool {
        matches!(self.outcome, Some(Ok(_)))
    }

    fn fail(&mut self, e: StorageError) {
        self.outcome = Some(Err(e));
    }

    fn watch(&mut self) -> oneshot::Receiver<Answer<()>> {
        let (tx, rx) = oneshot::channel();
        self.to = To::Status(tx);
        rx
    }

    fn send(&mut self) {
        let outcome = self.outcome.take().unwrap_or(Err(StorageError::ShuttingDown));
        match std::mem::replace(&mut self.to, To::Nobody) {
            To::Nobody => {}
            To::Caller(tx) => {
                let _ = tx.send(outcome);
            }
            To::Status(tx) => {
                let _ = tx.send(outcome.map(|_| ()));
            }
        }
    }
}

/// A write, as queued (and, when it fails for good, as kept in the dead-letter table), with the
/// reply its answer goes to: each kind of write has its own answer type.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub(crate) enum Op<M: ChainModel> {
    InsertVertex {
        vertex: Vertex,
        signature: Vec<u8>,
        #[serde(skip)]
        reply: Reply<dag_store::Inserted>,
    },
    FinalizeVertex {
        hash: VertexHash,
        sequence: u64,
        #[serde(skip)]
        reply: Reply<()>,
    },
    InitChain {
        block: Box<NewBlock<M>>,
        #[serde(skip)]
        reply: Reply<()>,
    },
    InsertBlock {
        block: Box<NewBlock<M>>,
        #[serde(skip)]
        reply: Reply<chain_store::Inserted>,
    },
    SetHead {
        hash: M::Hash,
        #[serde(skip)]
        reply: Reply<Reorg<M::Hash>>,
    },
    SetSafe {
        hash: M::Hash,
        #[serde(skip)]
        reply: Reply<()>,
    },
    SetFinalized {
        hash: M::Hash,
        #[serde(skip)]
        reply: Reply<()>,
    },
    PruneChain {
        keep_last: u64,
        #[serde(skip)]
        reply: Reply<chain_store::PruneReport>,
    },
    PruneDag {
        below: u64,
        #[serde(skip)]
        reply: Reply<dag_store::PruneReport>,
    },
}

/// `$body` with `$reply` bound to the reply of whichever write `$op` is (each kind's reply has
/// its own answer type, so each gets its own arm).
macro_rules! each_reply {
    ($op:expr, $reply:ident => $body:expr) => {
        match $op {
            Op::InsertVertex { $reply, .. } => $body,
            Op::InsertBlock { $reply, .. } => $body,
            Op::SetHead { $reply, .. } => $body,
            Op::PruneChain { $reply, .. } => $body,
            Op::PruneDag { $reply, .. } => $body,
            Op::FinalizeVertex { $reply, .. }
            | Op::InitChain { $reply, .. }
            | Op::SetSafe { $reply, .. }
            | Op::SetFinalized { $reply, .. } => $body,
        }
    };
}

impl<M: ChainModel> Op<M> {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::InsertVertex { .. } => "insert_vertex",
            Op::FinalizeVertex { .. } => "finalize_vertex",
            Op::InitChain { .. } => "init_chain",
            Op::InsertBlock { .. } => "insert_block",
            Op::SetHead { .. } => "set_head",
            Op::SetSafe { .. } => "set_safe",
            Op::SetFinalized { .. } => "set_finalized",
            Op::PruneChain { .. } => "prune_chain",
            Op::PruneDag { .. } => "prune_dag",
        }
    }

    pub(crate) fn lane(&self) -> Lane {
        match self {
            Op::FinalizeVertex { .. } | Op::SetHead { .. } | Op::SetSafe { .. } | Op::SetFinalized { .. } => Lane::High,
            Op::InsertVertex { .. } | Op::InitChain { .. } | Op::InsertBlock { .. } => Lane::Normal,
            Op::PruneChain { .. } | Op::PruneDag { .. } => Lane::Low,
        }
    }

    /// Estimated payload bytes, for the group-commit byte limit.
    pub(crate) fn bytes(&self) -> usize {
        match self {
            Op::InsertVertex { vertex, signature, .. } => {
                160 + vertex.payload.len() + signature.len() + vertex.parents.len() * 32 + vertex.id.len()
            }
            Op::InitChain { block, .. } | Op::InsertBlock { block, .. } => {
                512 + block.block.transactions.len() * 256 + block.state.len() * 96
            }
            _ => 64,
        }
    }

    /// Whether a failed request of this kind is kept in the dead-letter table.
    pub(crate) fn dead_letters(&self) -> bool {
        self.lane() != Lane::Low
    }

    /// The reply, whatever its answer type.
    pub(crate) fn reply(&self) -> &dyn Pending {
        each_reply!(self, reply => reply)
    }

    /// The reply, whatever its answer type, to record or send its answer.
    pub(crate) fn reply_mut(&mut self) -> &mut dyn Pending {
        each_reply!(self, reply => reply)
    }
}

/// A queued write.
pub(crate) struct Request<M: ChainModel> {
    pub(crate) op: Op<M>,
    pub(crate) id: String,
    pub(crate) enqueued: Instant,
    pub(crate) deadline: Instant,
    pub(crate) span: tracing::Span,
    /// Attempts so far (replays of dead letters start above 0).
    pub(crate) attempts: u32,
    /// The dead letter this request replays (a failure updates that entry instead of adding
    /// one).
    pub(crate) replay_of: Option<u64>,
}

impl<M: ChainModel> Request<M> {
    /// A request for `op` enqueued now, due within `timeout`.
    pub(crate) fn new(op: Op<M>, id: String, timeout: std::time::Duration, span: tracing::Span) -> Self {
        let now = Instant::now();
        Request { op, id, enqueued: now, deadline: now + timeout, span, attempts: 0, replay_of: None }
    }
}

#[cfg(test)]
mod tests {
    use chain_store::synthetic::{B256, Synthetic};
    use serde::Serialize;

    use super::*;

    /// The dead-letter encoding before replies moved into the operations: tuple and unit
    /// variants where there are struct variants now.
    #[derive(Serialize)]
    enum Before {
        #[allow(dead_code)]
        InsertVertex {
            vertex: Vertex,
            signature: Vec<u8>,
        },
        FinalizeVertex {
            hash: VertexHash,
            sequence: u64,
        },
        #[allow(dead_code)]
        InitChain(Box<NewBlock<Synthetic>>),
        #[allow(dead_code)]
        InsertBlock(Box<NewBlock<Synthetic>>),
        SetHead(B256),
        SetSafe(B256),
        SetFinalized(B256),
        PruneChain {
            keep_last: u64,
        },
        PruneDag {
            below: u64,
        },
    }

    #[test]
    fn dead_letters_written_before_keep_their_encoding() {
        let hash = B256([7; 32]);
        let cases: Vec<(Before, Op<Synthetic>)> = vec![
            (
                Before::FinalizeVertex { hash: VertexHash([3; 32]), sequence: 9 },
                Op::FinalizeVertex { hash: VertexHash([3; 32]), sequence: 9, reply: Reply::default() },
            ),
            (Before::SetHead(hash), Op::SetHead { hash, reply: Reply::default() }),
            (Before::SetSafe(hash), Op::SetSafe { hash, reply: Reply::default() }),
            (Before::SetFinalized(hash), Op::SetFinalized { hash, reply: Reply::default() }),
            (Before::PruneChain { keep_last: 5 }, Op::PruneChain { keep_last: 5, reply: Reply::default() }),
            (Before::PruneDag { below: 6 }, Op::PruneDag { below: 6, reply: Reply::default() }),
        ];
        for (before, now) in cases {
            let old = postcard::to_allocvec(&before).unwrap();
            assert_eq!(postcard::to_allocvec(&now).unwrap(), old, "{}", now.name());
            let back: Op<Synthetic> = postcard::from_bytes(&old).unwrap();
            assert_eq!(back.name(), now.name());
        }
    }
}
