//! Ethereum for node-storage's chain store: [`Eth`], a [`ChainModel`] on alloy's types.
//!
//! * Keccak-256 block and transaction hashes; every transaction type alloy knows (legacy,
//!   EIP-2930, EIP-1559, EIP-4844, EIP-7702), stored in their EIP-2718 encoding; receipts with a
//!   status or (before Byzantium) a post-state root, stored without their bloom (it follows
//!   from the logs); ommers and withdrawals ([`EthBody`]).
//! * Inserts check the header's transactions root, ommers hash, withdrawals root, receipts root
//!   and logs bloom against the block; a block that fails is refused.
//! * The chain store's bloom index uses Ethereum's bloom bits, laid out so a header's 256-byte
//!   bloom is a stored bloom as it is.
//! * Senders are recovered from the signatures before insert ([`senders`]), in parallel across
//!   cores, and stored once by the chain store.
//! * [`portal`] decodes blocks in the Portal network's formats (the mainnet test data);
//!   [`generator`] makes mainnet-shaped synthetic blocks with real signatures.
//! * [`era1`] reads and writes era1 archives (accumulator and index checked); [`import`]
//!   moves them in and out of a chain store through its bulk path, checking mainnet's files
//!   against the published pre-merge [`accumulator`].
//! * [`header_proof`] keeps the nodes of pre-merge epoch accumulator trees beside the chain
//!   ([`Eth`]'s own table) and proves headers as the Portal network does.
//! * [`inclusion`] proves a block's transactions and receipts (Merkle-Patricia proofs against
//!   the header's roots) and verifies such proofs without a store.

pub mod accumulator;
pub mod era1;
pub mod generator;
pub mod header_proof;
pub mod import;
pub mod inclusion;
pub mod portal;
pub mod senders;
mod types;

pub use alloy_consensus;
use alloy_consensus::proofs::{calculate_ommers_root, calculate_withdrawals_root, ordered_trie_root_with_encoder};
use alloy_eips::eip2718::Encodable2718;
pub use alloy_primitives;
use alloy_primitives::{Address, B256, keccak256};
use alloy_trie::TrieAccount;
use chain_store::{BlockHeader, Bloom, ChainModel, Log, Mismatch, Receipt, Transaction, TriePlace};
pub use types::{EthBody, EthHeader, EthLog, EthReceipt, EthStateKey, EthStateValue, EthTx};

/// Ethereum's chain model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Eth;

fn mismatch(what: &str, claimed: B256, computed: B256) -> Mismatch {
    Mismatch { what: what.to_owned(), claimed: claimed.to_string(), computed: computed.to_string() }
}

/// The transactions root of `txs`.
pub fn transactions_root(txs: &[EthTx]) -> B256 {
    ordered_trie_root_with_encoder(txs, |tx, buf| tx.0.encode_2718(buf))
}

/// The receipts root of `receipts`.
pub fn receipts_root(receipts: &[EthReceipt]) -> B256 {
    receipts_root_and_bloom(receipts).0
}

/// The receipts root of `receipts` and the block's logs bloom: each receipt's bloom is
/// computed once (Keccak-256 of every log address and topic) for both its encoding under the
/// root and the block's bloom, their union; each receipt is encoded in place
/// ([`EthReceipt::encode_2718_with_bloom`]).
pub fn receipts_root_and_bloom(receipts: &[EthReceipt]) -> (B256, alloy_primitives::Bloom) {
    let blooms: Vec<alloy_primitives::Bloom> = receipts.iter().map(EthReceipt::bloom).collect();
    let mut block = alloy_primitives::Bloom::ZERO;
    for b in &blooms {
        block.accrue_bloom(b);
    }
    let items: Vec<(&EthReceipt, &alloy_primitives::Bloom)> = receipts.iter().zip(&blooms).collect();
    let root = ordered_trie_root_with_encoder(&items, |(r, bloom), buf| r.encode_2718_with_bloom(bloom, buf));
    (root, block)
}

impl ChainModel for Eth {
    const SCHEMA_NAME: &'static str = "chain-eth";
    /// Receipts are stored as their RLP encoding, which holds addresses and topics as they are.
    const LOG_ITEMS_VERBATIM: bool = true;
    type Hash = B256;
    type Address = Address;
    type Header = EthHeader;
    type Tx = EthTx;
    type Receipt = EthReceipt;
    type Log = EthLog;
    type BodyExtra = EthBody;
    type StateKey = EthStateKey;
    type StateValue = EthStateValue;

