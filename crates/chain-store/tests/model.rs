//! Property test: random fork trees with random reorgs, finalization and pruning, checked
//! after every step against a plain in-memory model of the chain (canonical index, transaction
//! lookups, state at the head and at older heights, and the state root: the incrementally
//! maintained trie against a root computed here from the model's state with alloy-trie, and
//! against the store's own from-scratch rebuild).
//!
//! Cases per backend: `NODE_STORAGE_CHAIN_CASES` (default 48).

mod common;

use std::collections::BTreeMap;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::{Address, B256, Synthetic};
use chain_store::{ChainError, ChainStore, Inserted, NewBlock};
use proptest::prelude::*;
use storage_api::KvStore;

#[derive(Debug, Clone, Copy)]
enum Op {
    Insert(u16),
    SetHead(u16),
    Finalize(u16),
    Prune(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => any::<u16>().prop_map(Op::Insert),
        2 => any::<u16>().prop_map(Op::SetHead),
        1 => any::<u16>().prop_map(Op::Finalize),
        1 => any::<u8>().prop_map(Op::Prune),
    ]
}

struct Model {
    blocks: Vec<NewBlock<Synthetic>>,
    parent: Vec<usize>,
    head: usize,
    finalized: Option<usize>,
}

impl Model {
    fn number(&self, i: usize) -> u64 {
        self.blocks[i].block.header.number
    }

    /// Block indexes from genesis to `tip`.
    fn path(&self, tip: usize) -> Vec<usize> {
        let mut p = vec![tip];
        while *p.last().unwrap() != 0 {
            p.push(self.parent[*p.last().unwrap()]);
        }
        p.reverse();
        p
    }

    fn state(&self, path: &[usize]) -> BTreeMap<(Address, B256), Option<B256>> {
        let mut s = BTreeMap::new();
        for &i in path {
            for (k, v) in &self.blocks[i].state {
                s.insert(*k, *v);
            }
        }
        s
    }
}

