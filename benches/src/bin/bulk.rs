//! Bulk history import on RocksDB, all in one run so the figures compare as ratios:
//!
//! * synthetic 100-transaction blocks with every index (senders known): the live path
//!   (`insert_blocks`, batches of 64, buffered, one flush) against the bulk path (sorted runs,
//!   SST ingest), and the raw-RocksDB block workload of `cargo xtask overhead` (101 keys per
//!   block, buffered) as the engine's floor; disk use after a full compaction of both stores;
//! * mainnet-shaped blocks from era1 files end to end — read and decode, recover senders,
//!   store — with each step's share of the wall time, against the disk's sequential write
//!   rate measured in the same run; the import's peak memory (sorted runs, and the process's
//!   peak resident set).
//!
//! `cargo xtask bench --only-bulk [--quick]`; prints Markdown. For `perf record`, the binary
//! runs one part alone: `--profile-bulk` the synthetic bulk import, `--profile-check` that
//! import then the integrity check (timed), `--profile-live` the live path with the state
//! trie, `--profile-verify` the era1 import's checks on blocks held in memory.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use chain_eth::era1::Era1Reader;
use chain_eth::generator::MAINNET_LONDON;
use chain_eth::import::{new_block, write_generated};
use chain_eth::senders::Recovery;
use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use chain_store::{BulkOptions, ChainStore, CheckedBlock, chain_schema};
use node_storage_benches::workloads::dir_size;
use node_storage_benches::{Block, schema};
use storage_api::{Durability, KvCompact, KvFlush, Schema};
use storage_rocksdb::{RocksConfig, RocksStore};

fn open(dir: &Path, schema: Schema) -> RocksStore {
    RocksStore::open(&RocksConfig::at(dir), schema).expect("open")
}

fn compact_all(store: &RocksStore) {
    for t in store_tables(store) {
        store.compact_raw(t, &storage_api::RawRange::all()).expect("compact");
    }
}

fn store_tables(store: &RocksStore) -> Vec<&'static str> {
    storage_api::KvReader::schema(store).physical_tables().collect()
}

/// The process's peak resident set, from `/proc/self/status` (`VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn disk_write_rate(dir: &Path) -> f64 {
    let path = dir.join("seq-write.bin");
    let chunk = vec![0x5au8; 8 << 20];
    let started = Instant::now();
    let mut f = std::fs::File::create(&path).expect("create");
    for _ in 0..32 {
        f.write_all(&chunk).expect("write");
    }
    f.sync_all().expect("sync");
    let secs = started.elapsed().as_secs_f64();
    drop(f);
    let _ = std::fs::remove_file(&path);
    (256u64 << 20) as f64 / secs
}

/// The sorted-run budget of the synthetic bulk import.
const BUDGET: usize = 256 << 20;

/// The default generator's chain (the same blocks for every path) and its genesis.
fn generator() -> (ChainGenerator, chain_store::NewBlock<Synthetic>) {
    let mut g = ChainGenerator::new(GenConfig::default());
    let genesis = g.next_blocks().remove(0);
    (g, genesis)
}

/// `blocks` synthetic blocks through live `insert_blocks` (batches of 64, buffered, one flush
/// at the end) into `<root>/<name>`, keeping the state trie or not; generated in chunks of
/// 1,000 outside the timing. Returns the store and the seconds.
fn live_synthetic(root: &Path, name: &str, blocks: usize, trie: bool) -> (ChainStore<RocksStore, Synthetic>, f64) {
    let live = ChainStore::<_, Synthetic>::new(open(&root.join(name), chain_schema::<Synthetic>()))
        .expect("chain")
        .with_insert_durability(Durability::Buffered)
        .with_state_trie(trie);
    let (mut g, genesis) = generator();
    live.init(&genesis).expect("init");
    let mut elapsed = Duration::ZERO;
    for _ in 0..blocks / 1_000 {
        let chunk = g.generate(1_000);
        let started = Instant::now();
        for batch in chunk.chunks(64) {
            live.insert_blocks(batch).expect("insert");
        }
        elapsed += started.elapsed();
    }
    let started = Instant::now();
    live.store().flush().expect("flush");
    (live, (elapsed + started.elapsed()).as_secs_f64())
}

