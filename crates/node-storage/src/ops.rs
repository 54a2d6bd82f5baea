//! Operator operations on a node — stats, checks, compaction, pruning, dead letters, backups —
//! as one type, whoever runs them: the running node for its admin endpoint
//! ([`StorageHandle::execute`](crate::StorageHandle::execute)), a read-only open or a replica
//! ([`NodeReader::execute`](crate::NodeReader::execute)), or
//! the stores opened for the operation alone when the node is stopped
//! ([`execute_stopped`](crate::execute_stopped)).
//! Each [`Operation`] has one [`Outcome`] variant, so a client prints the same whichever way
//! it ran; the admin protocol sends both as they are (see [`crate::admin`]).
//!
//! A new operation is one [`Operation`] variant, its [`Outcome`], and its arm in
//! `StorageHandle::execute` (and `NodeReader::execute` if it only reads): the compiler finds
//! the rest.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use storage_backup::{BackupKind, Progress};

use crate::backup::BackupReport;
use crate::check::{CheckSummary, NodeStats, PruneSummary};
use crate::deadletter::{DeadLetterPage, Replayed};
use crate::error::StorageError;
use crate::schedule::ScheduleStatus;

/// Most dead letters per page of [`Operation::DeadLetters`].
pub const MAX_DEAD_LETTERS_PER_PAGE: usize = 1_000;

/// An operator operation on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Figures of every store ([`Outcome::Stats`]).
    Stats,
    /// Integrity checks ([`Outcome::Check`]); `state`: also the state trie.
    Check {
        /// Also recompute the state root and compare it with the stored trie.
        state: bool,
    },
    /// Compact every table ([`Outcome::Compacted`]).
    Compact,
    /// Prune the chain and/or the DAG ([`Outcome::Pruned`]).
    Prune {
        /// Keep the last N blocks' bodies, receipts and change sets.
        chain_keep: Option<u64>,
        /// Prune DAG vertices below this height.
        dag_below: Option<u64>,
    },
    /// A page of the dead letters, without their payloads ([`Outcome::DeadLetters`]).
    DeadLetters {
        /// Ids above this one (`None`: from the first).
        after: Option<u64>,
        /// At most this many (capped at [`MAX_DEAD_LETTERS_PER_PAGE`]).
        limit: u32,
    },
    /// Replay dead letters, `None`: all ([`Outcome::Replayed`]).
    ReplayDeadLetters {
        /// Which ones.
        ids: Option<Vec<u64>>,
    },
    /// Take a backup now, with progress ([`Outcome::BackedUp`]).
    Backup {
        /// Physical or logical.
        kind: BackupKind,
    },
    /// The running node's backup schedule ([`Outcome::Schedule`]).
    ScheduleStatus,
}

/// What an [`Operation`] needs of the node it runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only: a read-only open or a replica will do.
    Read,
    /// Writes, or holds the stores for itself: the running node, or the stopped node's stores
    /// opened for writing.
    Write,
    /// Asks the running node about itself (a stopped node has nothing to say).
    Running,
}

impl Operation {
    /// The operation's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Stats => "stats",
            Operation::Check { .. } => "check",
            Operation::Compact => "compact",
            Operation::Prune { .. } => "prune",
            Operation::DeadLetters { .. } => "dead_letters",
            Operation::ReplayDeadLetters { .. } => "replay_dead_letters",
            Operation::Backup { .. } => "backup",
            Operation::ScheduleStatus => "schedule_status",
        }
    }

    /// What it needs of the node.
    pub fn access(&self) -> Access {
        match self {
            Operation::Stats | Operation::Check { .. } | Operation::DeadLetters { .. } => Access::Read,
            Operation::Compact
            | Operation::Prune { .. }
            | Operation::ReplayDeadLetters { .. }
            | Operation::Backup { .. } => Access::Write,
            Operation::ScheduleStatus => Access::Running,
        }
    }
}

/// The result of an [`Operation`], one variant each.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// Of [`Operation::Stats`].
    Stats(NodeStats),
    /// Of [`Operation::Check`].
    Check(CheckSummary),
    /// Of [`Operation::Compact`]: whether the engine compacts.
    Compacted(bool),
    /// Of [`Operation::Prune`].
    Pruned(PruneSummary),
    /// Of [`Operation::DeadLetters`].
    DeadLetters(DeadLetterPage),
    /// Of [`Operation::ReplayDeadLetters`].
    Replayed(Vec<Replayed>),
    /// Of [`Operation::Backup`].
    BackedUp(BackupReport),
    /// Of [`Operation::ScheduleStatus`]: `None` when no node is running (the configuration
    /// says what one would do).
    Schedule(Option<ScheduleStatus>),
}

/// What runs operations for the admin endpoint: the running node
/// ([`StorageHandle`](crate::StorageHandle)).
pub(crate) trait Operate: Clone + Send + Sync + 'static {
    /// Runs `op`; a backup reports its progress to `progress`.
    fn execute<P: Progress + 'static>(
        &self,
        op: Operation,
        progress: Arc<P>,
    ) -> impl Future<Output = Result<Outcome, StorageError>> + Send;

    /// Whether it is shutting down (the endpoint stops then).
    fn is_closing(&self) -> bool;
}
