//! `recover --accept-wal-loss` and `repair state-trie`: bringing a damaged node back from what
//! it has itself (`recover --from-backup`: [`crate::backup`]).

use anyhow::Context;
use node_storage::{Backend, Config, NodeModel, NodeReader, StorageHandle};
use serde_json::json;

use crate::output::json;

/// `recover --accept-wal-loss`: stores whose write-ahead log is damaged are recovered up to
/// the damage, then every store is checked.
pub(crate) fn wal_loss<B: Backend, M: NodeModel>(config: Config, as_json: bool) -> anyhow::Result<()> {
    let recovered = node_storage::recover_wal_loss::<M>(&config)?;
    let reader: NodeReader<B, M> = NodeReader::open(config).context("opening the recovered stores")?;
    let (chain, dag) = reader.check()?;
    let ok = chain.is_ok() && dag.is_ok();
    if as_json {
        json(&json!({
            "stores": recovered.iter().map(|r| json!({
                "store": r.store,
                "recovered": r.loss.is_some(),
                "acknowledged_sequence": r.loss.as_ref().and_then(|l| l.acknowledged),
                "recovered_sequence": r.loss.as_ref().map(|l| l.recovered),
                "damaged_files_kept_at": r.loss.as_ref().map(|l| l.kept.display().to_string()),
                "detail": r.loss.as_ref().map(|l| l.detail.clone()),
            })).collect::<Vec<_>>(),
            "check": { "ok": ok, "chain_problems": chain.problems, "dag_problems": dag.problems.len() },
        }));
    } else {
        for r in &recovered {
            match &r.loss {
                None => println!("{}: sound, nothing to recover", r.store),
                Some(l) => {
                    let lost = l
                        .acknowledged
                        .map_or("an unknown number of".into(), |a| format!("{}", a.saturating_sub(l.recovered)));
                    println!(
                        "{}: recovered to sequence {}; {lost} acknowledged sequence numbers lost; the damaged logs \
                         are kept in {}",
                        r.store,
                        l.recovered,
                        l.kept.display()
                    );
                }
            }
        }
        println!("check: chain {} problem(s), dag {} problem(s)", chain.problems, dag.problems.len());
    }
    anyhow::ensure!(ok, "the recovered stores fail the integrity check (`nodestore check` lists the problems)");
    Ok(())
}

/// `repair state-trie [--dry-run]`: the state trie rebuilt from the flat state (or, dry run,
/// its root computed and compared with the stored one).
pub(crate) async fn repair_state_trie<B: Backend, M: NodeModel>(
    config: Config,
    dry_run: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let h: StorageHandle<B, M> = StorageHandle::open(config).context("opening the store")?;
    let result = h.repair_state_trie(dry_run).await;
    h.shutdown().await;
    let r = result?;
    let hex = |b: &[u8; 32]| crate::output::hex(b);
    if as_json {
        json(&json!({
            "keys": r.keys, "storage_tries": r.storage_tries, "nodes": r.nodes, "root": hex(&r.root),
            "stored_root": r.stored_root.as_ref().map(hex), "matched": r.matches(), "written": r.written,
        }));
        return Ok(());
    }
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
    Ok(())
}
