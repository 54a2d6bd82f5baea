//! The one routing decision. A command is first read into a [`Plan`] — what it needs of the
//! node — and then run where that is:
//!
//! * an [`Operation`] (stats, check, compact, prune, dead letters, backup create|schedule)
//!   goes through the running node's admin endpoint when one listens on the data directory;
//!   else, with `--replica`, to a replica of the running node (reads only); else to the
//!   stopped node's stores, opened for it ([`node_storage::execute_stopped`]);
//! * a [`Read`] (get, logs, history, archive status|verify) runs on a replica with
//!   `--replica`, else on the stores opened read-only;
//! * [`Local`] work (demo, serve, repair, migrations, recovery, import, export, restore,
//!   archive upload) opens the stopped node's stores here; `serve` with the JSON-RPC endpoint
//!   takes the Ethereum model's path (the endpoint serves it alone), and with `--replica` runs
//!   only the endpoint, on a replica;
//! * [`Free`] commands need no node at all.
//!
//! The engine and the model become types in one place, [`node_storage::with_node`]; every
//! match below is exhaustive.

use std::path::PathBuf;
use std::sync::Arc;

use node_storage::admin::{AdminClient, MAX_DEAD_LETTERS_PER_PAGE};
use node_storage::eth::Eth;
use node_storage::ops::Access;
use node_storage::{
    Backend, BackendVisitor, Config, MigrateOptions, ModelKind, NodeModel, NodeReader, NodeVisitor, Operation, Outcome,
    ReplicaBackend, ReplicaNodeVisitor, ReplicaVisitor, StorageError, with_backend, with_node, with_replica_backend,
    with_replica_node,
};

use crate::cli::{
    ArchiveCmd, BackupCmd, Cmd, DeadLetterCmd, Engine, ExportCmd, GetCmd, ImportCmd, MigrateCmd, RepairCmd,
};
use crate::progress::Bars;
use crate::{archive, backup, demo, era1, migrate, query, recover, render, serve};

/// What a command needs of the node.
#[derive(Debug)]
pub(crate) enum Plan {
    /// No node.
    Free(Free),
    /// An operation, wherever the node is.
    Operate(Operation),
    /// A read of the node's data.
    Read(Read),
    /// Work on the stopped node's stores.
    Local(Local),
}

/// Commands that need no node.
#[derive(Debug)]
pub(crate) enum Free {
    /// `config`: the effective configuration.
    Config,
    /// `migrate legacy-fixture`.
    LegacyFixture { out: PathBuf, vertices: usize, finalized: usize, corrupt: usize, seed: u64 },
    /// `backup list`.
    ListBackups,
    /// `backup verify`.
    VerifyBackup { id: Option<String>, at: Option<String> },
    /// `backup prune`.
    PruneBackups { dry_run: bool },
}

/// Reads of the node's data (a replica or a read-only open).
#[derive(Debug)]
pub(crate) enum Read {
    /// `get …`.
    Get(GetCmd),
    /// `logs`.
    Logs { from: u64, to: u64, address: Vec<String>, topic0: Vec<String>, limit: usize, proof: bool },
    /// `history ADDRESS`.
    AddressTransactions { address: String, limit: usize },
    /// `archive status`.
    ArchiveStatus,
    /// `archive verify`.
    ArchiveVerify,
}

/// Work on the stopped node's stores, opened here.
#[derive(Debug)]
pub(crate) enum Local {
    /// `demo`.
    Demo { blocks: Option<u64>, vertices: u64 },
    /// `serve`.
    Serve,
    /// `repair state-trie`.
    RepairStateTrie { dry_run: bool },
    /// `migrate` (schema migrations).
    Migrate(MigrateOptions),
    /// `migrate copy`.
    Copy { to_backend: Engine, to_path: PathBuf },
    /// `migrate import-legacy`.
    ImportLegacy { from: PathBuf, dry_run: bool },
    /// `recover --accept-wal-loss`.
    RecoverWal,
    /// `recover --from-backup`.
    RecoverFromBackup { id: Option<String>, at: Option<String>, dry_run: bool, force: bool },
    /// `import era1`.
    ImportEra1 { paths: Vec<PathBuf>, memory_mib: usize, checks: node_storage::Era1Checks },
    /// `export era1`.
    ExportEra1 { from: u64, to: u64, network: String, dir: PathBuf },
    /// `archive upload`.
    ArchiveUpload,
    /// `backup restore`.
    Restore { id: Option<String>, at: Option<String>, dry_run: bool },
}

