//! The limits an operator sets in `[rpc]`, each refused with an error that names it, and
//! batch requests.

mod common;

use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, B256};
use chain_eth::{Eth, EthReceipt, EthStateKey, EthStateValue};
use chain_store::{Block, BlockRef, LogFilter, LogMatchOf, Pointers, StateProof, TxInBlock};
use common::*;
use eth_rpc::{EthSource, Read};
use serde_json::{Value, json};

#[test]
fn log_range_and_count_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.rpc.max_log_block_range = 2;
    config.rpc.max_logs = 5;
    rt().block_on(async {
        let h = node_with(config.clone(), &london()).await;
        let server = eth_rpc::serve(h.clone(), &config.rpc, None).await.unwrap();
        let addr = server.addr();
        tokio::task::spawn_blocking(move || {
            let all = json!([{"fromBlock": hex(LONDON[0]), "toBlock": hex(LONDON[2])}]);
            let (code, msg) = error(addr, "eth_getLogs", all);
            assert_eq!(code, -32005, "{msg}");
            assert!(msg.contains("max_log_block_range") && msg.contains("3 blocks"), "{msg}");
            let two = json!([{"fromBlock": hex(LONDON[1]), "toBlock": hex(LONDON[2])}]);
            let (code, msg) = error(addr, "eth_getLogs", two);
            assert_eq!(code, -32005, "{msg}");
            assert!(msg.contains("max_logs"), "{msg}");
            let hash = london_block(LONDON[2]).block.header.hash;
            assert_eq!(error(addr, "eth_getLogs", json!([{"blockHash": hash}])).0, -32005, "by hash too");
            let backwards = json!([{"fromBlock": hex(LONDON[2]), "toBlock": hex(LONDON[1])}]);
            let (code, msg) = error(addr, "eth_getLogs", backwards);
            assert_eq!(code, -32602, "{msg}");
            let future = json!([{"fromBlock": hex(LONDON[2] + 1), "toBlock": hex(LONDON[2] + 5)}]);
            assert_eq!(result(addr, "eth_getLogs", future), json!([]), "above the head: nothing yet");
            // Within both limits: a filter that matches nothing much.
            let none =
                json!([{"fromBlock": hex(LONDON[1]), "toBlock": hex(LONDON[2]), "address": Address::repeat_byte(9)}]);
            assert_eq!(result(addr, "eth_getLogs", none), json!([]));
        })
        .await
        .unwrap();
        server.stop().await;
        h.shutdown().await;
    });
}

#[test]
fn request_response_and_batch_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.rpc.max_request_bytes = 4096;
    config.rpc.max_response_bytes = 64 << 10;
    config.rpc.max_batch = 3;
    rt().block_on(async {
        let h = node_with(config.clone(), &london()).await;
        let server = eth_rpc::serve(h.clone(), &config.rpc, None).await.unwrap();
        let addr = server.addr();
        tokio::task::spawn_blocking(move || {
            // A batch: one reply per call, by id.
            let batch = json!([
                {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []},
                {"jsonrpc": "2.0", "id": 2, "method": "eth_blockNumber", "params": []},
                {"jsonrpc": "2.0", "id": 3, "method": "eth_getBlockByNumber", "params": ["0x0", false]},
            ]);
            let (code, body) = post(addr, &batch.to_string());
            assert_eq!(code, 200, "{body}");
            let replies: Vec<Value> = serde_json::from_str(&body).unwrap();
            let by_id = |id: u64| replies.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("{body}")).clone();
            assert_eq!(by_id(1)["result"], "0x1");
            assert_eq!(by_id(2)["result"], hex(LONDON[2]));
            assert_eq!(by_id(3)["error"]["code"], 4444, "each call answered on its own");
            // A fourth call is past max_batch.
            let mut four = batch.as_array().unwrap().clone();
            four.push(json!({"jsonrpc": "2.0", "id": 4, "method": "eth_chainId", "params": []}));
            let (code, body) = post(addr, &Value::Array(four).to_string());
            assert!(code == 200 && body.contains("-32010") && body.to_lowercase().contains("batch"), "{code} {body}");
            // A request body past max_request_bytes.
            let big = json!({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": ["x".repeat(5000)]});
            let (code, body) = post(addr, &big.to_string());
            assert_eq!(code, 413, "{body}");
            // A response past max_response_bytes: a full London block is ~150 KB.
            let r = call(addr, "eth_getBlockByNumber", json!([hex(LONDON[0]), true]));
            assert_eq!(r["error"]["code"], -32008, "{r}");
            assert!(result(addr, "eth_getBlockByNumber", json!([hex(LONDON[0]), false])).is_object(), "hashes fit");
        })
        .await
        .unwrap();
        server.stop().await;
        h.shutdown().await;
    });
}

