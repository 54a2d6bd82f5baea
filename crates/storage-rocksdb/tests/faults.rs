//! Faults against real RocksDB on disk, each in a child process where the fault would disturb
//! the test runner:
//!
//! * `crash_cycles_keep_acknowledged_writes`: a child writes synced batches and prints each
//!   acknowledged key; it is SIGKILLed at a random moment; the store must reopen cleanly with
//!   every acknowledged key and every batch whole. `NODE_STORAGE_CRASH_CYCLES` cycles (default
//!   20; `cargo xtask crash --cycles N` runs more).
//! * `full_filesystem_poisons_store`: a store on a 4 MiB tmpfs is written until the disk is
//!   full; the failed write poisons the store, and after the filesystem grows everything
//!   acknowledged is there. Needs root to mount the tmpfs; says so and skips otherwise.
//! * `file_size_limit_poisons_store`: the same with `RLIMIT_FSIZE` in a child (no root needed).
//!
//! A plain `main` (harness = false) so the children can be this same binary.
#![allow(unsafe_code)] // setrlimit and signal in the file-size-limit child only

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rand::Rng;
use storage_api::testkit::{Items, Records, suite_schema};
use storage_api::{BackendErrorKind, Blob, Direction, Durability, FlushError, KvFlush, KvWrite, ReadExt, WriteError};
use storage_rocksdb::{RocksConfig, RocksStore};

const CHILD: &str = "NODE_STORAGE_FAULTS_CHILD";
const CHILD_DIR: &str = "NODE_STORAGE_FAULTS_DIR";

fn config(dir: &Path) -> RocksConfig {
    RocksConfig {
        write_buffer_size: 1 << 20,
        max_total_wal_size: 2 << 20,
        block_cache_size: 1 << 20,
        ..RocksConfig::at(dir)
    }
}

fn next_index(store: &RocksStore) -> u32 {
    store.last::<Items>().unwrap().map_or(0, |(k, _)| k + 1)
}

fn write_one(store: &RocksStore, i: u32, value_len: usize) -> Result<(), WriteError> {
    let mut batch = store.batch();
    batch.put::<Items>(&i, &Blob(vec![(i % 251) as u8; value_len]))?;
    batch.put::<Records>(&u64::from(i), &(u64::from(i), format!("record {i}")))?;
    store.write(batch, Durability::Synced)
}

/// Child: write synced batches forever, printing each acknowledged index.
fn child_writer(dir: &Path) {
    let store = RocksStore::open(&config(dir), suite_schema(1)).expect("child open");
    let mut out = std::io::stdout().lock();
    let mut i = next_index(&store);
    loop {
        write_one(&store, i, 512).expect("child write");
        writeln!(out, "{i}").and_then(|()| out.flush()).expect("stdout");
        i += 1;
    }
}

/// Every acknowledged batch is present, and every batch present is whole.
fn verify(dir: &Path, acked: &[u32]) -> usize {
    let store = RocksStore::open(&config(dir), suite_schema(1)).unwrap_or_else(|e| panic!("reopen after crash: {e}"));
    for &i in acked {
        assert_eq!(
            store.get::<Items>(&i).unwrap(),
            Some(Blob(vec![(i % 251) as u8; 512])),
            "acknowledged key {i} lost"
        );
    }
    let items: Vec<u64> =
        store.iter_all::<Items>(Direction::Forward).unwrap().keys().map(|k| u64::from(k.unwrap())).collect();
    let records: Vec<u64> = store.iter_all::<Records>(Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
    assert_eq!(items, records, "a batch was applied partially");
    items.len()
}

fn crash_cycles() {
    let cycles: u32 = std::env::var("NODE_STORAGE_CRASH_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut acked_total = 0usize;
    for cycle in 0..cycles {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .env(CHILD, "writer")
            .env(CHILD_DIR, dir.path())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.parse::<u32>().ok())
                .collect::<Vec<_>>()
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(20..300)));
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        assert!(!status.success(), "cycle {cycle}: the writer should have been killed");
        let acked = reader.join().unwrap();
        acked_total += acked.len();
        let stored = verify(dir.path(), &acked);
        assert!(stored >= acked_total, "cycle {cycle}: {stored} stored < {acked_total} acknowledged");
    }
    println!("    {cycles} SIGKILL cycles, {acked_total} acknowledged batches, all present and whole");
}

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Writes until the first failure; checks the store is poisoned. Returns the acknowledged count.
fn fill_until_failure(store: &RocksStore) -> (u32, WriteError) {
    let mut i = 0;
    let err = loop {
        match write_one(store, i, 16 * 1024) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
        assert!(i < 100_000, "the store never reported the full disk");
    };
    let again = write_one(store, i + 1, 10).unwrap_err();
    assert!(matches!(again, WriteError::Poisoned(_)), "after a failed write: {again}");
    assert!(again.to_string().contains("reopen"), "{again}");
    assert!(matches!(store.flush(), Err(FlushError::Poisoned(_))));
    assert!(store.is_poisoned());
    // Reads still work.
    if i > 0 {
        assert!(store.get::<Items>(&(i - 1)).unwrap().is_some());
    }
    (i, err)
}

