//! The incremental root: a walk over the stored branch nodes of one trie that hands alloy-trie's
//! `HashBuilder` the hash of every subtree no changed key falls in, and the leaves of every
//! subtree one does.
//!
//! Every branch node is stored (`with_all_branch_nodes`), keyed by its nibble path, so the first
//! stored node under a path is the topmost branch of that subtree: every key under the path is
//! under that node's path too, unless a change adds one beside it (then the subtree is rebuilt
//! from its leaves). Stored nodes of the subtrees the walk enters or rebuilds are dropped and
//! the builder's updates (every branch it computed) written instead, so the stored nodes always
//! describe the current leaves. Proofs reuse the walk: the proven key is treated as changed, so
//! the builder computes (and its retainer keeps) every node on the key's path.
//!
//! A stored node also keeps the hash of each leaf child (hash bit set, tree bit not: alloy-trie
//! marks branch children only; [`with_leaf_hashes`] adds the rest), so the walk reads no
//! unchanged leaf. A changed leaf is not read either where the change says what the slot holds
//! ([`Known`]): a stored leaf's value replaced, or a new leaf in an empty slot. Under a node
//! where a leaf is deleted, its leaf children are read as before: the node may collapse, and a
//! leaf's hash depends on the depth it ends at.

use alloy_trie::nodes::LeafNodeRef;
use alloy_trie::proof::{ProofNodes, ProofRetainer};
use alloy_trie::{BranchNodeCompact, HashBuilder, HashMap, Nibbles};

use crate::error::ChainError;

/// Reads of one kind of trie storage (the tables, or the tables under a batch's writes).
pub(crate) trait TrieRead {
    /// The stored branch node with the smallest path starting with `prefix` in trie `ns`.
    fn first_node(&self, ns: &[u8], prefix: &Nibbles) -> Result<Option<(Nibbles, BranchNodeCompact)>, ChainError>;
    /// The paths of every stored branch node under `prefix` in trie `ns`.
    fn node_paths(&self, ns: &[u8], prefix: &Nibbles) -> Result<Vec<Nibbles>, ChainError>;
    /// Every leaf (its 64-nibble path and value) under `prefix`, in order; `None` if more than
    /// `cap` are stored there.
    fn leaves(&self, ns: &[u8], prefix: &Nibbles, cap: Option<usize>) -> Result<Option<Leaves>, ChainError>;
}

/// Leaves in path order: (64-nibble path, value).
pub(crate) type Leaves = Vec<(Nibbles, Vec<u8>)>;

/// A node whose children need their leaves read at least twice reads its whole subtree in one
/// scan when that holds at most this many leaves (the nodes just above the leaves: one scan
/// instead of one per child, the walk's largest cost), else one scan per child.
const GATHER_CAP: usize = 64;

/// What a walk knows of a changed path besides that it changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Known {
    /// Nothing (a proof's target, a deletion of a leaf that was not stored).
    Nothing,
    /// A stored leaf's value replaced by this one.
    Replaced(Vec<u8>),
    /// A leaf that was not stored, with its value.
    New(Vec<u8>),
    /// A stored leaf deleted.
    Deleted,
}

/// What the walk does with one child of a stored branch node.
enum Step {
    /// Nothing there, nothing changed under it.
    Skip,
    /// Unchanged: its stored hash (and whether a stored node is below it).
    Hash(alloy_primitives::B256, bool),
    /// Changes fall under the stored node at this path: enter it.
    Descend(Nibbles, BranchNodeCompact),
    /// Rebuilt from its leaves; `true`: stored nodes under it are replaced.
    Leaves(bool),
    /// Holds exactly this leaf (known from the change, nothing read).
    Leaf(Nibbles, Vec<u8>),
}

/// What a walk computed: the root, the branch nodes to write and the ones to drop.
pub(crate) struct Walked {
    /// The trie's root.
    pub(crate) root: alloy_primitives::B256,
    /// Every branch node the builder computed, by path.
    pub(crate) updates: HashMap<Nibbles, BranchNodeCompact>,
    /// Stored nodes entered (re-derived, so replaced or gone).
    pub(crate) removed: Vec<Nibbles>,
    /// Subtrees rebuilt from their leaves: every stored node under them is replaced or gone.
    pub(crate) rebuilt: Vec<Nibbles>,
    /// With a proof target: the nodes on its path.
    pub(crate) proof: Option<ProofNodes>,
}

