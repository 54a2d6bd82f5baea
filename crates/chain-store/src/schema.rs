//! The chain's tables and schema.
//!
//! Tables are generic over the [`ChainModel`], so one set of declarations serves every model.
//! Everything per block is keyed by height ‖ block hash rather than by hash alone: pruning is
//! then one range delete per table, and an import appends at the end of each table instead of
//! writing at random positions. A block's transactions, receipts and senders are each one
//! [`Packed`] value whose offset table lets one of them be decoded alone: a transaction,
//! receipt or sender found by hash is one index read ([`TxIndex`]) and one point read, decoding
//! one item; a whole block is one read per table.
//!
//! Hashes and addresses are keys through [`Fixed`], so a model may use foreign types.

use std::marker::PhantomData;

use alloy_primitives::B256;
use alloy_trie::{BranchNodeCompact, TrieMask};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use storage_api::codec::{CodecError, FixedWidthKey, split_version};
use storage_api::table::Access;
use storage_api::{KeyCodec, PostcardValue, Schema, Table, ValueCodec};

use crate::bloom::{Bloom, BloomBits};
use crate::model::{BlockRef, ChainModel, Id, StateWrite, TxLocation};
use crate::packed::Packed;

/// The schema name of the synthetic model's chain databases (each model names its own:
/// [`ChainModel::SCHEMA_NAME`]).
pub const SCHEMA_NAME: &str = "chain";
/// The current chain schema version (see [`crate::migrate`] for the steps from older ones).
pub const SCHEMA_VERSION: u32 = 3;

/// A value stored as postcard behind the chain store's format-version byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Stored<T>(pub T);

impl<T: Serialize + DeserializeOwned> PostcardValue for Stored<T> {}

/// An [`Id`] (hash, address) as a table key: its bytes, fixed width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fixed<T>(pub T);

impl<T: Id> KeyCodec for Fixed<T> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        let bytes = self.0.as_ref();
        debug_assert_eq!(bytes.len(), Self::WIDTH, "an Id must be a plain byte array");
        out.extend_from_slice(bytes);
    }

    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.len() != Self::WIDTH {
            return Err(CodecError::Length { expected: Self::WIDTH, found: bytes.len() });
        }
        T::try_from(bytes).map(Fixed).map_err(|_| CodecError::Length { expected: Self::WIDTH, found: bytes.len() })
    }
}

impl<T: Id> FixedWidthKey for Fixed<T> {
    const WIDTH: usize = std::mem::size_of::<T>();
}

/// Whether `T`'s bytes are as wide as `T` itself (what [`Fixed`] relies on).
pub(crate) fn width_matches<T: Id>() -> bool {
    T::default().as_ref().len() == std::mem::size_of::<T>()
}

/// The key of a block's per-block records: height ‖ hash.
pub type BlockKey<M> = (u64, Fixed<<M as ChainModel>::Hash>);

/// The key of block `b`'s records.
pub(crate) fn block_key<M: ChainModel>(b: &BlockRef<M::Hash>) -> BlockKey<M> {
    (b.number, Fixed(b.hash))
}

