//! The chain model: the traits a node's own block, transaction, receipt and log types
//! implement so the store can index them.
//!
//! The store needs only a few facts about each type (hashes, numbers, addresses, topics); the
//! rest of the node's data rides along, serialised with serde (postcard). [`crate::evm`] is a
//! ready EVM-style implementation.

use std::fmt::Debug;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use storage_api::codec::FixedWidthKey;
use storage_api::{KeyCodec, PostcardValue};

/// A fixed-width identifier: block and transaction hashes, topics, addresses.
pub trait Id:
    FixedWidthKey + Copy + Eq + Ord + Hash + Debug + Serialize + DeserializeOwned + AsRef<[u8]> + Send + Sync + 'static
{
}
impl<T> Id for T where
    T: FixedWidthKey
        + Copy
        + Eq
        + Ord
        + Hash
        + Debug
        + Serialize
        + DeserializeOwned
        + AsRef<[u8]>
        + Send
        + Sync
        + 'static
{
}

/// Data the store keeps as a value: serialisable, cloneable, thread-safe.
pub trait Data: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T> Data for T where T: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static {}

/// A node's chain types, bundled. Implement it on a marker type.
pub trait ChainModel: Sized + Send + Sync + 'static {
    /// Block and transaction hashes, and log topics.
    type Hash: Id;
    /// Account addresses.
    type Address: Id;
    /// The block header.
    type Header: BlockHeader<Self> + Data;
    /// A transaction.
    type Tx: Transaction<Self> + Data;
    /// A transaction's receipt.
    type Receipt: Receipt<Self> + Data;
    /// A log (event) emitted by a transaction.
    type Log: Log<Self> + Data;
    /// A key of the world state, with an order-preserving encoding.
    type StateKey: KeyCodec + Clone + Ord + Hash + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// A value of the world state.
    type StateValue: Data + PartialEq;

    /// The hash the block's content hashes to, if the model can compute it; `None` skips the
    /// check.
    fn compute_block_hash(_header: &Self::Header, _transactions: &[Self::Tx]) -> Option<Self::Hash> {
        None
    }

    /// The hash the transaction's content hashes to, if the model can compute it.
    fn compute_tx_hash(_tx: &Self::Tx) -> Option<Self::Hash> {
        None
    }
}

/// What the store needs from a block header.
pub trait BlockHeader<M: ChainModel> {
    /// The block's hash.
    fn hash(&self) -> M::Hash;
    /// The parent block's hash.
    fn parent_hash(&self) -> M::Hash;
    /// The block's height.
    fn number(&self) -> u64;
    /// The block's timestamp (seconds since the Unix epoch).
    fn timestamp(&self) -> u64;
}

/// What the store needs from a transaction.
pub trait Transaction<M: ChainModel> {
    /// The transaction's hash.
    fn hash(&self) -> M::Hash;
    /// The sender.
    fn from(&self) -> M::Address;
    /// The recipient; `None` for contract creation.
    fn to(&self) -> Option<M::Address>;
}

/// What the store needs from a receipt.
pub trait Receipt<M: ChainModel> {
    /// Whether the transaction succeeded.
    fn success(&self) -> bool;
    /// Gas the transaction used.
    fn gas_used(&self) -> u64;
    /// The logs it emitted, in order.
    fn logs(&self) -> &[M::Log];
}

/// What the store needs from a log.
pub trait Log<M: ChainModel> {
    /// The emitting contract.
    fn address(&self) -> M::Address;
    /// Indexed topics (at most four are filtered on).
    fn topics(&self) -> &[M::Hash];
    /// The unindexed data.
    fn data(&self) -> &[u8];
}

/// A block: header and transactions.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Block<M: ChainModel> {
    /// The header.
    pub header: M::Header,
    /// The transactions, in order.
    pub transactions: Vec<M::Tx>,
}

impl<M: ChainModel> Block<M> {
    /// The block's hash.
    pub fn hash(&self) -> M::Hash {
        self.header.hash()
    }

    /// The block's height.
    pub fn number(&self) -> u64 {
        self.header.number()
    }

    /// A reference to this block.
    pub fn block_ref(&self) -> BlockRef<M::Hash> {
        BlockRef { number: self.number(), hash: self.hash() }
    }
}

/// One state write of a block: the key and its new value (`None` deletes it).
pub type StateWrite<M> = (<M as ChainModel>::StateKey, Option<<M as ChainModel>::StateValue>);

/// Everything inserted for one block: the block, its receipts (one per transaction, in order)
/// and its state writes.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct NewBlock<M: ChainModel> {
    /// The block.
    pub block: Block<M>,
    /// One receipt per transaction.
    pub receipts: Vec<M::Receipt>,
    /// The state writes the block's execution made.
    pub state: Vec<StateWrite<M>>,
}

// Derives would demand the marker type `M` itself be `Clone`, `Debug`, `PartialEq`.
impl<M: ChainModel> Clone for Block<M> {
    fn clone(&self) -> Self {
        Block { header: self.header.clone(), transactions: self.transactions.clone() }
    }
}
impl<M: ChainModel> std::fmt::Debug for Block<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block").field("header", &self.header).field("transactions", &self.transactions).finish()
    }
}
impl<M: ChainModel> PartialEq for Block<M>
where
    M::Header: PartialEq,
    M::Tx: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header && self.transactions == other.transactions
    }
}
impl<M: ChainModel> Clone for NewBlock<M> {
    fn clone(&self) -> Self {
        NewBlock { block: self.block.clone(), receipts: self.receipts.clone(), state: self.state.clone() }
    }
}
impl<M: ChainModel> std::fmt::Debug for NewBlock<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewBlock")
            .field("block", &self.block)
            .field("receipts", &self.receipts)
            .field("state", &self.state)
            .finish()
    }
}

/// A block's height and hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct BlockRef<H> {
    /// The height.
    pub number: u64,
    /// The hash.
    pub hash: H,
}

/// Where a transaction is: the block and its position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxLocation<H> {
    /// The block's height.
    pub number: u64,
    /// The block's hash.
    pub block: H,
    /// The transaction's index in the block.
    pub index: u32,
}

impl<H: Serialize + DeserializeOwned> PostcardValue for TxLocation<H> {}

/// Lowercase hex with a `0x` prefix, for messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}
