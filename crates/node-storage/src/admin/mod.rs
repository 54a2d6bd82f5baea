//! The admin endpoint: operating a running node from another process (`nodestore`).
//!
//! **Transport.** A Unix socket (default `<data_dir>/admin.sock`, `[admin]` in the config, off
//! by default), chosen over loopback HTTP with a token because the kernel does the
//! authentication: the socket is created mode 0600, and every connection's peer credentials
//! (`SO_PEERCRED`) must name the node's own user, so there is no secret to keep, rotate or leak
//! into a log, and nothing listens on a port. The client checks the same from its side before
//! it sends anything: the socket file must be a socket owned by the caller with no access for
//! others, and the process listening on it must run as the caller — a socket planted by another
//! user is refused.
//!
//! **Protocol.** One request per connection, newline-delimited JSON: the client writes one
//! [`Envelope`] line; the node answers with zero or more progress [`Frame`]s and then exactly one
//! `done` (the operation's result as JSON) or `failed` (the error's kind and message) frame.
//! Results are the same types the CLI renders when it opens the store itself ([`NodeStats`],
//! [`CheckSummary`], …), so its output is the same either way.

mod client;
mod server;

use serde::{Deserialize, Serialize};
use storage_backup::BackupKind;

pub use client::{AdminClient, AdminError};
pub use server::AdminServer;

#[cfg(doc)]
use crate::{CheckSummary, NodeStats};

/// The protocol version this build speaks (2: dead letters listed in pages, without their
/// payloads).
pub const PROTOCOL_VERSION: u32 = 2;

/// The longest request line the node reads.
pub(crate) const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The longest answer line the client reads (every result is far smaller; a node that sends
/// more is refused, not buffered).
pub(crate) const MAX_ANSWER_BYTES: usize = 16 << 20;

/// Most dead letters per page of [`AdminRequest::DeadLetters`].
pub const MAX_DEAD_LETTERS_PER_PAGE: usize = 1_000;

/// What a client asks of the running node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum AdminRequest {
    /// Figures of every store ([`NodeStats`]).
    Stats,
    /// Integrity checks on snapshots ([`CheckSummary`]); `state`: also the state trie.
    Check {
        /// Also recompute the state root and compare it with the stored trie.
        state: bool,
    },
    /// Compact every table (`bool`: whether the engine can).
    Compact,
    /// Prune the chain and/or the DAG ([`PruneSummary`](crate::PruneSummary)).
    Prune {
        /// Keep the last N blocks' bodies, receipts and change sets.
        chain_keep: Option<u64>,
        /// Prune DAG vertices below this height.
        dag_below: Option<u64>,
    },
    /// A page of the dead letters, without their payloads
    /// ([`DeadLetterPage`](crate::DeadLetterPage)).
    DeadLetters {
        /// Ids above this one (`None`: from the first).
        after: Option<u64>,
        /// At most this many (capped at [`MAX_DEAD_LETTERS_PER_PAGE`]).
        limit: u32,
    },
    /// Replay dead letters (`None`: all) ([`Replayed`](crate::Replayed)).
    ReplayDeadLetters {
        /// Which ones.
        ids: Option<Vec<u64>>,
    },
    /// Take a backup now, with progress ([`BackupReport`](crate::BackupReport)).
    Backup {
        /// Physical or logical.
        kind: BackupKind,
    },
    /// The backup schedule ([`ScheduleStatus`](crate::ScheduleStatus)).
    ScheduleStatus,
}

impl AdminRequest {
    /// The operation's name, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            AdminRequest::Stats => "stats",
            AdminRequest::Check { .. } => "check",
            AdminRequest::Compact => "compact",
            AdminRequest::Prune { .. } => "prune",
            AdminRequest::DeadLetters { .. } => "dead_letters",
            AdminRequest::ReplayDeadLetters { .. } => "replay_dead_letters",
            AdminRequest::Backup { .. } => "backup",
            AdminRequest::ScheduleStatus => "schedule_status",
        }
    }
}

/// The request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// [`PROTOCOL_VERSION`] of the client.
    pub version: u32,
    /// The request.
    pub request: AdminRequest,
}

/// One line of the node's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frame {
    /// A phase of a long operation starts (`total` bytes; 0: unknown).
    Phase {
        /// Its name.
        name: String,
        /// Its size.
        total: u64,
    },
    /// Progress within the phase.
    Advance {
        /// Bytes done since the last frame.
        bytes: u64,
    },
    /// The operation's result.
    Done {
        /// As JSON: the request's result type.
        result: serde_json::Value,
    },
    /// The operation failed, or the request was refused.
    Failed {
        /// The error's kind (`refused`, `protocol`, or a storage error's kind).
        kind: String,
        /// The error, one line.
        message: String,
    },
}

/// This process's effective user.
pub(crate) fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}
