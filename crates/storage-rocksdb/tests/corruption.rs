//! Damaged database directories: every case is a clear error, never a panic.

use std::fs;
use std::path::{Path, PathBuf};

use storage_api::testkit::{Items, suite_schema};
use storage_api::{BackendErrorKind, Blob, Direction, Durability, KvFlush, KvWrite, OpenError, ReadError, ReadExt};
use storage_rocksdb::{RocksConfig, RocksStore};

fn config(dir: &Path) -> RocksConfig {
    RocksConfig { write_buffer_size: 1 << 20, block_cache_size: 1 << 20, ..RocksConfig::at(dir) }
}

fn populated() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = RocksStore::open(&config(dir.path()), suite_schema(1)).unwrap();
    let mut batch = store.batch();
    for i in 0..5000u32 {
        batch.put::<Items>(&i, &Blob(format!("value-{i:08}-{}", "x".repeat(100)).into_bytes())).unwrap();
    }
    store.write(batch, Durability::Synced).unwrap();
    store.flush().unwrap();
    dir
}

fn files_with_ext(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn open_err(dir: &Path) -> OpenError {
    RocksStore::open(&config(dir), suite_schema(1)).expect_err("open must fail")
}

#[test]
fn garbage_current_file() {
    let dir = populated();
    fs::write(dir.path().join("CURRENT"), b"MANIFEST-999999\n").unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, OpenError::Backend(_)), "{err}");
}

/// A MANIFEST cut short at various points either is refused (leaving the directory as it
/// was) or opens with every item: never an empty or partial database. Without our checks,
/// RocksDB treats a short MANIFEST as a torn write, opens an older state and deletes the table
/// files it no longer knows. Run with the acknowledged-sequence record (which catches the
/// older state first) and without it (a store from before the record: RocksDB's log
/// tracking and the schema-record check must catch it).
#[test]
fn truncated_manifest_never_loses_data_silently() {
    for with_record in [true, false] {
        let (mut refused, mut by_wal_check, mut by_record_check, mut by_acked) = (0, 0, 0, 0);
        for (num, den) in (1..20).map(|k| (k, 20)) {
            let dir = populated();
            if !with_record {
                fs::remove_file(dir.path().join(storage_rocksdb::ACKNOWLEDGED_FILE)).unwrap();
            }
            let current = fs::read_to_string(dir.path().join("CURRENT")).unwrap();
            let manifest = dir.path().join(current.trim());
            let len = fs::metadata(&manifest).unwrap().len();
            let f = fs::OpenOptions::new().write(true).open(&manifest).unwrap();
            f.set_len(len * num / den).unwrap();
            drop(f);
            let before = storage_api::testkit::caps::dir_fingerprint(dir.path());
            match RocksStore::open(&config(dir.path()), suite_schema(1)) {
                Err(e) => {
                    refused += 1;
                    let msg = e.to_string();
                    by_wal_check += usize::from(msg.contains("Missing WAL"));
                    by_record_check += usize::from(msg.contains("no schema record is reachable"));
                    by_acked += usize::from(matches!(e, OpenError::DamagedLog { .. }));
                    assert!(msg.contains("rocksdb") || matches!(e, OpenError::DamagedLog { .. }), "{e}");
                    assert_eq!(
                        before,
                        storage_api::testkit::caps::dir_fingerprint(dir.path()),
                        "refused open changed files"
                    );
                }
                Ok(store) => {
                    let n = store.iter_all::<Items>(Direction::Forward).unwrap().count();
                    assert_eq!(n, 5000, "MANIFEST cut to {num}/{den}: opened with {n} of 5000 items");
                }
            }
        }
        assert!(refused > 0, "every truncation opened: the checks were never exercised");
        if with_record {
            assert!(by_acked > 0, "the acknowledged-sequence check never fired");
        } else {
            // Both older guards take part: RocksDB's log tracking and the schema-record check.
            assert!(
                by_wal_check > 0 && by_record_check > 0,
                "wal check {by_wal_check}, record check {by_record_check}"
            );
        }
    }
}

#[test]
fn missing_current_file() {
    let dir = populated();
    fs::remove_file(dir.path().join("CURRENT")).unwrap();
    let err = open_err(dir.path());
    assert!(err.to_string().contains("CURRENT"), "{err}");
}

#[test]
fn flipped_bytes_in_table_file_are_reported_as_corruption() {
    let dir = populated();
    let ssts = files_with_ext(dir.path(), "sst");
    assert!(!ssts.is_empty());
    for sst in &ssts {
        let mut bytes = fs::read(sst).unwrap();
        // Damage the data blocks at the front, leaving the footer readable.
        let end = bytes.len() / 2;
        for b in &mut bytes[64..end.max(65)] {
            *b ^= 0x5a;
        }
        fs::write(sst, bytes).unwrap();
    }
    let store = match RocksStore::open(&config(dir.path()), suite_schema(1)) {
        Ok(s) => s,
        Err(e) => {
            // RocksDB may notice at open; that is a clear error too.
            assert!(e.to_string().contains("rocksdb"), "{e}");
            return;
        }
    };
    let mut saw = None;
    for entry in store.iter_all::<Items>(Direction::Forward).unwrap() {
        if let Err(e) = entry {
            saw = Some(e);
            break;
        }
    }
    let err = saw.or_else(|| store.get::<Items>(&42).err()).expect("corruption must be reported");
    match &err {
        ReadError::Backend(b) => assert_eq!(b.kind, BackendErrorKind::Corruption, "{err}"),
        other => panic!("unexpected error {other}"),
    }
}

#[test]
fn directory_of_garbage() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("CURRENT"), b"\x00\x01garbage").unwrap();
    fs::write(dir.path().join("MANIFEST-000001"), vec![0xab; 4096]).unwrap();
    let err = open_err(dir.path());
    assert!(matches!(err, OpenError::Backend(_)), "{err}");
}

#[test]
fn corrupt_schema_record() {
    let dir = populated();
    {
        let store = RocksStore::open(&config(dir.path()), suite_schema(1)).unwrap();
        let db = store.raw_db();
        let cf = db.cf_handle(storage_api::table::META_TABLE).unwrap();
        db.put_cf(cf, storage_api::schema::SCHEMA_RECORD_KEY, [1, 0xff, 0xff, 0xff]).unwrap();
    }
    let err = open_err(dir.path());
    assert!(matches!(err, OpenError::CorruptSchemaRecord(_)), "{err}");
}

#[test]
fn second_open_is_refused_while_locked() {
    let dir = populated();
    let _first = RocksStore::open(&config(dir.path()), suite_schema(1)).unwrap();
    let err = open_err(dir.path());
    match err {
        OpenError::Backend(b) => assert_eq!(b.kind, BackendErrorKind::Busy, "{b}"),
        e => panic!("unexpected {e}"),
    }
}
