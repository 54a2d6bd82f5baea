//! The chain model: the traits a node's own block, transaction, receipt and log types
//! implement so the store can index and check them.
//!
//! The store needs only a few facts about each type (hashes, heights, addresses, topics) and
//! asks the model to check a block's body and receipts against its header; the rest of the
//! node's data rides along, serialised with serde (postcard). [`crate::synthetic`] is a ready
//! synthetic model; `chain-eth` is Ethereum's.

use std::fmt::{self, Debug};
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use storage_api::{KeyCodec, PostcardValue};

use crate::bloom::Bloom;

/// A fixed-width identifier: block and transaction hashes, topics, addresses. Foreign types
/// (alloy's `B256` and `Address`, say) qualify through standard traits alone: the store keys
/// its tables with them through its own wrapper ([`crate::schema::Fixed`]), which writes the
/// bytes `as_ref` gives and reads them back with `try_from`.
///
/// The encoded width is the type's size in memory, so an `Id` must be a plain byte-array
/// newtype (as hashes and addresses are); [`crate::ChainStore::new`] checks this once.
pub trait Id:
    Copy
    + Eq
    + Ord
    + Hash
    + Debug
    + Default
    + Serialize
    + DeserializeOwned
    + AsRef<[u8]>
    + for<'a> TryFrom<&'a [u8]>
    + Send
    + Sync
    + 'static
{
}
impl<T> Id for T where
    T: Copy
        + Eq
        + Ord
        + Hash
        + Debug
        + Default
        + Serialize
        + DeserializeOwned
        + AsRef<[u8]>
        + for<'a> TryFrom<&'a [u8]>
        + Send
        + Sync
        + 'static
{
}

/// Data the store keeps as a value: serialisable, cloneable, thread-safe.
pub trait Data: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static {}
impl<T> Data for T where T: Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static {}

/// A block part that does not match its header: what was checked, and both values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// What was checked (`transactions root`, `block hash`, …).
    pub what: String,
    /// What the header (or the part itself) claims.
    pub claimed: String,
    /// What the content computes to.
    pub computed: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {} but the content gives {}", self.what, self.claimed, self.computed)
    }
}

/// A node's chain types, bundled. Implement it on a marker type.
pub trait ChainModel: Sized + Send + Sync + 'static {
    /// The name of this model's chain schema (stored in every database it writes), so a store
    /// written with one model is refused by another (`WrongSchema`) instead of decoding as
    /// garbage.
    const SCHEMA_NAME: &'static str;
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
    /// What a block body holds besides its transactions (Ethereum: ommers and withdrawals;
    /// `()` where there is nothing), stored with the block and covered by
    /// [`ChainModel::verify_body`].
    type BodyExtra: Data + PartialEq + Default;
    /// A key of the world state, with an order-preserving encoding.
    type StateKey: KeyCodec + Clone + Ord + Hash + Debug + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// A value of the world state.
    type StateValue: Data + PartialEq;

    /// Checks a block's body against its header: the block hash against the header's content
    /// and every commitment the header makes to the body (transactions, ommers, withdrawals…).
    /// Inserts refuse a block that fails, writing nothing.
    fn verify_body(header: &Self::Header, transactions: &[Self::Tx], extra: &Self::BodyExtra) -> Result<(), Mismatch>;

    /// Checks a block's receipts against its header's commitment to them, where it has one.
    ///
    /// Returns the block's bloom where the check computed it on the way (Ethereum's receipts
    /// root covers each receipt's bloom), so the store does not hash every log item again;
    /// `None` lets the store compute it from the logs with [`ChainModel::bloom_positions`]. A
    /// returned bloom must be that same computation (the store compares it with the header's
    /// and stores it).
    fn verify_receipts(header: &Self::Header, receipts: &[Self::Receipt]) -> Result<Option<Bloom>, Mismatch>;

    /// The three bits (of [`crate::BLOOM_BITS`]) that a log address or topic sets in a block's
    /// bloom. Part of the stored format of the bloom tables.
    fn bloom_positions(item: &[u8]) -> [u16; 3];

    /// Whether a receipt's stored encoding (its `Serialize` form in postcard) holds each of its
    /// logs' address and topics byte for byte, as their `AsRef<[u8]>` gives them. Log filters
    /// then pass over a candidate block whose stored receipts lack the bytes the filter asks
    /// for without decoding them (a bloom false positive costs a byte search, not a decode of
    /// every receipt). `false` for an encoding that transforms them (compression, say): every
    /// candidate is decoded.
    const LOG_ITEMS_VERBATIM: bool;

    /// The logs bloom the header carries, in the store's layout, if the model's headers carry
    /// one: inserts then check the receipts against it, and a block taken from a trusted header
    /// alone still has its bloom.
    fn header_bloom(header: &Self::Header) -> Option<Bloom>;

    /// Where a state key's leaf sits in the state commitment ([`crate::trie`]): the state
    /// trie, or the storage trie of an account.
    fn trie_place(key: &Self::StateKey) -> TriePlace<Self::StateKey>;

    /// The leaf value the commitment holds for `value` (`None`: no leaf, as Ethereum drops
    /// zero storage slots). `storage_root` is the root of the storage trie owned by the key's
    /// own path (the empty root when it has none); models without storage tries ignore it.
    fn trie_leaf(value: &Self::StateValue, storage_root: [u8; 32]) -> Option<Vec<u8>>;

    /// The state root the header commits to, if the model's headers carry one: with
    /// [`crate::ChainStore::with_state_root_check`], a block whose state writes give another
    /// root is refused.
    fn header_state_root(header: &Self::Header) -> Option<[u8; 32]>;

    /// Decodes a block's transactions as chain schema 1 stored them (the postcard list behind
    /// the version byte), for the migration to schema 2. A model whose transactions serialise
    /// as they did then keeps this; one that changed overrides it.
    fn decode_v1_transactions(payload: &[u8]) -> Result<Vec<Self::Tx>, storage_api::codec::CodecError> {
        storage_api::codec::postcard_decode(payload)
    }

    /// `schema` with the model's own tables added (kept beside the chain store's, written and
    /// read by the model's crate: Ethereum keeps its header accumulator's nodes). A model
    /// without tables of its own returns `schema` as it is.
    fn with_model_tables(schema: storage_api::Schema) -> storage_api::Schema {
        schema
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
}