macro_rules! chain_tables {
    ($(
        $(#[$meta:meta])*
        $ty:ident($name:literal, $access:ident): $key:ty => $value:ty;
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty<M>(PhantomData<fn() -> M>);
        impl<M: ChainModel> Table for $ty<M> {
            const NAME: &'static str = $name;
            const ACCESS: Access = Access::$access;
            type Key = $key;
            type Value = $value;
        }
    )*};
}

chain_tables! {
    /// Header by block hash, for every block ever inserted (never pruned).
    Headers("headers", Point): Fixed<M::Hash> => Stored<M::Header>;
    /// Per block (height ‖ hash): its transaction count and the rest of its body.
    Bodies("bodies", Point): BlockKey<M> => BodyRecord<M>;
    /// A block's transactions, packed, by height ‖ block hash.
    Transactions("transactions", Point): BlockKey<M> => Packed<M::Tx>;
    /// A block's receipts (one per transaction), packed, by height ‖ block hash.
    Receipts("receipts", Point): BlockKey<M> => Packed<M::Receipt>;
    /// The recovered senders of a block's transactions (for models whose transactions do not
    /// carry them), packed, by height ‖ block hash.
    Senders("senders", Point): BlockKey<M> => Packed<M::Address>;
    /// The canonical chain: block hash by height.
    Canonical("canonical", Range): u64 => Stored<M::Hash>;
    /// Canonical transactions: location by transaction hash.
    TxIndex("tx_index", Point): Fixed<M::Hash> => Stored<TxLocation<M::Hash>>;
    /// Canonical transactions by address (sender and recipient): address ‖ height ‖ index.
    AddressIndex("address_index", Range): (Fixed<M::Address>, u64, u32) => Stored<M::Hash>;
    /// The bloom filter of each canonical block's logs, by height.
    LogBloom("log_bloom", Range): u64 => Bloom;
    /// The sectioned bloom-bit index: section ‖ bit → which blocks of the section set the bit.
    BloomBitsTable("bloom_bits", Range): (u64, u16) => BloomBits;
    /// The world state at the head.
    State("state", Point): M::StateKey => Stored<M::StateValue>;
    /// Each block's state writes and, once applied, the values they replaced (for revert).
    /// Blocks without state writes have none.
    StateChanges("state_changes", Mixed): BlockKey<M> => Stored<ChangeSet<M>>;
    /// The state trie's leaves: trie (`0`: the state trie; `1` ‖ owner: a storage trie) ‖
    /// the 32-byte hashed key → the leaf value the model commits to.
    TrieLeaves("trie_leaves", Range): Vec<u8> => storage_api::Blob;
    /// The state trie's branch nodes: trie ‖ nibble path (one byte per nibble) → the node.
    TrieNodes("trie_nodes", Range): Vec<u8> => TrieNode;
    /// The roots of the storage tries, by owner (the account's 32-byte hashed key).
    TrieRoots("trie_roots", Point): Vec<u8> => [u8; 32];
    /// The state root after each block that made state writes, by height ‖ hash (pruned
    /// with the block's records).
    StateRoots("state_roots", Range): BlockKey<M> => [u8; 32];
    /// Chain-wide records by [`MetaKey`].
    ChainMeta("chain_meta", Point): u8 => Stored<MetaValue<M::Hash>>;
}

/// What [`Bodies`] keeps of a block: how many transactions it has (they are in
/// [`Transactions`]) and the rest of its body.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct BodyRecord<M: ChainModel> {
    /// Transactions (and receipts) in the block.
    pub tx_count: u32,
    /// Whether the block has a [`StateChanges`] entry (it made state writes).
    pub has_changes: bool,
    /// The body beyond the transactions.
    pub extra: M::BodyExtra,
}

/// Value format 2: format 1 of the `bodies` table was the whole transaction list (schema 1).
impl<M: ChainModel> PostcardValue for BodyRecord<M> {
    const FORMAT_VERSION: u8 = 2;
}

impl<M: ChainModel> Clone for BodyRecord<M> {
    fn clone(&self) -> Self {
        BodyRecord { tx_count: self.tx_count, has_changes: self.has_changes, extra: self.extra.clone() }
    }
}
impl<M: ChainModel> std::fmt::Debug for BodyRecord<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BodyRecord")
            .field("tx_count", &self.tx_count)
            .field("has_changes", &self.has_changes)
            .field("extra", &self.extra)
            .finish()
    }
}

/// A block's state writes, sorted by key, and the values they replaced.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ChangeSet<M: ChainModel> {
    /// The writes (key, new value), sorted by key, one per key.
    pub writes: Vec<StateWrite<M>>,
    /// The value each key held before the block (same order as `writes`), recorded when the
    /// block is first applied to the state. A block's parent state never changes, so once
    /// known this stays valid across reorgs.
    pub previous: Option<Vec<Option<M::StateValue>>>,
}

impl<M: ChainModel> Clone for ChangeSet<M> {
    fn clone(&self) -> Self {
        ChangeSet { writes: self.writes.clone(), previous: self.previous.clone() }
    }
}
impl<M: ChainModel> std::fmt::Debug for ChangeSet<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeSet").field("writes", &self.writes).field("previous", &self.previous).finish()
    }
}

