//! RocksDB against the conformance suite and the model test.

use std::path::Path;

use storage_api::testkit::{Harness, ReadOnlyHarness};
use storage_api::{KvOpen, KvOpenReadOnly, OpenError, Schema, VersionPolicy};
use storage_rocksdb::{RocksConfig, RocksReader, RocksStore};

struct RocksHarness;

impl Harness for RocksHarness {
    type Store = RocksStore;
    const PERSISTENT: bool = true;

    fn open(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<RocksStore, OpenError> {
        let config = RocksConfig {
            write_buffer_size: 1 << 20,
            max_total_wal_size: 4 << 20,
            block_cache_size: 8 << 20,
            ..RocksConfig::at(dir)
        };
        RocksStore::open_with_policy(&config, schema, policy)
    }
}

impl ReadOnlyHarness for RocksHarness {
    type Reader = RocksReader;

    fn open_read_only(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<RocksReader, OpenError> {
        RocksStore::open_read_only(&RocksConfig::at(dir), schema, policy)
    }
}

storage_api::conformance_suite! {
    harness: RocksHarness,
    snapshots: yes, flush: yes, compact: yes, stats: yes, checkpoint: yes, read_only: yes, ingest: yes,
}

/// The same suite with the write-ahead log off: synced writes flush memtables instead.
mod without_wal {
    use super::*;

    struct NoWalHarness;

    impl Harness for NoWalHarness {
        type Store = RocksStore;
        const PERSISTENT: bool = true;

        fn open(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<RocksStore, OpenError> {
            let config = RocksConfig { wal: false, write_buffer_size: 1 << 20, ..RocksConfig::at(dir) };
            <RocksStore as KvOpen>::open(&config, schema, policy)
        }
    }

    #[test]
    fn durability_modes() {
        storage_api::testkit::suite::durability_modes::<NoWalHarness>();
    }

    #[test]
    fn flush_makes_buffered_durable() {
        storage_api::testkit::caps::flush_makes_buffered_durable::<NoWalHarness>();
    }
}
