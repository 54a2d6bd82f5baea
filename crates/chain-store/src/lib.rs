//! Linear-chain persistence, generic over any storage-api backend and over the node's own
//! block, transaction, receipt and log types ([`ChainModel`]; [`synthetic::Synthetic`] is a ready model).
//!
//! * [`ChainStore::init`] stores the first block (genesis or a trusted checkpoint);
//!   [`ChainStore::insert_block`] / [`ChainStore::insert_blocks`] validate and store blocks
//!   with receipts and state writes — a block whose parent is the head extends the canonical
//!   chain in the same atomic batch (canonical index, tx index, address index, log bloom,
//!   state and its change set); other blocks are stored as side blocks;
//! * [`ChainStore::set_canonical_head`] reorgs to any stored block in one batch, reverting and
//!   re-applying state; finalized blocks can never be reorged out;
//! * reads by hash, by height and over height ranges; transactions and receipts by hash;
//!   state at the head and at older heights; an address's transactions; `eth_getLogs`-style filters
//!   served by per-block blooms and a sectioned bloom-bit index;
//! * [`ChainStore::prune`] drops old bodies, receipts and change sets with range deletes;
//!   [`ChainStore::check`] verifies the whole store read-only and reports every problem.
//!
//! Writes are serialised by an internal lock; reads never take it. Reads that combine several
//! tables (a block, a log filter) run against the live store, so a concurrent reorg can make
//! them fail with a clear error or see the new chain; they never see a half-written batch.

mod addresses;
mod apply;
mod archive;
pub mod bloom;
mod bulk;
mod canonical;
mod check;
mod error;
pub mod generator;
mod insert;
mod logs;
pub mod migrate;
mod model;
pub mod packed;
mod pipeline;
mod prune;
mod read;
mod reorg;
pub mod schema;
mod state;
pub mod synthetic;
pub mod trie;

use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard};

pub use addresses::{AddressCursor, AddressPage, AddressQuery, AddressTx, Order};
pub use archive::{ArchivedBlock, RECORD_FORMAT, Unarchived};
pub use bloom::{BLOOM_BITS, BLOOM_BYTES, Bloom, BloomBits, SECTION_SIZE};
pub use bulk::{BulkImport, BulkOptions, BulkReport, CheckedBlock};
pub use check::{IntegrityReport, Problem};
pub use error::{ChainError, Roots};
pub use insert::Inserted;
pub use logs::{LogFilter, LogMatch, LogMatchOf, LogSource, MAX_TOPICS, filter_logs};
pub use model::{
    Block, BlockHeader, BlockRef, ChainModel, Data, Id, Log, Mismatch, NewBlock, Receipt, StateWrite, Transaction,
    TxLocation,
};
pub use prune::PruneReport;
pub use read::{Located, TxInBlock};
pub use reorg::Reorg;
use schema::{ChainMeta, MetaKey, MetaValue};
pub use schema::{chain_schema, chain_tables};
use storage_api::{Durability, KvReader, ReadExt};
pub use trie::{ProofError, StateProof, TrieBuildReport, TriePlace};

/// The chain store over backend `S` (opened with [`chain_schema::<M>()`](chain_schema)) for
/// model `M`.
#[derive(Debug)]
pub struct ChainStore<S, M: ChainModel> {
    store: S,
    durability: Durability,
    /// Whether blocks' state writes are checked against their headers' state roots.
    check_state_roots: bool,
    /// Whether a store this handle initialises builds (and then maintains) the state trie.
    build_state_trie: bool,
    writer: Mutex<()>,
    /// The chain pointers, mirrored from the meta table: loaded on open, replaced after each
    /// successful write.
    pointers: RwLock<Pointers<M::Hash>>,
    /// The range an interrupted bulk import left uncommitted (writes are refused until it is
    /// rolled back).
    pending: Mutex<Option<bulk::Pending<M::Hash>>>,
}

