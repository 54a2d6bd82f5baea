//! The Merkle state commitment: a Merkle-Patricia trie over the world state, its branch nodes
//! stored and updated from the keys each block changes, in the block's own write batch.
//!
//! The model decides the leaves ([`ChainModel::trie_place`], [`ChainModel::trie_leaf`]):
//! Ethereum's account trie over Keccak-256 of the address with a storage trie per account whose
//! root goes into the account's leaf (so roots compare with real headers); the synthetic model
//! one trie over Keccak-256 of the encoded state key. Tables (see [`crate::schema`]):
//! `trie_leaves` (trie ‖ hashed key → leaf value), `trie_nodes` (trie ‖ nibble path → branch
//! node), `trie_roots` (storage-trie roots by owner), `state_roots` (the root after each block
//! with state writes; pruned with the blocks). Hashing, branch encoding and proofs are
//! alloy-trie's (`HashBuilder`, `ProofRetainer`, `verify_proof`); [`walk`] reuses the stored
//! nodes so a block costs its changed paths, never a full rebuild.
//!
//! The trie is *built* (meta key `StateTrie`) from the moment a store is initialised; a
//! database written before the trie existed has none until [`ChainStore::build_state_trie`]
//! runs (`nodestore migrate` and `nodestore repair state-trie` do), and until then writes leave
//! it alone and root reads say it is missing.

mod build;
mod node;
mod overlay;
mod proof;
mod walk;

use std::collections::BTreeMap;

use alloy_trie::{EMPTY_ROOT_HASH, Nibbles};

pub use build::TrieBuildReport;
pub use node::TrieNode;
pub(crate) use overlay::Overlay;
pub use proof::{ProofError, StateProof};

use crate::ChainStore;
use crate::error::ChainError;
use crate::model::ChainModel;
use storage_api::KvReader;

pub use crate::model::TriePlace;

/// Keccak-256, the trie's path hash.
pub fn keccak(bytes: &[u8]) -> [u8; 32] {
    alloy_primitives::keccak256(bytes).0
}

/// The root of an empty trie.
pub const EMPTY_ROOT: [u8; 32] = EMPTY_ROOT_HASH.0;

/// The value a state key holds as of the batch (an account whose storage changed).
pub(crate) type CurrentValue<'a, M> =
    dyn FnMut(&<M as ChainModel>::StateKey) -> Result<Option<<M as ChainModel>::StateValue>, ChainError> + 'a;

/// What one update changes, per trie: sorted changed paths with their new leaf values.
pub(crate) type Changes = BTreeMap<Nibbles, Option<Vec<u8>>>;

/// Updates the tries for the state `writes` (keys and their new values, as the state now holds
/// them) into `overlay`, returning the new state root. `current` gives an account's value
/// when only its storage changed.
pub(crate) fn update<S: KvReader, M: ChainModel>(
    overlay: &mut Overlay<'_, S, M>,
    writes: &[(&M::StateKey, Option<&M::StateValue>)],
    current: &mut CurrentValue<'_, M>,
) -> Result<[u8; 32], ChainError> {
    let mut storage: BTreeMap<[u8; 32], (M::StateKey, Changes)> = BTreeMap::new();
    let mut top: BTreeMap<[u8; 32], Option<Option<M::StateValue>>> = BTreeMap::new();
    let mut top_keys: BTreeMap<[u8; 32], M::StateKey> = BTreeMap::new();
    for (key, value) in writes {
        match M::trie_place(key) {
            TriePlace::Top { path } => {
                top.insert(path, Some(value.cloned()));
                top_keys.insert(path, (*key).clone());
            }
            TriePlace::Storage { account, owner, path } => {
                let leaf = value.and_then(|v| M::trie_leaf(v, EMPTY_ROOT));
                let entry = storage.entry(owner).or_insert_with(|| (account, Changes::new()));
                entry.1.insert(Nibbles::unpack(path), leaf);
            }
        }
    }
    for (owner, (account, changes)) in storage {
        let ns = node::namespace(Some(&owner));
        let root = overlay.apply(&ns, changes)?;
        overlay.set_storage_root(owner, root);
        top.entry(owner).or_insert(None);
        top_keys.entry(owner).or_insert(account);
    }
    let mut changes = Changes::new();
    for (path, value) in top {
        let value = match value {
            Some(v) => v,
            None => current(&top_keys[&path])?,
        };
        let leaf = match value {
            Some(v) => M::trie_leaf(&v, overlay.storage_root(&path)?),
            None => None,
        };
        changes.insert(Nibbles::unpack(path), leaf);
    }
    overlay.apply(&node::namespace(None), changes)
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// Whether the state trie is built (see the module docs): every store initialised by this
    /// version has it; older databases need [`ChainStore::build_state_trie`].
    pub fn has_state_trie(&self) -> Result<bool, ChainError> {
        overlay::is_built::<S, M>(&self.store)
    }

    /// The state root at the head, from the stored trie.
    pub fn state_root(&self) -> Result<[u8; 32], ChainError> {
        if !self.has_state_trie()? {
            return Err(ChainError::NoStateTrie);
        }
        let view = Overlay::<S, M>::new(&self.store);
        Ok(walk::walk(&view, &node::namespace(None), &[], &[], None)?.root.0)
    }

    /// The state root recorded after the block at `at` applied its state writes, if it made
    /// any and its records are not pruned.
    pub fn state_root_of(&self, at: &crate::BlockRef<M::Hash>) -> Result<Option<[u8; 32]>, ChainError> {
        use storage_api::ReadExt;
        Ok(self.store.get::<crate::schema::StateRoots<M>>(&crate::schema::block_key::<M>(at))?)
    }
}
