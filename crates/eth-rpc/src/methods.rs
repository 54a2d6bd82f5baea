//! The methods: each an async function from its parameters to an alloy RPC type, registered
//! once in [`METHODS`]'s order by [`register`], which puts every call under the same rules
//! (the concurrency limit, the timeout, the per-method metrics).

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, U64, U256};
use alloy_rpc_types_eth::{self as rpc, EIP1186AccountProofResponse, EIP1186StorageProof, Filter, FilterBlockOption};
use alloy_serde::JsonStorageKey;
use chain_eth::{Eth, EthStateKey, EthStateValue};
use chain_store::{Block, BlockRef, LogFilter};
use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde::Serialize;
use serde::de::DeserializeOwned;
use storage_metrics::Metrics;
use tokio::sync::Semaphore;

use crate::config::RpcConfig;
use crate::convert;
use crate::error::RpcError;
use crate::source::EthSource;

/// What every call shares.
pub(crate) struct Ctx<S> {
    pub(crate) source: S,
    config: RpcConfig,
    metrics: Option<Metrics>,
    permits: Semaphore,
    /// Senders by block hash: a block's senders never change (content-addressed).
    senders: moka::sync::Cache<B256, Arc<Vec<Address>>>,
    /// Whether the stored state is the chain's at the head: (head hash, verdict).
    state_held: Mutex<Option<(B256, bool)>>,
}

type Reply<T> = Result<T, RpcError>;

/// Every method served (a test checks that the module serves exactly these).
pub const METHODS: [&str; 23] = [
    "web3_clientVersion",
    "net_version",
    "eth_chainId",
    "eth_blockNumber",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getUncleCountByBlockNumber",
    "eth_getUncleCountByBlockHash",
    "eth_getTransactionByHash",
    "eth_getTransactionByBlockNumberAndIndex",
    "eth_getTransactionByBlockHashAndIndex",
    "eth_getTransactionReceipt",
    "eth_getBlockReceipts",
    "eth_getLogs",
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getStorageAt",
    "eth_getProof",
    "eth_syncing",
    "eth_accounts",
    "eth_gasPrice",
];

