//! The command line: clap's types, and the configuration they select (`--config`,
//! `--data-dir`, `--backend`, `--model`, and the backup destinations commands override).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use node_storage::backups::BackupKind;
use node_storage::{BackendKind, Config, ModelKind};

/// Run, inspect and maintain a node-storage database.
#[derive(Debug, Parser)]
#[command(name = "nodestore", version, about)]
pub(crate) struct Cli {
    /// Configuration file (TOML); `NODE_STORAGE_*` variables override it.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
    /// Data directory (overrides the config; default ./nodestore-data).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Engine (overrides the config).
    #[arg(long, global = true, value_enum)]
    pub(crate) backend: Option<Engine>,
    /// Chain model (overrides the config): the synthetic EVM-style model, or Ethereum.
    #[arg(long, global = true, value_enum)]
    pub(crate) model: Option<ModelArg>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Read a running node without stopping it: open its stores as a read replica (RocksDB
    /// secondary instances). For stats, get, logs, history, check, dead-letter list and archive
    /// status|verify.
    #[arg(long, global = true)]
    pub(crate) replica: bool,
    #[command(subcommand)]
    pub(crate) command: Cmd,
}

/// A chain model, as `--model` names it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum ModelArg {
    /// The synthetic EVM-style model.
    Evm,
    /// Ethereum.
    Ethereum,
}

impl From<ModelArg> for ModelKind {
    fn from(m: ModelArg) -> Self {
        match m {
            ModelArg::Evm => ModelKind::Synthetic,
            ModelArg::Ethereum => ModelKind::Ethereum,
        }
    }
}

/// An engine, as `--backend` and `--to-backend` name it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Engine {
    Rocksdb,
    Redb,
    Sled,
}

