//! The client's side: find the running node's socket, check it belongs to this user, ask.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use storage_backup::{BackupKind, Progress};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::{Envelope, FailureKind, Frame, MAX_ANSWER_BYTES, PROTOCOL_VERSION, effective_uid};
use crate::backup::BackupReport;
use crate::check::{CheckSummary, NodeStats, PruneSummary};
use crate::config::Config;
use crate::deadletter::{DeadLetterPage, Replayed};
use crate::error::ErrorKind;
use crate::ops::{Operation, Outcome};
use crate::schedule::ScheduleStatus;

/// Why the admin endpoint could not be used, or what the node answered instead of a result.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The socket exists but reading or connecting to it failed.
    #[error("admin socket {path}: {action}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The socket.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The path is not a socket.
    #[error("admin socket {path} is not a socket: refusing to use it")]
    NotASocket {
        /// The path.
        path: PathBuf,
    },
    /// The socket belongs to another user (it could be planted): refused.
    #[error(
        "admin socket {path} belongs to uid {owner}, not to this user (uid {me}): refusing to talk to it (run nodestore \
         as the node's user)"
    )]
    ForeignSocket {
        /// The path.
        path: PathBuf,
        /// Its owner.
        owner: u32,
        /// This process's user.
        me: u32,
    },
    /// The socket is open to other users: refused.
    #[error("admin socket {path} is accessible to other users (mode {mode:o}; the node creates it 0600): refusing")]
    NotPrivate {
        /// The path.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The process listening runs as another user: refused.
    #[error("the process on admin socket {path} runs as uid {peer}, not as this user (uid {me}): refusing")]
    ForeignPeer {
        /// The path.
        path: PathBuf,
        /// The listening process's user.
        peer: u32,
        /// This process's user.
        me: u32,
    },
    /// The node refused the connection.
    #[error("the running node refused the admin connection: {0}")]
    Refused(String),
    /// The node answered something this client does not understand.
    #[error("admin protocol: {0}")]
    Protocol(String),
    /// The operation ran in the node and failed there.
    #[error("the running node: {message}")]
    Node {
        /// The error's kind (as in metrics).
        kind: ErrorKind,
        /// The error.
        message: String,
    },
}

/// A connection to the running node's admin endpoint; one request per connection.
#[derive(Debug)]
pub struct AdminClient {
    path: PathBuf,
    stream: UnixStream,
}

impl AdminClient {
    /// Connects to the node running on `config`'s data directory. `Ok(None)`: no node is
    /// listening (no socket, or one left behind by a node that is gone). A socket that is not
    /// this user's, or open to others, or served by another user's process, is an error: the
    /// caller must not fall back to opening the store under a node it could not reach.
    pub async fn connect(config: &Config) -> Result<Option<AdminClient>, AdminError> {
        Self::connect_to(&config.admin_socket()).await
    }

