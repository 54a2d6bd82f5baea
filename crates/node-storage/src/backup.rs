//! Taking backups, of a running node or a stopped one: storage-backup does the packaging and
//! object storage; this module supplies the engine's checkpoints and consistent readers
//! (restores: [`crate::restore`]).
//!
//! * A **physical** backup checkpoints the chain, DAG and node stores into a staging directory
//!   inside the data directory (hard links on RocksDB: no write pause), backs the directory up
//!   and removes it. Each store's checkpoint is consistent on its own.
//! * A **logical** backup dumps every table of each store from a snapshot (RocksDB, redb).
//!   sled has no snapshots, so a running sled node is not backed up (it would have to stop
//!   every write for the dump): [`backup_stopped`] backs up its stores with the node stopped.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use chain_store::ChainModel;
use storage_backup::{BackupError, BackupKind, Backups, LogicalWriter, Manifest, Progress, StoreRecord, now_ms};

use crate::backend::Backend;
use crate::backend::caps::{Physical, Views};
use crate::config::Config;
use crate::error::StorageError;
use crate::shared::Shared;
use crate::store_id::StoreId;

/// What a backup did.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct BackupReport {
    /// The manifest written.
    pub manifest: Manifest,
    /// Time to checkpoint all stores (physical) or 0.
    pub checkpoint_ms: u64,
    /// Total time.
    pub elapsed_ms: u64,
}

/// The manifest's description of each store.
fn records<B: Backend, M: ChainModel>(s: &Shared<B, M>) -> Result<[StoreRecord; 3], StorageError> {
    let node = crate::datadir::read_node_id(&s.config.data_dir)?;
    let mut records =
        s.stores.engines().map(|(id, store)| store_record::<B>(id, store, store.schema().version(), node.clone()));
    let [chain, dag, _] = &mut records;
    chain.head = s.stores.chain.head().map(|b| b.number);
    chain.finalized = s.stores.chain.finalized().map(|b| b.number);
    dag.finalized = s.stores.dag.last_finalized()?.map(|(sequence, _)| sequence);
    Ok(records)
}

/// The manifest's description of store `id` (schema version `version`) of node `node`,
/// without marks.
fn store_record<B: Backend>(id: StoreId, store: &B, version: u32, node: Option<String>) -> StoreRecord {
    StoreRecord {
        node,
        name: id.name().to_owned(),
        backend: B::KIND.to_string(),
        schema: store.schema().name().to_owned(),
        schema_version: version,
        head: None,
        finalized: None,
        identity: None,
        tables: Vec::new(),
    }
}

/// A physical backup of the running node: each store checkpointed (off the writer), then
/// packaged and uploaded.
pub(crate) async fn physical<B: Backend, M: ChainModel, P: Progress + 'static>(
    shared: &Arc<Shared<B, M>>,
    backups: &Backups,
    progress: Arc<P>,
) -> Result<BackupReport, StorageError> {
    let staging = shared.config.data_dir.join(format!(".backup-{}", now_ms()));
    let s = shared.clone();
    let dir = staging.clone();
    progress.phase("checkpoint", 0);
    let checkpoint = tokio::task::spawn_blocking(move || -> Result<(Vec<StoreRecord>, u64), StorageError> {
        let started = Instant::now();
        let mut records = records(&s)?.to_vec();
        let stores = records.iter_mut().zip(s.stores.engines()).map(|(record, (id, store))| (id, record, store));
        checkpoint_stores(&dir, stores)?;
        Ok((records, started.elapsed().as_millis() as u64))
    })
    .await
    .map_err(|e| StorageError::Internal(format!("checkpoint task failed: {e}")));
    let result = match checkpoint {
        Ok(Ok((records, checkpoint_ms))) => {
            tracing::info!(checkpoint_ms, "checkpoint taken");
            backups
                .create_physical(&staging, records, progress)
                .await
                .map(|manifest| BackupReport { manifest, checkpoint_ms, elapsed_ms: 0 })
                .map_err(StorageError::from)
        }
        Ok(Err(e)) | Err(e) => Err(e),
    };
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Checkpoints each store into `dir` (created) and records its identity.
fn checkpoint_stores<'a, B: Backend>(
    dir: &Path,
    stores: impl IntoIterator<Item = (StoreId, &'a mut StoreRecord, &'a B)>,
) -> Result<(), StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| BackupError::io_error("creating", dir, e))?;
    for (id, record, store) in stores {
        B::Physical::checkpoint_into(store, dir, id)?;
        record.identity = B::Physical::identity(dir, id);
    }
    Ok(())
}

