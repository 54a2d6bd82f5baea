//! [`NodeReader`]: a node's stores opened for reading only, for inspection commands (`check`,
//! `stats`, `get`, `logs`, `history`, `dead-letter list`) that must not change the data
//! directory: they work on a read-only mount, never create stores, and refuse a directory
//! that holds none.

use std::path::Path;

use chain_store::evm::Evm;
use chain_store::{ChainModel, ChainStore, IntegrityReport as ChainReport, chain_schema};
use dag_store::{DagStore, IntegrityReport as DagReport, dag_schema};
use storage_api::{Direction, KvRead, KvStats, OpenError, ReadExt, TableStats};

use crate::backend::{Backend, disk_usage};
use crate::config::Config;
use crate::deadletter::{self, DeadLetter, DeadLetters, node_schema};
use crate::error::StorageError;
use crate::handle::StoreStats;

/// The chain, DAG and node stores of the node at `config.data_dir`, opened read-only on engine
/// `B` (RocksDB and redb: nothing on disk changes; sled cannot open without writing, see
/// [`Backend::Reader`]). Reads are synchronous and uncached; the view is the data as it was when
/// opened.
#[derive(Debug)]
pub struct NodeReader<B: Backend, M: ChainModel = Evm> {
    config: Config,
    chain: ChainStore<B::Reader, M>,
    dag: DagStore<B::Reader>,
    node: B::Reader,
}

impl<B: Backend, M: ChainModel> NodeReader<B, M> {
    /// Opens the stores read-only. A data directory without stores is
    /// [`StorageError::NoDatabase`]; one written by another engine is
    /// [`StorageError::WrongEngine`].
    pub fn open(config: Config) -> Result<Self, StorageError> {
        config.validate()?;
        crate::datadir::open_for_reading(&config.data_dir, B::KIND)?;
        let open = |name: &'static str, schema| {
            B::open_reader(&config, name, schema).map_err(|source| match source {
                OpenError::NotFound(_) => StorageError::NoDatabase { data_dir: config.data_dir.clone() },
                source => StorageError::Open { store: name, source },
            })
        };
        let chain = ChainStore::new(open("chain", chain_schema::<M>())?)?;
        let dag = DagStore::new(open("dag", dag_schema())?)?;
        let node = open("node", node_schema())?;
        Ok(NodeReader { chain, dag, node, config })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The chain store (every read of [`ChainStore`]).
    pub fn chain(&self) -> &ChainStore<B::Reader, M> {
        &self.chain
    }

    /// The DAG store (every read of [`DagStore`]).
    pub fn dag(&self) -> &DagStore<B::Reader> {
        &self.dag
    }

    /// The integrity checks of the chain and DAG stores.
    pub fn check(&self) -> Result<(ChainReport, DagReport), StorageError> {
        Ok((self.chain.check()?, self.dag.check()?))
    }

    /// Disk and per-table figures of every store.
    pub fn stats(&self) -> Result<Vec<StoreStats>, StorageError> {
        let dir = &self.config.data_dir;
        Ok(vec![
            store_stats::<B, _>(dir, "chain", self.chain.store())?,
            store_stats::<B, _>(dir, "dag", self.dag.store())?,
            store_stats::<B, _>(dir, "node", &self.node)?,
        ])
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StorageError> {
        dead_letters(&self.node)
    }
}

/// The figures of store `name` of engine `B` in `data_dir`.
pub(crate) fn store_stats<B: Backend, S: KvStats>(
    data_dir: &Path,
    name: &'static str,
    store: &S,
) -> Result<StoreStats, StorageError> {
    let tables = store.all_table_stats()?;
    Ok(StoreStats {
        store: name,
        disk_bytes: disk_usage(&B::store_path(data_dir, name)),
        tables: tables
            .into_iter()
            .map(|(t, TableStats { approx_keys, approx_bytes })| (t, approx_keys, approx_bytes))
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
