//! Restores into a stopped node: the backup is downloaded and verified into a fresh directory
//! next to the data directory, opened and integrity-checked there, and only then swapped in
//! atomically. The previous data is kept beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chain_store::ChainModel;
use storage_backup::{BackupError, BackupKind, Backups, Manifest, Progress, RestoredFrom, Selector, swap_in};

use crate::backend::Backend;
use crate::backend::caps;
use crate::config::Config;
use crate::error::StorageError;
use crate::handle::StorageHandle;
use crate::store_id::StoreId;

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
            let load = <B::Loading as caps::Loading<B>>::LOAD_CHUNK;
            backups.load_logical(manifest, scratch, stores.clone(), load, progress).await?;
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
