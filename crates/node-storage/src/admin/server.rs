//! The node's side: the socket, the peer check, one request per connection.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use storage_backup::Progress;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, watch};

use super::{Envelope, FailureKind, Frame, MAX_REQUEST_BYTES, PROTOCOL_VERSION, effective_uid};
use crate::error::{ErrorKind, StorageError};
use crate::ops::Operate;

/// Connections served at once; more are refused as busy.
const MAX_CONNECTIONS: usize = 8;
/// How long a client has to send its request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one answer line may wait for a client that does not read; then the connection is
/// closed (the operation itself goes on to its end either way).
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// The admin endpoint while it listens. Dropping it (or shutting the handle down) stops it,
/// closes its connections and removes the socket; operations already started run to their end
/// (a backup is not torn).
#[derive(Debug)]
pub struct AdminServer {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Listens on the admin socket at `path` on the current tokio runtime, running each request's
/// operation on `node` (see `StorageHandle::serve_admin`).
pub(crate) fn listen<O: Operate>(node: O, path: PathBuf) -> Result<AdminServer, StorageError> {
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| StorageError::Internal("the admin endpoint needs a tokio runtime".into()))?;
    let io =
        |action: &'static str, source: std::io::Error| StorageError::AdminSocket { path: path.clone(), action, source };
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        if !meta.file_type().is_socket() {
            return Err(io("exists and is not a socket", std::io::ErrorKind::AlreadyExists.into()));
        }
        if std::os::unix::net::UnixStream::connect(&path).is_ok() {
            return Err(io("another process listens on it", std::io::ErrorKind::AddrInUse.into()));
        }
        std::fs::remove_file(&path).map_err(|e| io("removing the stale socket", e))?;
    }
    // Bound inside a private directory (0700) and made owner-only there, where nobody else
    // can swap the socket for a symbolic link before the `chmod`; then renamed into place.
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let private = parent.join(format!(".admin-{}-{}", std::process::id(), storage_backup::now_ms()));
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().mode(0o700).create(&private).map_err(|e| io("creating its directory", e))?;
    }
    let staged = private.join("admin.sock");
    let bound = (|| {
        let listener = {
            let _guard = runtime.enter();
            UnixListener::bind(&staged).map_err(|e| io("binding", e))?
        };
        std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("restricting to the owner", e))?;
        std::fs::rename(&staged, &path).map_err(|e| io("moving into place", e))?;
        Ok::<_, StorageError>(listener)
    })();
    let _ = std::fs::remove_dir_all(&private);
    let listener = bound?;
    tracing::info!(socket = %path.display(), "admin endpoint listening");
    let task = runtime.spawn(async move {
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        // Owned here: when the server stops (this task is aborted), its connections go too.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "admin endpoint: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = tick.tick() => {
                    if node.is_closing() {
                        return;
                    }
                    continue;
                }
            };
            let node = node.clone();
            let slot = slots.clone().try_acquire_owned();
            connections.spawn(async move {
                let mut stream = stream;
                match slot {
                    Ok(_slot) => serve(&node, &mut stream).await,
                    Err(_) => {
                        let busy = format!("the node serves {MAX_CONNECTIONS} admin connections at once; retry");
                        let _ = send(&mut stream, &Frame::Failed { kind: FailureKind::Busy, message: busy }).await;
                    }
                }
            });
        }
    });
    Ok(AdminServer { path, task })
}

