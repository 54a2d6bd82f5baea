//! The writer thread: takes requests from three priority lanes, groups them into batches
//! (one atomic engine batch per run of inserts, one sync per group), retries transient
//! failures, feeds the circuit breaker, dead-letters permanent failures, keeps the caches
//! consistent, and acknowledges each request only once its write is durable.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_store::{ChainError, ChainModel};
use dag_store::{DagError, Vertex, VertexHash};
use storage_api::{ReadError, WriteError};
use storage_metrics::{Event, Lane};
use tokio::sync::{mpsc, oneshot};

use crate::backend::Backend;
use crate::error::StorageError;
use crate::request::{Done, Op, Request};
use crate::shared::{Opened, Shared};

type Outcome<M> = Result<Done<M>, StorageError>;

pub(crate) fn spawn<B: Backend, M: ChainModel>(
    opened: Opened<B, M>,
    stop: oneshot::Receiver<()>,
) -> Result<std::thread::JoinHandle<()>, StorageError> {
    let Opened { shared, high, normal, low } = opened;
    std::thread::Builder::new()
        .name("node-storage-writer".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "writer runtime failed to start");
                    return;
                }
            };
            let mut w = Writer { shared, high, normal, low };
            rt.block_on(w.run(stop));
        })
        .map_err(|e| StorageError::Internal(format!("starting the writer thread: {e}")))
}

struct Writer<B: Backend, M: ChainModel> {
    shared: Arc<Shared<B, M>>,
    high: mpsc::Receiver<Request<M>>,
    normal: mpsc::Receiver<Request<M>>,
    low: mpsc::Receiver<Request<M>>,
}

impl<B: Backend, M: ChainModel> Writer<B, M> {
    async fn run(&mut self, mut stop: oneshot::Receiver<()>) {
        loop {
            let first = tokio::select! {
                biased;
                Some(r) = self.high.recv() => r,
                Some(r) = self.normal.recv() => r,
                Some(r) = self.low.recv() => r,
                _ = &mut stop => break,
                else => break,
            };
            self.group_from(first);
        }
        // Shutdown: finish everything already queued, then make it durable.
        while let Some(first) = self.try_next(true) {
            self.group_from(first);
        }
        for (id, store) in self.shared.stores.engines() {
            if let Err(e) = store.sync() {
                tracing::error!(store = id.name(), error = %e, "final sync failed");
            }
        }
        tracing::info!("writer stopped: lanes drained and synced");
    }

    fn try_next(&mut self, include_low: bool) -> Option<Request<M>> {
        self.high
            .try_recv()
            .or_else(|_| self.normal.try_recv())
            .ok()
            .or_else(|| if include_low { self.low.try_recv().ok() } else { None })
    }

    /// Gathers a group behind `first` (maintenance runs alone) and executes it.
    fn group_from(&mut self, first: Request<M>) {
        let w = &self.shared.config.writer;
        let (max_requests, max_bytes) = (w.max_batch_requests, w.max_batch_bytes);
        let low = first.op.lane() == Lane::Low;
        let mut bytes = first.op.bytes();
        let mut group = vec![first];
        if !low {
            while group.len() < max_requests && bytes < max_bytes {
                let Some(next) = self.try_next(false) else { break };
                bytes += next.op.bytes();
                group.push(next);
            }
        }
        self.execute(group, bytes);
    }

