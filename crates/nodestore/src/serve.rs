//! `nodestore serve`: the node runs here — maintenance, scheduled backups, history uploads,
//! `/metrics` and the admin endpoint — until Ctrl-C.

use anyhow::Context;
use node_storage::{Backend, Config, NodeModel, StorageHandle};

/// Runs the node until Ctrl-C, then drains its lanes.
pub(crate) async fn run<B: Backend, M: NodeModel>(config: Config) -> anyhow::Result<()> {
    let h: StorageHandle<B, M> = StorageHandle::open(config).context("opening the store")?;
    let result = serve(&h).await;
    h.shutdown().await;
    result
}

async fn serve<B: Backend, M: NodeModel>(h: &StorageHandle<B, M>) -> anyhow::Result<()> {
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
    match addr {
        Some(a) => eprintln!("serving http://{a}/metrics, /metrics.json and /health; Ctrl-C to stop"),
        None => eprintln!("running (metrics endpoint disabled); Ctrl-C to stop"),
    }
    tokio::signal::ctrl_c().await?;
    eprintln!("stopping: draining the write lanes");
    Ok(())
}
