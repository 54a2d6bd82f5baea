//! The commands, generic over the engine.

use anyhow::Context;
use node_storage::chain_store::evm::{Address, B256, Evm};
use node_storage::chain_store::generator::ChainGenerator;
use node_storage::chain_store::{AddressQuery, Block, LogFilter};
use node_storage::dag_store::VertexHash;
use node_storage::{Backend, Config, StorageHandle};
use serde_json::json;

use crate::output::{bytes, hex, json, parse_hex, table};
use crate::{BackupCmd, Cli, Cmd, DeadLetterCmd, GetCmd, demo};

pub(crate) type Handle<B> = StorageHandle<B, Evm>;

pub(crate) async fn run<B: Backend>(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let Cmd::Config = cli.command {
        print!("{}", config.to_toml());
        return Ok(());
    }
    // Everything but `backup create` runs without opening the store (restore needs it closed).
    let cli = match cli.command {
        Cmd::Backup { what, .. } if !matches!(what, BackupCmd::Create { .. }) => {
            return crate::backup::offline::<B>(&config, what, cli.json).await;
        }
        // Schema migrations open the stores themselves (this build refuses older versions).
        Cmd::Migrate { what: None, dry_run, no_backup, backup_kind, batch, .. } => {
            let backup = (!no_backup).then_some(crate::backup::kind(backup_kind));
            let options = node_storage::MigrateOptions { dry_run, backup, batch_entries: batch };
            return crate::migrate::schema::<B>(&config, options, cli.json).await;
        }
        command => Cli { command, ..cli },
    };
    let h: Handle<B> = StorageHandle::open(config.clone()).context("opening the store")?;
    let result = dispatch(&h, cli.command, cli.json).await;
    h.shutdown().await;
    result
}

