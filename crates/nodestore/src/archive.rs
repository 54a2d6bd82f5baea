//! `nodestore archive status|upload|verify`: the history archive against this node.

use node_storage::history_tier::{Mark, Progress};
use node_storage::{Backend, Config, NodeModel, NodeReader, StorageError};
use serde_json::json;

use crate::output::{bytes, json};
use crate::progress::Bars;

fn mark_json(m: &Option<Mark>) -> serde_json::Value {
    match m {
        None => serde_json::Value::Null,
        Some(m) => json!({ "first": m.first, "next": m.next }),
    }
}

fn mark_text(m: &Option<Mark>) -> String {
    match m {
        None => "nothing archived".into(),
        Some(m) if m.next == m.first => "nothing archived".into(),
        Some(m) => format!("{}..={}", m.first, m.next - 1),
    }
}

/// `archive status`: how far the archive goes against this node.
pub(crate) fn status<B: Backend, M: NodeModel>(r: &NodeReader<B, M>, as_json: bool) -> anyhow::Result<()> {
    let s = r.archive_status()?;
    if as_json {
        json(&json!({
            "archive": s.archive, "chain": mark_json(&s.chain), "dag": mark_json(&s.dag),
            "chain_finalized": s.chain_finalized, "dag_finalized": s.dag_finalized,
            "chain_lag": s.chain_lag(), "dag_lag": s.dag_lag(),
            "chain_pruned_below": s.chain_pruned_below, "dag_pruned_below": s.dag_pruned_below,
        }));
    } else {
        println!("archive      {}", s.archive);
        println!(
            "chain        {}   finalized locally {:?}   not archived yet {:?}   pruned locally below {}",
            mark_text(&s.chain),
            s.chain_finalized,
            s.chain_lag(),
            s.chain_pruned_below
        );
        println!(
            "dag          {}   finalized locally {:?}   not archived yet {:?}   pruned locally below height {}",
            mark_text(&s.dag),
            s.dag_finalized,
            s.dag_lag(),
            s.dag_pruned_below
        );
    }
    Ok(())
}

/// `archive upload`: every finalized unit the archive lacks, from the stopped node.
pub(crate) fn upload<B: Backend, M: NodeModel>(config: Config, as_json: bool) -> anyhow::Result<()> {
    let r = NodeReader::<B, M>::open(config)?;
    let before = r.archive_status()?;
    let bar = Bars::items(as_json);
    bar.phase("blocks + vertices", before.chain_lag().unwrap_or(0) + before.dag_lag().unwrap_or(0));
    let result = r.upload_archive(&mut |round| {
        let n = |u: Option<(u64, u64)>| u.map_or(0, |(a, b)| b - a + 1);
        bar.advance(n(round.chain) + n(round.dag));
    });
    bar.finish();
    let rounds = match result {
        Err(StorageError::InUse { data_dir }) => anyhow::bail!(
            "{} is in use by a running node, which uploads finalized history by itself (`nodestore archive \
             status` shows how far it is)",
            data_dir.display()
        ),
        r => r?,
    };
    let after = r.archive_status()?;
    let sent: u64 = rounds.iter().map(|x| x.bytes).sum();
    if as_json {
        json(
            &json!({ "rounds": rounds.len(), "bytes": sent, "chain": mark_json(&after.chain), "dag": mark_json(&after.dag),
                      "chain_lag": after.chain_lag(), "dag_lag": after.dag_lag() }),
        );
    } else {
        println!(
            "uploaded {} in {} round(s); chain {} (not archived yet {:?}: an incomplete unit waits for more \
             finalized blocks), dag {}",
            bytes(sent),
            rounds.len(),
            mark_text(&after.chain),
            after.chain_lag(),
            mark_text(&after.dag)
        );
    }
    Ok(())
}

/// `archive verify`: the whole archive read back and checked.
pub(crate) fn verify<B: Backend, M: NodeModel>(r: &NodeReader<B, M>, as_json: bool) -> anyhow::Result<()> {
    let bar = Bars::items(as_json);
    let report = r.verify_archive(bar.as_ref())?;
    bar.finish();
    if as_json {
        json(&serde_json::to_value(&report)?);
    } else {
        println!(
            "{}: {} blocks and {} vertices checked ({} units, {} read), {} problem(s)",
            report.archive,
            report.blocks,
            report.vertices,
            report.tier.units,
            bytes(report.tier.bytes),
            report.tier.problems.len()
        );
        for p in report.tier.problems.iter().take(20) {
            println!("  {p}");
        }
    }
    anyhow::ensure!(report.is_ok(), "the archive failed verification");
    Ok(())
}
