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
use crate::intake::Receivers;
use crate::request::{Op, Pending, Reply, Request};
use crate::shared::{Opened, Shared};
use crate::store_id::StoreId;

pub(crate) fn spawn<B: Backend, M: ChainModel>(
    opened: Opened<B, M>,
    stop: oneshot::Receiver<()>,
) -> Result<std::thread::JoinHandle<()>, StorageError> {
    let Opened { shared, lanes: Receivers { high, normal, low } } = opened;
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
        let (mut live, expired): (Vec<_>, Vec<_>) = group.into_iter().partition(|r| r.deadline > now);
        for mut r in expired {
            s.metrics.count(Event::Timeouts, 1);
            let after = Duration::from_millis(s.config.writer.request_timeout_ms);
            let reply = r.op.reply_mut();
            reply.fail(StorageError::Timeout { id: r.id, after });
            reply.send();
        }
        if live.is_empty() {
            return;
        }
        s.metrics.batch(live.len(), bytes);
        for r in &live {
            s.metrics.queue_wait(r.op.lane(), now.duration_since(r.enqueued).as_secs_f64());
        }
        // Every request's answer is recorded in its reply; the stores that took buffered
        // writes are synced once for the whole group, and only then are the answers sent.
        let (mut dag_dirty, mut chain_dirty) = (Vec::new(), Vec::new());
        for step in plan(&mut live) {
            match step {
                Step::Vertices(mut run) => {
                    self.retrying(&mut run, |run| self.vertex_run(run));
                    dag_dirty.extend(run.iter().filter(|v| v.reply.succeeded()).map(|v| v.index));
                }
                Step::Blocks(mut run) => {
                    self.retrying(&mut run, |run| self.block_run(run));
                    chain_dirty.extend(run.iter().filter(|b| b.reply.succeeded()).map(|b| b.index));
                }
                Step::Single(index, op) => match self.single(index, op) {
                    Some(StoreId::Dag) => dag_dirty.push(index),
                    Some(StoreId::Chain) => chain_dirty.push(index),
                    Some(StoreId::Node) | None => {}
                },
            }
        }
        let dag_sync = if dag_dirty.is_empty() { Ok(()) } else { s.stores.dag.store().sync() };
        let chain_sync = if chain_dirty.is_empty() { Ok(()) } else { s.stores.chain.store().sync() };
        for (dirty, sync) in [(&dag_dirty, dag_sync), (&chain_dirty, chain_sync)] {
            if let Err(e) = sync {
                tracing::error!(error = %e, "group commit sync failed; store poisoned, writes not durable");
                // Each request then counts towards the breaker, as a failed write does.
                for &k in dirty.iter() {
                    live[k].op.reply_mut().fail(StorageError::Flush(e.clone()));
                }
            }
        }
        for r in live {
            self.finish(r);
        }
    }

    /// Runs `f` (a whole run's write), retrying while it fails as a whole with a transient
    /// engine error. A run that fails as a whole gives every request of it the same failure.
    fn retrying<T: Answerable>(&self, run: &mut [T], f: impl Fn(&mut [T]) -> Result<(), RunFailure>) {
        let w = &self.shared.config.writer;
        let mut attempt = 0;
        let _group = tracing::debug_span!("group_commit", requests = run.len()).entered();
        loop {
            match f(run) {
                Ok(()) => {
                    self.shared.metrics.count(Event::WriteBatches, 1);
                    return;
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
                    for item in run.iter_mut() {
                        item.fail(failure.clone().into());
                    }
                    return;
                }
            }
        }
    }

    /// One atomic batch for a run of vertex inserts; duplicates coalesce (each caller gets the
    /// outcome of the one write). If the batch is rejected, vertices are inserted one by one
    /// so only the offending requests fail.
    fn vertex_run(&self, run: &mut [VertexWrite<'_>]) -> Result<(), RunFailure> {
        let mut unique: Vec<(&Vertex, &[u8])> = Vec::new();
        let mut index: HashMap<VertexHash, usize> = HashMap::new();
        let slots: Vec<usize> = run
            .iter()
            .map(|v| {
                *index.entry(v.vertex.hash).or_insert_with(|| {
                    unique.push((v.vertex, v.signature));
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
                results.into_iter().map(|r| r.unwrap_or(Err(DagError::NotFound(VertexHash([0; 32]))))).collect()
            }
        };
        let stored = per_unique.iter().flatten().filter(|r| matches!(r, dag_store::Inserted::New { .. })).count();
        self.shared.metrics.count(Event::VerticesStored, stored as u64);
        // Duplicates of a vertex get the outcome of its one write.
        for (v, k) in run.iter_mut().zip(slots) {
            v.reply.set(per_unique[k].clone().map_err(StorageError::from));
        }
        Ok(())
    }

    /// One atomic batch for a run of block inserts (in order); on rejection, one by one.
    fn block_run(&self, run: &mut [BlockWrite<'_, M>]) -> Result<(), RunFailure> {
        let blocks: Vec<&chain_store::NewBlock<M>> = run.iter().map(|b| b.block).collect();
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
        for (b, r) in run.iter_mut().zip(results) {
            if let Ok(ins) = &r {
                if *ins != chain_store::Inserted::AlreadyStored {
                    self.shared.metrics.count(Event::BlocksStored, 1);
                }
                self.shared.caches.after_block(b.block, *ins == chain_store::Inserted::Canonical);
            }
            b.reply.set(r);
        }
        Ok(())
    }

    /// Any other write, alone (the domain store syncs it). Records the answer in the op's
    /// reply; returns the store left with buffered writes to sync, if any.
    fn single(&self, index: usize, op: &mut Op<M>) -> Option<StoreId> {
        let s = &*self.shared;
        match op {
            Op::FinalizeVertex { hash, sequence, reply } => {
                let r = s.stores.dag.mark_finalized(hash, *sequence).map_err(StorageError::from);
                if r.is_ok() {
                    s.metrics.count(Event::VerticesFinalized, 1);
                }
                reply.set(r);
            }
            Op::InitChain { block, reply } => {
                let r = s.stores.chain.init(block).map_err(StorageError::from);
                if r.is_ok() {
                    s.caches.after_block(block, true);
                }
                let buffered = r.is_ok();
                reply.set(r);
                return buffered.then_some(StoreId::Chain);
            }
            Op::SetHead { hash, reply } => {
                let r = s.stores.chain.set_canonical_head(hash).map_err(StorageError::from);
                if let Ok(reorg) = &r {
                    s.caches.after_reorg(reorg);
                    if !reorg.removed.is_empty() {
                        s.metrics.count(Event::Reorgs, 1);
                        tracing::info!(
                            fork = reorg.fork_point.number,
                            removed = reorg.removed.len(),
                            added = reorg.added.len(),
                            "reorg"
                        );
                    }
                }
                reply.set(r);
            }
            Op::SetSafe { hash, reply } => reply.set(s.stores.chain.set_safe(hash).map_err(Into::into)),
            Op::SetFinalized { hash, reply } => reply.set(s.stores.chain.set_finalized(hash).map_err(Into::into)),
            Op::PruneChain { keep_last, reply } => {
                // With an archive, nothing it does not verifiably hold of this chain is pruned;
                // while that is unknown, nothing at all. (Checked against the archive before the
                // request was queued: no network call here.)
                let archived =
                    s.history.as_ref().map(|h| crate::history::chain_prune_limit(h, &s.stores.chain.pointers()));
                let r = s.stores.chain.prune_archived(*keep_last, archived).map_err(StorageError::from);
                if let Ok(report) = &r {
                    s.caches.after_chain_prune(report);
                    s.metrics.count(Event::PrunedItems, report.pruned_below.saturating_sub(report.previous));
                }
                reply.set(r);
            }
            Op::PruneDag { below, reply } => {
                let r = (|| -> Result<_, StorageError> {
                    let below = match s.history.as_ref().map(crate::history::dag_prune_range) {
                        Some(archived) => s.stores.dag.prunable_below(*below, archived)?,
                        None => *below,
                    };
                    Ok(s.stores.dag.prune_below(below)?)
                })();
                if let Ok(report) = &r {
                    s.caches.after_dag_prune(report.pruned_below);
                    s.metrics.count(Event::PrunedItems, report.vertices);
                }
                reply.set(r);
            }
            // `plan` puts inserts in runs; alone, one is a run of one.
            Op::InsertVertex { vertex, signature, reply } => {
                let mut run = [VertexWrite { index, vertex, signature, reply }];
                self.retrying(&mut run, |run| self.vertex_run(run));
                return run[0].reply.succeeded().then_some(StoreId::Dag);
            }
            Op::InsertBlock { block, reply } => {
                let mut run = [BlockWrite { index, block, reply }];
                self.retrying(&mut run, |run| self.block_run(run));
                return run[0].reply.succeeded().then_some(StoreId::Chain);
            }
        }
        None
    }

    /// Accounts for one request's outcome and answers it.
    fn finish(&self, mut r: Request<M>) {
        let s = &*self.shared;
        let _span = r.span.enter();
        match r.op.reply().error() {
            None => s.intake.breaker().success(),
            Some(e) => {
                s.metrics.error(e.kind().as_str());
                if e.is_engine_failure() && s.intake.engine_failed(e) {
                    s.metrics.error("breaker_opened");
                }
                if r.op.dead_letters() && r.replay_of.is_none() && e.is_retryable_later() {
                    s.dead_letter(&r, e);
                }
                tracing::debug!(op = r.op.name(), error = %e, "write failed");
            }
        }
        s.metrics.write(r.op.name(), r.enqueued.elapsed().as_secs_f64());
        drop(_span);
        r.op.reply_mut().send();
    }
}

/// A vertex insert of a run, its request's place in the group, and its reply.
struct VertexWrite<'a> {
    index: usize,
    vertex: &'a Vertex,
    signature: &'a [u8],
    reply: &'a mut Reply<dag_store::Inserted>,
}

/// A block insert of a run, its request's place in the group, and its reply.
struct BlockWrite<'a, M: ChainModel> {
    index: usize,
    block: &'a chain_store::NewBlock<M>,
    reply: &'a mut Reply<chain_store::Inserted>,
}

/// What the whole-run retry needs of a run's items.
trait Answerable {
    fn fail(&mut self, e: StorageError);
}

impl Answerable for VertexWrite<'_> {
    fn fail(&mut self, e: StorageError) {
        self.reply.fail(e);
    }
}