async fn dispatch<B: Backend>(h: &Handle<B>, cmd: Cmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        Cmd::Demo { blocks, vertices } => demo::run(h, blocks, vertices, as_json).await,
        Cmd::Stats => stats(h, as_json).await,
        Cmd::Get { what } => get(h, what, as_json).await,
        Cmd::Logs { from, to, address, topic0, limit } => {
            let mut filter = LogFilter::range(from, to);
            if !address.is_empty() {
                let a: Vec<Address> =
                    address.iter().map(|a| parse_hex::<20>(a, "address").map(Address)).collect::<Result<_, _>>()?;
                filter = filter.addresses(a);
            }
            if !topic0.is_empty() {
                let t: Vec<B256> =
                    topic0.iter().map(|t| parse_hex::<32>(t, "topic").map(B256)).collect::<Result<_, _>>()?;
                filter = filter.topic(0, t);
            }
            let logs = h.logs(filter, limit).await?;
            if as_json {
                json(&serde_json::to_value(logs.iter().map(|m| json!({
                    "block": m.block_number, "tx": hex(m.tx_hash.as_ref()), "log_index": m.log_index,
                    "address": hex(m.log.address.as_ref()), "topics": m.log.topics.iter().map(|t| hex(t.as_ref())).collect::<Vec<_>>(),
                })).collect::<Vec<_>>())?);
            } else {
                let rows: Vec<Vec<String>> = logs
                    .iter()
                    .map(|m| {
                        vec![
                            m.block_number.to_string(),
                            m.log_index.to_string(),
                            hex(m.tx_hash.as_ref()),
                            hex(m.log.address.as_ref()),
                        ]
                    })
                    .collect();
                table(&["block", "log", "tx", "address"], &rows);
                println!("{} log(s)", logs.len());
            }
            Ok(())
        }
        Cmd::History { address, limit } => {
            let a = Address(parse_hex::<20>(&address, "address")?);
            let page = h.address_history(a, AddressQuery::newest_first(limit)).await?;
            if as_json {
                json(&json!(
                    page.items
                        .iter()
                        .map(|t| json!({"block": t.number, "index": t.index, "tx": hex(t.tx_hash.as_ref())}))
                        .collect::<Vec<_>>()
                ));
            } else {
                let rows: Vec<Vec<String>> = page
                    .items
                    .iter()
                    .map(|t| vec![t.number.to_string(), t.index.to_string(), hex(t.tx_hash.as_ref())])
                    .collect();
                table(&["block", "index", "tx"], &rows);
            }
            Ok(())
        }
        Cmd::Check => {
            let (chain, dag) = h.check().await?;
            let ok = chain.is_ok() && dag.is_ok();
            if as_json {
                json(&json!({
                    "ok": ok,
                    "chain": { "blocks_checked": chain.blocks_checked, "problems": chain.problems, "by_table": chain.by_table,
                               "examples": chain.examples.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>() },
                    "dag": { "vertices": dag.vertices, "problems": dag.problems.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>() },
                }));
            } else {
                println!("chain: {} blocks checked, {} problem(s)", chain.blocks_checked, chain.problems);
                for p in &chain.examples {
                    println!("  {p:?}");
                }
                println!("dag:   {} vertices checked, {} problem(s)", dag.vertices, dag.problems.len());
                for p in dag.problems.iter().take(10) {
                    println!("  {p:?}");
                }
            }
            anyhow::ensure!(ok, "integrity check found problems");
            Ok(())
        }
        Cmd::Compact => {
            let done = h.compact().await?;
            if as_json {
                json(&json!({ "compacted": done }));
            } else if done {
                println!("compacted");
            } else {
                println!("this engine cannot compact; nothing done");
            }
            Ok(())
        }
        Cmd::Prune { chain_keep, dag_below } => {
            anyhow::ensure!(
                chain_keep.is_some() || dag_below.is_some(),
                "say what to prune: --chain-keep N and/or --dag-below H"
            );
            let mut out = json!({});
            if let Some(keep) = chain_keep {
                let r = h.prune_chain(keep).await?;
                out["chain"] = json!({ "pruned_below": r.pruned_below, "previous": r.previous, "limited_by_finalized": r.limited_by_finalized });
            }
            if let Some(below) = dag_below {
                let r = h.prune_dag(below).await?;
                out["dag"] = json!({ "vertices": r.vertices, "pruned_below": r.pruned_below });
            }
            if as_json {
                json(&out);
            } else {
                println!("{}", serde_json::to_string(&out)?);
            }
            Ok(())
        }
        Cmd::DeadLetter { what: DeadLetterCmd::List } => {
            let letters = h.dead_letters().await?;
            if as_json {
                json(&json!(
                    letters
                        .iter()
                        .map(|l| json!({"id": l.id, "correlation_id": l.correlation_id, "at_ms": l.at_ms,
                    "op": l.op, "reason": l.reason, "attempts": l.attempts, "bytes": l.payload.len()}))
                        .collect::<Vec<_>>()
                ));
            } else {
                let rows: Vec<Vec<String>> = letters
                    .iter()
                    .map(|l| {
                        vec![
                            l.id.to_string(),
                            l.op.clone(),
                            l.attempts.to_string(),
                            l.correlation_id.clone(),
                            l.reason.clone(),
                        ]
                    })
                    .collect();
                table(&["id", "op", "attempts", "request", "reason"], &rows);
            }
            Ok(())
        }
        Cmd::DeadLetter { what: DeadLetterCmd::Replay { ids } } => {
            let r = h.replay_dead_letters(if ids.is_empty() { None } else { Some(ids) }).await?;
            if as_json {
                json(&serde_json::to_value(&r)?);
            } else {
                let rows: Vec<Vec<String>> = r
                    .iter()
                    .map(|x| vec![x.id.to_string(), x.op.clone(), x.error.clone().unwrap_or_else(|| "replayed".into())])
                    .collect();
                table(&["id", "op", "result"], &rows);
            }
            Ok(())
        }
        Cmd::Backup { what: BackupCmd::Create { kind }, .. } => crate::backup::create(h, kind, as_json).await,
        Cmd::Backup { .. } => unreachable!("handled before opening"),
        Cmd::Migrate { .. } => unreachable!("handled before the runtime starts"),
        Cmd::Serve => {
            let addr = if h.config().metrics.enabled { Some(h.serve_metrics()?) } else { None };
            if let Some(_schedule) = h.spawn_backup_schedule() {
                eprintln!(
                    "backups every {} s to {}",
                    h.config().backup.schedule_interval_secs,
                    h.config().backup.destination
                );
            }
            match addr {
                Some(a) => eprintln!("serving http://{a}/metrics, /metrics.json and /health; Ctrl-C to stop"),
                None => eprintln!("running (metrics endpoint disabled); Ctrl-C to stop"),
            }
            node_storage::tokio::signal::ctrl_c().await?;
            eprintln!("stopping: draining the write lanes");
            Ok(())
        }
        Cmd::Config => unreachable!("handled before opening"),
    }
}

