//! [`StorageHandle`]: the async API a node embeds. Opening, shutdown and health here; the
//! writes (one enqueue path, typed answers) in `write`, the reads in `read`, operator
//! operations (checks, figures, pruning, dead letters, [`StorageHandle::execute`]) in
//! `operations`, backups in `backup`, the backup schedule in `schedule`, the admin endpoint in
//! `serve`. Every `impl StorageHandle` is under this module.

mod backup;
mod operations;
mod read;
mod schedule;
mod serve;
mod write;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chain_store::synthetic::Synthetic;
use chain_store::{
    AddressPage, AddressQuery, Block, BlockRef, ChainModel, IntegrityReport as ChainReport, Located, LogFilter,
    LogMatchOf, NewBlock, Pointers, PruneReport as ChainPruneReport, Reorg, TxInBlock, TxLocation,
};
use dag_store::{IntegrityReport as DagReport, PruneReport as DagPruneReport, StoredVertex, Vertex, VertexHash};
use storage_metrics::{Event, Health, Metrics, MetricsServer};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::backend::Backend;
use crate::breaker::BreakerState;
use crate::check::StoreStats;
use crate::config::Config;
use crate::deadletter::{self, DeadLetter, DeadLetterPage, DeadLetters, Replayed};
use crate::error::StorageError;
use crate::request::{Op, Reply, Request};
use crate::shared::Shared;
use crate::{maintenance, writer};

/// The storage of one node: chain and DAG stores behind caches, a writer thread with priority
/// lanes and group commit, metrics and scheduled maintenance. Clone it freely; the last clone
/// dropped (or [`StorageHandle::shutdown`]) drains the lanes and syncs.
///
/// Reads run on the caller's task when the cache answers and on the blocking pool otherwise;
/// they never queue behind writes. Writes resolve once durable.
pub struct StorageHandle<B: Backend, M: ChainModel = Synthetic> {
    shared: Arc<Shared<B, M>>,
    threads: Arc<Threads>,
}

impl<B: Backend, M: ChainModel> Clone for StorageHandle<B, M> {
    fn clone(&self) -> Self {
        StorageHandle { shared: self.shared.clone(), threads: self.threads.clone() }
    }
}

impl<B: Backend, M: ChainModel> std::fmt::Debug for StorageHandle<B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StorageHandle")
            .field("backend", &B::KIND)
            .field("data_dir", &self.shared.config.data_dir)
            .finish()
    }
}

/// The background threads; stopped when the last handle goes.
struct Threads {
    stop_writer: Mutex<Option<oneshot::Sender<()>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
    maintenance: Mutex<Option<maintenance::Scheduler>>,
    uploader: Mutex<Option<crate::uploader::Uploader>>,
    server: Mutex<Option<MetricsServer>>,
    closing: Arc<dyn Fn() + Send + Sync>,
}

impl Threads {
    fn stop(&self) {
        (self.closing)();
        if let Some(u) = self.uploader.lock().unwrap_or_else(|p| p.into_inner()).take() {
            u.stop();
        }
        if let Some(m) = self.maintenance.lock().unwrap_or_else(|p| p.into_inner()).take() {
            m.stop();
        }
        if let Some(tx) = self.stop_writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.writer.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
        self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}

impl Drop for Threads {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A write in its lane: what waiting for its answer needs.
struct Sent {
    id: String,
    at: Instant,
    timeout: Duration,
    span: tracing::Span,
}

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Opens (creating if needed) the stores under `config.data_dir` on engine `B`, and
    /// starts the writer and the maintenance scheduler. Does not need a runtime; the async
    /// methods need a Tokio runtime with timers enabled.
    pub fn open(config: Config) -> Result<Self, StorageError> {
        let metrics = Metrics::new(&config.metrics)?;
        let opened = Shared::<B, M>::open(config, metrics)?;
        let shared = opened.shared.clone();
        shared.metrics.set_source(Arc::new(crate::shared::MetricsSource(Arc::downgrade(&shared))));
        let (stop_tx, stop_rx) = oneshot::channel();
        let writer = writer::spawn(opened, stop_rx)?;
        let closing_shared = shared.clone();
        let threads = Arc::new(Threads {
            stop_writer: Mutex::new(Some(stop_tx)),
            writer: Mutex::new(Some(writer)),
            maintenance: Mutex::new(None),
            uploader: Mutex::new(None),
            server: Mutex::new(None),
            closing: Arc::new(move || closing_shared.intake.close()),
        });
        let handle = StorageHandle { shared, threads };
        let scheduler = maintenance::Scheduler::start(handle.clone_for_maintenance())?;
        *handle.threads.maintenance.lock().unwrap_or_else(|p| p.into_inner()) = Some(scheduler);
        if handle.shared.history.is_some() {
            let uploader = crate::uploader::Uploader::start(Arc::downgrade(&handle.shared))?;
            *handle.threads.uploader.lock().unwrap_or_else(|p| p.into_inner()) = Some(uploader);
        }
        tracing::info!(backend = %B::KIND, data_dir = %handle.shared.config.data_dir.display(), "node-storage open");
        Ok(handle)
    }

    /// The maintenance thread's view: the shared state without keeping the threads alive.
    fn clone_for_maintenance(&self) -> maintenance::Target<B, M> {
        maintenance::Target { shared: Arc::downgrade(&self.shared) }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The metrics (render them, or serve them with [`StorageHandle::serve_metrics`]).
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Serves `/metrics`, `/metrics.json` and `/health` on `config.metrics.listen` (loopback
    /// by default) until the handle shuts down. Returns the bound address.
    pub fn serve_metrics(&self) -> Result<std::net::SocketAddr, StorageError> {
        let server = self.shared.metrics.serve(&self.shared.config.metrics)?;
        let addr = server.addr();
        *self.threads.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
        Ok(addr)
    }

    /// Lane depths, breaker state, last error, poisoned flag.
    pub fn health(&self) -> Health {
        self.shared.health_now()
    }

    /// The circuit breaker's state.
    pub fn breaker(&self) -> BreakerState {
        self.shared.intake.breaker().state()
    }

    /// Stops maintenance, drains every lane (queued writes still commit), syncs, and stops
    /// the writer. Later requests fail with `ShuttingDown`.
    pub async fn shutdown(&self) {
        let threads = self.threads.clone();
        let _ = tokio::task::spawn_blocking(move || threads.stop()).await;
    }
}
