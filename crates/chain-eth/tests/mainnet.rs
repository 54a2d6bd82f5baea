//! Three real mainnet blocks (15,040,708–15,040,710, London): decoded from the Portal network's
//! formats, every hash and root checked, stored on every backend through the chain store, and
//! read back — blocks, transactions, receipts and senders by hash, log filters against a
//! brute-force scan, the integrity check — and tampered copies refused.

use std::collections::HashMap;
use std::path::Path;

mod common;

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, b256};
use chain_eth::generator::{EthGenerator, MAINNET_LONDON};
use chain_eth::senders::{Recovery, recover_all};
use chain_eth::{Eth, EthTx};
use chain_store::{BlockHeader, ChainError, ChainStore, LogFilter, NewBlock, Receipt, chain_schema};
use engine_test::{Redb, Rocks, TestEngine};
use storage_api::mem::MemStore;
use storage_api::{Durability, KvStore};

/// The blocks' hashes, as the data's source lists them.
const HASHES: [(u64, B256); 3] = [
    (15_040_708, b256!("944ade7c054495265fa190494368e510fa960c1b498347f0d3584130d2a3a0d9")),
    (15_040_709, b256!("ad835cd4c3dfeabc07fe33cf69a14d84d7eb051783ba9a49ba2dfd9893dc2325")),
    (15_040_710, b256!("cad658a2b1f548725f74bee3de843e5126e4857ebe437b860706e7bb10ff277d")),
];

/// The three blocks, decoded, with their senders recovered.
fn mainnet() -> Vec<NewBlock<Eth>> {
    HASHES.iter().map(|(n, _)| common::london_block(*n)).collect()
}

#[test]
fn decoding_reproduces_every_hash_and_root() {
    let blocks = mainnet();
    let (txs, logs): (usize, usize) = blocks.iter().fold((0, 0), |(t, l), b| {
        (t + b.block.transactions.len(), l + b.receipts.iter().map(|r| r.logs.len()).sum::<usize>())
    });
    assert_eq!((txs, logs), (586, 1_549));
    for (b, (number, hash)) in blocks.iter().zip(HASHES) {
        assert_eq!(b.block.header.header.number, number);
        assert_eq!(b.block.hash(), hash, "block {number}: Keccak-256 of the header's RLP");
        assert_eq!(
            <Eth as chain_store::ChainModel>::verify_body(&b.block.header, &b.block.transactions, &b.block.extra),
            Ok(())
        );
        // The receipts' check returns the block's bloom it computed on the way: the union of
        // the receipts' blooms, byte for byte the header's, and the store's own bloom of the
        // receipts (Ethereum's bits, in the store's layout).
        let checked = <Eth as chain_store::ChainModel>::verify_receipts(&b.block.header, &b.receipts)
            .expect("receipts root")
            .expect("Ethereum's check computes the bloom");
        assert_eq!(checked.0[..], b.block.header.header.logs_bloom.0[..]);
        let store_bloom = chain_store::Bloom::of_receipts::<Eth>(&b.receipts);
        assert_eq!(store_bloom, checked);
        // Each receipt encoded in place is its envelope's EIP-2718 encoding.
        for r in &b.receipts {
            let mut encoded = Vec::new();
            r.encode_2718_with_bloom(&r.bloom(), &mut encoded);
            assert_eq!(encoded, r.to_envelope().encoded_2718(), "block {number}: a {:?} receipt", r.tx_type);
        }
    }
    for w in blocks.windows(2) {
        assert_eq!(w[1].block.header.parent_hash(), w[0].block.hash());
    }
    // Both recovery implementations agree, and each sender's nonces are consecutive.
    let mut nonces: HashMap<Address, Vec<u64>> = HashMap::new();
    for b in &blocks {
        let k256 = recover_all(&b.block.transactions, Recovery::K256, 1).unwrap();
        assert_eq!(k256, b.senders);
        for (tx, sender) in b.block.transactions.iter().zip(&b.senders) {
            nonces.entry(*sender).or_default().push(alloy_consensus::Transaction::nonce(&tx.0));
        }
    }
    let repeated = nonces.values().filter(|n| n.len() > 1).count();
    assert!(repeated > 0, "the data has senders with several transactions");
    for (sender, n) in &nonces {
        assert!(n.windows(2).all(|w| w[1] == w[0] + 1), "{sender}: nonces {n:?}");
    }
    // Every transaction type in the data decodes, and some are typed.
    let typed = blocks.iter().flat_map(|b| &b.block.transactions).filter(|t| !t.0.is_legacy()).count();
    assert!(typed > 0 && typed < txs);
}

