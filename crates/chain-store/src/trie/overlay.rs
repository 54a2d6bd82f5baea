//! The trie tables as a write batch under construction sees them: the batch's own writes over
//! the stored ones.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::ops::Bound;

use alloy_trie::{BranchNodeCompact, Nibbles};
use storage_api::iter::prefix_end;
use storage_api::{Blob, Direction, KvReader, KvWrite, ReadExt, WriteBatch};

use super::node::{self, TrieNode};
use super::walk::{Known, Leaves, TrieRead, walk};
use super::{Changes, EMPTY_ROOT};
use crate::error::ChainError;
use crate::model::ChainModel;
use crate::schema::{ChainMeta, MetaKey, TrieLeaves, TrieNodes, TrieRoots};

/// Whether the state trie is built (its meta key is set).
pub(crate) fn is_built<S: KvReader, M: ChainModel>(store: &S) -> Result<bool, ChainError> {
    Ok(store.get::<ChainMeta<M>>(&(MetaKey::StateTrie as u8))?.is_some())
}

/// The trie tables under a batch's writes (`None`: deleted).
pub(crate) struct Overlay<'s, S, M> {
    store: &'s S,
    nodes: BTreeMap<Vec<u8>, Option<BranchNodeCompact>>,
    leaves: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    roots: BTreeMap<[u8; 32], Option<[u8; 32]>>,
    _model: PhantomData<fn() -> M>,
}

impl<'s, S: KvReader, M: ChainModel> Overlay<'s, S, M> {
    /// No writes yet (also the read-only view of the tables).
    pub(crate) fn new(store: &'s S) -> Self {
        Overlay { store, nodes: BTreeMap::new(), leaves: BTreeMap::new(), roots: BTreeMap::new(), _model: PhantomData }
    }

    /// Writes the leaves `changes` of trie `ns` and updates its branch nodes; returns its root.
    pub(crate) fn apply(&mut self, ns: &[u8], changes: Changes) -> Result<[u8; 32], ChainError> {
        let mut changed = Vec::with_capacity(changes.len());
        let mut known = Vec::with_capacity(changes.len());
        for (path, leaf) in changes {
            let mut packed = [0u8; 32];
            path.pack_to(&mut packed);
            let key = node::leaf_key(ns, &packed);
            let stored = match self.leaves.get(&key) {
                Some(v) => v.is_some(),
                None => self.store.get::<TrieLeaves<M>>(&key)?.is_some(),
            };
            known.push(match (&leaf, stored) {
                (Some(v), true) => Known::Replaced(v.clone()),
                (Some(v), false) => Known::New(v.clone()),
                (None, true) => Known::Deleted,
                (None, false) => Known::Nothing,
            });
            self.leaves.insert(key, leaf);
            changed.push(path);
        }
        let walked = walk(self, ns, &changed, &known, None)?;
        for prefix in &walked.rebuilt {
            for p in self.node_paths(ns, prefix)? {
                self.nodes.insert(node::node_key(ns, &p), None);
            }
        }
        for p in &walked.removed {
            self.nodes.insert(node::node_key(ns, p), None);
        }
        for (p, n) in walked.updates {
            self.nodes.insert(node::node_key(ns, &p), Some(n));
        }
        Ok(walked.root.0)
    }

    /// Records the root of `owner`'s storage trie.
    pub(crate) fn set_storage_root(&mut self, owner: [u8; 32], root: [u8; 32]) {
        self.roots.insert(owner, (root != EMPTY_ROOT).then_some(root));
    }

    /// The root of `owner`'s storage trie (empty if it has none).
    pub(crate) fn storage_root(&self, owner: &[u8; 32]) -> Result<[u8; 32], ChainError> {
        if let Some(r) = self.roots.get(owner) {
            return Ok(r.unwrap_or(EMPTY_ROOT));
        }
        Ok(self.store.get::<TrieRoots<M>>(&owner.to_vec())?.unwrap_or(EMPTY_ROOT))
    }

    /// Queues the overlay's writes into `batch`, sorted by key.
    pub(crate) fn write_into<'b, B: KvWrite + 'b>(
        self,
        batch: &mut WriteBatch<B::Batch<'b>>,
    ) -> Result<(), ChainError> {
        for (k, v) in self.leaves {
            match v {
                Some(v) => batch.put::<TrieLeaves<M>>(&k, &Blob(v))?,
                None => batch.delete::<TrieLeaves<M>>(&k)?,
            };
        }
        for (k, v) in self.nodes {
            match v {
                Some(n) => batch.put::<TrieNodes<M>>(&k, &TrieNode(n))?,
                None => batch.delete::<TrieNodes<M>>(&k)?,
            };
        }
        for (owner, root) in self.roots {
            match root {
                Some(r) => batch.put::<TrieRoots<M>>(&owner.to_vec(), &r)?,
                None => batch.delete::<TrieRoots<M>>(&owner.to_vec())?,
            };
        }
        Ok(())
    }

