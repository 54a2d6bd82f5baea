//! Ethereum's block, transaction, receipt and state types for the chain store: alloy's types,
//! stored in their canonical encodings (RLP, EIP-2718) rather than through serde's field by
//! field form. A value is what every other client would write; decoding checks it whole.

use alloy_consensus::{
    Eip658Value, Header, Receipt as AlloyReceipt, ReceiptEnvelope, ReceiptWithBloom, TxEnvelope, TxType,
};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_eips::eip4895::Withdrawals;
use alloy_primitives::{Address, B256, Bloom as EthBloom, Log, U256, keccak256};
use alloy_rlp::{Decodable, Encodable};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use storage_api::KeyCodec;
use storage_api::codec::CodecError;

/// Serialises through a type's canonical byte encoding.
macro_rules! serde_as_bytes {
    ($t:ty, $encode:expr, $decode:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let encode: fn(&$t) -> Vec<u8> = $encode;
                serializer.serialize_bytes(&encode(self))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let bytes: serde_bytes::ByteBuf = Deserialize::deserialize(deserializer)?;
                let decode: fn(&[u8]) -> Result<$t, String> = $decode;
                decode(&bytes).map_err(D::Error::custom)
            }
        }
    };
}

/// Decodes `T` from exactly `bytes` (RLP).
fn rlp_exact<T: Decodable>(mut bytes: &[u8], what: &str) -> Result<T, String> {
    let value = T::decode(&mut bytes).map_err(|e| format!("{what}: {e}"))?;
    if !bytes.is_empty() {
        return Err(format!("{what}: {} trailing bytes", bytes.len()));
    }
    Ok(value)
}

/// A block header and its hash (Keccak-256 of its RLP encoding, computed once).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthHeader {
    /// The header.
    pub header: Header,
    /// Its hash.
    pub hash: B256,
}

impl EthHeader {
    /// Seals `header`: computes its hash.
    pub fn new(header: Header) -> Self {
        let hash = header.hash_slow();
        EthHeader { header, hash }
    }

    /// The header's RLP encoding.
    pub fn rlp(&self) -> Vec<u8> {
        alloy_rlp::encode(&self.header)
    }

    /// Decodes a header's RLP encoding (and hashes it).
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let header: Header = rlp_exact(bytes, "header")?;
        Ok(EthHeader { header, hash: keccak256(bytes) })
    }
}

serde_as_bytes!(EthHeader, EthHeader::rlp, EthHeader::decode);

/// A signed transaction of any type (legacy, EIP-2930, EIP-1559, EIP-4844, EIP-7702).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthTx(pub TxEnvelope);

impl EthTx {
    /// The transaction's EIP-2718 encoding (what the transactions root and its hash cover).
    pub fn encoded(&self) -> Vec<u8> {
        self.0.encoded_2718()
    }

    /// Decodes an EIP-2718 encoding, whole.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut buf = bytes;
        let tx = TxEnvelope::decode_2718(&mut buf).map_err(|e| format!("transaction: {e}"))?;
        if !buf.is_empty() {
            return Err(format!("transaction: {} trailing bytes", buf.len()));
        }
        Ok(EthTx(tx))
    }

    /// The transaction's hash.
    pub fn hash(&self) -> B256 {
        *self.0.tx_hash()
    }

    /// The recipient (`None` for contract creation).
    pub fn to(&self) -> Option<Address> {
        alloy_consensus::Transaction::to(&self.0)
    }
}

serde_as_bytes!(EthTx, EthTx::encoded, EthTx::decode);

/// A receipt: the transaction type, status (EIP-658, or the post-state root before
/// Byzantium), cumulative gas and logs. The bloom is not stored: it follows from the logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthReceipt {
    /// The type of the transaction it belongs to.
    pub tx_type: TxType,
    /// Status code, or the pre-Byzantium post-state root.
    pub status: Eip658Value,
    /// Gas used by the block up to and including this transaction.
    pub cumulative_gas_used: u64,
    /// The logs, in order.
    pub logs: Vec<EthLog>,
}

impl EthReceipt {
    /// From the EIP-2718 receipt envelope a block's receipts root covers.
    pub fn from_envelope(envelope: ReceiptEnvelope) -> Self {
        let tx_type = envelope.tx_type();
        let receipt = envelope.as_receipt().cloned().unwrap_or_default();
        EthReceipt {
            tx_type,
            status: receipt.status,
            cumulative_gas_used: receipt.cumulative_gas_used,
            logs: receipt.logs.into_iter().map(EthLog).collect(),
        }
    }