#[test]
fn the_synthetic_shape_is_calibrated_on_the_data() {
    let blocks = mainnet();
    let txs: Vec<&EthTx> = blocks.iter().flat_map(|b| &b.block.transactions).collect();
    let per_block = txs.len() as f64 / blocks.len() as f64;
    let eip1559 = txs.iter().filter(|t| t.0.is_eip1559()).count() as f64 / txs.len() as f64;
    let calls: Vec<&&EthTx> = txs.iter().filter(|t| !alloy_consensus::Transaction::input(&t.0).is_empty()).collect();
    let call_share = calls.len() as f64 / txs.len() as f64;
    let calldata = calls.iter().map(|t| alloy_consensus::Transaction::input(&t.0).len()).sum::<usize>() as f64
        / calls.len() as f64;
    let logs: Vec<&chain_eth::EthLog> = blocks.iter().flat_map(|b| &b.receipts).flat_map(|r| r.logs()).collect();
    let logs_per_tx = logs.len() as f64 / txs.len() as f64;
    let log_data = logs.iter().map(|l| l.0.data.data.len()).sum::<usize>() as f64 / logs.len() as f64;
    eprintln!(
        "measured: {per_block:.1} txs/block, EIP-1559 {eip1559:.3}, calls {call_share:.3}, call data {calldata:.0} B, \
         {logs_per_tx:.2} logs/tx, log data {log_data:.0} B"
    );
    let s = MAINNET_LONDON;
    let close = |measured: f64, declared: f64| (measured - declared).abs() <= declared * 0.15;
    assert!(close(per_block, s.txs_per_block as f64), "txs per block: {per_block}");
    assert!(close(eip1559, s.eip1559_share), "EIP-1559 share: {eip1559}");
    assert!(close(call_share, s.contract_call_share), "contract calls: {call_share}");
    assert!(close(calldata, s.calldata_bytes as f64), "call data: {calldata}");
    assert!(close(logs_per_tx, s.logs_per_tx), "logs per tx: {logs_per_tx}");
    assert!(close(log_data, s.log_data_bytes as f64), "log data: {log_data}");
    // And the generator produces that shape, with valid blocks.
    let mut g = EthGenerator::new(MAINNET_LONDON, 7);
    let store = ChainStore::<_, Eth>::new(MemStore::new(chain_schema::<Eth>())).unwrap();
    store.init(&g.next_block()).unwrap();
    let made: Vec<NewBlock<Eth>> = (0..4).map(|_| g.next_block()).collect();
    store.insert_blocks(&made).unwrap();
    let n: usize = made.iter().map(|b| b.block.transactions.len()).sum();
    let l: usize = made.iter().flat_map(|b| &b.receipts).map(|r| r.logs.len()).sum();
    assert!(close(l as f64 / n as f64, s.logs_per_tx), "generated logs per tx");
    for b in &made {
        assert_eq!(recover_all(&b.block.transactions, Recovery::default(), 0).unwrap(), b.senders);
    }
    assert!(store.check().unwrap().is_ok());
}

fn dir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("chain-eth-").tempdir().unwrap()
}