    /// The block hash against the header's RLP, and the transactions root, ommers hash and
    /// withdrawals root against the body.
    fn verify_body(header: &EthHeader, transactions: &[EthTx], extra: &EthBody) -> Result<(), Mismatch> {
        let h = &header.header;
        let hash = h.hash_slow();
        if hash != header.hash {
            return Err(mismatch("the block hash", header.hash, hash));
        }
        let root = transactions_root(transactions);
        if root != h.transactions_root {
            return Err(mismatch("the transactions root", h.transactions_root, root));
        }
        let ommers = calculate_ommers_root(&extra.ommers);
        if ommers != h.ommers_hash {
            return Err(mismatch("the ommers hash", h.ommers_hash, ommers));
        }
        match (&h.withdrawals_root, &extra.withdrawals) {
            (None, None) => {}
            (Some(claimed), Some(w)) => {
                let root = calculate_withdrawals_root(w);
                if root != *claimed {
                    return Err(mismatch("the withdrawals root", *claimed, root));
                }
            }
            (claimed, given) => {
                return Err(Mismatch {
                    what: "the withdrawals".into(),
                    claimed: format!("a withdrawals root {}", if claimed.is_some() { "present" } else { "absent" }),
                    computed: format!("a body {} withdrawals", if given.is_some() { "with" } else { "without" }),
                });
            }
        }
        Ok(())
    }

    /// The receipts root against the receipts (each encoded with its bloom); returns the
    /// block's bloom, computed on the way (Ethereum's bloom bytes are the store's).
    fn verify_receipts(header: &EthHeader, receipts: &[EthReceipt]) -> Result<Option<Bloom>, Mismatch> {
        let (root, bloom) = receipts_root_and_bloom(receipts);
        if root != header.header.receipts_root {
            return Err(mismatch("the receipts root", header.header.receipts_root, root));
        }
        Ok(Some(Bloom::from_bytes(bloom.0.0)))
    }

    /// Ethereum's three 11-bit slices of the item's Keccak-256, mirrored (`2047 - b`) into the
    /// chain store's bit order, which makes the store's bloom bytes Ethereum's.
    fn bloom_positions(item: &[u8]) -> [u16; 3] {
        let h = keccak256(item);
        let bit = |i: usize| 2047 - ((u16::from(h[i]) << 8 | u16::from(h[i + 1])) & 2047);
        [bit(0), bit(2), bit(4)]
    }

    fn header_bloom(header: &EthHeader) -> Option<Bloom> {
        Some(Bloom::from_bytes(header.header.logs_bloom.0.0))
    }

    /// Ethereum's tries: an account at Keccak-256 of its address in the account trie; a slot
    /// at Keccak-256 of the slot in its account's storage trie.
    fn trie_place(key: &EthStateKey) -> TriePlace<EthStateKey> {
        let owner = keccak256(key.address).0;
        match key.slot {
            None => TriePlace::Top { path: owner },
            Some(slot) => TriePlace::Storage {
                account: EthStateKey { address: key.address, slot: None },
                owner,
                path: keccak256(slot).0,
            },
        }
    }

    /// An account's leaf is the RLP of (nonce, balance, storage root, code hash); a slot's the
    /// RLP of its value, and a zero slot has none.
    fn trie_leaf(value: &EthStateValue, storage_root: [u8; 32]) -> Option<Vec<u8>> {
        match value {
            EthStateValue::Account { nonce, balance, code_hash } => Some(alloy_rlp::encode(TrieAccount {
                nonce: *nonce,
                balance: *balance,
                storage_root: B256::from(storage_root),
                code_hash: *code_hash,
            })),
            EthStateValue::Slot(v) if v.is_zero() => None,
            EthStateValue::Slot(v) => Some(alloy_rlp::encode(v)),
        }
    }

    fn header_state_root(header: &EthHeader) -> Option<[u8; 32]> {
        Some(header.header.state_root.0)
    }

    fn with_model_tables(schema: storage_api::Schema) -> storage_api::Schema {
        schema.with::<header_proof::EpochNodes>()
    }
}

impl BlockHeader<Eth> for EthHeader {
    fn hash(&self) -> B256 {
        self.hash
    }
    fn parent_hash(&self) -> B256 {
        self.header.parent_hash
    }
    fn number(&self) -> u64 {
        self.header.number
    }
}

impl Transaction<Eth> for EthTx {
    fn hash(&self) -> B256 {
        EthTx::hash(self)
    }
    /// Ethereum transactions do not carry their sender: it is recovered from the signature
    /// ([`senders`]) and given with the block.
    fn sender(&self) -> Option<Address> {
        None
    }
    fn to(&self) -> Option<Address> {
        EthTx::to(self)
    }
}

impl Receipt<Eth> for EthReceipt {
    fn logs(&self) -> &[EthLog] {
        &self.logs
    }
}

impl Log<Eth> for EthLog {
    fn address(&self) -> Address {
        self.0.address
    }
    fn topics(&self) -> &[B256] {
        self.0.data.topics()
    }
}