/// One connection: the peer check, the request, the answer.
async fn serve<O: Operate>(node: &O, stream: &mut UnixStream) {
    let me = effective_uid();
    let peer = match stream.peer_cred() {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "admin endpoint: no peer credentials; connection refused");
            return;
        }
    };
    if peer.uid() != me {
        tracing::warn!(uid = peer.uid(), pid = ?peer.pid(), "admin endpoint: refused a connection from another user");
        let message =
            format!("the node runs as uid {me} and admits only that user (this connection is uid {})", peer.uid());
        let _ = send(stream, &Frame::Failed { kind: FailureKind::Refused, message }).await;
        return;
    }
    let envelope = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(stream)).await {
        Ok(Ok(Some(e))) => e,
        Ok(Ok(None)) => return, // connected and left (a liveness probe)
        Ok(Err(message)) => {
            let _ = send(stream, &Frame::Failed { kind: FailureKind::Protocol, message }).await;
            return;
        }
        Err(_) => {
            let message = format!("no request within {} s", REQUEST_TIMEOUT.as_secs());
            let _ = send(stream, &Frame::Failed { kind: FailureKind::Protocol, message }).await;
            return;
        }
    };
    let op = envelope.request.name();
    tracing::info!(op, pid = ?peer.pid(), "admin request");
    // The operation runs in a task of its own, so it advances whether or not the client reads:
    // a stalled or departed client never holds it (or what it holds) up.
    let (progress_tx, mut progress) = watch::channel(Progressed::default());
    let (done_tx, mut done) = tokio::sync::oneshot::channel();
    let worker = node.clone();
    tokio::spawn(async move {
        let result = worker.execute(envelope.request, Arc::new(Forward(progress_tx))).await;
        if let Err(e) = &result {
            tracing::warn!(op, error = %e, "admin request failed");
        }
        let _ = done_tx.send(result);
    });
    // Forward progress while it runs (the latest state, as phase and advance frames); the
    // result goes last.
    let mut sent = Progressed::default();
    let result = loop {
        tokio::select! {
            result = &mut done => break result,
            changed = progress.changed() => {
                if changed.is_err() {
                    continue;
                }
                let now = progress.borrow_and_update().clone();
                for frame in sent.frames_to(&now) {
                    if !send_or_give_up(stream, &frame).await {
                        tracing::info!(op, "admin client gone or not reading; the operation goes on");
                        return;
                    }
                }
                sent = now;
            }
        }
    };
    let now = progress.borrow().clone();
    for frame in sent.frames_to(&now) {
        if !send_or_give_up(stream, &frame).await {
            return;
        }
    }
    let last = match result {
        Ok(Ok(result)) => Frame::Done { result },
        Ok(Err(e)) => Frame::Failed { kind: FailureKind::Storage(e.kind()), message: e.to_string() },
        Err(_) => Frame::Failed {
            kind: FailureKind::Storage(ErrorKind::Internal),
            message: "the operation's task ended without a result".into(),
        },
    };
    send_or_give_up(stream, &last).await;
}

/// Sends `frame`, giving up on a client that does not take it within [`WRITE_TIMEOUT`].
async fn send_or_give_up(stream: &mut UnixStream, frame: &Frame) -> bool {
    matches!(tokio::time::timeout(WRITE_TIMEOUT, send(stream, frame)).await, Ok(Ok(())))
}

/// How far an operation is: its phase (numbered, so a repeated name is a new phase) and the
/// bytes done in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Progressed {
    phase: u64,
    name: String,
    total: u64,
    done: u64,
}

impl Progressed {
    /// The frames that take a client from `self` to `now`.
    fn frames_to(&self, now: &Progressed) -> Vec<Frame> {
        let mut out = Vec::new();
        let mut done = self.done;
        if now.phase != self.phase {
            out.push(Frame::Phase { name: now.name.clone(), total: now.total });
            done = 0;
        }
        if now.done > done {
            out.push(Frame::Advance { bytes: now.done - done });
        }
        out
    }
}

/// Progress of a backup, kept as its latest state (a fixed size, however far the client is
/// behind).
struct Forward(watch::Sender<Progressed>);

impl Progress for Forward {
    fn phase(&self, name: &str, total: u64) {
        self.0.send_modify(|p| *p = Progressed { phase: p.phase + 1, name: name.to_owned(), total, done: 0 });
    }

    fn advance(&self, n: u64) {
        self.0.send_modify(|p| p.done += n);
    }
}

/// The request line: `None` if the client closed without sending one.
async fn read_request(stream: &mut UnixStream) -> Result<Option<Envelope>, String> {
    let mut line = Vec::new();
    let mut reader = BufReader::new(stream).take(MAX_REQUEST_BYTES as u64 + 1);
    let n = reader.read_until(b'\n', &mut line).await.map_err(|e| format!("reading the request: {e}"))?;
    if n == 0 {
        return Ok(None);
    }
    if line.len() > MAX_REQUEST_BYTES {
        return Err(format!("the request is longer than {MAX_REQUEST_BYTES} bytes"));
    }
    // The version first: a newer client's operation this node does not know is a version
    // mismatch, not a malformed request.
    let value: serde_json::Value = serde_json::from_slice(&line).map_err(|e| format!("not an admin request: {e}"))?;
    if let Some(version) = value.get("version").and_then(serde_json::Value::as_u64)
        && version != u64::from(PROTOCOL_VERSION)
    {
        return Err(format!(
            "admin protocol version {version} is not this node's ({PROTOCOL_VERSION}): use the nodestore of the node's \
             build"
        ));
    }
    serde_json::from_value(value).map(Some).map_err(|e| format!("not an admin request: {e}"))
}

async fn send(stream: &mut UnixStream, frame: &Frame) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(frame).map_err(std::io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line).await
}
