//! `nodestore migrate`: schema migrations, `copy` to another engine, and the legacy import.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use node_storage::StepReport;
use node_storage::{
    Backend, BackendKind, BackendVisitor, Config, MigrateOptions, MigrateProgress, NodeModel, StoreId, copy_node,
    migrate_node, with_backend,
};
use serde_json::json;

use crate::output::{json, table};
use crate::progress::{Bars, spinner};

/// `migrate copy --to-backend E --to-path DIR`: the stopped node (engine `S`, model `M`)
/// copied to a new node on engine `to`, table by table, and verified.
pub(crate) fn copy<S: Backend, M: NodeModel>(
    from: Config,
    to: BackendKind,
    to_path: PathBuf,
    as_json: bool,
) -> anyhow::Result<()> {
    let mut target = from.clone();
    target.backend = to;
    target.data_dir = to_path;
    let visitor = CopyTo::<S, M> { from, to: target.clone(), as_json, source: PhantomData };
    with_backend(&target, visitor)?
}

/// Copies from engine `S` (the configured one) to the engine `to` names, for model `M`.
struct CopyTo<S, M> {
    from: Config,
    to: Config,
    as_json: bool,
    source: PhantomData<(S, M)>,
}

impl<S: Backend, M: NodeModel> BackendVisitor for CopyTo<S, M> {
    type Output = anyhow::Result<()>;

    fn visit<D: Backend>(self) -> anyhow::Result<()> {
        let bar = spinner(self.as_json, "{spinner} copying {msg}: {pos} entries {per_sec}");
        let report = copy_node::<S, D, M>(&self.from, &self.to, &mut |store, n| {
            bar.set_message(store.name());
            bar.set_position(n);
        });
        bar.finish_and_clear();
        let report = report?;
        if self.as_json {
            let stores: Vec<_> = report
                .stores
                .iter()
                .map(|(store, tables)| {
                    json!({ "store": store, "tables": tables.iter().map(|t| json!({
                        "table": t.table, "keys": t.keys, "digest": t.digest })).collect::<Vec<_>>() })
                })
                .collect();
            json(&json!({ "from": S::KIND.to_string(), "to": D::KIND.to_string(),
                "to_path": self.to.data_dir.display().to_string(), "entries": report.entries, "stores": stores }));
        } else {
            let rows: Vec<Vec<String>> = report
                .stores
                .iter()
                .flat_map(|(store, tables)| {
                    tables.iter().map(move |t| {
                        vec![store.to_string(), t.table.clone(), t.keys.to_string(), t.digest[..16].to_owned()]
                    })
                })
                .collect();
            table(&["store", "table", "keys", "digest (BLAKE3, first 16)"], &rows);
            println!(
                "copied {} entries from {} to {} at {}; every table verified entry by entry",
                report.entries,
                S::KIND,
                D::KIND,
                self.to.data_dir.display()
            );
        }
        Ok(())
    }
}

