//! State methods on a chain whose headers commit to its state (generated, each header's
//! state root computed with alloy-trie from the writes alone): balances, nonces and slots at
//! the head and at earlier blocks, and `eth_getProof` verified against the header's root with
//! alloy-trie's verifier.

mod common;

use std::collections::BTreeMap;

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_rpc_types_eth::EIP1186AccountProofResponse;
use alloy_trie::{Nibbles, TrieAccount, proof::verify_proof};
use chain_eth::generator::{EthGenerator, EthShape, MAINNET_LONDON};
use chain_eth::{EthStateKey, EthStateValue};
use common::*;
use serde_json::json;

type State = BTreeMap<EthStateKey, EthStateValue>;

/// Checks `p` against `root` with alloy-trie's verifier: the account's leaf (or, when it does
/// not `exist`, its absence), then each slot's under the storage root the leaf commits to.
fn verify(p: &EIP1186AccountProofResponse, root: B256, exists: bool, slots: &[(B256, U256)]) {
    let account =
        TrieAccount { nonce: p.nonce, balance: p.balance, storage_root: p.storage_hash, code_hash: p.code_hash };
    let leaf = exists.then(|| alloy_rlp::encode(account));
    verify_proof(root, Nibbles::unpack(keccak256(p.address)), leaf, &p.account_proof).expect("account proof");
    for (sp, (slot, value)) in p.storage_proof.iter().zip(slots) {
        assert_eq!((sp.key.as_b256(), sp.value), (*slot, *value));
        let leaf = (!value.is_zero()).then(|| alloy_rlp::encode(value));
        verify_proof(p.storage_hash, Nibbles::unpack(keccak256(slot)), leaf, &sp.proof).expect("storage proof");
    }
}

#[test]
fn balances_nonces_slots_and_proofs_at_the_head_and_before() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = EthGenerator::new(EthShape { txs_per_block: 6, ..MAINNET_LONDON }, 5);
    let blocks = with_state_roots((0..30).map(|_| g.next_block()).collect());
    // The state after each block, from the writes alone.
    let mut states: Vec<State> = Vec::new();
    let mut state = State::new();
    for b in &blocks {
        for (k, v) in &b.state {
            match v {
                Some(v) => state.insert(*k, v.clone()),
                None => state.remove(k),
            };
        }
        states.push(state.clone());
    }
    let config = config(dir.path());
    rt().block_on(async {
        let h = node_with(config.clone(), &blocks).await;
        let server = eth_rpc::serve(h.clone(), &config.rpc, None).await.unwrap();
        let addr = server.addr();
        tokio::task::spawn_blocking(move || {
            for at in [29u64, 12] {
                let s = &states[at as usize];
                let tag = if at == 29 { json!("latest") } else { hex(at) };
                let (account, (nonce, balance)) = s
                    .iter()
                    .find_map(|(k, v)| match v {
                        EthStateValue::Account { nonce, balance, .. } if k.slot.is_none() && *nonce > 0 => {
                            Some((k.address, (*nonce, *balance)))
                        }
                        _ => None,
                    })
                    .unwrap();
                assert_eq!(result(addr, "eth_getBalance", json!([account, tag])), json!(balance));
                assert_eq!(result(addr, "eth_getTransactionCount", json!([account, tag])), hex(nonce));
                let (contract, slot, value) = s
                    .iter()
                    .find_map(|(k, v)| match (k.slot, v) {
                        (Some(slot), EthStateValue::Slot(value)) => Some((k.address, slot, *value)),
                        _ => None,
                    })
                    .unwrap();
                assert_eq!(result(addr, "eth_getStorageAt", json!([contract, slot, tag])), json!(B256::from(value)));
                let absent = B256::repeat_byte(0xee);
                assert_eq!(result(addr, "eth_getStorageAt", json!([contract, absent, tag])), json!(B256::ZERO));
                let nobody = Address::repeat_byte(0xab);
                assert_eq!(result(addr, "eth_getBalance", json!([nobody, tag])), json!("0x0"));

                let root = blocks[at as usize].block.header.header.state_root;
                let p: EIP1186AccountProofResponse =
                    serde_json::from_value(result(addr, "eth_getProof", json!([contract, [slot, absent], tag])))
                        .unwrap();
                verify(&p, root, true, &[(slot, value), (absent, U256::ZERO)]);
                let p: EIP1186AccountProofResponse =
                    serde_json::from_value(result(addr, "eth_getProof", json!([account, [], tag]))).unwrap();
                assert_eq!((p.nonce, p.balance), (nonce, balance));
                verify(&p, root, true, &[]);
                let p: EIP1186AccountProofResponse =
                    serde_json::from_value(result(addr, "eth_getProof", json!([nobody, [], tag]))).unwrap();
                verify(&p, root, false, &[]);
                assert!(!p.account_proof.is_empty(), "an absence is proven too");
            }
            let by_hash = json!({"blockHash": blocks[12].block.header.hash});
            let account = blocks[12].senders[0];
            assert_eq!(
                result(addr, "eth_getBalance", json!([account, by_hash])),
                result(addr, "eth_getBalance", json!([account, hex(12)]))
            );
            assert_eq!(error(addr, "eth_getBalance", json!([account, hex(31)])).0, -32000, "above the head");
        })
        .await
        .unwrap();
        server.stop().await;
        h.shutdown().await;
    });
}
