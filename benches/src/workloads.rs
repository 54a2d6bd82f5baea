//! The comparison workloads, written once against storage-api and run per backend.

use std::path::Path;
use std::time::{Duration, Instant};

use storage_api::{Blob, Direction, Durability, KvFlush, KvWrite, ReadExt};

use crate::backends::Compared;
pub use crate::measure::{Footprint, Row, Sizes, dir_size, drop_page_cache};
use crate::measure::{row, timed};
use crate::{Block, Canonical, Headers, Rng, TXS_PER_BLOCK, Txs, Values, tx_hash};

/// Writes one block (header, transactions, height index) as one atomic batch.
pub fn insert_block<S: KvWrite>(store: &S, b: &Block, durability: Durability) {
    let mut batch = store.batch();
    batch.put::<Headers>(&b.hash, &b.header).unwrap();
    for (h, tx) in &b.txs {
        batch.put::<Txs>(h, tx).unwrap();
    }
    batch.put::<Canonical>(&b.height, &b.hash).unwrap();
    store.write(batch, durability).unwrap();
}

fn ingest<S: KvWrite>(store: &S, heights: std::ops::Range<u64>, durability: Durability) -> (Duration, Vec<u64>) {
    let mut samples = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut start = heights.start;
    while start < heights.end {
        let end = (start + 200).min(heights.end);
        let chunk: Vec<Block> = (start..end).map(Block::generate).collect();
        let t = Instant::now();
        for b in &chunk {
            timed(&mut samples, || insert_block(store, b, durability));
        }
        elapsed += t.elapsed();
        start = end;
    }
    (elapsed, samples)
}

fn small_value(rng: &mut Rng) -> Blob {
    let mut v = vec![0u8; 300];
    rng.fill(&mut v);
    Blob(v)
}

fn point_reads<S: ReadExt>(store: &S, blocks: u64, n: u64, seed: u64) -> (Duration, Vec<u64>) {
    let mut rng = Rng::new(seed);
    let keys: Vec<[u8; 32]> =
        (0..n).map(|_| tx_hash(rng.below(blocks), rng.below(u64::from(TXS_PER_BLOCK)) as u32)).collect();
    let mut samples = Vec::with_capacity(keys.len());
    let t = Instant::now();
    for k in &keys {
        timed(&mut samples, || assert!(store.get::<Txs>(k).unwrap().is_some(), "missing tx"));
    }
    (t.elapsed(), samples)
}

/// Which workloads to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Everything.
    All,
    /// The DAG workloads.
    Dag,
    /// The chain workloads.
    Chain,
}

