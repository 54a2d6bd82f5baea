//! The state trie on bigger states than the model test's: roots after every block against a
//! root computed here from the state alone, proofs, and the from-scratch rebuild, on every
//! engine that runs the chain tests.

mod common;

use std::collections::BTreeMap;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::{Address, B256, Synthetic};
use chain_store::{ChainStore, NewBlock};
use storage_api::KvStore;

type State = BTreeMap<(Address, B256), B256>;

fn apply(state: &mut State, b: &NewBlock<Synthetic>) {
    for (k, v) in &b.state {
        match v {
            Some(v) => state.insert(*k, *v),
            None => state.remove(k),
        };
    }
}

fn roots_proofs_and_rebuild<S: KvStore>(fx: common::Fx<S>) {
    let chain: &ChainStore<S, Synthetic> = &fx;
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 40,
        accounts: 3_000,
        contracts: 20,
        logs_per_tx: 0.2,
        input_bytes: 0,
        seed: 9,
        ..GenConfig::default()
    });
    let blocks = g.next_blocks();
    let mut state = State::new();
    chain.init(&blocks[0]).unwrap();
    apply(&mut state, &blocks[0]);
    assert_eq!(chain.state_root().unwrap(), common::independent_root(&state));
    let mut all = vec![blocks[0].clone()];
    for round in 0..6 {
        let mut batch = Vec::new();
        for _ in 0..10 {
            batch.extend(g.next_blocks());
        }
        // One block at a time in the first rounds, then ten per batch.
        if round < 3 {
            for b in &batch {
                chain.insert_block(b).unwrap();
                apply(&mut state, b);
                assert_eq!(
                    chain.state_root().unwrap(),
                    common::independent_root(&state),
                    "after block {}",
                    b.block.header.number
                );
            }
        } else {
            chain.insert_blocks(&batch).unwrap();
            for b in &batch {
                apply(&mut state, b);
            }
            assert_eq!(chain.state_root().unwrap(), common::independent_root(&state));
        }
        all.extend(batch);
    }
    assert!(state.len() > 1_000, "a state of {} keys", state.len());
    // Deletions (branches collapse), down to an empty state and back.
    let keys: Vec<_> = state.keys().copied().collect();
    for (round, chunk) in keys.chunks(keys.len() / 4 + 1).enumerate() {
        let mut b = g.next_blocks().remove(0);
        b.state = chunk.iter().map(|k| (*k, None)).collect();
        if round == 1 {
            b.state.truncate(b.state.len() / 2);
            b.state.push((chunk[chunk.len() - 1], Some(B256([round as u8 + 1; 32]))));
        }
        b.state.sort_by_key(|x| x.0);
        chain.insert_block(&b).unwrap();
        apply(&mut state, &b);
        assert_eq!(chain.state_root().unwrap(), common::independent_root(&state), "deletion round {round}");
    }
    let rest: Vec<_> = state.keys().copied().collect();
    let mut b = g.next_blocks().remove(0);
    b.state = rest.iter().map(|k| (*k, None)).collect();
    chain.insert_block(&b).unwrap();
    apply(&mut state, &b);
    assert!(state.is_empty());
    assert_eq!(chain.state_root().unwrap(), chain_store::trie::EMPTY_ROOT);
    let mut b = g.next_blocks().remove(0);
    b.state = keys.iter().take(500).map(|k| (*k, Some(B256([7; 32])))).collect();
    chain.insert_block(&b).unwrap();
    apply(&mut state, &b);
    assert_eq!(chain.state_root().unwrap(), common::independent_root(&state), "refilled");
    for b in g.next_blocks().into_iter().chain(g.next_blocks()) {
        chain.insert_block(&b).unwrap();
        apply(&mut state, &b);
    }
    assert_eq!(chain.state_root().unwrap(), common::independent_root(&state));
    for (i, key) in state.keys().enumerate().step_by(97) {
        let proof = chain.state_proof(key).unwrap();
        assert_eq!(proof.value, Some(state[key]));
        proof.verify().unwrap_or_else(|e| panic!("proof {i}: {e}"));
    }
    let absent = (Address([0xab; 20]), B256([0xcd; 32]));
    let proof = chain.state_proof(&absent).unwrap();
    assert_eq!(proof.value, None);
    proof.verify().unwrap();
    let report = chain.check_state_trie(&|_| {}).unwrap();
    assert!(report.matches(), "{report:?}");
    assert_eq!(report.keys, state.len() as u64);
}

