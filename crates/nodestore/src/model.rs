//! What the CLI needs of a chain model beyond the store's: JSON renderings, the demo's chain,
//! and the state key an address lookup reads. Implemented for the synthetic EVM-style model
//! and for Ethereum; `--model` (or `model =` in the config) picks one.

use node_storage::chain::evm::{Address, B256, Evm, EvmHeader};
use node_storage::chain::generator::{ChainGenerator, GenConfig};
use node_storage::chain::{Block, BlockHeader, ChainModel, NewBlock};
use node_storage::eth::generator::{EthGenerator, MAINNET_LONDON};
use node_storage::eth::{Eth, EthLog, EthReceipt, EthStateKey, EthStateValue, EthTx};
use serde_json::{Value, json};

use crate::output::hex;

/// A chain model the CLI can show and demo.
pub(crate) trait CliModel: ChainModel<Log: LogJson> {
    /// The demo's block source.
    type Demo: DemoChain<Self>;
    /// A fresh demo chain.
    fn demo() -> Self::Demo;
    /// A block, for `get block`.
    fn block_json(block: &Block<Self>) -> Value;
    /// A transaction, for `get tx`.
    fn tx_json(tx: &Self::Tx) -> Value;
    /// A receipt, for `get receipt`.
    fn receipt_json(receipt: &Self::Receipt) -> Value;
    /// The state key `get state ADDRESS` reads (the account's balance).
    fn state_key(address: Self::Address) -> Self::StateKey;
    /// The key of storage slot `slot` of `address`.
    fn slot_key(address: Self::Address, slot: [u8; 32]) -> Self::StateKey;
    /// A state value.
    fn value_json(value: &Self::StateValue) -> Value;
}

/// A log's address and topics, for `logs`.
pub(crate) trait LogJson {
    /// The log as JSON.
    fn json(&self) -> Value;
}

/// A deterministic chain for the demo.
pub(crate) trait DemoChain<M: ChainModel> {
    /// The next main-chain block (genesis first), then any side blocks beside it.
    fn next(&mut self) -> Vec<NewBlock<M>>;
    /// A new block on `parent`, off the main chain (for the demo's reorg).
    fn child_of(&mut self, parent: &M::Header) -> NewBlock<M>;
    /// An address that sends transactions.
    fn account(&self) -> M::Address;
    /// A contract that logs in blocks `0, every, 2·every…` (the log filter's subject) and
    /// `every`.
    fn marker(&self) -> (M::Address, u64);
    /// Default main-chain blocks of the demo.
    const BLOCKS: u64;
}

/// Parses `0x`-prefixed (or bare) hex into an `Id` of the model.
pub(crate) fn parse_id<T: node_storage::chain::Id>(s: &str, what: &str) -> anyhow::Result<T> {
    let t = s.strip_prefix("0x").unwrap_or(s);
    let width = T::default().as_ref().len();
    anyhow::ensure!(t.len() == 2 * width, "{what} `{s}`: expected {} hex digits, got {}", 2 * width, t.len());
    let bytes: Vec<u8> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&t[i..i + 2], 16))
        .collect::<Result<_, _>>()
        .map_err(|_| anyhow::anyhow!("{what} `{s}`: not hex"))?;
    T::try_from(&bytes).map_err(|_| anyhow::anyhow!("{what} `{s}`: {} bytes is the wrong length", bytes.len()))
}

// ---- the synthetic model ----------------------------------------------------------------

pub(crate) struct EvmDemo(ChainGenerator);

impl DemoChain<Evm> for EvmDemo {
    const BLOCKS: u64 = 5_000;
    fn next(&mut self) -> Vec<NewBlock<Evm>> {
        self.0.next_blocks()
    }
    fn child_of(&mut self, parent: &EvmHeader) -> NewBlock<Evm> {
        self.0.child(Some(parent))
    }
    fn account(&self) -> Address {
        ChainGenerator::account(3)
    }
    fn marker(&self) -> (Address, u64) {
        (ChainGenerator::marker_contract(), self.0.config().marker_every)
    }
}

impl LogJson for node_storage::chain::evm::EvmLog {
    fn json(&self) -> Value {
        json!({ "address": hex(self.address.as_ref()), "topics": self.topics.iter().map(|t| hex(t.as_ref())).collect::<Vec<_>>() })
    }
}

