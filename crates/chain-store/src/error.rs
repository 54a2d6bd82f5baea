//! Errors of the chain store.
//!
//! Hashes appear as `0x…` hex strings so the error type does not depend on the model.

use storage_api::{MaintenanceError, ReadError, WriteError};

/// A chain-store operation failed. Writes are all-or-nothing: on error nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// A block's body, receipts or bloom does not match its header (or its own hash).
    #[error("block {block}: {mismatch}")]
    BodyMismatch {
        /// The block.
        block: String,
        /// What did not match.
        mismatch: crate::model::Mismatch,
    },
    /// The number of senders given differs from the number of transactions (and not every
    /// transaction carries its sender).
    #[error(
        "block {block}: {senders} sender(s) for {transactions} transaction(s), and its transactions do not carry their senders"
    )]
    SenderCount {
        /// The block.
        block: String,
        /// Transactions in the block.
        transactions: usize,
        /// Senders given.
        senders: usize,
    },
    /// The number of receipts differs from the number of transactions.
    #[error("block {block}: {receipts} receipt(s) for {transactions} transaction(s)")]
    ReceiptCount {
        /// The block.
        block: String,
        /// Its transactions.
        transactions: usize,
        /// The receipts given.
        receipts: usize,
    },
    /// The store has no first block yet: call `init` with genesis or a trusted checkpoint.
    #[error("the chain store is empty: initialise it with a genesis or checkpoint block first")]
    NotInitialized,
    /// A bulk import stopped while committing blocks `from..=to`; they must be rolled back
    /// before anything else is written.
    #[error(
        "a bulk import of blocks {from}..={to} was interrupted while committing; resume the import (or roll the range back) before writing"
    )]
    ImportPending {
        /// First height of the range.
        from: u64,
        /// Last height of the range.
        to: u64,
    },
    /// A bulk import's open range failed to commit and was rolled back: its blocks are not
    /// stored. Repeated by every later call until [`crate::BulkImport::discard`] acknowledges
    /// it (then the import goes on from the committed head).
    #[error(
        "the bulk-import range {from}..={to} was rolled back after its commit failed ({reason}); nothing of it is stored: discard and push its blocks again"
    )]
    RangeLost {
        /// First height of the range.
        from: u64,
        /// Last height pushed to it.
        to: u64,
        /// Why its commit failed.
        reason: String,
    },
    /// A bulk-imported block does not extend the head.
    #[error(
        "block {number} ({block}) does not extend the head {head_number} ({head}); a bulk import takes consecutive finalized blocks"
    )]
    NotExtendingHead {
        /// The block's hash.
        block: String,
        /// Its height.
        number: u64,
        /// The head's hash.
        head: String,
        /// The head's height.
        head_number: u64,
    },
    /// The bulk import's scratch directory could not be created.
    #[error("bulk import scratch directory {path}: {source}")]
    ScratchDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A sorted-run file of a bulk import failed.
    #[error("bulk import: {0}")]
    Runs(#[from] storage_api::ingest::CollectorError),
    /// The backend's ingest failed.
    #[error(transparent)]
    Ingest(#[from] storage_api::IngestError),
    /// `init` on a store that already has a first block.
    #[error("the chain store already starts at block {number} ({hash})")]
    AlreadyInitialized {
        /// The first block's height.
        number: u64,
        /// Its hash.
        hash: String,
    },
    /// The block's parent is not stored (nor earlier in the same import).
    #[error("block {block} at height {number}: parent {parent} is unknown")]
    UnknownParent {
        /// The block.
        block: String,
        /// Its height.
        number: u64,
        /// The missing parent.
        parent: String,
    },
    /// The block's height has no successor (2^64 - 1): every height this store keeps has one.
    #[error("block {block}: height {number} is out of range (the highest height is 2^64 - 2)")]
    HeightOutOfRange {
        /// The block.
        block: String,
        /// Its height.
        number: u64,
    },
    /// The block's height is not its parent's height plus one.
    #[error("block {block}: height {number} does not follow its parent's height {parent_number}")]
    BadNumber {
        /// The block.
        block: String,
        /// Its height.
        number: u64,
        /// The parent's height.
        parent_number: u64,
    },
    /// A new block at or below the finalized height can never become canonical.
    #[error("block {block} at height {number} conflicts with finalized block {finalized} at height {finalized_number}")]
    ConflictsWithFinalized {
        /// The block.
        block: String,
        /// Its height.
        number: u64,
        /// The finalized block.
        finalized: String,
        /// Its height.
        finalized_number: u64,
    },
    /// The block is not stored.
    #[error("block {0} is not stored")]
    UnknownBlock(String),
    /// A reorg would remove finalized blocks.
    #[error(
        "cannot make {target} the head: the chains fork at height {fork_number}, below finalized block {finalized} at height {finalized_number}; finalized blocks cannot be reorged out"
    )]
    ReorgPastFinalized {
        /// The requested head.
        target: String,
        /// The height of the common ancestor.
        fork_number: u64,
        /// The finalized block.
        finalized: String,
        /// Its height.
        finalized_number: u64,
    },
    /// Safe and finalized pointers must be on the canonical chain.
    #[error("block {0} is not on the canonical chain")]
    NotCanonical(String),
    /// The finalized pointer only moves forward.
    #[error("cannot move finalized back from height {current} to {requested}")]
    FinalizedBackwards {
        /// The finalized height now.
        current: u64,
        /// The height requested.
        requested: u64,
    },
    /// The data was pruned.
    #[error("{what} at height {number} was pruned (everything below height {pruned_below} is)")]
    Pruned {
        /// What was asked for.
        what: &'static str,
        /// Its height.
        number: u64,
        /// The pruning boundary.
        pruned_below: u64,
    },
    /// A height above the canonical head.
    #[error("height {number} is above the canonical head at {head}")]
    AboveHead {
        /// The height asked for.
        number: u64,
        /// The head's height.
        head: u64,
    },
    /// A log query matched more logs than its cap.
    #[error("log filter matched more than {cap} logs (by height {reached}); narrow the block range or the filter")]
    TooManyLogs {
        /// The cap.
        cap: usize,
        /// The height the scan had reached.
        reached: u64,
    },
    /// A log filter with more topic positions than the store indexes.
    #[error("log filter has {0} topic positions; at most 4 are supported")]
    TooManyTopics(usize),
    /// Stored data that should exist is missing: the database is damaged.
    #[error(
        "missing {table} entry for block {block} at height {number}: the database is damaged (run the integrity check)"
    )]
    Missing {
        /// The table.
        table: &'static str,
        /// The block.
        block: String,
        /// Its height.
        number: u64,
    },
    /// An archived block record does not decode, or is not the block it should be.
    #[error("archived block {number}: {reason}")]
    BadRecord {
        /// The height it was read for.
        number: u64,
        /// What is wrong.
        reason: String,
    },
    /// A block's state writes give another state root than its header claims; nothing of the
    /// batch was written.
    #[error(
        "block {block} at height {number}: its state writes give state root {}, but its header claims {}; nothing was written",
        roots.computed, roots.claimed
    )]
    StateRootMismatch {
        /// The block.
        block: String,
        /// Its height.
        number: u64,
        /// Both roots.
        roots: Box<Roots>,
    },
    /// The store keeps no state trie (switched off, or a database written before it existed).
    #[error(
        "this database keeps no state trie (switched off, or written before it existed): with `[state] trie = \"on\"`, build it with `nodestore repair state-trie` (or `nodestore migrate`)"
    )]
    NoStateTrie,
    /// The stored state trie contradicts itself: the database is damaged.
    #[error("the state trie is damaged: {0} (rebuild it with `nodestore repair state-trie`)")]
    StateTrieDamaged(String),
    /// The chain model's types break a rule the store relies on.
    #[error("chain model: {0}")]
    BadModel(&'static str),
    /// The store was opened with another schema.
    #[error("store holds schema `{0}`, not the chain schema")]
    WrongSchema(String),
    /// A read failed (including stored data that does not decode).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A write failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// Compaction failed.
    #[error(transparent)]
    Maintenance(#[from] MaintenanceError),
}

/// The two state roots of a [`ChainError::StateRootMismatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    /// The root the header claims.
    pub claimed: String,
    /// The root the block's state writes give.
    pub computed: String,
}
