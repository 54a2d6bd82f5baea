//! The default EVM-style model: 32-byte hashes, 20-byte addresses, logs with up to four
//! topics, state as (address, slot) → 32-byte word.
//!
//! Hashes are BLAKE3 (domain-separated), not Keccak: the store checks that a block's and each
//! transaction's hash matches its content, and this model is for tests, benchmarks and the
//! CLI rather than consensus.

use std::fmt;

use serde::{Deserialize, Serialize};
use storage_api::newtype_key;

use crate::bloom::Bloom;
use crate::model::{BlockHeader, ChainModel, Log, Mismatch, Receipt, Transaction, hex};

/// A 32-byte hash or word.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct B256(pub [u8; 32]);
newtype_key!(B256, [u8; 32]);

impl TryFrom<&[u8]> for B256 {
    type Error = std::array::TryFromSliceError;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        bytes.try_into().map(B256)
    }
}

/// A 20-byte account address.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address(pub [u8; 20]);
newtype_key!(Address, [u8; 20]);

impl TryFrom<&[u8]> for Address {
    type Error = std::array::TryFromSliceError;
    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        bytes.try_into().map(Address)
    }
}

macro_rules! bytes_newtype {
    ($t:ty) => {
        impl AsRef<[u8]> for $t {
            fn as_ref(&self) -> &[u8] {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex(&self.0))
            }
        }
    };
}
bytes_newtype!(B256);
bytes_newtype!(Address);

impl B256 {
    /// A word holding `v` big-endian in its last eight bytes.
    pub fn from_u64(v: u64) -> Self {
        let mut w = [0u8; 32];
        w[24..].copy_from_slice(&v.to_be_bytes());
        B256(w)
    }
}

/// A block header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticHeader {
    /// The block's hash: [`SyntheticHeader::compute_hash`].
    pub hash: B256,
    /// The parent's hash.
    pub parent_hash: B256,
    /// The height.
    pub number: u64,
    /// Seconds since the Unix epoch.
    pub timestamp: u64,
    /// The block producer.
    pub beneficiary: Address,
    /// Gas used by all transactions.
    pub gas_used: u64,
    /// The gas limit.
    pub gas_limit: u64,
    /// Commitment to the transactions: [`tx_root`].
    pub tx_root: B256,
    /// The post-state commitment (opaque to the store).
    pub state_root: B256,
    /// Extra data.
    #[serde(with = "serde_bytes")]
    pub extra: Vec<u8>,
}

impl SyntheticHeader {
    /// The hash of every field except `hash`.
    pub fn compute_hash(&self) -> B256 {
        self.hash_with_tx_root(&self.tx_root)
    }

    /// The hash of every field except `hash`, with `tx_root` in place of the header's own.
    fn hash_with_tx_root(&self, tx_root: &B256) -> B256 {
        let mut h = blake3::Hasher::new_derive_key("node-storage evm header v1");
        h.update(&self.parent_hash.0);
        h.update(&self.number.to_be_bytes());
        h.update(&self.timestamp.to_be_bytes());
        h.update(&self.beneficiary.0);
        h.update(&self.gas_used.to_be_bytes());
        h.update(&self.gas_limit.to_be_bytes());
        h.update(&tx_root.0);
        h.update(&self.state_root.0);
        h.update(&(self.extra.len() as u64).to_be_bytes());
        h.update(&self.extra);
        B256(*h.finalize().as_bytes())
    }
}

/// The commitment to a block's transactions: a hash over their hashes, in order.
pub fn tx_root(transactions: &[SyntheticTx]) -> B256 {
    let mut h = blake3::Hasher::new_derive_key("node-storage evm tx root v1");
    h.update(&(transactions.len() as u64).to_be_bytes());
    for tx in transactions {
        h.update(&tx.hash.0);
    }
    B256(*h.finalize().as_bytes())
}

