//! Stored blocks, transactions, receipts and logs as alloy's RPC types: the fields a client
//! reads that the store does not keep (a receipt's own gas, a log's index in its block, the
//! effective gas price, a created contract's address, the block's size) are derived here
//! from what it does.

use alloy_consensus::{BlockHeader as _, Transaction as _};
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{Address, B256, U256};
use alloy_rlp::Encodable;
use alloy_rpc_types_eth as rpc;
use chain_eth::{Eth, EthHeader, EthReceipt, EthTx};
use chain_store::{Block, LogMatchOf};

/// The chain id whose fork schedule [`blob_params`] knows.
const MAINNET: u64 = 1;

/// Mainnet's blob fee parameters at `timestamp` (Cancun, Prague, Osaka and the blob-parameter
/// forks); `None` on another chain, whose schedule the store does not know.
fn blob_params(chain_id: u64, timestamp: u64) -> Option<BlobParams> {
    const PRAGUE: u64 = 1_746_612_311;
    const OSAKA: u64 = 1_764_798_551;
    const BPO1: u64 = 1_765_290_071;
    const BPO2: u64 = 1_767_747_671;
    (chain_id == MAINNET).then(|| match timestamp {
        t if t >= BPO2 => BlobParams::bpo2(),
        t if t >= BPO1 => BlobParams::bpo1(),
        t if t >= OSAKA => BlobParams::osaka(),
        t if t >= PRAGUE => BlobParams::prague(),
        _ => BlobParams::cancun(),
    })
}

/// The block's RLP size (header, transactions, ommers, withdrawals), as `size` reports it.
fn block_size(block: &Block<Eth>) -> usize {
    let list = |payload: usize| payload + alloy_rlp::length_of_length(payload);
    let txs = list(block.transactions.iter().map(|t| t.0.length()).sum());
    let payload = block.header.header.length()
        + txs
        + block.extra.ommers.length()
        + block.extra.withdrawals.as_ref().map_or(0, Encodable::length);
    list(payload)
}

/// The RPC header of `block`.
pub(crate) fn header(block: &Block<Eth>) -> rpc::Header {
    rpc::Header {
        hash: block.header.hash,
        inner: block.header.header.clone(),
        total_difficulty: block.extra.total_difficulty,
        size: Some(U256::from(block_size(block))),
    }
}

/// `block` with its transactions' hashes, or in full when `senders` are given.
pub(crate) fn block(block: &Block<Eth>, senders: Option<&[Address]>) -> rpc::Block {
    let transactions = match senders {
        Some(senders) => rpc::BlockTransactions::Full(
            block
                .transactions
                .iter()
                .zip(senders)
                .enumerate()
                .map(|(i, (tx, from))| transaction(&block.header, tx, *from, i))
                .collect(),
        ),
        None => rpc::BlockTransactions::Hashes(block.transactions.iter().map(EthTx::hash).collect()),
    };
    rpc::Block {
        header: header(block),
        uncles: block.extra.ommers.iter().map(|h| h.hash_slow()).collect(),
        transactions,
        withdrawals: block.extra.withdrawals.clone(),
    }
}

/// Transaction `index` of the block of `header`, sent by `from`.
pub(crate) fn transaction(header: &EthHeader, tx: &EthTx, from: Address, index: usize) -> rpc::Transaction {
    let h = &header.header;
    rpc::Transaction {
        inner: alloy_consensus::transaction::Recovered::new_unchecked(tx.0.clone(), from),
        block_hash: Some(header.hash),
        block_number: Some(h.number),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(tx.0.effective_gas_price(h.base_fee_per_gas)),
        block_timestamp: Some(h.timestamp),
    }
}

/// A log of the block of `header` at `log_index`, in transaction `tx_index`.
fn log(header: &EthHeader, tx_hash: B256, tx_index: usize, log_index: u64, log: alloy_primitives::Log) -> rpc::Log {
    rpc::Log {
        inner: log,
        block_hash: Some(header.hash),
        block_number: Some(header.header.number),
        block_timestamp: Some(header.header.timestamp),
        transaction_hash: Some(tx_hash),
        transaction_index: Some(tx_index as u64),
        log_index: Some(log_index),
        removed: false,
    }
}

/// A log an `eth_getLogs` scan matched (no block timestamp: the scan reads no header).
pub(crate) fn matched_log(m: LogMatchOf<Eth>) -> rpc::Log {
    rpc::Log {
        inner: m.log.0,
        block_hash: Some(m.block_hash),
        block_number: Some(m.block_number),
        block_timestamp: None,
        transaction_hash: Some(m.tx_hash),
        transaction_index: Some(u64::from(m.tx_index)),
        log_index: Some(u64::from(m.log_index)),
        removed: false,
    }
}

/// The receipt of transaction `tx` (at `index`) of the block of `header`, whose receipts
/// are `receipts`: its own gas is the difference of the cumulative figures, its logs are
/// numbered after the earlier receipts' logs.
pub(crate) fn receipt(
    chain_id: u64,
    header: &EthHeader,
    tx: &EthTx,
    receipts: &[EthReceipt],
    from: Address,
    index: usize,
) -> rpc::TransactionReceipt {
    let before = &receipts[..index];
    let first_log = before.iter().map(|r| r.logs.len() as u64).sum();
    let gas_before = before.last().map_or(0, |r| r.cumulative_gas_used);
    let place = Place { chain_id, header, index, first_log, gas_before };
    receipt_with(&place, tx, &receipts[index], from)
}

/// Every receipt of `block`, in order.
pub(crate) fn receipts(
    chain_id: u64,
    block: &Block<Eth>,
    receipts: &[EthReceipt],
    senders: &[Address],
) -> Vec<rpc::TransactionReceipt> {
    let (mut first_log, mut gas_before) = (0, 0);
    receipts
        .iter()
        .zip(block.transactions.iter().zip(senders))
        .enumerate()
        .map(|(index, (r, (tx, from)))| {
            let place = Place { chain_id, header: &block.header, index, first_log, gas_before };
            first_log += r.logs.len() as u64;
            gas_before = r.cumulative_gas_used;
            receipt_with(&place, tx, r, *from)
        })
        .collect()
}

/// Where a receipt is: its block, its position, the logs and gas before it.
struct Place<'a> {
    chain_id: u64,
    header: &'a EthHeader,
    index: usize,
    first_log: u64,
    gas_before: u64,
}

fn receipt_with(p: &Place<'_>, tx: &EthTx, r: &EthReceipt, from: Address) -> rpc::TransactionReceipt {
    let h = &p.header.header;
    let tx_hash = tx.hash();
    let mut next_log = p.first_log;
    let inner = r.to_envelope().map_logs(|l| {
        let out = log(p.header, tx_hash, p.index, next_log, l);
        next_log += 1;
        out
    });
    let blob_gas_used = tx.0.blob_gas_used();
    let blob_gas_price = blob_gas_used
        .and(h.excess_blob_gas())
        .and_then(|excess| Some(blob_params(p.chain_id, h.timestamp)?.calc_blob_fee(excess)));
    rpc::TransactionReceipt {
        inner,
        transaction_hash: tx_hash,
        transaction_index: Some(p.index as u64),
        block_hash: Some(p.header.hash),
        block_number: Some(h.number),
        gas_used: r.cumulative_gas_used.saturating_sub(p.gas_before),
        effective_gas_price: tx.0.effective_gas_price(h.base_fee_per_gas),
        blob_gas_used,
        blob_gas_price,
        from,
        to: tx.to(),
        contract_address: tx.to().is_none().then(|| from.create(tx.0.nonce())),
    }
}
