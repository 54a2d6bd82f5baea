//! [`NodeReader`]: a node's stores opened for reading only, for inspection commands (`check`,
//! `stats`, `get`, `logs`, `history`, `dead-letter list`) that must not change the data
//! directory: they work on a read-only mount, never create stores, and refuse a directory
//! that holds none.

use std::path::Path;

use chain_eth::inclusion::Item;
use chain_store::synthetic::Synthetic;
use chain_store::{ChainModel, ChainStore, IntegrityReport as ChainReport};
use dag_store::{DagStore, IntegrityReport as DagReport};
use storage_api::{Direction, KvRead, KvStats, OpenError, ReadExt, TableStats};

use crate::backend::{Backend, disk_usage};
use crate::check::StoreStats;
use crate::config::Config;
use crate::deadletter::{self, DeadLetter, DeadLetters};
use crate::error::StorageError;
use crate::history::{ArchiveReport, ArchiveStatus, History, Through, UploadRound};
use crate::model::{HistoryProofs, NodeModel};
use crate::ops::{MAX_DEAD_LETTERS_PER_PAGE, Operation, Outcome};
use crate::store_id::StoreId;
use crate::stores::Stores;

/// The chain, DAG and node stores of the node at `config.data_dir`, opened read-only on engine
/// `B` (RocksDB and redb: nothing on disk changes; sled cannot open without writing, see
/// [`Backend::Reader`]). Reads are synchronous and uncached; the view is the data as it was when
/// opened.
#[derive(Debug)]
pub struct NodeReader<B: Backend, M: ChainModel = Synthetic> {
    config: Config,
    stores: Stores<B::Reader, M>,
    history: Option<History>,
}

impl<B: Backend, M: NodeModel> NodeReader<B, M> {
    /// The proof that a canonical transaction (`Item::Transaction`) or its receipt
    /// (`Item::Receipt`) is in its block's trie, from the archive if the block is pruned
    /// locally (the archived block checked against the local chain first), verified before it
    /// is returned; `Ok(None)` for a transaction the chain does not hold. Ethereum only
    /// (another model is [`StorageError::WrongModel`]).
    pub fn inclusion_proof(
        &self,
        tx_hash: &M::Hash,
        item: Item,
    ) -> Result<Option<<M::Proofs as HistoryProofs<M>>::Proof>, StorageError> {
        self.through().inclusion_proof(tx_hash, item)
    }

    /// The header proof of the canonical block `number` (a pre-merge Ethereum block whose epoch
    /// the store imported whole, or whose Portal proof it was given); `Ok(None)` where it has
    /// none. Ethereum only (another model is [`StorageError::WrongModel`]).
    pub fn header_proof(
        &self,
        number: u64,
    ) -> Result<Option<<M::Proofs as HistoryProofs<M>>::HeaderProof>, StorageError> {
        M::Proofs::header_proof(&self.stores.chain, number)
    }
}

impl<B: Backend, M: ChainModel> NodeReader<B, M> {
    /// Opens the stores read-only. A data directory without stores is
    /// [`StorageError::NoDatabase`]; one written by another engine is
    /// [`StorageError::WrongEngine`].
    pub fn open(config: Config) -> Result<Self, StorageError> {
        config.validate()?;
        crate::datadir::open_for_reading(&config.data_dir, B::KIND)?;
        let stores = Stores::open(|store, schema| {
            B::open_reader(&config, store, schema).map_err(|source| match source {
                OpenError::NotFound(_) => StorageError::NoDatabase { data_dir: config.data_dir.clone() },
                source => StorageError::Open { store, source },
            })
        })?;
        let history = History::open(&config.history, &config.caches.archive)?;
        Ok(NodeReader { stores, config, history })
    }