/// A transaction. Its hash and addresses serialise as byte strings (one length and a copy)
/// rather than as arrays of single bytes, which decode several times faster; chain schema 1
/// stored the arrays ([`EvmTxV1`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticTx {
    /// The hash: [`SyntheticTx::compute_hash`].
    #[serde(with = "as_bytes")]
    pub hash: B256,
    /// The sender.
    #[serde(with = "as_bytes")]
    pub from: Address,
    /// The recipient (`None` creates a contract).
    #[serde(with = "as_bytes_opt")]
    pub to: Option<Address>,
    /// The sender's nonce.
    pub nonce: u64,
    /// Value transferred (wei).
    pub value: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Call data.
    #[serde(with = "serde_bytes")]
    pub input: Vec<u8>,
}

/// A transaction as chain schema 1 stored it (hash and addresses as arrays of bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvmTxV1 {
    /// The hash.
    pub hash: B256,
    /// The sender.
    pub from: Address,
    /// The recipient.
    pub to: Option<Address>,
    /// The nonce.
    pub nonce: u64,
    /// Value transferred.
    pub value: u128,
    /// Gas limit.
    pub gas_limit: u64,
    /// Call data.
    #[serde(with = "serde_bytes")]
    pub input: Vec<u8>,
}

impl From<EvmTxV1> for SyntheticTx {
    fn from(v: EvmTxV1) -> Self {
        SyntheticTx {
            hash: v.hash,
            from: v.from,
            to: v.to,
            nonce: v.nonce,
            value: v.value,
            gas_limit: v.gas_limit,
            input: v.input,
        }
    }
}

impl From<SyntheticTx> for EvmTxV1 {
    fn from(v: SyntheticTx) -> Self {
        EvmTxV1 {
            hash: v.hash,
            from: v.from,
            to: v.to,
            nonce: v.nonce,
            value: v.value,
            gas_limit: v.gas_limit,
            input: v.input,
        }
    }
}

/// Fixed-size byte newtypes as serde byte strings.
mod as_bytes {
    use serde::de::Error;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<T: AsRef<[u8]>, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_ref())
    }

    pub(super) fn deserialize<'de, T: for<'a> TryFrom<&'a [u8]>, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        let bytes: &[u8] = serde::Deserialize::deserialize(d)?;
        T::try_from(bytes).map_err(|_| D::Error::invalid_length(bytes.len(), &"a fixed-size byte string"))
    }
}

/// An optional fixed-size byte newtype as a serde byte string (empty for `None`).
mod as_bytes_opt {
    use serde::de::Error;
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<T: AsRef<[u8]>, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v.as_ref().map_or(&[][..], AsRef::as_ref))
    }

    pub(super) fn deserialize<'de, T: for<'a> TryFrom<&'a [u8]>, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<T>, D::Error> {
        let bytes: &[u8] = serde::Deserialize::deserialize(d)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        T::try_from(bytes).map(Some).map_err(|_| D::Error::invalid_length(bytes.len(), &"a fixed-size byte string"))
    }
}

impl SyntheticTx {
    /// The hash of every field except `hash`.
    pub fn compute_hash(&self) -> B256 {
        let mut h = blake3::Hasher::new_derive_key("node-storage evm tx v1");
        h.update(&self.from.0);
        match &self.to {
            Some(to) => h.update(&[1]).update(&to.0),
            None => h.update(&[0]),
        };
        h.update(&self.nonce.to_be_bytes());
        h.update(&self.value.to_be_bytes());
        h.update(&self.gas_limit.to_be_bytes());
        h.update(&(self.input.len() as u64).to_be_bytes());
        h.update(&self.input);
        B256(*h.finalize().as_bytes())
    }
}

/// A receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticReceipt {
    /// Whether the transaction succeeded.
    pub success: bool,
    /// Gas used by this transaction.
    pub gas_used: u64,
    /// Emitted logs.
    pub logs: Vec<SyntheticLog>,
}

/// A log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyntheticLog {
    /// The emitting contract.
    pub address: Address,
    /// Up to four indexed topics.
    pub topics: Vec<B256>,
    /// Unindexed data.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

/// A state key: an account's storage slot. Slot zero holds the account's balance in this
/// model's synthetic chains.
pub type StorageKey = (Address, B256);

/// The EVM-style model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Synthetic;

