//! `nodestore backup list|verify|prune` (the destination alone), `backup restore` and
//! `recover --from-backup` (the stopped node).

use node_storage::backups::{Backups, Selector, parse_time};
use node_storage::{Backend, Config, NodeModel, restore as restore_node};
use serde_json::json;

use crate::output::{bytes, json, table};
use crate::progress::Bars;
use crate::render::summary;

fn selector(id: Option<String>, at: Option<String>) -> anyhow::Result<Selector> {
    Ok(match (id, at) {
        (Some(_), Some(_)) => anyhow::bail!("give a backup id or --at, not both"),
        (Some(id), None) => Selector::Id(id),
        (None, Some(t)) => Selector::AtOrBefore(parse_time(&t)?),
        (None, None) => Selector::Latest,
    })
}

/// `backup list`: the backups at the destination, oldest first.
pub(crate) async fn list(config: &Config, as_json: bool) -> anyhow::Result<()> {
    let backups = Backups::open(&config.backup)?;
    let all = backups.list().await?;
    if as_json {
        let rows: Vec<_> = all
            .iter()
            .map(|b| match &b.manifest {
                Some(m) => summary(m),
                None => json!({ "id": b.id, "complete": false }),
            })
            .collect();
        json(&json!(rows));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = all
        .iter()
        .map(|b| match &b.manifest {
            Some(m) => vec![
                m.id.clone(),
                m.created_at.clone(),
                m.kind.to_string(),
                m.stores
                    .iter()
                    .find(|s| s.name == node_storage::StoreId::Chain.name())
                    .and_then(|c| c.head)
                    .map_or("-".into(), |h| h.to_string()),
                m.totals.files.to_string(),
                bytes(m.totals.raw_bytes),
                bytes(m.totals.stored_bytes),
            ],
            None => {
                vec![b.id.clone(), "(incomplete)".into(), "-".into(), "-".into(), "-".into(), "-".into(), "-".into()]
            }
        })
        .collect();
    table(&["id", "created", "kind", "head", "files", "raw", "stored"], &rows);
    println!("{} backup(s) at {}", all.len(), backups.destination().describe());
    Ok(())
}

/// `backup verify`: download a backup and check every byte against its manifest.
pub(crate) async fn verify(
    config: &Config,
    id: Option<String>,
    at: Option<String>,
    as_json: bool,
) -> anyhow::Result<()> {
    let backups = Backups::open(&config.backup)?;
    let m = backups.select(&selector(id, at)?).await?;
    let bars = Bars::bytes(as_json);
    let scratch = std::env::temp_dir().join(format!("nodestore-verify-{}", m.id));
    let r = backups.verify(&m, &scratch, bars.clone()).await;
    let _ = std::fs::remove_dir_all(&scratch);
    bars.finish();
    r?;
    if as_json {
        json(&json!({ "verified": summary(&m) }));
    } else {
        println!(
            "backup {} verified: {} files, {} checked against the manifest",
            m.id,
            m.totals.files,
            bytes(m.totals.raw_bytes)
        );
    }
    Ok(())
}

/// `backup restore`: replace the stopped node's data directory with a verified backup.
pub(crate) async fn restore<B: Backend, M: NodeModel>(
    config: &Config,
    id: Option<String>,
    at: Option<String>,
    dry_run: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let bars = Bars::bytes(as_json);
    let report = restore_node::<B, M, _>(config, &selector(id, at)?, dry_run, bars.clone()).await;
    bars.finish();
    let report = report?;
    let m = &report.manifest;
    if as_json {
        json(&json!({ "restored": summary(m), "dry_run": report.dry_run,
                "previous": report.previous.as_ref().map(|p| p.display().to_string()) }));
    } else if report.dry_run {
        println!(
            "dry run: backup {} ({}, {}) verified; restoring it would replace {}",
            m.id,
            m.created_at,
            bytes(m.totals.raw_bytes),
            config.data_dir.display()
        );
    } else {
        println!("restored backup {} ({}) into {}", m.id, m.created_at, config.data_dir.display());
        if let Some(p) = &report.previous {
            println!("the previous data was kept at {} (delete it once satisfied)", p.display());
        }
    }
    Ok(())
}

/// `backup prune`: apply the retention policy and delete unreferenced objects.
pub(crate) async fn prune(config: &Config, dry_run: bool, as_json: bool) -> anyhow::Result<()> {
    let backups = Backups::open(&config.backup)?;
    let r = backups.prune(dry_run).await?;
    if as_json {
        json(&json!({ "dry_run": r.dry_run, "kept": r.kept, "deleted": r.deleted, "incomplete": r.incomplete,
                "objects": r.objects.len(), "freed_bytes": r.freed_bytes }));
    } else {
        let verb = if dry_run { "would delete" } else { "deleted" };
        for id in &r.deleted {
            println!("{verb} backup {id}");
        }
        for id in &r.incomplete {
            println!("{verb} interrupted backup {id}");
        }
        println!(
            "kept {} backup(s); {verb} {} backup(s), {} interrupted, {} unreferenced object(s) ({})",
            r.kept.len(),
            r.deleted.len(),
            r.incomplete.len(),
            r.objects.len(),
            bytes(r.freed_bytes)
        );
    }
    Ok(())
}

/// `nodestore recover --from-backup`.
pub(crate) async fn recover<B: Backend, M: NodeModel>(
    config: &Config,
    id: Option<String>,
    at: Option<String>,
    dry_run: bool,
    force: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let selector = match (id, at) {
        (None, None) => None,
        (id, at) => Some(selector(id, at)?),
    };
    let bars = Bars::bytes(as_json);
    let r =
        node_storage::recover_from_backup::<B, M, Bars>(config, selector.as_ref(), dry_run, force, bars.clone()).await;
    bars.finish();
    let r = r?;
    if as_json {
        json(&serde_json::to_value(&r)?);
        return Ok(());
    }
    for s in &r.stores {
        match &s.damage {
            Some(d) => println!("{}: {d}", s.store),
            None => println!("{}: sound", s.store),
        }
    }
    for (id, why) in &r.skipped {
        println!("passed over backup {id}: {why}");
    }
    let u = &r.uncovered;
    println!(
        "backup {} (taken {}): chain head {}, DAG finalized {}",
        r.backup,
        u.backup_taken_at,
        u.backup_chain_head.map_or("-".into(), |h| h.to_string()),
        u.backup_dag_finalized.map_or("-".into(), |h| h.to_string())
    );
    println!("not covered by the backup:");
    match (u.chain_blocks(), u.damaged_chain_head) {
        (Some((from, to)), _) => println!("  chain blocks {from}..={to} (the damaged node had them)"),
        (None, Some(_)) => println!("  no chain blocks beyond the damaged node's head"),
        (None, None) => println!("  chain: unknown (the damaged chain store cannot tell its head)"),
    }
    match (u.dag_sequences(), u.damaged_dag_finalized) {
        (Some((from, to)), _) => println!("  finalized DAG sequences {from}..={to}"),
        (None, Some(_)) => println!("  no finalized DAG vertices beyond the damaged node's"),
        (None, None) => println!("  DAG: unknown (the damaged DAG store cannot tell)"),
    }
    println!("  anything written after {}", u.backup_taken_at);
    match &r.damaged_kept_at {
        Some(p) => println!("restored; the damaged data directory is kept at {}", p.display()),
        None if r.dry_run => println!("dry run: the backup verified; nothing was changed"),
        None => println!("restored (there was no data directory to keep)"),
    }
    Ok(())
}