    fn execute(&self, group: Vec<Request<M>>, bytes: usize) {
        let s = &*self.shared;
        let now = Instant::now();
        let (live, expired): (Vec<_>, Vec<_>) = group.into_iter().partition(|r| r.deadline > now);
        for r in expired {
            s.metrics.count(Event::Timeouts, 1);
            let after = Duration::from_millis(s.config.writer.request_timeout_ms);
            let _ = r.reply.send(Err(StorageError::Timeout { id: r.id, after }));
        }
        if live.is_empty() {
            return;
        }
        s.metrics.batch(live.len(), bytes);
        for r in &live {
            s.metrics.queue_wait(r.op.lane(), now.duration_since(r.enqueued).as_secs_f64());
        }
        let mut outcomes: Vec<Option<Outcome<M>>> = (0..live.len()).map(|_| None).collect();
        let (mut dag_dirty, mut chain_dirty) = (Vec::new(), Vec::new());
        let mut i = 0;
        while i < live.len() {
            let run_end = |pred: fn(&Op<M>) -> bool| i + live[i..].iter().take_while(|r| pred(&r.op)).count();
            match &live[i].op {
                Op::InsertVertex { .. } => {
                    let j = run_end(|op| matches!(op, Op::InsertVertex { .. }));
                    let run = &live[i..j];
                    let results = self.retrying(run, || self.vertex_run(run));
                    for (k, r) in results.into_iter().enumerate() {
                        if r.is_ok() {
                            dag_dirty.push(i + k);
                        }
                        outcomes[i + k] = Some(r);
                    }
                    i = j;
                }
                Op::InsertBlock(_) => {
                    let j = run_end(|op| matches!(op, Op::InsertBlock(_)));
                    let run = &live[i..j];
                    let results = self.retrying(run, || self.block_run(run));
                    for (k, r) in results.into_iter().enumerate() {
                        if r.is_ok() {
                            chain_dirty.push(i + k);
                        }
                        outcomes[i + k] = Some(r);
                    }
                    i = j;
                }
                _ => {
                    let run = &live[i..=i];
                    let r = self.retrying(run, || Ok(vec![self.single(&live[i])])).pop().expect("one outcome");
                    if r.is_ok() && matches!(live[i].op, Op::InitChain(_)) {
                        chain_dirty.push(i);
                    }
                    outcomes[i] = Some(r);
                    i += 1;
                }
            }
        }
        // One sync per store for the whole group: only now are the buffered writes durable.
        // Only stores that took buffered writes in this group are synced.
        let dag_sync = if dag_dirty.is_empty() { Ok(()) } else { s.stores.dag.store().sync() };
        let chain_sync = if chain_dirty.is_empty() { Ok(()) } else { s.stores.chain.store().sync() };
        for (dirty, sync) in [(&dag_dirty, dag_sync), (&chain_dirty, chain_sync)] {
            if let Err(e) = sync {
                let reason = e.to_string();
                tracing::error!(error = %reason, "group commit sync failed; store poisoned, writes not durable");
                // Each request then counts towards the breaker, as a failed write does.
                for &k in dirty.iter() {
                    outcomes[k] = Some(Err(StorageError::Flush(e.clone())));
                }
            }
        }
        for (r, outcome) in live.into_iter().zip(outcomes) {
            let outcome = outcome.expect("every request has an outcome");
            self.finish(r, outcome);
        }
    }

    /// Runs `f` (a whole run's write), retrying while it fails as a whole with a transient
    /// engine error. A run that fails as a whole gives every request the same failure.
    fn retrying(&self, run: &[Request<M>], f: impl Fn() -> Result<Vec<Outcome<M>>, RunFailure>) -> Vec<Outcome<M>> {
        let w = &self.shared.config.writer;
        let mut attempt = 0;
        let ids: Vec<&str> = run.iter().map(|r| r.id.as_str()).collect();
        let _group = tracing::debug_span!("group_commit", requests = run.len(), ids = ?ids).entered();
        loop {
            match f() {
                Ok(outcomes) => {
                    self.shared.metrics.count(Event::WriteBatches, 1);
                    return outcomes;
                }
                Err(failure) => {
                    let e = StorageError::from(failure.clone());
                    if e.is_transient() && attempt < w.retries {
                        let delay = Duration::from_millis(w.retry_base_ms.saturating_mul(1 << attempt.min(16)));
                        tracing::warn!(error = %e, attempt = attempt + 1, ?delay, "transient write failure, retrying");
                        self.shared.metrics.count(Event::Retries, 1);
                        std::thread::sleep(delay);
                        attempt += 1;
                        continue;
                    }
                    let mut out = vec![Err(e)];
                    out.extend((1..run.len()).map(|_| Err(failure.clone().into())));
                    return out;
                }
            }
        }
    }

