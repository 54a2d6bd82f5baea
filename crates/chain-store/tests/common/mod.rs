//! Fixtures: a fresh chain store on any engine (opened by `engine-test`).
#![allow(dead_code)]

use std::ops::Deref;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use chain_store::{ChainStore, NewBlock, chain_schema};
use engine_test::{Memory, TestEngine};
use storage_api::mem::MemStore;
use storage_api::{Durability, KvStore};
use tempfile::TempDir;

/// A chain store and the directory it lives in.
pub(crate) struct Fx<S: KvStore> {
    pub(crate) chain: ChainStore<S, Synthetic>,
    pub(crate) dir: TempDir,
}

impl<S: KvStore> Deref for Fx<S> {
    type Target = ChainStore<S, Synthetic>;
    fn deref(&self) -> &ChainStore<S, Synthetic> {
        &self.chain
    }
}

fn dir() -> TempDir {
    tempfile::Builder::new().prefix("chain-test-").tempdir().unwrap()
}

/// A fresh chain store on engine `E` (test-sized settings, buffered inserts).
pub(crate) fn fixture<E: TestEngine>() -> Fx<E::Store> {
    let d = dir();
    let chain = ChainStore::new(E::open(d.path(), chain_schema::<Synthetic>()).unwrap()).unwrap();
    Fx { chain: chain.with_insert_durability(Durability::Buffered), dir: d }
}

/// A fresh chain store in memory (the reference the other engines are compared with).
pub(crate) fn memory() -> Fx<MemStore> {
    fixture::<Memory>()
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
pub(crate) fn build<S: KvStore>(
    chain: &ChainStore<S, Synthetic>,
    g: &mut ChainGenerator,
    n: usize,
) -> Vec<NewBlock<Synthetic>> {
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

/// The synthetic model's state root computed from the state alone, without the store: one trie
/// over Keccak-256 of the encoded key, each value an RLP string.
pub(crate) fn independent_root<'a>(
    state: impl IntoIterator<
        Item = (&'a (chain_store::synthetic::Address, chain_store::synthetic::B256), &'a chain_store::synthetic::B256),
    >,
) -> [u8; 32] {
    let mut leaves: Vec<([u8; 32], Vec<u8>)> = state
        .into_iter()
        .map(|((a, s), v)| {
            let key: Vec<u8> = a.0.iter().chain(s.0.iter()).copied().collect();
            (alloy_primitives::keccak256(&key).0, alloy_rlp::encode(&v.0[..]))
        })
        .collect();
    leaves.sort();
    let mut hb = alloy_trie::HashBuilder::default();
    for (k, v) in &leaves {
        hb.add_leaf(alloy_trie::Nibbles::unpack(k), v);
    }
    hb.root().0
}
