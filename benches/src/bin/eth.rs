//! The Ethereum model's figures: sender recovery per core with both secp256k1 implementations,
//! and the import of mainnet-shaped blocks end to end — decode from their wire encodings, check
//! every root, recover senders (on every core), store with every index — with the share each
//! step takes. Writes the `ethereum-model` section of `docs/BENCHMARKS.md`.
//!
//! `cargo xtask bench --only-eth [--quick]` (part of `cargo xtask bench`)

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alloy_consensus::ReceiptEnvelope;
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use chain_eth::generator::{EthGenerator, MAINNET_LONDON};
use chain_eth::inclusion::{Item, TrieCache, prove_in_with};
use chain_eth::senders::{Recovery, recover_all};
use chain_eth::{Eth, EthBody, EthHeader, EthReceipt, EthTx};
use chain_store::{Block, ChainStore, NewBlock, chain_schema};
use node_storage_benches::backends::{Compared, Rocks};
use node_storage_benches::report::splice;
use storage_api::{Durability, KvFlush};

/// A block as it arrives: header RLP, transactions and receipts in their EIP-2718 encodings.
struct Wire {
    header: Vec<u8>,
    txs: Vec<Vec<u8>>,
    receipts: Vec<Vec<u8>>,
}

fn wire(b: &NewBlock<Eth>) -> Wire {
    Wire {
        header: b.block.header.rlp(),
        txs: b.block.transactions.iter().map(EthTx::encoded).collect(),
        receipts: b.receipts.iter().map(|r| r.to_envelope().encoded_2718()).collect(),
    }
}

fn decode(w: &Wire) -> (EthHeader, Vec<EthTx>, Vec<EthReceipt>) {
    let header = EthHeader::decode(&w.header).unwrap();
    let txs = w.txs.iter().map(|t| EthTx::decode(t).unwrap()).collect();
    let receipts = w
        .receipts
        .iter()
        .map(|r| EthReceipt::from_envelope(ReceiptEnvelope::decode_2718(&mut r.as_slice()).unwrap()))
        .collect();
    (header, txs, receipts)
}

