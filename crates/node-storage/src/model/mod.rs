//! The chain models a node can run, and what the facade's tools need of each beyond the
//! chain store's [`ChainModel`]: its [`ModelKind`], a deterministic demo chain, JSON views of
//! its blocks and state, the state keys an address lookup reads, and whether it has era1
//! history files. [`with_node`] turns the configured engine and model into static types in one
//! place; nothing else matches on [`ModelKind`].
//!
//! Two models: the synthetic EVM-style one of `chain_store::synthetic` (tests, benchmarks, the
//! demo) and Ethereum (`chain_eth`).

mod eth;
mod synthetic;

use std::path::{Path, PathBuf};

use chain_eth::era1::Era1Summary;
use chain_eth::import::{Era1Checks, FileImport};
use chain_eth::senders::Recovery;
use chain_store::{Block, BulkImport, ChainModel, ChainStore, NewBlock};
use serde_json::Value;
use storage_api::{KvIngest, KvReader, KvStore};

use crate::backend::{Backend, BackendVisitor, ReplicaBackend, ReplicaVisitor, with_backend, with_replica_backend};
use crate::config::{Config, ModelKind};
use crate::error::StorageError;

pub use eth::EthDemo;
pub use synthetic::SyntheticDemo;

/// A chain model a node runs: the chain store's model plus what the facade's tools show and
/// do with it. Implemented for the synthetic model and for Ethereum.
pub trait NodeModel: ChainModel<Log: LogView> {
    /// Which model this is.
    const KIND: ModelKind;

    /// The demo's block source.
    type Demo: DemoChain<Self>;

    /// era1 history files: [`Era1Files`] for Ethereum, [`NoEra1`] otherwise.
    type Era1: Era1Format<Self>;

    /// Proofs of history (a block's transactions and receipts, pre-merge headers):
    /// [`EthProofs`] for Ethereum, [`NoProofs`] otherwise.
    type Proofs: HistoryProofs<Self>;

    /// A fresh demo chain.
    fn demo() -> Self::Demo;

    /// A block as JSON: number, hash, parent, timestamp, the transactions' hashes (and the
    /// model's own header fields).
    fn block_json(block: &Block<Self>) -> Value;

    /// A transaction as JSON.
    fn tx_json(tx: &Self::Tx) -> Value;

    /// A receipt as JSON.
    fn receipt_json(receipt: &Self::Receipt) -> Value;

    /// The state key an account lookup reads (its balance, or its account record).
    fn account_key(address: Self::Address) -> Self::StateKey;

    /// The state key of storage slot `slot` of `address`.
    fn slot_key(address: Self::Address, slot: [u8; 32]) -> Self::StateKey;

    /// A state value as JSON.
    fn value_json(value: &Self::StateValue) -> Value;
}

/// A log as JSON: its address and topics.
pub trait LogView {
    /// The log as JSON (`address`, `topics`).
    fn json(&self) -> Value;
}

/// A deterministic chain for the demo.
pub trait DemoChain<M: ChainModel> {
    /// Default main-chain blocks of the demo.
    const BLOCKS: u64;
    /// The next main-chain block (genesis first), then any side blocks beside it.
    fn next(&mut self) -> Vec<NewBlock<M>>;
    /// A new block on `parent`, off the main chain (for the demo's reorg).
    fn child_of(&mut self, parent: &M::Header) -> NewBlock<M>;
    /// An address that sends transactions.
    fn account(&self) -> M::Address;
    /// A contract that logs in blocks `0, every, 2·every…` (a log filter's subject), and
    /// `every`.
    fn marker(&self) -> (M::Address, u64);
}

