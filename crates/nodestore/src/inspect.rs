//! The read-only commands (`stats`, `get`, `logs`, `history`, `check`, `dead-letter list`):
//! they open the stores read-only through a [`NodeReader`], so they change nothing in the data
//! directory, work on a read-only mount and never create a store.

use anyhow::Context;
use node_storage::chain_store::evm::{Address, B256, Evm};
use node_storage::chain_store::generator::ChainGenerator;
use node_storage::chain_store::{AddressQuery, Block, LogFilter};
use node_storage::dag_store::VertexHash;
use node_storage::{Backend, Config, NodeReader};
use serde_json::json;

use crate::output::{bytes, hex, json, parse_hex, table};
use crate::{Cmd, DeadLetterCmd, GetCmd};

type Reader<B> = NodeReader<B, Evm>;

/// Whether `cmd` only reads.
pub(crate) fn is_read_only(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Stats
            | Cmd::Get { .. }
            | Cmd::Logs { .. }
            | Cmd::History { .. }
            | Cmd::Check
            | Cmd::DeadLetter { what: DeadLetterCmd::List }
    )
}

/// Runs a read-only command.
pub(crate) fn run<B: Backend>(cmd: Cmd, config: Config, as_json: bool) -> anyhow::Result<()> {
    let r: Reader<B> = NodeReader::open(config).context("opening the store read-only")?;
    match cmd {
        Cmd::Stats => stats(&r, as_json),
        Cmd::Get { what } => get(&r, what, as_json),
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
            let logs = r.chain().logs(&filter, limit)?;
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
            let page = r.chain().address_history(&a, &AddressQuery::newest_first(limit))?;
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
            let (chain, dag) = r.check()?;
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
        Cmd::DeadLetter { what: DeadLetterCmd::List } => {
            let letters = r.dead_letters()?;
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
        _ => unreachable!("not a read-only command"),
    }
}

fn block_json(b: &Block<Evm>) -> serde_json::Value {
    json!({
        "number": b.header.number, "hash": hex(b.header.hash.as_ref()), "parent": hex(b.header.parent_hash.as_ref()),
        "timestamp": b.header.timestamp, "transactions": b.transactions.iter().map(|t| hex(t.hash.as_ref())).collect::<Vec<_>>(),
    })
}

fn get<B: Backend>(r: &Reader<B>, what: GetCmd, as_json: bool) -> anyhow::Result<()> {
    let value = match what {
        GetCmd::Block { id } => {
            let block = match id.parse::<u64>() {
                Ok(n) => r.chain().block_by_number(n)?,
                Err(_) => r.chain().block(&B256(parse_hex::<32>(&id, "block hash")?))?,
            };
            block_json(&block.with_context(|| format!("no block {id}"))?)
        }
        GetCmd::Tx { hash } => {
            let (tx, at) = r
                .chain()
                .transaction(&B256(parse_hex::<32>(&hash, "tx hash")?))?
                .with_context(|| format!("no transaction {hash}"))?;
            json!({ "tx": tx, "block": at.number, "index": at.index })
        }
        GetCmd::Receipt { hash } => {
            let (receipt, at) = r
                .chain()
                .receipt(&B256(parse_hex::<32>(&hash, "tx hash")?))?
                .with_context(|| format!("no receipt for {hash}"))?;
            json!({ "receipt": receipt, "block": at.number, "index": at.index })
        }
        GetCmd::Vertex { hash } => {
            let v = r
                .dag()
                .vertex(&VertexHash(parse_hex::<32>(&hash, "vertex hash")?))?
                .with_context(|| format!("no vertex {hash}"))?;
            json!({ "hash": v.vertex.hash.to_string(), "id": v.vertex.id, "creator": v.vertex.creator, "height": v.height,
                    "timestamp_ms": v.vertex.timestamp_ms, "parents": v.vertex.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "payload_bytes": v.vertex.payload.len() })
        }
        GetCmd::State { address } => {
            let a = Address(parse_hex::<20>(&address, "address")?);
            let v = r.chain().state(&ChainGenerator::balance_key(a))?;
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

fn stats<B: Backend>(r: &Reader<B>, as_json: bool) -> anyhow::Result<()> {
    let stores = r.stats()?;
    let p = r.chain().pointers();
    if as_json {
        json(&json!({
            "backend": B::KIND.to_string(),
            "stores": serde_json::to_value(&stores)?,
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
    Ok(())
}

/// `nodestore recover`.
pub(crate) fn recover<B: Backend>(config: Config, accept_wal_loss: bool, as_json: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        accept_wal_loss,
        "say what to accept: `--accept-wal-loss` recovers stores whose write-ahead log is damaged, losing the writes \
         after the damage (the other way out is `nodestore backup restore`)"
    );
    let recovered = node_storage::recover_wal_loss::<Evm>(&config)?;
    let reader: Reader<B> = NodeReader::open(config).context("opening the recovered stores")?;
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
