//! The corruption fallback (`nodestore recover --from-backup`): a stopped node whose stores
//! fail to open or fail their integrity check is replaced by its latest backup that verifies.
//!
//! 1. **Diagnose**: each store is opened read-only and checked; what fails is the damage. A
//!    node with no damage is refused (nothing to recover).
//! 2. **Choose**: backups newest first (or the one asked for); one taken from another node
//!    (its `NODE_ID` differs from this data directory's) is passed over; each other is
//!    downloaded and verified byte for byte, and restored into a fresh directory and checked —
//!    the first that passes is used, the others are reported with the reason. A dry run does
//!    all of this too, so it names the backup the real run would use.
//! 3. **Swap**: the restored data replaces the data directory atomically; the damaged directory
//!    is kept beside it, untouched. A dry run removes its restored directory instead: the node
//!    is not touched.
//! 4. **Report what the backup does not cover**: blocks and finalized vertices the damaged
//!    node had (as far as it can still be read) beyond the backup's marks, and the time since
//!    the backup was taken.

use std::path::PathBuf;
use std::sync::Arc;

use chain_store::{ChainModel, ChainStore};
use dag_store::DagStore;
use serde::{Deserialize, Serialize};
use storage_backup::{Backups, Progress, Selector};

use crate::backend::Backend;
use crate::config::Config;
use crate::error::StorageError;
use crate::store_id::StoreId;

/// What a store of the damaged node looked like.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreDiagnosis {
    /// Which store.
    pub store: StoreId,
    /// What is wrong (`None`: it opens and passes its check).
    pub damage: Option<String>,
}

/// What the chosen backup leaves out, against what could still be read of the damaged node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Uncovered {
    /// The backup's canonical head.
    pub backup_chain_head: Option<u64>,
    /// The damaged node's head (`None`: unreadable).
    pub damaged_chain_head: Option<u64>,
    /// The backup's last finalized DAG sequence.
    pub backup_dag_finalized: Option<u64>,
    /// The damaged node's last finalized DAG sequence (`None`: unreadable).
    pub damaged_dag_finalized: Option<u64>,
    /// When the backup was taken (RFC 3339): anything written since is not in it.
    pub backup_taken_at: String,
}

impl Uncovered {
    /// Blocks above the backup's head the damaged node is known to have had.
    pub fn chain_blocks(&self) -> Option<(u64, u64)> {
        let from = self.backup_chain_head.map_or(0, |h| h + 1);
        self.damaged_chain_head.filter(|h| *h >= from).map(|h| (from, h))
    }

    /// Finalized DAG sequences beyond the backup's the damaged node is known to have had.
    pub fn dag_sequences(&self) -> Option<(u64, u64)> {
        let from = self.backup_dag_finalized.map_or(0, |h| h + 1);
        self.damaged_dag_finalized.filter(|h| *h >= from).map(|h| (from, h))
    }
}

/// What `recover --from-backup` did (or, dry run, would do).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FallbackReport {
    /// Every store's diagnosis.
    pub stores: Vec<StoreDiagnosis>,
    /// The backup used.
    pub backup: String,
    /// Newer backups passed over, with why.
    pub skipped: Vec<(String, String)>,
    /// What the backup does not cover.
    pub uncovered: Uncovered,
    /// Where the damaged data directory was kept (`None`: dry run).
    pub damaged_kept_at: Option<PathBuf>,
    /// Nothing was changed.
    pub dry_run: bool,
}