/// The module of every method over `source`.
pub(crate) fn module<S: EthSource>(source: S, config: &RpcConfig, metrics: Option<Metrics>) -> RpcModule<Ctx<S>> {
    let ctx = Ctx {
        source,
        config: config.clone(),
        metrics,
        permits: Semaphore::new(config.max_concurrent as usize),
        senders: moka::sync::Cache::new(4_096),
        state_held: Mutex::new(None),
    };
    let mut m = RpcModule::new(ctx);
    register(&mut m, "web3_clientVersion", |_, _| async { Ok(concat!("node-storage/v", env!("CARGO_PKG_VERSION"))) });
    register(&mut m, "net_version", |c, _| async move { Ok(c.config.chain_id.to_string()) });
    register(&mut m, "eth_chainId", |c, _| async move { Ok(U64::from(c.config.chain_id)) });
    register(&mut m, "eth_blockNumber", |c, _| async move { Ok(U64::from(head(&c)?)) });
    register(&mut m, "eth_getBlockByNumber", |c, p| async move {
        let (tag, full): (BlockNumberOrTag, bool) = two(&p)?;
        let Some(b) = by_tag(&c, tag).await? else { return Ok(None) };
        Ok(Some(block_reply(&c, &b, full).await?))
    });
    register(&mut m, "eth_getBlockByHash", |c, p| async move {
        let (hash, full): (B256, bool) = two(&p)?;
        let Some(b) = c.source.block(hash).await? else { return Ok(None) };
        Ok(Some(block_reply(&c, &b, full).await?))
    });
    register(&mut m, "eth_getBlockTransactionCountByNumber", |c, p| async move {
        let tag: BlockNumberOrTag = one(&p)?;
        Ok(by_tag(&c, tag).await?.map(|b| U64::from(b.transactions.len())))
    });
    register(&mut m, "eth_getBlockTransactionCountByHash", |c, p| async move {
        let hash: B256 = one(&p)?;
        Ok(c.source.block(hash).await?.map(|b| U64::from(b.transactions.len())))
    });
    register(&mut m, "eth_getUncleCountByBlockNumber", |c, p| async move {
        let tag: BlockNumberOrTag = one(&p)?;
        Ok(by_tag(&c, tag).await?.map(|b| U64::from(b.extra.ommers.len())))
    });
    register(&mut m, "eth_getUncleCountByBlockHash", |c, p| async move {
        let hash: B256 = one(&p)?;
        Ok(c.source.block(hash).await?.map(|b| U64::from(b.extra.ommers.len())))
    });
    register(&mut m, "eth_getTransactionByHash", |c, p| async move {
        let hash: B256 = one(&p)?;
        let Some(t) = c.source.transaction(hash).await? else { return Ok(None) };
        Ok(Some(convert::transaction(&t.header, &t.tx, t.sender, t.location.index as usize)))
    });
    register(&mut m, "eth_getTransactionByBlockNumberAndIndex", |c, p| async move {
        let (tag, index): (BlockNumberOrTag, U64) = two(&p)?;
        let Some(b) = by_tag(&c, tag).await? else { return Ok(None) };
        at_index(&c, &b, index).await
    });
    register(&mut m, "eth_getTransactionByBlockHashAndIndex", |c, p| async move {
        let (hash, index): (B256, U64) = two(&p)?;
        let Some(b) = c.source.block(hash).await? else { return Ok(None) };
        at_index(&c, &b, index).await
    });
    register(&mut m, "eth_getTransactionReceipt", |c, p| async move {
        let hash: B256 = one(&p)?;
        let Some(t) = c.source.transaction(hash).await? else { return Ok(None) };
        let (number, block) = (t.location.number, t.location.block);
        let receipts = c
            .source
            .receipts(block)
            .await?
            .ok_or_else(|| RpcError::HeaderNotFound(format!("receipts of block {number}")))?;
        let i = t.location.index as usize;
        if i >= receipts.len() {
            return Err(RpcError::Storage(format!("block {number} has no receipt {i}")));
        }
        Ok(Some(convert::receipt(c.config.chain_id, &t.header, &t.tx, &receipts, t.sender, i)))
    });
    register(&mut m, "eth_getBlockReceipts", |c, p| async move {
        let id: BlockId = one(&p)?;
        let Some(b) = by_id(&c, id).await? else { return Ok(None) };
        let receipts = block_receipts_of(&c, &b).await?;
        let senders = senders(&c, &b).await?;
        Ok(Some(convert::receipts(c.config.chain_id, &b, &receipts, &senders)))
    });
    register(&mut m, "eth_getLogs", |c, p| async move { logs(&c, one(&p)?).await });
    register(&mut m, "eth_getBalance", |c, p| async move {
        let (address, id): (Address, Option<BlockId>) = one_and_block(&p)?;
        Ok(match account(&c, address, id).await? {
            Some(EthStateValue::Account { balance, .. }) => balance,
            _ => U256::ZERO,
        })
    });
    register(&mut m, "eth_getTransactionCount", |c, p| async move {
        let (address, id): (Address, Option<BlockId>) = one_and_block(&p)?;
        Ok(U64::from(match account(&c, address, id).await? {
            Some(EthStateValue::Account { nonce, .. }) => nonce,
            _ => 0,
        }))
    });
    register(&mut m, "eth_getStorageAt", |c, p| async move {
        let mut seq = p.sequence();
        let address: Address = next(&mut seq, "address")?;
        let slot: JsonStorageKey = next(&mut seq, "slot")?;
        let id: Option<BlockId> = optional(&mut seq, "block")?;
        let number = state_block(&c, id).await?;
        let key = EthStateKey { address, slot: Some(slot.as_b256()) };
        let value = c.source.state_at(vec![key], number).await.map_err(|e| RpcError::state(number, e))?;
        Ok(match value.into_iter().next().flatten() {
            Some(EthStateValue::Slot(v)) => B256::from(v),
            _ => B256::ZERO,
        })
    });
    register(&mut m, "eth_getProof", |c, p| async move {
        let mut seq = p.sequence();
        let address: Address = next(&mut seq, "address")?;
        let keys: Vec<JsonStorageKey> = next(&mut seq, "storage keys")?;
        let id: Option<BlockId> = optional(&mut seq, "block")?;
        proof(&c, address, keys, id).await
    });
    register(&mut m, "eth_syncing", |_, _| async { Ok(false) });
    register(&mut m, "eth_accounts", |_, _| async { Ok(Vec::<Address>::new()) });
    register(&mut m, "eth_gasPrice", |c, _| async move {
        // The head's base fee: what a transaction needs at least (no pool here to suggest a tip).
        let n = head(&c)?;
        let b = c.source.block_by_number(n).await?.ok_or_else(|| RpcError::HeaderNotFound(format!("block {n}")))?;
        Ok(U256::from(b.header.header.base_fee_per_gas.unwrap_or_default()))
    });
    m
}