/// Proofs at past heights: for blocks behind the head (1, 10, 64 and all the way back), each
/// proof verifies against the root computed here from the state as it was after that block,
/// and proves the value the key held then (deleted keys included); the head's own root and
/// the stored trie are untouched. Pruned and future heights are refused.
fn proofs_at_past_heights<S: KvStore>(fx: common::Fx<S>) {
    let chain: &ChainStore<S, Synthetic> = &fx;
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 20,
        accounts: 400,
        contracts: 10,
        logs_per_tx: 0.0,
        input_bytes: 0,
        fork_probability: 0.0,
        seed: 17,
        ..GenConfig::default()
    });
    let blocks = g.next_blocks();
    chain.init(&blocks[0]).unwrap();
    let mut state = State::new();
    apply(&mut state, &blocks[0]);
    let mut after = vec![state.clone()];
    for n in 1..=80u64 {
        let mut b = g.next_blocks().remove(0);
        if n % 7 == 0 {
            // Some deletions, so past proofs show values the head no longer has.
            let gone: Vec<_> = state.keys().take(5).copied().collect();
            b.state.retain(|(k, _)| !gone.contains(k));
            b.state.extend(gone.into_iter().map(|k| (k, None)));
            b.state.sort_by_key(|x| x.0);
        }
        chain.insert_block(&b).unwrap();
        apply(&mut state, &b);
        after.push(state.clone());
    }
    let head = chain.head().unwrap().number;
    let head_root = chain.state_root().unwrap();
    let every_key: Vec<_> =
        after.iter().flat_map(|s| s.keys().copied()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    for back in [0, 1, 10, 64, head] {
        let n = head - back;
        let then = &after[n as usize];
        let want = common::independent_root(then);
        for key in every_key.iter().step_by(53) {
            let proof = chain.state_proof_at(key, n).unwrap();
            assert_eq!(proof.root, want, "root after block {n}");
            assert_eq!(proof.value, then.get(key).copied(), "value of {key:?} after block {n}");
            proof.verify().unwrap_or_else(|e| panic!("block {n}: {e}"));
        }
    }
    assert_eq!(chain.state_root().unwrap(), head_root, "proving the past changes nothing");
    assert!(chain.check_state_trie(&|_| {}).unwrap().matches());
    let key = every_key[0];
    assert!(matches!(chain.state_proof_at(&key, head + 1), Err(chain_store::ChainError::AboveHead { .. })));
    chain.set_finalized(&chain.head().unwrap().hash).unwrap();
    chain.prune(20).unwrap();
    let below = chain.pointers().pruned_below;
    assert!(below > 0);
    assert!(matches!(chain.state_proof_at(&key, below - 1), Err(chain_store::ChainError::Pruned { .. })));
    let proof = chain.state_proof_at(&key, below).unwrap();
    assert_eq!(proof.root, common::independent_root(&after[below as usize]));
    proof.verify().unwrap();
}

/// Blocks of random writes that first grow the state, then delete most of it, mixing updates
/// and new keys in: branch nodes collapse, leaves move up a level (their stored hashes then no
/// longer hold) and slots fill again. The root after every block, in single inserts and in
/// batches, against the one computed here; then the rebuild.
fn growth_and_collapse<S: KvStore>(fx: common::Fx<S>) {
    let chain: &ChainStore<S, Synthetic> = &fx;
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 2,
        accounts: 50,
        contracts: 2,
        logs_per_tx: 0.0,
        input_bytes: 0,
        fork_probability: 0.0,
        seed: 41,
        ..GenConfig::default()
    });
    let blocks = g.next_blocks();
    chain.init(&blocks[0]).unwrap();
    let mut state = State::new();
    apply(&mut state, &blocks[0]);
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut pending = Vec::new();
    for n in 1..=90u64 {
        let mut b = g.next_blocks().remove(0);
        let mut writes = BTreeMap::new();
        let keys: Vec<_> = state.keys().copied().collect();
        let (new, deletes) = match n {
            1..=30 => (60, 5),
            31..=70 => (3, keys.len() / 6),
            _ => (20, 2),
        };
        for _ in 0..new {
            let mut a = [0u8; 20];
            a[..8].copy_from_slice(&next().to_be_bytes());
            writes.insert((Address(a), B256([n as u8; 32])), Some(B256([1; 32])));
        }
        for _ in 0..deletes.min(keys.len()) {
            writes.insert(keys[next() as usize % keys.len()], None);
        }
        for _ in 0..8.min(keys.len()) {
            let k = keys[next() as usize % keys.len()];
            writes.entry(k).or_insert(Some(B256([n as u8; 32])));
        }
        b.state = writes.into_iter().collect();
        apply(&mut state, &b);
        if n % 3 == 0 {
            // Three blocks in one batch: later ones see the earlier ones' trie writes.
            pending.push(b);
            chain.insert_blocks(&pending).unwrap();
            pending.clear();
            assert_eq!(chain.state_root().unwrap(), common::independent_root(&state), "after block {n}");
        } else if n > 45 {
            pending.push(b);
        } else {
            chain.insert_block(&b).unwrap();
            assert_eq!(chain.state_root().unwrap(), common::independent_root(&state), "after block {n}");
        }
    }
    assert!(state.len() < 600, "the state shrank ({} keys)", state.len());
    let rebuilt = chain.check_state_trie(&|_| {}).unwrap();
    assert!(rebuilt.matches(), "{rebuilt:?}");
}

engine_test::on_every_engine!(fixture => [memory, rocksdb, redb]: [roots_proofs_and_rebuild, proofs_at_past_heights, growth_and_collapse]);

fn fixture<E: engine_test::TestEngine>() -> common::Fx<E::Store> {
    common::fixture::<E>()
}