    /// The stores with the history archive behind them: reads of heights pruned locally are
    /// answered from it (see [`StorageHandle`](crate::StorageHandle)).
    pub(crate) fn through(&self) -> Through<'_, B::Reader, M> {
        Through::new(&self.stores.chain, &self.stores.dag, self.history.as_ref())
    }

    /// Block `hash`, from the archive if pruned locally.
    pub fn block(&self, hash: &M::Hash) -> Result<Option<chain_store::Block<M>>, StorageError> {
        self.through().block(hash)
    }

    /// The canonical block at `number`, from the archive if pruned locally.
    pub fn block_by_number(&self, number: u64) -> Result<Option<chain_store::Block<M>>, StorageError> {
        match self.stores.chain.canonical_hash(number)? {
            Some(hash) => self.block(&hash),
            None => Ok(None),
        }
    }

    /// A canonical transaction by hash, from the archive if pruned locally.
    pub fn transaction(&self, tx_hash: &M::Hash) -> Result<Option<chain_store::Located<M::Tx, M>>, StorageError> {
        self.through().transaction(tx_hash)
    }

    /// A canonical transaction's sender, from the archive if pruned locally.
    pub fn sender(&self, tx_hash: &M::Hash) -> Result<Option<chain_store::Located<M::Address, M>>, StorageError> {
        self.through().sender(tx_hash)
    }

    /// A canonical transaction's receipt, from the archive if pruned locally.
    pub fn receipt(&self, tx_hash: &M::Hash) -> Result<Option<chain_store::Located<M::Receipt, M>>, StorageError> {
        self.through().receipt(tx_hash)
    }

    /// A canonical transaction with its location, sender and block header, from the archive
    /// if pruned locally.
    pub fn transaction_in_block(&self, tx_hash: &M::Hash) -> Result<Option<chain_store::TxInBlock<M>>, StorageError> {
        self.through().transaction_in_block(tx_hash)
    }

    /// The receipts of block `hash`, from the archive if pruned locally.
    pub fn receipts(&self, hash: &M::Hash) -> Result<Option<Vec<M::Receipt>>, StorageError> {
        self.through().receipts(hash)
    }

    /// The senders of block `at`'s transactions, from the archive if pruned locally.
    pub fn block_senders(&self, at: &chain_store::BlockRef<M::Hash>) -> Result<Vec<M::Address>, StorageError> {
        self.through().block_senders(at)
    }

    /// Logs matching `filter` (pruned heights from the archive), at most `cap`.
    pub fn logs(
        &self,
        filter: &chain_store::LogFilter<M::Address, M::Hash>,
        cap: usize,
    ) -> Result<Vec<chain_store::LogMatchOf<M>>, StorageError> {
        self.through().logs(filter, cap)
    }

    /// Vertex `hash`, from the archive if pruned locally.
    pub fn vertex(&self, hash: &dag_store::VertexHash) -> Result<Option<dag_store::StoredVertex>, StorageError> {
        self.through().vertex(hash)
    }

    fn history(&self) -> Result<&History, StorageError> {
        self.history.as_ref().ok_or(StorageError::NoArchive)
    }

    /// The history archive against this node.
    pub fn archive_status(&self) -> Result<ArchiveStatus, StorageError> {
        self.history()?.status(&self.stores.chain, &self.stores.dag)
    }

    /// Uploads every final unit the archive lacks, from a stopped node (the node's lock is
    /// held meanwhile: a running node uploads by itself). `round` sees each round's result.
    pub fn upload_archive(&self, round: &mut dyn FnMut(&UploadRound)) -> Result<Vec<UploadRound>, StorageError> {
        let history = self.history()?;
        let _lock = crate::datadir::DataDirLock::acquire(&self.config.data_dir)?;
        let mut rounds = Vec::new();
        loop {
            let r = crate::history::upload_round(history, &self.stores.chain, &self.stores.dag)?;
            if !r.progressed() {
                return Ok(rounds);
            }
            round(&r);
            rounds.push(r);
        }
    }

    /// Reads the whole archive back and checks it against the chain's rules and this node.
    pub fn verify_archive(&self, progress: &dyn storage_history::Progress) -> Result<ArchiveReport, StorageError> {
        crate::history::verify_archive(self.history()?, &self.stores.chain, &self.stores.dag, progress)
    }

    /// Opens the stores of a node that may be running as a read replica (RocksDB secondary
    /// instances): nothing is locked or changed, and [`NodeReader::catch_up`] brings the view
    /// up to what the node has written since. Replica files go under `config.replica.scratch_dir`.
    pub fn open_replica(config: Config) -> Result<Self, StorageError>
    where
        B: crate::backend::ReplicaBackend,
    {
        config.validate()?;
        crate::datadir::open_for_reading(&config.data_dir, B::KIND)?;
        let scratch = config.replica.scratch_dir.clone();
        let stores = Stores::open(|store, schema| {
            B::open_replica(&config, store, schema, scratch.as_deref()).map_err(|source| match source {
                OpenError::NotFound(_) => StorageError::NoDatabase { data_dir: config.data_dir.clone() },
                source => StorageError::Open { store, source },
            })
        })?;
        let history = History::open(&config.history, &config.caches.archive)?;
        Ok(NodeReader { stores, config, history })
    }

    /// Catches up with the running node (a replica from [`NodeReader::open_replica`]): every
    /// store follows its primary, then the chain's pointers and the DAG's tips are reloaded.
    pub fn catch_up(&self) -> Result<(), StorageError>
    where
        B: crate::backend::ReplicaBackend,
    {
        // The DAG and node stores first: a chain pointer then never points past what they show.
        B::catch_up(self.stores.dag.store())?;
        B::catch_up(&self.stores.node)?;
        B::catch_up(self.stores.chain.store())?;
        self.stores.chain.reload()?;
        self.stores.dag.reload()?;
        Ok(())
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The chain store (every read of [`ChainStore`]).
    pub fn chain(&self) -> &ChainStore<B::Reader, M> {
        &self.stores.chain
    }

    /// The DAG store (every read of [`DagStore`]).
    pub fn dag(&self) -> &DagStore<B::Reader> {
        &self.stores.dag
    }

    /// The integrity checks of the chain and DAG stores.
    pub fn check(&self) -> Result<(ChainReport, DagReport), StorageError> {
        Ok((self.stores.chain.check()?, self.stores.dag.check()?))
    }

    /// The integrity checks as printed (`state`: also the state trie against the flat state).
    pub fn integrity_check(&self, state: bool) -> Result<crate::CheckSummary, StorageError> {
        let (chain, dag) = self.check()?;
        let trie = if state { Some(self.stores.chain.check_state_trie(&|_| {})?) } else { None };
        Ok(crate::CheckSummary::new(&chain, &dag, trie.as_ref()))
    }

    /// The node's figures as printed: engine, stores, head, finalized and pruning heights.
    pub fn node_stats(&self) -> Result<crate::NodeStats, StorageError> {
        let p = self.stores.chain.pointers();
        Ok(crate::NodeStats {
            backend: B::KIND.to_string(),
            stores: self.stats()?,
            chain_head: p.head.map(|h| h.number),
            finalized: p.finalized.map(|h| h.number),
            pruned_below: p.pruned_below,
        })
    }

    /// Disk and per-table figures of every store.
    pub fn stats(&self) -> Result<Vec<StoreStats>, StorageError> {
        let dir = &self.config.data_dir;
        self.stores.engines().into_iter().map(|(id, store)| store_stats::<B, _>(dir, id, store)).collect()
    }

    /// Runs an operation that only reads ([`Access::Read`](crate::ops::Access::Read)); any other is
    /// [`StorageError::ReadOnly`].
    pub fn execute(&self, op: Operation) -> Result<Outcome, StorageError> {
        Ok(match op {
            Operation::Stats => Outcome::Stats(self.node_stats()?),
            Operation::Check { state } => Outcome::Check(self.integrity_check(state)?),
            Operation::DeadLetters { after, limit } => Outcome::DeadLetters(deadletter::page(
                &self.stores.node,
                after,
                (limit as usize).min(MAX_DEAD_LETTERS_PER_PAGE),
            )?),
            op => return Err(StorageError::ReadOnly { operation: op.name() }),
        })
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StorageError> {
        dead_letters(&self.stores.node)
    }

    /// Every dead letter without its payload, oldest first (one payload in memory at a time).
    pub fn dead_letter_summaries(&self) -> Result<Vec<crate::DeadLetterSummary>, StorageError> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = deadletter::page(&self.stores.node, after, MAX_DEAD_LETTERS_PER_PAGE)?;
            out.extend(page.letters);
            match page.next_after {
                Some(a) => after = Some(a),
                None => return Ok(out),
            }
        }
    }
}

/// The figures of store `id` of engine `B` in `data_dir`.
pub(crate) fn store_stats<B: Backend, S: KvStats>(
    data_dir: &Path,
    id: StoreId,
    store: &S,
) -> Result<StoreStats, StorageError> {
    let tables = store.all_table_stats()?;
    Ok(StoreStats {
        store: id,
        disk_bytes: disk_usage(&B::store_path(data_dir, id)),
        tables: tables
            .into_iter()
            .map(|(t, TableStats { approx_keys, approx_bytes })| (t.to_owned(), approx_keys, approx_bytes))
            .collect(),
    })
}

/// Every dead letter in the node store, oldest first.
pub(crate) fn dead_letters<S: KvRead>(node: &S) -> Result<Vec<DeadLetter>, StorageError> {
    node.iter_all::<DeadLetters>(Direction::Forward)?
        .map(|e| {
            let (id, blob) = e?;
            deadletter::decode(id, &blob)
        })
        .collect()
}
