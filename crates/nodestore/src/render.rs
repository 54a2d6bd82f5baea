//! Output of the operations, which run either inside the running node (through its admin
//! endpoint) or on the stores the CLI opens: one renderer per [`Outcome`], so both print the
//! same.

use node_storage::backups::{BackupConfig, Manifest, rfc3339};
use node_storage::{
    BackupReport, CheckSummary, DeadLetterSummary, NodeStats, Outcome, PruneSummary, Replayed, ScheduleStatus, StoreId,
};
use serde_json::json;

use crate::output::{bytes, json, table};

/// Prints `outcome`; an error if it reports a failure (a check that found problems).
/// `backup`: the configured schedule, shown when no node is running.
pub(crate) fn outcome(outcome: &Outcome, backup: &BackupConfig, as_json: bool) -> anyhow::Result<()> {
    match outcome {
        Outcome::Stats(s) => stats(s, as_json),
        Outcome::Check(c) => check(c, as_json),
        Outcome::Compacted(done) => {
            compact(*done, as_json);
            Ok(())
        }
        Outcome::Pruned(p) => {
            prune(p, as_json);
            Ok(())
        }
        Outcome::DeadLetters(page) => {
            dead_letters(&page.letters, as_json);
            Ok(())
        }
        Outcome::Replayed(r) => replayed(r, as_json),
        Outcome::BackedUp(r) => {
            backup_created(r, as_json);
            Ok(())
        }
        Outcome::Schedule(s) => {
            schedule(s.as_ref(), backup, as_json);
            Ok(())
        }
    }
}

/// A backup's manifest in brief, as JSON.
pub(crate) fn summary(m: &Manifest) -> serde_json::Value {
    let chain = m.stores.iter().find(|s| s.name == StoreId::Chain.name());
    json!({
        "id": m.id, "created_at": m.created_at, "kind": m.kind.to_string(),
        "backend": m.stores.first().map(|s| s.backend.clone()),
        "chain_head": chain.and_then(|c| c.head), "chain_finalized": chain.and_then(|c| c.finalized),
        "files": m.totals.files, "raw_bytes": m.totals.raw_bytes, "stored_bytes": m.totals.stored_bytes,
        "uploaded_bytes": m.totals.uploaded_bytes, "reused_files": m.totals.reused_files,
        "compression_ratio": (m.totals.ratio() * 100.0).round() / 100.0,
    })
}

fn stats(s: &NodeStats, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        json(&serde_json::to_value(s)?);
        return Ok(());
    }
    println!(
        "backend {}   chain head {:?}   finalized {:?}   pruned below {}",
        s.backend, s.chain_head, s.finalized, s.pruned_below
    );
    let mut rows = Vec::new();
    for s in &s.stores {
        for (table_name, keys, size) in &s.tables {
            rows.push(vec![s.store.to_string(), table_name.clone(), keys.to_string(), bytes(*size)]);
        }
        rows.push(vec![s.store.to_string(), "(on disk)".into(), String::new(), bytes(s.disk_bytes)]);
    }
    table(&["store", "table", "keys (approx)", "bytes (approx)"], &rows);
    Ok(())
}

/// Prints the check; an error if it found problems (the exit code says so).
fn check(c: &CheckSummary, as_json: bool) -> anyhow::Result<()> {
    if as_json {
        json(&serde_json::to_value(c)?);
    } else {
        println!("chain: {} blocks checked, {} problem(s)", c.chain.blocks_checked, c.chain.problems);
        for p in &c.chain.examples {
            println!("  {p}");
        }
        println!("dag:   {} vertices checked, {} problem(s)", c.dag.vertices, c.dag.problems.len());
        for p in c.dag.problems.iter().take(10) {
            println!("  {p}");
        }
        if let Some(t) = &c.state {
            match &t.stored_root {
                Some(s) if *s == t.root => {
                    println!("state: {} entries, root {} matches the state trie", t.keys, t.root)
                }
                Some(s) => println!(
                    "state: {} entries give root {} but the state trie gives {s}: run `nodestore repair state-trie`",
                    t.keys, t.root
                ),
                None => println!("state: no state trie (a database from before it): run `nodestore repair state-trie`"),
            }
        }
    }
    anyhow::ensure!(c.ok, "integrity check found problems");
    Ok(())
}

fn compact(done: bool, as_json: bool) {
    if as_json {
        json(&json!({ "compacted": done }));
    } else if done {
        println!("compacted");
    } else {
        println!("this engine cannot compact; nothing done");
    }
}

