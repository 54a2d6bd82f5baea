//! [`StorageHandle`]: the async API a node embeds.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chain_store::evm::Evm;
use chain_store::{
    AddressPage, AddressQuery, Block, ChainModel, IntegrityReport as ChainReport, Located, LogFilter, LogMatchOf,
    NewBlock, Pointers, PruneReport as ChainPruneReport, Reorg, TxLocation,
};
use dag_store::{IntegrityReport as DagReport, PruneReport as DagPruneReport, StoredVertex, Vertex, VertexHash};
use storage_metrics::{Event, Health, Metrics, MetricsServer};
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::backend::Backend;
use crate::breaker::BreakerState;
use crate::config::Config;
use crate::deadletter::{self, DeadLetter, DeadLetters, Replayed};
use crate::error::StorageError;
use crate::request::{Op, Reply, Request};
use crate::shared::Shared;
use crate::stores::StoreId;
use crate::{maintenance, writer};

/// The storage of one node: chain and DAG stores behind caches, a writer thread with priority
/// lanes and group commit, metrics and scheduled maintenance. Clone it freely; the last clone
/// dropped (or [`StorageHandle::shutdown`]) drains the lanes and syncs.
///
/// Reads run on the caller's task when the cache answers and on the blocking pool otherwise;
/// they never queue behind writes. Writes resolve once durable.
pub struct StorageHandle<B: Backend, M: ChainModel = Evm> {
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
    server: Mutex<Option<MetricsServer>>,
    closing: Arc<dyn Fn() + Send + Sync>,
}

impl Threads {
    fn stop(&self) {
        (self.closing)();
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

/// Sizes and figures of one store (see [`StorageHandle::stats`]).
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreStats {
    /// Which store.
    pub store: StoreId,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Per-table approximate keys and bytes.
    pub tables: Vec<(&'static str, u64, u64)>,
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
            server: Mutex::new(None),
            closing: Arc::new(move || closing_shared.closing.store(true, Ordering::SeqCst)),
        });
        let handle = StorageHandle { shared, threads };
        let scheduler = maintenance::Scheduler::start(handle.clone_for_maintenance())?;
        *handle.threads.maintenance.lock().unwrap_or_else(|p| p.into_inner()) = Some(scheduler);
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
        self.shared.breaker.state()
    }

    /// Stops maintenance, drains every lane (queued writes still commit), syncs, and stops
    /// the writer. Later requests fail with `ShuttingDown`.
    pub async fn shutdown(&self) {
        let threads = self.threads.clone();
        let _ = tokio::task::spawn_blocking(move || threads.stop()).await;
    }

    // ---- writes -------------------------------------------------------------------------

    /// The state shared with the writer and maintenance threads.
    pub(crate) fn shared(&self) -> &Arc<Shared<B, M>> {
        &self.shared
    }

    /// Submits one write and waits for its typed answer.
    pub(crate) async fn submit<T>(&self, op: impl FnOnce(Reply<T>) -> Op<M>) -> Result<T, StorageError> {
        let (reply, rx) = Reply::channel();
        let sent = self.enqueue(op(reply), 0, None).await?;
        self.answer(sent, rx).await
    }

    /// Submits many writes in order (one task, FIFO lane) and waits for all: the writer
    /// groups them into as few batches and syncs as its limits allow. Each gets its own
    /// answer.
    async fn submit_many<T, I>(
        &self,
        items: Vec<I>,
        op: impl Fn(I, Reply<T>) -> Op<M>,
    ) -> Vec<Result<T, StorageError>> {
        let mut pending = Vec::with_capacity(items.len());
        for item in items {
            let (reply, rx) = Reply::channel();
            pending.push(self.enqueue(op(item, reply), 0, None).await.map(|sent| (sent, rx)));
        }
        let mut out = Vec::with_capacity(pending.len());
        for p in pending {
            out.push(match p {
                Ok((sent, rx)) => self.answer(sent, rx).await,
                Err(e) => Err(e),
            });
        }
        out
    }

