//! sled, a comparison engine (cargo feature `sled`).

use storage_api::{KvOpen, OpenError, Schema, VersionPolicy};
use storage_metrics::Sample;
use storage_sled::{SledConfig, SledStore};

use super::{Backend, caps};
use crate::config::{BackendKind, Config};
use crate::store_id::StoreId;

impl Backend for SledStore {
    const KIND: BackendKind = BackendKind::Sled;
    type Views = caps::Absent;
    type Compaction = caps::Absent;
    type Loading = caps::Batched;
    type Physical = caps::Absent;

    /// None: sled exposes no cache or compaction figures; the store's size is reported from
    /// the disk.
    fn engine_samples(&self, _store: StoreId, _out: &mut Vec<Sample>) {}

    fn open_store_with(
        config: &Config,
        store: StoreId,
        schema: Schema,
        policy: VersionPolicy,
    ) -> Result<Self, OpenError> {
        let mut c = SledConfig::at(Self::store_path(&config.data_dir, store));
        c.cache_capacity = config.engine.cache_bytes;
        <SledStore as KvOpen>::open(&c, schema, policy)
    }

    /// sled cannot open a database without writing to its files, so its reader is the store
    /// opened normally (it needs the node stopped, and refuses to create a missing store).
    type Reader = SledStore;

    fn open_reader(config: &Config, store: StoreId, schema: Schema) -> Result<SledStore, OpenError> {
        let path = Self::store_path(&config.data_dir, store);
        if !path.exists() {
            return Err(OpenError::NotFound(path));
        }
        Self::open_store(config, store, schema)
    }
}
