//! redb against the conformance suite and the model test.

use std::path::Path;

use storage_api::testkit::Harness;
use storage_api::{KvOpen, OpenError, Schema, VersionPolicy};
use storage_redb::{RedbConfig, RedbStore};

struct RedbHarness;

impl Harness for RedbHarness {
    type Store = RedbStore;
    const PERSISTENT: bool = true;

    fn open(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<RedbStore, OpenError> {
        let config = RedbConfig { cache_size: 16 << 20, ..RedbConfig::at(dir.join("store.redb")) };
        <RedbStore as KvOpen>::open(&config, schema, policy)
    }
}

storage_api::conformance_suite! {
    harness: RedbHarness,
    snapshots: yes, flush: yes, compact: yes, stats: yes, checkpoint: yes,
}
