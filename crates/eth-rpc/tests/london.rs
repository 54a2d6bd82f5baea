//! Three real London blocks read back through the endpoint and checked with alloy: every
//! returned header hashes to its block hash, every transaction re-encodes to its hash, the
//! receipts rebuild the header's receipts root, and `eth_getLogs` equals a scan of them.

mod common;

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, keccak256};
use alloy_rpc_types_eth as rpc;
use common::*;
use serde_json::{Value, json};

fn parse<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{e}: {v}"))
}

#[test]
fn london_blocks_read_back_through_the_endpoint() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = london();
    let config = config(dir.path());
    rt().block_on(async {
        let h = node_with(config.clone(), &blocks).await;
        let server = eth_rpc::serve(h.clone(), &config.rpc, Some(h.metrics().clone())).await.unwrap();
        let addr = server.addr();
        let blocking = tokio::task::spawn_blocking(move || {
            assert_eq!(result(addr, "eth_chainId", json!([])), json!("0x1"));
            assert_eq!(result(addr, "eth_blockNumber", json!([])), hex(LONDON[2]));
            let mut all_logs: Vec<rpc::Log> = Vec::new();
            for (stored, n) in london().iter().zip(LONDON) {
                let b = &stored.block;
                let full: rpc::Block = parse(result(addr, "eth_getBlockByNumber", json!([hex(n), true])));
                // The header's fields hash to the block's hash: every field came back as stored.
                assert_eq!(full.header.hash, b.header.hash);
                assert_eq!(full.header.inner.hash_slow(), b.header.hash);
                // `size`: the block's RLP length, as alloy encodes the whole block.
                let whole = alloy_consensus::Block {
                    header: b.header.header.clone(),
                    body: alloy_consensus::BlockBody {
                        transactions: b.transactions.iter().map(|t| t.0.clone()).collect::<Vec<_>>(),
                        ommers: b.extra.ommers.clone(),
                        withdrawals: b.extra.withdrawals.clone(),
                    },
                };
                assert_eq!(full.header.size, Some(alloy_primitives::U256::from(alloy_rlp::encode(&whole).len())));
                let txs = full.transactions.as_transactions().unwrap();
                assert_eq!(txs.len(), b.transactions.len());
                for (i, (got, want)) in txs.iter().zip(&b.transactions).enumerate() {
                    assert_eq!(keccak256(got.inner.encoded_2718()), want.hash(), "block {n} tx {i} re-encodes");
                    assert_eq!(got.inner.signer(), stored.senders[i]);
                    assert_eq!((got.block_number, got.transaction_index), (Some(n), Some(i as u64)));
                }
                let hashes: rpc::Block = parse(result(addr, "eth_getBlockByHash", json!([b.header.hash, false])));
                assert_eq!(
                    hashes.transactions.hashes().collect::<Vec<_>>(),
                    b.transactions.iter().map(|t| t.hash()).collect::<Vec<_>>()
                );
                assert_eq!(hashes.header, full.header);
                assert_eq!(
                    result(addr, "eth_getBlockTransactionCountByNumber", json!([hex(n)])),
                    hex(b.transactions.len() as u64)
                );
                assert_eq!(
                    result(addr, "eth_getBlockTransactionCountByHash", json!([b.header.hash])),
                    hex(b.transactions.len() as u64)
                );
                assert_eq!(
                    result(addr, "eth_getUncleCountByBlockNumber", json!([hex(n)])),
                    hex(b.extra.ommers.len() as u64)
                );

                let receipts: Vec<rpc::TransactionReceipt> =
                    parse(result(addr, "eth_getBlockReceipts", json!([hex(n)])));
                assert_eq!(receipts.len(), b.transactions.len());
                let envelopes: Vec<_> = receipts.iter().map(|r| r.inner.clone().map_logs(|l| l.inner)).collect();
                let root = alloy_trie::root::ordered_trie_root_with_encoder(&envelopes, |r, buf| r.encode_2718(buf));
                assert_eq!(root, b.header.header.receipts_root, "block {n}: the receipts rebuild its receipts root");
                let mut gas = 0;
                for (i, r) in receipts.iter().enumerate() {
                    let tx = &b.transactions[i];
                    assert_eq!(r.transaction_hash, tx.hash());
                    assert_eq!(r.from, stored.senders[i]);
                    assert_eq!(r.to, tx.to());
                    assert_eq!(r.gas_used, stored.receipts[i].cumulative_gas_used - gas);
                    gas = stored.receipts[i].cumulative_gas_used;
                    assert_eq!(r.inner.logs_bloom(), &stored.receipts[i].bloom());
                    let one: rpc::TransactionReceipt =
                        parse(result(addr, "eth_getTransactionReceipt", json!([tx.hash()])));
                    assert_eq!(&one, r);
                    let by_hash: rpc::Transaction = parse(result(addr, "eth_getTransactionByHash", json!([tx.hash()])));
                    assert_eq!(&by_hash, &txs[i]);
                    let by_index: rpc::Transaction =
                        parse(result(addr, "eth_getTransactionByBlockNumberAndIndex", json!([hex(n), hex(i as u64)])));
                    assert_eq!(&by_index, &txs[i]);
                }
                assert_eq!(gas, b.header.header.gas_used);
                let logs: Vec<rpc::Log> = receipts.iter().flat_map(|r| r.inner.logs().to_vec()).collect();
                for (i, l) in logs.iter().enumerate() {
                    assert_eq!(l.log_index, Some(i as u64), "log indexes run across the block");
                }
                let by_hash: Vec<rpc::Log> = parse(result(addr, "eth_getLogs", json!([{"blockHash": b.header.hash}])));
                assert_eq!(by_hash, logs);
                all_logs.extend(logs);
            }
            // The index's answer equals a scan of the receipts (timestamps aside: the scan
            // through the index reads no headers).
            let plain = |l: &rpc::Log| (l.block_number, l.transaction_index, l.log_index, l.inner.clone());
            let scan = |f: &dyn Fn(&rpc::Log) -> bool| all_logs.iter().filter(|l| f(l)).map(plain).collect::<Vec<_>>();
            let get = |filter: Value| -> Vec<_> {
                parse::<Vec<rpc::Log>>(result(addr, "eth_getLogs", json!([filter]))).iter().map(plain).collect()
            };
            let range = json!({"fromBlock": hex(LONDON[0]), "toBlock": "latest"});
            assert_eq!(get(range.clone()), scan(&|_| true));
            let busiest: Address = {
                let mut counts = std::collections::HashMap::new();
                all_logs.iter().for_each(|l| *counts.entry(l.address()).or_insert(0) += 1);
                counts.into_iter().max_by_key(|(a, c)| (*c, *a)).unwrap().0
            };
            let topic0: B256 = all_logs.iter().find(|l| l.address() == busiest).unwrap().topics()[0];
            let mut f = range.clone();
            f["address"] = json!(busiest);
            assert_eq!(get(f.clone()), scan(&|l| l.address() == busiest));
            f["topics"] = json!([topic0]);
            let both = scan(&|l| l.address() == busiest && l.topics().first() == Some(&topic0));
            assert!(!both.is_empty());
            assert_eq!(get(f), both);
            let mut t = range.clone();
            t["topics"] = json!([null, null]);
            assert_eq!(get(t), scan(&|_| true), "null positions match anything");
            let mut t = range;
            t["topics"] = json!([[topic0, B256::repeat_byte(7)]]);
            assert_eq!(get(t), scan(&|l| l.topics().first() == Some(&topic0)));
        });
        blocking.await.unwrap();
        let metrics = h.metrics().render();
        assert!(metrics.contains("node_storage_rpc_seconds") && metrics.contains("eth_getBlockReceipts"), "{metrics}");
        server.stop().await;
        h.shutdown().await;
    });
}

