//! Facade targets on RocksDB: durable vertex inserts from 256 concurrent submitters (group
//! commit), cached block-read latency, and the handle's overhead over direct chain-store
//! calls for buffered ingest. `cargo xtask bench --only-facade [--quick]`.

use std::time::Instant;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use chain_store::{ChainStore, NewBlock, chain_schema};
use dag_store::VertexBuilder;
use node_storage::{Config, RocksStore, StorageHandle};
use storage_api::{Durability, KvFlush};
use storage_rocksdb::RocksConfig;

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), ..Config::default() };
    c.metrics.enabled = false;
    c
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("facade benchmarks (RocksDB){}", if quick { ", quick" } else { "" });

    // 1. Durable vertex inserts, 256 concurrent submitters.
    let total: u64 = if quick { 20_000 } else { 200_000 };
    let dir = tempfile::tempdir().expect("tempdir");
    let h: StorageHandle<RocksStore, Synthetic> = StorageHandle::open(config(dir.path())).expect("open");
    let per = total / 256;
    let started = Instant::now();
    rt.block_on(async {
        let mut tasks = Vec::new();
        for w in 0..256u64 {
            let h = h.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per {
                    let v = VertexBuilder::new(format!("agent-{w}"))
                        .id(format!("{w}-{i}"))
                        .payload(vec![7; 200])
                        .timestamp(i)
                        .build();
                    h.insert_vertex(v, vec![1; 64]).await.expect("insert");
                }
            }));
        }
        for t in tasks {
            t.await.expect("task");
        }
    });
    let secs = started.elapsed().as_secs_f64();
    let m = h.metrics().render_json();
    let groups: f64 = m["node_storage_batch_requests"]["samples"][0]["count"].as_f64().unwrap_or(0.0);
    println!(
        "durable vertex inserts, 256 submitters: {:.0}/s ({} inserts in {secs:.2} s, {groups:.0} group commits, {:.0} requests per sync)",
        (per * 256) as f64 / secs,
        per * 256,
        (per * 256) as f64 / groups.max(1.0)
    );
    drop(h);

    // 2. Cached block reads.
    let dir = tempfile::tempdir().expect("tempdir");
    let h: StorageHandle<RocksStore, Synthetic> = StorageHandle::open(config(dir.path())).expect("open");
    let mut g = ChainGenerator::new(GenConfig { fork_probability: 0.0, ..GenConfig::default() });
    let reads = if quick { 20_000 } else { 200_000 };
    let lat = rt.block_on(async {
        h.init_chain(g.next_blocks().remove(0)).await.expect("init");
        for r in h.insert_blocks(g.generate(100)).await {
            r.expect("insert");
        }
        for n in 1..=100 {
            h.block_by_number(n).await.expect("read");
        }
        let mut lat = Vec::with_capacity(reads);
        for i in 0..reads {
            let t = Instant::now();
            let b = h.block_by_number(1 + (i as u64 % 100)).await.expect("read");
            lat.push(t.elapsed().as_secs_f64() * 1e6);
            assert!(b.is_some());
        }
        lat
    });
    let mut lat = lat;
    lat.sort_by(f64::total_cmp);
    println!(
        "cached block by height (100 txs): p50 {:.2} µs, p99 {:.2} µs over {reads} reads",
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    drop(h);

    // 3. Buffered ingest: handle.insert_blocks vs ChainStore::insert_blocks, same blocks. Each
    // handle call returns once its blocks are durable (one sync per group); the direct path is
    // measured with the same guarantee (a sync after each call) and, as before, with one sync
    // at the end only. The caller owns its blocks (as a node does, having received them), so
    // the copies the handle takes ownership of are made before the clock starts.
    let n_blocks = if quick { 300 } else { 2_000 };
    let mut g = ChainGenerator::new(GenConfig { fork_probability: 0.0, seed: 9, ..GenConfig::default() });
    let genesis = g.next_blocks().remove(0);
    let blocks: Vec<NewBlock<Synthetic>> = g.generate(n_blocks);
    let mut synced_s = Vec::new();
    let mut direct_s = Vec::new();
    let mut facade_s = Vec::new();
    let direct = |sync_each: bool| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut rc = RocksConfig::at(dir.path().join("chain"));
        rc.block_cache_size = Config::default().engine.cache_bytes;
        rc.write_buffer_size = Config::default().engine.write_buffer_bytes;
        let store = ChainStore::<_, Synthetic>::new(RocksStore::open(&rc, chain_schema::<Synthetic>()).expect("open"))
            .expect("chain")
            .with_insert_durability(Durability::Buffered);
        store.init(&genesis).expect("init");
        let t = Instant::now();
        for chunk in blocks.chunks(100) {
            store.insert_blocks(chunk).expect("insert");
            if sync_each {
                store.store().sync().expect("sync");
            }
        }
        store.store().sync().expect("sync");
        t.elapsed().as_secs_f64()
    };
    for _round in 0..3 {
        synced_s.push(direct(true));
        direct_s.push(direct(false));
        let dir = tempfile::tempdir().expect("tempdir");
        let h: StorageHandle<RocksStore, Synthetic> = StorageHandle::open(config(dir.path())).expect("open");
        let chunks: Vec<Vec<NewBlock<Synthetic>>> = blocks.chunks(100).map(<[_]>::to_vec).collect();
        let t = rt.block_on(async {
            h.init_chain(genesis.clone()).await.expect("init");
            let t = Instant::now();
            for chunk in chunks {
                for r in h.insert_blocks(chunk).await {
                    r.expect("insert");
                }
            }
            t.elapsed().as_secs_f64()
        });
        facade_s.push(t);
    }
    for v in [&mut synced_s, &mut direct_s, &mut facade_s] {
        v.sort_by(f64::total_cmp);
    }
    let (sd, d, f) = (synced_s[1], direct_s[1], facade_s[1]);
    println!(
        "buffered ingest of {n_blocks} blocks (100 txs, 100 per call), median of 3: direct with a sync per call {:.0} blocks/s, \
         facade {:.0} blocks/s, overhead {:+.1} %; direct with one sync at the end {:.0} blocks/s ({:+.1} %)",
        n_blocks as f64 / sd,
        n_blocks as f64 / f,
        (f / sd - 1.0) * 100.0,
        n_blocks as f64 / d,
        (f / d - 1.0) * 100.0
    );
}
