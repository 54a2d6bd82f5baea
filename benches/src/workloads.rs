//! The comparison workloads, written once against storage-api and run per backend.

use std::path::Path;
use std::time::{Duration, Instant};

use storage_api::{Blob, Direction, Durability, KvFlush, KvWrite, ReadExt};

use crate::backends::Backend;
use crate::stats::Summary;
use crate::{Block, Canonical, Headers, Rng, TXS_PER_BLOCK, Txs, Values, tx_hash};

/// How much work each workload does.
#[derive(Debug, Clone, Copy)]
pub struct Sizes {
    /// Blocks ingested with buffered durability.
    pub blocks_buffered: u64,
    /// Blocks ingested with synced durability.
    pub blocks_synced: u64,
    /// Small values written one per batch.
    pub small_single: u64,
    /// Batches of 100 small values.
    pub small_batches: u64,
    /// Random point reads (warm); a tenth of this cold.
    pub reads: u64,
    /// Range scans of 1,000 entries, per direction.
    pub scans: u64,
    /// Operations of the mixed 90/10 run.
    pub mixed_ops: u64,
    /// DAG vertices inserted in batches of 1,000.
    pub dag_batched: u64,
    /// DAG vertices inserted one per write.
    pub dag_single: u64,
    /// Tip-set reads.
    pub dag_tip_reads: u64,
    /// 1,000-vertex ancestor walks.
    pub dag_walks: u64,
    /// 100-transaction blocks imported into the chain store.
    pub chain_blocks: u64,
    /// Warm block-by-height reads.
    pub chain_reads: u64,
    /// Blocks of the chain the log filters run over.
    pub chain_log_blocks: u64,
    /// Log-filter queries per filter.
    pub chain_log_queries: u64,
}

impl Sizes {
    /// The full run (a few minutes for all backends on two cores).
    pub const FULL: Sizes = Sizes {
        blocks_buffered: 20_000,
        blocks_synced: 1_000,
        small_single: 50_000,
        small_batches: 2_000,
        reads: 200_000,
        scans: 2_000,
        mixed_ops: 200_000,
        dag_batched: 200_000,
        dag_single: 20_000,
        dag_tip_reads: 10_000,
        dag_walks: 500,
        chain_blocks: 20_000,
        chain_reads: 100_000,
        chain_log_blocks: 100_000,
        chain_log_queries: 50,
    };
    /// The quick smoke run (well under a minute).
    pub const QUICK: Sizes = Sizes {
        blocks_buffered: 500,
        blocks_synced: 30,
        small_single: 2_000,
        small_batches: 50,
        reads: 10_000,
        scans: 50,
        mixed_ops: 10_000,
        dag_batched: 5_000,
        dag_single: 1_000,
        dag_tip_reads: 500,
        dag_walks: 20,
        chain_blocks: 300,
        chain_reads: 2_000,
        chain_log_blocks: 5_000,
        chain_log_queries: 5,
    };
}

/// One measured workload on one backend.
#[derive(Debug, Clone)]
pub struct Row {
    /// Workload name.
    pub workload: &'static str,
    /// Backend name.
    pub backend: &'static str,
    /// Operations per second (the operation is named by `unit`).
    pub throughput: f64,
    /// What one operation is.
    pub unit: &'static str,
    /// Per-operation latency.
    pub latency: Option<Summary>,
    /// Anything the reader should know.
    pub note: String,
}

/// Sizes and times that are not throughputs.
#[derive(Debug, Clone)]
pub struct Footprint {
    /// Backend name.
    pub backend: &'static str,
    /// Bytes on disk after all ingest workloads.
    pub bytes_after_ingest: u64,
    /// Bytes on disk after a full compaction (`None`: no manual compaction).
    pub bytes_after_compaction: Option<u64>,
    /// Time to reopen the populated store after a clean close.
    pub reopen: Duration,
    /// What the reopen time includes beyond the engine's own open.
    pub reopen_note: &'static str,
}

/// Total size of the files under `dir`.
pub fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => dir_size(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Asks the kernel to drop its cached pages of every file under `dir`. Returns whether it
/// worked for all files.
pub fn drop_page_cache(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    let mut ok = true;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            ok &= drop_page_cache(&path);
            continue;
        }
        match std::fs::File::open(&path) {
            Ok(f) => {
                let _ = f.sync_all();
                // SAFETY: fadvise on a file descriptor we own; it only drops clean cached pages.
                #[allow(unsafe_code)]
                let rc = unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
                ok &= rc == 0;
            }
            Err(_) => ok = false,
        }
    }
    ok
}

pub(crate) fn timed(samples: &mut Vec<u64>, f: impl FnOnce()) {
    let start = Instant::now();
    f();
    samples.push(start.elapsed().as_nanos() as u64);
}

pub(crate) fn row(
    workload: &'static str,
    backend: &'static str,
    ops: u64,
    elapsed: Duration,
    samples: &mut [u64],
    unit: &'static str,
) -> Row {
    Row {
        workload,
        backend,
        throughput: ops as f64 / elapsed.as_secs_f64(),
        unit,
        latency: (!samples.is_empty()).then(|| Summary::of(samples)),
        note: String::new(),
    }
}

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
pub fn run<B: Backend>(root: &Path, sizes: Sizes, only: Only) -> (Vec<Row>, Footprint) {
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
