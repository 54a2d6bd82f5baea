//! `nodestore demo`: the tour — ingest a synthetic chain and DAG, reorg, query, report.

use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};
use node_storage::Backend;
use node_storage::chain_store::evm::Evm;
use node_storage::chain_store::generator::{ChainGenerator, GenConfig};
use node_storage::chain_store::{AddressQuery, LogFilter, NewBlock};
use node_storage::dag_store::generator::DagGenerator;
use serde_json::json;

use crate::commands::Handle;
use crate::output::{hex, table};

fn bar(len: u64, what: &str, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let b = ProgressBar::new(len);
    b.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    b.set_message(what.to_owned());
    b
}

pub(crate) async fn run<B: Backend>(h: &Handle<B>, blocks: u64, vertices: u64, as_json: bool) -> anyhow::Result<()> {
    let started = Instant::now();
    let mut report = json!({ "data_dir": h.config().data_dir.display().to_string(), "backend": B::KIND.to_string() });
    // ---- chain
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 20,
        fork_probability: 0.02,
        marker_every: 100,
        ..GenConfig::default()
    });
    let resume = h.pointers().head;
    anyhow::ensure!(
        resume.is_none(),
        "{} already holds a chain (head {}) from an earlier run: pass another --data-dir, or remove that directory",
        h.config().data_dir.display(),
        resume.map_or(0, |r| r.number)
    );
    let genesis = g.next_blocks().remove(0);
    h.init_chain(genesis.clone()).await?;
    let pb = bar(blocks, "blocks", as_json);
    let t = Instant::now();
    let mut main: Vec<NewBlock<Evm>> = vec![genesis];
    let mut done = 0;
    while done < blocks {
        let n = (blocks - done).min(100);
        let mut batch = Vec::new();
        for _ in 0..n {
            let bs = g.next_blocks();
            main.push(bs[0].clone());
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
    report["chain"] = json!({ "blocks": blocks, "seconds": chain_secs, "blocks_per_s": blocks as f64 / chain_secs });
    // A reorg: a 3-block branch from 5 below the head, then made canonical.
    let head = main.last().expect("chain").block.header.clone();
    let fork_at = &main[main.len() - 6].block.header;
    let mut branch = vec![g.child(Some(fork_at))];
    for _ in 0..5 {
        let next = g.child(Some(&branch.last().expect("branch").block.header));
        branch.push(next);
    }
    for r in h.insert_blocks(branch.clone()).await {
        r?;
    }
    let new_head = branch.last().expect("branch").block.hash();
    let reorg = h.set_head(new_head).await?;
    report["reorg"] = json!({ "from": head.number, "to": reorg.added.last().map(|b| b.number), "fork_point": reorg.fork_point.number,
        "removed": reorg.removed.len(), "added": reorg.added.len() });
    let finalized = h.block_by_number(reorg.fork_point.number.saturating_sub(10)).await?.expect("canonical block");
    h.set_finalized(finalized.hash()).await?;
    // ---- DAG
    let mut dg = DagGenerator::new(7);
    let pb = bar(vertices, "vertices", as_json);
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
    let tx = mid.transactions.first().map(|t| t.hash);
    let located = match tx {
        Some(t) => h.transaction(t).await?,
        None => None,
    };
    let account = ChainGenerator::account(3);
    let history = h.address_history(account, AddressQuery::newest_first(5)).await?;
    let logs = h.logs(LogFilter::range(0, blocks + 10).addresses([ChainGenerator::marker_contract()]), 10_000).await?;
    let balance = h.state(ChainGenerator::balance_key(account)).await?;
    report["queries"] = json!({
        "block_by_height": { "number": mid.header.number, "hash": hex(mid.hash().as_ref()), "txs": mid.transactions.len() },
        "tx_lookup": located.map(|(t, at)| json!({ "tx": hex(t.hash.as_ref()), "block": at.number, "index": at.index })),
        "address_history": { "address": hex(account.as_ref()), "latest": history.items.iter().map(|i| i.number).collect::<Vec<_>>() },
        "log_filter": { "contract": hex(ChainGenerator::marker_contract().as_ref()), "matches": logs.len() },
        "state": { "account": hex(account.as_ref()), "balance": balance.map(|b| hex(b.as_ref())) },
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
    println!("chain: {blocks} blocks in {chain_secs:.1} s ({:.0} blocks/s)", blocks as f64 / chain_secs);
    println!(
        "reorg: head {} -> {} (fork at {}, {} removed, {} added); finalized {}",
        head.number,
        reorg.added.last().map_or(0, |b| b.number),
        reorg.fork_point.number,
        reorg.removed.len(),
        reorg.added.len(),
        finalized.header.number
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
            format!("#{} {} ({} txs)", mid.header.number, hex(&mid.hash().as_ref()[..8]), mid.transactions.len()),
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
        vec!["log filter".into(), format!("{} logs from the marker contract", logs.len())],
        vec![
            "state".into(),
            format!(
                "balance of {}: {}",
                hex(account.as_ref()),
                balance.map_or("none".into(), |b| hex(&b.as_ref()[..8]))
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
