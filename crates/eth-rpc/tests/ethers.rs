//! A real client: ethers v6 (npm; `cargo xtask test` installs it into
//! `~/.cache/node-storage/ethers`) reads the London blocks through the endpoint — blocks with
//! full transactions, each rebuilt and hashed by ethers, receipts, and `getLogs` against its
//! own scan. Without Node.js or ethers the test says SKIPPED.

mod common;

use std::path::PathBuf;
use std::process::Command;

use alloy_primitives::Address;
use common::*;
use serde_json::{Value, json};

/// ethers' `node_modules` directory: `$ETHERS_NODE_PATH`, or where the setup installs it.
fn ethers_modules() -> Option<PathBuf> {
    let dir = match std::env::var_os("ETHERS_NODE_PATH") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".cache/node-storage/ethers/node_modules"),
    };
    dir.join("ethers/package.json").is_file().then_some(dir)
}

/// What the blocks hold, from the Portal data (the test's expectation, not the server's).
fn expected() -> Value {
    let blocks: Vec<Value> = london()
        .iter()
        .map(|b| {
            let h = &b.block.header;
            let txs: Vec<Value> = b
                .block
                .transactions
                .iter()
                .zip(&b.senders)
                .map(|(t, from)| json!({"hash": t.hash(), "from": from.to_checksum(None)}))
                .collect();
            let mut gas = 0;
            let receipts: Vec<Value> = b
                .receipts
                .iter()
                .zip(&b.block.transactions)
                .zip(&b.senders)
                .map(|((r, t), from)| {
                    let used = r.cumulative_gas_used - gas;
                    gas = r.cumulative_gas_used;
                    let created = t.to().is_none().then(|| from.create(alloy_consensus::Transaction::nonce(&t.0)));
                    json!({
                        "status": u8::from(r.status.coerce_status()),
                        "cumulative_gas_used": r.cumulative_gas_used.to_string(),
                        "gas_used": used.to_string(),
                        "logs_bloom": r.bloom(),
                        "to": t.to().map(|a| a.to_checksum(None)),
                        "contract_address": created.map(|a: Address| a.to_checksum(None)),
                        "logs": r.logs.iter().map(|l| json!({
                            "address": l.0.address.to_checksum(None),
                            "topics": l.0.topics(),
                            "data": l.0.data.data,
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "number": h.header.number,
                "hash": h.hash,
                "parent_hash": h.header.parent_hash,
                "gas_used": h.header.gas_used.to_string(),
                "transactions": txs,
                "receipts": receipts,
            })
        })
        .collect();
    json!({"chain_id": 1, "head": LONDON[2], "blocks": blocks})
}

#[test]
fn ethers_reads_the_london_blocks() {
    let Some(modules) = ethers_modules() else {
        eprintln!(
            "SKIPPED: ethers is not installed (cargo xtask setup installs it: npm install --prefix \
             ~/.cache/node-storage/ethers ethers@6.17.0)"
        );
        return;
    };
    if Command::new("node").arg("--version").output().is_err() {
        eprintln!("SKIPPED: Node.js is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let want = dir.path().join("expected.json");
    std::fs::write(&want, expected().to_string()).unwrap();
    let config = config(dir.path().join("db").as_path());
    rt().block_on(async {
        let h = node_with(config.clone(), &london()).await;
        let server = eth_rpc::serve(h.clone(), &config.rpc, None).await.unwrap();
        let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/ethers.cjs");
        let url = format!("http://{}", server.addr());
        let out = tokio::task::spawn_blocking(move || {
            Command::new("node").arg(script).arg(url).arg(&want).env("NODE_PATH", &modules).output().unwrap()
        })
        .await
        .unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "ethers: {stdout}\n{stderr}");
        assert!(stdout.contains("ok: 3 blocks"), "{stdout}");
        eprintln!("ethers {stdout}");
        server.stop().await;
        h.shutdown().await;
    });
}
