//! The commands, generic over the engine.

use anyhow::Context;
use node_storage::{Backend, Config, StorageHandle};
use serde_json::json;

use crate::output::json;
use crate::{BackupCmd, Cli, Cmd, DeadLetterCmd, demo};

pub(crate) type Handle<B, M> = StorageHandle<B, M>;

pub(crate) async fn run<B: Backend, M: crate::model::CliModel>(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let Cmd::Config = cli.command {
        print!("{}", config.to_toml());
        return Ok(());
    }
    // Everything but `backup create` runs without opening the store (restore needs it closed).
    let cli = match cli.command {
        Cmd::Backup { what, .. } if !matches!(what, BackupCmd::Create { .. }) => {
            return crate::backup::offline::<B, M>(&config, what, cli.json).await;
        }
        // Schema migrations open the stores themselves (this build refuses older versions).
        Cmd::Migrate { what: None, dry_run, no_backup, backup_kind, batch, .. } => {
            let backup = (!no_backup).then_some(crate::backup::kind(backup_kind));
            let options = node_storage::MigrateOptions { dry_run, backup, batch_entries: batch };
            return crate::migrate::schema::<B, M>(&config, options, cli.json).await;
        }
        Cmd::Recover { from_backup: true, backup_id, at, dry_run, force, .. } => {
            return crate::backup::recover::<B, M>(&config, backup_id, at, dry_run, force, cli.json).await;
        }
        // Without snapshots, a node's stores are backed up with nothing else open on them.
        Cmd::Backup { what: BackupCmd::Create { kind }, .. } if !B::SNAPSHOTS => {
            return crate::backup::create_stopped::<B, M>(&config, kind, cli.json).await;
        }
        command => Cli { command, ..cli },
    };
    if crate::inspect::is_read_only(&cli.command) {
        return crate::inspect::run::<B, M>(cli.command, config, cli.json);
    }
    let h: Handle<B, M> = StorageHandle::open(config.clone()).context("opening the store")?;
    let result = dispatch(&h, cli.command, cli.json).await;
    h.shutdown().await;
    result
}

async fn dispatch<B: Backend, M: crate::model::CliModel>(
    h: &Handle<B, M>,
    cmd: Cmd,
    as_json: bool,
) -> anyhow::Result<()> {
    match cmd {
        Cmd::Demo { blocks, vertices } => demo::run::<B, M>(h, blocks, vertices, as_json).await,
        Cmd::Compact => {
            crate::render::compact(h.compact().await?, as_json);
            Ok(())
        }
        Cmd::Prune { chain_keep, dag_below } => {
            prune_target(chain_keep, dag_below)?;
            crate::render::prune(&h.prune(chain_keep, dag_below).await?, as_json);
            Ok(())
        }
        Cmd::DeadLetter { what: DeadLetterCmd::Replay { ids } } => crate::render::replayed(
            &h.replay_dead_letters(if ids.is_empty() { None } else { Some(ids) }).await?,
            as_json,
        ),
        Cmd::Backup { what: BackupCmd::Create { kind }, .. } => crate::backup::create(h, kind, as_json).await,
        Cmd::Backup { .. } => unreachable!("handled before opening"),
        Cmd::Migrate { .. } | Cmd::Recover { .. } | Cmd::Import { .. } | Cmd::Export { .. } => {
            unreachable!("handled before the runtime starts")
        }
        Cmd::Repair { what: crate::RepairCmd::StateTrie { dry_run } } => {
            let r = h.repair_state_trie(dry_run).await?;
            let hex = |b: &[u8; 32]| crate::output::hex(b);
            if as_json {
                json(&json!({
                    "keys": r.keys, "storage_tries": r.storage_tries, "nodes": r.nodes, "root": hex(&r.root),
                    "stored_root": r.stored_root.as_ref().map(hex), "matched": r.matches(), "written": r.written,
                }));
            } else {
                println!(
                    "state: {} entries, {} storage trie(s), {} branch node(s); root {}",
                    r.keys,
                    r.storage_tries,
                    r.nodes,
                    hex(&r.root)
                );
                match r.stored_root {
                    Some(s) if s == r.root => println!("the stored trie matched"),
                    Some(s) => println!("the stored trie gave {} (damaged)", hex(&s)),
                    None => println!("there was no stored trie"),
                }
                println!("{}", if r.written { "rebuilt" } else { "dry run: nothing written" });
            }
            Ok(())
        }
        Cmd::Stats
        | Cmd::Get { .. }
        | Cmd::Logs { .. }
        | Cmd::History { .. }
        | Cmd::Check { .. }
        | Cmd::Archive { .. } => {
            unreachable!("read-only commands run on a NodeReader")
        }
        Cmd::DeadLetter { what: DeadLetterCmd::List } => unreachable!("read-only commands run on a NodeReader"),
        Cmd::Serve => {
            let addr = if h.config().metrics.enabled { Some(h.serve_metrics()?) } else { None };
            if let Some(_schedule) = h.spawn_backup_schedule() {
                eprintln!(
                    "backups every {} s to {}",
                    h.config().backup.schedule_interval_secs,
                    h.config().backup.destination
                );
            }
            let _admin = if h.config().admin.enabled {
                let server = h.serve_admin()?;
                eprintln!(
                    "admin endpoint on {} (owner only): nodestore stats, check, compact, prune, dead-letter and backup \
                     create|schedule run through it",
                    server.path().display()
                );
                Some(server)
            } else {
                None
            };
            if h.config().history.kind.is_some() && h.config().history.upload {
                eprintln!(
                    "uploading finalized history to the archive ([history]); `nodestore --replica archive status` shows how far"
                );
            }
            match addr {
                Some(a) => eprintln!("serving http://{a}/metrics, /metrics.json and /health; Ctrl-C to stop"),
                None => eprintln!("running (metrics endpoint disabled); Ctrl-C to stop"),
            }
            tokio::signal::ctrl_c().await?;
            eprintln!("stopping: draining the write lanes");
            Ok(())
        }
        Cmd::Config => unreachable!("handled before opening"),
    }
}

/// `prune` needs at least one of its targets.
pub(crate) fn prune_target(chain_keep: Option<u64>, dag_below: Option<u64>) -> anyhow::Result<()> {
    anyhow::ensure!(
        chain_keep.is_some() || dag_below.is_some(),
        "say what to prune: --chain-keep N and/or --dag-below H"
    );
    Ok(())
}
