//! Backups of a running node and offline restores: storage-backup does the packaging,
//! verification and object storage; this module supplies the engine's checkpoints, consistent
//! readers and stores, and checks restored data by opening it.
//!
//! * A **physical** backup checkpoints the chain, DAG and node stores into a staging directory
//!   inside the data directory (hard links on RocksDB: no write pause), backs the directory up
//!   and removes it. Each store's checkpoint is consistent on its own.
//! * A **logical** backup dumps every table of each store from a snapshot (RocksDB, redb).
//!   sled has no snapshots, so a running sled node is not backed up (it would have to stop
//!   every write for the dump): [`backup_stopped`] backs up its stores with the node stopped.
//! * A **restore** (node stopped) downloads and verifies the backup into a fresh directory next
//!   to the data directory, opens it and runs the integrity checks, and only then swaps it in
//!   atomically. The previous data is kept beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chain_store::ChainModel;
use storage_backup::{
    BackupError, BackupKind, Backups, LogicalWriter, Manifest, Progress, RestoredFrom, Selector, StoreRecord, now_ms,
    swap_in,
};

use crate::backend::Backend;
use crate::config::Config;
use crate::error::StorageError;
use crate::handle::StorageHandle;
use crate::shared::Shared;
use crate::stores::StoreId;

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

/// What a restore did (or, dry-run, would do).
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The backup restored.
    pub manifest: Manifest,
    /// Where the replaced data was kept (`None`: there was none, or dry run).
    pub previous: Option<PathBuf>,
    /// Whether nothing was changed (the backup was only downloaded and verified).
    pub dry_run: bool,
}

impl<B: Backend, M: ChainModel> StorageHandle<B, M> {
    /// Takes a backup of every store to the configured destination. Recorded in metrics
    /// (maintenance task `backup`, plus sizes).
    pub async fn backup<P: Progress + 'static>(
        &self,
        kind: BackupKind,
        progress: Arc<P>,
    ) -> Result<BackupReport, StorageError> {
        let shared = self.shared().clone();
        let started = Instant::now();
        let result = async {
            let backups = Backups::open(&shared.config.backup)?;
            match kind {
                BackupKind::Physical => physical(&shared, &backups, progress).await,
                BackupKind::Logical => logical(self, &backups, progress).await,
            }
        }
        .await;
        let secs = started.elapsed().as_secs_f64();
        shared.metrics.maintenance("backup", secs, result.is_ok());
        match &result {
            Ok(r) => {
                let t = r.manifest.totals;
                let kind = if kind == BackupKind::Physical { "physical" } else { "logical" };
                shared.metrics.backup(kind, t.raw_bytes, t.stored_bytes, t.uploaded_bytes);
                tracing::info!(
                    backup = %r.manifest.id, files = t.files, raw_bytes = t.raw_bytes, uploaded_bytes = t.uploaded_bytes,
                    ratio = t.ratio(), secs, "backup complete"
                );
            }
            Err(e) => {
                shared.metrics.error(e.kind());
                tracing::warn!(error = %e, "backup failed");
            }
        }
        result.map(|mut r| {
            r.elapsed_ms = started.elapsed().as_millis() as u64;
            r
        })
    }
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

async fn physical<B: Backend, M: ChainModel, P: Progress + 'static>(
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
        checkpoint_stores(&dir, stores, "--kind logical")?;
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

/// Checkpoints each store into `dir` (created) and records its identity. `flag` is the CLI
/// flag that asks for a logical backup instead, for the error of engines without checkpoints.
fn checkpoint_stores<'a, B: Backend>(
    dir: &Path,
    stores: impl IntoIterator<Item = (StoreId, &'a mut StoreRecord, &'a B)>,
    flag: &str,
) -> Result<(), StorageError> {
    std::fs::create_dir_all(dir).map_err(|e| BackupError::io_error("creating", dir, e))?;
    for (id, record, store) in stores {
        if !store.checkpoint_into(dir, id).map_err(|e| BackupError::store(id.name(), e))? {
            return Err(BackupError::Invalid(format!(
                "the {} engine cannot take checkpoints: use a logical backup (`{flag}`)",
                B::KIND
            ))
            .into());
        }
        record.identity = B::identity(dir, id);
    }
    Ok(())
}