impl Plan {
    /// What `cmd` needs; arguments only the command line can get wrong are refused here.
    pub(crate) fn of(cmd: Cmd) -> anyhow::Result<Plan> {
        Ok(match cmd {
            Cmd::Config => Plan::Free(Free::Config),
            Cmd::Demo { blocks, vertices } => Plan::Local(Local::Demo { blocks, vertices }),
            Cmd::Serve { .. } => Plan::Local(Local::Serve),
            Cmd::Stats => Plan::Operate(Operation::Stats),
            Cmd::Check { state } => Plan::Operate(Operation::Check { state }),
            Cmd::Compact => Plan::Operate(Operation::Compact),
            Cmd::Prune { chain_keep, dag_below } => {
                anyhow::ensure!(
                    chain_keep.is_some() || dag_below.is_some(),
                    "say what to prune: --chain-keep N and/or --dag-below H"
                );
                Plan::Operate(Operation::Prune { chain_keep, dag_below })
            }
            Cmd::DeadLetter { what: DeadLetterCmd::List } => {
                Plan::Operate(Operation::DeadLetters { after: None, limit: MAX_DEAD_LETTERS_PER_PAGE as u32 })
            }
            Cmd::DeadLetter { what: DeadLetterCmd::Replay { ids } } => {
                Plan::Operate(Operation::ReplayDeadLetters { ids: if ids.is_empty() { None } else { Some(ids) } })
            }
            Cmd::Get { what } => Plan::Read(Read::Get(what)),
            Cmd::Logs { from, to, address, topic0, limit, proof } => {
                Plan::Read(Read::Logs { from, to, address, topic0, limit, proof })
            }
            Cmd::History { address, limit } => Plan::Read(Read::AddressTransactions { address, limit }),
            Cmd::Archive { what: ArchiveCmd::Status } => Plan::Read(Read::ArchiveStatus),
            Cmd::Archive { what: ArchiveCmd::Verify } => Plan::Read(Read::ArchiveVerify),
            Cmd::Archive { what: ArchiveCmd::Upload } => Plan::Local(Local::ArchiveUpload),
            Cmd::Repair { what: RepairCmd::StateTrie { dry_run } } => Plan::Local(Local::RepairStateTrie { dry_run }),
            Cmd::Backup { what, .. } => match what {
                BackupCmd::Create { kind } => Plan::Operate(Operation::Backup { kind: kind.into() }),
                BackupCmd::Schedule => Plan::Operate(Operation::ScheduleStatus),
                BackupCmd::List => Plan::Free(Free::ListBackups),
                BackupCmd::Verify { id, at } => Plan::Free(Free::VerifyBackup { id, at }),
                BackupCmd::Prune { dry_run } => Plan::Free(Free::PruneBackups { dry_run }),
                BackupCmd::Restore { id, at, dry_run } => Plan::Local(Local::Restore { id, at, dry_run }),
            },
            Cmd::Migrate { what, dry_run, no_backup, backup_kind, batch, .. } => match what {
                None => Plan::Local(Local::Migrate(MigrateOptions {
                    dry_run,
                    backup: (!no_backup).then_some(backup_kind.into()),
                    batch_entries: batch,
                })),
                Some(MigrateCmd::Copy { to_backend, to_path }) => Plan::Local(Local::Copy { to_backend, to_path }),
                Some(MigrateCmd::ImportLegacy { from, dry_run }) => Plan::Local(Local::ImportLegacy { from, dry_run }),
                Some(MigrateCmd::LegacyFixture { out, vertices, finalized, corrupt, seed }) => {
                    Plan::Free(Free::LegacyFixture { out, vertices, finalized, corrupt, seed })
                }
            },
            Cmd::Recover { accept_wal_loss, from_backup, backup_id, at, dry_run, force, .. } => match from_backup {
                true => Plan::Local(Local::RecoverFromBackup { id: backup_id, at, dry_run, force }),
                false => {
                    anyhow::ensure!(
                        accept_wal_loss,
                        "say how to recover: `--accept-wal-loss` recovers stores whose write-ahead log is damaged, \
                         losing the writes after the damage; `--from-backup` replaces the node with its latest backup \
                         that verifies (try `--dry-run` first)"
                    );
                    Plan::Local(Local::RecoverWal)
                }
            },
            Cmd::Import { what: ImportCmd::Era1 { paths, memory_mib, network, skip_published_check } } => {
                let checks = node_storage::Era1Checks { network, skip_published: skip_published_check };
                Plan::Local(Local::ImportEra1 { paths, memory_mib, checks })
            }
            Cmd::Export { what: ExportCmd::Era1 { from, to, network, dir } } => {
                Plan::Local(Local::ExportEra1 { from, to, network, dir })
            }
        })
    }
}

