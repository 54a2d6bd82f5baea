//! State-commitment benchmarks on RocksDB (`cargo xtask bench --only-trie [--quick]`): the
//! from-scratch root of a large state, the incremental root of blocks of 500 state changes
//! (block inserts on a store maintaining the trie against the same inserts on one without it,
//! interleaved, and the bytes each writes), and proof generation at the head and at past
//! heights.
//!
//! Sizes: 1,000,000 keys and 200 blocks (`--quick`: 100,000 keys, 30 blocks).

use std::path::Path;
use std::time::Instant;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::schema::{State, Stored};
use chain_store::synthetic::{Address, B256, Synthetic};
use chain_store::{ChainStore, NewBlock, chain_schema};
use node_storage_benches::Rng;
use node_storage_benches::hash_of;
use node_storage_benches::stats::{Summary, micros};
use storage_api::{Durability, KvWrite};
use storage_rocksdb::{RocksConfig, RocksStore};

const CHANGES: usize = 500;

fn open(dir: &Path, trie: bool) -> ChainStore<RocksStore, Synthetic> {
    let mut config = RocksConfig::at(dir);
    config.statistics = true;
    let store = RocksStore::open(&config, chain_schema::<Synthetic>()).expect("open");
    ChainStore::new(store).expect("chain").with_insert_durability(Durability::Buffered).with_state_trie(trie)
}

fn key(i: u64) -> (Address, B256) {
    let a = hash_of(i);
    (Address(a[..20].try_into().expect("20 bytes")), B256(hash_of(i | 1 << 40)))
}

/// Writes `keys` state entries straight into the state table (as a state sync would).
fn fill(chain: &ChainStore<RocksStore, Synthetic>, keys: u64) {
    for start in (0..keys).step_by(50_000) {
        let mut batch = chain.store().batch();
        for i in start..(start + 50_000).min(keys) {
            batch.put::<State<Synthetic>>(&key(i), &Stored(B256(hash_of(i ^ 0xabc)))).expect("put");
        }
        chain.store().write(batch, Durability::Buffered).expect("write");
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (keys, blocks) = if quick { (100_000u64, 30usize) } else { (1_000_000, 200) };
    println!(
        "state trie benchmarks (RocksDB){}: {keys} keys, {blocks} blocks of {CHANGES} state changes",
        if quick { ", quick" } else { "" }
    );
    let work = tempfile::tempdir_in(std::env::var_os("NODE_STORAGE_BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("tempdir");
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 1,
        accounts: 100,
        contracts: 2,
        fork_probability: 0.0,
        seed: 5,
        ..GenConfig::default()
    });
    let mut genesis = g.next_blocks().remove(0);
    genesis.state.clear();

    // Two stores with the same state: one keeps the trie, the other has none
    // (`[state] trie = "off"`).
    let with = open(&work.path().join("trie"), true);
    let without = open(&work.path().join("plain"), false);
    for chain in [&with, &without] {
        chain.init(&genesis).expect("init");
        fill(chain, keys);
    }
    let t = Instant::now();
    let dry = with.check_state_trie(&|_| {}).expect("compute");
    let compute = t.elapsed();
    let t = Instant::now();
    let built = with.rebuild_state_trie(false, &|_| {}).expect("rebuild");
    let rebuild = t.elapsed();
    assert_eq!(dry.root, built.root);
    println!(
        "from scratch: root of {keys} keys in {:.2} s (read, hash, build); with the trie tables written {:.2} s; {} branch nodes",
        compute.as_secs_f64(),
        rebuild.as_secs_f64(),
        built.nodes
    );
    assert!(!without.pointers().state_trie);

    // Blocks of 500 changes: 450 existing keys updated, 50 new keys.
    let mut rng = Rng::new(17);
    let mut next_new = keys;
    let mut parent = genesis.block.header.clone();
    let mut samples: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    let bytes_before = [with.store().bytes_written().unwrap_or(0), without.store().bytes_written().unwrap_or(0)];
    for n in 0..blocks {
        let mut b: NewBlock<Synthetic> = g.child(Some(&parent));
        parent = b.block.header.clone();
        b.state = (0..CHANGES)
            .map(|j| {
                let i = if j < CHANGES - 50 {
                    rng.below(keys)
                } else {
                    next_new += 1;
                    next_new
                };
                (key(i), Some(B256(hash_of(rng.next_u64()))))
            })
            .collect();
        b.state.sort_by_key(|x| x.0);
        b.state.dedup_by(|x, y| x.0 == y.0);
        // Interleaved, alternating which goes first.
        let order: [usize; 2] = if n % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let chain = if which == 0 { &with } else { &without };
            let t = Instant::now();
            chain.insert_block(&b).expect("insert");
            samples[which].push(t.elapsed().as_nanos() as u64);
        }
    }
    let bytes = [
        with.store().bytes_written().unwrap_or(0) - bytes_before[0],
        without.store().bytes_written().unwrap_or(0) - bytes_before[1],
    ];
    let s_with = Summary::of(&mut samples[0]);
    let s_without = Summary::of(&mut samples[1]);
    println!(
        "block insert, {CHANGES} state changes: with the trie p50 {} p99 {}; without p50 {} p99 {}; the trie's share p50 {} (p99 difference {})",
        micros(s_with.p50),
        micros(s_with.p99),
        micros(s_without.p50),
        micros(s_without.p99),
        micros(s_with.p50.saturating_sub(s_without.p50)),
        micros(s_with.p99.saturating_sub(s_without.p99)),
    );
    println!(
        "bytes written per block: {} with the trie, {} without: {} extra ({:.1}x)",
        bytes[0] / blocks as u64,
        bytes[1] / blocks as u64,
        (bytes[0] - bytes[1].min(bytes[0])) / blocks as u64,
        bytes[0] as f64 / bytes[1].max(1) as f64
    );
    assert_eq!(with.state_root().expect("root"), with.check_state_trie(&|_| {}).expect("check").root);

    // Proofs at the head, warm (the second pass over the same keys).
    let picks: Vec<u64> = (0..2_000).map(|_| rng.below(keys)).collect();
    let mut times = Vec::with_capacity(picks.len());
    for pass in 0..2 {
        for &i in &picks {
            let t = Instant::now();
            let proof = with.state_proof(&key(i)).expect("proof");
            if pass == 1 {
                times.push(t.elapsed().as_nanos() as u64);
            }
            debug_assert!(proof.verify().is_ok());
        }
    }
    let p = Summary::of(&mut times);
    println!("state proof at the head (warm): p50 {} p99 {}", micros(p.p50), micros(p.p99));

    // Proofs at past heights: the state as of the block is rebuilt in memory from the
    // change sets of the blocks after it (each of CHANGES keys), then proven.
    let head = with.head().expect("head").number;
    for back in [1u64, 8, 64].into_iter().filter(|b| *b < blocks as u64) {
        let mut times = Vec::new();
        for (n, &i) in picks.iter().take(11).enumerate() {
            let t = Instant::now();
            let proof = with.state_proof_at(&key(i), head - back).expect("proof");
            if n > 0 {
                times.push(t.elapsed().as_nanos() as u64);
            }
            assert!(proof.verify().is_ok());
        }
        let p = Summary::of(&mut times);
        println!(
            "state proof {back} block(s) back (up to {} changed keys put back): p50 {} p99 {}",
            back as usize * CHANGES,
            micros(p.p50),
            micros(p.p99)
        );
    }
}
