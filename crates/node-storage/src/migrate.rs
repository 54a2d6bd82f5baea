//! Migrations of a whole node (chain, DAG and node stores): storage-migrate plans, runs and
//! verifies; this module opens the stores, takes the backup first, and imports the legacy
//! flat layout.
//!
//! * [`migrate_node`]: schema migrations (`nodestore migrate`);
//! * [`copy_node`]: cross-backend copy (`nodestore migrate copy`);
//! * the legacy flat layout into the DAG store (`nodestore migrate import-legacy`) is in
//!   `legacy` (RocksDB builds only: the legacy database is a RocksDB one).

use std::sync::Arc;

use chain_store::ChainModel;
use storage_api::migration::MigrationStep;
use storage_api::{Schema, VersionPolicy};
use storage_backup::{BackupKind, Progress};
use storage_migrate::{Plan, RunOptions, StepReport, TableCopy, verify_tables};

use crate::backend::Backend;
use crate::backup::BackupReport;
use crate::config::Config;
use crate::error::StorageError;
use crate::store_id::StoreId;

/// What a copy did: per store, every table's verified key count and digest.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// (store, tables) in copy order.
    pub stores: Vec<(StoreId, Vec<TableCopy>)>,
    /// Entries copied in all.
    pub entries: u64,
}

/// Copies every table of the node at `from` (engine `S`, which must not be running) into a new
/// node at `to` (engine `D`), then verifies every table entry by entry. `progress` receives the
/// store being copied and the entries copied in it so far. The target must not exist yet.
pub fn copy_node<S: Backend, D: Backend, M: ChainModel>(
    from: &Config,
    to: &Config,
    progress: &mut dyn FnMut(StoreId, u64),
) -> Result<CopyReport, StorageError> {
    for store in StoreId::ALL {
        let target = D::store_path(&to.data_dir, store);
        if target.exists() {
            return Err(storage_migrate::MigrateError::TargetExists(target).into());
        }
    }
    let _source_lock = crate::datadir::open_for_writing(&from.data_dir, S::KIND)?;
    let _target_lock = crate::datadir::open_for_writing(&to.data_dir, D::KIND)?;
    let mut report = CopyReport { stores: Vec::new(), entries: 0 };
    for store in StoreId::ALL {
        let schema = store.schema::<M>();
        let open_error = |source| StorageError::Open { store, source };
        let source = S::open_store(from, store, schema.clone()).map_err(open_error)?;
        let target = D::open_store(to, store, schema).map_err(open_error)?;
        let tables: Vec<&str> = source.schema().tables().iter().map(|t| t.name).collect();
        let name = store.name();
        report.entries +=
            <D::Loading as crate::backend::caps::Loading<D>>::copy_from(&target, store, &source, &tables, &mut |n| {
                progress(store, n)
            })?;
        target.flush()?;
        report.stores.push((store, verify_tables(name, &source, &target, &tables)?));
        tracing::info!(store = name, from = %S::KIND, to = %D::KIND, "store copied and verified");
    }
    Ok(report)
}

/// The steps of store `name`, borrowed as the runner takes them.
fn step_refs(steps: &[Box<dyn MigrationStep>]) -> Vec<&dyn MigrationStep> {
    steps.iter().map(|s| s.as_ref()).collect()
}

fn open_older<B: Backend>(config: &Config, store: StoreId, schema: Schema) -> Result<B, StorageError> {
    B::open_store_with(config, store, schema, VersionPolicy::AllowOlder)
        .map_err(|source| StorageError::Open { store, source })
}

/// How [`migrate_node`] runs.
#[derive(Debug, Clone, Copy)]
pub struct MigrateOptions {
    /// Transform and verify in memory only; write nothing (no backup either).
    pub dry_run: bool,
    /// The backup to take before changing anything (`None`: none, `--no-backup`). Skipped when
    /// resuming an interrupted run, whose first attempt took it.
    pub backup: Option<BackupKind>,
    /// Entries per synced batch.
    pub batch_entries: usize,
}

/// A store's part of a migration.
#[derive(Debug, Clone)]
pub struct StoreMigration {
    /// Which store.
    pub store: StoreId,
    /// What was found on disk and the steps to run.
    pub plan: Plan,
    /// What each step did (dry run: would do).
    pub steps: Vec<StepReport>,
}

/// What [`migrate_node`] did.
#[derive(Debug, Clone)]
pub struct MigrationReport {
    /// Every store, in order.
    pub stores: Vec<StoreMigration>,
    /// The backup taken first, if one was.
    pub backup: Option<BackupReport>,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// The state trie built for a chain database written before it existed (the last step;
    /// resumable by running again, verified by recomputing the root from what was written).
    pub state_trie: Option<chain_store::TrieBuildReport>,
}

impl MigrationReport {
    /// Whether every store was already at this build's version.
    pub fn was_current(&self) -> bool {
        self.stores.iter().all(|s| s.plan.is_current()) && self.state_trie.is_none()
    }
}

