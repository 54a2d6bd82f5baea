//! Writes: the one enqueue path and the typed write API.

use super::*;

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Whether the handle is shutting down (background tasks end then).
    pub(crate) fn is_closing(&self) -> bool {
        self.shared.intake.is_closing()
    }

    /// Submits one write and waits for its typed answer.
    pub(crate) async fn submit<T>(&self, op: impl FnOnce(Reply<T>) -> Op<M>) -> Result<T, StorageError> {
        let (reply, rx) = Reply::channel();
        let sent = self.enqueue(op(reply), 0, None).await?;
        self.answer(sent, rx).await
    }

    /// Submits many writes of one kind in order and waits for all. They enter their lane
    /// together (room for all of them is reserved first, up to the lane's capacity at a time),
    /// so the writer finds them queued and commits them in as few batches and syncs as its
    /// limits allow. Each gets its own answer.
    async fn submit_many<T, I>(
        &self,
        items: Vec<I>,
        op: impl Fn(I, Reply<T>) -> Op<M>,
    ) -> Vec<Result<T, StorageError>> {
        enum Slot<T> {
            Answered(Result<T, StorageError>),
            Waiting(Sent, oneshot::Receiver<Result<T, StorageError>>),
        }
        let mut slots = Vec::with_capacity(items.len());
        let mut admitted = Vec::new();
        for item in items {
            let (reply, rx) = Reply::channel();
            match self.admit(op(item, reply), 0, None) {
                Ok((request, sent)) => {
                    admitted.push((slots.len(), request));
                    slots.push(Slot::Waiting(sent, rx));
                }
                Err(e) => slots.push(Slot::Answered(Err(e))),
            }
        }
        if let Some((_, first)) = admitted.first() {
            let lane = self.shared.intake.lane(first.op.lane());
            let timeout = Duration::from_millis(self.shared.config.writer.request_timeout_ms);
            let mut requests = admitted.into_iter().peekable();
            while requests.peek().is_some() {
                let n = requests.len().min(lane.max_capacity());
                match tokio::time::timeout(timeout, lane.reserve_many(n)).await {
                    Ok(Ok(permits)) => {
                        for (permit, (_, request)) in permits.zip(requests.by_ref()) {
                            permit.send(request);
                        }
                    }
                    Ok(Err(_)) => {
                        for (i, _) in requests.by_ref() {
                            slots[i] = Slot::Answered(Err(StorageError::ShuttingDown));
                        }
                    }
                    Err(_) => {
                        for (i, r) in requests.by_ref() {
                            slots[i] = Slot::Answered(Err(self.timed_out(r.id, timeout)));
                        }
                    }
                }
            }
        }
        let mut answers = Vec::with_capacity(slots.len());
        for slot in slots {
            answers.push(match slot {
                Slot::Answered(r) => r,
                Slot::Waiting(sent, rx) => self.answer(sent, rx).await,
            });
        }
        answers
    }

    /// Admission of one write: refused while shutting down or while the circuit breaker is
    /// open; otherwise the request with its correlation id and span, due within the request
    /// timeout.
    fn admit(&self, op: Op<M>, attempts: u32, replay_of: Option<u64>) -> Result<(Request<M>, Sent), StorageError> {
        let s = &*self.shared;
        if s.intake.is_closing() {
            return Err(StorageError::ShuttingDown);
        }
        if let Err(e) = s.intake.breaker().admit() {
            s.metrics.count(Event::Rejected, 1);
            return Err(e);
        }
        let id = s.intake.request_id();
        let span = tracing::info_span!("storage_write", id = %id, op = op.name());
        let timeout = Duration::from_millis(s.config.writer.request_timeout_ms);
        let request = Request { attempts, replay_of, ..Request::new(op, id.clone(), timeout, span.clone()) };
        let sent = Sent { id, at: request.enqueued, timeout, span };
        Ok((request, sent))
    }

    /// The one way a single write enters the writer: [`admit`](Self::admit), then its lane,
    /// waiting at most the request timeout for room.
    pub(super) async fn enqueue(&self, op: Op<M>, attempts: u32, replay_of: Option<u64>) -> Result<Sent, StorageError> {
        let (request, sent) = self.admit(op, attempts, replay_of)?;
        let lane = self.shared.intake.lane(request.op.lane());
        match tokio::time::timeout(sent.timeout, lane.send(request)).instrument(sent.span.clone()).await {
            Ok(Ok(())) => Ok(sent),
            Ok(Err(_)) => Err(StorageError::ShuttingDown),
            Err(_) => Err(self.timed_out(sent.id, sent.timeout)),
        }
    }

    /// Waits for the answer to a sent write, within what is left of its timeout.
    pub(super) async fn answer<T>(
        &self,
        sent: Sent,
        rx: oneshot::Receiver<Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
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
        self.check_archive().await;
        self.submit(|reply| Op::PruneChain { keep_last, reply }).await
    }

    /// Prunes DAG vertices below `height` (all finalized). Low lane.
    pub async fn prune_dag(&self, below: u64) -> Result<DagPruneReport, StorageError> {
        self.check_archive().await;
        self.submit(|reply| Op::PruneDag { below, reply }).await
    }

    /// With a history archive: checks it against this node now, on the blocking pool, if that
    /// was not done yet, so the prune on the writer thread knows what it may remove without a
    /// network call of its own.
    async fn check_archive(&self) {
        if self.shared.history.is_some() {
            let _ = self
                .read("archive_check", |s| {
                    if let Some(h) = &s.history {
                        crate::history::check_archive(h, &s.stores.chain, &s.stores.dag);
                    }
                    Ok(())
                })
                .await;
        }
    }

    /// Compacts the chain and DAG stores on the blocking pool; `false` if the engine cannot
    /// compact.
    pub async fn compact(&self) -> Result<bool, StorageError> {
        // Never on the writer thread: writes go on meanwhile (RocksDB compacts beside them;
        // redb's whole-file compaction holds its write lock throughout).
        self.read("compact", |s| crate::maintenance::compact_stores(s)).await
    }
}
