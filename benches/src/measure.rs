//! What a workload measures and how a run is sized: rows of throughput and latency, on-disk
//! footprints, and the timing helpers the workloads share.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::stats::Summary;

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
