//! The in-memory backend against the conformance suite (and so the suite against itself: the
//! model test compares two in-memory stores, which checks the harness).

use std::path::Path;

use storage_api::mem::MemStore;
use storage_api::testkit::Harness;
use storage_api::{OpenError, Schema, VersionPolicy};

struct MemHarness;

impl Harness for MemHarness {
    type Store = MemStore;
    const PERSISTENT: bool = false;

    fn open(_dir: &Path, schema: Schema, _policy: VersionPolicy) -> Result<MemStore, OpenError> {
        Ok(MemStore::new(schema))
    }
}

storage_api::conformance_suite! {
    harness: MemHarness,
    snapshots: yes, flush: yes, compact: no, stats: yes, checkpoint: no, read_only: no, ingest: yes,
}
