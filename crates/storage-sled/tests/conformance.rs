//! sled against the conformance suite and the model test. sled has no snapshots, checkpoints
//! or manual compaction: those tests are generated as ignored, naming the capability.

use std::path::Path;

use storage_api::testkit::Harness;
use storage_api::{KvOpen, OpenError, Schema, VersionPolicy};
use storage_sled::{SledConfig, SledStore};

struct SledHarness;

impl Harness for SledHarness {
    type Store = SledStore;
    const PERSISTENT: bool = true;

    fn open(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<SledStore, OpenError> {
        let config = SledConfig { cache_capacity: 16 << 20, ..SledConfig::at(dir.join("sled")) };
        <SledStore as KvOpen>::open(&config, schema, policy)
    }
}

storage_api::conformance_suite! {
    harness: SledHarness,
    snapshots: no, flush: yes, compact: no, stats: yes, checkpoint: no, read_only: no, ingest: no,
}