/// Tags, unknown blocks and transactions, and heights this node does not hold.
#[test]
fn tags_unknowns_and_history_not_held() {
    let dir = tempfile::tempdir().unwrap();
    let blocks = london();
    let config = config(dir.path());
    rt().block_on(async {
        let h = node_with(config.clone(), &blocks).await;
        h.set_finalized(blocks[1].block.hash()).await.unwrap();
        let server = eth_rpc::serve(h.clone(), &config.rpc, Some(h.metrics().clone())).await.unwrap();
        let addr = server.addr();
        tokio::task::spawn_blocking(move || {
            let number = |tag: &str| result(addr, "eth_getBlockByNumber", json!([tag, false]))["number"].clone();
            assert_eq!(number("latest"), hex(LONDON[2]));
            assert_eq!(number("pending"), hex(LONDON[2]));
            assert_eq!(number("earliest"), hex(LONDON[0]));
            assert_eq!(number("finalized"), hex(LONDON[1]));
            assert_eq!(result(addr, "eth_getBlockByNumber", json!(["safe", false])), Value::Null, "no safe block set");
            assert_eq!(result(addr, "eth_getBlockByNumber", json!([hex(LONDON[2] + 1), false])), Value::Null);
            assert_eq!(result(addr, "eth_getBlockByHash", json!([B256::repeat_byte(1), false])), Value::Null);
            assert_eq!(result(addr, "eth_getTransactionByHash", json!([B256::repeat_byte(1)])), Value::Null);
            assert_eq!(result(addr, "eth_getTransactionReceipt", json!([B256::repeat_byte(1)])), Value::Null);
            assert_eq!(
                result(addr, "eth_getTransactionByBlockNumberAndIndex", json!([hex(LONDON[0]), "0x10000"])),
                Value::Null
            );
            // Below the first block this store holds: EIP-4444's error, never null.
            let (code, msg) = error(addr, "eth_getBlockByNumber", json!([hex(LONDON[0] - 1), true]));
            assert_eq!(code, 4444, "{msg}");
            assert!(msg.contains(&LONDON[0].to_string()), "{msg}");
            assert_eq!(error(addr, "eth_getBlockReceipts", json!(["0x0"])).0, 4444);
            let (code, msg) = error(addr, "eth_getLogs", json!([{"fromBlock": "0x0", "toBlock": hex(LONDON[1])}]));
            assert_eq!(code, 4444, "{msg}");
            // Bad parameters.
            let (code, msg) = error(addr, "eth_getBlockByNumber", json!(["yesterday", false]));
            assert_eq!(code, -32602, "{msg}");
            assert_eq!(error(addr, "eth_getTransactionByHash", json!(["0x12"])).0, -32602);
            assert_eq!(error(addr, "eth_getBlockByHash", json!([])).0, -32602);
            assert_eq!(call(addr, "eth_sendRawTransaction", json!(["0x00"]))["error"]["code"], -32601, "read-only");
            // No state: these blocks were stored without it.
            let (code, msg) = error(addr, "eth_getBalance", json!([Address::repeat_byte(1), "latest"]));
            assert_eq!(code, -32000, "{msg}");
            assert!(msg.contains("state"), "{msg}");
            assert_eq!(error(addr, "eth_getProof", json!([Address::repeat_byte(1), [], "latest"])).0, -32000);
        })
        .await
        .unwrap();
        let metrics = h.metrics().render();
        assert!(metrics.contains("node_storage_rpc_errors") && metrics.contains("4444"), "{metrics}");
        server.stop().await;
        h.shutdown().await;
    });
}

#[test]
fn every_method_listed_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    rt().block_on(async {
        let h = common::Handle::open(config.clone()).unwrap();
        let module = eth_rpc::module(h.clone(), &config.rpc, None);
        let mut served: Vec<&str> = module.method_names().collect();
        let mut listed = eth_rpc::METHODS.to_vec();
        served.sort_unstable();
        listed.sort_unstable();
        assert_eq!(served, listed);
        h.shutdown().await;
    });
}