impl Local {
    /// Whether the data directory must exist already (the rest create it).
    fn needs_data(&self) -> bool {
        match self {
            Local::Demo { .. } | Local::ImportLegacy { .. } | Local::ImportEra1 { .. } | Local::Restore { .. } => false,
            Local::Serve
            | Local::RepairStateTrie { .. }
            | Local::Migrate(_)
            | Local::Copy { .. }
            | Local::RecoverWal
            | Local::RecoverFromBackup { .. }
            | Local::ExportEra1 { .. }
            | Local::ArchiveUpload => true,
        }
    }
}

/// Runs `plan` on the node of `config` (`replica`: on a replica of the running node).
pub(crate) fn run(plan: Plan, config: Config, replica: bool, as_json: bool) -> anyhow::Result<()> {
    let replica_refusal = || {
        anyhow::anyhow!(
            "--replica reads a running node: it works with stats, get, logs, history, check, dead-letter list, \
             archive status|verify and serve --rpc"
        )
    };
    match plan {
        Plan::Free(free) if !replica => run_free(free, &config, as_json),
        Plan::Operate(op) => operate(op, config, replica, as_json),
        Plan::Read(read) => {
            exists(&config)?;
            if replica {
                with_replica_node(&config.clone(), ReadOn { read, config, as_json })?
            } else {
                with_node(&config.clone(), ReadOn { read, config, as_json })?
            }
        }
        Plan::Local(Local::Serve) if config.rpc.enabled => {
            exists(&config)?;
            serve_rpc(config, replica)
        }
        Plan::Local(local) if !replica => {
            if local.needs_data() {
                exists(&config)?;
            }
            with_node(&config.clone(), LocalRun { local, config, as_json })?
        }
        Plan::Free(_) | Plan::Local(_) => Err(replica_refusal()),
    }
}

