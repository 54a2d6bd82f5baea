//! The backends under comparison: how to open each in a directory and whether it can compact.

use std::path::Path;

use storage_api::{KvCompact, KvFlush, KvStore, OpenError, Schema};
use storage_redb::{RedbConfig, RedbStore};
use storage_rocksdb::{RocksConfig, RocksStore};
use storage_sled::{SledConfig, SledStore};

use crate::{Canonical, Headers, Txs, Values, schema};

/// A backend as the comparison runs it: default configuration, one directory per store.
pub trait Backend {
    /// Name in reports.
    const NAME: &'static str;
    /// The store type.
    type Store: KvStore + KvFlush;
    /// Opens (creating) the store for `schema` in `dir`.
    fn open_schema(dir: &Path, schema: Schema) -> Result<Self::Store, OpenError>;
    /// Opens (creating) the store with the benchmark schema in `dir`.
    fn open(dir: &Path) -> Result<Self::Store, OpenError> {
        Self::open_schema(dir, schema())
    }
    /// Compacts every table; `false` if the engine has no manual compaction.
    fn compact(store: &Self::Store) -> bool;
    /// What opening does besides the engine's own open.
    const REOPEN_NOTE: &'static str = "";
}

fn compact_all<S: KvCompact>(s: &S) -> bool {
    s.compact_table::<Headers>().is_ok()
        && s.compact_table::<Txs>().is_ok()
        && s.compact_table::<Canonical>().is_ok()
        && s.compact_table::<Values>().is_ok()
}

/// RocksDB with its defaults.
#[derive(Debug)]
pub struct Rocks;

impl Backend for Rocks {
    const NAME: &'static str = "rocksdb";
    const REOPEN_NOTE: &'static str = "schema check on a read-only instance, then WAL replay";
    type Store = RocksStore;
    fn open_schema(dir: &Path, schema: Schema) -> Result<RocksStore, OpenError> {
        RocksStore::open(&RocksConfig::at(dir), schema)
    }
    fn compact(store: &RocksStore) -> bool {
        compact_all(store)
    }
}

/// redb with its defaults.
#[derive(Debug)]
pub struct Redb;

impl Backend for Redb {
    const NAME: &'static str = "redb";
    const REOPEN_NOTE: &'static str = "schema check on a read-only instance";
    type Store = RedbStore;
    fn open_schema(dir: &Path, schema: Schema) -> Result<RedbStore, OpenError> {
        RedbStore::open(&RedbConfig::at(dir.join("store.redb")), schema)
    }
    fn compact(store: &RedbStore) -> bool {
        // One whole-file compaction covers every table.
        store.compact_table::<Txs>().is_ok()
    }
}

/// sled 0.34 with its defaults.
#[derive(Debug)]
pub struct Sled;

impl Backend for Sled {
    const NAME: &'static str = "sled";
    const REOPEN_NOTE: &'static str =
        "includes copying the whole directory for the schema check (sled cannot open read-only)";
    type Store = SledStore;
    fn open_schema(dir: &Path, schema: Schema) -> Result<SledStore, OpenError> {
        SledStore::open(&SledConfig::at(dir), schema)
    }
    fn compact(_store: &SledStore) -> bool {
        false
    }
}
