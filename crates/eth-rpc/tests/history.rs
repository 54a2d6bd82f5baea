//! Heights pruned locally: the EIP-4444 error without an archive, the archived blocks with
//! one; and the endpoint on a read replica of a running node.

mod common;

use std::time::{Duration, Instant};

use chain_eth::generator::{EthGenerator, EthShape, MAINNET_LONDON};
use chain_eth::{Eth, EthLog};
use chain_store::NewBlock;
use common::*;
use node_storage::history_tier::{HistoryConfig, TierKind};
use node_storage::{ReplicaHandle, RocksStore};
use serde_json::{Value, json};

fn chain(n: usize) -> Vec<NewBlock<Eth>> {
    let mut g = EthGenerator::new(EthShape { txs_per_block: 4, ..MAINNET_LONDON }, 11);
    (0..n).map(|_| g.next_block()).collect()
}

/// The first log of block `b`: its emitter and first topic.
fn first_log(b: &NewBlock<Eth>) -> &EthLog {
    b.receipts.iter().flat_map(|r| &r.logs).next().unwrap()
}

/// Reads of blocks 10 (pruned) and 150 (held) through `addr`; `Ok` with what came back when
/// the pruned one is served, `Err` with the codes when it is not.
fn read_pruned(addr: std::net::SocketAddr, blocks: &[NewBlock<Eth>]) -> Result<Vec<Value>, Vec<i64>> {
    let held = result(addr, "eth_getBlockByNumber", json!([hex(150), true]));
    assert_eq!(held["hash"], json!(blocks[150].block.hash()));
    let b = &blocks[10];
    let tx = b.block.transactions[1].hash();
    let log = first_log(b);
    let calls = [
        ("eth_getBlockByNumber", json!([hex(10), true])),
        ("eth_getBlockByHash", json!([b.block.hash(), false])),
        ("eth_getTransactionByHash", json!([tx])),
        ("eth_getTransactionReceipt", json!([tx])),
        ("eth_getBlockReceipts", json!([hex(10)])),
        ("eth_getLogs", json!([{"fromBlock": hex(5), "toBlock": hex(20), "address": log.0.address}])),
    ];
    let replies: Vec<Value> = calls.iter().map(|(m, p)| call(addr, m, p.clone())).collect();
    let codes: Vec<i64> = replies.iter().filter_map(|r| r["error"]["code"].as_i64()).collect();
    if codes.is_empty() { Ok(replies.into_iter().map(|r| r["result"].clone()).collect()) } else { Err(codes) }
}

#[test]
fn pruned_history_is_eip4444_without_an_archive_and_served_with_one() {
    let blocks = chain(200);
    for archive in [false, true] {
        let (dir, archive_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut config = config(dir.path());
        config.retention.prune_interval_s = 0;
        if archive {
            let mut history =
                HistoryConfig { kind: Some(TierKind::Segments), upload_interval_ms: 50, ..HistoryConfig::default() };
            history.segments.destination = archive_dir.path().display().to_string();
            history.segments.blocks_per_segment = 64;
            config.history = history;
        }
        let blocks = blocks.clone();
        rt().block_on(async {
            let h = node_with(config.clone(), &blocks).await;
            h.set_finalized(blocks[195].block.hash()).await.unwrap();
            if archive {
                let deadline = Instant::now() + Duration::from_secs(300);
                while h.archive_status().await.unwrap().chain_lag().unwrap_or(u64::MAX) >= 64 {
                    assert!(Instant::now() < deadline, "uploads did not catch up");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            let report = h.prune_chain(50).await.unwrap();
            assert!(report.pruned_below > 20, "{report:?}");
            let server = eth_rpc::serve(h.clone(), &config.rpc, None).await.unwrap();
            let addr = server.addr();
            let got = tokio::task::spawn_blocking(move || read_pruned(addr, &blocks)).await.unwrap();
            match (archive, got) {
                (false, Err(codes)) => assert_eq!(codes, vec![4444; 6], "every read of a pruned height"),
                (true, Ok(replies)) => {
                    let b = &chain(11)[10];
                    assert_eq!(replies[0]["hash"], json!(b.block.hash()));
                    assert_eq!(replies[0]["transactions"][1]["hash"], json!(b.block.transactions[1].hash()));
                    assert_eq!(replies[2]["blockNumber"], hex(10));
                    assert_eq!(replies[3]["status"], "0x1");
                    assert_eq!(replies[4].as_array().unwrap().len(), b.block.transactions.len());
                    let logs = replies[5].as_array().unwrap();
                    assert!(logs.iter().any(|l| l["blockNumber"] == hex(10)), "{logs:?}");
                }
                (archive, got) => panic!("archive {archive}: {got:?}"),
            }
            server.stop().await;
            h.shutdown().await;
        });
    }
}

#[test]
fn served_from_a_replica_of_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(40);
    let config = config(dir.path());
    rt().block_on(async {
        let h = node_with(config.clone(), &blocks[..30]).await;
        let replica = ReplicaHandle::<RocksStore, Eth>::open(config.clone()).unwrap();
        let server = eth_rpc::serve(replica.clone(), &config.rpc, None).await.unwrap();
        let addr = server.addr();
        let number = move || tokio::task::spawn_blocking(move || result(addr, "eth_blockNumber", json!([])));
        assert_eq!(number().await.unwrap(), hex(29));
        for r in h.insert_blocks(blocks[30..].to_vec()).await {
            r.unwrap();
        }
        replica.catch_up().await.unwrap();
        assert_eq!(number().await.unwrap(), hex(39));
        let tx = blocks[35].block.transactions[0].hash();
        let got =
            tokio::task::spawn_blocking(move || result(addr, "eth_getTransactionReceipt", json!([tx]))).await.unwrap();
        assert_eq!(got["blockHash"], json!(blocks[35].block.hash()));
        server.stop().await;
        h.shutdown().await;
    });
}