/// A source whose block reads take `delay` (the store's reads are too quick to hold a call).
struct Slow<S> {
    inner: S,
    delay: Duration,
}

impl<S: EthSource> EthSource for Slow<S> {
    fn pointers(&self) -> Pointers<B256> {
        self.inner.pointers()
    }
    async fn block_by_number(&self, number: u64) -> Read<Option<Arc<Block<Eth>>>> {
        tokio::time::sleep(self.delay).await;
        self.inner.block_by_number(number).await
    }
    async fn block(&self, hash: B256) -> Read<Option<Arc<Block<Eth>>>> {
        self.inner.block(hash).await
    }
    async fn receipts(&self, hash: B256) -> Read<Option<Arc<Vec<EthReceipt>>>> {
        self.inner.receipts(hash).await
    }
    async fn block_senders(&self, at: BlockRef<B256>) -> Read<Vec<Address>> {
        self.inner.block_senders(at).await
    }
    async fn transaction(&self, tx_hash: B256) -> Read<Option<TxInBlock<Eth>>> {
        self.inner.transaction(tx_hash).await
    }
    async fn logs(&self, filter: LogFilter<Address, B256>, cap: usize) -> Read<Vec<LogMatchOf<Eth>>> {
        self.inner.logs(filter, cap).await
    }
    async fn state_root(&self) -> Read<[u8; 32]> {
        self.inner.state_root().await
    }
    async fn state_at(&self, keys: Vec<EthStateKey>, number: u64) -> Read<Vec<Option<EthStateValue>>> {
        self.inner.state_at(keys, number).await
    }
    async fn state_proof_at(&self, key: EthStateKey, number: u64) -> Read<StateProof<Eth>> {
        self.inner.state_proof_at(key, number).await
    }
}

#[test]
fn concurrency_and_timeout_limits() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(dir.path());
    config.rpc.max_concurrent = 1;
    config.rpc.timeout_ms = 300;
    rt().block_on(async {
        let h = node_with(config.clone(), &london()).await;
        let slow = Slow { inner: h.clone(), delay: Duration::from_secs(2) };
        let server = eth_rpc::serve(slow, &config.rpc, Some(h.metrics().clone())).await.unwrap();
        let addr = server.addr();
        tokio::task::spawn_blocking(move || {
            let held = std::thread::spawn(move || error(addr, "eth_getBlockByNumber", json!(["latest", false])));
            std::thread::sleep(Duration::from_millis(100));
            let (code, msg) = error(addr, "eth_chainId", json!([]));
            assert_eq!(code, -32005, "{msg}");
            assert!(msg.contains("max_concurrent"), "{msg}");
            let (code, msg) = held.join().unwrap();
            assert_eq!(code, -32002, "{msg}");
            assert!(msg.contains("timeout_ms"), "{msg}");
            // The permit came back with the timeout: calls go through again.
            assert_eq!(result(addr, "eth_chainId", json!([])), "0x1");
        })
        .await
        .unwrap();
        let metrics = h.metrics().render();
        assert!(metrics.contains("-32002") && metrics.contains("-32005"), "errors counted by code: {metrics}");
        server.stop().await;
        h.shutdown().await;
    });
}