/// Runs the selected workloads on backend `B` in fresh directories under `root`.
pub fn run<B: Compared>(root: &Path, sizes: Sizes, only: Only) -> (Vec<Row>, Footprint) {
    if only != Only::All {
        let footprint = Footprint {
            backend: B::NAME,
            bytes_after_ingest: 0,
            bytes_after_compaction: None,
            reopen: Duration::ZERO,
            reopen_note: "not measured (partial run)",
        };
        let rows =
            if only == Only::Dag { crate::dag::run::<B>(root, sizes) } else { crate::chain::run::<B>(root, sizes) };
        return (rows, footprint);
    }
    let dir = root.join(B::NAME);
    std::fs::create_dir_all(&dir).unwrap();
    let name = B::NAME;
    let mut rows = Vec::new();
    let store = B::open_bench(&dir).unwrap();
    let blocks = sizes.blocks_buffered + sizes.blocks_synced;

    eprintln!("[{name}] block ingest");
    let (t, mut s) = ingest(&store, 0..sizes.blocks_buffered, Durability::Buffered);
    rows.push(row("block ingest, buffered", name, sizes.blocks_buffered, t, &mut s, "blocks"));
    let (t, mut s) = ingest(&store, sizes.blocks_buffered..blocks, Durability::Synced);
    rows.push(row("block ingest, synced", name, sizes.blocks_synced, t, &mut s, "blocks"));

    eprintln!("[{name}] small values");
    let mut rng = Rng::new(7);
    let mut s = Vec::new();
    let t = Instant::now();
    for _ in 0..sizes.small_single {
        let (k, v) = (rng.next_u64(), small_value(&mut rng));
        timed(&mut s, || store.put::<Values>(&k, &v, Durability::Buffered).unwrap());
    }
    rows.push(row("300 B values, batch of 1, buffered", name, sizes.small_single, t.elapsed(), &mut s, "values"));
    let mut s = Vec::new();
    let t = Instant::now();
    for _ in 0..sizes.small_batches {
        let values: Vec<(u64, Blob)> = (0..100).map(|_| (rng.next_u64(), small_value(&mut rng))).collect();
        timed(&mut s, || {
            let mut batch = store.batch();
            for (k, v) in &values {
                batch.put::<Values>(k, v).unwrap();
            }
            store.write(batch, Durability::Buffered).unwrap();
        });
    }
    let mut r =
        row("300 B values, batch of 100, buffered", name, sizes.small_batches * 100, t.elapsed(), &mut s, "values");
    r.note = "latency per batch".into();
    rows.push(r);

    store.flush().unwrap();
    let bytes_after_ingest = dir_size(&dir);
    eprintln!("[{name}] compaction");
    let bytes_after_compaction = B::compact(&store).then(|| dir_size(&dir));

    eprintln!("[{name}] point reads (warm)");
    let _ = point_reads(&store, blocks, sizes.reads, 1);
    let (t, mut s) = point_reads(&store, blocks, sizes.reads, 1);
    rows.push(row("random point reads, warm", name, sizes.reads, t, &mut s, "reads"));

    eprintln!("[{name}] range scans");
    for (workload, direction) in
        [("range scan 1,000, forward", Direction::Forward), ("range scan 1,000, reverse", Direction::Reverse)]
    {
        let mut rng = Rng::new(3);
        let mut s = Vec::new();
        let t = Instant::now();
        for _ in 0..sizes.scans {
            let start = rng.below(blocks.saturating_sub(1000).max(1));
            timed(&mut s, || {
                let mut iter = store.iter::<Canonical>(start..start + 1000, direction).unwrap();
                let n = iter.try_fold(0u64, |n, e| e.map(|_| n + 1)).unwrap();
                assert_eq!(n, 1000.min(blocks - start));
            });
        }
        let mut r = row(workload, name, sizes.scans * 1000, t.elapsed(), &mut s, "entries");
        r.note = "latency per scan".into();
        rows.push(r);
    }

    eprintln!("[{name}] mixed 90/10");
    rows.extend(mixed(&store, name, blocks, sizes.mixed_ops));

    drop(store);
    eprintln!("[{name}] reopen and cold reads");
    let t = Instant::now();
    let store = B::open_bench(&dir).unwrap();
    let reopen = t.elapsed();
    let dropped = drop_page_cache(&dir);
    let (t, mut s) = point_reads(&store, blocks, sizes.reads / 10, 2);
    let mut r = row("random point reads, cold", name, sizes.reads / 10, t, &mut s, "reads");
    r.note = if dropped {
        "after reopen, OS page cache dropped for the database files".into()
    } else {
        "after reopen; could NOT drop the OS page cache, so partly warm".into()
    };
    rows.push(r);
    drop(store);
    rows.extend(crate::dag::run::<B>(root, sizes));
    rows.extend(crate::chain::run::<B>(root, sizes));
    (rows, Footprint { backend: name, bytes_after_ingest, bytes_after_compaction, reopen, reopen_note: B::REOPEN_NOTE })
}

/// One writer (single 300-byte values, buffered) and one reader (random point reads) at the
/// same time, nine reads for every write.
fn mixed<S: KvWrite + ReadExt + Sync>(store: &S, name: &'static str, blocks: u64, ops: u64) -> Vec<Row> {
    let writes = ops / 10;
    let reads = ops - writes;
    let ((tw, mut sw), (tr, mut sr)) = std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            let mut rng = Rng::new(11);
            let mut s = Vec::new();
            let t = Instant::now();
            for _ in 0..writes {
                let (k, v) = (rng.next_u64(), small_value(&mut rng));
                timed(&mut s, || store.put::<Values>(&k, &v, Durability::Buffered).unwrap());
            }
            (t.elapsed(), s)
        });
        let reader = scope.spawn(|| point_reads(store, blocks, reads, 5));
        (writer.join().unwrap(), reader.join().unwrap())
    });
    let mut w = row("mixed 90/10: writer", name, writes, tw, &mut sw, "writes");
    w.note = "concurrent with the reader".into();
    let mut r = row("mixed 90/10: reader", name, reads, tr, &mut sr, "reads");
    r.note = "concurrent with the writer".into();
    vec![r, w]
}
