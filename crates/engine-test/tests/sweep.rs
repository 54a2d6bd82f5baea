//! I/O-error sweeps on the fault-injecting file system (SQLite's I/O-error tests are the
//! model): for N = 1, 2, … the Nth write (or fsync, or directory fsync) fails — once, or from
//! then on — while a store is opened and synced batches are written. Every run must end with a
//! clear error or a clean finish; after a failure the store is poisoned and refuses writes and
//! flushes until reopened; then, after a power cut on top, the reopen succeeds, every
//! acknowledged batch is there whole, and the store accepts writes again. A full disk
//! (`ENOSPC` from then on) ends the same way once space is freed.
//!
//! `cargo test` sweeps every `ENGINE_TEST_SWEEP_STRIDE`th N (default 7); `cargo xtask powercut
//! --sweep` sets the stride to 1. Skipped, saying why, where FUSE cannot mount.

use std::path::Path;

use engine_test::{Redb, Rocks, TestEngine};
use fault_fs::{Cut, Fault, FaultFs, Op};
use storage_api::testkit::{Items, Records, suite_schema};
use storage_api::{Blob, Durability, FlushError, KvFlush, KvWrite, ReadExt, Table, WriteError};

const BATCHES: u32 = 120;
const VALUE: usize = 6 * 1024;

fn write_one<S: KvWrite>(store: &S, i: u32) -> Result<(), WriteError> {
    let mut batch = store.batch();
    batch.put::<Items>(&i, &Blob(vec![(i % 251) as u8; VALUE]))?;
    batch.put::<Records>(&u64::from(i), &(u64::from(i), format!("record {i}")))?;
    store.write(batch, Durability::Synced)
}

/// How one run ended.
#[derive(Debug, Default)]
struct Outcome {
    acked: u32,
    open_failed: bool,
    write_failed: bool,
}

/// Opens a store in `dir` under whatever fault is injected and writes until the first error.
fn run<E: TestEngine>(dir: &Path) -> Outcome {
    let mut out = Outcome::default();
    let store = match E::open(dir, suite_schema(1)) {
        Ok(s) => s,
        Err(e) => {
            // A clear error, not a panic; the reopen below must then work.
            assert!(!e.to_string().is_empty());
            out.open_failed = true;
            return out;
        }
    };
    for i in 0..BATCHES {
        match write_one(&store, i) {
            Ok(()) => out.acked += 1,
            Err(e) => {
                assert!(matches!(e, WriteError::Backend(_) | WriteError::Poisoned(_)), "{}: {e}", E::NAME);
                assert!(store.is_poisoned(), "{}: a failed write poisons the store ({e})", E::NAME);
                let again = write_one(&store, BATCHES + 1).unwrap_err();
                assert!(matches!(again, WriteError::Poisoned(_)), "{}: after a failed write: {again}", E::NAME);
                assert!(again.to_string().contains("reopen"), "{again}");
                assert!(matches!(store.flush(), Err(FlushError::Poisoned(_))), "{}", E::NAME);
                out.write_failed = true;
                break;
            }
        }
    }
    out
}

/// After the faults are cleared and the power cut: everything acknowledged is there.
fn verify<E: TestEngine>(dir: &Path, out: &Outcome, what: &str) {
    let store = E::open(dir, suite_schema(1)).unwrap_or_else(|e| panic!("{} {what}: reopen: {e}", E::NAME));
    for i in 0..out.acked {
        let item = store.get::<Items>(&i).unwrap().map(|b| b.0);
        let whole = item.as_ref().is_some_and(|v| *v == vec![(i % 251) as u8; VALUE]);
        let len = item.as_ref().map(Vec::len);
        assert!(
            whole,
            "{} {what}: acknowledged batch {i} of {} lost or torn (found {len:?} bytes)",
            E::NAME,
            out.acked
        );
        let record = store.get::<Records>(&u64::from(i)).unwrap();
        assert_eq!(record, Some((u64::from(i), format!("record {i}"))), "{} {what}: batch {i} half there", E::NAME);
    }
    write_one(&store, BATCHES + 2)
        .unwrap_or_else(|e| panic!("{} {what}: a reopened store accepts writes: {e}", E::NAME));
}

fn mount() -> Option<FaultFs> {
    fault_fs::mount_or_skip("I/O-error sweeps")
}

fn stride() -> u64 {
    std::env::var("ENGINE_TEST_SWEEP_STRIDE").ok().and_then(|v| v.parse().ok()).unwrap_or(7).max(1)
}

