//! Inclusion proofs on real mainnet blocks (15,040,708–15,040,710, London): every transaction
//! and receipt of the three blocks proven from a chain store on every engine, each proof
//! verified on its own; any flipped byte of a proof node, of the value or of the header (its
//! roots included) fails verification (proptest), as do another index and a wrong block.

use std::path::Path;

mod common;

use alloy_primitives::Bytes;
use alloy_trie::proof::ProofRetainer;
use alloy_trie::root::adjust_index_for_rlp;
use alloy_trie::{HashBuilder, Nibbles};
use chain_eth::inclusion::{
    InclusionError, InclusionProof, Item, TrieCache, prove_in, prove_in_with, receipt_proof, transaction_proof,
};
use chain_eth::{Eth, EthHeader};
use chain_store::{ChainStore, chain_schema};
use engine_test::{Redb, Rocks, TestEngine};
use proptest::prelude::*;
use storage_api::mem::MemStore;
use storage_api::{Durability, KvStore};

use common::london;

fn every_item_proves_on<S: KvStore>(open: impl Fn(&Path) -> S) {
    let blocks = london();
    let dir = tempfile::tempdir().unwrap();
    let chain =
        ChainStore::<S, Eth>::new(open(&dir.path().join("db"))).unwrap().with_insert_durability(Durability::Buffered);
    chain.init(&blocks[0]).unwrap();
    chain.insert_blocks(&blocks[1..]).unwrap();
    let mut proven = 0;
    for b in &blocks {
        for (i, tx) in b.block.transactions.iter().enumerate() {
            let proof = prove_in(&chain, &tx.hash(), Item::Transaction).unwrap().unwrap();
            proof.verify().unwrap();
            assert_eq!((proof.block_hash, proof.index), (b.block.hash(), i as u64));
            assert_eq!(proof.transaction().as_ref(), Some(tx));
            let proof = prove_in(&chain, &tx.hash(), Item::Receipt).unwrap().unwrap();
            proof.verify().unwrap();
            assert_eq!(proof, receipt_proof(&b.block.header, &b.receipts, i as u64).unwrap());
            proven += 2;
        }
    }
    assert_eq!(proven, 2 * 586, "every transaction and receipt of the three blocks");
    assert_eq!(prove_in(&chain, &alloy_primitives::B256::repeat_byte(7), Item::Receipt).unwrap(), None);
}

#[test]
fn every_item_proves_memory() {
    every_item_proves_on(|_| MemStore::new(chain_schema::<Eth>()));
}

#[test]
fn every_item_proves_rocksdb() {
    every_item_proves_on(|p| Rocks::open(p, chain_schema::<Eth>()).unwrap());
}

#[test]
fn every_item_proves_redb() {
    every_item_proves_on(|p| Redb::open(p, chain_schema::<Eth>()).unwrap());
}

/// The proof of item `target` as alloy-trie's retainer gives it for that one key (the
/// reference the cached tries' proofs must equal node for node).
fn reference_nodes(values: &[Vec<u8>], target: usize) -> Vec<Bytes> {
    let key = |i: usize| Nibbles::unpack(alloy_rlp::encode_fixed_size(&i));
    let mut hb = HashBuilder::default().with_proof_retainer(ProofRetainer::new(vec![key(target)]));
    for i in 0..values.len() {
        let index = adjust_index_for_rlp(i, values.len());
        hb.add_leaf(key(index), &values[index]);
    }
    hb.root();
    hb.take_proof_nodes().into_nodes_sorted().into_iter().map(|(_, node)| node).collect()
}