/// The chain's pointers and boundaries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pointers<H> {
    /// The first block (genesis or the trusted checkpoint the store started from).
    pub first: Option<BlockRef<H>>,
    /// The canonical head.
    pub head: Option<BlockRef<H>>,
    /// The safe block.
    pub safe: Option<BlockRef<H>>,
    /// The finalized block.
    pub finalized: Option<BlockRef<H>>,
    /// Bodies, receipts and change sets below this height are pruned.
    pub pruned_below: u64,
    /// Bloom-bit sections `0..bloom_sections` are built.
    pub bloom_sections: u64,
    /// Whether the state trie is built (and so maintained with every state write): see
    /// [`trie`].
    pub state_trie: bool,
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// Wraps a store opened with [`chain_schema::<M>()`](chain_schema). Block inserts are
    /// synced by default.
    pub fn new(store: S) -> Result<Self, ChainError> {
        if store.schema().name() != M::SCHEMA_NAME {
            return Err(ChainError::WrongSchema(store.schema().name().to_owned()));
        }
        if !schema::width_matches::<M::Hash>() || !schema::width_matches::<M::Address>() {
            return Err(ChainError::BadModel(
                "the model's hash or address type is not a plain byte array (its bytes are not as wide as the type)",
            ));
        }
        let (pointers, pending) = load_pointers::<S, M>(&store)?;
        Ok(ChainStore {
            store,
            durability: Durability::Synced,
            check_state_roots: false,
            build_state_trie: true,
            writer: Mutex::new(()),
            pointers: RwLock::new(pointers),
            pending: Mutex::new(pending),
        })
    }

    /// Reloads the pointers (and a pending bulk import) from the meta table, for a reader
    /// following a database another process writes.
    pub fn reload(&self) -> Result<(), ChainError> {
        let (pointers, pending) = load_pointers::<S, M>(&self.store)?;
        self.set_ptrs(pointers);
        *self.pending_import_slot() = pending;
        Ok(())
    }

    /// Sets the durability of block inserts (for a bulk import, buffered inserts and one
    /// [`storage_api::KvFlush::flush`] at the end). Reorgs, pointer updates and pruning are
    /// always synced.
    pub fn with_insert_durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// Checks each block's state writes against the state root its header claims (for models
    /// whose headers carry one, while the state trie is built): a block whose writes give
    /// another root is refused with [`ChainError::StateRootMismatch`] and nothing of its batch
    /// is written. Off by default: a node importing history without executing it has state
    /// writes only where it has them, and the generators' headers carry placeholder roots.
    pub fn with_state_root_check(mut self, check: bool) -> Self {
        self.check_state_roots = check;
        self
    }

    /// Whether [`ChainStore::init`] and [`ChainStore::init_checkpoint`] start the state trie
    /// (default true). Without it the store keeps no trie: inserts, reorgs and bulk imports
    /// do no trie work, and there are no state roots or proofs ([`ChainError::NoStateTrie`]).
    /// It acts only on a store's initialisation: an existing store keeps what it has until
    /// [`ChainStore::drop_state_trie`] or [`ChainStore::rebuild_state_trie`] changes it.
    pub fn with_state_trie(mut self, build: bool) -> Self {
        self.build_state_trie = build;
        self
    }

    /// The state root `header` claims, if roots are checked.
    pub(crate) fn claimed_root(&self, header: &M::Header) -> Option<[u8; 32]> {
        if self.check_state_roots { M::header_state_root(header) } else { None }
    }

    /// The backend.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Unwraps the backend.
    pub fn into_inner(self) -> S {
        self.store
    }

    /// The chain's pointers and boundaries.
    pub fn pointers(&self) -> Pointers<M::Hash> {
        *self.ptrs()
    }

    /// The canonical head.
    pub fn head(&self) -> Option<BlockRef<M::Hash>> {
        self.ptrs().head
    }

    /// The safe block.
    pub fn safe(&self) -> Option<BlockRef<M::Hash>> {
        self.ptrs().safe
    }

    /// The finalized block.
    pub fn finalized(&self) -> Option<BlockRef<M::Hash>> {
        self.ptrs().finalized
    }

    fn ptrs(&self) -> RwLockReadGuard<'_, Pointers<M::Hash>> {
        self.pointers.read().unwrap_or_else(|p| p.into_inner())
    }

    fn set_ptrs(&self, p: Pointers<M::Hash>) {
        *self.pointers.write().unwrap_or_else(|p| p.into_inner()) = p;
    }

    /// The writer lock; refused while an interrupted bulk import's range is pending.
    fn write_lock(&self) -> Result<MutexGuard<'_, ()>, ChainError> {
        let guard = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        match &*self.pending_import_slot() {
            Some(p) => Err(ChainError::ImportPending { from: p.from, to: p.to }),
            None => Ok(guard),
        }
    }

    fn pending_import_slot(&self) -> MutexGuard<'_, Option<bulk::Pending<M::Hash>>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The heights of a bulk-import range that was being committed when the import stopped,
    /// if any: its entries may be partly present, and writes are refused until
    /// [`ChainStore::roll_back_pending_import`] (or a new bulk import) removes them.
    pub fn pending_import(&self) -> Option<(u64, u64)> {
        self.pending_import_slot().as_ref().map(|p| (p.from, p.to))
    }
}

/// The pointers and the pending bulk-import range, as the meta table holds them.
#[allow(clippy::type_complexity)]
fn load_pointers<S: KvReader, M: ChainModel>(
    store: &S,
) -> Result<(Pointers<M::Hash>, Option<bulk::Pending<M::Hash>>), ChainError> {
    let block = |key: MetaKey| -> Result<Option<BlockRef<M::Hash>>, ChainError> {
        Ok(match store.get::<ChainMeta<M>>(&(key as u8))? {
            Some(schema::Stored(MetaValue::Block(b))) => Some(b),
            _ => None,
        })
    };
    let number = |key: MetaKey| -> Result<u64, ChainError> {
        Ok(match store.get::<ChainMeta<M>>(&(key as u8))? {
            Some(schema::Stored(MetaValue::Number(n))) => n,
            _ => 0,
        })
    };
    let pointers = Pointers {
        first: block(MetaKey::First)?,
        head: block(MetaKey::Head)?,
        safe: block(MetaKey::Safe)?,
        finalized: block(MetaKey::Finalized)?,
        pruned_below: number(MetaKey::PrunedBelow)?,
        bloom_sections: number(MetaKey::BloomSections)?,
        state_trie: number(MetaKey::StateTrie)? != 0,
    };
    let pending = match store.get::<ChainMeta<M>>(&(MetaKey::BulkPending as u8))? {
        Some(schema::Stored(MetaValue::Import { from, to, kept })) => Some(bulk::Pending { from, to, kept }),
        // Written by builds that did not record the blocks already stored in the range.
        Some(schema::Stored(MetaValue::Range(from, to))) => Some(bulk::Pending { from, to, kept: Vec::new() }),
        _ => None,
    };
    Ok((pointers, pending))
}
