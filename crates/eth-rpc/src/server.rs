//! The HTTP server: jsonrpsee's, configured from `[rpc]`.

use std::net::SocketAddr;

use jsonrpsee::RpcModule;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use storage_metrics::Metrics;

use crate::config::RpcConfig;
use crate::methods;
use crate::source::EthSource;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("cannot listen for JSON-RPC on {addr} ([rpc] listen): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// A running endpoint. Dropping it does not stop it: call [`RpcServer::stop`].
#[derive(Debug)]
pub struct RpcServer {
    addr: SocketAddr,
    handle: ServerHandle,
}

impl RpcServer {
    /// The address it listens on (the bound port when `[rpc] listen` asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets calls in flight finish, and returns when it has stopped.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}

/// The methods over `source`, for a node that mounts them on a server of its own (merge them
/// into its module). The concurrency limit, timeout, `eth_getLogs` limits and metrics of
/// `config` apply; the request, response, batch and connection limits are the server's.
pub fn module<S: EthSource>(source: S, config: &RpcConfig, metrics: Option<Metrics>) -> RpcModule<()> {
    methods::module(source, config, metrics).remove_context()
}

/// Serves the methods over `source` on `config.listen` (HTTP, JSON-RPC 2.0 with batches) with
/// every limit of `config`. Needs a Tokio runtime.
pub async fn serve<S: EthSource>(
    source: S,
    config: &RpcConfig,
    metrics: Option<Metrics>,
) -> Result<RpcServer, ServeError> {
    let settings = ServerConfig::builder()
        .http_only()
        .max_request_body_size(config.max_request_bytes)
        .max_response_body_size(config.max_response_bytes)
        .max_connections(config.max_connections)
        .set_batch_request_config(BatchRequestConfig::Limit(config.max_batch))
        .build();
    let bind = |source| ServeError::Bind { addr: config.listen, source };
    let server = Server::builder().set_config(settings).build(config.listen).await.map_err(bind)?;
    let addr = server.local_addr().map_err(bind)?;
    let handle = server.start(module(source, config, metrics));
    Ok(RpcServer { addr, handle })
}