/// Registers `f` as `name`: refused at once past `[rpc] max_concurrent` calls, cut off after
/// `[rpc] timeout_ms`, timed and counted per method. A timed-out call's store read runs to
/// its end on the blocking pool; its reply is dropped.
fn register<S, T, F, Fut>(m: &mut RpcModule<Ctx<S>>, name: &'static str, f: F)
where
    S: EthSource,
    T: Serialize + Clone + Send + 'static,
    F: Fn(Arc<Ctx<S>>, Params<'static>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply<T>> + Send + 'static,
{
    m.register_async_method(name, move |params, ctx, _| {
        let f = f.clone();
        async move {
            let started = Instant::now();
            let reply = match ctx.permits.try_acquire() {
                Err(_) => Err(RpcError::Busy { limit: ctx.config.max_concurrent }),
                Ok(_permit) => {
                    let limit = Duration::from_millis(ctx.config.timeout_ms);
                    tokio::time::timeout(limit, f(ctx.clone(), params))
                        .await
                        .unwrap_or(Err(RpcError::Timeout { ms: ctx.config.timeout_ms }))
                }
            };
            if let Some(metrics) = &ctx.metrics {
                metrics.rpc(name, started.elapsed().as_secs_f64(), reply.as_ref().err().map(RpcError::code));
            }
            reply.map_err(ErrorObjectOwned::from)
        }
    })
    .expect("every method is registered once");
}

// Parameters.

fn bad(what: &str, e: ErrorObjectOwned) -> RpcError {
    RpcError::InvalidParams(format!("{what}: {}", e.message()))
}

fn next<T: DeserializeOwned>(seq: &mut jsonrpsee::types::params::ParamsSequence<'_>, what: &str) -> Reply<T> {
    seq.next().map_err(|e| bad(what, e))
}

fn optional<T: DeserializeOwned>(
    seq: &mut jsonrpsee::types::params::ParamsSequence<'_>,
    what: &str,
) -> Reply<Option<T>> {
    seq.optional_next().map_err(|e| bad(what, e))
}

fn one<T: DeserializeOwned>(p: &Params<'_>) -> Reply<T> {
    next(&mut p.sequence(), "first parameter")
}

fn two<A: DeserializeOwned, B: DeserializeOwned>(p: &Params<'_>) -> Reply<(A, B)> {
    let mut seq = p.sequence();
    Ok((next(&mut seq, "first parameter")?, next(&mut seq, "second parameter")?))
}

/// An address (or other first parameter) and an optional block (default `latest`).
fn one_and_block<A: DeserializeOwned>(p: &Params<'_>) -> Reply<(A, Option<BlockId>)> {
    let mut seq = p.sequence();
    Ok((next(&mut seq, "first parameter")?, optional(&mut seq, "block")?))
}

// Blocks.

/// The head's height; an empty store has none.
fn head<S: EthSource>(c: &Ctx<S>) -> Reply<u64> {
    c.source
        .pointers()
        .head
        .map(|h| h.number)
        .ok_or_else(|| RpcError::HeaderNotFound("head block (the store holds no blocks yet)".into()))
}

/// The height `tag` names; `None` for a pointer the chain has not set (safe, finalized).
fn height<S: EthSource>(c: &Ctx<S>, tag: BlockNumberOrTag) -> Reply<Option<u64>> {
    let p = c.source.pointers();
    let number = |r: Option<BlockRef<B256>>| r.map(|r| r.number);
    Ok(match tag {
        BlockNumberOrTag::Latest | BlockNumberOrTag::Pending => number(p.head),
        BlockNumberOrTag::Safe => number(p.safe),
        BlockNumberOrTag::Finalized => number(p.finalized),
        BlockNumberOrTag::Earliest => number(p.first),
        BlockNumberOrTag::Number(n) => Some(n),
    })
}

/// The canonical block at `number`: `None` above the head; below the first block this store
/// holds (or pruned with no archive behind it), the EIP-4444 error.
async fn canonical<S: EthSource>(c: &Ctx<S>, number: u64) -> Reply<Option<Arc<Block<Eth>>>> {
    let p = c.source.pointers();
    let (Some(first), Some(head)) = (p.first, p.head) else { return Ok(None) };
    if number > head.number {
        return Ok(None);
    }
    if number < first.number {
        return Err(RpcError::HistoryUnavailable { number, oldest: first.number });
    }
    Ok(c.source.block_by_number(number).await?)
}

async fn by_tag<S: EthSource>(c: &Ctx<S>, tag: BlockNumberOrTag) -> Reply<Option<Arc<Block<Eth>>>> {
    match height(c, tag)? {
        Some(n) => canonical(c, n).await,
        None => Ok(None),
    }
}

async fn by_id<S: EthSource>(c: &Ctx<S>, id: BlockId) -> Reply<Option<Arc<Block<Eth>>>> {
    match id {
        BlockId::Number(tag) => by_tag(c, tag).await,
        BlockId::Hash(h) => Ok(c.source.block(h.block_hash).await?),
    }
}

/// The senders of `b`'s transactions (cached by block hash).
async fn senders<S: EthSource>(c: &Ctx<S>, b: &Block<Eth>) -> Reply<Arc<Vec<Address>>> {
    let hash = b.header.hash;
    if let Some(s) = c.senders.get(&hash) {
        return Ok(s);
    }
    let at = BlockRef { number: b.header.header.number, hash };
    let s = Arc::new(c.source.block_senders(at).await?);
    if s.len() != b.transactions.len() {
        return Err(RpcError::Storage(format!(
            "block {} has {} transactions but {} senders",
            at.number,
            b.transactions.len(),
            s.len()
        )));
    }
    c.senders.insert(hash, s.clone());
    Ok(s)
}

async fn block_reply<S: EthSource>(c: &Ctx<S>, b: &Block<Eth>, full: bool) -> Reply<rpc::Block> {
    let senders = if full { Some(senders(c, b).await?) } else { None };
    Ok(convert::block(b, senders.as_deref().map(Vec::as_slice)))
}

async fn block_receipts_of<S: EthSource>(c: &Ctx<S>, b: &Block<Eth>) -> Reply<Arc<Vec<chain_eth::EthReceipt>>> {
    let number = b.header.header.number;
    c.source
        .receipts(b.header.hash)
        .await?
        .ok_or_else(|| RpcError::HeaderNotFound(format!("receipts of block {number}")))
}

async fn tx_reply<S: EthSource>(c: &Ctx<S>, b: &Block<Eth>, i: usize) -> Reply<rpc::Transaction> {
    let from = senders(c, b).await?[i];
    Ok(convert::transaction(&b.header, &b.transactions[i], from, i))
}

async fn at_index<S: EthSource>(c: &Ctx<S>, b: &Block<Eth>, index: U64) -> Reply<Option<rpc::Transaction>> {
    let i = index.to::<u64>() as usize;
    if i >= b.transactions.len() {
        return Ok(None);
    }
    Ok(Some(tx_reply(c, b, i).await?))
}

// Logs.

async fn logs<S: EthSource>(c: &Ctx<S>, filter: Filter) -> Reply<Vec<rpc::Log>> {
    let addresses: Vec<Address> = filter.address.iter().copied().collect();
    let mut topics: Vec<Vec<B256>> = filter.topics.iter().map(|t| t.iter().copied().collect()).collect();
    while topics.last().is_some_and(Vec::is_empty) {
        topics.pop();
    }
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let b = c.source.block(hash).await?.ok_or_else(|| RpcError::HeaderNotFound(format!("block {hash}")))?;
            return logs_of_block(c, &b, &addresses, &topics).await;
        }
        FilterBlockOption::Range { from_block, to_block } => {
            let tag = |t: Option<BlockNumberOrTag>| -> Reply<u64> {
                let t = t.unwrap_or(BlockNumberOrTag::Latest);
                height(c, t)?.ok_or_else(|| RpcError::HeaderNotFound(format!("{t} block")))
            };
            (tag(from_block)?, tag(to_block)?)
        }
    };
    if from > to {
        return Err(RpcError::InvalidParams(format!("fromBlock {from} is after toBlock {to}")));
    }
    let p = c.source.pointers();
    let (Some(first), Some(head)) = (p.first, p.head) else { return Ok(Vec::new()) };
    let to = to.min(head.number);
    if from > to {
        return Ok(Vec::new());
    }
    if from < first.number {
        return Err(RpcError::HistoryUnavailable { number: from, oldest: first.number });
    }
    let span = to - from + 1;
    if span > c.config.max_log_block_range {
        return Err(RpcError::RangeTooLarge { span, limit: c.config.max_log_block_range });
    }
    let filter = LogFilter { from, to, addresses, topics };
    let found = c.source.logs(filter, c.config.max_logs).await?;
    Ok(found.into_iter().map(convert::matched_log).collect())
}

