//! Merkle proofs of state entries at the head or at a retained canonical height
//! (`eth_getProof`-style), verified with alloy-trie's `verify_proof`.

use std::collections::HashMap;

use alloy_primitives::{B256, Bytes};
use alloy_trie::Nibbles;
use alloy_trie::proof::verify_proof;
use serde::{Deserialize, Serialize};
use storage_api::KvReader;

use super::node::namespace;
use super::overlay::{Overlay, is_built};
use super::walk::{Known, walk};
use super::{EMPTY_ROOT, TriePlace};
use crate::ChainStore;
use crate::error::ChainError;
use crate::model::{ChainModel, hex};

/// A proof that a state key holds a value (or none) under a state root.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound = "")]
pub struct StateProof<M: ChainModel> {
    /// The key proven.
    pub key: M::StateKey,
    /// Its value (`None`: the proof shows it absent).
    pub value: Option<M::StateValue>,
    /// The state root the proof is against.
    pub root: [u8; 32],
    /// For a key in a storage trie: its account's key and value (whose leaf the state-trie
    /// proof reaches).
    pub account: Option<(M::StateKey, Option<M::StateValue>)>,
    /// The root of the storage trie under the state-trie leaf proven (the empty root for a
    /// model without storage tries).
    pub storage_root: [u8; 32],
    /// The state-trie nodes from the root down to the leaf (RLP), or to where the key is shown
    /// absent.
    pub state_nodes: Vec<Vec<u8>>,
    /// For a key in a storage trie: the storage-trie nodes from its root down.
    pub storage_nodes: Vec<Vec<u8>>,
}

/// A proof that does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The nodes do not lead from the root to the claimed leaf.
    #[error("the {trie} proof does not verify: {reason}")]
    Invalid {
        /// Which trie: `state` or `storage`.
        trie: &'static str,
        /// What alloy-trie's verifier found.
        reason: String,
    },
    /// The proof's parts do not belong together.
    #[error("malformed proof: {0}")]
    Malformed(&'static str),
}

impl<M: ChainModel> StateProof<M> {
    /// Checks the proof against its root: the state-trie path to the key's leaf (or its
    /// account's), and for a storage key the storage-trie path under that account's storage
    /// root.
    pub fn verify(&self) -> Result<(), ProofError> {
        let check = |trie, root: [u8; 32], path: [u8; 32], leaf: Option<Vec<u8>>, nodes: &[Vec<u8>]| {
            let nodes: Vec<Bytes> = nodes.iter().map(|n| Bytes::copy_from_slice(n)).collect();
            verify_proof(B256::from(root), Nibbles::unpack(path), leaf, &nodes)
                .map_err(|e| ProofError::Invalid { trie, reason: e.to_string() })
        };
        match M::trie_place(&self.key) {
            TriePlace::Top { path } => {
                if self.account.is_some() || !self.storage_nodes.is_empty() {
                    return Err(ProofError::Malformed("a state-trie key with a storage proof"));
                }
                let leaf = self.value.as_ref().and_then(|v| M::trie_leaf(v, self.storage_root));
                check("state", self.root, path, leaf, &self.state_nodes)
            }
            TriePlace::Storage { account, owner, path } => {
                let Some((key, value)) = &self.account else {
                    return Err(ProofError::Malformed("a storage key without its account"));
                };
                if *key != account {
                    return Err(ProofError::Malformed("the account is not the key's"));
                }
                let leaf = value.as_ref().and_then(|v| M::trie_leaf(v, self.storage_root));
                check("state", self.root, owner, leaf, &self.state_nodes)?;
                let leaf = self.value.as_ref().and_then(|v| M::trie_leaf(v, EMPTY_ROOT));
                check("storage", self.storage_root, path, leaf, &self.storage_nodes)
            }
        }
    }
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// A proof of `key`'s value at the head against the head's state root.
    pub fn state_proof(&self, key: &M::StateKey) -> Result<StateProof<M>, ChainError> {
        if !is_built::<S, M>(&self.store)? {
            return Err(ChainError::NoStateTrie);
        }
        let view = Overlay::<S, M>::new(&self.store);
        prove(&view, key, &mut |k| self.state(k))
    }