/// What the store needs from a transaction.
pub trait Transaction<M: ChainModel> {
    /// The transaction's hash.
    fn hash(&self) -> M::Hash;
    /// The sender, when the transaction carries it as data (a synthetic model); `None` when it
    /// must be recovered from the signature, in which case the caller supplies it with the block
    /// ([`NewBlock::senders`]) and the store keeps it.
    fn sender(&self) -> Option<M::Address>;
    /// The recipient; `None` for contract creation.
    fn to(&self) -> Option<M::Address>;
}

/// What the store needs from a receipt.
pub trait Receipt<M: ChainModel> {
    /// The logs it emitted, in order.
    fn logs(&self) -> &[M::Log];
}

/// What the store needs from a log.
pub trait Log<M: ChainModel> {
    /// The emitting contract.
    fn address(&self) -> M::Address;
    /// Indexed topics (at most four are filtered on).
    fn topics(&self) -> &[M::Hash];
}

/// A block: header, transactions and the rest of its body.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct Block<M: ChainModel> {
    /// The header.
    pub header: M::Header,
    /// The transactions, in order.
    pub transactions: Vec<M::Tx>,
    /// The rest of the body (see [`ChainModel::BodyExtra`]).
    pub extra: M::BodyExtra,
}

impl<M: ChainModel> Block<M> {
    /// A block with no body beyond its transactions.
    pub fn new(header: M::Header, transactions: Vec<M::Tx>) -> Self {
        Block { header, transactions, extra: M::BodyExtra::default() }
    }

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

/// Everything inserted for one block: the block, its receipts (one per transaction, in order),
/// its transactions' senders and its state writes.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct NewBlock<M: ChainModel> {
    /// The block.
    pub block: Block<M>,
    /// One receipt per transaction.
    pub receipts: Vec<M::Receipt>,
    /// One sender per transaction, in order: the recovered senders of a model whose
    /// transactions do not carry them ([`Transaction::sender`]), stored once so no reader
    /// recovers them again. May be left empty when every transaction carries its sender.
    pub senders: Vec<M::Address>,
    /// The state writes the block's execution made.
    pub state: Vec<StateWrite<M>>,
}

impl<M: ChainModel> NewBlock<M> {
    /// A block whose transactions carry their senders.
    pub fn new(block: Block<M>, receipts: Vec<M::Receipt>, state: Vec<StateWrite<M>>) -> Self {
        NewBlock { block, receipts, senders: Vec::new(), state }
    }
}

// Derives would demand the marker type `M` itself be `Clone`, `Debug`, `PartialEq`.
impl<M: ChainModel> Clone for Block<M> {
    fn clone(&self) -> Self {
        Block { header: self.header.clone(), transactions: self.transactions.clone(), extra: self.extra.clone() }
    }
}
impl<M: ChainModel> std::fmt::Debug for Block<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("header", &self.header)
            .field("transactions", &self.transactions)
            .field("extra", &self.extra)
            .finish()
    }
}
impl<M: ChainModel> PartialEq for Block<M>
where
    M::Header: PartialEq,
    M::Tx: PartialEq,
{
    fn eq(&self, other: &Self) -> bool {
        self.header == other.header && self.transactions == other.transactions && self.extra == other.extra
    }
}
impl<M: ChainModel> Clone for NewBlock<M> {
    fn clone(&self) -> Self {
        NewBlock {
            block: self.block.clone(),
            receipts: self.receipts.clone(),
            senders: self.senders.clone(),
            state: self.state.clone(),
        }
    }
}
impl<M: ChainModel> std::fmt::Debug for NewBlock<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewBlock")
            .field("block", &self.block)
            .field("receipts", &self.receipts)
            .field("senders", &self.senders)
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
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

impl Bloom {
    /// The bloom of every log address and topic in `receipts`, with `M`'s bit positions.
    pub fn of_receipts<'r, M: ChainModel>(receipts: impl IntoIterator<Item = &'r M::Receipt>) -> Self {
        let mut bloom = Bloom::default();
        for r in receipts {
            for log in r.logs() {
                bloom.accrue(M::bloom_positions(log.address().as_ref()));
                for t in log.topics() {
                    bloom.accrue(M::bloom_positions(t.as_ref()));
                }
            }
        }
        bloom
    }
}

/// Where a state entry sits in the model's commitment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriePlace<K> {
    /// A leaf of the state trie at this hashed path (and the owner of a storage trie at the same
    /// path, if the model has storage tries: its root goes into this leaf).
    Top {
        /// The leaf's path: a 32-byte hash of the key.
        path: [u8; 32],
    },
    /// A leaf of the storage trie of `account`.
    Storage {
        /// The key of the account whose storage trie this is.
        account: K,
        /// The account's path in the state trie (its storage trie's owner).
        owner: [u8; 32],
        /// The leaf's path in the storage trie.
        path: [u8; 32],
    },
}