/// `serve` with the JSON-RPC endpoint, which serves the Ethereum model: the node runs here
/// with it, or (`--replica`) only the endpoint runs, on a replica of the running node.
fn serve_rpc(config: Config, replica: bool) -> anyhow::Result<()> {
    if config.model != ModelKind::Ethereum {
        return Err(StorageError::WrongModel {
            operation: "the JSON-RPC endpoint",
            needs: ModelKind::Ethereum,
            model: config.model,
        }
        .into());
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    struct OnNode(Config, tokio::runtime::Runtime);
    impl BackendVisitor for OnNode {
        type Output = anyhow::Result<()>;
        fn visit<B: Backend>(self) -> anyhow::Result<()> {
            self.1.block_on(serve::run::<B, Eth, _>(self.0, serve::EthRpc))
        }
    }
    struct OnReplica(Config, tokio::runtime::Runtime);
    impl ReplicaVisitor for OnReplica {
        type Output = anyhow::Result<()>;
        fn visit<B: ReplicaBackend>(self) -> anyhow::Result<()> {
            self.1.block_on(serve::replica::<B>(self.0))
        }
    }
    if replica {
        with_replica_backend(&config.clone(), OnReplica(config, rt))?
    } else {
        with_backend(&config.clone(), OnNode(config, rt))?
    }
}

/// A data directory a command reads must be there (read-only commands create nothing).
fn exists(config: &Config) -> Result<(), StorageError> {
    if config.data_dir.exists() { Ok(()) } else { Err(StorageError::NoDatabase { data_dir: config.data_dir.clone() }) }
}

/// An operation: through the admin endpoint, on a replica, or on the stopped node.
fn operate(op: Operation, config: Config, replica: bool, as_json: bool) -> anyhow::Result<()> {
    let bars = Bars::bytes(as_json);
    let outcome = if replica {
        anyhow::ensure!(
            op.access() == Access::Read,
            "--replica reads a running node: it works with stats, get, logs, history, check, dead-letter list and \
             archive status|verify"
        );
        exists(&config)?;
        with_replica_node(&config.clone(), OnReplica { op: op.clone(), config: config.clone() })?
    } else {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        match rt.block_on(AdminClient::connect(&config))? {
            Some(client) => {
                tracing::info!(socket = %client.path().display(), "running through the node's admin endpoint");
                // One request per connection: the first on this one, any further page on a new one.
                let mut first = Some(client);
                pages(op.clone(), |op| {
                    let progress: Arc<dyn node_storage::backups::Progress> = bars.clone();
                    rt.block_on(async {
                        let client = match first.take() {
                            Some(c) => c,
                            None => AdminClient::connect(&config)
                                .await?
                                .ok_or_else(|| anyhow::anyhow!("the node stopped while the command ran"))?,
                        };
                        Ok::<_, anyhow::Error>(client.execute(op, Some(progress)).await?)
                    })
                })
            }
            None => {
                if op.access() != Access::Running {
                    exists(&config)?;
                }
                with_node(&config.clone(), OnStopped { op: op.clone(), config: config.clone(), bars: bars.clone() })?
            }
        }
    };
    bars.finish();
    let outcome = match op {
        Operation::Backup { .. } => outcome.map_err(|e| e.context("backup failed (nothing was listed as complete)"))?,
        _ => outcome?,
    };
    render::outcome(&outcome, &config.backup, as_json)
}

/// Runs `op`, and for a page of dead letters every page after it, merged into one outcome.
fn pages(op: Operation, mut execute: impl FnMut(Operation) -> anyhow::Result<Outcome>) -> anyhow::Result<Outcome> {
    let limit = match op {
        Operation::DeadLetters { limit, .. } => limit,
        op => return execute(op),
    };
    let Outcome::DeadLetters(mut all) = execute(op)? else {
        anyhow::bail!("the node answered a page of dead letters with something else");
    };
    while let Some(after) = all.next_after {
        let Outcome::DeadLetters(mut page) = execute(Operation::DeadLetters { after: Some(after), limit })? else {
            anyhow::bail!("the node answered a page of dead letters with something else");
        };
        all.letters.append(&mut page.letters);
        all.next_after = page.next_after;
    }
    Ok(Outcome::DeadLetters(all))
}

/// An operation on the stopped node's stores.
struct OnStopped {
    op: Operation,
    config: Config,
    bars: Arc<Bars>,
}

impl NodeVisitor for OnStopped {
    type Output = anyhow::Result<Outcome>;

    fn visit<B: Backend, M: NodeModel>(self) -> anyhow::Result<Outcome> {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
        let OnStopped { op, config, bars } = self;
        pages(op, |op| Ok(rt.block_on(node_storage::execute_stopped::<B, M, Bars>(&config, op, bars.clone()))?))
    }
}

/// A read operation on a replica of the running node.
struct OnReplica {
    op: Operation,
    config: Config,
}

impl ReplicaNodeVisitor for OnReplica {
    type Output = anyhow::Result<Outcome>;

    fn visit<B: ReplicaBackend, M: NodeModel>(self) -> anyhow::Result<Outcome> {
        let reader = NodeReader::<B, M>::open_replica(self.config)?;
        pages(self.op, |op| Ok(reader.execute(op)?))
    }
}

/// A read on a replica or a read-only open.
struct ReadOn {
    read: Read,
    config: Config,
    as_json: bool,
}

impl ReadOn {
    fn on<B: Backend, M: NodeModel>(self, reader: &NodeReader<B, M>) -> anyhow::Result<()> {
        match self.read {
            Read::Get(what) => query::get(reader, what, self.as_json),
            Read::Logs { from, to, address, topic0, limit, proof } => {
                query::logs(reader, from, to, &address, &topic0, limit, proof, self.as_json)
            }
            Read::AddressTransactions { address, limit } => {
                query::address_transactions(reader, &address, limit, self.as_json)
            }
            Read::ArchiveStatus => archive::status(reader, self.as_json),
            Read::ArchiveVerify => archive::verify(reader, self.as_json),
        }
    }
}

impl NodeVisitor for ReadOn {
    type Output = anyhow::Result<()>;

    fn visit<B: Backend, M: NodeModel>(self) -> anyhow::Result<()> {
        let reader = NodeReader::<B, M>::open(self.config.clone())
            .map_err(|e| anyhow::Error::new(e).context("opening the store read-only"))?;
        self.on(&reader)
    }
}

impl ReplicaNodeVisitor for ReadOn {
    type Output = anyhow::Result<()>;

    fn visit<B: ReplicaBackend, M: NodeModel>(self) -> anyhow::Result<()> {
        let reader = NodeReader::<B, M>::open_replica(self.config.clone())
            .map_err(|e| anyhow::Error::new(e).context("opening a replica of the running node"))?;
        self.on(&reader)
    }
}

/// Work on the stopped node, with its engine and model.
struct LocalRun {
    local: Local,
    config: Config,
    as_json: bool,
}

impl NodeVisitor for LocalRun {
    type Output = anyhow::Result<()>;

    fn visit<B: Backend, M: NodeModel>(self) -> anyhow::Result<()> {
        let LocalRun { local, config, as_json } = self;
        let runtime = || tokio::runtime::Builder::new_multi_thread().enable_all().build();
        match local {
            Local::Demo { blocks, vertices } => {
                runtime()?.block_on(demo::run::<B, M>(config, blocks, vertices, as_json))
            }
            Local::Serve => runtime()?.block_on(serve::run::<B, M, _>(config, serve::NoRpc)),
            Local::RepairStateTrie { dry_run } => {
                runtime()?.block_on(recover::repair_state_trie::<B, M>(config, dry_run, as_json))
            }
            Local::Migrate(options) => runtime()?.block_on(migrate::schema::<B, M>(&config, options, as_json)),
            Local::Copy { to_backend, to_path } => migrate::copy::<B, M>(config, to_backend.into(), to_path, as_json),
            Local::ImportLegacy { from, dry_run } => migrate::import_legacy::<B, M>(&config, &from, dry_run, as_json),
            Local::RecoverWal => recover::wal_loss::<B, M>(config, as_json),
            Local::RecoverFromBackup { id, at, dry_run, force } => {
                runtime()?.block_on(backup::recover::<B, M>(&config, id, at, dry_run, force, as_json))
            }
            Local::ImportEra1 { paths, memory_mib, checks } => {
                era1::import::<B, M>(&config, &paths, &checks, memory_mib, as_json)
            }
            Local::ExportEra1 { from, to, network, dir } => {
                era1::export::<B, M>(&config, from, to, &dir, &network, as_json)
            }
            Local::ArchiveUpload => archive::upload::<B, M>(config, as_json),
            Local::Restore { id, at, dry_run } => {
                runtime()?.block_on(backup::restore::<B, M>(&config, id, at, dry_run, as_json))
            }
        }
    }
}

/// Commands that need no node.
fn run_free(free: Free, config: &Config, as_json: bool) -> anyhow::Result<()> {
    let runtime = || tokio::runtime::Builder::new_current_thread().enable_all().build();
    match free {
        Free::Config => {
            print!("{}", config.to_toml());
            Ok(())
        }
        Free::LegacyFixture { out, vertices, finalized, corrupt, seed } => {
            migrate::legacy_fixture(&out, vertices, finalized, corrupt, seed, as_json)
        }
        Free::ListBackups => runtime()?.block_on(backup::list(config, as_json)),
        Free::VerifyBackup { id, at } => runtime()?.block_on(backup::verify(config, id, at, as_json)),
        Free::PruneBackups { dry_run } => runtime()?.block_on(backup::prune(config, dry_run, as_json)),
    }
}