/// `blocks` synthetic blocks through the bulk path into `<root>/bulk`, generated in chunks of
/// 1,000 outside the timing. Returns the store, the seconds and the import's report.
fn bulk_synthetic(
    root: &Path,
    blocks: usize,
    budget: usize,
) -> (ChainStore<RocksStore, Synthetic>, f64, chain_store::BulkReport) {
    let chain = ChainStore::<_, Synthetic>::new(open(&root.join("bulk"), chain_schema::<Synthetic>())).expect("chain");
    let (mut g, genesis) = generator();
    chain.init(&genesis).expect("init");
    let started = Instant::now();
    let options = BulkOptions { memory_budget: budget, ..BulkOptions::new(root.join("scratch")) };
    let mut bulk = chain.bulk_import(options).expect("bulk");
    let mut elapsed = started.elapsed();
    for _ in 0..blocks / 1_000 {
        let chunk = g.generate(1_000);
        let started = Instant::now();
        bulk.push_all(chunk.into_iter(), Ok::<_, chain_store::ChainError>, &mut |_| {}).expect("push");
        elapsed += started.elapsed();
    }
    let started = Instant::now();
    let report = bulk.finish().expect("finish");
    (chain, (elapsed + started.elapsed()).as_secs_f64(), report)
}

/// The checks of the era1 import on mainnet-shaped blocks held in memory (senders recovered
/// beforehand): the block hash and body roots, the receipts root, the bloom, and the whole
/// `CheckedBlock::check`; microseconds per block for each.
fn profile_verify(root: &Path, quick: bool) {
    use chain_eth::Eth;
    use chain_store::{Bloom, ChainModel};
    let per_file = if quick { 50 } else { 250 };
    let paths = write_generated(root, MAINNET_LONDON, 11, 1, per_file).expect("era1 file");
    let mut reader = Era1Reader::open(&paths[0]).expect("open");
    let mut blocks = Vec::new();
    while let Some(block) = reader.next_block().expect("read") {
        blocks.push(new_block(block, &paths[0], Recovery::default()).expect("senders"));
    }
    let rounds = if quick { 2 } else { 8 };
    let per_block = |f: &dyn Fn(&chain_store::NewBlock<Eth>)| {
        let started = Instant::now();
        for _ in 0..rounds {
            for b in &blocks {
                f(b);
            }
        }
        started.elapsed().as_secs_f64() * 1e6 / (rounds * blocks.len()) as f64
    };
    let body = per_block(&|b| Eth::verify_body(&b.block.header, &b.block.transactions, &b.block.extra).expect("body"));
    let receipts = per_block(&|b| {
        std::hint::black_box(Eth::verify_receipts(&b.block.header, &b.receipts).expect("receipts"));
    });
    let bloom = per_block(&|b| {
        std::hint::black_box(Bloom::of_receipts::<Eth>(&b.receipts));
    });
    let whole = per_block(&|b| {
        std::hint::black_box(CheckedBlock::check(b.clone()).expect("check"));
    });
    let clone = per_block(&|b| {
        std::hint::black_box(b.clone());
    });
    println!(
        "verify, µs per {}-transaction block: body (hash, transactions, ommers, withdrawals) {body:.0}, \
         receipts root (and the bloom, where the model returns it) {receipts:.0}, the store's own bloom of the receipts {bloom:.0}; CheckedBlock::check {whole:.0} (of which the block's clone {clone:.0})",
        MAINNET_LONDON.txs_per_block
    );
}