/// The logs of one block (canonical or not) that match, read from its receipts.
async fn logs_of_block<S: EthSource>(
    c: &Ctx<S>,
    b: &Block<Eth>,
    addresses: &[Address],
    topics: &[Vec<B256>],
) -> Reply<Vec<rpc::Log>> {
    let receipts = block_receipts_of(c, b).await?;
    let senders = senders(c, b).await?;
    let matches = |l: &rpc::Log| {
        (addresses.is_empty() || addresses.contains(&l.address()))
            && topics
                .iter()
                .enumerate()
                .all(|(i, alts)| alts.is_empty() || l.topics().get(i).is_some_and(|t| alts.contains(t)))
    };
    let all = convert::receipts(c.config.chain_id, b, &receipts, &senders);
    let found: Vec<rpc::Log> = all.into_iter().flat_map(|r| r.inner.logs().to_vec()).filter(matches).collect();
    if found.len() > c.config.max_logs {
        return Err(RpcError::TooManyLogs { limit: c.config.max_logs });
    }
    Ok(found)
}

// State.

/// The canonical height `id` names for a state read (default `latest`), once the store's
/// state is known to be the chain's: the head's state root in the store's trie must be the
/// one its header commits to (a store of imported history has blocks but no state).
async fn state_block<S: EthSource>(c: &Ctx<S>, id: Option<BlockId>) -> Reply<u64> {
    let number = match id.unwrap_or(BlockId::Number(BlockNumberOrTag::Latest)) {
        BlockId::Number(tag) => height(c, tag)?.ok_or_else(|| RpcError::HeaderNotFound(format!("{tag} block")))?,
        BlockId::Hash(h) => {
            let b = c
                .source
                .block(h.block_hash)
                .await?
                .ok_or_else(|| RpcError::HeaderNotFound(format!("block {}", h.block_hash)))?;
            let n = b.header.header.number;
            let canonical = c.source.block_by_number(n).await?.is_some_and(|cb| cb.header.hash == h.block_hash);
            if !canonical {
                return Err(RpcError::StateUnavailable {
                    number: n,
                    reason: format!("block {} is not canonical", h.block_hash),
                });
            }
            n
        }
    };
    let head = head(c)?;
    if number > head {
        return Err(RpcError::HeaderNotFound(format!("block {number}")));
    }
    ensure_state_held(c, number).await?;
    Ok(number)
}