impl CliModel for Evm {
    type Demo = EvmDemo;
    fn demo() -> EvmDemo {
        EvmDemo(ChainGenerator::new(GenConfig {
            txs_per_block: 20,
            fork_probability: 0.02,
            marker_every: 100,
            ..GenConfig::default()
        }))
    }
    fn block_json(b: &Block<Evm>) -> Value {
        json!({
            "number": b.header.number, "hash": hex(b.header.hash.as_ref()), "parent": hex(b.header.parent_hash.as_ref()),
            "timestamp": b.header.timestamp, "transactions": b.transactions.iter().map(|t| hex(t.hash.as_ref())).collect::<Vec<_>>(),
        })
    }
    fn tx_json(tx: &node_storage::chain::evm::EvmTx) -> Value {
        serde_json::to_value(tx).unwrap_or(Value::Null)
    }
    fn receipt_json(r: &node_storage::chain::evm::EvmReceipt) -> Value {
        serde_json::to_value(r).unwrap_or(Value::Null)
    }
    fn state_key(address: Address) -> (Address, B256) {
        ChainGenerator::balance_key(address)
    }
    fn slot_key(address: Address, slot: [u8; 32]) -> (Address, B256) {
        (address, B256(slot))
    }
    fn value_json(v: &B256) -> Value {
        json!(hex(v.as_ref()))
    }
}

// ---- Ethereum -------------------------------------------------------------------------------

pub(crate) struct EthDemo(EthGenerator);

impl DemoChain<Eth> for EthDemo {
    /// Mainnet-shaped blocks carry 195 signed transactions each: fewer of them.
    const BLOCKS: u64 = 500;
    fn next(&mut self) -> Vec<NewBlock<Eth>> {
        vec![self.0.next_block()]
    }
    fn child_of(&mut self, parent: &node_storage::eth::EthHeader) -> NewBlock<Eth> {
        self.0.child(Some(parent))
    }
    fn account(&self) -> alloy_primitives::Address {
        self.0.account(3)
    }
    fn marker(&self) -> (alloy_primitives::Address, u64) {
        // The hottest contract logs in nearly every block.
        (self.0.contract(0), 1)
    }
}

impl LogJson for EthLog {
    fn json(&self) -> Value {
        json!({ "address": self.0.address.to_string(), "topics": self.0.data.topics().iter().map(ToString::to_string).collect::<Vec<_>>() })
    }
}

impl CliModel for Eth {
    type Demo = EthDemo;
    fn demo() -> EthDemo {
        EthDemo(EthGenerator::new(MAINNET_LONDON, 7))
    }
    fn block_json(b: &Block<Eth>) -> Value {
        let h = &b.header.header;
        json!({
            "number": h.number, "hash": b.header.hash.to_string(), "parent": h.parent_hash.to_string(),
            "timestamp": h.timestamp, "gas_used": h.gas_used, "base_fee_per_gas": h.base_fee_per_gas,
            "state_root": h.state_root.to_string(), "transactions_root": h.transactions_root.to_string(),
            "receipts_root": h.receipts_root.to_string(), "ommers": b.extra.ommers.len(),
            "withdrawals": b.extra.withdrawals.as_ref().map(|w| w.len()),
            "transactions": b.transactions.iter().map(|t| t.hash().to_string()).collect::<Vec<_>>(),
        })
    }
    fn tx_json(tx: &EthTx) -> Value {
        use alloy_consensus::Transaction;
        json!({
            "hash": tx.hash().to_string(), "type": u8::from(tx.0.tx_type()), "nonce": tx.0.nonce(),
            "to": tx.to().map(|a| a.to_string()), "value": tx.0.value().to_string(), "gas_limit": tx.0.gas_limit(),
            "input_bytes": tx.0.input().len(), "raw": hex(&tx.encoded()),
        })
    }
    fn receipt_json(r: &EthReceipt) -> Value {
        let status = match r.status {
            alloy_consensus::Eip658Value::Eip658(ok) => json!(ok),
            alloy_consensus::Eip658Value::PostState(root) => {
                json!({ "post_state": root.to_string() })
            }
        };
        json!({
            "type": r.tx_type as u8, "status": status, "cumulative_gas_used": r.cumulative_gas_used,
            "logs": r.logs.iter().map(LogJson::json).collect::<Vec<_>>(),
        })
    }
    fn state_key(address: alloy_primitives::Address) -> EthStateKey {
        EthStateKey { address, slot: None }
    }
    fn slot_key(address: alloy_primitives::Address, slot: [u8; 32]) -> EthStateKey {
        EthStateKey { address, slot: Some(alloy_primitives::B256::from(slot)) }
    }
    fn value_json(v: &EthStateValue) -> Value {
        match v {
            EthStateValue::Account { nonce, balance, code_hash } => {
                json!({ "nonce": nonce, "balance": balance.to_string(), "code_hash": code_hash.to_string() })
            }
            EthStateValue::Slot(value) => json!(value.to_string()),
        }
    }
}

/// The hash of `block`, hex.
pub(crate) fn block_hash<M: ChainModel>(block: &Block<M>) -> String {
    hex(block.header.hash().as_ref())
}