    /// A proof of `key`'s value after canonical block `number` against that block's state
    /// root (`eth_getProof` for a recent block): the state as of the block is the head's with
    /// the values blocks `number + 1..=head` replaced put back (from their change sets), and
    /// its trie is the stored one under those values, in memory. Memory and time grow with the
    /// keys those blocks changed, not with the state. The root is compared with the one
    /// recorded for the block, where one is. Refused below the pruning boundary (the change
    /// sets are gone) and above the head.
    pub fn state_proof_at(&self, key: &M::StateKey, number: u64) -> Result<StateProof<M>, ChainError> {
        if !is_built::<S, M>(&self.store)? {
            return Err(ChainError::NoStateTrie);
        }
        let ptrs = self.pointers();
        let head = ptrs.head.ok_or(ChainError::NotInitialized)?;
        if number > head.number {
            return Err(ChainError::AboveHead { number, head: head.number });
        }
        if number < ptrs.pruned_below {
            return Err(ChainError::Pruned { what: "the state", number, pruned_below: ptrs.pruned_below });
        }
        // The value each key held after block `number`: the one the first later block to write
        // it replaced.
        let mut past: HashMap<M::StateKey, Option<M::StateValue>> = HashMap::new();
        self.replaced_after(number, head.number, |changes, previous| {
            for ((key, _), old) in changes.writes.iter().zip(previous) {
                past.entry(key.clone()).or_insert_with(|| old.clone());
            }
            true
        })?;
        let mut view = Overlay::<S, M>::new(&self.store);
        let mut value_at = |k: &M::StateKey| match past.get(k) {
            Some(v) => Ok(v.clone()),
            None => self.state(k),
        };
        if !past.is_empty() {
            let writes: Vec<_> = past.iter().map(|(k, v)| (k, v.as_ref())).collect();
            let root = super::update::<S, M>(&mut view, &writes, &mut value_at)?;
            if let Some(recorded) = self.state_root_of(&self.canonical_ref(number)?)?
                && recorded != root
            {
                return Err(ChainError::StateTrieDamaged(format!(
                    "the state of block {number} rebuilt from its successors' change sets has root {} but {} was recorded for it",
                    hex(&root),
                    hex(&recorded)
                )));
            }
        }
        prove(&view, key, &mut value_at)
    }
}

/// The proof of `key` in the tries `view` holds, with `value_of` giving the state's values
/// (the head's, or a past block's).
fn prove<S: KvReader, M: ChainModel>(
    view: &Overlay<'_, S, M>,
    key: &M::StateKey,
    value_of: &mut super::CurrentValue<'_, M>,
) -> Result<StateProof<M>, ChainError> {
    let prove_path = |ns: &[u8], path: [u8; 32]| -> Result<(B256, Vec<Vec<u8>>), ChainError> {
        let target = Nibbles::unpack(path);
        let walked = walk(view, ns, &[target], &[Known::Nothing], Some(target))?;
        let nodes = walked.proof.map(|p| p.matching_nodes_sorted(&target)).unwrap_or_default();
        Ok((walked.root, nodes.into_iter().map(|(_, n)| n.to_vec()).collect()))
    };
    let value = value_of(key)?;
    match M::trie_place(key) {
        TriePlace::Top { path } => {
            let (root, state_nodes) = prove_path(&namespace(None), path)?;
            Ok(StateProof {
                key: key.clone(),
                value,
                root: root.0,
                account: None,
                storage_root: view.storage_root(&path)?,
                state_nodes,
                storage_nodes: Vec::new(),
            })
        }
        TriePlace::Storage { account, owner, path } => {
            let (root, state_nodes) = prove_path(&namespace(None), owner)?;
            let (storage_root, storage_nodes) = prove_path(&namespace(Some(&owner)), path)?;
            let recorded = view.storage_root(&owner)?;
            if recorded != storage_root.0 {
                return Err(ChainError::StateTrieDamaged(format!(
                    "the storage trie of {} has root {} but its account records {}",
                    hex(&owner),
                    hex(storage_root.as_slice()),
                    hex(&recorded)
                )));
            }
            let account_value = value_of(&account)?;
            Ok(StateProof {
                key: key.clone(),
                value,
                root: root.0,
                account: Some((account, account_value)),
                storage_root: storage_root.0,
                state_nodes,
                storage_nodes,
            })
        }
    }
}
