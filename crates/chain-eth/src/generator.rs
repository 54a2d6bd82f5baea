//! Mainnet-shaped synthetic blocks for benchmarks: the transaction count, type mix, call-data
//! sizes, logs per transaction and topics per log of London-era mainnet (calibrated on the
//! three mainnet blocks in the test data: see [`MAINNET_LONDON`] and the test that re-derives
//! it), with real secp256k1 signatures (so sender recovery is real work), correct
//! transactions, receipts and ommers roots and blooms, and account and storage state writes.

use alloy_consensus::{
    EMPTY_OMMER_ROOT_HASH, Eip658Value, Header, SignableTransaction, TxEip1559, TxEnvelope, TxLegacy, TxType,
};
use alloy_primitives::{
    Address, B64, B256, Bloom as EthBloom, Bytes, Log, LogData, Signature, TxKind, U256, keccak256,
};
use chain_store::generator::SplitMix;
use chain_store::{Block, NewBlock, StateWrite};
use secp256k1::{Message, SECP256K1, SecretKey};

use crate::{
    Eth, EthBody, EthHeader, EthLog, EthReceipt, EthStateKey, EthStateValue, EthTx, receipts_root, transactions_root,
};

/// The shape of the synthetic chain.
#[derive(Debug, Clone, PartialEq)]
pub struct EthShape {
    /// Transactions per block.
    pub txs_per_block: usize,
    /// Share of EIP-1559 transactions (the rest are legacy, EIP-155).
    pub eip1559_share: f64,
    /// Mean call-data bytes of a contract call.
    pub calldata_bytes: usize,
    /// Share of transactions that call a contract (the rest are plain transfers).
    pub contract_call_share: f64,
    /// Mean logs per transaction.
    pub logs_per_tx: f64,
    /// Mean data bytes per log.
    pub log_data_bytes: usize,
}

/// London-era mainnet, from blocks 15,040,708–15,040,710 (586 transactions, 1,549 logs);
/// `chain-eth`'s tests re-derive these figures from the data.
pub const MAINNET_LONDON: EthShape = EthShape {
    txs_per_block: 195,
    eip1559_share: 0.92,
    calldata_bytes: 2_058,
    contract_call_share: 0.77,
    logs_per_tx: 2.64,
    log_data_bytes: 30,
};

/// Generates a chain of mainnet-shaped blocks.
#[derive(Debug)]
pub struct EthGenerator {
    shape: EthShape,
    keys: Vec<(SecretKey, Address)>,
    nonces: Vec<u64>,
    contracts: Vec<Address>,
    rng: SplitMix,
    head: Option<EthHeader>,
}

/// Accounts that send transactions (each has a key).
const ACCOUNTS: usize = 512;
/// Contracts that are called and emit logs.
const CONTRACTS: usize = 256;
/// Mainnet's chain id, for EIP-155 and EIP-1559 signatures.
pub const CHAIN_ID: u64 = 1;

impl EthGenerator {
    /// A generator of `shape` blocks, deterministic for `seed`.
    pub fn new(shape: EthShape, seed: u64) -> Self {
        let keys = (0..ACCOUNTS as u64)
            .map(|i| {
                let mut k =
                    keccak256([b"chain-eth generator key".as_slice(), &seed.to_be_bytes(), &i.to_be_bytes()].concat());
                // A valid secret key: below the curve order (which a random 256-bit value almost
                // always is).
                k.0[0] &= 0x7f;
                let sk = SecretKey::from_byte_array(&k.0).expect("a key below the curve order is valid");
                let pk = sk.public_key(SECP256K1).serialize_uncompressed();
                (sk, Address::from_slice(&keccak256(&pk[1..])[12..]))
            })
            .collect();
        let contracts = (0..CONTRACTS as u64)
            .map(|i| Address::from_slice(&keccak256([b"contract".as_slice(), &i.to_be_bytes()].concat())[12..]))
            .collect();
        EthGenerator { shape, keys, nonces: vec![0; ACCOUNTS], contracts, rng: SplitMix::new(seed), head: None }
    }

    /// The shape.
    pub fn shape(&self) -> &EthShape {
        &self.shape
    }

    /// The `i`-th account that sends transactions (`i` below 512).
    pub fn account(&self, i: usize) -> Address {
        self.keys[i % ACCOUNTS].1
    }

    /// The `i`-th contract (`0` is the hottest).
    pub fn contract(&self, i: usize) -> Address {
        self.contracts[i % CONTRACTS]
    }

    /// The next block of the chain (genesis first, with no transactions), with receipts,
    /// senders and state writes.
    pub fn next_block(&mut self) -> NewBlock<Eth> {
        let parent = self.head.take();
        let block = self.child(parent.as_ref());
        self.head = Some(block.block.header.clone());
        block
    }