async fn logical<B: Backend, M: ChainModel, P: Progress + 'static>(
    handle: &StorageHandle<B, M>,
    backups: &Backups,
    progress: Arc<P>,
) -> Result<BackupReport, StorageError> {
    let shared = handle.shared();
    if !B::SNAPSHOTS {
        return Err(StorageError::NoSnapshots { operation: "a logical backup", engine: B::KIND });
    }
    let s = shared.clone();
    let records = records(shared)?;
    // Boxed with an explicit higher-ranked type: inferred closure types trip rustc's Send
    // analysis when the future is spawned.
    type Produce = Box<dyn for<'w> FnOnce(&mut LogicalWriter<'w>) -> Result<(), BackupError> + Send>;
    let produce: Produce = Box::new(move |w| {
        for (record, (_, store)) in records.into_iter().zip(s.stores.engines()) {
            store.dump(record, w)?;
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
            let taken = checkpoint_stores(
                &staging,
                stores.iter_mut().map(|(id, record, store)| (*id, record, &*store)),
                "--backup-kind logical",
            )
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
                for (_, record, store) in stores {
                    store.dump(record, w)?;
                }
                Ok(())
            });
            (backups.create_logical(produce, progress).await?, 0)
        }
    };
    tracing::info!(backup = %manifest.id, "backup of the stopped node complete");
    Ok(BackupReport { manifest, checkpoint_ms, elapsed_ms: started.elapsed().as_millis() as u64 })
}

/// Restores a backup into `config.data_dir` while the node is stopped: the backup `selector`
/// names is downloaded and verified into a fresh directory beside the data directory, opened
/// and integrity-checked, then swapped in atomically. A physical backup restores into the
/// engine it came from; a logical one into the configured engine. With `dry_run`, the backup
/// is downloaded and verified but nothing is written near the data directory.
pub async fn restore<B: Backend, M: ChainModel, P: Progress + 'static>(
    config: &Config,
    selector: &Selector,
    dry_run: bool,
    progress: Arc<P>,
) -> Result<RestoreReport, StorageError> {
    let mode = if dry_run { Mode::Verify } else { Mode::Restore };
    restore_as::<B, M, P>(config, selector, mode, progress).await
}

/// How far [`restore_as`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Download, verify, restore into staging, check, swap in.
    Restore,
    /// Download and verify only.
    Verify,
    /// Everything a restore does but the swap: the staging directory is checked, then removed
    /// (what a dry run that must choose as the real run chooses does).
    Rehearse,
}

pub(crate) async fn restore_as<B: Backend, M: ChainModel, P: Progress + 'static>(
    config: &Config,
    selector: &Selector,
    mode: Mode,
    progress: Arc<P>,
) -> Result<RestoreReport, StorageError> {
    let backups = Backups::open(&config.backup)?;
    let manifest = backups.select(selector).await?;
    let source = manifest.stores.first().map(|s| s.backend.clone()).unwrap_or_default();
    if manifest.kind == BackupKind::Physical && source != B::KIND.to_string() {
        return Err(BackupError::Invalid(format!(
            "backup {} is a physical {source} backup and the node is configured for {}: restore it with \
             `--backend {source}`, or use a logical backup to change engines",
            manifest.id,
            B::KIND
        ))
        .into());
    }
    check_schemas::<M>(&manifest)?;
    let data_dir = absolute(&config.data_dir)?;
    let name = data_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "data".into());
    let parent = data_dir.parent().map(Path::to_owned).unwrap_or_else(|| PathBuf::from("."));
    let scratch = parent.join(format!(".{name}.restore-{}.download", manifest.id));
    if mode == Mode::Verify {
        let r = backups.verify(&manifest, &scratch, progress).await;
        let _ = std::fs::remove_dir_all(&scratch);
        r?;
        return Ok(RestoreReport { manifest, previous: None, dry_run: true });
    }
    let _live = if mode == Mode::Restore { hold_live(&data_dir)? } else { None };
    let staging = parent.join(format!(".{name}.restore-{}", manifest.id));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| BackupError::io_error("creating", &staging, e))?;
    let prepared = prepare::<B, M, P>(config, &backups, &manifest, &scratch, &staging, progress).await;
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(e) = prepared {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(e);
    }
    if mode == Mode::Rehearse {
        let _ = std::fs::remove_dir_all(&staging);
        return Ok(RestoreReport { manifest, previous: None, dry_run: true });
    }
    // The node keeps its identity: the backup's, or (a backup from before identities) the one
    // the data directory had.
    let identity = match manifest.stores.first().and_then(|s| s.node.clone()) {
        Some(id) => Some(id),
        None => crate::datadir::read_node_id(&data_dir).ok().flatten(),
    };
    if let Some(id) = identity {
        crate::datadir::write_node_id(&staging, &id)?;
    }
    let RestoredFrom { previous, .. } = swap_in(&staging, &data_dir, &manifest.id)?;
    tracing::info!(backup = %manifest.id, previous = ?previous, "restore complete");
    Ok(RestoreReport { manifest, previous, dry_run: false })
}

