//! Reads: headers, blocks, receipts, transactions, by hash, by height and over ranges.

use std::ops::RangeBounds;

use storage_api::{Direction, KvReader, ReadExt, Table};

use crate::ChainStore;
use crate::error::ChainError;
use crate::model::{Block, BlockHeader, BlockRef, ChainModel, TxLocation, hex};
use crate::schema::{Bodies, Canonical, Headers, Receipts, Stored, TxIndex};

/// A transaction or receipt with its location.
pub type Located<T, M> = (T, TxLocation<<M as ChainModel>::Hash>);

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// The header of block `hash` (stored for every block, never pruned).
    pub fn header(&self, hash: &M::Hash) -> Result<Option<M::Header>, ChainError> {
        Ok(self.store.get::<Headers<M>>(hash)?.map(|s| s.0))
    }

    /// Block `hash` with its transactions. `Pruned` if its body was pruned.
    pub fn block(&self, hash: &M::Hash) -> Result<Option<Block<M>>, ChainError> {
        let Some(header) = self.header(hash)? else { return Ok(None) };
        let transactions = self.required::<Bodies<M>, _>(&BlockRef { number: header.number(), hash: *hash })?;
        Ok(Some(Block { header, transactions }))
    }

    /// The receipts of block `hash`. `Pruned` if they were pruned.
    pub fn receipts(&self, hash: &M::Hash) -> Result<Option<Vec<M::Receipt>>, ChainError> {
        let Some(header) = self.header(hash)? else { return Ok(None) };
        Ok(Some(self.required::<Receipts<M>, _>(&BlockRef { number: header.number(), hash: *hash })?))
    }

    /// The hash of the canonical block at `number`.
    pub fn canonical_hash(&self, number: u64) -> Result<Option<M::Hash>, ChainError> {
        Ok(self.store.get::<Canonical<M>>(&number)?.map(|s| s.0))
    }

    /// Whether block `hash` is on the canonical chain.
    pub fn is_canonical(&self, hash: &M::Hash) -> Result<bool, ChainError> {
        let (Some(head), Some(header)) = (self.head(), self.header(hash)?) else { return Ok(false) };
        self.is_canonical_at(BlockRef { number: header.number(), hash: *hash }, head.number)
    }

    /// The canonical header at `number`.
    pub fn header_by_number(&self, number: u64) -> Result<Option<M::Header>, ChainError> {
        match self.canonical_hash(number)? {
            Some(hash) => Ok(Some(self.header_of_canonical(number, &hash)?)),
            None => Ok(None),
        }
    }

    /// The canonical block at `number`.
    pub fn block_by_number(&self, number: u64) -> Result<Option<Block<M>>, ChainError> {
        let Some(hash) = self.canonical_hash(number)? else { return Ok(None) };
        let header = self.header_of_canonical(number, &hash)?;
        let transactions = self.required::<Bodies<M>, _>(&BlockRef { number, hash })?;
        Ok(Some(Block { header, transactions }))
    }

    /// The receipts of the canonical block at `number`.
    pub fn receipts_by_number(&self, number: u64) -> Result<Option<Vec<M::Receipt>>, ChainError> {
        let Some(hash) = self.canonical_hash(number)? else { return Ok(None) };
        Ok(Some(self.required::<Receipts<M>, _>(&BlockRef { number, hash })?))
    }

    /// Streams the canonical headers with heights in `range`, in height order.
    pub fn headers(
        &self,
        range: impl RangeBounds<u64>,
        direction: Direction,
    ) -> Result<impl Iterator<Item = Result<M::Header, ChainError>> + '_, ChainError> {
        let it = self.store.iter::<Canonical<M>>(range, direction)?;
        Ok(it.map(move |e| {
            let (number, hash) = e?;
            self.header_of_canonical(number, &hash.0)
        }))
    }

    /// Streams the canonical blocks with heights in `range`, in height order.
    pub fn blocks(
        &self,
        range: impl RangeBounds<u64>,
        direction: Direction,
    ) -> Result<impl Iterator<Item = Result<Block<M>, ChainError>> + '_, ChainError> {
        let it = self.store.iter::<Canonical<M>>(range, direction)?;
        Ok(it.map(move |e| {
            let (number, hash) = e?;
            let header = self.header_of_canonical(number, &hash.0)?;
            let transactions = self.required::<Bodies<M>, _>(&BlockRef { number, hash: hash.0 })?;
            Ok(Block { header, transactions })
        }))
    }

    /// Where the canonical transaction `tx_hash` is.
    pub fn tx_location(&self, tx_hash: &M::Hash) -> Result<Option<TxLocation<M::Hash>>, ChainError> {
        Ok(self.store.get::<TxIndex<M>>(tx_hash)?.map(|s| s.0))
    }

    /// The canonical transaction `tx_hash` and where it is. `Pruned` if its block's body was
    /// pruned.
    pub fn transaction(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Tx, M>>, ChainError> {
        let Some(loc) = self.tx_location(tx_hash)? else { return Ok(None) };
        let body = self.required::<Bodies<M>, _>(&BlockRef { number: loc.number, hash: loc.block })?;
        let tx = body
            .into_iter()
            .nth(loc.index as usize)
            .ok_or_else(|| self.missing::<Bodies<M>>(loc.number, &loc.block))?;
        Ok(Some((tx, loc)))
    }

    /// The receipt of the canonical transaction `tx_hash` and where it is.
    pub fn receipt(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Receipt, M>>, ChainError> {
        let Some(loc) = self.tx_location(tx_hash)? else { return Ok(None) };
        let receipts = self.required::<Receipts<M>, _>(&BlockRef { number: loc.number, hash: loc.block })?;
        let r = receipts
            .into_iter()
            .nth(loc.index as usize)
            .ok_or_else(|| self.missing::<Receipts<M>>(loc.number, &loc.block))?;
        Ok(Some((r, loc)))
    }

    fn header_of_canonical(&self, number: u64, hash: &M::Hash) -> Result<M::Header, ChainError> {
        self.header(hash)?.ok_or_else(|| self.missing::<Headers<M>>(number, hash))
    }

    /// The per-block record of `T` for `block`: `Pruned` below the pruning boundary,
    /// `Missing` (damage) if absent above it.
    pub(crate) fn required<T, X>(&self, block: &BlockRef<M::Hash>) -> Result<X, ChainError>
    where
        T: Table<Key = (u64, M::Hash), Value = Stored<X>>,
    {
        let pruned_below = self.pointers().pruned_below;
        if block.number < pruned_below {
            return Err(ChainError::Pruned { what: T::NAME, number: block.number, pruned_below });
        }
        match self.store.get::<T>(&(block.number, block.hash))? {
            Some(v) => Ok(v.0),
            // Pruning may have raced this read.
            None if block.number < self.pointers().pruned_below => Err(ChainError::Pruned {
                what: T::NAME,
                number: block.number,
                pruned_below: self.pointers().pruned_below,
            }),
            None => Err(self.missing::<T>(block.number, &block.hash)),
        }
    }

    pub(crate) fn missing<T: Table>(&self, number: u64, hash: &M::Hash) -> ChainError {
        ChainError::Missing { table: T::NAME, block: hex(hash.as_ref()), number }
    }
}