async fn ensure_state_held<S: EthSource>(c: &Ctx<S>, number: u64) -> Reply<()> {
    let Some(head) = c.source.pointers().head else { return Err(RpcError::HeaderNotFound("head block".into())) };
    let cached = *c.state_held.lock().unwrap_or_else(|p| p.into_inner());
    let held = match cached {
        Some((hash, held)) if hash == head.hash => held,
        _ => {
            let root = c.source.state_root().await.map_err(|e| RpcError::state(number, e))?;
            let b = c.source.block(head.hash).await?.ok_or_else(|| RpcError::HeaderNotFound("head block".into()))?;
            let held = b.header.header.state_root.0 == root;
            *c.state_held.lock().unwrap_or_else(|p| p.into_inner()) = Some((head.hash, held));
            held
        }
    };
    if held {
        Ok(())
    } else {
        Err(RpcError::StateUnavailable {
            number,
            reason: "this store's state is not the chain's (its state root differs from the head header's: \
                     history imported without state, or state kept for another purpose)"
                .into(),
        })
    }
}

async fn account<S: EthSource>(c: &Ctx<S>, address: Address, id: Option<BlockId>) -> Reply<Option<EthStateValue>> {
    let number = state_block(c, id).await?;
    let key = EthStateKey { address, slot: None };
    let values = c.source.state_at(vec![key], number).await.map_err(|e| RpcError::state(number, e))?;
    Ok(values.into_iter().next().flatten())
}

