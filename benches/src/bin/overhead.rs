//! The storage-api overhead benchmark: the same block workload through storage-api's RocksDB
//! backend and through the raw rocksdb crate, interleaved chunk by chunk in one process so
//! both see the same machine conditions, then the ratios.
//!
//! Both sides use one RocksDB configuration (the raw side opens its database through
//! `RocksStore` and then uses only `raw_db()`), so the difference is the storage-api layer:
//! typed keys and values, the versioned value envelope, table lookup by type, the batch
//! wrapper and the read path.
//!
//! `cargo xtask overhead [--blocks 20000] [--synced-blocks 1000] [--reads 200000]`

use std::time::{Duration, Instant};

use node_storage_benches::stats::{Summary, micros};
use node_storage_benches::workloads::insert_block;
use node_storage_benches::{Block, Canonical, Headers, Rng, TXS_PER_BLOCK, Txs, schema, tx_hash};
use rocksdb::WriteOptions;
use storage_api::{Durability, KvCompact, KvFlush, ReadExt};
use storage_rocksdb::{RocksConfig, RocksStore};

const CHUNK_BLOCKS: u64 = 250;
const CHUNK_READS: usize = 10_000;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().unwrap_or_else(|_| panic!("{name} takes a number")))
        .unwrap_or(default)
}

struct Raw<'a> {
    db: &'a rocksdb::DB,
    headers: &'a rocksdb::ColumnFamily,
    txs: &'a rocksdb::ColumnFamily,
    canonical: &'a rocksdb::ColumnFamily,
}

impl<'a> Raw<'a> {
    fn new(store: &'a RocksStore) -> Self {
        let db = store.raw_db();
        Raw {
            db,
            headers: db.cf_handle("headers").unwrap(),
            txs: db.cf_handle("txs").unwrap(),
            canonical: db.cf_handle("canonical").unwrap(),
        }
    }

    fn insert(&self, b: &Block, sync: bool) {
        let mut batch = rocksdb::WriteBatch::default();
        batch.put_cf(self.headers, b.hash, &b.header.0);
        for (h, tx) in &b.txs {
            batch.put_cf(self.txs, h, &tx.0);
        }
        batch.put_cf(self.canonical, b.height.to_be_bytes(), b.hash);
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts).unwrap();
    }

    fn read(&self, key: &[u8; 32]) -> Option<Vec<u8>> {
        self.db.get_pinned_cf(self.txs, key).unwrap().map(|v| v.to_vec())
    }
}

fn config(dir: &std::path::Path) -> RocksConfig {
    RocksConfig::at(dir)
}

/// Ingests `blocks` blocks starting at `start` on both sides, chunk by chunk, alternating which
/// side goes first. Returns (raw, api) total time.
fn ingest(raw: &Raw<'_>, api: &RocksStore, start: u64, blocks: u64, durability: Durability) -> (Duration, Duration) {
    let (mut t_raw, mut t_api) = (Duration::ZERO, Duration::ZERO);
    let mut chunk_start = start;
    let mut flip = false;
    while chunk_start < start + blocks {
        let end = (chunk_start + CHUNK_BLOCKS).min(start + blocks);
        let chunk: Vec<Block> = (chunk_start..end).map(Block::generate).collect();
        let run_raw = |t: &mut Duration| {
            let s = Instant::now();
            for b in &chunk {
                raw.insert(b, durability == Durability::Synced);
            }
            *t += s.elapsed();
        };
        let run_api = |t: &mut Duration| {
            let s = Instant::now();
            for b in &chunk {
                insert_block(api, b, durability);
            }
            *t += s.elapsed();
        };
        if flip {
            run_api(&mut t_api);
            run_raw(&mut t_raw);
        } else {
            run_raw(&mut t_raw);
            run_api(&mut t_api);
        }
        flip = !flip;
        chunk_start = end;
    }
    (t_raw, t_api)
}

fn read_keys(blocks: u64, reads: usize) -> Vec<[u8; 32]> {
    let mut rng = Rng::new(42);
    (0..reads).map(|_| tx_hash(rng.below(blocks), rng.below(u64::from(TXS_PER_BLOCK)) as u32)).collect()
}

