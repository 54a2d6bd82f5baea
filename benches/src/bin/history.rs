//! The history tier: upload throughput to the Bigtable emulator and to object-storage segments
//! (a local directory), archived read latency beside local reads in the same run, a log filter
//! over 100,000 archived blocks, and read-replica freshness. `cargo xtask bench --only-history
//! [--quick]`.

use std::time::{Duration, Instant};

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use chain_store::{LogFilter, NewBlock, Transaction};
use dag_store::VertexBuilder;
use node_storage::history_tier::{HistoryConfig, TierKind};
use node_storage::{Config, NodeReader, ReplicaHandle, RocksStore, StorageHandle};
use node_storage_benches::stats::{Summary, micros};
use storage_history::testkit::Emulator;

type Handle = StorageHandle<RocksStore, Synthetic>;
type Reader = NodeReader<RocksStore, Synthetic>;

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), ..Config::default() };
    c.metrics.enabled = false;
    c.retention.prune_interval_s = 0;
    // Every archived read a real request: the benchmark measures the archive, not the cache.
    c.caches.archive.max_entries = 1;
    c
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// Fills a stopped node: `blocks` blocks of 10 transactions, all finalized, and `vertices`
/// finalized vertices.
fn fill(dir: &std::path::Path, rt: &tokio::runtime::Runtime, blocks: &[NewBlock<Synthetic>], vertices: u64) {
    let h = Handle::open(config(dir)).expect("open");
    rt.block_on(async {
        h.init_chain(blocks[0].clone()).await.expect("init");
        for chunk in blocks[1..].chunks(2_000) {
            for r in h.insert_blocks(chunk.to_vec()).await {
                r.expect("insert");
            }
        }
        h.set_finalized(blocks.last().expect("blocks").block.hash()).await.expect("finalize");
        let mut parent = None;
        let mut batch = Vec::new();
        for i in 0..vertices {
            let v = VertexBuilder::new("a")
                .id(format!("v{i}"))
                .parents(parent.into_iter().collect())
                .payload(vec![3; 200])
                .timestamp(i)
                .build();
            parent = Some(v.hash);
            batch.push((v, vec![9; 64]));
        }
        let hashes: Vec<_> = batch.iter().map(|(v, _)| v.hash).collect();
        for r in h.insert_vertices(batch).await {
            r.expect("vertex");
        }
        for (seq, hash) in hashes.into_iter().enumerate() {
            h.finalize_vertex(hash, seq as u64).await.expect("finalize vertex");
        }
        h.shutdown().await;
    });
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n_blocks: usize = if quick { 10_000 } else { 100_000 };
    let n_vertices: u64 = if quick { 2_000 } else { 20_000 };
    let reads = if quick { 300 } else { 2_000 };
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("history tier benchmarks{}", if quick { ", quick" } else { "" });
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 10,
        fork_probability: 0.0,
        marker_every: 1_000,
        seed: 21,
        ..GenConfig::default()
    });
    let blocks = g.generate(n_blocks);
    let dir = tempfile::tempdir().expect("tempdir");
    let t = Instant::now();
    fill(dir.path(), &rt, &blocks, n_vertices);
    println!(
        "node: {n_blocks} blocks of 10 transactions and {n_vertices} finalized vertices in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let emulator = Emulator::start_or_skip("history benchmark");
    let segments_dir = tempfile::tempdir().expect("tempdir");
    let mut tiers: Vec<(&str, HistoryConfig)> = Vec::new();
    if let Some(e) = &emulator {
        let mut h = e.config("bench-");
        h.timeout_ms = 60_000;
        h.bigtable_batch_blocks = 1_024;
        tiers.push(("Bigtable emulator", h));
    }
    let mut seg = HistoryConfig { kind: Some(TierKind::Segments), ..HistoryConfig::default() };
    seg.segments.destination = segments_dir.path().display().to_string();
    tiers.push(("segments, local directory", seg));

    // 1. Upload throughput (from the stopped node, every final unit).
    for (name, history) in &tiers {
        let r = Reader::open(Config { history: history.clone(), ..config(dir.path()) }).expect("reader");
        let t = Instant::now();
        let rounds = r.upload_archive(&mut |_| {}).expect("upload");
        let secs = t.elapsed().as_secs_f64();
        let bytes: u64 = rounds.iter().map(|x| x.bytes).sum();
        let status = r.archive_status().expect("status");
        let archived = status.chain.as_ref().map_or(0, |m| m.next - m.first);
        let vertices = status.dag.as_ref().map_or(0, |m| m.next - m.first);
        println!(
            "upload to {name}: {archived} blocks + {vertices} vertices in {secs:.1} s — {:.0} blocks/s (with the vertices), {:.1} MB/s compressed ({:.0} MB), read back and verified before each watermark",
            archived as f64 / secs,
            bytes as f64 / 1e6 / secs,
            bytes as f64 / 1e6
        );
    }

    // Prune all but the last 10% locally.
    let keep = (n_blocks / 10) as u64;
    rt.block_on(async {
        let h = Handle::open(Config { history: tiers.last().expect("tier").1.clone(), ..config(dir.path()) })
            .expect("open");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = h.prune_chain(keep).await.expect("prune");
            if r.pruned_below + keep >= n_blocks as u64 || Instant::now() > deadline {
                println!("pruned locally below {} (keeping {keep})", r.pruned_below);
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        h.shutdown().await;
    });

    // 2. Read latency: archived (pruned locally) against local, in one run, per tier.
    for (name, history) in &tiers {
        let r = Reader::open(Config { history: history.clone(), ..config(dir.path()) }).expect("reader");
        let pruned_below = r.chain().pointers().pruned_below;
        let mut rng = Rng(7);
        let mut measure = |label: &str, pick: &mut dyn FnMut(&mut Rng) -> u64, tx: bool| {
            let mut samples = Vec::with_capacity(reads);
            for _ in 0..reads {
                let n = pick(&mut rng);
                let t = Instant::now();
                if tx {
                    let b = &blocks[n as usize];
                    let hash = b.block.transactions[(n % 10) as usize].hash();
                    assert!(r.transaction(&hash).expect("tx").is_some());
                } else {
                    assert!(r.block_by_number(n).expect("block").is_some());
                }
                samples.push(t.elapsed().as_nanos() as u64);
            }
            let s = Summary::of(&mut samples);
            println!("  {name}: {label}: p50 {}, p99 {}", micros(s.p50), micros(s.p99));
        };
        let local = n_blocks as u64 - pruned_below;
        measure("block by number, archived", &mut |g| 1 + g.below(pruned_below - 1), false);
        measure("block by number, local", &mut |g| pruned_below + g.below(local), false);
        measure("tx by hash, archived", &mut |g| 1 + g.below(pruned_below - 1), true);
        measure("tx by hash, local", &mut |g| pruned_below + g.below(local), true);

        // 2b. What checking an archived record costs a read: the same records decoded alone,
        // and decoded and checked against their headers (roots, receipts, bloom), in one run.
        let archive = storage_history::Archive::open(history).expect("archive").expect("configured");
        let sample: Vec<(u64, Vec<u8>, chain_store::synthetic::B256)> = (0..reads.min(500) as u64)
            .map(|i| 1 + (i * 7_919) % (pruned_below - 1))
            .map(|n| {
                let record = storage_history::HistoryTier::chain_record(&archive, n).expect("read").expect("archived");
                (n, record, r.chain().canonical_hash(n).expect("hash").expect("canonical"))
            })
            .collect();
        for (label, check) in [("decode alone", false), ("decode and check against the header", true)] {
            let mut samples = Vec::with_capacity(sample.len());
            for (n, record, hash) in &sample {
                let t = Instant::now();
                let u = chain_store::Unarchived::<Synthetic>::decode(*n, record, Some(hash)).expect("decodes");
                if check {
                    u.verify(None).expect("checks");
                }
                std::hint::black_box(&u);
                samples.push(t.elapsed().as_nanos() as u64);
            }
            let s = Summary::of(&mut samples);
            println!("  {name}: archived record, {label}: p50 {}, p99 {}", micros(s.p50), micros(s.p99));
        }

        // 3. Log filter over 100,000 (quick: 10,000) archived blocks: the marker contract logs
        // once every 1,000 blocks.
        let filter = LogFilter::range(0, pruned_below - 1).addresses([ChainGenerator::marker_contract()]);
        let mut samples = Vec::new();
        let mut found = 0;
        for _ in 0..5 {
            let t = Instant::now();
            found = r.logs(&filter, 10_000).expect("logs").len();
            samples.push(t.elapsed().as_nanos() as u64);
        }
        let first = Duration::from_nanos(samples[0]);
        let s = Summary::of(&mut samples);
        println!(
            "  {name}: log filter over {pruned_below} archived blocks ({found} matches): first {:.1} ms, p50 {:.1} ms of 5",
            first.as_secs_f64() * 1e3,
            s.p50.as_secs_f64() * 1e3
        );
    }

    // 4. Replica freshness: a primary's acknowledged write until a replica shows it.
    let dir = tempfile::tempdir().expect("tempdir");
    let writes = if quick { 100 } else { 500 };
    let mut g = ChainGenerator::new(GenConfig { txs_per_block: 10, seed: 3, ..GenConfig::default() });
    let chain = g.generate(writes + 1);
    rt.block_on(async {
        let h = Handle::open(config(dir.path())).expect("open");
        h.init_chain(chain[0].clone()).await.expect("init");
        for (interval, label) in [(0u64, "catch-up on demand, right after the write"), (100, "catch-up every 100 ms")] {
            let mut c = config(dir.path());
            c.replica.catch_up_interval_ms = interval;
            let replica: ReplicaHandle<RocksStore, Synthetic> = ReplicaHandle::open(c).expect("replica");
            let mut samples = Vec::new();
            let half = writes / 2;
            let range = if interval == 0 { 1..=half } else { half + 1..=writes };
            for b in &chain[range] {
                h.insert_block(b.clone()).await.expect("insert");
                let acked = Instant::now();
                let want = b.block.hash();
                loop {
                    if interval == 0 {
                        replica.catch_up().await.expect("catch up");
                    }
                    if replica.pointers().head.map(|x| x.hash) == Some(want) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                samples.push(acked.elapsed().as_nanos() as u64);
            }
            let s = Summary::of(&mut samples);
            println!(
                "replica freshness, {label}: p50 {:.2} ms, p99 {:.2} ms over {} writes",
                s.p50.as_secs_f64() * 1e3,
                s.p99.as_secs_f64() * 1e3,
                s.count
            );
        }
        h.shutdown().await;
    });
}