    /// The envelope with its bloom computed from the logs (what the receipts root covers).
    pub fn to_envelope(&self) -> ReceiptEnvelope {
        let receipt = AlloyReceipt {
            status: self.status,
            cumulative_gas_used: self.cumulative_gas_used,
            logs: self.logs.iter().map(|l| l.0.clone()).collect::<Vec<Log>>(),
        };
        let with_bloom = ReceiptWithBloom::new(receipt, self.bloom());
        match self.tx_type {
            TxType::Legacy => ReceiptEnvelope::Legacy(with_bloom),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(with_bloom),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(with_bloom),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(with_bloom),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(with_bloom),
        }
    }

    /// Appends this receipt's EIP-2718 encoding with `bloom` (its own logs' bloom, which the
    /// caller computed) to `out`: what the receipts root covers, the bytes of
    /// [`EthReceipt::to_envelope`]'s encoding, written from the receipt in place (no envelope,
    /// no copy of the logs).
    pub fn encode_2718_with_bloom(&self, bloom: &EthBloom, out: &mut Vec<u8>) {
        if self.tx_type != TxType::Legacy {
            out.push(self.tx_type as u8);
        }
        let payload = self.status.length() + self.cumulative_gas_used.length() + bloom.length() + self.logs.length();
        alloy_rlp::Header { list: true, payload_length: payload }.encode(out);
        self.status.encode(out);
        self.cumulative_gas_used.encode(out);
        bloom.encode(out);
        self.logs.encode(out);
    }

    /// The logs bloom of this receipt.
    pub fn bloom(&self) -> EthBloom {
        let mut bloom = EthBloom::ZERO;
        for log in &self.logs {
            bloom.accrue_log(&log.0);
        }
        bloom
    }

    /// Stored form: the type byte, then the RLP list (status, cumulative gas, logs).
    fn encode(&self) -> Vec<u8> {
        let payload = self.status.length() + self.cumulative_gas_used.length() + self.logs.length();
        let mut out = Vec::with_capacity(1 + payload + 5);
        out.push(self.tx_type as u8);
        alloy_rlp::Header { list: true, payload_length: payload }.encode(&mut out);
        self.status.encode(&mut out);
        self.cumulative_gas_used.encode(&mut out);
        self.logs.encode(&mut out);
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let (&ty, mut rest) = bytes.split_first().ok_or("receipt: empty")?;
        let tx_type = TxType::try_from(ty).map_err(|e| format!("receipt: {e}"))?;
        let header = alloy_rlp::Header::decode(&mut rest).map_err(|e| format!("receipt: {e}"))?;
        if !header.list || header.payload_length != rest.len() {
            return Err("receipt: not one RLP list".into());
        }
        let status = Eip658Value::decode(&mut rest).map_err(|e| format!("receipt status: {e}"))?;
        let cumulative_gas_used = u64::decode(&mut rest).map_err(|e| format!("receipt gas: {e}"))?;
        let logs = Vec::<EthLog>::decode(&mut rest).map_err(|e| format!("receipt logs: {e}"))?;
        if !rest.is_empty() {
            return Err(format!("receipt: {} trailing bytes", rest.len()));
        }
        Ok(EthReceipt { tx_type, status, cumulative_gas_used, logs })
    }
}

serde_as_bytes!(EthReceipt, EthReceipt::encode, EthReceipt::decode);

/// A log as stored in receipts (alloy's log: address, topics, data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EthLog(pub Log);

impl Encodable for EthLog {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.0.encode(out)
    }
    fn length(&self) -> usize {
        self.0.length()
    }
}

impl Decodable for EthLog {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        Log::decode(buf).map(EthLog)
    }
}

fn encode_log(log: &EthLog) -> Vec<u8> {
    alloy_rlp::encode(&log.0)
}

fn decode_log(bytes: &[u8]) -> Result<EthLog, String> {
    rlp_exact(bytes, "log").map(EthLog)
}

serde_as_bytes!(EthLog, encode_log, decode_log);

/// What an Ethereum block body holds besides its transactions: the ommer (uncle) headers
/// and, from Shanghai on, the withdrawals; plus the block's total difficulty where the block
/// came with one (era1 archives carry it; it is what their accumulator commits to).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EthBody {
    /// Ommer headers (empty since the Merge).
    pub ommers: Vec<Header>,
    /// Withdrawals (`None` before Shanghai).
    pub withdrawals: Option<Withdrawals>,
    /// The chain's total difficulty at this block, if known. Not covered by the header: an
    /// era1 import checks it against the archive's accumulator; nothing else checks it.
    pub total_difficulty: Option<U256>,
}