fn reads(raw: &Raw<'_>, api: &RocksStore, keys: &[[u8; 32]]) -> (Summary, Summary) {
    let (mut s_raw, mut s_api) = (Vec::with_capacity(keys.len()), Vec::with_capacity(keys.len()));
    for (i, chunk) in keys.chunks(CHUNK_READS).enumerate() {
        let run_raw = |out: &mut Vec<u64>| {
            for k in chunk {
                let s = Instant::now();
                let v = raw.read(k);
                out.push(s.elapsed().as_nanos() as u64);
                assert!(v.is_some());
            }
        };
        let run_api = |out: &mut Vec<u64>| {
            for k in chunk {
                let s = Instant::now();
                let v = api.get::<Txs>(k).unwrap();
                out.push(s.elapsed().as_nanos() as u64);
                assert!(v.is_some());
            }
        };
        if i % 2 == 0 {
            run_raw(&mut s_raw);
            run_api(&mut s_api);
        } else {
            run_api(&mut s_api);
            run_raw(&mut s_raw);
        }
    }
    (Summary::of(&mut s_raw), Summary::of(&mut s_api))
}

fn pct(ratio: f64) -> String {
    format!("{:+.1} %", (ratio - 1.0) * 100.0)
}

fn main() {
    let blocks = arg("--blocks", 20_000);
    let synced_blocks = arg("--synced-blocks", 1_000);
    let n_reads = arg("--reads", 200_000) as usize;
    let root = tempfile::Builder::new().prefix("overhead-").tempdir_in(std::env::temp_dir()).unwrap();
    let raw_store = RocksStore::open(&config(&root.path().join("raw")), schema()).unwrap();
    let api = RocksStore::open(&config(&root.path().join("api")), schema()).unwrap();
    let raw = Raw::new(&raw_store);

    eprintln!("ingest: {blocks} blocks (buffered: WAL, no fsync) on each side…");
    let (raw_buf, api_buf) = ingest(&raw, &api, 0, blocks, Durability::Buffered);
    eprintln!("ingest: {synced_blocks} blocks (synced: fsync per batch) on each side…");
    let (raw_sync, api_sync) = ingest(&raw, &api, blocks, synced_blocks, Durability::Synced);
    let total_blocks = blocks + synced_blocks;

    // Same on-disk shape for both before reading: everything compacted to the bottom level.
    eprintln!("compacting both databases…");
    for store in [&raw_store, &api] {
        store.flush().unwrap();
        store.compact_table::<Txs>().unwrap();
        store.compact_table::<Headers>().unwrap();
        store.compact_table::<Canonical>().unwrap();
    }
    let keys = read_keys(total_blocks, n_reads);
    eprintln!("reads: warming up with {n_reads} reads on each side…");
    let _ = reads(&raw, &api, &keys);
    eprintln!("reads: {n_reads} random warm point reads on each side…");
    let (r_raw, r_api) = reads(&raw, &api, &keys);

    let per_block = |t: Duration, n: u64| micros(t / n as u32);
    let bps = |t: Duration, n: u64| format!("{:.0}", n as f64 / t.as_secs_f64());
    println!("| workload | raw rocksdb | storage-api | overhead |");
    println!("|---|---|---|---|");
    println!(
        "| ingest, buffered, {blocks} blocks | {} ({} blocks/s) | {} ({} blocks/s) | {} |",
        per_block(raw_buf, blocks),
        bps(raw_buf, blocks),
        per_block(api_buf, blocks),
        bps(api_buf, blocks),
        pct(api_buf.as_secs_f64() / raw_buf.as_secs_f64())
    );
    println!(
        "| ingest, synced, {synced_blocks} blocks | {} ({} blocks/s) | {} ({} blocks/s) | {} |",
        per_block(raw_sync, synced_blocks),
        bps(raw_sync, synced_blocks),
        per_block(api_sync, synced_blocks),
        bps(api_sync, synced_blocks),
        pct(api_sync.as_secs_f64() / raw_sync.as_secs_f64())
    );
    for (label, a, b) in
        [("p50", r_raw.p50, r_api.p50), ("p99", r_raw.p99, r_api.p99), ("mean", r_raw.mean, r_api.mean)]
    {
        println!(
            "| warm point read {label}, {n_reads} reads | {} | {} | {} |",
            micros(a),
            micros(b),
            pct(b.as_secs_f64() / a.as_secs_f64())
        );
    }
}