    /// The one way a write enters the writer: admission (shutdown, circuit breaker), a
    /// correlation id and span, then its lane, waiting at most the request timeout for room.
    async fn enqueue(&self, op: Op<M>, attempts: u32, replay_of: Option<u64>) -> Result<Sent, StorageError> {
        let s = &*self.shared;
        if s.closing.load(Ordering::SeqCst) {
            return Err(StorageError::ShuttingDown);
        }
        if let Err(e) = s.breaker.admit() {
            s.metrics.count(Event::Rejected, 1);
            return Err(e);
        }
        let id = s.request_id();
        let span = tracing::info_span!("storage_write", id = %id, op = op.name());
        let timeout = Duration::from_millis(s.config.writer.request_timeout_ms);
        let lane = op.lane();
        let request = Request { attempts, replay_of, ..Request::new(op, id.clone(), timeout, span.clone()) };
        let at = request.enqueued;
        match tokio::time::timeout(timeout, s.lanes.get(lane).send(request)).instrument(span.clone()).await {
            Ok(Ok(())) => Ok(Sent { id, at, timeout, span }),
            Ok(Err(_)) => Err(StorageError::ShuttingDown),
            Err(_) => Err(self.timed_out(id, timeout)),
        }
    }

    /// Waits for the answer to a sent write, within what is left of its timeout.
    async fn answer<T>(&self, sent: Sent, rx: oneshot::Receiver<Result<T, StorageError>>) -> Result<T, StorageError> {
        let left = sent.timeout.saturating_sub(sent.at.elapsed());
        match tokio::time::timeout(left, rx).instrument(sent.span).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(StorageError::ShuttingDown),
            Err(_) => Err(self.timed_out(sent.id, sent.timeout)),
        }
    }

    fn timed_out(&self, id: String, after: Duration) -> StorageError {
        self.shared.metrics.count(Event::Timeouts, 1);
        self.shared.metrics.error("timeout");
        StorageError::Timeout { id, after }
    }

    /// Stores many vertices, submitted in order (parents before children) and committed in
    /// as few group commits as the writer limits allow. One outcome per vertex.
    pub async fn insert_vertices(
        &self,
        vertices: Vec<(Vertex, Vec<u8>)>,
    ) -> Vec<Result<dag_store::Inserted, StorageError>> {
        self.submit_many(vertices, |(vertex, signature), reply| Op::InsertVertex { vertex, signature, reply }).await
    }

    /// Stores many blocks, in order (a parent may precede its child in the list). One outcome
    /// per block.
    pub async fn insert_blocks(&self, blocks: Vec<NewBlock<M>>) -> Vec<Result<chain_store::Inserted, StorageError>> {
        self.submit_many(blocks, |b, reply| Op::InsertBlock { block: Box::new(b), reply }).await
    }

    /// Stores a DAG vertex with its creator's signature (validated, idempotent). Normal lane.
    pub async fn insert_vertex(&self, vertex: Vertex, signature: Vec<u8>) -> Result<dag_store::Inserted, StorageError> {
        self.submit(|reply| Op::InsertVertex { vertex, signature, reply }).await
    }

    /// Finalizes a vertex at the next sequence number. High lane.
    pub async fn finalize_vertex(&self, hash: VertexHash, sequence: u64) -> Result<(), StorageError> {
        self.submit(|reply| Op::FinalizeVertex { hash, sequence, reply }).await
    }

    /// Stores the chain's first block (genesis or a trusted checkpoint). Normal lane.
    pub async fn init_chain(&self, first: NewBlock<M>) -> Result<(), StorageError> {
        self.submit(|reply| Op::InitChain { block: Box::new(first), reply }).await
    }

    /// Stores a block with receipts and state writes; it extends the canonical chain if its
    /// parent is the head. Normal lane.
    pub async fn insert_block(&self, block: NewBlock<M>) -> Result<chain_store::Inserted, StorageError> {
        self.submit(|reply| Op::InsertBlock { block: Box::new(block), reply }).await
    }

    /// Moves the canonical head (a reorg if it leaves the current branch). High lane.
    pub async fn set_head(&self, hash: M::Hash) -> Result<Reorg<M::Hash>, StorageError> {
        self.submit(|reply| Op::SetHead { hash, reply }).await
    }

    /// Sets the safe block. High lane.
    pub async fn set_safe(&self, hash: M::Hash) -> Result<(), StorageError> {
        self.submit(|reply| Op::SetSafe { hash, reply }).await
    }

    /// Sets the finalized block. High lane.
    pub async fn set_finalized(&self, hash: M::Hash) -> Result<(), StorageError> {
        self.submit(|reply| Op::SetFinalized { hash, reply }).await
    }

    /// Prunes chain bodies, receipts and change sets older than the last `keep_last` blocks.
    /// Low lane.
    pub async fn prune_chain(&self, keep_last: u64) -> Result<ChainPruneReport, StorageError> {
        self.submit(|reply| Op::PruneChain { keep_last, reply }).await
    }

    /// Prunes DAG vertices below `height` (all finalized). Low lane.
    pub async fn prune_dag(&self, below: u64) -> Result<DagPruneReport, StorageError> {
        self.submit(|reply| Op::PruneDag { below, reply }).await
    }

    /// Compacts the chain and DAG stores; `false` if the engine cannot compact. Low lane.
    pub async fn compact(&self) -> Result<bool, StorageError> {
        self.submit(|reply| Op::Compact { reply }).await
    }

    // ---- reads --------------------------------------------------------------------------

    async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Shared<B, M>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let shared = self.shared.clone();
        let started = Instant::now();
        let id = shared.request_id();
        let span = tracing::debug_span!("storage_read", id = %id, op);
        let r = tokio::task::spawn_blocking(move || span.in_scope(|| f(&shared)))
            .await
            .map_err(|e| StorageError::Internal(format!("read task failed: {e}")))?;
        self.shared.metrics.read(op, started);
        if let Err(e) = &r {
            self.shared.metrics.error(e.kind());
        }
        r
    }

    /// A block by hash (cached).
    pub async fn block(&self, hash: M::Hash) -> Result<Option<Arc<Block<M>>>, StorageError> {
        let started = Instant::now();
        if let Some(b) = self.shared.caches.blocks.get(&hash) {
            self.shared.metrics.read("block", started);
            self.shared.metrics.count(Event::BlocksRead, 1);
            return Ok(Some(b));
        }
        let r = self.read("block", move |s| s.load_block(&hash)).await?;
        self.shared.metrics.count(Event::BlocksRead, u64::from(r.is_some()));
        Ok(r)
    }

    /// The canonical block at `number` (cached: height → hash, hash → block).
    pub async fn block_by_number(&self, number: u64) -> Result<Option<Arc<Block<M>>>, StorageError> {
        let started = Instant::now();
        let s = &self.shared;
        if let Some(hash) = s.caches.canonical.get(&number)
            && let Some(b) = s.caches.blocks.get(&hash)
        {
            s.metrics.read("block_by_number", started);
            s.metrics.count(Event::BlocksRead, 1);
            return Ok(Some(b));
        }
        let r = self
            .read("block_by_number", move |s| match s.load_canonical(number)? {
                Some(hash) => match s.caches.blocks.get(&hash) {
                    Some(b) => Ok(Some(b)),
                    None => s.load_block(&hash),
                },
                None => Ok(None),
            })
            .await?;
        s.metrics.count(Event::BlocksRead, u64::from(r.is_some()));
        Ok(r)
    }

    /// A header by hash.
    pub async fn header(&self, hash: M::Hash) -> Result<Option<M::Header>, StorageError> {
        self.read("header", move |s| Ok(s.stores.chain.header(&hash)?)).await
    }

    /// The canonical header at `number`.
    pub async fn header_by_number(&self, number: u64) -> Result<Option<M::Header>, StorageError> {
        self.read("header_by_number", move |s| Ok(s.stores.chain.header_by_number(number)?)).await
    }

    /// A block's receipts by block hash (cached).
    pub async fn receipts(&self, hash: M::Hash) -> Result<Option<Arc<Vec<M::Receipt>>>, StorageError> {
        let started = Instant::now();
        if let Some(r) = self.shared.caches.receipts.get(&hash) {
            self.shared.metrics.read("receipts", started);
            return Ok(Some(r));
        }
        self.read("receipts", move |s| {
            let seen = s.caches.receipts.generation();
            let Some(r) = s.stores.chain.receipts(&hash)? else { return Ok(None) };
            let r = Arc::new(r);
            s.caches.receipts.insert_at(seen, hash, r.clone());
            Ok(Some(r))
        })
        .await
    }

    /// Where a canonical transaction is.
    pub async fn tx_location(&self, tx_hash: M::Hash) -> Result<Option<TxLocation<M::Hash>>, StorageError> {
        self.read("tx_location", move |s| Ok(s.stores.chain.tx_location(&tx_hash)?)).await
    }

    /// A canonical transaction by hash, with its location.
    pub async fn transaction(&self, tx_hash: M::Hash) -> Result<Option<Located<M::Tx, M>>, StorageError> {
        self.read("transaction", move |s| Ok(s.stores.chain.transaction(&tx_hash)?)).await
    }

    /// A canonical transaction's receipt by transaction hash.
    pub async fn receipt(&self, tx_hash: M::Hash) -> Result<Option<Located<M::Receipt, M>>, StorageError> {
        self.read("receipt", move |s| Ok(s.stores.chain.receipt(&tx_hash)?)).await
    }

    /// A state value at the head (cached, with the configured TTL).
    pub async fn state(&self, key: M::StateKey) -> Result<Option<M::StateValue>, StorageError> {
        let started = Instant::now();
        if let Some(v) = self.shared.caches.state.get(&key) {
            self.shared.metrics.read("state", started);
            return Ok(v);
        }
        self.read("state", move |s| {
            let seen = s.caches.state.generation();
            let v = s.stores.chain.state(&key)?;
            s.caches.state.insert_at(seen, key, v.clone());
            Ok(v)
        })
        .await
    }

    /// State values as of canonical height `number`.
    pub async fn state_at(
        &self,
        keys: Vec<M::StateKey>,
        number: u64,
    ) -> Result<Vec<Option<M::StateValue>>, StorageError> {
        self.read("state_at", move |s| Ok(s.stores.chain.state_at(&keys, number)?)).await
    }

    /// Logs matching `filter`, at most `cap` (more is a `TooManyLogs` error).
    pub async fn logs(
        &self,
        filter: LogFilter<M::Address, M::Hash>,
        cap: usize,
    ) -> Result<Vec<LogMatchOf<M>>, StorageError> {
        self.read("logs", move |s| Ok(s.stores.chain.logs(&filter, cap)?)).await
    }

    /// An address's transactions, paginated.
    pub async fn address_history(
        &self,
        address: M::Address,
        query: AddressQuery,
    ) -> Result<AddressPage<M::Hash>, StorageError> {
        self.read("address_history", move |s| Ok(s.stores.chain.address_history(&address, &query)?)).await
    }

    /// The chain's pointers (first, head, safe, finalized, pruning boundary).
    pub fn pointers(&self) -> Pointers<M::Hash> {
        self.shared.stores.chain.pointers()
    }

    /// A vertex by hash (cached).
    pub async fn vertex(&self, hash: VertexHash) -> Result<Option<Arc<StoredVertex>>, StorageError> {
        let started = Instant::now();
        if let Some(v) = self.shared.caches.vertices.get(&hash) {
            self.shared.metrics.read("vertex", started);
            self.shared.metrics.count(Event::VerticesRead, 1);
            return Ok(Some(v));
        }
        let r = self.read("vertex", move |s| s.load_vertex(&hash)).await?;
        self.shared.metrics.count(Event::VerticesRead, u64::from(r.is_some()));
        Ok(r)
    }

    /// A vertex's children.
    pub async fn children(&self, hash: VertexHash) -> Result<Vec<VertexHash>, StorageError> {
        self.read("children", move |s| Ok(s.stores.dag.children(&hash)?)).await
    }

    /// Vertices at a height.
    pub async fn vertices_at_height(&self, height: u64) -> Result<Vec<VertexHash>, StorageError> {
        self.read("at_height", move |s| Ok(s.stores.dag.at_height(height)?)).await
    }

    /// The DAG's tips.
    pub async fn tips(&self) -> Result<Vec<VertexHash>, StorageError> {
        self.read("tips", |s| Ok(s.stores.dag.tips()?)).await
    }

    /// The last finalized vertex and its sequence number.
    pub async fn last_finalized_vertex(&self) -> Result<Option<(u64, VertexHash)>, StorageError> {
        self.read("last_finalized", |s| Ok(s.stores.dag.last_finalized()?)).await
    }

    /// The next finalization sequence number.
    pub async fn next_finalization_sequence(&self) -> Result<u64, StorageError> {
        self.read("next_sequence", |s| Ok(s.stores.dag.next_sequence()?)).await
    }

    // ---- operations ---------------------------------------------------------------------

    /// Integrity checks of the chain and DAG stores (read-only, full scans).
    pub async fn check(&self) -> Result<(ChainReport, DagReport), StorageError> {
        self.read("check", |s| Ok((s.stores.chain.check()?, s.stores.dag.check()?))).await
    }

    /// Disk and per-table figures of every store.
    pub async fn stats(&self) -> Result<Vec<StoreStats>, StorageError> {
        self.read("stats", |s| {
            let dir = &s.config.data_dir;
            s.stores
                .engines()
                .into_iter()
                .map(|(id, store)| crate::reader::store_stats::<B, _>(dir, id, store))
                .collect()
        })
        .await
    }

    /// Cache figures: (name, stats).
    pub fn cache_stats(&self) -> Vec<(&'static str, storage_cache::CacheStats)> {
        self.shared.caches.stats().to_vec()
    }

    /// The dead letters, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StorageError> {
        self.read("dead_letters", |s| crate::reader::dead_letters(&s.stores.node)).await
    }

    /// Replays dead letters (`None`: all), oldest first: each is resubmitted; a success
    /// removes it, a failure keeps it with the new reason.
    pub async fn replay_dead_letters(&self, ids: Option<Vec<u64>>) -> Result<Vec<Replayed>, StorageError> {
        let letters = self.dead_letters().await?;
        let mut out = Vec::new();
        for letter in letters {
            if ids.as_ref().is_some_and(|ids| !ids.contains(&letter.id)) {
                continue;
            }
            let mut op: Op<M> = postcard::from_bytes(&letter.payload)
                .map_err(|e| StorageError::CorruptDeadLetter { id: letter.id, reason: e.to_string() })?;
            let rx = op.reply_mut().watch();
            let result = match self.enqueue(op, letter.attempts, Some(letter.id)).await {
                Ok(sent) => self.answer(sent, rx).await,
                Err(e) => Err(e),
            };
            let id = letter.id;
            let error = result.err().map(|e| e.to_string());
            let update = match &error {
                // Done: the entry goes.
                None => None,
                // Still failing: the entry stays, with the new reason.
                Some(reason) => {
                    Some(DeadLetter { reason: reason.clone(), attempts: letter.attempts + 1, ..letter.clone() })
                }
            };
            self.read("dead_letter_update", move |s| {
                let mut batch = s.stores.node.batch();
                match &update {
                    None => {
                        batch.delete::<DeadLetters>(&id)?;
                    }
                    Some(l) => {
                        batch.put::<DeadLetters>(&id, &deadletter::encode(l))?;
                    }
                }
                s.stores.node.write(batch, storage_api::Durability::Synced)?;
                if update.is_none() {
                    s.dead_letters.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(())
            })
            .await?;
            out.push(Replayed { id, op: letter.op, error });
        }
        if let Some(ids) = ids {
            for id in ids {
                if !out.iter().any(|r| r.id == id) {
                    return Err(StorageError::NoSuchDeadLetter(id));
                }
            }
        }
        Ok(out)
    }
}
