//! A failed write poisons the store, on every engine that writes to disk: a child process with
//! a file-size limit (`RLIMIT_FSIZE`, SIGXFSZ ignored, so the engine sees `EFBIG`) writes
//! synced batches until one fails; after that every write and flush must be refused as
//! poisoned, `is_poisoned` must say so and reads must still work. The parent then reopens the
//! store without the limit: every acknowledged batch is there and writes are accepted again.
//! (The in-memory engine cannot fail a write; its `is_poisoned` is always false.)
//!
//! A plain `main` (harness = false) so the children can be this same binary.
#![allow(unsafe_code)] // setrlimit and signal in the child only

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use engine_test::{Redb, Rocks, Sled, TestEngine};
use storage_api::testkit::{Items, Records, suite_schema};
use storage_api::{Blob, Durability, FlushError, KvFlush, KvWrite, ReadExt, WriteError};

const CHILD: &str = "ENGINE_TEST_POISON_CHILD";
const CHILD_DIR: &str = "ENGINE_TEST_POISON_DIR";
const VALUE: usize = 16 * 1024;

fn write_one<S: KvWrite>(store: &S, i: u32, len: usize) -> Result<(), WriteError> {
    let mut batch = store.batch();
    batch.put::<Items>(&i, &Blob(vec![(i % 251) as u8; len]))?;
    batch.put::<Records>(&u64::from(i), &(u64::from(i), format!("record {i}")))?;
    store.write(batch, Durability::Synced)
}

/// Child: limit file sizes to `limit` bytes, write until the first failure, check the store
/// is poisoned, print the acknowledged count.
fn child<E: TestEngine>(dir: &Path, limit: u64) {
    let limit = libc::rlimit { rlim_cur: limit, rlim_max: limit };
    // SAFETY: plain libc calls on this process's own limits and signal disposition.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &limit), 0);
    }
    let store = E::open(dir, suite_schema(1)).expect("child open");
    assert!(!store.is_poisoned(), "a fresh store is not poisoned");
    let mut acked = 0;
    let err = loop {
        match write_one(&store, acked, VALUE) {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 100_000, "{}: the store never reported the file-size limit", E::NAME);
    };
    assert!(matches!(err, WriteError::Backend(_)), "{}: the first failure is the engine's: {err}", E::NAME);
    assert!(store.is_poisoned(), "{}: a failed write poisons the store", E::NAME);
    let again = write_one(&store, acked + 1, 10).unwrap_err();
    assert!(matches!(again, WriteError::Poisoned(_)), "{}: after a failed write: {again}", E::NAME);
    assert!(matches!(store.flush(), Err(FlushError::Poisoned(_))), "{}: flush after a failed write", E::NAME);
    if acked > 0 {
        assert!(store.get::<Items>(&(acked - 1)).unwrap().is_some(), "{}: reads still work", E::NAME);
    }
    println!("ACKED {acked} {err}");
    // Leave without closing, as a crash would: the reopen must recover a file not closed
    // cleanly (redb once refused such a file).
    std::process::exit(0);
}

fn run<E: TestEngine>(limit: u64) {
    let dir = tempfile::Builder::new().prefix("poison-").tempdir().unwrap();
    let out = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, format!("{}:{limit}", E::NAME))
        .env(CHILD_DIR, dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{} child failed: {stdout}\n{}", E::NAME, String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find(|l| l.starts_with("ACKED ")).expect("child result");
    let acked: u32 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(acked > 0, "{}: {line}", E::NAME);
    let store = E::open(dir.path(), suite_schema(1)).unwrap_or_else(|e| panic!("{}: reopen: {e}", E::NAME));
    assert!(!store.is_poisoned(), "{}: reopening clears the poison", E::NAME);
    for i in 0..acked {
        let got = store.get::<Items>(&i).unwrap().map(|b| b.0.len());
        assert_eq!(got, Some(VALUE), "{}: acknowledged batch {i} lost", E::NAME);
    }
    write_one(&store, acked + 10, 10).unwrap_or_else(|e| panic!("{}: a reopened store accepts writes: {e}", E::NAME));
    println!("    {}: poisoned after {acked} acknowledged batches ({}), all recovered", E::NAME, &line[6..]);
}

/// An engine's test: its name, the parent and child halves, and the file-size limit.
type EngineCase = (&'static str, fn(u64), fn(&Path, u64), u64);

/// Per engine: a limit small enough to hit quickly, large enough for the engine to open.
const ENGINES: [EngineCase; 3] = [
    // Below the log size at which a 1 MiB memtable switches logs, so the log write fails.
    ("rocksdb", run::<Rocks>, child::<Rocks>, 512 << 10),
    ("redb", run::<Redb>, child::<Redb>, 1 << 20),
    ("sled", run::<Sled>, child::<Sled>, 1 << 20),
];

fn main() {
    if let (Ok(kind), Ok(dir)) = (std::env::var(CHILD), std::env::var(CHILD_DIR)) {
        let (name, limit) = kind.split_once(':').expect("engine:limit");
        let (_, _, child, _) = ENGINES.iter().find(|e| e.0 == name).expect("known engine");
        child(Path::new(&dir), limit.parse().expect("limit"));
        return;
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = |engine: &str| format!("failed_write_poisons_{engine}");
    if args.iter().any(|a| a == "--list") {
        for (engine, ..) in ENGINES {
            println!("{}: test", name(engine));
        }
        return;
    }
    let filter = args.iter().find(|a| !a.starts_with('-'));
    let (mut passed, mut failed) = (0, 0);
    for (engine, run, _, limit) in ENGINES {
        let test = name(engine);
        if filter.is_some_and(|f| !test.contains(f.as_str())) {
            continue;
        }
        println!("test {test} ...");
        let start = Instant::now();
        match std::panic::catch_unwind(|| run(limit)) {
            Ok(()) => {
                passed += 1;
                println!("test {test} ... ok ({:.1}s)", start.elapsed().as_secs_f64());
            }
            Err(_) => {
                failed += 1;
                println!("test {test} ... FAILED");
            }
        }
    }
    println!("\npoison: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
