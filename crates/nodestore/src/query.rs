//! The reads: `get`, `logs`, `history` — on the stores opened read-only or on a replica of the
//! running node (see [`crate::route`]).

use anyhow::Context;
use node_storage::chain::{AddressQuery, LogFilter};
use node_storage::dag::VertexHash;
use node_storage::model::LogView;
use node_storage::{Backend, HistoryProofs, Item, NodeModel, NodeReader};
use serde_json::json;

use crate::cli::GetCmd;
use crate::output::{hex, json, parse_hex, parse_id, table};

/// `logs`: logs matching a filter (eth_getLogs semantics), each with its receipt's inclusion
/// proof if asked.
#[allow(clippy::too_many_arguments)]
pub(crate) fn logs<B: Backend, M: NodeModel>(
    r: &NodeReader<B, M>,
    from: u64,
    to: u64,
    address: &[String],
    topic0: &[String],
    limit: usize,
    proof: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let mut filter = LogFilter::range(from, to);
    if !address.is_empty() {
        let a: Vec<M::Address> =
            address.iter().map(|a| parse_id::<M::Address>(a, "address")).collect::<Result<_, _>>()?;
        filter = filter.addresses(a);
    }
    if !topic0.is_empty() {
        let t: Vec<M::Hash> = topic0.iter().map(|t| parse_id::<M::Hash>(t, "topic")).collect::<Result<_, _>>()?;
        filter = filter.topic(0, t);
    }
    let logs = r.logs(&filter, limit)?;
    // One proof per transaction (a receipt proves every log it holds).
    let mut proofs = std::collections::HashMap::new();
    if proof {
        for m in &logs {
            if !proofs.contains_key(m.tx_hash.as_ref()) {
                proofs.insert(m.tx_hash.as_ref().to_vec(), inclusion_proof(r, &m.tx_hash, Item::Receipt)?);
            }
        }
    }
    if as_json {
        json(&serde_json::to_value(logs.iter().map(|m| {
            let mut v = json!({
                "block": m.block_number, "tx": hex(m.tx_hash.as_ref()), "log_index": m.log_index, "log": m.log.json(),
            });
            if let Some(p) = proofs.get(m.tx_hash.as_ref()) {
                v["receipt_proof"] = p.clone();
            }
            v
        }).collect::<Vec<_>>())?);
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
        if proof {
            println!("{} receipt proof(s) verified (--json prints them)", proofs.len());
        }
    }
    Ok(())
}

/// `history ADDRESS`: an address's transactions, newest first.
pub(crate) fn address_transactions<B: Backend, M: NodeModel>(
    r: &NodeReader<B, M>,
    address: &str,
    limit: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let a = parse_id::<M::Address>(address, "address")?;
    let page = r.chain().address_transactions(&a, &AddressQuery::newest_first(limit))?;
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

/// The verified inclusion proof of a transaction or its receipt, as JSON.
fn inclusion_proof<B: Backend, M: NodeModel>(
    r: &NodeReader<B, M>,
    hash: &M::Hash,
    item: Item,
) -> anyhow::Result<serde_json::Value> {
    let proof = r.inclusion_proof(hash, item)?.with_context(|| format!("no transaction {}", hex(hash.as_ref())))?;
    let mut v = M::Proofs::json(&proof);
    v["verified"] = json!(true);
    // The header's own proof where the store has one (pre-merge blocks of whole epochs).
    if let Some(number) = v["block"].as_u64()
        && let Some(header) = r.header_proof(number)?
    {
        v["header_proof"] = M::Proofs::header_json(&header);
    }
    Ok(v)
}

/// `get …`: one object.
pub(crate) fn get<B: Backend, M: NodeModel>(r: &NodeReader<B, M>, what: GetCmd, as_json: bool) -> anyhow::Result<()> {
    let value = match what {
        GetCmd::Block { id, proof } => {
            let block = match id.parse::<u64>() {
                Ok(n) => r.block_by_number(n)?,
                Err(_) => r.block(&parse_id::<M::Hash>(&id, "block hash")?)?,
            };
            let block = block.with_context(|| format!("no block {id}"))?;
            let mut v = M::block_json(&block);
            if proof {
                let number = block.number();
                anyhow::ensure!(
                    r.chain().canonical_hash(number)? == Some(block.hash()),
                    "block {id} is not canonical: only canonical blocks have header proofs"
                );
                let p = r.header_proof(number)?.with_context(|| {
                    format!(
                        "no header proof of block {number}: the store holds its epoch's accumulator nodes only for \
                         whole epochs imported from era1 files (or proofs it was given)"
                    )
                })?;
                v["header_proof"] = M::Proofs::header_json(&p);
            }
            v
        }
        GetCmd::Tx { hash, proof } => {
            let h = parse_id::<M::Hash>(&hash, "tx hash")?;
            let (tx, at) = r.transaction(&h)?.with_context(|| format!("no transaction {hash}"))?;
            let sender = r.sender(&h)?.map(|(s, _)| hex(s.as_ref()));
            let mut v = json!({ "tx": M::tx_json(&tx), "sender": sender, "block": at.number, "index": at.index });
            if proof {
                v["proof"] = inclusion_proof(r, &h, Item::Transaction)?;
            }
            v
        }
        GetCmd::Receipt { hash, proof } => {
            let h = parse_id::<M::Hash>(&hash, "tx hash")?;
            let (receipt, at) = r.receipt(&h)?.with_context(|| format!("no receipt for {hash}"))?;
            let mut v = json!({ "receipt": M::receipt_json(&receipt), "block": at.number, "index": at.index });
            if proof {
                v["proof"] = inclusion_proof(r, &h, Item::Receipt)?;
            }
            v
        }
        GetCmd::Vertex { hash } => {
            let v = r
                .vertex(&VertexHash(parse_hex::<32>(&hash, "vertex hash")?))?
                .with_context(|| format!("no vertex {hash}"))?;
            json!({ "hash": v.vertex.hash.to_string(), "id": v.vertex.id, "creator": v.vertex.creator, "height": v.height,
                    "timestamp_ms": v.vertex.timestamp_ms, "parents": v.vertex.parents.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "payload_bytes": v.vertex.payload.len() })
        }
        GetCmd::Proof { address, slot, at } => {
            let a = parse_id::<M::Address>(&address, "address")?;
            let key = match &slot {
                Some(s) => M::slot_key(a, parse_hex::<32>(s, "slot")?),
                None => M::account_key(a),
            };
            let proof = match at {
                Some(n) => r.chain().state_proof_at(&key, n)?,
                None => r.chain().state_proof(&key)?,
            };
            proof.verify().context("the proof the store produced does not verify")?;
            let nodes = |n: &[Vec<u8>]| n.iter().map(|n| hex(n)).collect::<Vec<_>>();
            json!({
                "address": hex(a.as_ref()), "slot": slot, "at": at, "root": hex(&proof.root),
                "value": proof.value.as_ref().map(M::value_json),
                "account": proof.account.as_ref().map(|(_, v)| v.as_ref().map(M::value_json)),
                "storage_root": hex(&proof.storage_root),
                "state_proof": nodes(&proof.state_nodes), "storage_proof": nodes(&proof.storage_nodes),
                "verified": true,
            })
        }
        GetCmd::State { address } => {
            let a = parse_id::<M::Address>(&address, "address")?;
            let v = r.chain().state(&M::account_key(a))?;
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