fn run<S: KvStore>(chain: &ChainStore<S, Synthetic>, seed: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 2,
        accounts: 6,
        contracts: 3,
        logs_per_tx: 1.0,
        input_bytes: 0,
        seed,
        ..GenConfig::default()
    });
    let genesis = g.next_blocks().remove(0);
    chain.init(&genesis).unwrap();
    let mut m = Model { blocks: vec![genesis], parent: vec![0], head: 0, finalized: None };
    let all_keys: Vec<(Address, B256)> =
        (0..6).map(|i| ChainGenerator::balance_key(ChainGenerator::account(i))).collect();
    for op in ops {
        let canonical = m.path(m.head);
        match *op {
            Op::Insert(pick) => {
                let p = pick as usize % m.blocks.len();
                let b = g.child(Some(&m.blocks[p].block.header));
                let result = chain.insert_blocks(std::slice::from_ref(&b));
                let fin = m.finalized.map(|f| m.number(f));
                if fin.is_some_and(|f| b.block.header.number <= f) {
                    prop_assert!(matches!(result, Err(ChainError::ConflictsWithFinalized { .. })), "{result:?}");
                    continue;
                }
                let expected = if p == m.head { Inserted::Canonical } else { Inserted::Side };
                prop_assert_eq!(result.unwrap(), vec![expected]);
                m.blocks.push(b);
                m.parent.push(p);
                if p == m.head {
                    m.head = m.blocks.len() - 1;
                }
            }
            Op::SetHead(pick) => {
                let t = pick as usize % m.blocks.len();
                let target = m.path(t);
                let fork = target.iter().zip(&canonical).take_while(|(a, b)| a == b).count() - 1;
                let result = chain.set_canonical_head(&m.blocks[t].block.hash());
                if m.finalized.is_some_and(|f| (fork as u64) < m.number(f)) {
                    prop_assert!(matches!(result, Err(ChainError::ReorgPastFinalized { .. })), "{result:?}");
                    continue;
                }
                let reorg = result.unwrap();
                prop_assert_eq!(reorg.fork_point.number, fork as u64);
                prop_assert_eq!(reorg.added.len(), target.len() - 1 - fork);
                prop_assert_eq!(reorg.removed.len(), canonical.len() - 1 - fork);
                m.head = t;
            }
            Op::Finalize(pick) => {
                let i = canonical[pick as usize % canonical.len()];
                let result = chain.set_finalized(&m.blocks[i].block.hash());
                if m.finalized.is_some_and(|f| m.number(i) < m.number(f)) {
                    prop_assert!(matches!(result, Err(ChainError::FinalizedBackwards { .. })), "{result:?}");
                    continue;
                }
                result.unwrap();
                m.finalized = Some(i);
            }
            Op::Prune(keep) => {
                chain.prune(u64::from(keep % 6) + 1).unwrap();
            }
        }
        // Compare everything observable with the model.
        let canonical = m.path(m.head);
        prop_assert_eq!(chain.head().map(|h| h.hash), Some(m.blocks[m.head].block.hash()));
        for (h, &i) in canonical.iter().enumerate() {
            prop_assert_eq!(chain.canonical_hash(h as u64).unwrap(), Some(m.blocks[i].block.hash()));
        }
        prop_assert_eq!(chain.canonical_hash(canonical.len() as u64).unwrap(), None);
        for (i, b) in m.blocks.iter().enumerate() {
            let on = canonical.get(b.block.header.number as usize) == Some(&i);
            for (j, tx) in b.block.transactions.iter().enumerate() {
                let loc = chain.tx_location(&tx.hash).unwrap();
                if on {
                    let loc = loc.unwrap();
                    prop_assert_eq!((loc.block, loc.index), (b.block.hash(), j as u32));
                } else {
                    prop_assert_eq!(loc, None);
                }
            }
        }
        let state = m.state(&canonical);
        let expected: Vec<Option<B256>> = all_keys.iter().map(|k| state.get(k).copied().flatten()).collect();
        prop_assert_eq!(chain.state_many(&all_keys).unwrap(), expected);
        let h = (seed as usize) % canonical.len();
        let older = m.state(&canonical[..=h]);
        let expected: Vec<Option<B256>> = all_keys.iter().map(|k| older.get(k).copied().flatten()).collect();
        let pruned_below = chain.pointers().pruned_below;
        match chain.state_at(&all_keys, h as u64) {
            Ok(values) => prop_assert_eq!(values, expected),
            Err(ChainError::Pruned { .. }) => prop_assert!((h as u64) + 1 < pruned_below),
            Err(e) => return Err(TestCaseError::fail(e.to_string())),
        }
        // The state root: incremental, independent, from scratch; and the per-block roots.
        let root = chain.state_root().unwrap();
        prop_assert_eq!(root, independent_root(&state));
        let rebuilt = chain.check_state_trie(&|_| {}).unwrap();
        prop_assert!(rebuilt.matches(), "{rebuilt:?}");
        for (n, &i) in canonical.iter().enumerate() {
            let at = m.blocks[i].block.block_ref();
            let recorded = chain.state_root_of(&at).unwrap();
            if (n as u64) < pruned_below {
                prop_assert_eq!(recorded, None, "the root of pruned height {} is not kept", n);
            } else if !m.blocks[i].state.is_empty() {
                prop_assert_eq!(recorded, Some(independent_root(&m.state(&canonical[..=n]))));
            }
        }
    }
    let report = chain.check().unwrap();
    prop_assert!(report.is_ok(), "{}", report);
    Ok(())
}

/// The root of the model's state (deleted keys held as `None`), computed without the store.
fn independent_root(state: &BTreeMap<(Address, B256), Option<B256>>) -> [u8; 32] {
    common::independent_root(state.iter().filter_map(|(k, v)| Some((k, v.as_ref()?))))
}

fn cases() -> u32 {
    std::env::var("NODE_STORAGE_CHAIN_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn memory(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..40)) {
        run(&common::memory(), seed, &ops)?;
    }

    #[test]
    fn rocksdb(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..40)) {
        run(&common::fixture::<engine_test::Rocks>(), seed, &ops)?;
    }

    #[test]
    fn redb(seed in any::<u64>(), ops in prop::collection::vec(op(), 1..40)) {
        run(&common::fixture::<engine_test::Redb>(), seed, &ops)?;
    }
}
