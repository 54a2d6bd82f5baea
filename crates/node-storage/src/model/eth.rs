//! Ethereum (`chain_eth`, on alloy): mainnet-shaped demo blocks, JSON views, era1 files.

use std::path::{Path, PathBuf};

use chain_eth::accumulator::Accumulator;
use chain_eth::alloy_consensus::{self, Transaction as _};
use chain_eth::alloy_primitives::{self, Address};
use chain_eth::era1::Era1Summary;
use chain_eth::generator::{EthGenerator, MAINNET_LONDON};
use chain_eth::header_proof::HeaderProof;
use chain_eth::import::{Era1Checks, Era1ImportError, FileImport};
use chain_eth::inclusion::{self, InclusionProof};
use chain_eth::senders::Recovery;
use chain_eth::{Eth, EthHeader, EthLog, EthReceipt, EthStateKey, EthStateValue, EthTx};
use chain_store::{Block, BulkImport, ChainError, ChainStore, NewBlock};
use serde_json::{Value, json};
use storage_api::{KvIngest, KvReader, KvStore};

use super::{DemoChain, Era1Files, Era1Format, HistoryProofs, LogView, NodeModel, ProvenItem, hex};
use crate::config::ModelKind;
use crate::error::StorageError;

/// Ethereum's demo chain: mainnet-shaped (London) blocks of signed transactions.
#[derive(Debug)]
pub struct EthDemo(EthGenerator);

impl DemoChain<Eth> for EthDemo {
    /// Mainnet-shaped blocks carry 195 signed transactions each: fewer of them.
    const BLOCKS: u64 = 500;
    fn next(&mut self) -> Vec<NewBlock<Eth>> {
        vec![self.0.next_block()]
    }
    fn child_of(&mut self, parent: &EthHeader) -> NewBlock<Eth> {
        self.0.child(Some(parent))
    }
    fn account(&self) -> Address {
        self.0.account(3)
    }
    fn marker(&self) -> (Address, u64) {
        // The hottest contract logs in nearly every block.
        (self.0.contract(0), 1)
    }
}

impl LogView for EthLog {
    fn json(&self) -> Value {
        json!({ "address": self.0.address.to_string(), "topics": self.0.data.topics().iter().map(ToString::to_string).collect::<Vec<_>>() })
    }
}

impl NodeModel for Eth {
    const KIND: ModelKind = ModelKind::Ethereum;
    type Demo = EthDemo;
    type Era1 = Era1Files;
    type Proofs = EthProofs;

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
        json!({
            "hash": tx.hash().to_string(), "type": u8::from(tx.0.tx_type()), "nonce": tx.0.nonce(),
            "to": tx.to().map(|a| a.to_string()), "value": tx.0.value().to_string(), "gas_limit": tx.0.gas_limit(),
            "input_bytes": tx.0.input().len(), "raw": hex(&tx.encoded()),
        })
    }

    fn receipt_json(r: &EthReceipt) -> Value {
        let status = match r.status {
            alloy_consensus::Eip658Value::Eip658(ok) => json!(ok),
            alloy_consensus::Eip658Value::PostState(root) => json!({ "post_state": root.to_string() }),
        };
        json!({
            "type": r.tx_type as u8, "status": status, "cumulative_gas_used": r.cumulative_gas_used,
            "logs": r.logs.iter().map(LogView::json).collect::<Vec<_>>(),
        })
    }

    fn account_key(address: Address) -> EthStateKey {
        EthStateKey { address, slot: None }
    }

    fn slot_key(address: Address, slot: [u8; 32]) -> EthStateKey {
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

/// An era1 failure: the store's own failures keep their kind (an engine error stays one).
fn era1_error(e: Era1ImportError) -> StorageError {
    match e {
        Era1ImportError::Chain { source, .. } | Era1ImportError::Read(source) => StorageError::Chain(source),
        other => StorageError::Era1(Box::new(other)),
    }
}

impl Era1Format<Eth> for Era1Files {
    fn require(_operation: &'static str) -> Result<(), StorageError> {
        Ok(())
    }

    fn init_from<S: KvStore>(
        chain: &ChainStore<S, Eth>,
        path: &Path,
        recovery: Recovery,
        checks: &Era1Checks,
    ) -> Result<u64, StorageError> {
        chain_eth::import::init_from(chain, path, recovery, checks).map_err(era1_error)
    }

    fn import_file<S: KvIngest>(
        bulk: &mut BulkImport<'_, S, Eth>,
        path: &Path,
        recovery: Recovery,
        checks: &Era1Checks,
        progress: &mut dyn FnMut(u64),
    ) -> Result<FileImport, StorageError> {
        chain_eth::import::import_file(bulk, path, recovery, checks, progress).map_err(era1_error)
    }

    fn export_range<S: KvReader>(
        chain: &ChainStore<S, Eth>,
        from: u64,
        to: u64,
        dir: &Path,
        network: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Vec<(PathBuf, Era1Summary)>, StorageError> {
        chain_eth::import::export_range(chain, from, to, dir, network, progress).map_err(era1_error)
    }
}

/// The Ethereum model's inclusion proofs (chain-eth's [`inclusion`](chain_eth::inclusion)).
#[derive(Debug)]
pub struct EthProofs;

impl HistoryProofs<Eth> for EthProofs {
    type Proof = InclusionProof;

    fn prove(block: &Block<Eth>, item: ProvenItem<'_, Eth>, index: u32) -> Result<InclusionProof, StorageError> {
        let header = &block.header;
        let bad = |e: inclusion::InclusionError| {
            StorageError::Chain(ChainError::BadRecord { number: header.header.number, reason: e.to_string() })
        };
        // The block's trie from the process-wide cache (built, and checked against the
        // header, on the first proof of the block); the proof verified.
        let items = match item {
            ProvenItem::Transaction => inclusion::Items::Transactions(&block.transactions),
            ProvenItem::Receipt(receipts) => inclusion::Items::Receipts(receipts),
        };
        let proof =
            inclusion::cached_proof(inclusion::TrieCache::shared(), header, items, index.into()).map_err(bad)?;
        Ok(proof)
    }

    fn json(p: &InclusionProof) -> Value {
        json!({
            "item": p.item.to_string(), "block": p.header.header.number, "block_hash": p.block_hash.to_string(),
            "index": p.index, "root": p.item.root_in(&p.header).to_string(), "header_rlp": hex(&p.header.rlp()),
            "value": hex(&p.value), "nodes": p.nodes.iter().map(|n| hex(n)).collect::<Vec<_>>(),
        })
    }

    type HeaderProof = HeaderProof;

    fn header_proof<S: KvReader>(chain: &ChainStore<S, Eth>, number: u64) -> Result<Option<HeaderProof>, StorageError> {
        Ok(chain_eth::header_proof::header_proof(chain, number)?)
    }

    fn header_json(p: &HeaderProof) -> Value {
        let epoch = p.header.header.number / chain_eth::era1::MAX_BLOCKS as u64;
        let mainnet = p.verify(Accumulator::mainnet());
        json!({
            "block": p.header.header.number, "hash": p.header.hash.to_string(), "epoch": epoch,
            "epoch_root": p.epoch_root().to_string(), "total_difficulty": p.total_difficulty().to_string(),
            "proof": p.proof.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "portal_block_header_with_proof": hex(&p.portal_bytes()),
            "mainnet_published_accumulator": mainnet.is_ok(),
            "verified_against": match mainnet {
                Ok(_) => format!("mainnet's published accumulator (epoch {epoch})"),
                Err(e) => format!("the epoch root the store holds only (not mainnet's: {e})"),
            },
        })
    }
}
