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
//! [`Envelope`] line holding an [`Operation`]; the node answers with zero or more progress
//! [`Frame`]s and then exactly one `done` (the operation's [`Outcome`]) or `failed` (a
//! [`FailureKind`] and the message) frame. The operation and outcome are the same types the
//! CLI runs and renders when it opens the stores itself (see [`crate::ops`]), so its output is
//! the same either way.

mod client;
mod server;

use serde::{Deserialize, Serialize};

pub use client::{AdminClient, AdminError};
pub use server::AdminServer;
pub(crate) use server::listen;

use crate::error::ErrorKind;
pub use crate::ops::MAX_DEAD_LETTERS_PER_PAGE;
use crate::ops::{Operation, Outcome};

/// The protocol version this build speaks (3: typed outcomes and failure kinds).
pub const PROTOCOL_VERSION: u32 = 3;

/// The longest request line the node reads.
pub(crate) const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// The longest answer line the client reads (every result is far smaller; a node that sends
/// more is refused, not buffered).
pub(crate) const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The request line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// [`PROTOCOL_VERSION`] of the client.
    pub version: u32,
    /// The operation.
    pub request: Operation,
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
        /// The outcome.
        result: Outcome,
    },
    /// The operation failed, or the request was refused.
    Failed {
        /// Why, by kind.
        kind: FailureKind,
        /// The error, one line.
        message: String,
    },
}

/// Why the node answered `failed`: the endpoint refused the connection or the request, or the
/// operation ran and failed (with its [`ErrorKind`], as metrics label it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The connection's user is not the node's.
    Refused,
    /// The node serves as many connections as it takes; retry.
    Busy,
    /// The request was malformed, late, or of another protocol version.
    Protocol,
    /// The operation ran and failed.
    #[serde(untagged)]
    Storage(ErrorKind),
}

/// This process's effective user.
pub(crate) fn effective_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}
