//! The trie from scratch: the root the flat state gives (to check the stored trie against), and
//! a rebuild of every trie table from it (databases written before the trie existed, repair).

use std::collections::BTreeMap;

use alloy_trie::{BranchNodeCompact, HashBuilder, HashMap, Nibbles};
use serde::Serialize;
use storage_api::{Blob, Direction, Durability, KvReader, KvStore, ReadExt};

use super::node::{self, TrieNode};
use super::walk::with_leaf_hashes;
use super::{EMPTY_ROOT, TriePlace};
use crate::ChainStore;
use crate::error::ChainError;
use crate::model::ChainModel;
use crate::schema::{ChainMeta, MetaKey, MetaValue, State, Stored, TrieLeaves, TrieNodes, TrieRoots};

/// What a from-scratch computation (and rebuild) found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrieBuildReport {
    /// State entries read.
    pub keys: u64,
    /// Storage tries (accounts with storage), for models that have them.
    pub storage_tries: u64,
    /// Branch nodes the trie has.
    pub nodes: u64,
    /// The state root of the flat state.
    pub root: [u8; 32],
    /// The root the stored trie gave before (`None`: there was no trie).
    pub stored_root: Option<[u8; 32]>,
    /// Whether the tables were written (not a dry run).
    pub written: bool,
}

impl TrieBuildReport {
    /// Whether the stored trie matched the flat state.
    pub fn matches(&self) -> bool {
        self.stored_root == Some(self.root)
    }
}

/// A leaf: its hashed path and value.
type Leaf = ([u8; 32], Vec<u8>);

/// One trie computed from sorted leaves.
struct Built {
    ns: Vec<u8>,
    leaves: Vec<Leaf>,
    nodes: HashMap<Nibbles, BranchNodeCompact>,
    root: [u8; 32],
}

fn build(ns: Vec<u8>, mut leaves: Vec<Leaf>) -> Built {
    leaves.sort_unstable_by_key(|l| l.0);
    let mut hb = HashBuilder::default().with_updates(true).with_all_branch_nodes(true);
    for (path, leaf) in &leaves {
        hb.add_leaf(Nibbles::unpack(path), leaf);
    }
    let root = hb.root().0;
    let (_, nodes) = hb.split();
    Built { ns, leaves, nodes, root }
}

/// The single leaf of sorted `leaves` under `child` (its path and value), `None` if there are
/// none or several.
fn leaf_under<'l>(leaves: &'l [Leaf], child: &Nibbles) -> Option<(Nibbles, &'l [u8])> {
    let mut low = [0u8; 32];
    let packed = child.pack();
    low[..packed.len()].copy_from_slice(&packed);
    let at = leaves.partition_point(|(k, _)| *k < low);
    let under = |i: usize| leaves.get(i).map(|(k, _)| Nibbles::unpack(k)).filter(|k| k.starts_with(child));
    let first = under(at)?;
    under(at + 1).is_none().then(|| (first, leaves[at].1.as_slice()))
}

/// Entries per write batch of a rebuild.
const CHUNK: usize = 50_000;

/// The tries computed from the flat state.
struct Computed {
    tries: Vec<Built>,
    roots: BTreeMap<[u8; 32], [u8; 32]>,
    keys: u64,
    storage_tries: u64,
}

impl Computed {
    fn report(&self, stored_root: Option<[u8; 32]>, written: bool) -> TrieBuildReport {
        TrieBuildReport {
            keys: self.keys,
            storage_tries: self.storage_tries,
            nodes: self.tries.iter().map(|t| t.nodes.len() as u64).sum(),
            root: self.tries.last().map_or(EMPTY_ROOT, |t| t.root),
            stored_root,
            written,
        }
    }
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// Recomputes the state root from the flat state (every entry read and hashed) and
    /// compares it with the stored trie's, writing nothing (`nodestore check --state`).
    /// `progress` is called with the entries read so far.
    pub fn check_state_trie(&self, progress: &dyn Fn(u64)) -> Result<TrieBuildReport, ChainError> {
        let stored_root = if self.has_state_trie()? { Some(self.state_root()?) } else { None };
        Ok(self.compute_tries(progress)?.report(stored_root, false))
    }

    fn compute_tries(&self, progress: &dyn Fn(u64)) -> Result<Computed, ChainError> {
        let mut tops: Vec<([u8; 32], M::StateValue)> = Vec::new();
        let mut subs: BTreeMap<[u8; 32], Vec<Leaf>> = BTreeMap::new();
        let mut keys = 0u64;
        for entry in self.store.iter_all::<State<M>>(Direction::Forward)? {
            let (key, Stored(value)) = entry?;
            match M::trie_place(&key) {
                TriePlace::Top { path } => tops.push((path, value)),
                TriePlace::Storage { owner, path, .. } => {
                    let leaves = subs.entry(owner).or_default();
                    if let Some(leaf) = M::trie_leaf(&value, EMPTY_ROOT) {
                        leaves.push((path, leaf));
                    }
                }
            }
            keys += 1;
            if keys.is_multiple_of(100_000) {
                progress(keys);
            }
        }
        progress(keys);
        subs.retain(|_, leaves| !leaves.is_empty());
        let storage_tries = subs.len() as u64;
        let mut tries: Vec<Built> =
            subs.into_iter().map(|(owner, leaves)| build(node::namespace(Some(&owner)), leaves)).collect();
        let roots: BTreeMap<[u8; 32], [u8; 32]> = tries.iter().map(|t| (owner_of(&t.ns), t.root)).collect();
        let top_leaves = tops
            .into_iter()
            .filter_map(|(path, v)| Some((path, M::trie_leaf(&v, roots.get(&path).copied().unwrap_or(EMPTY_ROOT))?)))
            .collect();
        tries.push(build(node::namespace(None), top_leaves));
        Ok(Computed { tries, roots, keys, storage_tries })
    }
}

