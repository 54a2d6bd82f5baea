//! The chain's tables and schema.
//!
//! Tables are generic over the [`ChainModel`], so one set of declarations serves every model.
//! Bodies, receipts and state change sets are keyed by height ‖ block hash rather than by hash
//! alone: pruning is then one range delete per table, and an import appends at the end of each
//! table instead of writing at random positions.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use storage_api::table::Access;
use storage_api::{PostcardValue, Schema, Table};

use crate::bloom::{Bloom, BloomBits};
use crate::model::{BlockRef, ChainModel, StateWrite, TxLocation};

/// The schema name stored in every chain database.
pub const SCHEMA_NAME: &str = "chain";
/// The current chain schema version.
pub const SCHEMA_VERSION: u32 = 1;

/// A value stored as postcard behind the chain store's format-version byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Stored<T>(pub T);

impl<T: Serialize + DeserializeOwned> PostcardValue for Stored<T> {}

macro_rules! chain_tables {
    ($(
        $(#[$meta:meta])*
        $ty:ident($name:literal, $access:ident): $key:ty => $value:ty;
    )*) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $ty<M>(PhantomData<fn() -> M>);
        impl<M: ChainModel> Table for $ty<M> {
            const NAME: &'static str = $name;
            const ACCESS: Access = Access::$access;
            type Key = $key;
            type Value = $value;
        }
    )*};
}

chain_tables! {
    /// Header by block hash, for every block ever inserted (never pruned).
    Headers("headers", Point): M::Hash => Stored<M::Header>;
    /// Transactions by height ‖ block hash.
    Bodies("bodies", Mixed): (u64, M::Hash) => Stored<Vec<M::Tx>>;
    /// Receipts by height ‖ block hash.
    Receipts("receipts", Mixed): (u64, M::Hash) => Stored<Vec<M::Receipt>>;
    /// The canonical chain: block hash by height.
    Canonical("canonical", Range): u64 => Stored<M::Hash>;
    /// Canonical transactions: location by transaction hash.
    TxIndex("tx_index", Point): M::Hash => Stored<TxLocation<M::Hash>>;
    /// Canonical transactions by address (sender and recipient): address ‖ height ‖ index.
    AddressIndex("address_index", Range): (M::Address, u64, u32) => Stored<M::Hash>;
    /// The bloom filter of each canonical block's logs, by height.
    LogBloom("log_bloom", Range): u64 => Bloom;
    /// The sectioned bloom-bit index: section ‖ bit → which blocks of the section set the bit.
    BloomBitsTable("bloom_bits", Range): (u64, u16) => BloomBits;
    /// The world state at the head.
    State("state", Point): M::StateKey => Stored<M::StateValue>;
    /// Each block's state writes and, once applied, the values they replaced (for revert).
    StateChanges("state_changes", Mixed): (u64, M::Hash) => Stored<ChangeSet<M>>;
    /// Chain-wide records by [`MetaKey`].
    ChainMeta("chain_meta", Point): u8 => Stored<MetaValue<M::Hash>>;
}

/// A block's state writes, sorted by key, and the values they replaced.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub struct ChangeSet<M: ChainModel> {
    /// The writes (key, new value), sorted by key, one per key.
    pub writes: Vec<StateWrite<M>>,
    /// The value each key held before the block (same order as `writes`), recorded when the
    /// block is first applied to the state. A block's parent state never changes, so once
    /// known this stays valid across reorgs.
    pub previous: Option<Vec<Option<M::StateValue>>>,
}

impl<M: ChainModel> Clone for ChangeSet<M> {
    fn clone(&self) -> Self {
        ChangeSet { writes: self.writes.clone(), previous: self.previous.clone() }
    }
}
impl<M: ChainModel> std::fmt::Debug for ChangeSet<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeSet").field("writes", &self.writes).field("previous", &self.previous).finish()
    }
}

/// Keys of the [`ChainMeta`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MetaKey {
    /// The first block of the store (genesis or a trusted checkpoint).
    First = 1,
    /// The canonical head.
    Head = 2,
    /// The safe block.
    Safe = 3,
    /// The finalized block.
    Finalized = 4,
    /// Bodies, receipts and change sets below this height were pruned.
    PrunedBelow = 5,
    /// Bloom-bit sections `0..n` are built.
    BloomSections = 6,
}

/// A [`ChainMeta`] value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetaValue<H> {
    /// A block pointer.
    Block(BlockRef<H>),
    /// A number.
    Number(u64),
}

/// The chain schema for model `M`, to open a backend with.
pub fn chain_schema<M: ChainModel>() -> Schema {
    Schema::new(SCHEMA_NAME, SCHEMA_VERSION)
        .with::<Headers<M>>()
        .with::<Bodies<M>>()
        .with::<Receipts<M>>()
        .with::<Canonical<M>>()
        .with::<TxIndex<M>>()
        .with::<AddressIndex<M>>()
        .with::<LogBloom<M>>()
        .with::<BloomBitsTable<M>>()
        .with::<State<M>>()
        .with::<StateChanges<M>>()
        .with::<ChainMeta<M>>()
}
