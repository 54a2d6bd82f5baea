//! `nodestore serve`: the node runs here — maintenance, scheduled backups, history uploads,
//! `/metrics`, the admin endpoint and (`--rpc`, Ethereum) the JSON-RPC endpoint — until
//! Ctrl-C. `--replica serve --rpc` runs only the JSON-RPC endpoint, on a replica.

use anyhow::Context;
use node_storage::eth::Eth;
use node_storage::{Backend, Config, NodeModel, ReplicaBackend, ReplicaHandle, StorageHandle};

/// What runs beside the node: the JSON-RPC endpoint or nothing (the routing picks by model).
pub(crate) trait Rpc<B: Backend, M: NodeModel> {
    /// Starts it on the node's handle.
    fn start(
        self,
        h: &StorageHandle<B, M>,
    ) -> impl Future<Output = anyhow::Result<Option<node_storage::rpc::RpcServer>>>;
}

/// No endpoint.
pub(crate) struct NoRpc;

impl<B: Backend, M: NodeModel> Rpc<B, M> for NoRpc {
    async fn start(self, _: &StorageHandle<B, M>) -> anyhow::Result<Option<node_storage::rpc::RpcServer>> {
        Ok(None)
    }
}

/// The Ethereum JSON-RPC endpoint on the node's handle, its calls in the node's metrics.
pub(crate) struct EthRpc;

impl<B: Backend> Rpc<B, Eth> for EthRpc {
    async fn start(self, h: &StorageHandle<B, Eth>) -> anyhow::Result<Option<node_storage::rpc::RpcServer>> {
        let server = node_storage::rpc::serve(h.clone(), &h.config().rpc, Some(h.metrics().clone())).await?;
        eprintln!("serving Ethereum JSON-RPC (read-only) on http://{}", server.addr());
        Ok(Some(server))
    }
}

/// Runs the node until Ctrl-C, then stops the endpoint and drains its lanes.
pub(crate) async fn run<B: Backend, M: NodeModel, R: Rpc<B, M>>(config: Config, rpc: R) -> anyhow::Result<()> {
    let h: StorageHandle<B, M> = StorageHandle::open(config).context("opening the store")?;
    let result = serve(&h, rpc).await;
    h.shutdown().await;
    result
}

async fn serve<B: Backend, M: NodeModel, R: Rpc<B, M>>(h: &StorageHandle<B, M>, rpc: R) -> anyhow::Result<()> {
    let addr = if h.config().metrics.enabled { Some(h.serve_metrics()?) } else { None };
    if let Some(_schedule) = h.spawn_backup_schedule() {
        eprintln!("backups every {} s to {}", h.config().backup.schedule_interval_secs, h.config().backup.destination);
    }
    let _admin = if h.config().admin.enabled {
        let server = h.serve_admin()?;
        eprintln!(
            "admin endpoint on {} (owner only): nodestore stats, check, compact, prune, dead-letter and backup \
             create|schedule run through it",
            server.path().display()
        );
        Some(server)
    } else {
        None
    };
    if h.config().history.kind.is_some() && h.config().history.upload {
        eprintln!(
            "uploading finalized history to the archive ([history]); `nodestore --replica archive status` shows how far"
        );
    }
    let rpc = rpc.start(h).await?;
    match addr {
        Some(a) => eprintln!("serving http://{a}/metrics, /metrics.json and /health; Ctrl-C to stop"),
        None => eprintln!("running (metrics endpoint disabled); Ctrl-C to stop"),
    }
    tokio::signal::ctrl_c().await?;
    if let Some(server) = rpc {
        server.stop().await;
    }
    eprintln!("stopping: draining the write lanes");
    Ok(())
}

/// The JSON-RPC endpoint on a replica of the node running on `config.data_dir`, until Ctrl-C.
/// Its calls are counted in metrics of its own, served on `[metrics] listen` unless that
/// address is taken (by the node itself, with the default configuration): then it says so and
/// serves without.
pub(crate) async fn replica<B: ReplicaBackend>(config: Config) -> anyhow::Result<()> {
    let replica = ReplicaHandle::<B, Eth>::open(config.clone()).context("opening a replica of the running node")?;
    let metrics = if config.metrics.enabled {
        let m = node_storage::metrics::Metrics::new(&config.metrics)?;
        match m.serve(&config.metrics) {
            Ok(server) => {
                eprintln!("serving http://{}/metrics for this endpoint", server.addr());
                Some((m, server))
            }
            Err(e) => {
                eprintln!(
                    "warning: no metrics endpoint for this replica ({e}); give it another `[metrics] listen` to \
                     have one"
                );
                None
            }
        }
    } else {
        None
    };
    let server = node_storage::rpc::serve(replica, &config.rpc, metrics.as_ref().map(|(m, _)| m.clone())).await?;
    eprintln!(
        "serving Ethereum JSON-RPC (read-only) on http://{} from a replica of {} (caught up every {} ms); Ctrl-C to stop",
        server.addr(),
        config.data_dir.display(),
        config.replica.catch_up_interval_ms
    );
    tokio::signal::ctrl_c().await?;
    server.stop().await;
    Ok(())
}
