//! `max_total_wal_size` keeps a rarely written table from pinning old write-ahead logs.

use std::path::Path;

use storage_api::testkit::{Items, Records, suite_schema};
use storage_api::{Blob, Durability, KvWrite};
use storage_rocksdb::{RocksConfig, RocksStore};

fn wal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum()
}

/// Writes one record to a small table, then 48 MiB to a busy one; returns the WAL bytes left.
fn wal_after_skewed_writes(max_total_wal_size: u64) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let config = RocksConfig { write_buffer_size: 1 << 20, max_total_wal_size, ..RocksConfig::at(dir.path()) };
    let store = RocksStore::open(&config, suite_schema(1)).unwrap();
    store.put::<Records>(&1, &(1, "small table".into()), Durability::Synced).unwrap();
    let value = Blob((0..64 * 1024).map(|i| (i * 7 % 251) as u8).collect());
    for i in 0..768u32 {
        store.put::<Items>(&i, &value, Durability::Buffered).unwrap();
    }
    wal_bytes(dir.path())
}

#[test]
fn small_tables_do_not_pin_the_log() {
    let capped = wal_after_skewed_writes(4 << 20);
    assert!(capped < 12 << 20, "WAL kept {capped} bytes with a 4 MiB cap");
    // The control: with a cap far above the data, the small table pins every log file.
    let uncapped = wal_after_skewed_writes(1 << 30);
    assert!(uncapped > 40 << 20, "without the cap the WAL should hold the data: {uncapped}");
}

// ---- damaged, truncated and deleted logs -------------------------------------------------

mod damage {
    use std::fs;
    use std::path::{Path, PathBuf};

    use storage_api::testkit::caps::dir_fingerprint;
    use storage_api::testkit::{Items, suite_schema};
    use storage_api::{Blob, Direction, Durability, KvOpenReadOnly, KvWrite, OpenError, ReadExt, VersionPolicy};
    use storage_rocksdb::{ACKNOWLEDGED_FILE, RocksConfig, RocksStore};

    const N: u32 = 2_000;

    fn value(i: u32) -> Blob {
        Blob(format!("value-{i:06}-{}", "v".repeat(40)).into_bytes())
    }

