//! The stored form of a branch node and the keys of the trie tables.

use alloy_trie::Nibbles;
use storage_api::codec::CodecError;
use storage_api::error::{Part, ReadError};

use crate::error::ChainError;

pub use crate::schema::TrieNode;

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
