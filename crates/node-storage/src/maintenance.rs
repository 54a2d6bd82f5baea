//! The maintenance scheduler: periodic pruning (per the retention config) and compaction
//! through the low-priority lane, and service-level evaluation, each visible in metrics and
//! logs.

use std::sync::Weak;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use chain_store::ChainModel;

use crate::backend::Backend;
use crate::error::StorageError;
use crate::request::{Op, Reply, Request};
use crate::shared::Shared;

/// What the scheduler works on (weak: it must not keep a dropped handle alive).
pub(crate) struct Target<B: Backend, M: ChainModel> {
    pub(crate) shared: Weak<Shared<B, M>>,
}

pub(crate) struct Scheduler {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Scheduler {
    pub(crate) fn start<B: Backend, M: ChainModel>(target: Target<B, M>) -> Result<Self, StorageError> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("node-storage-maintenance".into())
            .spawn(move || run(target, stopped))
            .map_err(|e| StorageError::Internal(format!("starting the maintenance thread: {e}")))?;
        Ok(Scheduler { stop, thread })
    }

    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.thread.join();
    }
}

fn run<B: Backend, M: ChainModel>(target: Target<B, M>, stopped: mpsc::Receiver<()>) {
    let start = Instant::now();
    let (mut last_slo, mut last_prune, mut last_compact) = (start, start, start);
    loop {
        match stopped.recv_timeout(Duration::from_millis(250)) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(shared) = target.shared.upgrade() else { return };
        let now = Instant::now();
        let c = &shared.config;
        if now.duration_since(last_slo) >= Duration::from_secs(c.metrics.slo.window_s) {
            last_slo = now;
            let report = shared.metrics.evaluate_slos();
            if report.violated() {
                tracing::warn!(?report, "service-level threshold broken in the last window");
            }
        }
        let prune_every = c.retention.prune_interval_s;
        if prune_every > 0 && now.duration_since(last_prune) >= Duration::from_secs(prune_every) {
            last_prune = now;
            // What the archive holds of this node is learned here, off the writer thread.
            if let Some(h) = &shared.history {
                crate::history::check_archive(h, &shared.stores.chain, &shared.stores.dag);
            }
            if let Some(keep) = c.retention.chain_keep_blocks {
                let started = Instant::now();
                if let Some(r) = task(&shared, "prune_chain", |reply| Op::PruneChain { keep_last: keep, reply }) {
                    let secs = started.elapsed().as_secs_f64();
                    tracing::info!(pruned_below = r.pruned_below, secs, "chain pruned");
                }
            }
            if let Some(keep) = c.retention.dag_keep_heights {
                match dag_boundary(&shared, keep) {
                    Ok(Some(below)) => {
                        let started = Instant::now();
                        if let Some(r) = task(&shared, "prune_dag", |reply| Op::PruneDag { below, reply }) {
                            let secs = started.elapsed().as_secs_f64();
                            tracing::info!(vertices = r.vertices, pruned_below = r.pruned_below, secs, "DAG pruned");
                        }
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot work out the DAG pruning boundary"),
                }
            }
        }
        let compact_every = c.retention.compact_interval_s;
        if compact_every > 0 && now.duration_since(last_compact) >= Duration::from_secs(compact_every) {
            last_compact = now;
            let started = Instant::now();
            // Here, not through the writer: writes go on while the engine compacts.
            let result = compact_stores(&shared);
            let secs = started.elapsed().as_secs_f64();
            shared.metrics.maintenance("compact", secs, result.is_ok());
            match result {
                Ok(done) => tracing::info!(done, secs, "compaction finished"),
                Err(e) => tracing::warn!(error = %e, "compaction failed"),
            }
        }
    }
}

/// Height below which DAG vertices may go: `keep` below the last finalized vertex.
fn dag_boundary<B: Backend, M: ChainModel>(s: &Shared<B, M>, keep: u64) -> Result<Option<u64>, StorageError> {
    let Some((_, hash)) = s.stores.dag.last_finalized()? else { return Ok(None) };
    let Some(v) = s.stores.dag.vertex(&hash)? else { return Ok(None) };
    let below = v.height.saturating_sub(keep);
    Ok((below > s.stores.dag.pruned_below()?).then_some(below))
}

/// Runs one maintenance write through the low lane and waits for its answer (`None` if it
/// failed; the failure is logged and counted). Blocking: the maintenance thread has no runtime.
/// No circuit-breaker admission and a long timeout: maintenance is what brings the node back.
fn task<B: Backend, M: ChainModel, T>(
    s: &Shared<B, M>,
    name: &'static str,
    op: impl FnOnce(Reply<T>) -> Op<M>,
) -> Option<T> {
    let started = Instant::now();
    let id = s.intake.request_id();
    let span = tracing::info_span!("maintenance", id = %id, task = name);
    let _g = span.enter();
    let (reply, rx) = Reply::channel();
    let timeout = Duration::from_millis(s.config.writer.request_timeout_ms).max(Duration::from_secs(3600));
    let request = Request::new(op(reply), id, timeout, span.clone());
    let result = match s.intake.lane(storage_metrics::Lane::Low).blocking_send(request) {
        Ok(()) => rx.blocking_recv().unwrap_or(Err(StorageError::ShuttingDown)),
        Err(_) => Err(StorageError::ShuttingDown),
    };
    s.metrics.maintenance(name, started.elapsed().as_secs_f64(), result.is_ok());
    result.inspect_err(|e| tracing::warn!(error = %e, "maintenance task failed")).ok()
}

/// Compacts the chain and DAG stores; `false` if the engine cannot compact.
pub(crate) fn compact_stores<B: Backend, M: ChainModel>(s: &Shared<B, M>) -> Result<bool, StorageError> {
    use crate::backend::caps::Compaction;
    Ok(B::Compaction::compact(s.stores.chain.store())? & B::Compaction::compact(s.stores.dag.store())?)
}