/// Reports `(store, step source version, phase, entries done)`.
pub type MigrateProgress = dyn Fn(StoreId, u32, &'static str, u64) + Send + Sync;

/// The migration plan of every store of the stopped node at `config`.
pub fn plan_node<B: Backend, M: ChainModel>(config: &Config) -> Result<Vec<(StoreId, Plan)>, StorageError> {
    let _lock = crate::datadir::open_for_writing(&config.data_dir, B::KIND)?;
    let mut plans = Vec::new();
    for id in StoreId::ALL {
        let store = open_older::<B>(config, id, id.schema::<M>())?;
        let steps = id.migration_steps::<M>();
        plans.push((id, storage_migrate::plan(&store, &step_refs(&steps))?));
    }
    Ok(plans)
}

/// Brings every store of the stopped node at `config` to this build's schema versions:
/// plans, takes the backup `options` asks for, then runs each store's steps (resuming an
/// interrupted run), verifying every entry before each version bump. With
/// `options.dry_run`, transforms and verifies in memory and writes nothing.
pub async fn migrate_node<B: Backend, M: ChainModel, P: Progress + 'static>(
    config: &Config,
    options: MigrateOptions,
    progress: Arc<MigrateProgress>,
    backup_progress: Arc<P>,
) -> Result<MigrationReport, StorageError> {
    let c = config.clone();
    let plans = blocking(move || plan_node::<B, M>(&c)).await?;
    let mut report = MigrationReport {
        stores: plans.into_iter().map(|(store, plan)| StoreMigration { store, plan, steps: vec![] }).collect(),
        backup: None,
        dry_run: options.dry_run,
        state_trie: None,
    };
    if report.was_current() {
        report.state_trie = build_state_trie::<B, M>(config, options.dry_run, progress).await?;
        return Ok(report);
    }
    let resuming = report.stores.iter().any(|s| s.plan.steps.iter().any(|p| p.resume.is_some()));
    if let (Some(kind), false, false) = (options.backup, options.dry_run, resuming) {
        report.backup = Some(crate::backup::backup_stopped::<B, M, P>(config, kind, backup_progress).await?);
    }
    let c = config.clone();
    let ids: Vec<StoreId> = report.stores.iter().filter(|s| !s.plan.is_current()).map(|s| s.store).collect();
    let trie_progress = progress.clone();
    let done = blocking(move || {
        let _lock = crate::datadir::open_for_writing(&c.data_dir, B::KIND)?;
        let mut out = Vec::new();
        let run_options = RunOptions { batch_entries: options.batch_entries.max(1) };
        for id in ids {
            let schema = id.schema::<M>();
            let store = open_older::<B>(&c, id, schema.clone())?;
            let mut report = |from: u32, phase: &'static str, n: u64| progress(id, from, phase, n);
            let boxed = id.migration_steps::<M>();
            let refs = step_refs(&boxed);
            let steps = if options.dry_run {
                storage_migrate::dry_run(&store, &refs, run_options, &mut report)?
            } else {
                let steps = storage_migrate::run(&store, &refs, run_options, &mut report)?;
                store.flush()?;
                drop(store);
                // The proof that it worked: the store opens for this build.
                B::open_store(&c, id, schema).map_err(|source| StorageError::Open { store: id, source })?;
                steps
            };
            out.push((id, steps));
        }
        Ok(out)
    })
    .await?;
    for (id, steps) in done {
        if let Some(s) = report.stores.iter_mut().find(|s| s.store == id) {
            s.steps = steps;
        }
    }
    if !options.dry_run {
        report.state_trie = build_state_trie::<B, M>(config, false, trie_progress).await?;
    }
    Ok(report)
}

/// Builds the state trie of a chain store that has none (a database from before it, or one
/// kept with `[state] trie = "off"` before), then checks the stored trie against a
/// recomputation; `None` when it had one already, or when the config switches the trie off.
async fn build_state_trie<B: Backend, M: ChainModel>(
    config: &Config,
    dry_run: bool,
    progress: Arc<MigrateProgress>,
) -> Result<Option<chain_store::TrieBuildReport>, StorageError> {
    let c = config.clone();
    blocking(move || {
        let _lock = crate::datadir::open_for_writing(&c.data_dir, B::KIND)?;
        let store = B::open_store(&c, StoreId::Chain, StoreId::Chain.schema::<M>())
            .map_err(|source| StorageError::Open { store: StoreId::Chain, source })?;
        let chain = chain_store::ChainStore::<_, M>::new(store)?;
        if !c.state.trie.is_on() {
            // `[state] trie = "off"`: nothing to build, and a built trie goes.
            if !dry_run {
                crate::stores::trie_as_configured(chain, &c.state)?;
            }
            return Ok(None);
        }
        if chain.has_state_trie()? {
            return Ok(None);
        }
        let report = chain.rebuild_state_trie(dry_run, &|n| progress(StoreId::Chain, 0, "state trie", n))?;
        if !dry_run {
            let check = chain.check_state_trie(&|_| {})?;
            if !check.matches() {
                return Err(StorageError::Chain(chain_store::ChainError::StateTrieDamaged(format!(
                    "the state trie just built gives root {:?}, the state {:?}",
                    check.stored_root, check.root
                ))));
            }
        }
        Ok(Some(report))
    })
    .await
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| StorageError::Internal(format!("migration task failed: {e}")))?
}
