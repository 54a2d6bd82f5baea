//! The one place node-storage's tests and benchmarks open each storage engine (TiKV's
//! `engine_test` is the model): a [`TestEngine`] per engine with test-sized and default
//! settings, and [`on_every_engine!`] to instantiate a generic test on several engines.
//!
//! Domain crates list this crate as a dev-dependency instead of the backends themselves
//! (`cargo xtask tidy` checks it), so adding an engine or changing how tests open one is done
//! here once.
//!
//! ```
//! use engine_test::{Memory, TestEngine};
//! use storage_api::{Blob, Durability, KvWrite, ReadExt, Schema, table};
//!
//! table! {
//!     /// Notes by number.
//!     pub struct Notes("notes"): u64 => Blob;
//! }
//! let store = Memory::open(&std::env::temp_dir(), Schema::new("example", 1).with::<Notes>())?;
//! store.put::<Notes>(&1, &Blob(b"hi".to_vec()), Durability::Synced)?;
//! assert_eq!(store.get::<Notes>(&1)?, Some(Blob(b"hi".to_vec())));
//! # Ok::<(), storage_api::Error>(())
//! ```

pub mod child;

use std::path::Path;

use storage_api::mem::MemStore;
use storage_api::{KvFlush, KvStats, KvStore, OpenError, Schema};
use storage_redb::{RedbConfig, RedbStore};
use storage_rocksdb::{RocksConfig, RocksStore};
use storage_sled::{SledConfig, SledStore};

/// An engine as tests and benchmarks open it.
pub trait TestEngine {
    /// The engine's name in test and report output (`memory`, `rocksdb`, `redb`, `sled`).
    const NAME: &'static str;
    /// Whether data survives dropping and reopening the store.
    const PERSISTENT: bool;
    /// The store.
    type Store: KvStore + KvFlush + KvStats;

    /// Opens (creating) a store for `schema` in the directory `dir`, with small caches and
    /// buffers so tests exercise flushes and compactions on little data.
    fn open(dir: &Path, schema: Schema) -> Result<Self::Store, OpenError>;

    /// Opens (creating) a store for `schema` in `dir` with the engine's default settings, as
    /// the benchmarks compare engines.
    fn open_default(dir: &Path, schema: Schema) -> Result<Self::Store, OpenError>;
}

/// The in-memory backend of storage-api (nothing persists; `dir` is unused).
#[derive(Debug)]
pub enum Memory {}

impl TestEngine for Memory {
    const NAME: &'static str = "memory";
    const PERSISTENT: bool = false;
    type Store = MemStore;

    fn open(_dir: &Path, schema: Schema) -> Result<MemStore, OpenError> {
        Ok(MemStore::new(schema))
    }

    fn open_default(_dir: &Path, schema: Schema) -> Result<MemStore, OpenError> {
        Ok(MemStore::new(schema))
    }
}

/// RocksDB, the production engine.
#[derive(Debug)]
pub enum Rocks {}

impl Rocks {
    /// The test-sized settings for a store in `dir`: 1 MiB memtables, an 8 MiB block cache.
    pub fn test_config(dir: &Path) -> RocksConfig {
        RocksConfig { write_buffer_size: 1 << 20, block_cache_size: 8 << 20, ..RocksConfig::at(dir) }
    }

    /// The store in `dir` opened read-only (nothing on disk changes), with the test settings.
    pub fn open_reader(dir: &Path, schema: Schema) -> Result<storage_rocksdb::RocksReader, OpenError> {
        storage_rocksdb::RocksReader::open(&Self::test_config(dir), schema, storage_api::VersionPolicy::Exact)
    }
}

impl TestEngine for Rocks {
    const NAME: &'static str = "rocksdb";
    const PERSISTENT: bool = true;
    type Store = RocksStore;

    fn open(dir: &Path, schema: Schema) -> Result<RocksStore, OpenError> {
        RocksStore::open(&Self::test_config(dir), schema)
    }

    fn open_default(dir: &Path, schema: Schema) -> Result<RocksStore, OpenError> {
        RocksStore::open(&RocksConfig::at(dir), schema)
    }
}

/// redb (one file, `store.redb`, in the directory).
#[derive(Debug)]
pub enum Redb {}

impl Redb {
    /// The test-sized settings for a store in `dir`: a 16 MiB cache.
    pub fn test_config(dir: &Path) -> RedbConfig {
        RedbConfig { cache_size: 16 << 20, ..RedbConfig::at(dir.join("store.redb")) }
    }
}

impl TestEngine for Redb {
    const NAME: &'static str = "redb";
    const PERSISTENT: bool = true;
    type Store = RedbStore;

    fn open(dir: &Path, schema: Schema) -> Result<RedbStore, OpenError> {
        RedbStore::open(&Self::test_config(dir), schema)
    }

    fn open_default(dir: &Path, schema: Schema) -> Result<RedbStore, OpenError> {
        RedbStore::open(&RedbConfig::at(dir.join("store.redb")), schema)
    }
}

/// sled 0.34, the second comparison engine.
#[derive(Debug)]
pub enum Sled {}

impl TestEngine for Sled {
    const NAME: &'static str = "sled";
    const PERSISTENT: bool = true;
    type Store = SledStore;

    fn open(dir: &Path, schema: Schema) -> Result<SledStore, OpenError> {
        SledStore::open(&SledConfig { cache_capacity: 16 << 20, ..SledConfig::at(dir) }, schema)
    }

    fn open_default(dir: &Path, schema: Schema) -> Result<SledStore, OpenError> {
        SledStore::open(&SledConfig::at(dir), schema)
    }
}

/// Instantiates generic tests on several engines: for each engine a module named after it
/// (`memory`, `rocksdb`, `redb`, `sled`) with one `#[test]` per name, calling
/// `super::name(super::fixture::<Engine>())`.
///
/// ```ignore
/// fn fixture<E: TestEngine>() -> Fx<E::Store> { … }
/// fn reorgs_restore_state<S: KvStore>(fx: Fx<S>) { … }
/// engine_test::on_every_engine!(fixture => [memory, rocksdb, redb]: [reorgs_restore_state]);
/// ```
#[macro_export]
macro_rules! on_every_engine {
    ($fixture:ident => [$($engine:ident),+ $(,)?]: $names:tt) => {
        $( $crate::on_every_engine!(@engine $engine $fixture $names); )+
    };
    (@engine memory $fixture:ident $names:tt) => { $crate::on_every_engine!(@mod memory Memory $fixture $names); };
    (@engine rocksdb $fixture:ident $names:tt) => { $crate::on_every_engine!(@mod rocksdb Rocks $fixture $names); };
    (@engine redb $fixture:ident $names:tt) => { $crate::on_every_engine!(@mod redb Redb $fixture $names); };
    (@engine sled $fixture:ident $names:tt) => { $crate::on_every_engine!(@mod sled Sled $fixture $names); };
    (@mod $module:ident $engine:ident $fixture:ident [$($name:ident),* $(,)?]) => {
        mod $module {
            $( #[test] fn $name() { super::$name(super::$fixture::<$crate::$engine>()); } )*
        }
    };
}