    /// One atomic batch for a run of vertex inserts; duplicates coalesce (each caller gets the
    /// outcome of the one write). If the batch is rejected, vertices are inserted one by one
    /// so only the offending requests fail.
    fn vertex_run(&self, run: &[Request<M>]) -> Result<Vec<Outcome<M>>, RunFailure> {
        let mut unique: Vec<(&Vertex, &[u8])> = Vec::new();
        let mut index: HashMap<VertexHash, usize> = HashMap::new();
        let slots: Vec<usize> = run
            .iter()
            .map(|r| {
                let Op::InsertVertex { vertex, signature } = &r.op else { unreachable!("run of vertex inserts") };
                *index.entry(vertex.hash).or_insert_with(|| {
                    unique.push((vertex, signature));
                    unique.len() - 1
                })
            })
            .collect();
        let dag = &self.shared.stores.dag;
        let per_unique: Vec<Result<dag_store::Inserted, DagError>> = match dag.insert_batch_refs(&unique) {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(e @ (DagError::Read(_) | DagError::Write(_))) => return Err(RunFailure::Dag(e)),
            Err(_) => {
                // Some vertex is bad: place them one at a time, in passes, so children that
                // came before their parents in the group still land.
                let mut results: Vec<Option<Result<dag_store::Inserted, DagError>>> =
                    (0..unique.len()).map(|_| None).collect();
                loop {
                    let mut progress = false;
                    for (k, (v, sig)) in unique.iter().enumerate() {
                        if matches!(results[k], Some(Ok(_))) {
                            continue;
                        }
                        let r = dag.insert_vertex(v, sig);
                        progress |= r.is_ok();
                        results[k] = Some(r);
                    }
                    if !progress || results.iter().all(|r| matches!(r, Some(Ok(_)))) {
                        break;
                    }
                }
                results.into_iter().map(|r| r.expect("attempted")).collect()
            }
        };
        let mut stored = 0;
        for r in per_unique.iter().flatten() {
            if matches!(r, dag_store::Inserted::New { .. }) {
                stored += 1;
            }
        }
        self.shared.metrics.count(Event::VerticesStored, stored);
        // Duplicates of a vertex get the outcome of its one write.
        Ok(slots.into_iter().map(|k| per_unique[k].clone().map(Done::Vertex).map_err(StorageError::from)).collect())
    }

    /// One atomic batch for a run of block inserts (in order); on rejection, one by one.
    fn block_run(&self, run: &[Request<M>]) -> Result<Vec<Outcome<M>>, RunFailure> {
        let blocks: Vec<&chain_store::NewBlock<M>> = run
            .iter()
            .map(|r| match &r.op {
                Op::InsertBlock(b) => &**b,
                _ => unreachable!("run of block inserts"),
            })
            .collect();
        let chain = &self.shared.stores.chain;
        let results: Vec<Result<chain_store::Inserted, StorageError>> = match chain.insert_block_refs(&blocks) {
            Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
            Err(ChainError::Read(e)) => return Err(RunFailure::ChainRead(e)),
            Err(ChainError::Write(e)) => return Err(RunFailure::ChainWrite(e)),
            Err(_) => blocks
                .iter()
                .map(|b| chain.insert_block_refs(&[b]).map(|mut v| v.remove(0)).map_err(Into::into))
                .collect(),
        };
        let mut out = Vec::with_capacity(run.len());
        for (b, r) in blocks.iter().zip(results) {
            out.push(r.map(|ins| {
                if ins != chain_store::Inserted::AlreadyStored {
                    self.shared.metrics.count(Event::BlocksStored, 1);
                }
                self.shared.caches.after_block(b, ins == chain_store::Inserted::Canonical);
                Done::Block(ins)
            }));
        }
        Ok(out)
    }