struct Walk<'a, R: ?Sized> {
    read: &'a R,
    ns: &'a [u8],
    changed: &'a [Nibbles],
    known: &'a [Known],
    hb: HashBuilder,
    removed: Vec<Nibbles>,
    rebuilt: Vec<Nibbles>,
    /// Every leaf handed to the builder, in order (for [`with_leaf_hashes`]).
    added: Vec<(Nibbles, Vec<u8>)>,
}

/// The root of trie `ns` after its leaves at the (sorted, distinct) paths `changed` were
/// written (`known[i]`: what is known of `changed[i]`), reusing every stored subtree hash no
/// change falls under; with `prove`, the proof nodes of that path too (include it in
/// `changed`).
pub(crate) fn walk<R: TrieRead + ?Sized>(
    read: &R,
    ns: &[u8],
    changed: &[Nibbles],
    known: &[Known],
    prove: Option<Nibbles>,
) -> Result<Walked, ChainError> {
    debug_assert!(changed.windows(2).all(|w| w[0] < w[1]), "changed paths must be sorted and distinct");
    debug_assert_eq!(changed.len(), known.len());
    let mut hb = HashBuilder::default().with_updates(true).with_all_branch_nodes(true);
    if let Some(target) = &prove {
        hb = hb.with_proof_retainer(ProofRetainer::new(vec![*target]));
    }
    let mut w = Walk { read, ns, changed, known, hb, removed: Vec::new(), rebuilt: Vec::new(), added: Vec::new() };
    let top = Nibbles::default();
    match read.first_node(ns, &top)? {
        Some((path, node)) if changed.iter().all(|k| k.starts_with(&path)) => {
            w.removed.push(path);
            w.node(path, &node)?;
        }
        _ => w.leaves_of(top, true)?,
    }
    let root = w.hb.root();
    let proof = prove.map(|_| w.hb.take_proof_nodes());
    let (_, updates) = w.hb.split();
    let added = &w.added;
    let updates = updates
        .into_iter()
        .map(|(path, node)| {
            let node = with_leaf_hashes(&path, &node, |child| {
                let at = added.partition_point(|(k, _)| k < child);
                let (first, value) = added.get(at).filter(|(k, _)| k.starts_with(child))?;
                let alone = added.get(at + 1).is_none_or(|(k, _)| !k.starts_with(child));
                alone.then_some((*first, value.as_slice()))
            });
            (path, node)
        })
        .collect();
    Ok(Walked { root, updates, removed: w.removed, rebuilt: w.rebuilt, proof })
}

/// `node` (at `path`) with the hash of each leaf child it does not hash yet added (hash bit
/// set, tree bit not). `leaf` gives the single leaf under a child's path (its whole path and
/// value); a child it cannot say (`None`), or whose leaf is short enough to be inlined, is left
/// without a hash, and a walk then reads it.
pub(crate) fn with_leaf_hashes<'v>(
    path: &Nibbles,
    node: &BranchNodeCompact,
    leaf: impl Fn(&Nibbles) -> Option<(Nibbles, &'v [u8])>,
) -> BranchNodeCompact {
    let unhashed = node.state_mask.get() & !node.tree_mask.get() & !node.hash_mask.get();
    if unhashed == 0 {
        return node.clone();
    }
    let mut hash_mask = node.hash_mask;
    let mut hashes = Vec::with_capacity(16);
    let mut stored = node.hashes.iter();
    let mut buf = Vec::new();
    for nibble in 0u8..16 {
        if node.hash_mask.is_bit_set(nibble) {
            hashes.push(*stored.next().expect("one hash per hash bit"));
            continue;
        }
        if unhashed & (1 << nibble) == 0 {
            continue;
        }
        let mut child = *path;
        child.push(nibble);
        let Some((full, value)) = leaf(&child) else { continue };
        let suffix = full.slice(child.len()..);
        buf.clear();
        if let Some(hash) = LeafNodeRef::new(&suffix, value).rlp(&mut buf).as_hash() {
            hash_mask.set_bit(nibble);
            hashes.push(hash);
        }
    }
    if hash_mask == node.hash_mask {
        return node.clone();
    }
    BranchNodeCompact::new(node.state_mask, node.tree_mask, hash_mask, hashes, node.root_hash)
}

/// Whether a leaf child (`tree` bit clear) with a stored hash.
fn leaf_hash(node: &BranchNodeCompact, nibble: u8) -> bool {
    node.hash_mask.is_bit_set(nibble) && !node.tree_mask.is_bit_set(nibble)
}

