//! Reads: headers, blocks, receipts, transactions and senders, by hash, by height and over
//! ranges. A transaction, receipt or sender by hash is one index read and one point read; a
//! block's transactions (or receipts) are one range scan.

use std::ops::RangeBounds;

use storage_api::{Direction, KvReader, ReadExt, Table};

use crate::ChainStore;
use crate::apply::TxEntry;
use crate::error::ChainError;
use crate::model::{Block, BlockHeader, BlockRef, ChainModel, Transaction, TxLocation, hex};
use crate::schema::{
    Bodies, BodyRecord, Canonical, Fixed, Headers, Receipts, Senders, Stored, Transactions, TxIndex, TxKey, block_key,
    tx_key,
};

/// A transaction or receipt with its location.
pub type Located<T, M> = (T, TxLocation<<M as ChainModel>::Hash>);

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// The header of block `hash` (stored for every block, never pruned).
    pub fn header(&self, hash: &M::Hash) -> Result<Option<M::Header>, ChainError> {
        Ok(self.store.get::<Headers<M>>(&Fixed(*hash))?.map(|s| s.0))
    }

    /// Block `hash` with its body. `Pruned` if its body was pruned.
    pub fn block(&self, hash: &M::Hash) -> Result<Option<Block<M>>, ChainError> {
        let Some(header) = self.header(hash)? else { return Ok(None) };
        let at = BlockRef { number: header.number(), hash: *hash };
        Ok(Some(self.assemble(at, header)?))
    }

    /// The receipts of block `hash`. `Pruned` if they were pruned.
    pub fn receipts(&self, hash: &M::Hash) -> Result<Option<Vec<M::Receipt>>, ChainError> {
        let Some(header) = self.header(hash)? else { return Ok(None) };
        let at = BlockRef { number: header.number(), hash: *hash };
        Ok(Some(self.block_receipts(&at)?))
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
        Ok(Some(self.assemble(BlockRef { number, hash }, header)?))
    }

    /// The receipts of the canonical block at `number`.
    pub fn receipts_by_number(&self, number: u64) -> Result<Option<Vec<M::Receipt>>, ChainError> {
        let Some(hash) = self.canonical_hash(number)? else { return Ok(None) };
        Ok(Some(self.block_receipts(&BlockRef { number, hash })?))
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
            self.assemble(BlockRef { number, hash: hash.0 }, header)
        }))
    }

    /// Where the canonical transaction `tx_hash` is.
    pub fn tx_location(&self, tx_hash: &M::Hash) -> Result<Option<TxLocation<M::Hash>>, ChainError> {
        Ok(self.store.get::<TxIndex<M>>(&Fixed(*tx_hash))?.map(|s| s.0))
    }

    /// The canonical transaction `tx_hash` and where it is. `Pruned` if its block's body was
    /// pruned.
    pub fn transaction(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Tx, M>>, ChainError> {
        let Some(loc) = self.tx_location(tx_hash)? else { return Ok(None) };
        Ok(Some((self.tx_part::<Transactions<M>, _>(&loc)?, loc)))
    }

    /// The receipt of the canonical transaction `tx_hash` and where it is.
    pub fn receipt(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Receipt, M>>, ChainError> {
        let Some(loc) = self.tx_location(tx_hash)? else { return Ok(None) };
        Ok(Some((self.tx_part::<Receipts<M>, _>(&loc)?, loc)))
    }

    /// The sender of the canonical transaction `tx_hash` (as stored at insert: never
    /// recovered again) and where it is.
    pub fn sender(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Address, M>>, ChainError> {
        let Some(loc) = self.tx_location(tx_hash)? else { return Ok(None) };
        let sender = match self.store.get::<Senders<M>>(&loc_key::<M>(&loc))? {
            Some(s) => s.0,
            // Not kept when the transaction carries it.
            None => match self.tx_part::<Transactions<M>, _>(&loc)?.sender() {
                Some(s) => s,
                None => return Err(self.missing::<Senders<M>>(loc.number, &loc.block)),
            },
        };
        Ok(Some((sender, loc)))
    }

    /// The senders of block `at`'s transactions, in order.
    pub fn block_senders(&self, at: &BlockRef<M::Hash>) -> Result<Vec<M::Address>, ChainError> {
        Ok(self.tx_entries(at)?.into_iter().map(|e| e.sender).collect())
    }

    fn header_of_canonical(&self, number: u64, hash: &M::Hash) -> Result<M::Header, ChainError> {
        self.header(hash)?.ok_or_else(|| self.missing::<Headers<M>>(number, hash))
    }

    /// The block `at` from its header and stored body.
    fn assemble(&self, at: BlockRef<M::Hash>, header: M::Header) -> Result<Block<M>, ChainError> {
        let record = self.body_record(&at)?;
        let transactions = self.per_tx::<Transactions<M>, _>(&at, record.tx_count)?;
        Ok(Block { header, transactions, extra: record.extra })
    }

    /// The body record of block `at`.
    pub(crate) fn body_record(&self, at: &BlockRef<M::Hash>) -> Result<BodyRecord<M>, ChainError> {
        self.not_pruned::<Bodies<M>>(at)?;
        match self.store.get::<Bodies<M>>(&block_key::<M>(at))? {
            Some(record) => Ok(record),
            None => Err(self.absent::<Bodies<M>>(at)),
        }
    }

    /// The receipts of block `at`, in order.
    pub(crate) fn block_receipts(&self, at: &BlockRef<M::Hash>) -> Result<Vec<M::Receipt>, ChainError> {
        let record = self.body_record(at)?;
        self.per_tx::<Receipts<M>, _>(at, record.tx_count)
    }

    /// What the indexes hold for each transaction of block `at`: hash, sender, recipient.
    pub(crate) fn tx_entries(&self, at: &BlockRef<M::Hash>) -> Result<Vec<TxEntry<M>>, ChainError> {
        let record = self.body_record(at)?;
        let txs = self.per_tx::<Transactions<M>, _>(at, record.tx_count)?;
        let mut senders: Vec<Option<M::Address>> = txs.iter().map(|t| t.sender()).collect();
        if senders.iter().any(Option::is_none) {
            let stored = self.per_tx_scan::<Senders<M>, _>(at)?;
            for (i, s) in stored {
                if let Some(slot) = senders.get_mut(i as usize) {
                    *slot = Some(s);
                }
            }
        }
        txs.iter()
            .zip(senders)
            .map(|(tx, sender)| {
                let sender = sender.ok_or_else(|| self.missing::<Senders<M>>(at.number, &at.hash))?;
                Ok(TxEntry { hash: tx.hash(), sender, to: tx.to() })
            })
            .collect()
    }

    /// Every record of per-transaction table `T` for block `at`, which must have `count` of
    /// them: one range scan.
    fn per_tx<T, X>(&self, at: &BlockRef<M::Hash>, count: u32) -> Result<Vec<X>, ChainError>
    where
        T: Table<Key = TxKey<M>, Value = Stored<X>>,
    {
        let found = self.per_tx_scan::<T, X>(at)?;
        if found.len() != count as usize || found.iter().enumerate().any(|(i, (idx, _))| *idx != i as u32) {
            return Err(self.missing::<T>(at.number, &at.hash));
        }
        Ok(found.into_iter().map(|(_, x)| x).collect())
    }

    /// The records of per-transaction table `T` for block `at` with their indexes.
    fn per_tx_scan<T, X>(&self, at: &BlockRef<M::Hash>) -> Result<Vec<(u32, X)>, ChainError>
    where
        T: Table<Key = TxKey<M>, Value = Stored<X>>,
    {
        self.not_pruned::<T>(at)?;
        let prefix = block_key::<M>(at);
        let mut out = Vec::new();
        for entry in self.store.iter_prefix::<T, _>(&prefix, Direction::Forward)? {
            let ((_, _, index), value) = entry?;
            out.push((index, value.0));
        }
        Ok(out)
    }

    /// Record `T` of the transaction at `loc`: one point read.
    pub(crate) fn tx_part<T, X>(&self, loc: &TxLocation<M::Hash>) -> Result<X, ChainError>
    where
        T: Table<Key = TxKey<M>, Value = Stored<X>>,
    {
        let at = BlockRef { number: loc.number, hash: loc.block };
        self.not_pruned::<T>(&at)?;
        match self.store.get::<T>(&loc_key::<M>(loc))? {
            Some(v) => Ok(v.0),
            None => Err(self.absent::<T>(&at)),
        }
    }

    /// The per-block record of `T` for `block`: `Pruned` below the pruning boundary,
    /// `Missing` (damage) if absent above it.
    pub(crate) fn required<T, X>(&self, block: &BlockRef<M::Hash>) -> Result<X, ChainError>
    where
        T: Table<Key = (u64, Fixed<M::Hash>), Value = Stored<X>>,
    {
        self.not_pruned::<T>(block)?;
        match self.store.get::<T>(&block_key::<M>(block))? {
            Some(v) => Ok(v.0),
            None => Err(self.absent::<T>(block)),
        }
    }

    fn not_pruned<T: Table>(&self, block: &BlockRef<M::Hash>) -> Result<(), ChainError> {
        let pruned_below = self.pointers().pruned_below;
        if block.number < pruned_below {
            return Err(ChainError::Pruned { what: T::NAME, number: block.number, pruned_below });
        }
        Ok(())
    }

    /// A record found absent: pruned meanwhile (pruning may race a read), or damage.
    fn absent<T: Table>(&self, block: &BlockRef<M::Hash>) -> ChainError {
        let pruned_below = self.pointers().pruned_below;
        if block.number < pruned_below {
            ChainError::Pruned { what: T::NAME, number: block.number, pruned_below }
        } else {
            self.missing::<T>(block.number, &block.hash)
        }
    }

    pub(crate) fn missing<T: Table>(&self, number: u64, hash: &M::Hash) -> ChainError {
        ChainError::Missing { table: T::NAME, block: hex(hash.as_ref()), number }
    }
}

/// The per-transaction key of `loc`.
fn loc_key<M: ChainModel>(loc: &TxLocation<M::Hash>) -> TxKey<M> {
    tx_key::<M>(&BlockRef { number: loc.number, hash: loc.block }, loc.index)
}