/// Stores the blocks (the first as the initial block, the others inserted) and checks every
/// read; then the same from a checkpoint header.
fn round_trip<S: KvStore>(open: impl Fn(&Path) -> S) {
    let blocks = mainnet();
    let d = dir();
    let store =
        ChainStore::<S, Eth>::new(open(&d.path().join("full"))).unwrap().with_insert_durability(Durability::Buffered);
    store.init(&blocks[0]).unwrap();
    store.insert_blocks(&blocks[1..]).unwrap();
    for b in &blocks {
        let hash = b.block.hash();
        let number = b.block.number();
        assert_eq!(store.block(&hash).unwrap().as_ref(), Some(&b.block));
        assert_eq!(store.block_by_number(number).unwrap().as_ref(), Some(&b.block));
        assert_eq!(store.receipts(&hash).unwrap().as_ref(), Some(&b.receipts));
        for (i, tx) in b.block.transactions.iter().enumerate() {
            let (found, loc) = store.transaction(&tx.hash()).unwrap().unwrap();
            assert_eq!((&found, loc.number, loc.block, loc.index), (tx, number, hash, i as u32));
            assert_eq!(store.receipt(&tx.hash()).unwrap().unwrap().0, b.receipts[i]);
            assert_eq!(store.sender(&tx.hash()).unwrap().unwrap().0, b.senders[i]);
        }
    }
    // Log filters against a brute-force scan of the decoded receipts.
    let all_logs: Vec<(u64, &chain_eth::EthLog)> = blocks
        .iter()
        .flat_map(|b| b.receipts.iter().flat_map(move |r| r.logs.iter().map(move |l| (b.block.number(), l))))
        .collect();
    let (lo, hi) = (HASHES[0].0, HASHES[2].0);
    let mut filters: Vec<LogFilter<Address, B256>> = vec![LogFilter::range(lo, hi)];
    for (_, log) in all_logs.iter().step_by(97) {
        filters.push(LogFilter::range(lo, hi).addresses([log.0.address]));
        if let Some(t0) = log.0.data.topics().first() {
            filters.push(LogFilter::range(lo + 1, hi).topic(0, [*t0]));
            filters.push(LogFilter::range(lo, hi).addresses([log.0.address]).topic(0, [*t0]));
        }
    }
    for f in &filters {
        let found = store.logs(f, 10_000).unwrap();
        let expected: Vec<_> = all_logs
            .iter()
            .filter(|(n, l)| {
                (f.from..=f.to).contains(n)
                    && (f.addresses.is_empty() || f.addresses.contains(&l.0.address))
                    && f.topics
                        .iter()
                        .enumerate()
                        .all(|(i, alts)| alts.is_empty() || l.0.data.topics().get(i).is_some_and(|t| alts.contains(t)))
            })
            .collect();
        assert_eq!(found.len(), expected.len(), "{f:?}");
        for (m, (n, l)) in found.iter().zip(&expected) {
            assert_eq!((m.block_number, &m.log), (*n, *l));
        }
    }
    let report = store.check().unwrap();
    assert!(report.is_ok(), "{report}");
    drop(store);

    // From a trusted checkpoint: the first block's header alone.
    let cp = ChainStore::<S, Eth>::new(open(&d.path().join("checkpoint"))).unwrap();
    cp.init_checkpoint(&blocks[0].block.header).unwrap();
    cp.insert_blocks(&blocks[1..]).unwrap();
    assert_eq!(cp.head().unwrap().hash, blocks[2].block.hash());
    assert!(matches!(cp.block(&blocks[0].block.hash()), Err(ChainError::Pruned { .. })));
    assert_eq!(cp.block(&blocks[2].block.hash()).unwrap().as_ref(), Some(&blocks[2].block));
    let report = cp.check().unwrap();
    assert!(report.is_ok(), "{report}");
}

#[test]
fn round_trip_memory() {
    round_trip(|_| MemStore::new(chain_schema::<Eth>()));
}

#[test]
fn round_trip_rocksdb() {
    round_trip(|p| Rocks::open(p, chain_schema::<Eth>()).unwrap());
}

#[test]
fn round_trip_redb() {
    round_trip(|p| Redb::open(p, chain_schema::<Eth>()).unwrap());
}

/// A tampered transaction, receipt, bloom or sender list is refused with both values named,
/// and nothing is written.
#[test]
fn tampered_blocks_are_refused() {
    let blocks = mainnet();
    let store = ChainStore::<_, Eth>::new(MemStore::new(chain_schema::<Eth>())).unwrap();
    store.init(&blocks[0]).unwrap();
    let expect = |b: &NewBlock<Eth>, what: &str| {
        let err = store.insert_block(b).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, ChainError::BodyMismatch { .. } | ChainError::SenderCount { .. }), "{msg}");
        assert!(msg.contains(what), "expected `{what}` in: {msg}");
        assert_eq!(store.head().unwrap().hash, blocks[0].block.hash(), "nothing written");
    };
    let mut b = blocks[1].clone();
    b.block.transactions.swap(0, 1);
    expect(&b, "the transactions root");
    let mut b = blocks[1].clone();
    b.receipts[3].cumulative_gas_used += 1;
    expect(&b, "the receipts root");
    let mut b = blocks[1].clone();
    b.block.extra.ommers.push(blocks[0].block.header.header.clone());
    expect(&b, "the ommers hash");
    let mut b = blocks[1].clone();
    b.block.header.header.logs_bloom = Default::default();
    b.block.header = chain_eth::EthHeader::new(b.block.header.header.clone());
    expect(&b, "bloom");
    let mut b = blocks[1].clone();
    b.senders.pop();
    expect(&b, "sender(s)");
    store.insert_block(&blocks[1]).unwrap();
}
