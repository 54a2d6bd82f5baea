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
