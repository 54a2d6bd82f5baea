//! Fixtures: a fresh DAG store on each backend, and a macro running a test on all of them.

use std::ops::Deref;

use dag_store::{DagStore, dag_schema};
use storage_api::Durability;
use storage_api::mem::MemStore;
use storage_redb::{RedbConfig, RedbStore};
use storage_rocksdb::{RocksConfig, RocksStore};
use tempfile::TempDir;

/// A DAG store and the directory it lives in.
pub(crate) struct Fx<S> {
    pub(crate) dag: DagStore<S>,
    pub(crate) _dir: TempDir,
}

impl<S> Deref for Fx<S> {
    type Target = DagStore<S>;
    fn deref(&self) -> &DagStore<S> {
        &self.dag
    }
}

fn dir() -> TempDir {
    tempfile::Builder::new().prefix("dag-test-").tempdir().unwrap()
}

pub(crate) fn memory() -> Fx<MemStore> {
    Fx { dag: DagStore::new(MemStore::new(dag_schema())).unwrap(), _dir: dir() }
}

pub(crate) fn rocksdb() -> Fx<RocksStore> {
    let d = dir();
    let config = RocksConfig { write_buffer_size: 1 << 20, block_cache_size: 8 << 20, ..RocksConfig::at(d.path()) };
    let dag = DagStore::new(RocksStore::open(&config, dag_schema()).unwrap()).unwrap();
    Fx { dag: dag.with_insert_durability(Durability::Buffered), _dir: d }
}

pub(crate) fn redb() -> Fx<RedbStore> {
    let d = dir();
    let config = RedbConfig { cache_size: 16 << 20, ..RedbConfig::at(d.path().join("dag.redb")) };
    let dag = DagStore::new(RedbStore::open(&config, dag_schema()).unwrap()).unwrap();
    Fx { dag: dag.with_insert_durability(Durability::Buffered), _dir: d }
}

/// Instantiates each generic test `fn name<S: KvStore>(fx: Fx<S>)` for every backend.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $( #[test] fn $name() { super::$name(super::common::memory()); } )*
        }
        mod rocksdb {
            $( #[test] fn $name() { super::$name(super::common::rocksdb()); } )*
        }
        mod redb {
            $( #[test] fn $name() { super::$name(super::common::redb()); } )*
        }
    };
}