/// Proofs from a block's cached trie (built once, then no item hashed) are node for node the
/// retainer's proof of that one item, cold and warm, for every item of the three blocks.
#[test]
fn cached_tries_give_the_retainers_proofs() {
    use alloy_eips::eip2718::Encodable2718;
    let blocks = london();
    let dir = tempfile::tempdir().unwrap();
    let chain = ChainStore::<_, Eth>::new(Rocks::open(&dir.path().join("db"), chain_schema::<Eth>()).unwrap())
        .unwrap()
        .with_insert_durability(Durability::Buffered);
    chain.init(&blocks[0]).unwrap();
    chain.insert_blocks(&blocks[1..]).unwrap();
    let cache = TrieCache::new(1 << 20);
    for b in &blocks {
        let txs: Vec<Vec<u8>> = b.block.transactions.iter().map(|t| t.0.encoded_2718()).collect();
        let receipts: Vec<Vec<u8>> = b.receipts.iter().map(|r| r.to_envelope().encoded_2718()).collect();
        for (i, tx) in b.block.transactions.iter().enumerate() {
            for (item, values) in [(Item::Transaction, &txs), (Item::Receipt, &receipts)] {
                let expected = reference_nodes(values, i);
                let cold = prove_in_with(&chain, &TrieCache::new(1 << 20), &tx.hash(), item).unwrap().unwrap();
                let warm = prove_in_with(&chain, &cache, &tx.hash(), item).unwrap().unwrap();
                assert_eq!(cold.nodes, expected, "block {} {item} {i}", b.block.number());
                assert_eq!(warm, cold);
            }
        }
    }
}

#[test]
fn wrong_indexes_blocks_and_items_are_refused() {
    let blocks = london();
    let b = &blocks[1];
    let count = b.block.transactions.len();
    assert!(matches!(
        transaction_proof(&b.block.header, &b.block.transactions, count as u64),
        Err(InclusionError::NoSuchItem { .. })
    ));
    // Items that are not the header's: the root does not match.
    let err = transaction_proof(&blocks[0].block.header, &b.block.transactions, 0).unwrap_err();
    assert!(matches!(err, InclusionError::RootMismatch { item: Item::Transaction, .. }), "{err}");
    // A proof moved to another index, or to another block's header.
    let mut moved = transaction_proof(&b.block.header, &b.block.transactions, 3).unwrap();
    moved.index = 4;
    assert!(matches!(moved.verify(), Err(InclusionError::Path { .. })));
    let mut other = transaction_proof(&b.block.header, &b.block.transactions, 3).unwrap();
    other.header = blocks[2].block.header.clone();
    assert!(matches!(other.verify(), Err(InclusionError::HeaderHash { .. })));
    other.block_hash = other.header.hash;
    assert!(matches!(other.verify(), Err(InclusionError::Path { .. })));
    // A transaction's proof presented as a receipt's.
    let mut swapped = transaction_proof(&b.block.header, &b.block.transactions, 3).unwrap();
    swapped.item = Item::Receipt;
    assert!(swapped.verify().is_err());
}

/// Proofs of each kind from the middle block, built once.
static PROOFS: std::sync::LazyLock<Vec<InclusionProof>> = std::sync::LazyLock::new(proofs);

fn proofs() -> Vec<InclusionProof> {
    let blocks = london();
    let b = &blocks[1];
    let mut out = Vec::new();
    for i in [0u64, 17, b.block.transactions.len() as u64 - 1] {
        out.push(transaction_proof(&b.block.header, &b.block.transactions, i).unwrap());
        out.push(receipt_proof(&b.block.header, &b.receipts, i).unwrap());
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Any single flipped bit in a proof node, the value, or the header fails.
    #[test]
    fn a_flipped_bit_anywhere_fails(which in 0usize..6, part in 0u8..3, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut p = PROOFS[which].clone();
        p.verify().unwrap();
        match part {
            0 => {
                let n = at.index(p.nodes.len());
                let mut node = p.nodes[n].to_vec();
                let i = at.index(node.len());
                node[i] ^= 1 << bit;
                p.nodes[n] = node.into();
            }
            1 => {
                let mut value = p.value.to_vec();
                let i = at.index(value.len());
                value[i] ^= 1 << bit;
                p.value = value.into();
            }
            _ => {
                // The header's bytes (the roots among them): it no longer hashes to the proof's
                // block, or, re-decoded, leads nowhere; either way the proof fails.
                let mut rlp = p.header.rlp();
                let i = at.index(rlp.len());
                rlp[i] ^= 1 << bit;
                match EthHeader::decode(&rlp) {
                    Ok(header) => p.header = header,
                    Err(_) => return Ok(()),
                }
            }
        }
        prop_assert!(p.verify().is_err());
    }
}
