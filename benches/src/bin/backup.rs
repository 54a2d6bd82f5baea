//! Backup targets on RocksDB, to a local directory: checkpoint time at two database sizes,
//! full-backup throughput against the disk's measured sequential write rate, an incremental
//! backup of the unchanged database, and verify / restore throughput.
//! `cargo xtask bench --only-backup [--quick]`; prints a Markdown table.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use chain_store::evm::Evm;
use dag_store::VertexBuilder;
use node_storage::storage_backup::{BackupConfig, BackupKind, Backups, Selector};
use node_storage::{Config, RocksStore, StorageHandle, restore};

type Handle = StorageHandle<RocksStore, Evm>;

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

/// Adds `n` vertices with `payload` bytes of pseudo-random payload each.
async fn fill(h: &Handle, from: u64, n: u64, payload: usize) {
    let mut i = from;
    while i < from + n {
        let batch: Vec<_> = (i..(i + 2_000).min(from + n))
            .map(|j| {
                let data: Vec<u8> = (0..payload as u64).map(|k| ((j * 7919 + k * 104729) >> 3) as u8).collect();
                (
                    VertexBuilder::new(format!("a{}", j % 13)).id(format!("v{j}")).payload(data).timestamp(j).build(),
                    vec![1; 64],
                )
            })
            .collect();
        i += batch.len() as u64;
        for r in h.insert_vertices(batch).await {
            r.expect("insert");
        }
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let work = tempfile::tempdir_in(std::env::var_os("NODE_STORAGE_BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("tempdir");
    let (small_n, big_n, payload) = if quick { (2_000, 40_000, 2_048) } else { (2_000, 400_000, 2_048) };
    println!("backup benchmarks (RocksDB, local directory){}", if quick { ", quick" } else { "" });
    let disk = disk_write_rate(work.path(), if quick { 256 << 20 } else { 1 << 30 });

    let config = |name: &str| {
        let mut c = Config { data_dir: work.path().join(name), ..Config::default() };
        c.metrics.enabled = false;
        c.backup = BackupConfig::local(work.path().join(format!("{name}-backups")));
        c
    };
    let mut rows: Vec<(String, String, String)> = Vec::new();
    rt.block_on(async {
        // Checkpoint time at two sizes.
        let mut checkpoints = Vec::new();
        for (name, n) in [("small", small_n), ("big", big_n)] {
            let h = Handle::open(config(name)).expect("open");
            fill(&h, 0, n, payload).await;
            let r = h.backup(BackupKind::Physical, Arc::new(())).await.expect("backup");
            checkpoints.push((name, r.manifest.totals.raw_bytes, r.checkpoint_ms, r));
            h.shutdown().await;
        }
        for (name, raw, ms, _) in &checkpoints {
            rows.push((
                format!("checkpoint, {name} database ({:.0} MiB)", *raw as f64 / 1048576.0),
                format!("{ms} ms"),
                "≤ 100 ms".into(),
            ));
        }
        let (_, raw, _, full) = checkpoints.pop().expect("big");
        let secs = full.elapsed_ms as f64 / 1000.0;
        let rate = mib(raw, secs);
        rows.push(("disk sequential write (8 MiB writes + fsync)".into(), format!("{disk:.0} MiB/s"), "—".into()));
        rows.push((
            format!(
                "full physical backup, zstd-3 ({:.0} MiB, ratio {:.2})",
                raw as f64 / 1048576.0,
                full.manifest.totals.ratio()
            ),
            format!("{rate:.0} MiB/s = {:.0} % of disk", 100.0 * rate / disk),
            "≥ 70 % of disk".into(),
        ));
        // Incremental, unchanged.
        let h = Handle::open(config("big")).expect("open");
        let again = h.backup(BackupKind::Physical, Arc::new(())).await.expect("backup");
        rows.push((
            format!(
                "incremental backup, unchanged ({} files reused, {} B uploaded)",
                again.manifest.totals.reused_files, again.manifest.totals.uploaded_bytes
            ),
            format!("{} ms", again.elapsed_ms),
            "≤ 1 s".into(),
        ));
        // Uncompressed, for the ratio of compression cost.
        let mut plain = config("big");
        plain.backup = BackupConfig {
            compression: node_storage::storage_backup::Compression::None,
            ..BackupConfig::local(work.path().join("plain"))
        };
        h.shutdown().await;
        drop(h);
        let h = Handle::open(plain.clone()).expect("open");
        let p = h.backup(BackupKind::Physical, Arc::new(())).await.expect("backup");
        h.shutdown().await;
        drop(h);
        rows.push((
            "full physical backup, uncompressed".into(),
            format!(
                "{:.0} MiB/s = {:.0} % of disk",
                mib(raw, p.elapsed_ms as f64 / 1000.0),
                100.0 * mib(raw, p.elapsed_ms as f64 / 1000.0) / disk
            ),
            "—".into(),
        ));
        // Verify, then restore (verify + extract + open + full integrity check + swap).
        let backups = Backups::open(&config("big").backup).expect("open");
        let manifest = backups.select(&Selector::Latest).await.expect("latest");
        let t = Instant::now();
        backups.verify(&manifest, &work.path().join("scratch"), Arc::new(())).await.expect("verify");
        rows.push((
            "verify (download + BLAKE3 + decompress)".into(),
            format!("{:.0} MiB/s", mib(raw, t.elapsed().as_secs_f64())),
            "≥ 100 MB/s".into(),
        ));
        let t = Instant::now();
        restore::<RocksStore, Evm, ()>(&config("big"), &Selector::Latest, false, Arc::new(())).await.expect("restore");
        rows.push((
            "restore + verify (incl. opening and integrity check)".into(),
            format!("{:.0} MiB/s", mib(raw, t.elapsed().as_secs_f64())),
            "≥ 100 MB/s".into(),
        ));
    });
    println!("\n| measure | result | target |\n|---|---|---|");
    for (what, result, target) in rows {
        println!("| {what} | {result} | {target} |");
    }
}
