//! [`EthSource`]: the reads the endpoint makes. node-storage implements it for the running
//! node's `StorageHandle` (its caches, the archive behind it) and for a `ReplicaHandle` (a
//! read replica of a node running beside it); the endpoint knows nothing else of the store.

use std::future::Future;
use std::sync::Arc;

use alloy_primitives::{Address, B256};
use chain_eth::{Eth, EthReceipt, EthStateKey, EthStateValue};
use chain_store::{Block, BlockRef, ChainError, LogFilter, LogMatchOf, Pointers, StateProof, TxInBlock};

/// What a read returns.
pub type Read<T> = Result<T, SourceError>;

/// Why a read failed: the chain store's own errors (pruned heights, too many logs, a height
/// above the head, no state trie) are told apart, for the JSON-RPC codes; anything else is the
/// source's own.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The chain store refused or failed the read.
    #[error(transparent)]
    Chain(ChainError),
    /// Anything else (an engine error, an archive that is down, a task that failed).
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

/// The store reads behind the endpoint (Ethereum model). Pruned heights come from the
/// history archive where the source has one; what neither holds is a `Pruned` error.
pub trait EthSource: Send + Sync + 'static {
    /// The chain's pointers (first, head, safe, finalized, pruning boundary).
    fn pointers(&self) -> Pointers<B256>;

    /// The canonical block at `number`.
    fn block_by_number(&self, number: u64) -> impl Future<Output = Read<Option<Arc<Block<Eth>>>>> + Send;

    /// Block `hash` (canonical or not).
    fn block(&self, hash: B256) -> impl Future<Output = Read<Option<Arc<Block<Eth>>>>> + Send;

    /// The receipts of block `hash`.
    fn receipts(&self, hash: B256) -> impl Future<Output = Read<Option<Arc<Vec<EthReceipt>>>>> + Send;

    /// The senders of block `at`'s transactions, in order.
    fn block_senders(&self, at: BlockRef<B256>) -> impl Future<Output = Read<Vec<Address>>> + Send;

    /// A canonical transaction with its location, sender and block header.
    fn transaction(&self, tx_hash: B256) -> impl Future<Output = Read<Option<TxInBlock<Eth>>>> + Send;

    /// Logs matching `filter`, at most `cap` (more: `TooManyLogs`).
    fn logs(
        &self,
        filter: LogFilter<Address, B256>,
        cap: usize,
    ) -> impl Future<Output = Read<Vec<LogMatchOf<Eth>>>> + Send;

    /// The state root at the head, from the stored trie (`NoStateTrie` without one).
    fn state_root(&self) -> impl Future<Output = Read<[u8; 32]>> + Send;

    /// State values after canonical block `number`.
    fn state_at(
        &self,
        keys: Vec<EthStateKey>,
        number: u64,
    ) -> impl Future<Output = Read<Vec<Option<EthStateValue>>>> + Send;

    /// A proof of `key` after canonical block `number`, against that block's state root.
    fn state_proof_at(&self, key: EthStateKey, number: u64) -> impl Future<Output = Read<StateProof<Eth>>> + Send;
}