/// `eth_getProof`: the account's proof and each slot's, each checked against the state root
/// of the block's header before it is returned.
async fn proof<S: EthSource>(
    c: &Ctx<S>,
    address: Address,
    keys: Vec<JsonStorageKey>,
    id: Option<BlockId>,
) -> Reply<EIP1186AccountProofResponse> {
    let number = state_block(c, id).await?;
    let header_root = canonical(c, number)
        .await?
        .ok_or_else(|| RpcError::HeaderNotFound(format!("block {number}")))?
        .header
        .header
        .state_root;
    let prove = |key: EthStateKey| async move {
        let p = c.source.state_proof_at(key, number).await.map_err(|e| RpcError::state(number, e))?;
        if p.root != header_root.0 {
            return Err(RpcError::StateUnavailable {
                number,
                reason: "the stored state's root differs from the header's state root".into(),
            });
        }
        p.verify().map_err(|e| RpcError::Storage(format!("a state proof does not verify: {e}")))?;
        Ok(p)
    };
    let account = prove(EthStateKey { address, slot: None }).await?;
    let (nonce, balance, code_hash) = match account.value {
        Some(EthStateValue::Account { nonce, balance, code_hash }) => (nonce, balance, code_hash),
        _ => (0, U256::ZERO, alloy_primitives::KECCAK256_EMPTY),
    };
    let mut storage_proof = Vec::with_capacity(keys.len());
    for key in keys {
        let p = prove(EthStateKey { address, slot: Some(key.as_b256()) }).await?;
        let value = match p.value {
            Some(EthStateValue::Slot(v)) => v,
            _ => U256::ZERO,
        };
        storage_proof.push(EIP1186StorageProof {
            key,
            value,
            proof: p.storage_nodes.into_iter().map(Bytes::from).collect(),
        });
    }
    Ok(EIP1186AccountProofResponse {
        address,
        balance,
        code_hash,
        nonce,
        storage_hash: B256::from(account.storage_root),
        account_proof: account.state_nodes.into_iter().map(Bytes::from).collect(),
        storage_proof,
    })
}