impl EthBody {
    /// Stored form: RLP list [ommers, withdrawals?, total difficulty?]; withdrawals (a list)
    /// and the total difficulty (a string) are told apart by their RLP kind.
    fn encode(&self) -> Vec<u8> {
        let w_len = self.withdrawals.as_ref().map_or(0, Encodable::length);
        let td_len = self.total_difficulty.as_ref().map_or(0, Encodable::length);
        let payload = self.ommers.length() + w_len + td_len;
        let mut out = Vec::with_capacity(payload + 5);
        alloy_rlp::Header { list: true, payload_length: payload }.encode(&mut out);
        self.ommers.encode(&mut out);
        if let Some(w) = &self.withdrawals {
            w.encode(&mut out);
        }
        if let Some(td) = &self.total_difficulty {
            td.encode(&mut out);
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, String> {
        let mut rest = bytes;
        let header = alloy_rlp::Header::decode(&mut rest).map_err(|e| format!("body: {e}"))?;
        if !header.list || header.payload_length != rest.len() {
            return Err("body: not one RLP list".into());
        }
        let ommers = Vec::<Header>::decode(&mut rest).map_err(|e| format!("ommers: {e}"))?;
        let next_is_list = |r: &[u8]| r.first().is_some_and(|b| *b >= 0xc0);
        let withdrawals = if next_is_list(rest) {
            Some(Withdrawals::decode(&mut rest).map_err(|e| format!("withdrawals: {e}"))?)
        } else {
            None
        };
        let total_difficulty = if rest.is_empty() {
            None
        } else {
            Some(U256::decode(&mut rest).map_err(|e| format!("total difficulty: {e}"))?)
        };
        if !rest.is_empty() {
            return Err(format!("body: {} trailing bytes", rest.len()));
        }
        Ok(EthBody { ommers, withdrawals, total_difficulty })
    }
}

serde_as_bytes!(EthBody, EthBody::encode, EthBody::decode);

/// A key of Ethereum's world state: an account, or one storage slot of an account. Encoded as
/// the address, then `0` for the account or `1` and the slot, so an account's record sorts
/// just before its slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EthStateKey {
    /// The account.
    pub address: Address,
    /// The storage slot, or `None` for the account itself.
    pub slot: Option<B256>,
}

impl KeyCodec for EthStateKey {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.address.as_slice());
        match &self.slot {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(s.as_slice());
            }
        }
    }

    fn decode_key(bytes: &[u8]) -> Result<Self, CodecError> {
        let address =
            Address::try_from(bytes.get(..20).ok_or(CodecError::Length { expected: 21, found: bytes.len() })?)
                .map_err(|_| CodecError::Length { expected: 21, found: bytes.len() })?;
        match &bytes[20..] {
            [0] => Ok(EthStateKey { address, slot: None }),
            [1, rest @ ..] if rest.len() == 32 => Ok(EthStateKey { address, slot: Some(B256::from_slice(rest)) }),
            other => Err(CodecError::Length { expected: 21, found: 20 + other.len() }),
        }
    }
}

/// A value of Ethereum's world state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum EthStateValue {
    /// An account: nonce, balance, code hash (its storage root follows from its slots).
    Account {
        /// The nonce.
        nonce: u64,
        /// The balance, wei.
        balance: U256,
        /// Keccak-256 of the code.
        code_hash: B256,
    },
    /// A storage slot's value.
    Slot(U256),
}

#[cfg(test)]
mod tests {
    use alloy_primitives::{Bytes, LogData};

    use super::*;

    /// The in-place encoding is the envelope's, for every transaction type and both kinds of
    /// status (EIP-658 and the pre-Byzantium post-state root), with and without logs.
    #[test]
    fn receipt_encoded_in_place_is_the_envelopes_encoding() {
        let log = |i: u8| {
            let topics = (0..i % 5).map(|t| B256::repeat_byte(i.wrapping_add(t))).collect();
            EthLog(Log {
                address: Address::repeat_byte(i),
                data: LogData::new_unchecked(topics, Bytes::from(vec![i; usize::from(i) * 7])),
            })
        };
        let types = [TxType::Legacy, TxType::Eip2930, TxType::Eip1559, TxType::Eip4844, TxType::Eip7702];
        let statuses =
            [Eip658Value::Eip658(true), Eip658Value::Eip658(false), Eip658Value::PostState(B256::repeat_byte(9))];
        for (i, (tx_type, status)) in types.iter().flat_map(|t| statuses.iter().map(move |s| (t, s))).enumerate() {
            let receipt = EthReceipt {
                tx_type: *tx_type,
                status: *status,
                cumulative_gas_used: (21_000 * (i as u64 + 1)) << (i % 40),
                logs: (0..i as u8 % 4).map(|j| log(j * 13 + i as u8)).collect(),
            };
            let mut encoded = Vec::new();
            receipt.encode_2718_with_bloom(&receipt.bloom(), &mut encoded);
            assert_eq!(encoded, receipt.to_envelope().encoded_2718(), "{tx_type:?}, {status:?}");
        }
    }
}
