//! The shared mainnet test data: blocks 15,040,708–15,040,710 (London) in the Portal network's
//! formats (`tests/data`, zstd), decoded as the tests use them; and a state's root computed
//! with alloy-trie alone. eth-rpc's tests include this file too (`#[path]`).
#![allow(dead_code)] // each test binary uses a part

use std::io::Read;
use std::path::Path;

use chain_eth::senders::{Recovery, recover_all};
use chain_eth::{Eth, EthBody, portal};
use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, U256};
use alloy_trie::TrieAccount;
use chain_eth::EthStateValue;
use chain_store::{Block, NewBlock};

/// The three blocks' numbers.
pub(crate) const LONDON: [u64; 3] = [15_040_708, 15_040_709, 15_040_710];

/// The decompressed bytes of `tests/data/<name>.bin.zst`.
pub(crate) fn data(name: &str) -> Vec<u8> {
    // From chain-eth's directory whichever crate's tests include this module.
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../chain-eth/tests/data").join(format!("{name}.bin.zst"));
    let mut out = Vec::new();
    zstd::Decoder::new(std::fs::File::open(&path).unwrap()).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Block `n` as the chain store takes it (senders recovered; no total difficulty).
pub(crate) fn london_block(n: u64) -> NewBlock<Eth> {
    let header = portal::header_with_proof(&data(&format!("{n}-header_with_proof"))).unwrap();
    let (transactions, ommers) = portal::body_legacy(&data(&format!("{n}-body"))).unwrap();
    let receipts = portal::receipts(&data(&format!("{n}-receipts"))).unwrap();
    let senders = recover_all(&transactions, Recovery::default(), 0).unwrap();
    let extra = EthBody { ommers, withdrawals: None, total_difficulty: None };
    NewBlock { block: Block { header, transactions, extra }, receipts, senders, state: Vec::new() }
}

/// The three blocks.
pub(crate) fn london() -> Vec<NewBlock<Eth>> {
    LONDON.iter().map(|n| london_block(*n)).collect()
}

/// A world state, by key.
pub(crate) type State = BTreeMap<chain_eth::EthStateKey, EthStateValue>;

/// The state root of `state`, from alloy-trie alone (independent of the store).
pub(crate) fn root_of(state: &State) -> B256 {
    let mut storage: BTreeMap<Address, Vec<(B256, U256)>> = BTreeMap::new();
    for (k, v) in state {
        if let (Some(slot), EthStateValue::Slot(value)) = (k.slot, v)
            && !value.is_zero()
        {
            storage.entry(k.address).or_default().push((slot, *value));
        }
    }
    let accounts = state.iter().filter_map(|(k, v)| match v {
        EthStateValue::Account { nonce, balance, code_hash } if k.slot.is_none() => {
            let storage_root = storage
                .get(&k.address)
                .map_or(alloy_trie::EMPTY_ROOT_HASH, |s| alloy_trie::root::storage_root_unhashed(s.clone()));
            Some((k.address, TrieAccount { nonce: *nonce, balance: *balance, storage_root, code_hash: *code_hash }))
        }
        _ => None,
    });
    alloy_trie::root::state_root_unhashed(accounts)
}

/// `block`'s state writes applied to `state`.
pub(crate) fn apply(state: &mut State, block: &NewBlock<Eth>) {
    for (k, v) in &block.state {
        match v {
            Some(v) => state.insert(*k, v.clone()),
            None => state.remove(k),
        };
    }
}