/// era1 history files of a model: reading them into a chain store and writing its canonical
/// blocks out as them.
pub trait Era1Format<M: ChainModel> {
    /// `Ok` if the model has era1 files; the refusal of `operation` otherwise (checked before
    /// anything is opened or created).
    fn require(operation: &'static str) -> Result<(), StorageError>;

    /// Initialises the empty `chain` from the first block of the era1 file at `path`, after
    /// verifying the whole file (with `checks`); returns that block's number.
    fn init_from<S: KvStore>(
        chain: &ChainStore<S, M>,
        path: &Path,
        recovery: Recovery,
        checks: &Era1Checks,
    ) -> Result<u64, StorageError>;

    /// Imports the era1 file at `path` through `bulk`, verified with `checks`; `progress`
    /// gets the blocks read so far.
    fn import_file<S: KvIngest>(
        bulk: &mut BulkImport<'_, S, M>,
        path: &Path,
        recovery: Recovery,
        checks: &Era1Checks,
        progress: &mut dyn FnMut(u64),
    ) -> Result<FileImport, StorageError>;

    /// Writes canonical blocks `from..=to` of `chain` as era1 files into `dir`.
    fn export_range<S: KvReader>(
        chain: &ChainStore<S, M>,
        from: u64,
        to: u64,
        dir: &Path,
        network: &str,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Vec<(PathBuf, Era1Summary)>, StorageError>;
}

/// The Ethereum model's era1 files (chain-eth's reader, writer and importer).
#[derive(Debug)]
pub struct Era1Files;

/// A model without era1 files: every era1 operation is refused ([`StorageError::WrongModel`]).
#[derive(Debug)]
pub struct NoEra1;

impl<M: NodeModel> Era1Format<M> for NoEra1 {
    fn require(operation: &'static str) -> Result<(), StorageError> {
        Err(StorageError::WrongModel { operation, needs: ModelKind::Ethereum, model: M::KIND })
    }

    fn init_from<S: KvStore>(_: &ChainStore<S, M>, _: &Path, _: Recovery, _: &Era1Checks) -> Result<u64, StorageError> {
        Err(StorageError::WrongModel { operation: "an era1 import", needs: ModelKind::Ethereum, model: M::KIND })
    }

    fn import_file<S: KvIngest>(
        _: &mut BulkImport<'_, S, M>,
        _: &Path,
        _: Recovery,
        _: &Era1Checks,
        _: &mut dyn FnMut(u64),
    ) -> Result<FileImport, StorageError> {
        Err(StorageError::WrongModel { operation: "an era1 import", needs: ModelKind::Ethereum, model: M::KIND })
    }

    fn export_range<S: KvReader>(
        _: &ChainStore<S, M>,
        _: u64,
        _: u64,
        _: &Path,
        _: &str,
        _: &mut dyn FnMut(u64),
    ) -> Result<Vec<(PathBuf, Era1Summary)>, StorageError> {
        Err(StorageError::WrongModel { operation: "an era1 export", needs: ModelKind::Ethereum, model: M::KIND })
    }
}

/// Which of a block's items a proof is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProvenItem<'a, M: ChainModel> {
    /// Its transaction (the block's transactions are the block's own).
    Transaction,
    /// Its receipt, among the block's receipts.
    Receipt(&'a [M::Receipt]),
}

/// Proofs of a model's history: inclusion proofs of its blocks' items, header proofs.
pub trait HistoryProofs<M: ChainModel> {
    /// A proof, verifiable without a store.
    type Proof: std::fmt::Debug + Clone + Send;

    /// The proof of item `index` of `block`, verified before it is returned; a block whose
    /// data does not prove against its header is [`ChainError::BadRecord`](chain_store::ChainError::BadRecord).
    fn prove(block: &Block<M>, item: ProvenItem<'_, M>, index: u32) -> Result<Self::Proof, StorageError>;

    /// The proof as JSON (hex bytes: the header's RLP, the value, the nodes root first).
    fn json(proof: &Self::Proof) -> Value;

    /// A header proof, verifiable without a store.
    type HeaderProof: std::fmt::Debug + Clone + Send;

    /// The header proof of the canonical block `number` from what `chain` holds; `Ok(None)`
    /// where it holds none (no such block, or an epoch it never saw whole nor was given the
    /// proof of).
    fn header_proof<S: KvReader>(
        chain: &ChainStore<S, M>,
        number: u64,
    ) -> Result<Option<Self::HeaderProof>, StorageError>;

    /// The header proof as JSON, with what it verifies against.
    fn header_json(proof: &Self::HeaderProof) -> Value;
}

/// A model without proofs of history: every proof is refused ([`StorageError::WrongModel`]).
#[derive(Debug)]
pub struct NoProofs;

impl<M: NodeModel> HistoryProofs<M> for NoProofs {
    type Proof = std::convert::Infallible;

    fn prove(_: &Block<M>, _: ProvenItem<'_, M>, _: u32) -> Result<Self::Proof, StorageError> {
        Err(StorageError::WrongModel { operation: "an inclusion proof", needs: ModelKind::Ethereum, model: M::KIND })
    }

    fn json(proof: &Self::Proof) -> Value {
        match *proof {}
    }

    type HeaderProof = std::convert::Infallible;

    fn header_proof<S: KvReader>(_: &ChainStore<S, M>, _: u64) -> Result<Option<Self::HeaderProof>, StorageError> {
        Err(StorageError::WrongModel { operation: "a header proof", needs: ModelKind::Ethereum, model: M::KIND })
    }

    fn header_json(proof: &Self::HeaderProof) -> Value {
        match *proof {}
    }
}

/// Code to run with the configured engine and model (see [`with_node`]).
pub trait NodeVisitor {
    /// The result.
    type Output;
    /// Runs with the engine `B` and the model `M`.
    fn visit<B: Backend, M: NodeModel>(self) -> Self::Output;
}

/// Code to run with the configured engine, if it has read replicas, and model (see
/// [`with_replica_node`]).
pub trait ReplicaNodeVisitor {
    /// The result.
    type Output;
    /// Runs with the engine `B` and the model `M`.
    fn visit<B: ReplicaBackend, M: NodeModel>(self) -> Self::Output;
}

/// Calls `visitor` with the engine `config.backend` and the model `config.model` name: the
/// one place both runtime choices become static types. An engine this build lacks is
/// [`StorageError::EngineNotBuilt`].
pub fn with_node<V: NodeVisitor>(config: &Config, visitor: V) -> Result<V::Output, StorageError> {
    struct Engine<V>(V, ModelKind);
    struct Model<B, V>(V, std::marker::PhantomData<B>);
    impl<V: NodeVisitor> BackendVisitor for Engine<V> {
        type Output = V::Output;
        fn visit<B: Backend>(self) -> V::Output {
            with_model(self.1, Model::<B, V>(self.0, std::marker::PhantomData))
        }
    }
    impl<B: Backend, V: NodeVisitor> ModelVisitor for Model<B, V> {
        type Output = V::Output;
        fn visit<M: NodeModel>(self) -> V::Output {
            self.0.visit::<B, M>()
        }
    }
    with_backend(config, Engine(visitor, config.model))
}

/// [`with_node`] for an engine with read replicas (RocksDB); [`StorageError::Incapable`]
/// otherwise.
pub fn with_replica_node<V: ReplicaNodeVisitor>(config: &Config, visitor: V) -> Result<V::Output, StorageError> {
    struct Engine<V>(V, ModelKind);
    struct Model<B, V>(V, std::marker::PhantomData<B>);
    impl<V: ReplicaNodeVisitor> ReplicaVisitor for Engine<V> {
        type Output = V::Output;
        fn visit<B: ReplicaBackend>(self) -> V::Output {
            with_model(self.1, Model::<B, V>(self.0, std::marker::PhantomData))
        }
    }
    impl<B: ReplicaBackend, V: ReplicaNodeVisitor> ModelVisitor for Model<B, V> {
        type Output = V::Output;
        fn visit<M: NodeModel>(self) -> V::Output {
            self.0.visit::<B, M>()
        }
    }
    with_replica_backend(config, Engine(visitor, config.model))
}

/// Code to run with one model.
trait ModelVisitor {
    type Output;
    fn visit<M: NodeModel>(self) -> Self::Output;
}

/// The one match of a [`ModelKind`] to its type.
fn with_model<V: ModelVisitor>(kind: ModelKind, visitor: V) -> V::Output {
    match kind {
        ModelKind::Synthetic => visitor.visit::<chain_store::synthetic::Synthetic>(),
        ModelKind::Ethereum => visitor.visit::<chain_eth::Eth>(),
    }
}

/// Lowercase hex with a `0x` prefix.
fn hex(bytes: &[u8]) -> String {
    chain_eth::alloy_primitives::hex::encode_prefixed(bytes)
}
