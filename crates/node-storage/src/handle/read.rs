//! Reads: through the caches, on the blocking pool when they miss.

use super::*;

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    pub(super) async fn read<T: Send + 'static>(
        &self,
        op: &'static str,
        f: impl FnOnce(&Shared<B, M>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let shared = self.shared.clone();
        let started = Instant::now();
        let id = shared.intake.request_id();
        let span = tracing::debug_span!("storage_read", id = %id, op);
        let r = tokio::task::spawn_blocking(move || span.in_scope(|| f(&shared)))
            .await
            .map_err(|e| StorageError::Internal(format!("read task failed: {e}")))?;
        self.shared.metrics.read(op, started);
        if let Err(e) = &r {
            self.shared.metrics.error(e.kind().as_str());
        }
        r
    }

    /// A block by hash (cached). Blocks pruned locally are read from the history archive when
    /// one is configured; an archive that is down is an error, never `None`.
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
            let Some(r) = s.through().receipts(&hash)? else { return Ok(None) };
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

    /// A canonical transaction with its location, sender and block header, in one read of
    /// the blocking pool (what a reply about one transaction needs; see
    /// [`ChainStore::transaction_in_block`](chain_store::ChainStore::transaction_in_block)).
    pub async fn transaction_in_block(&self, tx_hash: M::Hash) -> Result<Option<TxInBlock<M>>, StorageError> {
        self.read("transaction_in_block", move |s| s.through().transaction_in_block(&tx_hash)).await
    }

    /// The senders of block `at`'s transactions, in order (as stored; an archived block's
    /// checked against the local address index).
    pub async fn block_senders(&self, at: BlockRef<M::Hash>) -> Result<Vec<M::Address>, StorageError> {
        self.read("block_senders", move |s| s.through().block_senders(&at)).await
    }

    /// A canonical transaction by hash, with its location.
    pub async fn transaction(&self, tx_hash: M::Hash) -> Result<Option<Located<M::Tx, M>>, StorageError> {
        self.read("transaction", move |s| s.through().transaction(&tx_hash)).await
    }

    /// A canonical transaction's receipt by transaction hash.
    pub async fn receipt(&self, tx_hash: M::Hash) -> Result<Option<Located<M::Receipt, M>>, StorageError> {
        self.read("receipt", move |s| s.through().receipt(&tx_hash)).await
    }

    /// A canonical transaction's sender by transaction hash (as stored, never recovered again).
    pub async fn sender(&self, tx_hash: M::Hash) -> Result<Option<Located<M::Address, M>>, StorageError> {
        self.read("sender", move |s| s.through().sender(&tx_hash)).await
    }

    /// The state root at the head, from the stored state trie.
    pub async fn state_root(&self) -> Result<[u8; 32], StorageError> {
        self.read("state_root", |s| Ok(s.stores.chain.state_root()?)).await
    }

    /// A Merkle proof of `key`'s value at the head against the head's state root
    /// (`eth_getProof`-style; [`chain_store::StateProof::verify`] checks it).
    pub async fn state_proof(&self, key: M::StateKey) -> Result<chain_store::StateProof<M>, StorageError> {
        self.read("state_proof", move |s| Ok(s.stores.chain.state_proof(&key)?)).await
    }

    /// A proof of `key`'s value after canonical block `number` (not pruned) against that
    /// block's state root (see [`chain_store::ChainStore::state_proof_at`]).
    pub async fn state_proof_at(
        &self,
        key: M::StateKey,
        number: u64,
    ) -> Result<chain_store::StateProof<M>, StorageError> {
        self.read("state_proof_at", move |s| Ok(s.stores.chain.state_proof_at(&key, number)?)).await
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
        self.read("logs", move |s| s.through().logs(&filter, cap)).await
    }

    /// An address's transactions, paginated.
    pub async fn address_transactions(
        &self,
        address: M::Address,
        query: AddressQuery,
    ) -> Result<AddressPage<M::Hash>, StorageError> {
        self.read("address_transactions", move |s| Ok(s.stores.chain.address_transactions(&address, &query)?)).await
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
}

impl<B: Backend, M: crate::model::NodeModel> StorageHandle<B, M> {
    /// The verified proof that a canonical transaction (`Item::Transaction`) or its receipt
    /// (`Item::Receipt`) is in its block's trie, the block read through the archive if pruned
    /// locally (see [`crate::NodeReader::inclusion_proof`]). Ethereum only.
    pub async fn inclusion_proof(
        &self,
        tx_hash: M::Hash,
        item: chain_eth::inclusion::Item,
    ) -> Result<Option<<M::Proofs as crate::model::HistoryProofs<M>>::Proof>, StorageError> {
        self.read("inclusion_proof", move |s| s.through().inclusion_proof(&tx_hash, item)).await
    }

    /// The header proof of canonical block `number` (see [`crate::NodeReader::header_proof`]).
    /// Ethereum only.
    pub async fn header_proof(
        &self,
        number: u64,
    ) -> Result<Option<<M::Proofs as crate::model::HistoryProofs<M>>::HeaderProof>, StorageError> {
        use crate::model::HistoryProofs;
        self.read("header_proof", move |s| M::Proofs::header_proof(&s.stores.chain, number)).await
    }
}