    /// Stored nodes with keys from `start` (up to `end`, exclusive), in order, until `f` says
    /// stop (the batch's writes not included).
    fn stored_nodes(
        &self,
        start: &[u8],
        end: Option<Vec<u8>>,
        mut f: impl FnMut(Vec<u8>, BranchNodeCompact) -> bool,
    ) -> Result<(), ChainError> {
        let range = (Bound::Included(start.to_vec()), end.map_or(Bound::Unbounded, Bound::Excluded));
        for entry in self.store.iter::<TrieNodes<M>>(range, Direction::Forward)? {
            let (k, TrieNode(n)) = entry?;
            if !f(k, n) {
                break;
            }
        }
        Ok(())
    }
}

impl<S: KvReader, M: ChainModel> TrieRead for Overlay<'_, S, M> {
    fn first_node(&self, ns: &[u8], prefix: &Nibbles) -> Result<Option<(Nibbles, BranchNodeCompact)>, ChainError> {
        let start = node::node_key(ns, prefix);
        // A node at the prefix itself is the first under it: a point read (cheaper than a
        // seek) finds it in the common case, a branch right below its parent.
        match self.nodes.get(&start) {
            Some(Some(n)) => return Ok(Some((*prefix, n.clone()))),
            Some(None) => {}
            None => {
                if let Some(TrieNode(n)) = self.store.get::<TrieNodes<M>>(&start)? {
                    return Ok(Some((*prefix, n)));
                }
            }
        }
        let under = |k: &[u8]| k.starts_with(&start);
        // The batch's first live node under the prefix bounds the scan of the stored ones.
        let written = self.nodes.range(start.clone()..).take_while(|(k, _)| under(k)).find(|(_, v)| v.is_some());
        let bound = written.map(|(k, _)| k.as_slice());
        let end = match bound {
            Some(b) => Some(b.to_vec()),
            None => prefix_end(&start),
        };
        let mut stored = None;
        self.stored_nodes(&start, end, |k, n| {
            if self.nodes.contains_key(&k) {
                return true; // overwritten or deleted by the batch: look further
            }
            stored = Some((k, n));
            false
        })?;
        let first = match (stored, written) {
            (Some(s), _) => s,
            (None, Some((k, Some(n)))) => (k.clone(), n.clone()),
            (None, _) => return Ok(None),
        };
        Ok(Some((node::node_path(ns, &first.0)?, first.1)))
    }

    fn node_paths(&self, ns: &[u8], prefix: &Nibbles) -> Result<Vec<Nibbles>, ChainError> {
        let start = node::node_key(ns, prefix);
        let under = |k: &[u8]| k.starts_with(&start);
        let mut keys = std::collections::BTreeSet::new();
        self.stored_nodes(&start, prefix_end(&start), |k, _| {
            keys.insert(k);
            true
        })?;
        for (k, v) in self.nodes.range(start.clone()..).take_while(|(k, _)| under(k)) {
            match v {
                Some(_) => keys.insert(k.clone()),
                None => keys.remove(k),
            };
        }
        keys.iter().map(|k| node::node_path(ns, k)).collect()
    }

    fn leaves(&self, ns: &[u8], prefix: &Nibbles, cap: Option<usize>) -> Result<Option<Leaves>, ChainError> {
        let (start, end) = node::leaf_bounds(ns, prefix);
        let mut stored = Vec::new();
        let range = (Bound::Included(start.clone()), end.clone().map_or(Bound::Unbounded, Bound::Excluded));
        for entry in self.store.iter::<TrieLeaves<M>>(range, Direction::Forward)? {
            if cap.is_some_and(|c| stored.len() == c) {
                return Ok(None);
            }
            let (k, Blob(v)) = entry?;
            stored.push((k, v));
        }
        let written = self.leaves.range(start..).take_while(|(k, _)| end.as_ref().is_none_or(|e| *k < e));
        // Both in key order: merge, the batch's writes winning.
        let mut out = Vec::with_capacity(stored.len());
        let mut stored = stored.into_iter().peekable();
        for (k, v) in written {
            while let Some((s, _)) = stored.peek()
                && s < k
            {
                let (s, sv) = stored.next().expect("peeked");
                out.push((Nibbles::unpack(&s[ns.len()..]), sv));
            }
            if stored.peek().is_some_and(|(s, _)| s == k) {
                stored.next();
            }
            if let Some(v) = v {
                out.push((Nibbles::unpack(&k[ns.len()..]), v.clone()));
            }
        }
        out.extend(stored.map(|(s, sv)| (Nibbles::unpack(&s[ns.len()..]), sv)));
        Ok(Some(out))
    }
}