impl<M: ChainModel> Answerable for BlockWrite<'_, M> {
    fn fail(&mut self, e: StorageError) {
        self.reply.fail(e);
    }
}

/// One step of a group: a run of inserts of one kind (one atomic batch), or one other write.
enum Step<'a, M: ChainModel> {
    Vertices(Vec<VertexWrite<'a>>),
    Blocks(Vec<BlockWrite<'a, M>>),
    Single(usize, &'a mut Op<M>),
}

/// Splits a group into steps, in order: consecutive vertex inserts form one run, consecutive
/// block inserts another. The one place the writer looks at what each request is.
fn plan<M: ChainModel>(group: &mut [Request<M>]) -> Vec<Step<'_, M>> {
    let mut steps: Vec<Step<'_, M>> = Vec::new();
    for (index, r) in group.iter_mut().enumerate() {
        match &mut r.op {
            Op::InsertVertex { vertex, signature, reply } => {
                let write = VertexWrite { index, vertex, signature, reply };
                match steps.last_mut() {
                    Some(Step::Vertices(run)) => run.push(write),
                    _ => steps.push(Step::Vertices(vec![write])),
                }
            }
            Op::InsertBlock { block, reply } => {
                let write = BlockWrite { index, block, reply };
                match steps.last_mut() {
                    Some(Step::Blocks(run)) => run.push(write),
                    _ => steps.push(Step::Blocks(vec![write])),
                }
            }
            op => steps.push(Step::Single(index, op)),
        }
    }
    steps
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
