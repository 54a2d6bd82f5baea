//! The HTTP endpoint: `/metrics` (Prometheus text), `/metrics.json`, `/health`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use tiny_http::{Header, Method, Response, Server};

use crate::{Metrics, MetricsError, Status};

/// A running endpoint; stops when dropped.
pub struct MetricsServer {
    server: Arc<Server>,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer").field("addr", &self.addr).finish()
    }
}

impl MetricsServer {
    pub(crate) fn start(metrics: Metrics, addr: SocketAddr) -> Result<Self, MetricsError> {
        let server = Arc::new(Server::http(addr).map_err(|e| MetricsError::Listen { addr, reason: e.to_string() })?);
        let bound = server.server_addr().to_ip().unwrap_or(addr);
        let serving = server.clone();
        let thread = std::thread::Builder::new()
            .name("metrics-http".into())
            .spawn(move || {
                for request in serving.incoming_requests() {
                    let response = respond(&metrics, request.method(), request.url());
                    if let Err(e) = request.respond(response) {
                        tracing::debug!(error = %e, "metrics client went away");
                    }
                }
            })
            .map_err(|e| MetricsError::Listen { addr, reason: e.to_string() })?;
        tracing::info!(addr = %bound, "serving /metrics, /metrics.json and /health");
        Ok(MetricsServer { server, addr: bound, thread: Some(thread) })
    }

    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn header(value: &str) -> Header {
    Header::from_bytes("Content-Type", value).expect("static header is valid")
}

fn respond(metrics: &Metrics, method: &Method, url: &str) -> Response<std::io::Cursor<Vec<u8>>> {
    if *method != Method::Get {
        return Response::from_string("only GET\n").with_status_code(405);
    }
    let path = url.split('?').next().unwrap_or(url);
    match path {
        "/metrics" => Response::from_string(metrics.render()).with_header(header("text/plain; version=0.0.4")),
        "/metrics.json" => {
            Response::from_string(metrics.render_json().to_string()).with_header(header("application/json"))
        }
        "/health" => {
            let health = metrics.health();
            let code = if health.status == Status::Failing { 503 } else { 200 };
            let body = serde_json::to_string(&health).unwrap_or_default();
            Response::from_string(body).with_header(header("application/json")).with_status_code(code)
        }
        _ => Response::from_string("not found: try /metrics, /metrics.json or /health\n").with_status_code(404),
    }
}