fn prune(p: &PruneSummary, as_json: bool) {
    if as_json {
        let mut out = json!({});
        if let Some(r) = &p.chain {
            out["chain"] = json!({
                "pruned_below": r.pruned_below, "previous": r.previous,
                "limited_by_finalized": r.limited_by_finalized, "limited_by_archive": r.limited_by_archive,
            });
        }
        if let Some(r) = &p.dag {
            out["dag"] = json!({ "vertices": r.vertices, "pruned_below": r.pruned_below });
        }
        json(&out);
        return;
    }
    if let Some(r) = &p.chain {
        let why = match (r.limited_by_finalized, r.limited_by_archive) {
            (_, true) => " (held at the history archive's watermark: nothing it does not hold is pruned)",
            (true, false) => " (held at the finalized block)",
            _ => "",
        };
        println!("chain: pruned below {} (was {}){why}", r.pruned_below, r.previous);
    }
    if let Some(r) = &p.dag {
        println!("dag: {} vertices pruned, below height {}", r.vertices, r.pruned_below);
    }
}

fn dead_letters(letters: &[DeadLetterSummary], as_json: bool) {
    if as_json {
        json(&json!(letters));
        return;
    }
    let rows: Vec<Vec<String>> = letters
        .iter()
        .map(|l| {
            vec![l.id.to_string(), l.op.clone(), l.attempts.to_string(), l.correlation_id.clone(), l.reason.clone()]
        })
        .collect();
    table(&["id", "op", "attempts", "request", "reason"], &rows);
}

fn replayed(r: &[Replayed], as_json: bool) -> anyhow::Result<()> {
    if as_json {
        json(&serde_json::to_value(r)?);
    } else {
        let rows: Vec<Vec<String>> = r
            .iter()
            .map(|x| vec![x.id.to_string(), x.op.clone(), x.error.clone().unwrap_or_else(|| "replayed".into())])
            .collect();
        table(&["id", "op", "result"], &rows);
    }
    Ok(())
}

fn backup_created(r: &BackupReport, as_json: bool) {
    let m = &r.manifest;
    if as_json {
        let mut s = summary(m);
        s["checkpoint_ms"] = json!(r.checkpoint_ms);
        s["elapsed_ms"] = json!(r.elapsed_ms);
        json(&s);
        return;
    }
    println!(
        "backup {} complete at {}: {} files, {} raw, {} stored (ratio {:.2}), {} uploaded, {} file(s) reused, {} ms{}",
        m.id,
        rfc3339(m.created_at_ms),
        m.totals.files,
        bytes(m.totals.raw_bytes),
        bytes(m.totals.stored_bytes),
        m.totals.ratio(),
        bytes(m.totals.uploaded_bytes),
        m.totals.reused_files,
        r.elapsed_ms,
        if r.checkpoint_ms > 0 { format!(" (checkpoint {} ms)", r.checkpoint_ms) } else { String::new() }
    );
}

/// The schedule of the running node (`None`: no node is running; `config` is what it would do).
fn schedule(status: Option<&ScheduleStatus>, config: &BackupConfig, as_json: bool) {
    if as_json {
        json(&match status {
            Some(s) => json!({ "node_running": true, "schedule": s }),
            None => json!({
                "node_running": false,
                "schedule": { "interval_secs": config.schedule_interval_secs, "kind": config.schedule_kind,
                              "prune": config.schedule_prune, "destination": config.destination },
            }),
        });
        return;
    }
    let Some(s) = status else {
        println!(
            "no node is running with its admin endpoint here; the schedule runs inside `nodestore serve`: {}",
            match config.schedule_interval_secs {
                0 => "off (backup.schedule_interval_secs = 0)".to_owned(),
                n => format!("a {} backup every {n} s to {}", config.schedule_kind, config.destination),
            }
        );
        return;
    };
    if s.interval_secs == 0 || !s.running {
        println!("backup schedule: off in the running node (backup.schedule_interval_secs = {})", s.interval_secs);
    } else {
        println!(
            "backup schedule: a {} backup every {} s to {}{}",
            s.kind,
            s.interval_secs,
            s.destination,
            if s.prune { ", then a prune of old backups" } else { "" }
        );
        match (&s.next_at, s.in_progress) {
            (_, true) => println!("a scheduled backup is running now"),
            (Some(next), false) => println!("next: {next}"),
            (None, false) => {}
        }
    }
    println!("runs: {} ({} failed)", s.runs, s.failures);
    if let Some(last) = &s.last {
        match (&last.backup, &last.error) {
            (_, Some(e)) => println!("last: {} failed after {} ms: {e}", last.started_at, last.elapsed_ms),
            (Some(id), None) => println!("last: {} backup {id} in {} ms", last.started_at, last.elapsed_ms),
            (None, None) => println!("last: {}", last.started_at),
        }
    }
}