fn verify_after_fault(dir: &Path, acked: u32) {
    let store = RocksStore::open(&config(dir), suite_schema(1)).unwrap_or_else(|e| panic!("reopen: {e}"));
    for i in 0..acked {
        assert_eq!(store.get::<Items>(&i).unwrap().map(|b| b.0.len()), Some(16 * 1024), "acknowledged key {i} lost");
    }
    write_one(&store, acked + 10, 10).expect("a reopened store accepts writes again");
}

fn full_filesystem() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !mounted {
        println!("    skipped: cannot mount a tmpfs here (needs root); file_size_limit covers poisoning");
        return;
    }
    let guard = Mount(mnt.clone());
    let db = mnt.join("db");
    let store = RocksStore::open(&config(&db), suite_schema(1)).unwrap();
    let (acked, err) = fill_until_failure(&store);
    match &err {
        WriteError::Backend(b) => assert_eq!(b.kind, BackendErrorKind::Io, "{err}"),
        e => panic!("unexpected {e}"),
    }
    assert!(err.to_string().to_lowercase().contains("space"), "{err}");
    drop(store);
    let grown = Command::new("mount").args(["-o", "remount,size=64m"]).arg(&mnt).status().unwrap();
    assert!(grown.success());
    verify_after_fault(&db, acked);
    println!("    disk full after {acked} acknowledged batches: poisoned, then all recovered");
    drop(guard);
}

/// Child: limit file sizes, fill the store, print the outcome.
fn child_fsize(dir: &Path) {
    // Below the WAL size at which the 1 MiB memtable switches logs, so the log write fails.
    let limit = libc::rlimit { rlim_cur: 512 << 10, rlim_max: 512 << 10 };
    // SAFETY: plain libc calls on this process's own limits and signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let store = RocksStore::open(&config(dir), suite_schema(1)).expect("child open");
    let (acked, err) = fill_until_failure(&store);
    println!("ACKED {acked} {err}");
}

fn file_size_limit() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        Command::new(std::env::current_exe().unwrap()).env(CHILD, "fsize").env(CHILD_DIR, dir.path()).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("ACKED ")).expect("child result");
    let acked: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(acked > 10, "{line}");
    verify_after_fault(dir.path(), acked);
    println!("    file-size limit after {acked} acknowledged batches: poisoned, then all recovered");
}

fn main() {
    if let (Ok(kind), Ok(dir)) = (std::env::var(CHILD), std::env::var(CHILD_DIR)) {
        match kind.as_str() {
            "writer" => child_writer(Path::new(&dir)),
            "fsize" => child_fsize(Path::new(&dir)),
            other => panic!("unknown child {other}"),
        }
        return;
    }
    let tests: [(&str, fn()); 3] = [
        ("crash_cycles_keep_acknowledged_writes", crash_cycles),
        ("full_filesystem_poisons_store", full_filesystem),
        ("file_size_limit_poisons_store", file_size_limit),
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        if filter.is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        println!("test {name} ...");
        let start = Instant::now();
        match std::panic::catch_unwind(test) {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok ({:.1}s)", start.elapsed().as_secs_f64());
            }
            Err(_) => {
                failed += 1;
                println!("test {name} ... FAILED");
            }
        }
    }
    println!("\nfaults: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
