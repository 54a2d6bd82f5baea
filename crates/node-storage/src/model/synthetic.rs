//! The synthetic EVM-style model (`chain_store::synthetic`): tests, benchmarks and the demo.

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::{Address, B256, Synthetic, SyntheticHeader, SyntheticLog, SyntheticReceipt, SyntheticTx};
use chain_store::{Block, NewBlock};
use serde_json::{Value, json};

use super::{DemoChain, LogView, NoEra1, NoProofs, NodeModel, hex};
use crate::config::ModelKind;

/// The synthetic model's demo chain: 20 transactions a block, a fork now and then.
#[derive(Debug)]
pub struct SyntheticDemo(ChainGenerator);

impl DemoChain<Synthetic> for SyntheticDemo {
    const BLOCKS: u64 = 5_000;
    fn next(&mut self) -> Vec<NewBlock<Synthetic>> {
        self.0.next_blocks()
    }
    fn child_of(&mut self, parent: &SyntheticHeader) -> NewBlock<Synthetic> {
        self.0.child(Some(parent))
    }
    fn account(&self) -> Address {
        ChainGenerator::account(3)
    }
    fn marker(&self) -> (Address, u64) {
        (ChainGenerator::marker_contract(), self.0.config().marker_every)
    }
}

impl LogView for SyntheticLog {
    fn json(&self) -> Value {
        json!({ "address": hex(self.address.as_ref()), "topics": self.topics.iter().map(|t| hex(t.as_ref())).collect::<Vec<_>>() })
    }
}

impl NodeModel for Synthetic {
    const KIND: ModelKind = ModelKind::Synthetic;
    type Demo = SyntheticDemo;
    type Era1 = NoEra1;
    type Proofs = NoProofs;

    fn demo() -> SyntheticDemo {
        SyntheticDemo(ChainGenerator::new(GenConfig {
            txs_per_block: 20,
            fork_probability: 0.02,
            marker_every: 100,
            ..GenConfig::default()
        }))
    }

    fn block_json(b: &Block<Synthetic>) -> Value {
        json!({
            "number": b.header.number, "hash": hex(b.header.hash.as_ref()), "parent": hex(b.header.parent_hash.as_ref()),
            "timestamp": b.header.timestamp, "transactions": b.transactions.iter().map(|t| hex(t.hash.as_ref())).collect::<Vec<_>>(),
        })
    }

    fn tx_json(tx: &SyntheticTx) -> Value {
        serde_json::to_value(tx).unwrap_or(Value::Null)
    }

    fn receipt_json(r: &SyntheticReceipt) -> Value {
        serde_json::to_value(r).unwrap_or(Value::Null)
    }

    fn account_key(address: Address) -> (Address, B256) {
        ChainGenerator::balance_key(address)
    }

    fn slot_key(address: Address, slot: [u8; 32]) -> (Address, B256) {
        (address, B256(slot))
    }

    fn value_json(v: &B256) -> Value {
        json!(hex(v.as_ref()))
    }
}
