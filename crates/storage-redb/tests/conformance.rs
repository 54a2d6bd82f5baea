//! redb against the conformance suite and the model test.

use std::path::Path;

use storage_api::testkit::{Harness, ReadOnlyHarness};
use storage_api::{KvOpen, KvOpenReadOnly, OpenError, Schema, VersionPolicy};
use storage_redb::{RedbConfig, RedbReader, RedbStore};

struct RedbHarness;

impl Harness for RedbHarness {
    type Store = RedbStore;
    const PERSISTENT: bool = true;

    fn open(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<RedbStore, OpenError> {
        let config = RedbConfig { cache_size: 16 << 20, ..RedbConfig::at(dir.join("store.redb")) };
        <RedbStore as KvOpen>::open(&config, schema, policy)
    }
}

impl ReadOnlyHarness for RedbHarness {
    type Reader = RedbReader;

    fn open_read_only(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<RedbReader, OpenError> {
        RedbStore::open_read_only(&RedbConfig::at(dir.join("store.redb")), schema, policy)
    }
}

storage_api::conformance_suite! {
    harness: RedbHarness,
    snapshots: yes, flush: yes, compact: yes, stats: yes, checkpoint: yes, read_only: yes, ingest: yes,
}
