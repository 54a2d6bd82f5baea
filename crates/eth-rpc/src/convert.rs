//! Stored blocks, transactions, receipts and logs as alloy's RPC types: the fields a client
//! reads that the store does not keep (a receipt's own gas, a log's index in its block, the
//! effective gas price, a created contract's address, the block's size) are derived here
//! from what it does.

use alloy_consensus::{BlockHeader as _, Transaction as _};
use alloy_eips::eip7840::BlobParams;
use alloy_primitives::{Address, B256, U256};
use alloy_rlp::Encodable;
use alloy_rpc_types_eth as rpc;
use chain_eth::{Eth, EthLog, EthReceipt, EthTx};
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
                .map(|(i, (tx, from))| transaction(block, tx, *from, i))
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

/// Transaction `index` of `block`, sent by `from`.
pub(crate) fn transaction(block: &Block<Eth>, tx: &EthTx, from: Address, index: usize) -> rpc::Transaction {
    let h = &block.header;
    rpc::Transaction {
        inner: alloy_consensus::transaction::Recovered::new_unchecked(tx.0.clone(), from),
        block_hash: Some(h.hash),
        block_number: Some(h.header.number),
        transaction_index: Some(index as u64),
        effective_gas_price: Some(tx.0.effective_gas_price(h.header.base_fee_per_gas)),
        block_timestamp: Some(h.header.timestamp),
    }
}

/// A log of `block` at `log_index`, in transaction `tx_index`.
fn log(block: &Block<Eth>, tx_hash: B256, tx_index: usize, log_index: u64, log: &EthLog) -> rpc::Log {
    rpc::Log {
        inner: log.0.clone(),
        block_hash: Some(block.header.hash),
        block_number: Some(block.header.header.number),
        block_timestamp: Some(block.header.header.timestamp),
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

/// The receipt of transaction `index` of `block`: its own gas is the difference of the
/// cumulative figures, its logs are numbered after the earlier receipts' logs.
pub(crate) fn receipt(
    chain_id: u64,
    block: &Block<Eth>,
    receipts: &[EthReceipt],
    from: Address,
    index: usize,
) -> rpc::TransactionReceipt {
    let before = &receipts[..index];
    let first_log = before.iter().map(|r| r.logs.len() as u64).sum();
    let gas_before = before.last().map_or(0, |r| r.cumulative_gas_used);
    receipt_with(chain_id, block, &receipts[index], from, index, first_log, gas_before)
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
        .zip(senders)
        .enumerate()
        .map(|(i, (r, from))| {
            let out = receipt_with(chain_id, block, r, *from, i, first_log, gas_before);
            first_log += r.logs.len() as u64;
            gas_before = r.cumulative_gas_used;
            out
        })
        .collect()
}

fn receipt_with(
    chain_id: u64,
    block: &Block<Eth>,
    r: &EthReceipt,
    from: Address,
    index: usize,
    first_log: u64,
    gas_before: u64,
) -> rpc::TransactionReceipt {
    let tx = &block.transactions[index];
    let h = &block.header.header;
    let tx_hash = tx.hash();
    let mut next_log = first_log;
    let inner = r.to_envelope().map_logs(|l| {
        let out = log(block, tx_hash, index, next_log, &EthLog(l));
        next_log += 1;
        out
    });
    let blob_gas_used = tx.0.blob_gas_used();
    let blob_gas_price = blob_gas_used
        .and(h.excess_blob_gas())
        .and_then(|excess| Some(blob_params(chain_id, h.timestamp)?.calc_blob_fee(excess)));
    rpc::TransactionReceipt {
        inner,
        transaction_hash: tx_hash,
        transaction_index: Some(index as u64),
        block_hash: Some(block.header.hash),
        block_number: Some(h.number),
        gas_used: r.cumulative_gas_used.saturating_sub(gas_before),
        effective_gas_price: tx.0.effective_gas_price(h.base_fee_per_gas),
        blob_gas_used,
        blob_gas_price,
        from,
        to: tx.to(),
        contract_address: tx.to().is_none().then(|| from.create(tx.0.nonce())),
    }
}