/// Fills `staging` from the backup, then opens it as a node and runs the integrity checks.
async fn prepare<B: Backend, M: ChainModel, P: Progress + 'static>(
    config: &Config,
    backups: &Backups,
    manifest: &Manifest,
    scratch: &Path,
    staging: &Path,
    progress: Arc<P>,
) -> Result<(), StorageError> {
    let mut staged = config.clone();
    staged.data_dir = staging.to_owned();
    staged.metrics.enabled = false;
    staged.backup.schedule_interval_secs = 0;
    staged.retention.prune_interval_s = 0;
    staged.retention.compact_interval_s = 0;
    match manifest.kind {
        BackupKind::Physical => backups.extract(manifest, scratch, staging, progress).await?,
        BackupKind::Logical => {
            let stores = crate::stores::open_each::<_, M>(|store, schema| {
                B::open_store(&staged, store, schema)
                    .map(Arc::new)
                    .map_err(|source| StorageError::Open { store, source })
            })?;
            let stores: Vec<_> = stores.into_iter().map(|(id, store)| (id.name().to_owned(), store)).collect();
            backups.load_logical(manifest, scratch, stores.clone(), B::LOAD_CHUNK, progress).await?;
            for (_, store) in &stores {
                store.flush()?;
            }
        }
    }
    // Opened as a node once (what a first open does: markers, an interrupted import rolled
    // back), then checked read-only: nothing else has the staged stores open.
    staged.history.kind = None;
    let handle: StorageHandle<B, M> = StorageHandle::open(staged.clone())?;
    handle.shutdown().await;
    drop(handle);
    let checked = tokio::task::spawn_blocking(move || crate::reader::NodeReader::<B, M>::open(staged)?.check())
        .await
        .map_err(|e| StorageError::Internal(format!("restore check task failed: {e}")))?;
    let (chain, dag) = checked?;
    if !chain.is_ok() || !dag.is_ok() {
        return Err(BackupError::Invalid(format!(
            "the restored data fails its integrity check (chain: {chain:?}; DAG: {dag:?}); nothing was changed"
        ))
        .into());
    }
    Ok(())
}

/// Refuses a restore whose backup was written by other schema versions than this build's.
fn check_schemas<M: ChainModel>(manifest: &Manifest) -> Result<(), StorageError> {
    for id in StoreId::ALL {
        let (name, schema) = (id.name(), id.schema::<M>());
        let Some(record) = manifest.stores.iter().find(|s| s.name == name) else {
            return Err(BackupError::Invalid(format!("backup {} has no {name} store", manifest.id)).into());
        };
        if record.schema_version != schema.version() {
            return Err(BackupError::Invalid(format!(
                "backup {} holds {name} schema v{} and this build uses v{}: restore it with a build of that \
                 version, then migrate",
                manifest.id,
                record.schema_version,
                schema.version()
            ))
            .into());
        }
    }
    Ok(())
}

/// Takes the node lock of the live data directory for the restore's duration, so a running
/// node is refused up front and none can start while the restore runs. Nothing in the live
/// directory is opened or created (a directory without a lock file was never opened by a node
/// of this version). Its engine does not matter: the whole directory is swapped out and kept.
fn hold_live(data_dir: &Path) -> Result<Option<crate::datadir::DataDirLock>, StorageError> {
    if !data_dir.exists() {
        return Ok(None);
    }
    crate::datadir::DataDirLock::acquire_existing(data_dir)
}

fn absolute(path: &Path) -> Result<PathBuf, StorageError> {
    std::path::absolute(path).map_err(|e| BackupError::io_error("resolving", path, e).into())
}