fn mib(b: u64) -> f64 {
    b as f64 / f64::from(1u32 << 20)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let blocks: usize = if quick { 2_000 } else { 20_000 };
    let work = tempfile::tempdir_in(std::env::var_os("NODE_STORAGE_BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("tempdir");
    let root = work.path();
    println!(
        "Bulk import (RocksDB){}: {blocks} synthetic 100-transaction blocks.\n",
        if quick { ", quick" } else { "" }
    );

    // Synthetic blocks are generated in chunks of 1,000, outside every timing.

    // `--profile-bulk`: the synthetic bulk import alone (for `perf record`), then stop.
    if std::env::args().any(|a| a == "--profile-bulk") {
        let (chain, secs, _) = bulk_synthetic(root, blocks, BUDGET);
        drop(chain);
        println!("bulk: {:.0} blocks/s", blocks as f64 / secs);
        return;
    }
    // `--profile-check`: the synthetic bulk import, then the integrity check alone, timed.
    if std::env::args().any(|a| a == "--profile-check") {
        let (chain, _, _) = bulk_synthetic(root, blocks, BUDGET);
        let started = Instant::now();
        let report = chain.check().expect("check");
        assert!(report.is_ok(), "{report}");
        println!("integrity check of {blocks} blocks: {:.1} s", started.elapsed().as_secs_f64());
        return;
    }
    // `--profile-live`: the live path with the state trie alone.
    if std::env::args().any(|a| a == "--profile-live") {
        let (chain, secs) = live_synthetic(root, "live", blocks, true);
        drop(chain);
        println!("live with the trie: {:.0} blocks/s", blocks as f64 / secs);
        return;
    }

    // `--profile-verify`: the era1 import's checks alone, each part timed, on blocks read once
    // (for `perf record`), then stop.
    if std::env::args().any(|a| a == "--profile-verify") {
        profile_verify(root, quick);
        return;
    }
    // Raw RocksDB floor: the overhead benchmark's block (header, 100 transactions, canonical).
    let raw_store = open(&root.join("raw"), schema());
    let db = raw_store.raw_db();
    let (h, t, c) =
        (db.cf_handle("headers").unwrap(), db.cf_handle("txs").unwrap(), db.cf_handle("canonical").unwrap());
    let mut wo = rocksdb::WriteOptions::default();
    wo.set_sync(false);
    let mut raw = Duration::ZERO;
    for chunk in 0..(blocks / 1_000) as u64 {
        let raw_blocks: Vec<Block> = (chunk * 1_000..(chunk + 1) * 1_000).map(Block::generate).collect();
        let started = Instant::now();
        for b in &raw_blocks {
            let mut batch = rocksdb::WriteBatch::default();
            batch.put_cf(h, b.hash, &b.header.0);
            for (k, v) in &b.txs {
                batch.put_cf(t, k, &v.0);
            }
            batch.put_cf(c, b.height.to_be_bytes(), b.hash);
            db.write_opt(batch, &wo).expect("write");
        }
        raw += started.elapsed();
    }
    let started = Instant::now();
    raw_store.flush().expect("flush");
    let raw_secs = (raw + started.elapsed()).as_secs_f64();
    drop(raw_store);

    // Live path, with the state trie (the default) and without it (`[state] trie = "off"`).
    let (live, live_secs) = live_synthetic(root, "live", blocks, true);
    let (no_trie, no_trie_secs) = live_synthetic(root, "live-no-trie", blocks, false);
    assert_eq!(no_trie.head(), live.head());
    drop(no_trie);

    // Bulk path.
    let (bulk_chain, bulk_secs, report) = bulk_synthetic(root, blocks, BUDGET);
    assert_eq!(bulk_chain.head(), live.head());
    let check_started = Instant::now();
    let check = bulk_chain.check().expect("check");
    let check_secs = check_started.elapsed().as_secs_f64();
    assert!(check.is_ok(), "{check}");
    let rss_synthetic = peak_rss();

    let (live_before, bulk_before) = (dir_size(&root.join("live")), dir_size(&root.join("bulk")));
    compact_all(live.store());
    compact_all(bulk_chain.store());
    let (live_after, bulk_after) = (dir_size(&root.join("live")), dir_size(&root.join("bulk")));
    drop(live);
    drop(bulk_chain);

    let rate = |secs: f64| blocks as f64 / secs;
    println!("| path | blocks/s | vs live | vs raw RocksDB block workload |\n|---|---:|---:|---:|");
    println!(
        "| raw RocksDB, overhead benchmark's block (101 keys), buffered | {:.0} | {:.2}× | 1.00× |",
        rate(raw_secs),
        live_secs / raw_secs
    );
    println!(
        "| live `insert_blocks`, batches of 64, buffered, one flush | {:.0} | 1.00× | {:.2}× |",
        rate(live_secs),
        raw_secs / live_secs
    );
    println!(
        "| live `insert_blocks`, as above, `[state] trie = \"off\"` | {:.0} | {:.2}× | {:.2}× |",
        rate(no_trie_secs),
        live_secs / no_trie_secs,
        raw_secs / no_trie_secs
    );
    println!(
        "| bulk import, 8,192-block ranges, SST ingest | {:.0} | {:.2}× | {:.2}× |",
        rate(bulk_secs),
        live_secs / bulk_secs,
        raw_secs / bulk_secs
    );
    println!(
        "\nBulk import: {} ranges, {} SST files, {} runs spilled, sorted runs peaked at {:.1} MiB (budget {} MiB); \
         integrity check afterwards {check_secs:.1} s.",
        report.ranges,
        report.files,
        report.spilled_runs,
        mib(report.peak_run_bytes as u64),
        BUDGET >> 20
    );
    println!(
        "Disk: live {:.0} MiB → {:.0} MiB after full compaction; bulk {:.0} MiB → {:.0} MiB ({:+.1} % against live, compacted).\n",
        mib(live_before),
        mib(live_after),
        mib(bulk_before),
        mib(bulk_after),
        100.0 * (bulk_after as f64 / live_after as f64 - 1.0)
    );

    // era1 end to end. First each step alone, one after the other (the attribution the
    // targets are stated in); then the importer as operators run it, with reading,
    // sender recovery and checks on worker threads overlapping the store.
    let (files, per_file) = if quick { (2, 50) } else { (4, 250) };
    let archives = root.join("era1");
    std::fs::create_dir_all(&archives).expect("dir");
    let paths = write_generated(&archives, MAINNET_LONDON, 11, files, per_file).expect("era1 files");
    let era_bytes: u64 = paths.iter().map(|p| std::fs::metadata(p).map_or(0, |m| m.len())).sum();
    let eth_chain = |name: &str| {
        let chain = ChainStore::<_, chain_eth::Eth>::new(open(&root.join(name), chain_schema::<chain_eth::Eth>()))
            .expect("chain");
        chain_eth::import::init_from(&chain, &paths[0], Recovery::default(), &Default::default()).expect("init");
        chain
    };
    let eth_options = |name: &str| BulkOptions { range_blocks: u64::MAX, ..BulkOptions::new(root.join(name)) };
    let chain = eth_chain("eth");
    let mut bulk = chain.bulk_import(eth_options("scratch-eth")).expect("bulk");
    let (mut t_read, mut t_senders, mut t_verify, mut t_store) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut imported = 0u64;
    let started = Instant::now();
    for path in &paths {
        let mut reader = Era1Reader::open(path).expect("open");
        loop {
            let s = Instant::now();
            let Some(block) = reader.next_block().expect("read") else { break };
            t_read += s.elapsed();
            if block.number() <= bulk.head().number {
                continue;
            }
            let s = Instant::now();
            let new = new_block(block, path, Recovery::default()).expect("senders");
            t_senders += s.elapsed();
            let s = Instant::now();
            let checked = CheckedBlock::check(new).expect("check");
            t_verify += s.elapsed();
            let s = Instant::now();
            bulk.push_checked(&checked).expect("push");
            t_store += s.elapsed();
            imported += 1;
        }
        let s = Instant::now();
        reader.finish().expect("verify");
        t_read += s.elapsed();
        let s = Instant::now();
        bulk.commit().expect("commit");
        t_store += s.elapsed();
    }
    let s = Instant::now();
    bulk.finish().expect("finish");
    chain.store().flush().expect("flush");
    t_store += s.elapsed();
    let wall = started.elapsed().as_secs_f64();
    drop(chain);

    // The importer itself: `import_file` per file (what `nodestore import era1` runs).
    let chain = eth_chain("eth-pipelined");
    let mut bulk = chain.bulk_import(eth_options("scratch-eth-pipelined")).expect("bulk");
    let started = Instant::now();
    let mut pipelined_blocks = 0;
    for path in &paths {
        let r = chain_eth::import::import_file(&mut bulk, path, Recovery::default(), &Default::default(), &mut |_| {})
            .expect("import");
        pipelined_blocks += r.imported;
    }
    bulk.finish().expect("finish");
    chain.store().flush().expect("flush");
    let pipelined = started.elapsed().as_secs_f64();
    assert_eq!(pipelined_blocks, imported);
    drop(chain);

    let write_rate = disk_write_rate(root);
    let share = |d: Duration| 100.0 * d.as_secs_f64() / wall;
    println!(
        "era1 end to end: {imported} mainnet-shaped blocks ({} transactions each) from {files} files of {:.1} MiB, \
         against {:.0} MiB/s measured for sequential writes + fsync.\n",
        MAINNET_LONDON.txs_per_block,
        mib(era_bytes),
        write_rate / f64::from(1u32 << 20)
    );
    println!("| run | blocks/s | MiB/s of era1 |\n|---|---:|---:|");
    println!(
        "| each step in turn (the attribution below) | {:.0} | {:.1} |",
        imported as f64 / wall,
        mib(era_bytes) / wall
    );
    println!(
        "| `import_file`: read, senders and checks on {} worker threads overlapping the store | **{:.0}** | **{:.1}** |\n",
        BulkOptions::new(".").threads,
        imported as f64 / pipelined,
        mib(era_bytes) / pipelined
    );
    println!("| step (each in turn) | share of the wall time |\n|---|---:|");
    println!("| read: decompress, decode, verify accumulator and index | {:.0} % |", share(t_read));
    println!("| recover senders (libsecp256k1, every core) | {:.0} % |", share(t_senders));
    println!(
        "| verify: block hash, transactions, receipts, ommers and withdrawals roots, bloom | {:.0} % |",
        share(t_verify)
    );
    println!("| store: encode, sorted runs, SST ingest, commit | **{:.0} %** |", share(t_store));
    println!(
        "\nPeak resident set of the benchmark process: {:.0} MiB after the synthetic part (three stores open, \
         1,000 generated blocks in memory at a time), {:.0} MiB at the end.",
        rss_synthetic.map_or(f64::NAN, mib),
        peak_rss().map_or(f64::NAN, mib)
    );
}
