//! The Ethereum JSON-RPC endpoint (the `eth-rpc` crate) on this node's read paths: its
//! [`EthSource`] for the running node's [`StorageHandle`] (the object caches, the history
//! archive behind it) and for a [`ReplicaHandle`] (no object caches: each read goes to the
//! replica's stores). The endpoint itself is re-exported as [`crate::rpc`].

use std::sync::Arc;

use alloy_primitives::{Address, B256};
use chain_eth::{Eth, EthReceipt, EthStateKey, EthStateValue};
use chain_store::{Block, BlockRef, LogFilter, LogMatchOf, Pointers, StateProof, TxInBlock};
use eth_rpc::{EthSource, Read, SourceError};

use crate::backend::{Backend, ReplicaBackend};
use crate::error::StorageError;
use crate::handle::StorageHandle;
use crate::replica::ReplicaHandle;

/// The one place a store error becomes the endpoint's: the chain store's own errors pass
/// through (the endpoint tells pruned heights and limits apart by them).
impl From<StorageError> for SourceError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::Chain(c) => SourceError::Chain(c),
            e => SourceError::Other(Box::new(e)),
        }
    }
}

impl<B: Backend> EthSource for StorageHandle<B, Eth> {
    fn pointers(&self) -> Pointers<B256> {
        StorageHandle::pointers(self)
    }

    async fn block_by_number(&self, number: u64) -> Read<Option<Arc<Block<Eth>>>> {
        Ok(StorageHandle::block_by_number(self, number).await?)
    }

    async fn block(&self, hash: B256) -> Read<Option<Arc<Block<Eth>>>> {
        Ok(StorageHandle::block(self, hash).await?)
    }

    async fn receipts(&self, hash: B256) -> Read<Option<Arc<Vec<EthReceipt>>>> {
        Ok(StorageHandle::receipts(self, hash).await?)
    }

    async fn block_senders(&self, at: BlockRef<B256>) -> Read<Vec<Address>> {
        Ok(StorageHandle::block_senders(self, at).await?)
    }

    async fn transaction(&self, tx_hash: B256) -> Read<Option<TxInBlock<Eth>>> {
        Ok(StorageHandle::transaction_in_block(self, tx_hash).await?)
    }

    async fn logs(&self, filter: LogFilter<Address, B256>, cap: usize) -> Read<Vec<LogMatchOf<Eth>>> {
        Ok(StorageHandle::logs(self, filter, cap).await?)
    }

    async fn state_root(&self) -> Read<[u8; 32]> {
        Ok(StorageHandle::state_root(self).await?)
    }

    async fn state_at(&self, keys: Vec<EthStateKey>, number: u64) -> Read<Vec<Option<EthStateValue>>> {
        Ok(StorageHandle::state_at(self, keys, number).await?)
    }

    async fn state_proof_at(&self, key: EthStateKey, number: u64) -> Read<StateProof<Eth>> {
        Ok(StorageHandle::state_proof_at(self, key, number).await?)
    }
}

/// A replica has no object caches: every read goes to its stores on the blocking pool.
impl<B: ReplicaBackend> EthSource for ReplicaHandle<B, Eth> {
    fn pointers(&self) -> Pointers<B256> {
        ReplicaHandle::pointers(self)
    }

    async fn block_by_number(&self, number: u64) -> Read<Option<Arc<Block<Eth>>>> {
        Ok(ReplicaHandle::block_by_number(self, number).await?.map(Arc::new))
    }

    async fn block(&self, hash: B256) -> Read<Option<Arc<Block<Eth>>>> {
        Ok(ReplicaHandle::block(self, hash).await?.map(Arc::new))
    }

    async fn receipts(&self, hash: B256) -> Read<Option<Arc<Vec<EthReceipt>>>> {
        Ok(self.read(move |r| r.receipts(&hash)).await?.map(Arc::new))
    }

    async fn block_senders(&self, at: BlockRef<B256>) -> Read<Vec<Address>> {
        Ok(self.read(move |r| r.block_senders(&at)).await?)
    }

    async fn transaction(&self, tx_hash: B256) -> Read<Option<TxInBlock<Eth>>> {
        Ok(self.read(move |r| r.transaction_in_block(&tx_hash)).await?)
    }

    async fn logs(&self, filter: LogFilter<Address, B256>, cap: usize) -> Read<Vec<LogMatchOf<Eth>>> {
        Ok(ReplicaHandle::logs(self, filter, cap).await?)
    }

    async fn state_root(&self) -> Read<[u8; 32]> {
        Ok(self.read(|r| Ok(r.chain().state_root()?)).await?)
    }

    async fn state_at(&self, keys: Vec<EthStateKey>, number: u64) -> Read<Vec<Option<EthStateValue>>> {
        Ok(self.read(move |r| Ok(r.chain().state_at(&keys, number)?)).await?)
    }

    async fn state_proof_at(&self, key: EthStateKey, number: u64) -> Read<StateProof<Eth>> {
        Ok(self.read(move |r| Ok(r.chain().state_proof_at(&key, number)?)).await?)
    }
}
