//! Fixtures: a fresh chain store on each backend, and a macro running a test on all of them.
#![allow(dead_code)]

use std::ops::Deref;

use chain_store::evm::Evm;
use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::{ChainStore, NewBlock, chain_schema};
use storage_api::mem::MemStore;
use storage_api::{Durability, KvStore};
use storage_redb::{RedbConfig, RedbStore};
use storage_rocksdb::{RocksConfig, RocksStore};
use tempfile::TempDir;

/// A chain store and the directory it lives in.
pub(crate) struct Fx<S: KvStore> {
    pub(crate) chain: ChainStore<S, Evm>,
    pub(crate) dir: TempDir,
}

impl<S: KvStore> Deref for Fx<S> {
    type Target = ChainStore<S, Evm>;
    fn deref(&self) -> &ChainStore<S, Evm> {
        &self.chain
    }
}

fn dir() -> TempDir {
    tempfile::Builder::new().prefix("chain-test-").tempdir().unwrap()
}

pub(crate) fn memory() -> Fx<MemStore> {
    Fx { chain: ChainStore::new(MemStore::new(chain_schema::<Evm>())).unwrap(), dir: dir() }
}

pub(crate) fn rocks_config(d: &TempDir) -> RocksConfig {
    RocksConfig { write_buffer_size: 1 << 20, block_cache_size: 8 << 20, ..RocksConfig::at(d.path()) }
}

pub(crate) fn rocksdb() -> Fx<RocksStore> {
    let d = dir();
    let chain = ChainStore::new(RocksStore::open(&rocks_config(&d), chain_schema::<Evm>()).unwrap()).unwrap();
    Fx { chain: chain.with_insert_durability(Durability::Buffered), dir: d }
}

pub(crate) fn redb() -> Fx<RedbStore> {
    let d = dir();
    let config = RedbConfig { cache_size: 16 << 20, ..RedbConfig::at(d.path().join("chain.redb")) };
    let chain = ChainStore::new(RedbStore::open(&config, chain_schema::<Evm>()).unwrap()).unwrap();
    Fx { chain: chain.with_insert_durability(Durability::Buffered), dir: d }
}

/// A small generator: `txs` transactions per block, every contract log-heavy.
pub(crate) fn generator(txs: usize, seed: u64) -> ChainGenerator {
    ChainGenerator::new(GenConfig {
        txs_per_block: txs,
        accounts: 50,
        contracts: 8,
        logs_per_tx: 1.5,
        input_bytes: 4,
        marker_every: 10,
        seed,
        ..GenConfig::default()
    })
}

/// Initialises the store with the generator's genesis and inserts `n` more blocks; returns
/// every block inserted, genesis first.
pub(crate) fn build<S: KvStore>(chain: &ChainStore<S, Evm>, g: &mut ChainGenerator, n: usize) -> Vec<NewBlock<Evm>> {
    let genesis = g.next_blocks().remove(0);
    chain.init(&genesis).unwrap();
    let mut all = vec![genesis];
    let blocks = g.generate(n);
    for chunk in blocks.chunks(64) {
        chain.insert_blocks(chunk).unwrap();
    }
    all.extend(blocks);
    all
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