    /// [`AdminClient::connect`] to the socket at `path`.
    pub async fn connect_to(path: &Path) -> Result<Option<AdminClient>, AdminError> {
        let path = path.to_owned();
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(AdminError::Io { action: "reading", path, source }),
        };
        let me = effective_uid();
        if !meta.file_type().is_socket() {
            return Err(AdminError::NotASocket { path });
        }
        if meta.uid() != me {
            return Err(AdminError::ForeignSocket { path, owner: meta.uid(), me });
        }
        if meta.mode() & 0o077 != 0 {
            return Err(AdminError::NotPrivate { path, mode: meta.mode() & 0o7777 });
        }
        let stream = match UnixStream::connect(&path).await {
            Ok(s) => s,
            // Left behind by a node that is gone.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound) => {
                return Ok(None);
            }
            Err(source) => return Err(AdminError::Io { action: "connecting", path, source }),
        };
        let peer = stream.peer_cred().map_err(|source| AdminError::Io {
            action: "reading peer credentials",
            path: path.clone(),
            source,
        })?;
        if peer.uid() != me {
            return Err(AdminError::ForeignPeer { path, peer: peer.uid(), me });
        }
        Ok(Some(AdminClient { path, stream }))
    }

    /// The socket connected to.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Figures of every store.
    pub async fn stats(self) -> Result<NodeStats, AdminError> {
        match self.execute(Operation::Stats, None).await? {
            Outcome::Stats(s) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Integrity checks on snapshots (`state`: also the state trie).
    pub async fn check(self, state: bool) -> Result<CheckSummary, AdminError> {
        match self.execute(Operation::Check { state }, None).await? {
            Outcome::Check(c) => Ok(c),
            other => Err(unexpected(&other)),
        }
    }

    /// Compacts every table; `false` if the engine cannot.
    pub async fn compact(self) -> Result<bool, AdminError> {
        match self.execute(Operation::Compact, None).await? {
            Outcome::Compacted(done) => Ok(done),
            other => Err(unexpected(&other)),
        }
    }

    /// Prunes the chain and/or the DAG.
    pub async fn prune(self, chain_keep: Option<u64>, dag_below: Option<u64>) -> Result<PruneSummary, AdminError> {
        match self.execute(Operation::Prune { chain_keep, dag_below }, None).await? {
            Outcome::Pruned(p) => Ok(p),
            other => Err(unexpected(&other)),
        }
    }

    /// Up to `limit` dead letters with ids above `after`, oldest first, without payloads (the
    /// node sends at most [`super::MAX_DEAD_LETTERS_PER_PAGE`]).
    pub async fn dead_letter_page(self, after: Option<u64>, limit: u32) -> Result<DeadLetterPage, AdminError> {
        match self.execute(Operation::DeadLetters { after, limit }, None).await? {
            Outcome::DeadLetters(page) => Ok(page),
            other => Err(unexpected(&other)),
        }
    }

    /// Replays dead letters (`None`: all).
    pub async fn replay_dead_letters(self, ids: Option<Vec<u64>>) -> Result<Vec<Replayed>, AdminError> {
        match self.execute(Operation::ReplayDeadLetters { ids }, None).await? {
            Outcome::Replayed(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// Takes a backup now; the node's progress is reported to `progress`.
    pub async fn backup(self, kind: BackupKind, progress: Arc<dyn Progress>) -> Result<BackupReport, AdminError> {
        match self.execute(Operation::Backup { kind }, Some(progress)).await? {
            Outcome::BackedUp(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// The backup schedule.
    pub async fn schedule_status(self) -> Result<ScheduleStatus, AdminError> {
        match self.execute(Operation::ScheduleStatus, None).await? {
            Outcome::Schedule(Some(s)) => Ok(s),
            other => Err(unexpected(&other)),
        }
    }

    /// Runs `op` in the node; its progress (of a backup) goes to `progress`.
    pub async fn execute(self, op: Operation, progress: Option<Arc<dyn Progress>>) -> Result<Outcome, AdminError> {
        let AdminClient { path, stream } = self;
        let io = |action, source| AdminError::Io { action, path: path.clone(), source };
        let mut line = serde_json::to_vec(&Envelope { version: PROTOCOL_VERSION, request: op })
            .map_err(|e| AdminError::Protocol(e.to_string()))?;
        line.push(b'\n');
        let (read, mut write) = stream.into_split();
        write.write_all(&line).await.map_err(|e| io("sending the request", e))?;
        let mut reader = BufReader::new(read);
        let mut line = Vec::new();
        loop {
            // One line at a time, never more than MAX_ANSWER_BYTES of it.
            line.clear();
            let n = (&mut reader)
                .take(MAX_ANSWER_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .await
                .map_err(|e| io("reading the answer", e))?;
            if n == 0 {
                return Err(AdminError::Protocol("the node closed the connection before answering".into()));
            }
            if line.len() > MAX_ANSWER_BYTES {
                return Err(AdminError::Protocol(format!("an answer line is longer than {MAX_ANSWER_BYTES} bytes")));
            }
            let frame: Frame =
                serde_json::from_slice(&line).map_err(|e| AdminError::Protocol(format!("unreadable answer: {e}")))?;
            match frame {
                Frame::Phase { name, total } => {
                    if let Some(p) = &progress {
                        p.phase(&name, total);
                    }
                }
                Frame::Advance { bytes } => {
                    if let Some(p) = &progress {
                        p.advance(bytes);
                    }
                }
                Frame::Done { result } => return Ok(result),
                Frame::Failed { kind, message } => {
                    return Err(match kind {
                        FailureKind::Refused | FailureKind::Busy => AdminError::Refused(message),
                        FailureKind::Protocol => AdminError::Protocol(message),
                        FailureKind::Storage(kind) => AdminError::Node { kind, message },
                    });
                }
            }
        }
    }
}

/// The answer to a request of another outcome than its own (a node speaking the protocol
/// wrongly).
fn unexpected(outcome: &Outcome) -> AdminError {
    AdminError::Protocol(format!("the node answered with an outcome of another operation: {outcome:?}"))
}