/// Opens and checks each store of the stopped node read-only: the damage found.
pub fn diagnose<B: Backend, M: ChainModel>(config: &Config) -> (Vec<StoreDiagnosis>, Option<u64>, Option<u64>) {
    let (mut head, mut finalized) = (None, None);
    let mut out = Vec::new();
    for id in StoreId::ALL {
        let damage = match B::open_reader(config, id, id.schema::<M>()) {
            Err(e) => Some(format!("does not open: {e}")),
            Ok(reader) => match id {
                StoreId::Chain => match ChainStore::<_, M>::new(reader) {
                    Err(e) => Some(format!("does not open: {e}")),
                    Ok(chain) => {
                        head = chain.head().map(|h| h.number);
                        match chain.check() {
                            Ok(r) if r.is_ok() => None,
                            Ok(r) => Some(format!("{} problem(s), first: {:?}", r.problems, r.examples.first())),
                            Err(e) => Some(format!("the check failed: {e}")),
                        }
                    }
                },
                StoreId::Dag => match DagStore::new(reader) {
                    Err(e) => Some(format!("does not open: {e}")),
                    Ok(dag) => {
                        finalized = dag.last_finalized().ok().flatten().map(|(s, _)| s);
                        match dag.check() {
                            Ok(r) if r.is_ok() => None,
                            Ok(r) => Some(format!("{} problem(s), first: {:?}", r.problems.len(), r.problems.first())),
                            Err(e) => Some(format!("the check failed: {e}")),
                        }
                    }
                },
                StoreId::Node => crate::reader::dead_letters(&reader).err().map(|e| format!("unreadable: {e}")),
            },
        };
        out.push(StoreDiagnosis { store: id, damage });
    }
    (out, head, finalized)
}

/// Replaces the damaged stopped node at `config.data_dir` with the latest backup (or the one
/// `selector` names) that verifies and restores cleanly; see the module's documentation.
/// `force`: go ahead although no damage was found.
pub async fn recover_from_backup<B: Backend, M: ChainModel, P: Progress + 'static>(
    config: &Config,
    selector: Option<&Selector>,
    dry_run: bool,
    force: bool,
    progress: Arc<P>,
) -> Result<FallbackReport, StorageError> {
    let (stores, damaged_head, damaged_finalized) = diagnose::<B, M>(config);
    if !force && stores.iter().all(|s| s.damage.is_none()) {
        return Err(StorageError::NothingToRecover);
    }
    let backups = Backups::open(&config.backup)?;
    let candidates: Vec<storage_backup::Manifest> = match selector {
        Some(s) => vec![backups.select(s).await?],
        None => {
            let mut all: Vec<_> = backups.list().await?.into_iter().filter_map(|b| b.manifest).collect();
            all.sort_by_key(|m| std::cmp::Reverse(m.created_at_ms));
            all
        }
    };
    // The node's identity survives damage to its stores (a file of its own in the directory).
    let ours = crate::datadir::read_node_id(&config.data_dir).ok().flatten();
    if candidates.is_empty() {
        return Err(StorageError::NoBackups { destination: config.backup.destination.clone() });
    }
    let mut skipped = Vec::new();
    let mode = if dry_run { crate::restore::Mode::Rehearse } else { crate::restore::Mode::Restore };
    for manifest in candidates {
        let id = manifest.id.clone();
        let theirs = manifest.stores.first().and_then(|s| s.node.clone());
        if let (Some(ours), Some(theirs)) = (&ours, &theirs)
            && ours != theirs
        {
            let why = format!("taken from another node (NODE_ID {theirs}; this node is {ours})");
            tracing::warn!(backup = %id, why, "backup passed over");
            skipped.push((id, why));
            continue;
        }
        let selected = Selector::Id(id.clone());
        match crate::restore::restore_as::<B, M, P>(config, &selected, mode, progress.clone()).await {
            Ok(report) => {
                let chain = report.manifest.stores.iter().find(|s| s.name == StoreId::Chain.name());
                let dag = report.manifest.stores.iter().find(|s| s.name == StoreId::Dag.name());
                let uncovered = Uncovered {
                    backup_chain_head: chain.and_then(|c| c.head),
                    damaged_chain_head: damaged_head,
                    backup_dag_finalized: dag.and_then(|d| d.finalized),
                    damaged_dag_finalized: damaged_finalized,
                    backup_taken_at: report.manifest.created_at.clone(),
                };
                tracing::warn!(backup = %id, kept = ?report.previous, dry_run, "recovered from a backup");
                return Ok(FallbackReport {
                    stores,
                    backup: id,
                    skipped,
                    uncovered,
                    damaged_kept_at: report.previous,
                    dry_run,
                });
            }
            // The node is running, or the configuration is wrong: no other backup helps.
            Err(e @ (StorageError::InUse { .. } | StorageError::Config(_))) => return Err(e),
            Err(e) => {
                tracing::warn!(backup = %id, error = %e, "backup passed over");
                skipped.push((id, e.to_string()));
            }
        }
    }
    Err(StorageError::NoUsableBackup { tried: skipped })
}