fn block_json(b: &Block<Evm>) -> serde_json::Value {
    json!({
        "number": b.header.number, "hash": hex(b.header.hash.as_ref()), "parent": hex(b.header.parent_hash.as_ref()),
        "timestamp": b.header.timestamp, "transactions": b.transactions.iter().map(|t| hex(t.hash.as_ref())).collect::<Vec<_>>(),
    })
}

async fn get<B: Backend>(h: &Handle<B>, what: GetCmd, as_json: bool) -> anyhow::Result<()> {
    let value = match what {
        GetCmd::Block { id } => {
            let block = match id.parse::<u64>() {
                Ok(n) => h.block_by_number(n).await?,
                Err(_) => h.block(B256(parse_hex::<32>(&id, "block hash")?)).await?,
            };
            block_json(&*block.with_context(|| format!("no block {id}"))?)
        }
        GetCmd::Tx { hash } => {
            let (tx, at) = h
                .transaction(B256(parse_hex::<32>(&hash, "tx hash")?))
                .await?
                .with_context(|| format!("no transaction {hash}"))?;
            json!({ "tx": tx, "block": at.number, "index": at.index })
        }
        GetCmd::Receipt { hash } => {
            let (r, at) = h
                .receipt(B256(parse_hex::<32>(&hash, "tx hash")?))
                .await?
                .with_context(|| format!("no receipt for {hash}"))?;
            json!({ "receipt": r, "block": at.number, "index": at.index })
        }
        GetCmd::Vertex { hash } => {
            let v = h
                .vertex(VertexHash(parse_hex::<32>(&hash, "vertex hash")?))
                .await?
                .with_context(|| format!("no vertex {hash}"))?;
            json!({ "hash": v.vertex.hash.to_string(), "id": v.vertex.id, "creator": v.vertex.creator, "height": v.height,
                    "timestamp_ms": v.vertex.timestamp_ms, "parents": v.vertex.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "payload_bytes": v.vertex.payload.len() })
        }
        GetCmd::State { address } => {
            let a = Address(parse_hex::<20>(&address, "address")?);
            let v = h.state(ChainGenerator::balance_key(a)).await?;
            json!({ "address": hex(a.as_ref()), "balance": v.map(|b| hex(b.as_ref())) })
        }
    };
    if as_json {
        json(&value);
    } else {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

async fn stats<B: Backend>(h: &Handle<B>, as_json: bool) -> anyhow::Result<()> {
    let stores = h.stats().await?;
    let caches = h.cache_stats();
    let p = h.pointers();
    if as_json {
        json(&json!({
            "backend": B::KIND.to_string(),
            "stores": serde_json::to_value(&stores)?,
            "caches": caches.iter().map(|(n, s)| json!({"cache": n, "stats": s})).collect::<Vec<_>>(),
            "chain_head": p.head.map(|h| h.number), "finalized": p.finalized.map(|h| h.number), "pruned_below": p.pruned_below,
        }));
        return Ok(());
    }
    println!(
        "backend {}   chain head {:?}   finalized {:?}   pruned below {}",
        B::KIND,
        p.head.map(|h| h.number),
        p.finalized.map(|h| h.number),
        p.pruned_below
    );
    let mut rows = Vec::new();
    for s in &stores {
        for (table_name, keys, size) in &s.tables {
            rows.push(vec![s.store.to_string(), table_name.to_string(), keys.to_string(), bytes(*size)]);
        }
        rows.push(vec![s.store.to_string(), "(on disk)".into(), String::new(), bytes(s.disk_bytes)]);
    }
    table(&["store", "table", "keys (approx)", "bytes (approx)"], &rows);
    println!();
    let rows: Vec<Vec<String>> = caches
        .iter()
        .map(|(n, s)| {
            vec![
                n.to_string(),
                s.entries.to_string(),
                s.hits.to_string(),
                s.misses.to_string(),
                s.hit_ratio().map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
            ]
        })
        .collect();
    table(&["cache", "entries", "hits", "misses", "hit ratio"], &rows);
    Ok(())
}