fn sweep<E: TestEngine>(op: Op) {
    let Some(mut fs) = mount() else { return };
    // A clean run: how many operations of the kind there are to fail.
    let before = fs.counts().get(op);
    let clean = run::<E>(&fs.path().join("clean"));
    assert_eq!(clean.acked, BATCHES);
    let total = fs.counts().get(op) - before;
    let (mut runs, mut failed_opens, mut failed_writes) = (0, 0, 0);
    for persistent in [false, true] {
        for n in (1..=total).step_by(stride() as usize) {
            let what = format!("{op:?} #{n}{}", if persistent { " and on" } else { "" });
            let dir = fs.path().join(format!("{op:?}-{n}-{persistent}"));
            fs.inject(if persistent { Fault::from_then_on(op, n) } else { Fault::once(op, n) });
            let out = run::<E>(&dir);
            fs.clear_faults();
            fs.cut_power(Cut { tear: n % 2 == 0, seed: n }).unwrap();
            if !out.open_failed {
                verify::<E>(&dir, &out, &what);
            } else {
                // The open failed part-way: a clean open now, with nothing to find.
                verify::<E>(&dir, &Outcome::default(), &what);
            }
            runs += 1;
            failed_opens += u64::from(out.open_failed);
            failed_writes += u64::from(out.write_failed);
        }
    }
    println!(
        "{} {op:?}: {total} in a clean run; {runs} runs (stride {}), {failed_opens} failed opens and \
         {failed_writes} failed writes, each reported and recovered",
        E::NAME,
        stride()
    );
}

fn disk_full<E: TestEngine>() {
    let Some(mut fs) = mount() else { return };
    let dir = fs.path().join("full");
    let store = E::open(&dir, suite_schema(1)).unwrap();
    for i in 0..20 {
        write_one(&store, i).unwrap();
    }
    fs.inject(Fault::disk_full(1));
    let mut acked = 20;
    let err = loop {
        match write_one(&store, acked) {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 10_000, "{}: the full disk was never reported", E::NAME);
    };
    assert!(err.to_string().to_lowercase().contains("space"), "{}: a clear error: {err}", E::NAME);
    assert!(store.is_poisoned());
    drop(store);
    fs.clear_faults(); // space freed
    fs.cut_power(Cut::default()).unwrap();
    verify::<E>(&dir, &Outcome { acked, ..Outcome::default() }, "disk full");
    println!("{}: disk full after {acked} batches: \"{err}\"; recovered after space was freed", E::NAME);
}

#[test]
fn write_errors_rocksdb() {
    sweep::<Rocks>(Op::Write);
}

#[test]
fn fsync_errors_rocksdb() {
    sweep::<Rocks>(Op::Fsync);
}

#[test]
fn dir_fsync_errors_rocksdb() {
    sweep::<Rocks>(Op::FsyncDir);
}

#[test]
fn write_errors_redb() {
    sweep::<Redb>(Op::Write);
}

#[test]
fn fsync_errors_redb() {
    sweep::<Redb>(Op::Fsync);
}

#[test]
fn disk_full_rocksdb() {
    disk_full::<Rocks>();
}

#[test]
fn disk_full_redb() {
    disk_full::<Redb>();
}

/// A full disk during a manual compaction (RocksDB, whose compaction writes new files): a clear
/// error, nothing lost; once space is freed the store compacts and writes again.
#[test]
fn disk_full_during_compaction_rocksdb() {
    use storage_api::{KvCompact, RawRange};
    let Some(mut fs) = mount() else { return };
    let dir = fs.path().join("compact");
    let store = Rocks::open(&dir, suite_schema(1)).unwrap();
    for i in 0..600 {
        write_one(&store, i).unwrap();
    }
    store.flush().unwrap();
    fs.inject(Fault::disk_full(1));
    let err = store.compact_raw(Items::NAME, &RawRange::all()).expect_err("a compaction on a full disk fails");
    assert!(err.to_string().to_lowercase().contains("space"), "a clear error: {err}");
    fs.clear_faults();
    let after = store.compact_raw(Items::NAME, &RawRange::all());
    let write = write_one(&store, 600);
    assert!(after.is_ok() && write.is_ok(), "space freed: the store compacts and writes again");
    println!(
        "rocksdb: compaction on a full disk: \"{err}\"; after space was freed: compaction {after:?}, write {write:?}"
    );
    drop(store);
    fs.cut_power(Cut::default()).unwrap();
    verify::<Rocks>(&dir, &Outcome { acked: 600, ..Outcome::default() }, "full disk during compaction");
}
