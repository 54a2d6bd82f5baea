//! Backup targets on RocksDB, to a local directory: checkpoint time at two database sizes,
//! full-backup throughput against the disk's measured sequential write rate, an incremental
//! backup of the unchanged database, and verify / restore throughput.
//! `cargo xtask bench --only-backup [--quick]`; prints a Markdown table.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use chain_store::synthetic::Synthetic;
use dag_store::VertexBuilder;
use node_storage::{Config, RocksStore, StorageHandle, restore};
use storage_backup::{BackupConfig, BackupKind, Backups, Selector};

type Handle = StorageHandle<RocksStore, Synthetic>;

fn mib(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / (1 << 20) as f64 / secs.max(1e-9)
}

/// Sequential write rate of the filesystem holding `dir`: `bytes` in 8 MiB writes, then fsync.
fn disk_write_rate(dir: &std::path::Path, bytes: u64) -> f64 {
    let path = dir.join("disk-rate.bin");
    let block: Vec<u8> = (0..8 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
    let started = Instant::now();
    let mut f = std::fs::File::create(&path).expect("create");
    let mut written = 0;
    while written < bytes {
        f.write_all(&block).expect("write");
        written += block.len() as u64;
    }
    f.sync_all().expect("fsync");
    let rate = mib(written, started.elapsed().as_secs_f64());
    std::fs::remove_file(&path).expect("remove");
    rate
}

/// Adds `n` vertices with `payload` bytes each: half pseudo-random (like hashes and
/// signatures), half repetitive, so compression has something but not everything to do.
async fn fill(h: &Handle, from: u64, n: u64, payload: usize) {
    let mut i = from;
    while i < from + n {
        let batch: Vec<_> = (i..(i + 2_000).min(from + n))
            .map(|j| {
                let mut x = j.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                let data: Vec<u8> = (0..payload)
                    .map(|k| {
                        if k < payload / 2 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        } else {
                            (k % 7) as u8
                        }
                    })
                    .collect();
                let v =
                    VertexBuilder::new(format!("a{}", j % 13)).id(format!("v{j}")).payload(data).timestamp(j).build();
                (v, vec![1; 64])
            })
            .collect();
        i += batch.len() as u64;
        for r in h.insert_vertices(batch).await {
            r.expect("insert");
        }
    }
}

type Row = (String, String, &'static str);

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let work = tempfile::tempdir_in(std::env::var_os("NODE_STORAGE_BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("tempdir");
    let (small_n, big_n, payload) = if quick { (2_000, 60_000, 2_048) } else { (2_000, 600_000, 2_048) };
    println!("backup benchmarks (RocksDB, local directory){}", if quick { ", quick" } else { "" });
    let disk = disk_write_rate(work.path(), if quick { 256 << 20 } else { 1 << 30 });
    let config = |name: &str, dest: &str| {
        let mut c = Config { data_dir: work.path().join(name), ..Config::default() };
        c.metrics.enabled = false;
        c.backup = BackupConfig::local(work.path().join(dest));
        c
    };
    let mut rows: Vec<Row> = Vec::new();
    rt.block_on(async {
        // Checkpoint time at two sizes; then a full backup of the big one.
        let mut last = None;
        for (name, n) in [("small", small_n), ("big", big_n)] {
            let h = Handle::open(config(name, "default")).expect("open");
            fill(&h, 0, n, payload).await;
            h.compact().await.expect("compact"); // most data in SSTs, as in a long-running node
            fill(&h, n, n / 50, payload).await; // and some in the memtables and WAL
            let r = h.backup(BackupKind::Physical, Arc::new(())).await.expect("backup");
            let raw = r.manifest.totals.raw_bytes;
            rows.push((
                format!("checkpoint, {name} database ({:.0} MiB)", raw as f64 / 1048576.0),
                format!("{} ms", r.checkpoint_ms),
                "≤ 100 ms",
            ));
            h.shutdown().await;
            last = Some(r);
        }
        let full = last.expect("big");
        let raw = full.manifest.totals.raw_bytes;
        let rate = mib(raw, full.elapsed_ms as f64 / 1000.0);
        rows.push(("disk sequential write (8 MiB writes + fsync)".into(), format!("{disk:.0} MiB/s"), "—"));
        rows.push((
            format!(
                "full physical backup, zstd-1, default ({:.0} MiB, ratio {:.2})",
                raw as f64 / 1048576.0,
                full.manifest.totals.ratio()
            ),
            format!("{rate:.0} MiB/s = {:.0} % of disk", 100.0 * rate / disk),
            "≥ 70 % of disk",
        ));
        // Incremental, unchanged.
        let h = Handle::open(config("big", "default")).expect("open");
        let again = h.backup(BackupKind::Physical, Arc::new(())).await.expect("backup");
        h.shutdown().await;
        drop(h);
        rows.push((
            format!(
                "incremental backup, unchanged ({} files reused, {:.1} MiB uploaded)",
                again.manifest.totals.reused_files,
                again.manifest.totals.uploaded_bytes as f64 / 1048576.0
            ),
            format!("{} ms", again.elapsed_ms),
            "≤ 1 s",
        ));
        // Other compression settings, each a full backup to a fresh destination.
        use storage_backup::Compression;
        for (label, compression, level) in [
            ("zstd-3", Compression::Zstd, 3),
            ("gzip-fast", Compression::Gzip, 1),
            ("uncompressed", Compression::None, 1),
        ] {
            let mut other = config("big", label);
            other.backup.compression = compression;
            other.backup.zstd_level = level;
            let h = Handle::open(other).expect("open");
            let p = h.backup(BackupKind::Physical, Arc::new(())).await.expect("backup");
            h.shutdown().await;
            drop(h);
            let rate = mib(raw, p.elapsed_ms as f64 / 1000.0);
            rows.push((
                format!("full physical backup, {label} (ratio {:.2})", p.manifest.totals.ratio()),
                format!("{rate:.0} MiB/s = {:.0} % of disk", 100.0 * rate / disk),
                "—",
            ));
        }
        // Verify, then restore (verify + extract + open + full integrity check + swap).
        let big = config("big", "default");
        let backups = Backups::open(&big.backup).expect("open");
        let manifest = backups.select(&Selector::Latest).await.expect("latest");
        let t = Instant::now();
        backups.verify(&manifest, &work.path().join("scratch"), Arc::new(())).await.expect("verify");
        rows.push((
            "verify (download, BLAKE3, decompress)".into(),
            format!("{:.0} MiB/s", mib(raw, t.elapsed().as_secs_f64())),
            "≥ 100 MB/s",
        ));
        let t = Instant::now();
        restore::<RocksStore, Synthetic, ()>(&big, &Selector::Latest, false, Arc::new(())).await.expect("restore");
        let restore_secs = t.elapsed().as_secs_f64();
        let h = Handle::open(big.clone()).expect("open");
        let t = Instant::now();
        h.check().await.expect("check");
        let check_secs = t.elapsed().as_secs_f64();
        h.shutdown().await;
        rows.push((
            "restore (download, verify, extract, open, integrity check, swap)".into(),
            format!(
                "{:.0} MiB/s ({restore_secs:.1} s, of which the integrity check ≈ {check_secs:.1} s)",
                mib(raw, restore_secs)
            ),
            "≥ 100 MB/s",
        ));
    });
    println!("\n| measure | result | target |\n|---|---|---|");
    for (what, result, target) in rows {
        println!("| {what} | {result} | {target} |");
    }
}