/// Keys of the [`ChainMeta`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MetaKey {
    /// The first block of the store (genesis or a trusted checkpoint).
    First = 1,
    /// The canonical head.
    Head = 2,
    /// The safe block.
    Safe = 3,
    /// The finalized block.
    Finalized = 4,
    /// Bodies, receipts and change sets below this height were pruned.
    PrunedBelow = 5,
    /// Bloom-bit sections `0..n` are built.
    BloomSections = 6,
    /// A bulk-import range being committed (first and last height): see `bulk`.
    BulkPending = 7,
    /// Set (to 1) while the state trie is built and maintained: see [`crate::trie`].
    StateTrie = 8,
}

/// A [`ChainMeta`] value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaValue<H> {
    /// A block pointer.
    Block(BlockRef<H>),
    /// A number.
    Number(u64),
    /// A range of heights, both ends included (the pending record of builds before `Import`).
    Range(u64, u64),
    /// A bulk-import range being committed: heights `from..=to`, and the blocks already
    /// stored at those heights when it began (side blocks above the head), which a rollback
    /// must leave as it found them.
    Import {
        /// First height of the range.
        from: u64,
        /// Last height of the range.
        to: u64,
        /// The blocks stored in the range before it began.
        kept: Vec<BlockRef<H>>,
    },
}

/// The chain schema for model `M`, to open a backend with.
pub fn chain_schema<M: ChainModel>() -> Schema {
    M::with_model_tables(chain_tables::<M>())
}

/// The chain store's own tables, without the model's (the schema of a store written before a
/// model added tables of its own).
pub fn chain_tables<M: ChainModel>() -> Schema {
    Schema::new(M::SCHEMA_NAME, SCHEMA_VERSION)
        .with::<Headers<M>>()
        .with::<Bodies<M>>()
        .with::<Transactions<M>>()
        .with::<Receipts<M>>()
        .with::<Senders<M>>()
        .with::<Canonical<M>>()
        .with::<TxIndex<M>>()
        .with::<AddressIndex<M>>()
        .with::<LogBloom<M>>()
        .with::<BloomBitsTable<M>>()
        .with::<State<M>>()
        .with::<StateChanges<M>>()
        .with::<TrieLeaves<M>>()
        .with::<TrieNodes<M>>()
        .with::<TrieRoots<M>>()
        .with::<StateRoots<M>>()
        .with::<ChainMeta<M>>()
}

/// A stored branch node (alloy-trie's compact form): its three masks, the hashes of its hashed
/// children and, for the root, the trie's root hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrieNode(pub BranchNodeCompact);

impl TrieNode {
    /// The value format written by this build: 2, where a hash bit without a tree bit is a
    /// leaf child's hash. Format 1 (branch children hashed only) reads as well; a build that
    /// knows only 1 refuses a 2 rather than misread a leaf's hash as a subtree's.
    pub const FORMAT_VERSION: u8 = 2;
}

/// Formats 1 and 2: version, state mask, tree mask, hash mask (u16 little-endian each), a root
/// flag (0/1) and the root hash if set, then the child hashes (as many as the hash mask has
/// bits).
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
            (1 | Self::FORMAT_VERSION, p) => p,
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

#[cfg(test)]
mod tests {
    use alloy_trie::{BranchNodeCompact, TrieMask};
    use storage_api::codec::{CodecError, ValueCodec};

    use super::TrieNode;

    /// A node with one branch child and one leaf child, both hashed.
    fn node() -> TrieNode {
        let hashes = vec![alloy_primitives::B256::repeat_byte(1), alloy_primitives::B256::repeat_byte(2)];
        TrieNode(BranchNodeCompact::new(TrieMask::new(0b11), TrieMask::new(0b01), TrieMask::new(0b11), hashes, None))
    }

    #[test]
    fn trie_nodes_of_both_formats_read_and_a_newer_one_is_refused() {
        let mut bytes = Vec::new();
        node().encode_value(&mut bytes).unwrap();
        assert_eq!(bytes[0], TrieNode::FORMAT_VERSION);
        assert_eq!(TrieNode::decode_value(&bytes).unwrap(), node());
        bytes[0] = 1;
        assert_eq!(TrieNode::decode_value(&bytes).unwrap(), node(), "format 1 has the same layout");
        bytes[0] = TrieNode::FORMAT_VERSION + 1;
        assert!(matches!(TrieNode::decode_value(&bytes), Err(CodecError::UnknownVersion { .. })));
    }
}
