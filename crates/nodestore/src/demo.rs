//! `nodestore demo`: the tour — ingest a synthetic chain and DAG, reorg, query, report.

use std::time::Instant;

use anyhow::Context;
use node_storage::chain::{AddressQuery, BlockHeader, LogFilter, Transaction};
use node_storage::dag::generator::DagGenerator;
use node_storage::model::DemoChain;
use node_storage::{Backend, Config, NodeModel, StorageHandle};
use serde_json::json;

use crate::output::{hex, table};
use crate::progress::bar;

/// Opens (creating) the node, runs the tour on it, and shuts it down.
pub(crate) async fn run<B: Backend, M: NodeModel>(
    config: Config,
    blocks: Option<u64>,
    vertices: u64,
    as_json: bool,
) -> anyhow::Result<()> {
    let h: StorageHandle<B, M> = StorageHandle::open(config).context("opening the store")?;
    let result = tour(&h, blocks, vertices, as_json).await;
    h.shutdown().await;
    result
}

async fn tour<B: Backend, M: NodeModel>(
    h: &StorageHandle<B, M>,
    blocks: Option<u64>,
    vertices: u64,
    as_json: bool,
) -> anyhow::Result<()> {
    let blocks = blocks.unwrap_or(<M::Demo as DemoChain<M>>::BLOCKS);
    let started = Instant::now();
    let mut report = json!({
        "data_dir": h.config().data_dir.display().to_string(), "backend": B::KIND.to_string(),
        "model": h.config().model.to_string(),
    });
    // ---- chain
    let mut g = M::demo();
    let resume = h.pointers().head;
    anyhow::ensure!(
        resume.is_none(),
        "{} already holds a chain (head {}) from an earlier run: pass another --data-dir, or remove that directory",
        h.config().data_dir.display(),
        resume.map_or(0, |r| r.number)
    );
    let genesis = g.next().remove(0);
    h.init_chain(genesis.clone()).await?;
    let pb = bar(as_json, blocks, "blocks", "");
    let t = Instant::now();
    // The last headers of the main chain (the reorg forks off one of them).
    let mut recent: std::collections::VecDeque<M::Header> = std::collections::VecDeque::new();
    recent.push_back(genesis.block.header.clone());
    let mut done = 0;
    let mut txs = 0u64;
    while done < blocks {
        let n = (blocks - done).min(100);
        let mut batch = Vec::new();
        for _ in 0..n {
            let bs = g.next();
            recent.push_back(bs[0].block.header.clone());
            if recent.len() > 8 {
                recent.pop_front();
            }
            txs += bs[0].block.transactions.len() as u64;
            batch.extend(bs);
        }
        for r in h.insert_blocks(batch).await {
            r?;
        }
        done += n;
        pb.set_position(done);
    }
    pb.finish();
    let chain_secs = t.elapsed().as_secs_f64();
    report["chain"] = json!({ "blocks": blocks, "transactions": txs, "seconds": chain_secs, "blocks_per_s": blocks as f64 / chain_secs });
    // A reorg: a 6-block branch from 5 below the head, then made canonical.
    let head = recent.back().expect("chain").number();
    let fork_at = recent[recent.len().saturating_sub(6)].clone();
    let mut branch = vec![g.child_of(&fork_at)];
    for _ in 0..5 {
        let next = g.child_of(&branch.last().expect("branch").block.header);
        branch.push(next);
    }
    for r in h.insert_blocks(branch.clone()).await {
        r?;
    }
    let new_head = branch.last().expect("branch").block.hash();
    let reorg = h.set_head(new_head).await?;
    report["reorg"] = json!({ "from": head, "to": reorg.added.last().map(|b| b.number), "fork_point": reorg.fork_point.number,
        "removed": reorg.removed.len(), "added": reorg.added.len() });
    let finalized = h.block_by_number(reorg.fork_point.number.saturating_sub(10)).await?.expect("canonical block");
    h.set_finalized(finalized.hash()).await?;
    // ---- DAG
    let mut dg = DagGenerator::new(7);
    let pb = bar(as_json, vertices, "vertices", "");
    let t = Instant::now();
    let mut all = Vec::new();
    let mut left = vertices;
    while left > 0 {
        let n = left.min(2_000);
        let batch = dg.generate(n as usize);
        all.extend(batch.iter().map(|(v, _)| v.hash));
        for r in h.insert_vertices(batch).await {
            r?;
        }
        left -= n;
        pb.inc(n);
    }
    pb.finish();
    let dag_secs = t.elapsed().as_secs_f64();
    // Finalize the first 1,000 in insertion order (parents come first).
    let mut seq = h.next_finalization_sequence().await?;
    for hash in all.iter().take(1_000) {
        h.finalize_vertex(*hash, seq).await?;
        seq += 1;
    }
    let tips = h.tips().await?;
    report["dag"] = json!({ "vertices": vertices, "seconds": dag_secs, "vertices_per_s": vertices as f64 / dag_secs,
        "tips": tips.len(), "finalized": seq });
    // ---- queries
    let q = Instant::now();
    let mid = h.block_by_number(blocks / 2).await?.expect("canonical block");
    let tx = mid.transactions.first().map(|t| t.hash());
    let located = match tx {
        Some(t) => h.transaction(t).await?,
        None => None,
    };
    let account = g.account();
    let history = h.address_transactions(account, AddressQuery::newest_first(5)).await?;
    let (marker, _) = g.marker();
    let logs = h.logs(LogFilter::range(0, blocks.min(200)).addresses([marker]), 100_000).await?;
    let balance = h.state(M::account_key(account)).await?;
    report["queries"] = json!({
        "block_by_height": { "number": mid.number(), "hash": hex(mid.hash().as_ref()), "txs": mid.transactions.len() },
        "tx_lookup": located.map(|(t, at)| json!({ "tx": hex(t.hash().as_ref()), "block": at.number, "index": at.index })),
        "address_transactions": { "address": hex(account.as_ref()), "latest": history.items.iter().map(|i| i.number).collect::<Vec<_>>() },
        "log_filter": { "contract": hex(marker.as_ref()), "blocks": blocks.min(200), "matches": logs.len() },
        "state": { "account": hex(account.as_ref()), "value": balance.as_ref().map(M::value_json) },
        "dag_tips": tips.iter().take(3).map(ToString::to_string).collect::<Vec<_>>(),
        "seconds": q.elapsed().as_secs_f64(),
    });
    let stats = h.stats().await?;
    report["stores"] = serde_json::to_value(&stats)?;
    report["seconds"] = json!(started.elapsed().as_secs_f64());
    if as_json {
        crate::output::json(&report);
        return Ok(());
    }
    println!();
    println!(
        "chain: {blocks} blocks ({txs} transactions, model {}) in {chain_secs:.1} s ({:.0} blocks/s)",
        h.config().model,
        blocks as f64 / chain_secs
    );
    println!(
        "reorg: head {} -> {} (fork at {}, {} removed, {} added); finalized {}",
        head,
        reorg.added.last().map_or(0, |b| b.number),
        reorg.fork_point.number,
        reorg.removed.len(),
        reorg.added.len(),
        finalized.number()
    );
    println!(
        "dag:   {vertices} vertices in {dag_secs:.1} s ({:.0}/s), {} tips, {seq} finalized",
        vertices as f64 / dag_secs,
        tips.len()
    );
    println!();
    let rows = vec![
        vec![
            "block by height".into(),
            format!("#{} {} ({} txs)", mid.number(), hex(&mid.hash().as_ref()[..8]), mid.transactions.len()),
        ],
        vec!["tx lookup".into(), report["queries"]["tx_lookup"].to_string()],
        vec![
            "address history".into(),
            format!(
                "{} -> blocks {:?}",
                hex(account.as_ref()),
                history.items.iter().map(|i| i.number).collect::<Vec<_>>()
            ),
        ],
        vec![
            "log filter".into(),
            format!("{} logs from contract {} in blocks 0..={}", logs.len(), hex(marker.as_ref()), blocks.min(200)),
        ],
        vec![
            "state".into(),
            format!(
                "account {}: {}",
                hex(account.as_ref()),
                balance.as_ref().map_or("none".into(), |b| M::value_json(b).to_string())
            ),
        ],
        vec![
            "DAG tips".into(),
            format!("{} tips, e.g. {}", tips.len(), tips.first().map_or(String::new(), ToString::to_string)),
        ],
    ];
    table(&["query", "result"], &rows);
    println!();
    let mut rows = Vec::new();
    for s in &stats {
        let keys: u64 = s.tables.iter().map(|t| t.1).sum();
        rows.push(vec![
            s.store.to_string(),
            s.tables.len().to_string(),
            keys.to_string(),
            crate::output::bytes(s.disk_bytes),
        ]);
    }
    table(&["store", "tables", "keys (approx)", "on disk"], &rows);
    println!("\ndone in {:.1} s; database in {}", started.elapsed().as_secs_f64(), h.config().data_dir.display());
    Ok(())
}