impl ChainModel for Synthetic {
    const SCHEMA_NAME: &'static str = crate::schema::SCHEMA_NAME;
    /// Postcard writes the byte arrays of addresses and topics as they are.
    const LOG_ITEMS_VERBATIM: bool = true;
    type Hash = B256;
    type Address = Address;
    type Header = SyntheticHeader;
    type Tx = SyntheticTx;
    type Receipt = SyntheticReceipt;
    type Log = SyntheticLog;
    type BodyExtra = ();
    type StateKey = StorageKey;
    type StateValue = B256;

    /// Each transaction's hash against its content, and the block hash against the header's
    /// content with the transactions actually given (so a body that does not match its header
    /// yields another hash).
    fn verify_body(header: &SyntheticHeader, transactions: &[SyntheticTx], _extra: &()) -> Result<(), Mismatch> {
        for (i, tx) in transactions.iter().enumerate() {
            let computed = tx.compute_hash();
            if computed != tx.hash {
                return Err(Mismatch {
                    what: format!("transaction {i}'s hash"),
                    claimed: tx.hash.to_string(),
                    computed: computed.to_string(),
                });
            }
        }
        let computed = header.hash_with_tx_root(&tx_root(transactions));
        if computed != header.hash {
            return Err(Mismatch {
                what: "the block hash".into(),
                claimed: header.hash.to_string(),
                computed: computed.to_string(),
            });
        }
        Ok(())
    }

    /// The synthetic header makes no commitment to the receipts (the store computes the bloom).
    fn verify_receipts(_header: &SyntheticHeader, _receipts: &[SyntheticReceipt]) -> Result<Option<Bloom>, Mismatch> {
        Ok(None)
    }

    fn bloom_positions(item: &[u8]) -> [u16; 3] {
        crate::bloom::bit_positions(item)
    }

    /// The synthetic header carries no bloom.
    fn header_bloom(_header: &SyntheticHeader) -> Option<crate::Bloom> {
        None
    }

    /// One trie over Keccak-256 of the encoded key (address ‖ slot).
    fn trie_place(key: &StorageKey) -> crate::trie::TriePlace<StorageKey> {
        let mut bytes = Vec::with_capacity(52);
        storage_api::KeyCodec::encode_key(key, &mut bytes);
        crate::trie::TriePlace::Top { path: crate::trie::keccak(&bytes) }
    }

    /// The value as an RLP string of its 32 bytes (every value has a leaf, zero included).
    fn trie_leaf(value: &B256, _storage_root: [u8; 32]) -> Option<Vec<u8>> {
        Some(alloy_rlp::encode(&value.0[..]))
    }

    /// The synthetic header's `state_root` is opaque data (the generator fills it with a
    /// placeholder), so nothing is checked against it.
    fn header_state_root(_header: &SyntheticHeader) -> Option<[u8; 32]> {
        None
    }

    /// Schema 1 stored transactions with their hash and addresses as byte arrays.
    fn decode_v1_transactions(payload: &[u8]) -> Result<Vec<SyntheticTx>, storage_api::codec::CodecError> {
        let v1: Vec<EvmTxV1> = storage_api::codec::postcard_decode(payload)?;
        Ok(v1.into_iter().map(SyntheticTx::from).collect())
    }
}

impl BlockHeader<Synthetic> for SyntheticHeader {
    fn hash(&self) -> B256 {
        self.hash
    }
    fn parent_hash(&self) -> B256 {
        self.parent_hash
    }
    fn number(&self) -> u64 {
        self.number
    }
}

impl Transaction<Synthetic> for SyntheticTx {
    fn hash(&self) -> B256 {
        self.hash
    }
    fn sender(&self) -> Option<Address> {
        Some(self.from)
    }
    fn to(&self) -> Option<Address> {
        self.to
    }
}

impl Receipt<Synthetic> for SyntheticReceipt {
    fn logs(&self) -> &[SyntheticLog] {
        &self.logs
    }
}

impl Log<Synthetic> for SyntheticLog {
    fn address(&self) -> Address {
        self.address
    }
    fn topics(&self) -> &[B256] {
        &self.topics
    }
}