impl<S: KvStore, M: ChainModel> ChainStore<S, M> {
    /// Recomputes the trie from the flat state as [`ChainStore::check_state_trie`] does and,
    /// unless `dry_run`, replaces the trie tables with the result and marks the trie built —
    /// the repair of a damaged trie and the build for a database written before it existed.
    /// Writes wait meanwhile; a killed rebuild leaves the trie unbuilt (the mark is written
    /// last, and writes leave an unbuilt trie alone) and is simply run again.
    pub fn rebuild_state_trie(&self, dry_run: bool, progress: &dyn Fn(u64)) -> Result<TrieBuildReport, ChainError> {
        let _writer = self.write_lock()?;
        let stored_root = if self.has_state_trie()? { Some(self.state_root()?) } else { None };
        let computed = self.compute_tries(progress)?;
        if !dry_run {
            let mut ptrs = self.pointers();
            ptrs.state_trie = false; // until the mark is written again
            self.set_ptrs(ptrs);
            self.write_tries(&computed.tries, &computed.roots)?;
            ptrs.state_trie = true;
            self.set_ptrs(ptrs);
        }
        Ok(computed.report(stored_root, !dry_run))
    }

    /// Stops maintaining the state trie and deletes its tables (one synced batch): inserts,
    /// reorgs and bulk imports then do no trie work. Returns whether there was a trie. The
    /// per-block state roots already recorded stay; [`ChainStore::rebuild_state_trie`] builds
    /// the trie again from the flat state.
    pub fn drop_state_trie(&self) -> Result<bool, ChainError> {
        let _writer = self.write_lock()?;
        let had = self.has_state_trie()?;
        let mut ptrs = self.pointers();
        ptrs.state_trie = false;
        self.clear_tries()?;
        self.set_ptrs(ptrs);
        Ok(had)
    }

    /// Deletes the trie tables and the mark that says the trie is built, synced.
    fn clear_tries(&self) -> Result<(), ChainError> {
        let mut batch = self.store.batch();
        batch.delete::<ChainMeta<M>>(&(MetaKey::StateTrie as u8))?;
        batch.delete_range::<TrieLeaves<M>>(..)?;
        batch.delete_range::<TrieNodes<M>>(..)?;
        batch.delete_range::<TrieRoots<M>>(..)?;
        self.store.write(batch, Durability::Synced)?;
        Ok(())
    }

    fn write_tries(&self, tries: &[Built], roots: &BTreeMap<[u8; 32], [u8; 32]>) -> Result<(), ChainError> {
        self.clear_tries()?;
        let mut batch = self.store.batch();
        let mut queued = 0;
        let flush = |batch: &mut _, queued: &mut usize, force: bool| -> Result<(), ChainError> {
            if *queued >= CHUNK || (force && *queued > 0) {
                let full = std::mem::replace(batch, self.store.batch());
                self.store.write(full, Durability::Buffered)?;
                *queued = 0;
            }
            Ok(())
        };
        for t in tries {
            for (path, leaf) in &t.leaves {
                batch.put::<TrieLeaves<M>>(&node::leaf_key(&t.ns, path), &Blob(leaf.clone()))?;
                queued += 1;
                flush(&mut batch, &mut queued, false)?;
            }
            let mut sorted: Vec<_> = t.nodes.iter().collect();
            sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
            for (path, n) in sorted {
                // With its leaf children's hashes, as the incremental walk writes nodes.
                let n = with_leaf_hashes(path, n, |child| leaf_under(&t.leaves, child));
                batch.put::<TrieNodes<M>>(&node::node_key(&t.ns, path), &TrieNode(n))?;
                queued += 1;
                flush(&mut batch, &mut queued, false)?;
            }
        }
        for (owner, root) in roots {
            if *root != EMPTY_ROOT {
                batch.put::<TrieRoots<M>>(&owner.to_vec(), root)?;
                queued += 1;
            }
        }
        flush(&mut batch, &mut queued, true)?;
        let mut batch = self.store.batch();
        batch.put::<ChainMeta<M>>(&(MetaKey::StateTrie as u8), &Stored(MetaValue::Number(1)))?;
        self.store.write(batch, Durability::Synced)?;
        Ok(())
    }
}

fn owner_of(ns: &[u8]) -> [u8; 32] {
    ns[1..33].try_into().expect("a storage namespace holds its owner")
}