/// A logical backup of the running node: every table dumped from a snapshot.
pub(crate) async fn logical<B: Backend, M: ChainModel, P: Progress + 'static>(
    shared: &Arc<Shared<B, M>>,
    backups: &Backups,
    progress: Arc<P>,
) -> Result<BackupReport, StorageError> {
    B::Views::require("a logical backup")?;
    let s = shared.clone();
    let records = records(shared)?;
    // Boxed with an explicit higher-ranked type: inferred closure types trip rustc's Send
    // analysis when the future is spawned.
    type Produce = Box<dyn for<'w> FnOnce(&mut LogicalWriter<'w>) -> Result<(), BackupError> + Send>;
    let produce: Produce = Box::new(move |w| {
        for (record, (_, store)) in records.into_iter().zip(s.stores.engines()) {
            B::Views::dump(store, record, w)?;
        }
        Ok(())
    });
    let result = backups.create_logical(produce, progress).await;
    Ok(BackupReport { manifest: result?, checkpoint_ms: 0, elapsed_ms: 0 })
}

/// Backs up a stopped node's stores as they are on disk, whatever their schema versions (the
/// manifest records the versions found): what `nodestore migrate` takes before it changes
/// anything. Chain head and finalized marks are not recorded.
pub async fn backup_stopped<B: Backend, M: ChainModel, P: Progress + 'static>(
    config: &Config,
    kind: BackupKind,
    progress: Arc<P>,
) -> Result<BackupReport, StorageError> {
    let started = Instant::now();
    let backups = Backups::open(&config.backup)?;
    let _lock = crate::datadir::open_for_writing(&config.data_dir, B::KIND)?;
    let node = crate::datadir::read_node_id(&config.data_dir)?;
    let mut stores = Vec::new();
    for id in StoreId::ALL {
        let store = B::open_store_with(config, id, id.schema::<M>(), storage_api::VersionPolicy::AllowOlder)
            .map_err(|source| StorageError::Open { store: id, source })?;
        let mut record = store_record::<B>(id, &store, store.stored_schema_version(), node.clone());
        // The chain's and the DAG's marks, where the store is at this build's schema (an older
        // one, backed up before a migration, is not read as if it were current).
        if store.stored_schema_version() == id.schema::<M>().version() {
            match id {
                StoreId::Chain => {
                    let p = chain_store::ChainStore::<_, M>::new(&store)?.pointers();
                    record.head = p.head.map(|h| h.number);
                    record.finalized = p.finalized.map(|f| f.number);
                }
                StoreId::Dag => {
                    record.finalized = dag_store::DagStore::new(&store)?.last_finalized()?.map(|(s, _)| s);
                }
                StoreId::Node => {}
            }
        }
        stores.push((id, record, store));
    }
    let (manifest, checkpoint_ms) = match kind {
        BackupKind::Physical => {
            let staging = config.data_dir.join(format!(".backup-{}", now_ms()));
            let checkpoint = Instant::now();
            let mut stores = stores;
            let taken =
                checkpoint_stores(&staging, stores.iter_mut().map(|(id, record, store)| (*id, record, &*store)))
                    .map(|()| stores.into_iter().map(|(_, record, _)| record).collect::<Vec<_>>());
            let checkpoint_ms = checkpoint.elapsed().as_millis() as u64;
            let result = match taken {
                Ok(records) => backups.create_physical(&staging, records, progress).await.map_err(StorageError::from),
                Err(e) => Err(e),
            };
            let _ = std::fs::remove_dir_all(&staging);
            (result?, checkpoint_ms)
        }
        BackupKind::Logical => {
            type Produce = Box<dyn for<'w> FnOnce(&mut LogicalWriter<'w>) -> Result<(), BackupError> + Send>;
            let produce: Produce = Box::new(move |w| {
                // The node is stopped and its lock held: the stores themselves are consistent.
                for (_, record, store) in stores {
                    w.dump_store(record, &store, &crate::backend::table_names(&store))?;
                }
                Ok(())
            });
            (backups.create_logical(produce, progress).await?, 0)
        }
    };
    tracing::info!(backup = %manifest.id, "backup of the stopped node complete");
    Ok(BackupReport { manifest, checkpoint_ms, elapsed_ms: started.elapsed().as_millis() as u64 })
}