    /// Any other write, alone (the domain store syncs it).
    fn single(&self, r: &Request<M>) -> Outcome<M> {
        let s = &*self.shared;
        Ok(match &r.op {
            Op::FinalizeVertex { hash, sequence } => {
                s.stores.dag.mark_finalized(hash, *sequence)?;
                s.metrics.count(Event::VerticesFinalized, 1);
                Done::Unit
            }
            Op::InitChain(b) => {
                s.stores.chain.init(b)?;
                s.caches.after_block(b, true);
                Done::Unit
            }
            Op::SetHead(h) => {
                let reorg = s.stores.chain.set_canonical_head(h)?;
                s.caches.after_reorg(&reorg);
                if !reorg.removed.is_empty() {
                    s.metrics.count(Event::Reorgs, 1);
                    tracing::info!(
                        fork = reorg.fork_point.number,
                        removed = reorg.removed.len(),
                        added = reorg.added.len(),
                        "reorg"
                    );
                }
                Done::Reorg(reorg)
            }
            Op::SetSafe(h) => {
                s.stores.chain.set_safe(h)?;
                Done::Unit
            }
            Op::SetFinalized(h) => {
                s.stores.chain.set_finalized(h)?;
                Done::Unit
            }
            Op::PruneChain { keep_last } => {
                let report = s.stores.chain.prune(*keep_last)?;
                s.caches.after_chain_prune(&report);
                s.metrics.count(Event::PrunedItems, report.pruned_below.saturating_sub(report.previous));
                Done::ChainPruned(report)
            }
            Op::PruneDag { below } => {
                let report = s.stores.dag.prune_below(*below)?;
                s.caches.after_dag_prune(report.pruned_below);
                s.metrics.count(Event::PrunedItems, report.vertices);
                Done::DagPruned(report)
            }
            Op::Compact => {
                let a = s.stores.chain.store().compact_all()?;
                let b = s.stores.dag.store().compact_all()?;
                Done::Compacted(a && b)
            }
            Op::Pause(gate) => {
                let _ = gate.paused.send(());
                let resume = gate.resume.lock().unwrap_or_else(|p| p.into_inner());
                let _ = resume.recv(); // returns once the sender is dropped
                Done::Unit
            }
            Op::InsertVertex { .. } | Op::InsertBlock(_) => unreachable!("inserts run in batches"),
        })
    }

    /// Accounts for one request's outcome and answers it.
    fn finish(&self, r: Request<M>, outcome: Outcome<M>) {
        let s = &*self.shared;
        let _span = r.span.enter();
        match &outcome {
            Ok(_) => s.breaker.success(),
            Err(e) => {
                s.metrics.error(e.kind());
                if e.is_engine_failure() {
                    s.set_last_error(e);
                    if s.breaker.failure(&e.to_string()) {
                        s.metrics.error("breaker_opened");
                    }
                }
                if r.op.dead_letters() && r.replay_of.is_none() && e.is_retryable_later() {
                    s.dead_letter(&r, e);
                }
                tracing::debug!(op = r.op.name(), error = %e, "write failed");
            }
        }
        s.metrics.write(r.op.name(), r.enqueued.elapsed().as_secs_f64());
        let _ = r.reply.send(outcome);
    }
}

/// A run's failure as a whole: the engine's, on the store the run writes. Engine errors are
/// plain values, so every request of the run gets a copy with its kind intact.
#[derive(Debug, Clone)]
enum RunFailure {
    /// The DAG store's engine failed.
    Dag(DagError),
    /// The chain store's engine failed to read.
    ChainRead(ReadError),
    /// The chain store's engine failed to write.
    ChainWrite(WriteError),
}

impl From<RunFailure> for StorageError {
    fn from(f: RunFailure) -> StorageError {
        match f {
            RunFailure::Dag(e) => StorageError::Dag(e),
            RunFailure::ChainRead(e) => StorageError::Chain(ChainError::Read(e)),
            RunFailure::ChainWrite(e) => StorageError::Chain(ChainError::Write(e)),
        }
    }
}
