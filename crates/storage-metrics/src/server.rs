//! The HTTP endpoint: `/metrics` (Prometheus text), `/metrics.json`, `/health`.
//!
//! It runs inside the node's process, so nothing a client sends may cost the node more than a
//! small, fixed amount: hyper (HTTP/1.1 only) on a single-threaded Tokio runtime in a thread of
//! its own, with
//!
//! * a cap on open connections ([`MetricsConfig::max_connections`]): past it, new connections
//!   are closed at once (no thread, no buffer per connection);
//! * request heads capped at 16 KiB; request bodies never read (a declared `Content-Length`
//!   allocates nothing), and a connection whose body was not read is closed after the answer;
//! * a deadline per connection ([`MetricsConfig::connection_timeout_ms`]) covering idle,
//!   slow and stalled clients.
//!
//! Responses are rendered on the blocking pool, so a slow scrape does not hold up the others.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{Semaphore, oneshot};

use crate::{Metrics, MetricsConfig, MetricsError, Status};

/// Largest request head (request line and headers) accepted, bytes.
const MAX_HEAD_BYTES: usize = 16 * 1024;

/// A running endpoint; stops when dropped.
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer").field("addr", &self.addr).finish()
    }
}

impl MetricsServer {
    pub(crate) fn start(metrics: Metrics, config: &MetricsConfig) -> Result<Self, MetricsError> {
        let addr = config.listen;
        let listen_error = |e: std::io::Error| MetricsError::Listen { addr, reason: e.to_string() };
        // Nothing here may need a runtime on the calling thread: `start` is called from inside
        // other runtimes (the CLI's `serve`), where `block_on`, and dropping a runtime, panic.
        // So the socket is bound with the standard library and the endpoint's runtime is built,
        // used and dropped on its own thread, which reports whether it could start.
        let listener = std::net::TcpListener::bind(addr).map_err(listen_error)?;
        listener.set_nonblocking(true).map_err(listen_error)?;
        let bound = listener.local_addr().map_err(listen_error)?;
        let limits = Limits {
            connections: Arc::new(Semaphore::new(config.max_connections)),
            timeout: Duration::from_millis(config.connection_timeout_ms),
        };
        let (stop_tx, stop_rx) = oneshot::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel::<std::io::Result<()>>(1);
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .max_blocking_threads(4)
                    .thread_name("metrics-http-render")
                    .build();
                let runtime = match runtime {
                    Ok(runtime) => runtime,
                    Err(e) => return drop(ready_tx.send(Err(e))),
                };
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            let _ = ready_tx.send(Ok(()));
                            serve(listener, metrics, limits, stop_rx).await
                        }
                        Err(e) => drop(ready_tx.send(Err(e))),
                    }
                })
            })
            .map_err(listen_error)?;
        let ready = ready_rx.recv().unwrap_or_else(|_| Err(std::io::Error::other("the endpoint's thread ended")));
        if let Err(e) = ready {
            let _ = thread.join();
            return Err(listen_error(e));
        }
        tracing::info!(addr = %bound, "serving /metrics, /metrics.json and /health");
        Ok(MetricsServer { addr: bound, stop: Some(stop_tx), thread: Some(thread) })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[derive(Clone)]
struct Limits {
    connections: Arc<Semaphore>,
    timeout: Duration,
}

async fn serve(listener: tokio::net::TcpListener, metrics: Metrics, limits: Limits, mut stop: oneshot::Receiver<()>) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors, for example: back off instead of spinning.
                    tracing::warn!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = limits.connections.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "metrics endpoint: connection limit reached; closing");
            drop(stream);
            continue;
        };
        let metrics = metrics.clone();
        let timeout = limits.timeout;
        tokio::spawn(async move {
            let service = service_fn(move |req| respond(metrics.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(MAX_HEAD_BYTES)
                .serve_connection(TokioIo::new(stream), service);
            if tokio::time::timeout(timeout, conn).await.is_err() {
                tracing::debug!(%peer, "metrics endpoint: connection deadline passed; closed");
            }
            drop(permit);
        });
    }
}

type Body = Full<Bytes>;

async fn respond(metrics: Metrics, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    // The body is never read: dropping the request discards it, and hyper closes the
    // connection rather than draining an unread body.
    drop(req);
    let rendered = tokio::task::spawn_blocking(move || render(&metrics, &method, &path)).await;
    let (status, content_type, body) =
        rendered.unwrap_or_else(|_| (StatusCode::INTERNAL_SERVER_ERROR, "text/plain", "rendering failed\n".to_owned()));
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(response)
}

fn render(metrics: &Metrics, method: &Method, path: &str) -> (StatusCode, &'static str, String) {
    if method != Method::GET {
        return (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "only GET\n".into());
    }
    match path {
        "/metrics" => (StatusCode::OK, "text/plain; version=0.0.4", metrics.render()),
        "/metrics.json" => (StatusCode::OK, "application/json", metrics.render_json().to_string()),
        "/health" => {
            let health = metrics.health();
            let code = if health.status == Status::Failing { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::OK };
            (code, "application/json", serde_json::to_string(&health).unwrap_or_default())
        }
        _ => (StatusCode::NOT_FOUND, "text/plain", "not found: try /metrics, /metrics.json or /health\n".into()),
    }
}
