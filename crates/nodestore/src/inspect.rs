//! The read-only commands (`stats`, `get`, `logs`, `history`, `check`, `dead-letter list`):
//! they open the stores read-only through a [`NodeReader`], so they change nothing in the data
//! directory, work on a read-only mount and never create a store.

use anyhow::Context;
use node_storage::chain::{AddressQuery, LogFilter};
use node_storage::dag::VertexHash;
use node_storage::{Backend, Config, NodeReader, ReplicaBackend};
use serde_json::json;

use crate::model::{CliModel, LogJson, parse_id};
use crate::output::{hex, json, parse_hex, table};
use crate::{Cmd, DeadLetterCmd, GetCmd};

type Reader<B, M> = NodeReader<B, M>;

/// Whether `cmd` only reads.
pub(crate) fn is_read_only(cmd: &Cmd) -> bool {
    matches!(
        cmd,
        Cmd::Stats
            | Cmd::Get { .. }
            | Cmd::Logs { .. }
            | Cmd::History { .. }
            | Cmd::Check { .. }
            | Cmd::DeadLetter { what: DeadLetterCmd::List }
            | Cmd::Archive { .. }
    )
}

/// Runs a read-only command on the stores opened read-only.
pub(crate) fn run<B: Backend, M: CliModel>(cmd: Cmd, config: Config, as_json: bool) -> anyhow::Result<()> {
    let r: Reader<B, M> = NodeReader::open(config).context("opening the store read-only")?;
    run_on(&r, cmd, as_json)
}

/// Runs a read-only command on a replica of the running node (`--replica`).
pub(crate) fn run_replica<B: ReplicaBackend, M: CliModel>(
    cmd: Cmd,
    config: Config,
    as_json: bool,
) -> anyhow::Result<()> {
    let r: Reader<B, M> = NodeReader::open_replica(config).context("opening a replica of the running node")?;
    run_on(&r, cmd, as_json)
}