impl<R: TrieRead + ?Sized> Walk<'_, R> {
    /// The changed paths under `prefix`, and what is known of them.
    fn changed_under(&self, prefix: &Nibbles) -> (&[Nibbles], &[Known]) {
        let start = self.changed.partition_point(|k| k < prefix);
        let len = self.changed[start..].iter().take_while(|k| k.starts_with(prefix)).count();
        (&self.changed[start..start + len], &self.known[start..start + len])
    }

    fn add_leaf(&mut self, key: Nibbles, value: &[u8]) {
        self.hb.add_leaf(key, value);
        self.added.push((key, value.to_vec()));
    }

    fn node(&mut self, path: Nibbles, node: &BranchNodeCompact) -> Result<(), ChainError> {
        let deletes = self.changed_under(&path).1.contains(&Known::Deleted);
        let mut steps = Vec::with_capacity(16);
        for nibble in 0u8..16 {
            let mut child = path;
            child.push(nibble);
            steps.push(self.step(child, node, nibble, deletes)?);
        }
        let wanted = steps.iter().filter(|s| matches!(s, Step::Leaves(_))).count();
        let gathered = if wanted >= 2 { self.read.leaves(self.ns, &path, Some(GATHER_CAP))? } else { None };
        for (nibble, step) in (0u8..16).zip(steps) {
            let mut child = path;
            child.push(nibble);
            match step {
                Step::Skip => {}
                Step::Hash(hash, tree) => self.hb.add_branch(child, hash, tree),
                Step::Descend(sub_path, sub) => {
                    self.removed.push(sub_path);
                    self.node(sub_path, &sub)?;
                }
                Step::Leaves(replaces_nodes) => match &gathered {
                    Some(all) => {
                        if replaces_nodes {
                            self.rebuilt.push(child);
                        }
                        for (k, v) in all.iter().filter(|(k, _)| k.get_unchecked(path.len()) == nibble) {
                            self.add_leaf(*k, v);
                        }
                    }
                    None => self.leaves_of(child, replaces_nodes)?,
                },
                Step::Leaf(key, value) => self.add_leaf(key, &value),
            }
        }
        Ok(())
    }

    /// What to do with child `nibble` (at `child`) of the stored `node`; `deletes`: a leaf
    /// under the node is deleted (its leaf children are read, not taken from their hashes).
    fn step(&self, child: Nibbles, node: &BranchNodeCompact, nibble: u8, deletes: bool) -> Result<Step, ChainError> {
        let (changed, known) = self.changed_under(&child);
        let touched = !changed.is_empty();
        let present = node.state_mask.is_bit_set(nibble);
        let tree = node.tree_mask.is_bit_set(nibble);
        if !present && !touched {
            return Ok(Step::Skip);
        }
        if present && !touched && node.hash_mask.is_bit_set(nibble) && !(deletes && leaf_hash(node, nibble)) {
            return Ok(Step::Hash(node.hash_for_nibble(nibble), tree));
        }
        // One change in a leaf's slot (or an empty one) that says what the slot now holds: a
        // present child without a tree bit is a single leaf, so a replaced stored leaf under it
        // is that leaf.
        if !tree && let [key] = changed {
            match (&known[0], present) {
                (Known::Replaced(value), true) | (Known::New(value), false) => {
                    return Ok(Step::Leaf(*key, value.clone()));
                }
                (Known::Deleted, true) => return Ok(Step::Skip),
                _ => {}
            }
        }
        if present && tree {
            let below = self.read.first_node(self.ns, &child)?;
            if let Some((sub_path, sub)) = below
                && changed.iter().all(|k| k.starts_with(&sub_path))
            {
                return Ok(Step::Descend(sub_path, sub));
            }
        }
        // Stored nodes lie under `child` only where its tree bit says so (every branch is
        // stored, and the stored nodes describe the current leaves).
        Ok(Step::Leaves(tree))
    }

    fn leaves_of(&mut self, prefix: Nibbles, replaces_nodes: bool) -> Result<(), ChainError> {
        if replaces_nodes {
            self.rebuilt.push(prefix);
        }
        let leaves = self.read.leaves(self.ns, &prefix, None)?.unwrap_or_default();
        for (k, v) in leaves {
            self.hb.add_leaf(k, &v);
            self.added.push((k, v));
        }
        Ok(())
    }
}
