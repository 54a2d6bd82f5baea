//! The stored form of a branch node and the keys of the trie tables.

use alloy_primitives::B256;
use alloy_trie::{BranchNodeCompact, Nibbles, TrieMask};
use storage_api::ValueCodec;
use storage_api::error::{Part, ReadError};

use crate::error::ChainError;
use storage_api::codec::{CodecError, split_version};

/// A stored branch node (alloy-trie's compact form): its three masks, the hashes of its hashed
/// children and, for the root, the trie's root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrieNode(pub BranchNodeCompact);

impl TrieNode {
    /// The value format written by this build.
    pub const FORMAT_VERSION: u8 = 1;
}

/// Format 1: version, state mask, tree mask, hash mask (u16 little-endian each), a root flag
/// (0/1) and the root hash if set, then the child hashes (as many as the hash mask has bits).
impl ValueCodec for TrieNode {
    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        let n = &self.0;
        out.push(Self::FORMAT_VERSION);
        for mask in [n.state_mask, n.tree_mask, n.hash_mask] {
            out.extend_from_slice(&mask.get().to_le_bytes());
        }
        match n.root_hash {
            Some(root) => {
                out.push(1);
                out.extend_from_slice(root.as_slice());
            }
            None => out.push(0),
        }
        for h in n.hashes.iter() {
            out.extend_from_slice(h.as_slice());
        }
        Ok(())
    }

    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        let payload = match split_version(bytes)? {
            (Self::FORMAT_VERSION, p) => p,
            (v, _) => return Err(CodecError::UnknownVersion { found: v, supported: Self::FORMAT_VERSION }),
        };
        let corrupt = |what: &str| CodecError::Corrupt(format!("trie node: {what}"));
        if payload.len() < 7 {
            return Err(CodecError::Length { expected: 7, found: payload.len() });
        }
        let mask = |i: usize| TrieMask::new(u16::from_le_bytes([payload[i], payload[i + 1]]));
        let (state, tree, hash) = (mask(0), mask(2), mask(4));
        if !tree.is_subset_of(state) || !hash.is_subset_of(state) {
            return Err(corrupt("a tree or hash mask outside the state mask"));
        }
        let (root, rest) = match payload[6] {
            0 => (None, &payload[7..]),
            1 if payload.len() >= 39 => (Some(B256::from_slice(&payload[7..39])), &payload[39..]),
            _ => return Err(corrupt("bad root flag")),
        };
        if rest.len() != 32 * hash.count_ones() as usize {
            return Err(CodecError::Length { expected: 32 * hash.count_ones() as usize, found: rest.len() });
        }
        let hashes = rest.chunks_exact(32).map(B256::from_slice).collect();
        Ok(TrieNode(BranchNodeCompact::new(state, tree, hash, hashes, root)))
    }
}

/// The namespace of the state trie (the only trie of a single-trie model; Ethereum's account
/// trie).
pub(crate) const TOP: u8 = 0;
/// The namespace prefix of a storage trie (followed by its owner's 32-byte hashed key).
pub(crate) const STORAGE: u8 = 1;

/// The key prefix of trie `owner` (`None`: the state trie).
pub(crate) fn namespace(owner: Option<&[u8; 32]>) -> Vec<u8> {
    match owner {
        None => vec![TOP],
        Some(o) => {
            let mut ns = Vec::with_capacity(33);
            ns.push(STORAGE);
            ns.extend_from_slice(o);
            ns
        }
    }
}

/// A branch node's key: namespace ‖ one byte per nibble (so a path sorts before the paths
/// under it, and a prefix scan finds a subtree).
pub(crate) fn node_key(ns: &[u8], path: &Nibbles) -> Vec<u8> {
    let mut key = Vec::with_capacity(ns.len() + path.len());
    key.extend_from_slice(ns);
    key.extend(path.to_vec());
    key
}

/// The path of a node key of namespace `ns`.
pub(crate) fn node_path(ns: &[u8], key: &[u8]) -> Result<Nibbles, ChainError> {
    let nibbles = &key[ns.len()..];
    if nibbles.len() > 64 || nibbles.iter().any(|n| *n > 0xf) {
        return Err(ChainError::Read(ReadError::Decode {
            table: "trie_nodes",
            part: Part::Key,
            source: CodecError::Corrupt("not a nibble path".into()),
        }));
    }
    Ok(Nibbles::from_nibbles_unchecked(nibbles))
}

/// A leaf's key: namespace ‖ the 32-byte hashed key.
pub(crate) fn leaf_key(ns: &[u8], path: &[u8; 32]) -> Vec<u8> {
    let mut key = Vec::with_capacity(ns.len() + 32);
    key.extend_from_slice(ns);
    key.extend_from_slice(path);
    key
}

/// The leaf keys of namespace `ns` under nibble prefix `prefix`: from the first, up to the
/// exclusive end (`None`: to the end of the table).
pub(crate) fn leaf_bounds(ns: &[u8], prefix: &Nibbles) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut start = ns.to_vec();
    start.extend(prefix.pack());
    let nibbles = prefix.to_vec();
    let end = match nibbles.iter().rposition(|n| *n < 0xf) {
        // The prefix cut after its last nibble below f, that nibble raised: the first path past
        // every path under the prefix.
        Some(i) => {
            let mut next = nibbles[..=i].to_vec();
            next[i] += 1;
            let mut end = ns.to_vec();
            end.extend(Nibbles::from_nibbles_unchecked(next).pack());
            Some(end)
        }
        None => storage_api::iter::prefix_end(ns),
    };
    (start, end)
}
