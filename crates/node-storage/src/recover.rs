//! Recovery of stores that refuse to open: accepting the loss of a damaged write-ahead log.

use chain_store::ChainModel;
use storage_api::VersionPolicy;
use storage_rocksdb::{RocksStore, WalLoss};

use crate::backend::{Backend, rocks_config};
use crate::config::{BackendKind, Config};
use crate::error::StorageError;
use crate::store_id::StoreId;

/// What [`recover_wal_loss`] did to one store.
#[derive(Debug, Clone)]
pub struct StoreRecovery {
    /// Which store.
    pub store: StoreId,
    /// What was lost, or `None` when the store opened normally (nothing to recover).
    pub loss: Option<WalLoss>,
}

/// Opens every RocksDB store of the stopped node at `config`; a store that refuses to open
/// because its write-ahead log is damaged or missing has its log files copied aside (to
/// `<store>.damaged-<ms>` beside it) and is recovered up to the first damage, losing what
/// came after. For an operator who has decided to accept that loss (the other way out is a
/// restore from a backup). Stores that open normally are left as they are.
pub fn recover_wal_loss<M: ChainModel>(config: &Config) -> Result<Vec<StoreRecovery>, StorageError> {
    config.validate()?;
    if config.backend != BackendKind::Rocksdb {
        return Err(StorageError::Incapable {
            operation: "accepting a write-ahead log's loss",
            needs: crate::error::Capability::WriteAheadLog,
            engine: config.backend,
        });
    }
    let _lock = crate::datadir::open_for_writing(&config.data_dir, BackendKind::Rocksdb)?;
    let mut out = Vec::new();
    for store in StoreId::ALL {
        if !RocksStore::store_path(&config.data_dir, store).exists() {
            continue;
        }
        let schema = store.schema::<M>();
        let (opened, loss) =
            RocksStore::open_accepting_wal_loss(&rocks_config(config, store), schema, VersionPolicy::Exact)
                .map_err(|source| StorageError::Open { store, source })?;
        drop(opened);
        out.push(StoreRecovery { store, loss });
    }
    Ok(out)
}