    /// A store whose `N` items, each written by its own synced batch, live only in the log.
    fn logged_only() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(&RocksConfig::at(dir.path()), suite_schema(1)).unwrap();
        for i in 0..N {
            store.put::<Items>(&i, &value(i), Durability::Synced).unwrap();
        }
        drop(store);
        assert!(!fs::read_dir(dir.path()).unwrap().any(|e| e.unwrap().path().extension().is_some_and(|x| x == "sst")));
        dir
    }

    fn log_file(dir: &Path) -> PathBuf {
        let mut logs: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .filter(|p| fs::metadata(p).unwrap().len() > 0)
            .collect();
        logs.sort();
        assert_eq!(logs.len(), 1, "expected one non-empty log: {logs:?}");
        logs.pop().unwrap()
    }

    fn flip(file: &Path, offset: u64) {
        let mut bytes = fs::read(file).unwrap();
        bytes[offset as usize] ^= 0x5a;
        fs::write(file, bytes).unwrap();
    }

    fn open(dir: &Path) -> Result<RocksStore, OpenError> {
        RocksStore::open(&RocksConfig::at(dir), suite_schema(1))
    }

    /// The open (read-write and read-only) is refused as a damaged log, and no file changed.
    fn assert_refused(dir: &Path, what: &str) -> OpenError {
        let before = dir_fingerprint(dir);
        let err = open(dir).err().unwrap_or_else(|| panic!("{what}: the store opened"));
        assert!(matches!(err, OpenError::DamagedLog { .. }), "{what}: {err}");
        let msg = err.to_string();
        assert!(msg.contains("nothing was changed") && msg.contains("--accept-wal-loss"), "{what}: {msg}");
        let ro = RocksStore::open_read_only(&RocksConfig::at(dir), suite_schema(1), VersionPolicy::Exact).unwrap_err();
        assert!(matches!(ro, OpenError::DamagedLog { .. }), "{what} (read-only): {ro}");
        assert_eq!(before, dir_fingerprint(dir), "{what}: a refused open changed files");
        err
    }

    fn count(store: &RocksStore) -> usize {
        store.iter_all::<Items>(Direction::Forward).unwrap().count()
    }

    #[test]
    fn a_flipped_byte_in_the_middle_is_refused() {
        let dir = logged_only();
        let log = log_file(dir.path());
        flip(&log, fs::metadata(&log).unwrap().len() / 2);
        let err = assert_refused(dir.path(), "byte flipped mid-log");
        assert!(
            matches!(err, OpenError::DamagedLog { acknowledged: Some(_), recovered: Some(r), .. } if r < u64::from(N))
        );
    }

    #[test]
    fn a_flipped_byte_near_the_start_is_refused() {
        let dir = logged_only();
        flip(&log_file(dir.path()), 4096);
        assert_refused(dir.path(), "byte flipped at 4096");
    }

    #[test]
    fn a_deleted_log_is_refused() {
        let dir = logged_only();
        fs::remove_file(log_file(dir.path())).unwrap();
        let err = assert_refused(dir.path(), "log deleted");
        assert!(err.to_string().contains("acknowledged"), "{err}");
    }

    #[test]
    fn a_log_cut_short_is_refused() {
        for keep in [1, 2, 3] {
            let dir = logged_only();
            let log = log_file(dir.path());
            let len = fs::metadata(&log).unwrap().len();
            // Cut into the middle, and into the very last (acknowledged) record.
            let new_len = if keep == 3 { len - 5 } else { len * keep / 3 };
            fs::OpenOptions::new().write(true).open(&log).unwrap().set_len(new_len).unwrap();
            assert_refused(dir.path(), &format!("log cut to {new_len} of {len} bytes"));
        }
    }

    /// A whole log record (full type, 10 bytes) whose checksum does not match: damage RocksDB
    /// reports, unlike a record cut short.
    fn bad_record() -> Vec<u8> {
        let mut r = vec![0xde, 0xad, 0xbe, 0xef, 10, 0, 1];
        r.extend_from_slice(&[0x42; 10]);
        r
    }

    /// A torn tail past the last acknowledged write (what a crash mid-append leaves) is dropped,
    /// and every acknowledged write is there.
    #[test]
    fn a_torn_unacknowledged_tail_is_dropped() {
        for tail in [vec![0x17u8; 7], vec![0xa5u8; 300], b"\x00\x00\x00\x00\x10\x27\x01".to_vec(), bad_record()] {
            let dir = logged_only();
            let log = log_file(dir.path());
            let mut bytes = fs::read(&log).unwrap();
            bytes.extend_from_slice(&tail);
            fs::write(&log, bytes).unwrap();
            let store = open(dir.path()).unwrap_or_else(|e| panic!("torn tail {tail:?}: {e}"));
            assert_eq!(count(&store), N as usize);
            store.put::<Items>(&N, &value(N), Durability::Synced).unwrap();
            drop(store);
            assert_eq!(count(&open(dir.path()).unwrap()), N as usize + 1);
        }
    }

    /// Without the acknowledged-sequence record (a store from before it existed), damage in the
    /// log cannot be shown harmless: refused; a clean log opens and starts a record.
    #[test]
    fn without_a_record_damage_is_refused_and_clean_logs_open() {
        let dir = logged_only();
        fs::remove_file(dir.path().join(ACKNOWLEDGED_FILE)).unwrap();
        assert_eq!(count(&open(dir.path()).unwrap()), N as usize);
        assert!(dir.path().join(ACKNOWLEDGED_FILE).exists());

        let dir = logged_only();
        fs::remove_file(dir.path().join(ACKNOWLEDGED_FILE)).unwrap();
        let log = log_file(dir.path());
        let mut bytes = fs::read(&log).unwrap();
        bytes.extend_from_slice(&bad_record());
        fs::write(&log, bytes).unwrap();
        assert_refused(dir.path(), "damaged tail, no record");

        let dir = logged_only();
        fs::write(dir.path().join(ACKNOWLEDGED_FILE), b"not a record").unwrap();
        assert_refused(dir.path(), "unreadable record");
    }

    #[test]
    fn accepting_the_loss_keeps_the_damaged_files_and_recovers_the_intact_part() {
        let dir = logged_only();
        let log = log_file(dir.path());
        let damaged = fs::read(&log).unwrap();
        flip(&log, damaged.len() as u64 / 2);
        let damaged = fs::read(&log).unwrap();
        let config = RocksConfig::at(dir.path());
        let (store, loss) =
            RocksStore::open_accepting_wal_loss(&config, suite_schema(1), VersionPolicy::Exact).unwrap();
        let loss = loss.expect("a loss is reported");
        let n = count(&store);
        assert!(n > 0 && n < N as usize, "recovered {n} of {N}");
        assert_eq!(loss.acknowledged, Some(u64::from(N) + 1), "the schema record and N writes");
        assert!(loss.recovered < u64::from(N));
        let kept = loss.kept.join(log.file_name().unwrap());
        assert_eq!(fs::read(kept).unwrap(), damaged, "the damaged log is kept as it was");
        drop(store);
        // The store now opens normally, with what was recovered.
        assert_eq!(count(&open(dir.path()).unwrap()), n);
        // A sound store reports no loss.
        let (_, loss) = RocksStore::open_accepting_wal_loss(&config, suite_schema(1), VersionPolicy::Exact).unwrap();
        assert_eq!(loss, None);
    }

    /// Buffered writes are not acknowledged: a sync acknowledges them; a crash before it may
    /// drop them without a refusal.
    #[test]
    fn a_sync_acknowledges_buffered_writes() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksStore::open(&RocksConfig::at(dir.path()), suite_schema(1)).unwrap();
        for i in 0..100 {
            store.put::<Items>(&i, &value(i), Durability::Buffered).unwrap();
        }
        storage_api::KvFlush::sync(&store).unwrap();
        let acked = fs::read(dir.path().join(ACKNOWLEDGED_FILE)).unwrap();
        assert_eq!(u64::from_le_bytes(acked[8..16].try_into().unwrap()), 100 + 1, "schema record + 100 writes");
        drop(store);
        fs::remove_file(log_file(dir.path())).unwrap();
        assert_refused(dir.path(), "synced buffered writes, log deleted");
    }
}
