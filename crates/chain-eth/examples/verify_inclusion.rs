//! Verifies an inclusion proof printed by `nodestore --json get tx HASH --proof` (or `get
//! receipt HASH --proof`) with alloy alone — no store, and nothing of this library: a reader
//! who does not trust the node checks the proof themselves.
//!
//! ```sh
//! nodestore --model ethereum --json get tx 0x… --proof \
//!   | cargo run -p chain-eth --example verify_inclusion
//! ```
//!
//! What it checks: the header's RLP hashes to the block hash; the transactions (or receipts)
//! root is the header's; the nodes lead from that root, along the key `rlp(index)`, to the
//! value; for a transaction, the value (its EIP-2718 encoding) hashes to the transaction's
//! hash. What it does not: that the block is mainnet's (see `chain_eth::accumulator` for
//! pre-merge headers).

use std::io::Read;

use alloy_consensus::Header;
use alloy_primitives::{B256, Bytes, hex, keccak256};
use alloy_rlp::Decodable;
use alloy_trie::Nibbles;
use alloy_trie::proof::verify_proof;

fn bytes(v: &serde_json::Value) -> Result<Vec<u8>, String> {
    let s = v.as_str().ok_or("expected a hex string")?;
    hex::decode(s).map_err(|e| format!("{s}: {e}"))
}

fn verify(output: &serde_json::Value) -> Result<String, String> {
    let proof = &output["proof"];
    let header_rlp = bytes(&proof["header_rlp"])?;
    let block_hash: B256 = proof["block_hash"].as_str().ok_or("no block_hash")?.parse().map_err(|e| format!("{e}"))?;
    if keccak256(&header_rlp) != block_hash {
        return Err("the header does not hash to the block hash".into());
    }
    let header = Header::decode(&mut header_rlp.as_slice()).map_err(|e| e.to_string())?;
    let item = proof["item"].as_str().ok_or("no item")?;
    let root = match item {
        "transaction" => header.transactions_root,
        "receipt" => header.receipts_root,
        other => return Err(format!("unknown item {other}")),
    };
    let index = proof["index"].as_u64().ok_or("no index")?;
    let value = bytes(&proof["value"])?;
    let nodes: Vec<Bytes> = proof["nodes"]
        .as_array()
        .ok_or("no nodes")?
        .iter()
        .map(|n| bytes(n).map(Bytes::from))
        .collect::<Result<_, _>>()?;
    let key = Nibbles::unpack(alloy_rlp::encode_fixed_size(&index));
    verify_proof(root, key, Some(value.clone()), &nodes).map_err(|e| e.to_string())?;
    if item == "transaction"
        && let Some(claimed) = output["tx"]["hash"].as_str()
        && keccak256(&value).to_string() != claimed
    {
        return Err(format!("the proven transaction hashes to {}, not {claimed}", keccak256(&value)));
    }
    Ok(format!("{item} {index} of block {} ({block_hash}) verified against root {root}", header.number))
}

fn main() {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("read stdin");
    let output: serde_json::Value = serde_json::from_str(&input).expect("JSON from nodestore --json");
    match verify(&output) {
        Ok(what) => println!("{what}"),
        Err(e) => {
            eprintln!("NOT verified: {e}");
            std::process::exit(1);
        }
    }
}
