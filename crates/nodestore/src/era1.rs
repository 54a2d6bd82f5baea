//! `nodestore import era1 FILE|DIR…` and `nodestore export era1 --from N --to M DIR`.

use std::path::{Path, PathBuf};

use indicatif::ProgressBar;
use node_storage::{Backend, Config, Era1Checks, NodeModel, Verified, era1_files, export_era1, import_era1};
use serde_json::json;

use crate::output::{bytes, json, table};
use crate::progress::bar;

/// Imports era1 files through the bulk path (RocksDB and redb; sled has none, and only the
/// Ethereum model has era1 files: both refused before anything is opened).
pub(crate) fn import<B: Backend, M: NodeModel>(
    config: &Config,
    paths: &[PathBuf],
    checks: &Era1Checks,
    memory_mib: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let files = era1_files(paths)?;
    anyhow::ensure!(
        !files.is_empty(),
        "no era1 files in {}",
        paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    );
    let started = std::time::Instant::now();
    let total_bytes: u64 = files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
    let mut current: Option<(usize, ProgressBar)> = None;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().map_or_else(|| f.display().to_string(), |n| n.to_string_lossy().into_owned()))
        .collect();
    let mut progress = |i: usize, n: u64| {
        if current.as_ref().is_none_or(|(c, _)| *c != i) {
            if let Some((_, b)) = current.take() {
                b.finish();
            }
            current = Some((i, bar(as_json, 8192, &names[i], " blocks")));
        }
        if let Some((_, b)) = &current {
            b.set_position(n);
        }
    };
    let result = import_era1::<B, M>(config, &files, checks, memory_mib << 20, &mut progress);
    if let Some((_, b)) = current.take() {
        b.finish();
    }
    let report = result?;
    let secs = started.elapsed().as_secs_f64();
    let imported: u64 = report.files.iter().map(|(_, f)| f.imported).sum();
    let skipped: u64 = report.files.iter().map(|(_, f)| f.skipped).sum();
    if as_json {
        json(&json!({
            "files": report.files.iter().map(|(p, f)| json!({
                "file": p.display().to_string(), "start": f.summary.start, "blocks": f.summary.count,
                "imported": f.imported, "skipped": f.skipped, "accumulator": f.summary.accumulator.to_string(),
                "verified": match f.verified {
                    Verified::Published { .. } => "published accumulator",
                    _ => "own blocks",
                },
                "epoch": match f.verified { Verified::Published { epoch } => Some(epoch), _ => None },
            })).collect::<Vec<_>>(),
            "imported": imported, "skipped": skipped, "seconds": secs, "bytes": total_bytes,
            "peak_run_bytes": report.peak_run_bytes, "spilled_runs": report.spilled_runs,
            "check_ok": report.check.is_ok(),
        }));
    } else {
        let rows: Vec<Vec<String>> = report
            .files
            .iter()
            .map(|(p, f)| {
                vec![
                    p.display().to_string(),
                    format!("{}..={}", f.summary.start, f.summary.start + (f.summary.count - 1)),
                    f.imported.to_string(),
                    f.skipped.to_string(),
                    f.summary.accumulator.to_string(),
                    f.verified.to_string(),
                ]
            })
            .collect();
        table(&["file", "blocks", "imported", "skipped", "accumulator", "verified"], &rows);
        println!(
            "{imported} blocks imported, {skipped} already present, in {secs:.1} s ({:.0} blocks/s, {}/s); sorted runs peaked at {} in memory, {} spilled",
            imported as f64 / secs.max(1e-9),
            bytes((total_bytes as f64 / secs.max(1e-9)) as u64),
            bytes(report.peak_run_bytes as u64),
            report.spilled_runs
        );
        println!("integrity check: {}", report.check);
    }
    anyhow::ensure!(report.check.is_ok(), "the integrity check after the import found problems");
    Ok(())
}

/// Exports canonical blocks as era1 files.
pub(crate) fn export<B: Backend, M: NodeModel>(
    config: &Config,
    from: u64,
    to: u64,
    dir: &Path,
    network: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let b = bar(as_json, to.saturating_sub(from).saturating_add(1), "exporting", " blocks");
    let files = export_era1::<B, M>(config, from, to, dir, network, &mut |_, n| b.set_position(n));
    b.finish();
    let files = files?;
    if as_json {
        json(&json!({ "files": files.iter().map(|(p, s)| json!({
            "file": p.display().to_string(), "start": s.start, "blocks": s.count,
            "accumulator": s.accumulator.to_string(), "bytes": s.bytes,
        })).collect::<Vec<_>>() }));
    } else {
        let rows: Vec<Vec<String>> = files
            .iter()
            .map(|(p, s)| {
                vec![
                    p.display().to_string(),
                    format!("{}..={}", s.start, s.start + (s.count - 1)),
                    bytes(s.bytes),
                    s.accumulator.to_string(),
                ]
            })
            .collect();
        table(&["file", "blocks", "size", "accumulator"], &rows);
    }
    Ok(())
}