impl From<Engine> for BackendKind {
    fn from(e: Engine) -> Self {
        match e {
            Engine::Rocksdb => BackendKind::Rocksdb,
            Engine::Redb => BackendKind::Redb,
            Engine::Sled => BackendKind::Sled,
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Cmd {
    /// Create a database, ingest a synthetic chain and DAG, reorg, query, print stats.
    Demo {
        /// Main-chain blocks to ingest (default: 5,000 of 20 transactions; 500 mainnet-shaped
        /// blocks with `--model ethereum`).
        #[arg(long)]
        blocks: Option<u64>,
        /// DAG vertices to ingest.
        #[arg(long, default_value_t = 50_000)]
        vertices: u64,
    },
    /// Per-table keys and bytes, cache and engine figures.
    Stats,
    /// Read one object.
    Get {
        #[command(subcommand)]
        what: GetCmd,
    },
    /// Logs matching a filter (eth_getLogs semantics).
    Logs {
        /// First block.
        #[arg(long)]
        from: u64,
        /// Last block.
        #[arg(long)]
        to: u64,
        /// Emitting contract (hex); repeatable.
        #[arg(long)]
        address: Vec<String>,
        /// Topic 0 alternatives (hex); repeatable.
        #[arg(long)]
        topic0: Vec<String>,
        /// Most logs to return.
        #[arg(long, default_value_t = 1_000)]
        limit: usize,
        /// Add to each log the verified inclusion proof of its receipt (Ethereum model).
        #[arg(long)]
        proof: bool,
    },
    /// An address's transactions, newest first.
    History {
        /// The address (hex).
        address: String,
        /// Most entries.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Read-only integrity check of the chain and DAG stores.
    Check {
        /// Also recompute the state root from the flat state and compare it with the stored
        /// state trie (a full scan of the state).
        #[arg(long)]
        state: bool,
    },
    /// Rebuild derived data from what it derives from (the node must be stopped).
    Repair {
        #[command(subcommand)]
        what: RepairCmd,
    },
    /// Compact every table.
    Compact,
    /// Prune old chain bodies and/or DAG vertices.
    Prune {
        /// Keep the last N blocks' bodies, receipts and change sets.
        #[arg(long)]
        chain_keep: Option<u64>,
        /// Prune DAG vertices below this height (all must be finalized).
        #[arg(long)]
        dag_below: Option<u64>,
    },
    /// Writes that failed for good.
    DeadLetter {
        #[command(subcommand)]
        what: DeadLetterCmd,
    },
    /// Backups: create, list, verify, restore, prune (destination from `[backup]` in the config).
    Backup {
        /// Destination URL, overriding `backup.destination` (file://, s3://, gs://, az:// or a path).
        #[arg(long, global = true, value_name = "URL")]
        destination: Option<String>,
        #[command(subcommand)]
        what: BackupCmd,
    },
    /// Schema migrations (without a subcommand: bring every store to this build's schema
    /// version), copies to another engine, and the legacy import. The node must be stopped.
    Migrate {
        /// Transform and verify every entry in memory and report; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Do not take a backup (to `[backup]`'s destination) before migrating.
        #[arg(long)]
        no_backup: bool,
        /// The kind of the backup taken first.
        #[arg(long, value_enum, default_value = "physical")]
        backup_kind: KindArg,
        /// Backup destination URL, overriding `backup.destination`.
        #[arg(long, value_name = "URL")]
        backup_destination: Option<String>,
        /// Entries per synced batch (each records the progress a crashed run resumes from).
        #[arg(long, default_value_t = 1_000)]
        batch: usize,
        #[command(subcommand)]
        what: Option<MigrateCmd>,
    },
    /// Recover a node whose stores refuse to open or fail their check (stop it first).
    /// `--accept-wal-loss`: a store whose write-ahead log is damaged or missing keeps a copy of
    /// its logs aside and is recovered up to the damage, losing the writes after it; then every
    /// store is checked. `--from-backup`: the node is replaced by its latest backup that
    /// verifies and restores cleanly; the damaged data directory is kept beside it, and what the
    /// backup does not cover is reported (`--dry-run` first).
    Recover {
        /// Accept losing the writes a damaged write-ahead log held.
        #[arg(long, conflicts_with = "from_backup")]
        accept_wal_loss: bool,
        /// Replace the damaged node with a backup (destination from `[backup]`).
        #[arg(long)]
        from_backup: bool,
        /// With `--from-backup`: this backup instead of the latest that verifies.
        #[arg(long, requires = "from_backup", value_name = "ID")]
        backup_id: Option<String>,
        /// With `--from-backup`: the latest backup at or before this time.
        #[arg(long, requires = "from_backup", conflicts_with = "backup_id")]
        at: Option<String>,
        /// With `--from-backup`: diagnose, download and verify the backup, report; change nothing.
        #[arg(long, requires = "from_backup")]
        dry_run: bool,
        /// With `--from-backup`: restore although every store opens and passes its check.
        #[arg(long, requires = "from_backup")]
        force: bool,
        /// Backup destination URL, overriding `backup.destination`.
        #[arg(long, value_name = "URL")]
        backup_destination: Option<String>,
    },
    /// Import history (the node must be stopped; `--model ethereum`).
    Import {
        #[command(subcommand)]
        what: ImportCmd,
    },
    /// Export history (read-only; `--model ethereum`).
    Export {
        #[command(subcommand)]
        what: ExportCmd,
    },
    /// The history archive (`[history]` in the config): status, upload, verify.
    Archive {
        #[command(subcommand)]
        what: ArchiveCmd,
    },
    /// Run the store with maintenance, scheduled backups, history uploads and /metrics until
    /// Ctrl-C; with `--rpc`, also the read-only Ethereum JSON-RPC endpoint (`--replica`: only
    /// the endpoint, on a replica of the running node).
    Serve {
        /// Serve JSON-RPC (Ethereum model) on ADDR, or on `[rpc] listen` (default
        /// 127.0.0.1:8545) without one.
        #[arg(long, value_name = "ADDR", num_args = 0..=1)]
        rpc: Option<Option<std::net::SocketAddr>>,
    },
    /// Print the effective configuration.
    Config,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ArchiveCmd {
    /// How far the archive goes against this node: watermarks, finalized heights, lag, pruning.
    Status,
    /// Upload every finalized unit the archive lacks (stopped node; a running node uploads by
    /// itself).
    Upload,
    /// Read the whole archive back and check it: sizes, BLAKE3, decompression, indexes, every
    /// block's roots and hash, parent links, every vertex's hash, and agreement with this node.
    Verify,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ImportCmd {
    /// era1 archives (files, or directories of `*.era1`), in block order, through the bulk
    /// path: each file's blocks, accumulator and index are verified before it is committed, and
    /// a mainnet file's accumulator against mainnet's published one; an interrupted import
    /// resumes when run again; ends with the integrity check. An empty chain store starts at
    /// the first file's first block.
    Era1 {
        /// Files or directories.
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// The network of every file (default: each file's conventional name,
        /// `<network>-<epoch>-<root prefix>.era1`, says it). Files of `mainnet` are checked
        /// against its published pre-merge accumulator; a file named for another network is
        /// refused.
        #[arg(long)]
        network: Option<String>,
        /// Check mainnet files against their own blocks only, not the published accumulator
        /// (for part of an epoch, such as an export of a range).
        #[arg(long)]
        skip_published_check: bool,
        /// Memory for the sorted runs of the hash-keyed indexes, MiB (past it they spill to
        /// `<data_dir>/import-scratch`).
        #[arg(long, default_value_t = 256)]
        memory_mib: usize,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ExportCmd {
    /// Canonical blocks `--from..=--to` as era1 files (one per 8,192-block epoch) in DIR.
    Era1 {
        /// First block.
        #[arg(long)]
        from: u64,
        /// Last block.
        #[arg(long)]
        to: u64,
        /// Network name for the file names (`<network>-<epoch>-<root>.era1`).
        #[arg(long, default_value = "mainnet")]
        network: String,
        /// Output directory (created if missing).
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum GetCmd {
    /// A block by height or hash.
    Block {
        /// Height, or block hash (hex).
        id: String,
        /// Add the header's accumulator proof (pre-merge Ethereum: the Portal network's
        /// `BlockHeaderWithProof`), checked against mainnet's published accumulator.
        #[arg(long)]
        proof: bool,
    },
    /// A transaction by hash.
    Tx {
        /// Transaction hash (hex).
        hash: String,
        /// Add the Merkle-Patricia proof of the transaction in its block's transactions trie
        /// (with the header's RLP), verified before it is printed (Ethereum model).
        #[arg(long)]
        proof: bool,
    },
    /// A receipt by transaction hash.
    Receipt {
        /// Transaction hash (hex).
        hash: String,
        /// Add the Merkle-Patricia proof of the receipt in its block's receipts trie (with the
        /// header's RLP), verified before it is printed (Ethereum model).
        #[arg(long)]
        proof: bool,
    },
    /// A DAG vertex by hash.
    Vertex {
        /// Vertex hash (hex).
        hash: String,
    },
    /// An account's balance in the demo model's state.
    State {
        /// Account address (hex).
        address: String,
    },
    /// A Merkle proof of an account (or one storage slot) against the state root of the head
    /// (or of an earlier canonical block not yet pruned), verified before it is printed.
    Proof {
        /// Account address (hex).
        address: String,
        /// A storage slot of the account (hex, 32 bytes) instead of the account itself.
        #[arg(long)]
        slot: Option<String>,
        /// Prove the value after this canonical block instead of the head.
        #[arg(long)]
        at: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum RepairCmd {
    /// Rebuild the state trie from the flat state (also builds it for a database written
    /// before it existed).
    StateTrie {
        /// Compute the root and compare it with the stored trie; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeadLetterCmd {
    /// List dead letters.
    List,
    /// Replay dead letters (all, or the given ids).
    Replay {
        /// Ids to replay.
        ids: Vec<u64>,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BackupCmd {
    /// Back up the database now: through the running node's admin endpoint when it has one
    /// (`[admin] enabled`), else by opening the stopped node's stores.
    Create {
        /// Physical (engine files, incremental) or logical (portable table dump).
        #[arg(long, value_enum, default_value = "physical")]
        kind: KindArg,
    },
    /// The running node's backup schedule: interval, next and last run.
    Schedule,
    /// List backups at the destination, oldest first.
    List,
    /// Download a backup and check every byte against its manifest.
    Verify {
        /// Backup id (default: the latest).
        id: Option<String>,
        /// The latest backup at or before this time (e.g. 2026-11-22T10:00:00Z).
        #[arg(long)]
        at: Option<String>,
    },
    /// Replace the data directory with a verified backup (stop the node first).
    Restore {
        /// Backup id (default: the latest).
        id: Option<String>,
        /// The latest backup at or before this time (e.g. 2026-11-22T10:00:00Z).
        #[arg(long)]
        at: Option<String>,
        /// Download and verify only; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Apply the retention policy and delete unreferenced objects.
    Prune {
        /// Report what would be deleted; delete nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum MigrateCmd {
    /// Copy every table to a new node on another engine, then verify each table entry by
    /// entry (key counts and BLAKE3 digests). The node must be stopped.
    Copy {
        /// The target engine.
        #[arg(long, value_enum)]
        to_backend: Engine,
        /// The target data directory (must not hold stores yet).
        #[arg(long, value_name = "DIR")]
        to_path: PathBuf,
    },
    /// Import a legacy flat RocksDB database (docs/LEGACY_FORMAT.md) as this node's DAG store,
    /// which must not exist yet. Built and verified beside it, moved into place only when every
    /// record checks out.
    ImportLegacy {
        /// The legacy database directory (opened read-only).
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// Import into a scratch store, verify, report, and remove it.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write a synthetic legacy flat database, for tests and import rehearsals.
    LegacyFixture {
        /// Where (must not exist).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Vertices.
        #[arg(long, default_value_t = 10_000)]
        vertices: usize,
        /// The first N vertices are finalized, in order.
        #[arg(long, default_value_t = 0)]
        finalized: usize,
        /// Vertex records to damage (their content then no longer hashes to their key).
        #[arg(long, default_value_t = 0)]
        corrupt: usize,
        /// Generator seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// A backup kind, as `--kind` and `--backup-kind` name it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum KindArg {
    Physical,
    Logical,
}

impl From<KindArg> for BackupKind {
    fn from(k: KindArg) -> Self {
        match k {
            KindArg::Physical => BackupKind::Physical,
            KindArg::Logical => BackupKind::Logical,
        }
    }
}

impl Cli {
    /// The configuration: the file (`--config`, else defaults), `NODE_STORAGE_*` variables,
    /// then the flags.
    pub(crate) fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.config.as_deref())?;
        if let Some(d) = &self.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(b) = self.backend {
            config.backend = b.into();
        }
        if let Some(m) = self.model {
            config.model = m.into();
        }
        if let Cmd::Serve { rpc: Some(listen) } = &self.command {
            config.rpc.enabled = true;
            if let Some(addr) = listen {
                config.rpc.listen = *addr;
            }
        }
        if let Cmd::Backup { destination: Some(d), .. }
        | Cmd::Migrate { backup_destination: Some(d), .. }
        | Cmd::Recover { backup_destination: Some(d), .. } = &self.command
        {
            config.backup.destination = d.clone();
        }
        Ok(config)
    }

    /// The exact `nodestore … migrate` command for the database these arguments name.
    pub(crate) fn migrate_command(&self) -> String {
        let mut cmd = String::from("nodestore");
        if let Some(c) = &self.config {
            cmd.push_str(&format!(" --config {}", c.display()));
        }
        if let Some(d) = &self.data_dir {
            cmd.push_str(&format!(" --data-dir {}", d.display()));
        }
        if let Some(b) = self.backend {
            cmd.push_str(&format!(" --backend {}", BackendKind::from(b)));
        }
        if let Some(m) = self.model {
            cmd.push_str(&format!(" --model {}", ModelKind::from(m)));
        }
        cmd.push_str(" migrate");
        cmd
    }
}