/// The p50 and p99 of `times`.
fn percentiles(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    (at(0.50), at(0.99))
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let write = !quick && !std::env::args().any(|a| a == "--no-write");
    let blocks: usize = if quick { 20 } else { 400 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    eprintln!("[eth] generating {blocks} mainnet-shaped blocks");
    let mut g = EthGenerator::new(MAINNET_LONDON, 11);
    let genesis = g.next_block();
    let made: Vec<NewBlock<Eth>> = (0..blocks).map(|_| g.next_block()).collect();
    let txs: Vec<EthTx> = made.iter().flat_map(|b| b.block.transactions.iter().cloned()).collect();
    let mut out = String::new();

    // ---- sender recovery
    eprintln!("[eth] sender recovery ({} transactions)", txs.len());
    let sample = &txs[..txs.len().min(if quick { 2_000 } else { 20_000 })];
    let mut recovery_rows = Vec::new();
    for (name, backend) in
        [("libsecp256k1 (C, `secp256k1` crate)", Recovery::Libsecp256k1), ("k256 (pure Rust)", Recovery::K256)]
    {
        let t = Instant::now();
        let one = recover_all(sample, backend, 1).unwrap();
        let single = sample.len() as f64 / t.elapsed().as_secs_f64();
        let t = Instant::now();
        let all = recover_all(sample, backend, 0).unwrap();
        let parallel = sample.len() as f64 / t.elapsed().as_secs_f64();
        assert_eq!(one, all);
        recovery_rows.push((name, single, parallel));
    }
    let ratio = recovery_rows[0].1 / recovery_rows[1].1;
    out.push_str(&format!(
        "**Sender recovery** ({} mainnet-shaped transactions, real signatures):\n\n| implementation | per core | all {cores} cores |\n|---|---:|---:|\n",
        sample.len()
    ));
    for (name, single, parallel) in &recovery_rows {
        out.push_str(&format!("| {name} | {single:.0} tx/s | {parallel:.0} tx/s |\n"));
    }
    out.push_str(&format!(
        "\nlibsecp256k1 recovers {ratio:.2}× as fast as k256 on one core, so it is the default (`Recovery::default()`).\n\n"
    ));

    // ---- import end to end
    eprintln!("[eth] import end to end");
    let wires: Vec<Wire> = made.iter().map(wire).collect();
    let root = tempfile::Builder::new().prefix("bench-eth-").tempdir().unwrap();
    let store = ChainStore::<_, Eth>::new(Rocks::open_schema(root.path(), chain_schema::<Eth>()).unwrap())
        .unwrap()
        .with_insert_durability(Durability::Buffered);
    store.init(&genesis).unwrap();
    let (mut decode_t, mut recover_t, mut store_t) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let started = Instant::now();
    for chunk in wires.chunks(16) {
        let t = Instant::now();
        let decoded: Vec<(EthHeader, Vec<EthTx>, Vec<EthReceipt>)> = chunk.iter().map(decode).collect();
        decode_t += t.elapsed();
        let t = Instant::now();
        let batch: Vec<NewBlock<Eth>> = decoded
            .into_iter()
            .map(|(header, transactions, receipts)| {
                let senders = recover_all(&transactions, Recovery::default(), 0).unwrap();
                NewBlock {
                    block: Block { header, transactions, extra: EthBody::default() },
                    receipts,
                    senders,
                    state: Vec::new(),
                }
            })
            .collect();
        recover_t += t.elapsed();
        let t = Instant::now();
        store.insert_blocks(&batch).unwrap();
        store_t += t.elapsed();
    }
    let t = Instant::now();
    store.store().flush().unwrap();
    store_t += t.elapsed();
    let total = started.elapsed();
    assert!(store.check().unwrap().is_ok());
    let bytes: usize = wires
        .iter()
        .map(|w| {
            w.header.len() + w.txs.iter().map(Vec::len).sum::<usize>() + w.receipts.iter().map(Vec::len).sum::<usize>()
        })
        .sum();
    let share = |d: Duration| 100.0 * d.as_secs_f64() / total.as_secs_f64();
    out.push_str(&format!(
        "**Import of mainnet-shaped blocks, end to end** ({blocks} blocks of {} transactions, {:.1} MB encoded; RocksDB, \
         batches of 16, buffered with one flush at the end): **{:.0} blocks/s** ({:.0} tx/s, {:.1} MB/s).\n\n\
         | step | share of the wall time |\n|---|---:|\n\
         | decode (RLP, EIP-2718) | {:.0} % |\n\
         | recover senders (libsecp256k1, {cores} threads) | {:.0} % |\n\
         | store: check the transactions, receipts and ommers roots and the bloom, write every table and index | {:.0} % |\n\n",
        MAINNET_LONDON.txs_per_block,
        bytes as f64 / 1e6,
        blocks as f64 / total.as_secs_f64(),
        txs.len() as f64 / total.as_secs_f64(),
        bytes as f64 / 1e6 / total.as_secs_f64(),
        share(decode_t),
        share(recover_t),
        share(store_t),
    ));

    // ---- inclusion proofs on the store just written: cold (the block's trie not cached) and
    // warm (cached after a first pass)
    eprintln!("[eth] inclusion proofs");
    let sample: Vec<_> = txs
        .iter()
        .step_by((txs.len() / if quick { 200 } else { 2_000 }).max(1))
        .map(chain_store::Transaction::hash)
        .collect();
    let mut proof_rows = Vec::new();
    for item in [Item::Transaction, Item::Receipt] {
        let mut cold_t = Vec::new();
        for h in &sample {
            let cold = TrieCache::new(1 << 20);
            let t = Instant::now();
            prove_in_with(&store, &cold, h, item).unwrap().unwrap();
            cold_t.push(t.elapsed());
        }
        let cache = TrieCache::new(64 << 20);
        for h in &sample {
            prove_in_with(&store, &cache, h, item).unwrap().unwrap();
        }
        let (mut warm_t, mut verify_t, mut nodes, mut proof_bytes) = (Vec::new(), Vec::new(), 0, 0);
        for h in &sample {
            let t = Instant::now();
            let proof = prove_in_with(&store, &cache, h, item).unwrap().unwrap();
            warm_t.push(t.elapsed());
            let t = Instant::now();
            proof.verify().unwrap();
            verify_t.push(t.elapsed());
            nodes += proof.nodes.len();
            proof_bytes += proof.nodes.iter().map(|n| n.len()).sum::<usize>();
        }
        proof_rows.push((
            item,
            percentiles(&mut cold_t),
            percentiles(&mut warm_t),
            percentiles(&mut verify_t),
            nodes / sample.len(),
            proof_bytes / sample.len(),
        ));
    }
    out.push_str(&format!(
        "**Inclusion proofs** ({} transactions drawn across the {blocks} blocks above, {} transactions a block; \
         `chain_eth::inclusion::prove_in_with`, each proof verified before it is returned. Cold: the block's trie is \
         not cached — its items are read, encoded and hashed (alloy-trie's hash builder with a proof retainer) and \
         the root checked against the header. Warm: the block's trie (inner nodes only) is in the `TrieCache` — the \
         header and the one item are read, its leaf encoded, nothing hashed but the check. Verify: \
         `InclusionProof::verify` alone, what a client does):\n\n\
         | proof of | cold p50 | cold p99 | warm p50 | warm p99 | verify p50 | verify p99 | nodes | node bytes |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        sample.len(),
        MAINNET_LONDON.txs_per_block,
    ));
    for (item, (c50, c99), (w50, w99), (v50, v99), nodes, bytes) in &proof_rows {
        out.push_str(&format!(
            "| {item} | {:.0} µs | {:.0} µs | {:.0} µs | {:.0} µs | {:.1} µs | {:.1} µs | {nodes} | {bytes} B |\n",
            c50.as_secs_f64() * 1e6,
            c99.as_secs_f64() * 1e6,
            w50.as_secs_f64() * 1e6,
            w99.as_secs_f64() * 1e6,
            v50.as_secs_f64() * 1e6,
            v99.as_secs_f64() * 1e6,
        ));
    }
    out.push('\n');

    // ---- header proofs: the epoch's nodes stored as an era1 import stores them
    eprintln!("[eth] header proofs");
    let mut td = chain_eth::alloy_primitives::U256::ZERO;
    let records: Vec<_> = std::iter::once(&genesis)
        .chain(&made)
        .map(|b| {
            td += b.block.header.header.difficulty;
            (b.block.header.hash, td)
        })
        .collect();
    let root = chain_eth::header_proof::store_epoch(&store, 0, &records).unwrap();
    let numbers: Vec<u64> = (0..records.len() as u64).collect();
    for n in &numbers {
        chain_eth::header_proof::header_proof(&store, *n).unwrap().unwrap();
    }
    let (mut prove_t, mut verify_t) = (Vec::new(), Vec::new());
    for n in &numbers {
        let t = Instant::now();
        let proof = chain_eth::header_proof::header_proof(&store, *n).unwrap().unwrap();
        prove_t.push(t.elapsed());
        let t = Instant::now();
        assert_eq!(proof.epoch_root(), root);
        verify_t.push(t.elapsed());
    }
    let ((p50, p99), (v50, v99)) = (percentiles(&mut prove_t), percentiles(&mut verify_t));
    out.push_str(&format!(
        "**Header proofs** (the Portal network's `BlockHeaderWithProof`; each of the {} blocks above, warm; \
         `chain_eth::header_proof::header_proof` reads the header and 15 stored nodes; verify: the 15 SHA-256 \
         steps to the epoch root): prove p50 {:.0} µs, p99 {:.0} µs; verify p50 {:.1} µs, p99 {:.1} µs.\n\n",
        numbers.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        v50.as_secs_f64() * 1e6,
        v99.as_secs_f64() * 1e6,
    ));

    let header = format!(
        "Measured on {} cores. Command: `cargo xtask bench --only-eth`{}.\n\n",
        cores,
        if quick { " --quick" } else { "" }
    );
    let section = format!("{header}{out}");
    println!("{section}");
    if write {
        let manifest_dir =
            std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
        let path = manifest_dir.join("../docs/BENCHMARKS.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&path, splice(&doc, "ethereum-model", &section)).unwrap();
        eprintln!("wrote {}", path.display());
    }
}
