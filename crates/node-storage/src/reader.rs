//! [`NodeReader`]: a node's stores opened for reading only, for inspection commands (`check`,
//! `stats`, `get`, `logs`, `history`, `dead-letter list`) that must not change the data
//! directory: they work on a read-only mount, never create stores, and refuse a directory
//! that holds none.

use std::path::Path;

use chain_store::evm::Evm;
use chain_store::{ChainModel, ChainStore, IntegrityReport as ChainReport};
use dag_store::{DagStore, IntegrityReport as DagReport};
use storage_api::{Direction, KvRead, KvStats, OpenError, ReadExt, TableStats};

use crate::backend::{Backend, disk_usage};
use crate::config::Config;
use crate::deadletter::{self, DeadLetter, DeadLetters};
use crate::error::StorageError;
use crate::handle::StoreStats;
use crate::stores::{StoreId, Stores};

/// The chain, DAG and node stores of the node at `config.data_dir`, opened read-only on engine
/// `B` (RocksDB and redb: nothing on disk changes; sled cannot open without writing, see
/// [`Backend::Reader`]). Reads are synchronous and uncached; the view is the data as it was when
/// opened.
#[derive(Debug)]
pub struct NodeReader<B: Backend, M: ChainModel = Evm> {
    config: Config,
    stores: Stores<B::Reader, M>,
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
        Ok(NodeReader { stores, config })
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

    /// Disk and per-table figures of every store.
    pub fn stats(&self) -> Result<Vec<StoreStats>, StorageError> {
        let dir = &self.config.data_dir;
        self.stores.engines().into_iter().map(|(id, store)| store_stats::<B, _>(dir, id, store)).collect()
    }

    /// The dead letters, oldest first.
    pub fn dead_letters(&self) -> Result<Vec<DeadLetter>, StorageError> {
        dead_letters(&self.stores.node)
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