    /// A new block on `parent` (genesis if `None`) that does not move the chain the generator
    /// extends: a sibling of a main-chain block, for a side branch. Each call gives a different
    /// block.
    pub fn child(&mut self, parent: Option<&EthHeader>) -> NewBlock<Eth> {
        let number = parent.map_or(0, |p| p.header.number + 1);
        let count = if parent.is_none() { 0 } else { self.shape.txs_per_block };
        let mut txs = Vec::with_capacity(count);
        let mut receipts = Vec::with_capacity(count);
        let mut senders = Vec::with_capacity(count);
        let mut state: Vec<StateWrite<Eth>> = Vec::with_capacity(3 * count);
        let mut gas = 0u64;
        for _ in 0..count {
            let who = self.rng.below(ACCOUNTS as u64) as usize;
            let (key, sender) = self.keys[who];
            let nonce = self.nonces[who];
            self.nonces[who] += 1;
            let call = self.chance(self.shape.contract_call_share);
            let to = if call {
                let i = self.skewed(CONTRACTS);
                self.contracts[i]
            } else {
                let i = self.rng.below(ACCOUNTS as u64) as usize;
                self.keys[i].1
            };
            let input = if call {
                let len = self.around(self.shape.calldata_bytes);
                self.bytes(len)
            } else {
                Bytes::new()
            };
            let gas_used = 21_000 + 16 * input.len() as u64 + if call { self.rng.below(120_000) } else { 0 };
            let value = U256::from(self.rng.below(1 << 40));
            let (tx, tx_type) = if self.chance(self.shape.eip1559_share) {
                let tx = TxEip1559 {
                    chain_id: CHAIN_ID,
                    nonce,
                    gas_limit: gas_used + 50_000,
                    max_fee_per_gas: 40_000_000_000,
                    max_priority_fee_per_gas: 1_500_000_000,
                    to: TxKind::Call(to),
                    value,
                    access_list: Default::default(),
                    input,
                };
                let sig = sign(&key, tx.signature_hash());
                (TxEnvelope::from(tx.into_signed(sig)), TxType::Eip1559)
            } else {
                let tx = TxLegacy {
                    chain_id: Some(CHAIN_ID),
                    nonce,
                    gas_price: 30_000_000_000,
                    gas_limit: gas_used + 50_000,
                    to: TxKind::Call(to),
                    value,
                    input,
                };
                let sig = sign(&key, tx.signature_hash());
                (TxEnvelope::from(tx.into_signed(sig)), TxType::Legacy)
            };
            gas += gas_used;
            let logs = if call { self.logs(to, sender) } else { Vec::new() };
            receipts.push(EthReceipt { tx_type, status: Eip658Value::Eip658(true), cumulative_gas_used: gas, logs });
            txs.push(EthTx(tx));
            senders.push(sender);
            let balance = U256::from(self.rng.next_u64());
            state.push((
                EthStateKey { address: sender, slot: None },
                Some(EthStateValue::Account {
                    nonce: nonce + 1,
                    balance,
                    code_hash: alloy_consensus::constants::KECCAK_EMPTY,
                }),
            ));
            if call {
                let slot = B256::from(U256::from(self.rng.below(64)));
                state.push((
                    EthStateKey { address: to, slot: Some(slot) },
                    Some(EthStateValue::Slot(U256::from(self.rng.next_u64()))),
                ));
            }
        }
        let mut bloom = EthBloom::ZERO;
        for r in &receipts {
            bloom |= r.bloom();
        }
        let beneficiary = {
            let i = self.rng.below(ACCOUNTS as u64) as usize;
            self.keys[i].1
        };
        let header = Header {
            parent_hash: parent.map_or(B256::ZERO, |p| p.hash),
            ommers_hash: EMPTY_OMMER_ROOT_HASH,
            beneficiary,
            state_root: B256::from(U256::from(self.rng.next_u64())),
            transactions_root: transactions_root(&txs),
            receipts_root: receipts_root(&receipts),
            logs_bloom: bloom,
            difficulty: U256::ZERO,
            number,
            gas_limit: 30_000_000,
            gas_used: gas,
            timestamp: 1_656_000_000 + 12 * number,
            extra_data: Bytes::from_static(b"node-storage"),
            mix_hash: B256::from(U256::from(self.rng.next_u64())),
            nonce: B64::ZERO,
            base_fee_per_gas: Some(15_000_000_000),
            ..Header::default()
        };
        let header = EthHeader::new(header);
        let block = Block { header, transactions: txs, extra: EthBody::default() };
        NewBlock { block, receipts, senders, state }
    }

    fn logs(&mut self, contract: Address, sender: Address) -> Vec<EthLog> {
        // Mean `logs_per_tx` over all transactions, all emitted by contract calls.
        let mean = self.shape.logs_per_tx / self.shape.contract_call_share.max(0.01);
        let n = (self.rng.unit() * 2.0 * mean).round() as usize;
        (0..n)
            .map(|_| {
                let event = B256::from(U256::from(self.rng.below(32)));
                let topics =
                    vec![keccak256(event), sender.into_word(), B256::from(U256::from(self.rng.below(1 << 20)))];
                let len = self.around(self.shape.log_data_bytes);
                let data = self.bytes(len);
                EthLog(Log { address: contract, data: LogData::new_unchecked(topics, data) })
            })
            .collect()
    }

    fn chance(&mut self, p: f64) -> bool {
        self.rng.unit() < p
    }

    /// A size around `mean` (uniform in 0..2·mean).
    fn around(&mut self, mean: usize) -> usize {
        (self.rng.unit() * 2.0 * mean as f64) as usize
    }

    /// An index skewed to the front (a few contracts are hot).
    fn skewed(&mut self, n: usize) -> usize {
        let u = self.rng.unit();
        ((u * u * u) * n as f64) as usize
    }

    fn bytes(&mut self, len: usize) -> Bytes {
        let mut out = vec![0u8; len];
        self.rng.fill(&mut out);
        Bytes::from(out)
    }
}

/// Signs `hash` with `key` (recoverable ECDSA, as Ethereum transactions are signed).
fn sign(key: &SecretKey, hash: B256) -> Signature {
    let sig = SECP256K1.sign_ecdsa_recoverable(&Message::from_digest(hash.0), key);
    let (id, compact) = sig.serialize_compact();
    Signature::from_scalars_and_parity(
        B256::from_slice(&compact[..32]),
        B256::from_slice(&compact[32..]),
        i32::from(id) == 1,
    )
}