fn run_on<B: Backend, M: CliModel>(r: &Reader<B, M>, cmd: Cmd, as_json: bool) -> anyhow::Result<()> {
    match cmd {
        Cmd::Stats => crate::render::stats(&r.node_stats()?, as_json),
        Cmd::Get { what } => get::<B, M>(r, what, as_json),
        Cmd::Archive { what } => crate::archive::run::<B, M>(r, what, as_json),
        Cmd::Logs { from, to, address, topic0, limit } => {
            let mut filter = LogFilter::range(from, to);
            if !address.is_empty() {
                let a: Vec<M::Address> =
                    address.iter().map(|a| parse_id::<M::Address>(a, "address")).collect::<Result<_, _>>()?;
                filter = filter.addresses(a);
            }
            if !topic0.is_empty() {
                let t: Vec<M::Hash> =
                    topic0.iter().map(|t| parse_id::<M::Hash>(t, "topic")).collect::<Result<_, _>>()?;
                filter = filter.topic(0, t);
            }
            let logs = r.logs(&filter, limit)?;
            if as_json {
                json(&serde_json::to_value(logs.iter().map(|m| json!({
                    "block": m.block_number, "tx": hex(m.tx_hash.as_ref()), "log_index": m.log_index, "log": m.log.json(),
                })).collect::<Vec<_>>())?);
            } else {
                let rows: Vec<Vec<String>> = logs
                    .iter()
                    .map(|m| {
                        vec![
                            m.block_number.to_string(),
                            m.log_index.to_string(),
                            hex(m.tx_hash.as_ref()),
                            m.log.json()["address"].as_str().unwrap_or_default().to_owned(),
                        ]
                    })
                    .collect();
                table(&["block", "log", "tx", "address"], &rows);
                println!("{} log(s)", logs.len());
            }
            Ok(())
        }
        Cmd::History { address, limit } => {
            let a = parse_id::<M::Address>(&address, "address")?;
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
        Cmd::Check { state } => crate::render::check(&r.integrity_check(state)?, as_json),
        Cmd::DeadLetter { what: DeadLetterCmd::List } => {
            crate::render::dead_letters(&r.dead_letter_summaries()?, as_json);
            Ok(())
        }
        _ => unreachable!("not a read-only command"),
    }
}

fn get<B: Backend, M: CliModel>(r: &Reader<B, M>, what: GetCmd, as_json: bool) -> anyhow::Result<()> {
    let value = match what {
        GetCmd::Block { id } => {
            let block = match id.parse::<u64>() {
                Ok(n) => r.block_by_number(n)?,
                Err(_) => r.block(&parse_id::<M::Hash>(&id, "block hash")?)?,
            };
            M::block_json(&block.with_context(|| format!("no block {id}"))?)
        }
        GetCmd::Tx { hash } => {
            let h = parse_id::<M::Hash>(&hash, "tx hash")?;
            let (tx, at) = r.transaction(&h)?.with_context(|| format!("no transaction {hash}"))?;
            let sender = r.sender(&h)?.map(|(s, _)| hex(s.as_ref()));
            json!({ "tx": M::tx_json(&tx), "sender": sender, "block": at.number, "index": at.index })
        }
        GetCmd::Receipt { hash } => {
            let (receipt, at) = r
                .receipt(&parse_id::<M::Hash>(&hash, "tx hash")?)?
                .with_context(|| format!("no receipt for {hash}"))?;
            json!({ "receipt": M::receipt_json(&receipt), "block": at.number, "index": at.index })
        }
        GetCmd::Vertex { hash } => {
            let v = r
                .vertex(&VertexHash(parse_hex::<32>(&hash, "vertex hash")?))?
                .with_context(|| format!("no vertex {hash}"))?;
            json!({ "hash": v.vertex.hash.to_string(), "id": v.vertex.id, "creator": v.vertex.creator, "height": v.height,
                    "timestamp_ms": v.vertex.timestamp_ms, "parents": v.vertex.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "payload_bytes": v.vertex.payload.len() })
        }
        GetCmd::Proof { address, slot } => {
            let a = parse_id::<M::Address>(&address, "address")?;
            let key = match &slot {
                Some(s) => M::slot_key(a, parse_hex::<32>(s, "slot")?),
                None => M::state_key(a),
            };
            let proof = r.chain().state_proof(&key)?;
            proof.verify().context("the proof the store produced does not verify")?;
            let nodes = |n: &[Vec<u8>]| n.iter().map(|n| hex(n)).collect::<Vec<_>>();
            json!({
                "address": hex(a.as_ref()), "slot": slot, "root": hex(&proof.root),
                "value": proof.value.as_ref().map(M::value_json),
                "account": proof.account.as_ref().map(|(_, v)| v.as_ref().map(M::value_json)),
                "storage_root": hex(&proof.storage_root),
                "state_proof": nodes(&proof.state_nodes), "storage_proof": nodes(&proof.storage_nodes),
                "verified": true,
            })
        }
        GetCmd::State { address } => {
            let a = parse_id::<M::Address>(&address, "address")?;
            let v = r.chain().state(&M::state_key(a))?;
            json!({ "address": hex(a.as_ref()), "value": v.as_ref().map(M::value_json) })
        }
    };
    if as_json {
        json(&value);
    } else {
        println!("{}", serde_json::to_string_pretty(&value)?);
    }
    Ok(())
}

/// `nodestore recover`.
pub(crate) fn recover<B: Backend, M: CliModel>(
    config: Config,
    accept_wal_loss: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        accept_wal_loss,
        "say how to recover: `--accept-wal-loss` recovers stores whose write-ahead log is damaged, losing the writes \
         after the damage; `--from-backup` replaces the node with its latest backup that verifies (try `--dry-run` first)"
    );
    let recovered = node_storage::recover_wal_loss::<M>(&config)?;
    let reader: Reader<B, M> = NodeReader::open(config).context("opening the recovered stores")?;
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
