//! The Ethereum state commitment: the chain store's incrementally maintained account and
//! storage tries give the state root alloy-trie computes from the state alone, headers'
//! state roots are checked on insert (a tampered state write is refused and nothing is
//! written), reorgs restore the previous root, proofs verify, and a rebuild from the flat
//! state gives the same trie.

mod common;

use alloy_primitives::{Address, B256, U256};
use chain_eth::generator::{EthGenerator, EthShape, MAINNET_LONDON};
use chain_eth::{Eth, EthHeader, EthStateKey, EthStateValue};
use chain_store::schema::{ChainMeta, MetaKey, TrieLeaves, TrieNodes, TrieRoots};
use chain_store::{ChainError, ChainStore, NewBlock, chain_schema};
use engine_test::{Redb, Rocks, TestEngine};
use storage_api::mem::MemStore;
use storage_api::{Durability, KvStore, KvWrite};

use common::{State, apply, root_of};

/// Seals `block` with the state root its writes give on `parent_state`.
fn with_root(mut block: NewBlock<Eth>, parent_state: &State) -> (NewBlock<Eth>, State) {
    let mut state = parent_state.clone();
    apply(&mut state, &block);
    let mut header = block.block.header.header.clone();
    header.state_root = root_of(&state);
    block.block.header = EthHeader::new(header);
    (block, state)
}

fn shape() -> EthShape {
    EthShape { txs_per_block: 12, ..MAINNET_LONDON }
}

/// `n` blocks after genesis, each with its true state root; and the state after each.
fn sealed_chain(g: &mut EthGenerator, n: usize) -> (Vec<NewBlock<Eth>>, Vec<State>) {
    let (genesis, s0) = with_root(g.child(None), &State::new());
    let mut blocks = vec![genesis];
    let mut states = vec![s0];
    for _ in 0..n {
        let (b, s) = with_root(g.child(Some(&blocks.last().unwrap().block.header)), states.last().unwrap());
        blocks.push(b);
        states.push(s);
    }
    (blocks, states)
}

fn roots_checked_reorged_and_proven<S: KvStore>(store: S) {
    let chain = ChainStore::<S, Eth>::new(store).unwrap().with_state_root_check(true);
    let mut g = EthGenerator::new(shape(), 11);
    let (blocks, states) = sealed_chain(&mut g, 30);
    chain.init(&blocks[0]).unwrap();
    chain.insert_blocks(&blocks[1..]).unwrap();
    let root = chain.state_root().unwrap();
    assert_eq!(B256::from(root), root_of(&states[30]));
    assert_eq!(B256::from(root), blocks[30].block.header.header.state_root);
    assert_ne!(B256::from(root), alloy_trie::EMPTY_ROOT_HASH);

    // A tampered state write: refused by name, nothing written.
    let (mut bad, _) = with_root(g.child(Some(&blocks[30].block.header)), &states[30]);
    let (key, value) = bad.state.iter_mut().find(|(_, v)| matches!(v, Some(EthStateValue::Account { .. }))).unwrap();
    if let Some(EthStateValue::Account { balance, .. }) = value {
        *balance += U256::from(1);
    }
    let key = *key;
    let err = chain.insert_blocks(std::slice::from_ref(&bad)).unwrap_err();
    let ChainError::StateRootMismatch { number: 31, roots, .. } = &err else { panic!("{err}") };
    assert_eq!(roots.claimed, alloy_primitives::hex::encode_prefixed(bad.block.header.header.state_root), "{err}");
    assert_ne!(roots.computed, roots.claimed, "{err}");
    assert_eq!(chain.head().unwrap().number, 30, "nothing written");
    assert_eq!(chain.state(&key).unwrap(), states[30].get(&key).cloned());
    assert_eq!(B256::from(chain.state_root().unwrap()), root_of(&states[30]));

    // A side branch from 25, made canonical: the root follows; back again.
    let mut side = Vec::new();
    let mut s = states[25].clone();
    let mut parent = blocks[25].block.header.clone();
    for _ in 0..8 {
        let (b, next) = with_root(g.child(Some(&parent)), &s);
        parent = b.block.header.clone();
        s = next;
        side.push(b);
    }
    chain.insert_blocks(&side).unwrap();
    chain.set_canonical_head(&side.last().unwrap().block.hash()).unwrap();
    assert_eq!(B256::from(chain.state_root().unwrap()), root_of(&s));
    chain.set_canonical_head(&blocks[30].block.hash()).unwrap();
    assert_eq!(B256::from(chain.state_root().unwrap()), root_of(&states[30]), "the reverted root exactly");
    assert!(chain.check_state_trie(&|_| {}).unwrap().matches());

    // Proofs of accounts, slots and an absent account verify; a tampered one does not.
    let slot_key = *states[30].keys().find(|k| k.slot.is_some()).unwrap();
    let account_key = *states[30].keys().find(|k| k.slot.is_none()).unwrap();
    let absent = EthStateKey { address: Address::repeat_byte(0xee), slot: None };
    for key in [slot_key, account_key, absent] {
        let proof = chain.state_proof(&key).unwrap();
        assert_eq!(B256::from(proof.root), root_of(&states[30]));
        assert_eq!(proof.value, states[30].get(&key).cloned());
        proof.verify().unwrap();
    }
    let mut proof = chain.state_proof(&account_key).unwrap();
    if let Some(EthStateValue::Account { nonce, .. }) = &mut proof.value {
        *nonce += 1;
    }
    assert!(proof.verify().is_err(), "a proof of another value does not verify");
    let mut proof = chain.state_proof(&slot_key).unwrap();
    let last = proof.storage_nodes.last_mut().unwrap();
    let n = last.len();
    last[n - 1] ^= 1;
    assert!(proof.verify().is_err(), "a tampered node does not verify");

    // Rebuilt from the flat state: the same root, and writes go on from it.
    let report = chain.rebuild_state_trie(false, &|_| {}).unwrap();
    assert!(report.matches() && report.written, "{report:?}");
    assert!(report.storage_tries > 0);
    let (next, s31) = with_root(g.child(Some(&blocks[30].block.header)), &states[30]);
    chain.insert_block(&next).unwrap();
    assert_eq!(B256::from(chain.state_root().unwrap()), root_of(&s31));
}