/// `nodestore migrate [--dry-run] [--no-backup]`: every store to this build's schema version.
pub(crate) async fn schema<B: Backend, M: NodeModel>(
    config: &Config,
    options: MigrateOptions,
    as_json: bool,
) -> anyhow::Result<()> {
    let bar = spinner(as_json, "{spinner} {msg}: {pos} entries {per_sec}");
    let b = bar.clone();
    let progress: Arc<MigrateProgress> = Arc::new(move |store: StoreId, from: u32, phase: &str, n: u64| {
        b.set_message(format!("{store} v{from}→v{} {phase}", from + 1));
        b.set_position(n);
    });
    let bars = Bars::bytes(as_json);
    let result = migrate_node::<B, M, _>(config, options, progress, bars.clone()).await;
    bars.finish();
    bar.finish_and_clear();
    let report = result.context(if options.dry_run {
        "dry run failed (nothing was changed)"
    } else {
        "migration failed (every committed step stays committed; rerun `nodestore migrate` to resume)"
    })?;
    let steps: Vec<(StoreId, &StepReport)> =
        report.stores.iter().flat_map(|s| s.steps.iter().map(move |r| (s.store, r))).collect();
    if as_json {
        json(&json!({
            "dry_run": report.dry_run,
            "backup": report.backup.as_ref().map(|b| b.manifest.id.clone()),
            "stores": report.stores.iter().map(|s| json!({
                "store": s.store, "stored_version": s.plan.stored, "build_version": s.plan.target,
                "planned": s.plan.steps.iter().map(|p| json!({ "from": p.from, "to": p.from + 1,
                    "description": p.description, "table": p.table, "estimate": p.estimate,
                    "resume_after": p.resume.as_ref().map(|r| r.scanned) })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "steps": steps.iter().map(|(store, r)| json!({ "store": store, "from": r.from, "to": r.from + 1,
                "table": r.table, "scanned": r.scanned, "changed": r.changed, "verified": r.verified,
                "resumed_after": r.resumed_after })).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if report.was_current() {
        let versions: Vec<String> = report.stores.iter().map(|s| format!("{} v{}", s.store, s.plan.stored)).collect();
        println!("nothing to migrate: every store is at this build's schema version ({})", versions.join(", "));
        return Ok(());
    }
    if let Some(b) = &report.backup {
        println!("backup {} taken first ({} files)", b.manifest.id, b.manifest.totals.files);
    }
    let rows: Vec<Vec<String>> = steps
        .iter()
        .map(|(store, r)| {
            vec![
                store.to_string(),
                format!("v{}→v{}", r.from, r.from + 1),
                r.description.to_owned(),
                r.scanned.to_string(),
                r.changed.to_string(),
                r.verified.to_string(),
                if r.resumed_after > 0 { format!("after {}", r.resumed_after) } else { "-".into() },
            ]
        })
        .collect();
    table(&["store", "step", "change", "scanned", "changed", "verified", "resumed"], &rows);
    if report.dry_run {
        println!("dry run: nothing was written; run without --dry-run to migrate");
    } else {
        println!("migrated and verified; every store is at this build's schema version");
    }
    Ok(())
}

/// `nodestore migrate import-legacy --from DIR [--dry-run]`.
pub(crate) fn import_legacy<B: Backend, M: NodeModel>(
    config: &Config,
    from: &Path,
    dry_run: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let bar = spinner(as_json, "{spinner} {msg}: {pos} records {per_sec}");
    let report = node_storage::import_legacy::<B, M>(config, from, dry_run, &mut |phase, n| {
        bar.set_message(phase);
        bar.set_position(n);
    });
    bar.finish_and_clear();
    let report = report.context("legacy import failed (nothing was committed)")?;
    let c = report.counts;
    if as_json {
        json(&json!({ "dry_run": report.dry_run, "target": report.target.display().to_string(),
            "vertices": c.vertices, "edges": c.edges, "metadata": c.metas, "height_index": c.heights,
            "time_index": c.times, "finalized": c.finalized }));
    } else {
        let rows = [
            ("0x01 vertex", c.vertices),
            ("0x02 edge", c.edges),
            ("0x03 metadata", c.metas),
            ("0x04 height index", c.heights),
            ("0x05 timestamp index", c.times),
            ("0x06 finalized", c.finalized),
        ]
        .iter()
        .map(|(k, n)| vec![k.to_string(), n.to_string()])
        .collect::<Vec<_>>();
        table(&["legacy record", "imported and verified"], &rows);
        if report.dry_run {
            println!("dry run: imported into a scratch store, verified, and removed; nothing changed");
        } else {
            println!("imported into {}; every record verified", report.target.display());
        }
    }
    Ok(())
}

/// `nodestore migrate legacy-fixture`.
pub(crate) fn legacy_fixture(
    out: &Path,
    vertices: usize,
    finalized: usize,
    corrupt: usize,
    seed: u64,
    as_json: bool,
) -> anyhow::Result<()> {
    let damaged = node_storage::write_legacy_fixture(out, vertices, finalized, corrupt, seed)?;
    if as_json {
        json(&json!({ "path": out.display().to_string(), "vertices": vertices, "finalized": finalized.min(vertices),
            "corrupt_keys": damaged }));
    } else {
        println!("wrote a legacy database with {vertices} vertices to {}", out.display());
        for key in damaged {
            println!("damaged record: {key}");
        }
    }
    Ok(())
}