fn open<E: TestEngine>() -> (E::Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (E::open(dir.path(), chain_schema::<Eth>()).unwrap(), dir)
}

#[test]
fn roots_memory() {
    roots_checked_reorged_and_proven(MemStore::new(chain_schema::<Eth>()));
}

#[test]
fn roots_rocksdb() {
    let (store, _dir) = open::<Rocks>();
    roots_checked_reorged_and_proven(store);
}

#[test]
fn roots_redb() {
    let (store, _dir) = open::<Redb>();
    roots_checked_reorged_and_proven(store);
}

/// A database written before the trie existed (simulated by dropping its trie and mark): no
/// root until it is built; writes meanwhile leave it alone; the build gives the true root.
#[test]
fn a_database_without_a_trie_is_built_from_its_state() {
    let chain = ChainStore::<MemStore, Eth>::new(MemStore::new(chain_schema::<Eth>())).unwrap();
    let mut g = EthGenerator::new(shape(), 3);
    let (blocks, states) = sealed_chain(&mut g, 12);
    chain.init(&blocks[0]).unwrap();
    chain.insert_blocks(&blocks[1..10]).unwrap();
    let store = chain.into_inner();
    let mut batch = store.batch();
    batch.delete::<ChainMeta<Eth>>(&(MetaKey::StateTrie as u8)).unwrap();
    batch.delete_range::<TrieNodes<Eth>>(..).unwrap();
    batch.delete_range::<TrieLeaves<Eth>>(..).unwrap();
    batch.delete_range::<TrieRoots<Eth>>(..).unwrap();
    store.write(batch, Durability::Synced).unwrap();
    let chain = ChainStore::<MemStore, Eth>::new(store).unwrap();
    assert!(!chain.has_state_trie().unwrap());
    assert!(matches!(chain.state_root(), Err(ChainError::NoStateTrie)));
    chain.insert_blocks(&blocks[10..]).unwrap();
    let dry = chain.rebuild_state_trie(true, &|_| {}).unwrap();
    assert_eq!(dry.stored_root, None);
    assert!(!chain.has_state_trie().unwrap(), "a dry run writes nothing");
    let built = chain.rebuild_state_trie(false, &|_| {}).unwrap();
    assert_eq!(B256::from(built.root), root_of(&states[12]));
    assert_eq!(B256::from(chain.state_root().unwrap()), root_of(&states[12]));
}
