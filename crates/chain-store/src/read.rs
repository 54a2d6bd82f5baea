//! Reads: headers, blocks, receipts, transactions and senders, by hash, by height and over
//! ranges. A transaction, receipt or sender by hash is one index read and one point read that
//! decodes that item alone; a block's transactions (or receipts) are one read.

use std::ops::RangeBounds;

use storage_api::{Direction, KvReader, ReadExt, Table};

use crate::ChainStore;
use crate::canonical::TxEntry;
use crate::error::ChainError;
use crate::model::{Block, BlockHeader, BlockRef, ChainModel, Transaction, TxLocation, hex};
use crate::packed::{Packed, item_from_bytes};
use crate::schema::{
    Bodies, BodyRecord, Canonical, Fixed, Headers, Receipts, Senders, Stored, Transactions, TxIndex, block_key,
};

/// A transaction or receipt with its location.
pub type Located<T, M> = (T, TxLocation<<M as ChainModel>::Hash>);

/// A canonical transaction with what a reply about it needs besides: where it is, its sender
/// and its block's header.
#[derive(Debug, Clone)]
pub struct TxInBlock<M: ChainModel> {
    /// The transaction.
    pub tx: M::Tx,
    /// Its block and position.
    pub location: TxLocation<M::Hash>,
    /// Its sender (as stored; never recovered again).
    pub sender: M::Address,
    /// Its block's header.
    pub header: M::Header,
}

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

    /// The canonical block at `number`, which must be there (at or below the head).
    pub(crate) fn canonical_ref(&self, number: u64) -> Result<BlockRef<M::Hash>, ChainError> {
        let hash = self.canonical_hash(number)?.ok_or_else(|| ChainError::Missing {
            table: Canonical::<M>::NAME,
            block: "(the canonical hash)".into(),
            number,
        })?;
        Ok(BlockRef { number, hash })
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
        // Not kept for transactions that carry their sender.
        if let Some(s) = self.tx_part::<Transactions<M>, _>(&loc)?.sender() {
            return Ok(Some((s, loc)));
        }
        Ok(Some((self.tx_part::<Senders<M>, _>(&loc)?, loc)))
    }

    /// A canonical transaction with its location, sender and block header: point reads of the
    /// index, the one transaction (and sender), and the header; nothing else of the block is
    /// decoded. `Pruned` for a pruned block's transaction.
    pub fn transaction_in_block(&self, tx_hash: &M::Hash) -> Result<Option<TxInBlock<M>>, ChainError> {
        let Some(location) = self.tx_location(tx_hash)? else { return Ok(None) };
        let tx: M::Tx = self.tx_part::<Transactions<M>, _>(&location)?;
        let sender = match tx.sender() {
            Some(s) => s,
            None => self.tx_part::<Senders<M>, _>(&location)?,
        };
        let header = self.header_of_canonical(location.number, &location.block)?;
        Ok(Some(TxInBlock { tx, location, sender, header }))
    }

    /// The senders of block `at`'s transactions, in order. Where the model's transactions do
    /// not carry theirs (Ethereum's), the block's packed senders alone are read; the
    /// transactions are decoded only where they carry them.
    pub fn block_senders(&self, at: &BlockRef<M::Hash>) -> Result<Vec<M::Address>, ChainError> {
        let record = self.body_record(at)?;
        let key = storage_api::KeyCodec::to_key_bytes(&block_key::<M>(at));
        match self.store.get_raw_with(Senders::<M>::NAME, &key, crate::packed::unpack_bytes::<M::Address>)? {
            Some(senders) => {
                let senders = senders.map_err(decode_error::<Senders<M>>)?;
                if senders.len() != record.tx_count as usize {
                    return Err(self.missing::<Senders<M>>(at.number, &at.hash));
                }
                Ok(senders)
            }
            None => Ok(self.tx_entries(at)?.into_iter().map(|e| e.sender).collect()),
        }
    }

    fn header_of_canonical(&self, number: u64, hash: &M::Hash) -> Result<M::Header, ChainError> {
        self.header(hash)?.ok_or_else(|| self.missing::<Headers<M>>(number, hash))
    }

    /// The block `at` from its header and stored body.
    fn assemble(&self, at: BlockRef<M::Hash>, header: M::Header) -> Result<Block<M>, ChainError> {
        let record = self.body_record(&at)?;
        let transactions = self.all::<Transactions<M>, _>(&at, Some(record.tx_count))?;
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
    /// One read: the receipt count was checked against the transactions when the block was
    /// stored, and the integrity check compares them (log filters read many blocks' receipts,
    /// and a second read per block for the body record halved their speed).
    pub(crate) fn block_receipts(&self, at: &BlockRef<M::Hash>) -> Result<Vec<M::Receipt>, ChainError> {
        self.all::<Receipts<M>, _>(at, None)
    }

    /// The receipts of block `at` if `keep` accepts their stored bytes (the value as stored,
    /// offset table included); `None` without decoding them if it does not.
    pub(crate) fn block_receipts_if(
        &self,
        at: &BlockRef<M::Hash>,
        keep: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Vec<M::Receipt>>, ChainError> {
        self.all_if::<Receipts<M>, _>(at, None, keep)
    }

    /// What the indexes hold for each transaction of block `at`: hash, sender, recipient.
    pub(crate) fn tx_entries(&self, at: &BlockRef<M::Hash>) -> Result<Vec<TxEntry<M>>, ChainError> {
        let record = self.body_record(at)?;
        let txs = self.all::<Transactions<M>, _>(at, Some(record.tx_count))?;
        let stored = if txs.iter().any(|t| t.sender().is_none()) {
            self.all::<Senders<M>, _>(at, Some(record.tx_count))?
        } else {
            Vec::new()
        };
        Ok(txs
            .iter()
            .enumerate()
            .map(|(i, tx)| TxEntry { hash: tx.hash(), sender: tx.sender().unwrap_or_else(|| stored[i]), to: tx.to() })
            .collect())
    }

    /// Whether the address index holds `address` for transaction `index` of canonical block
    /// `number` (as its sender or recipient).
    pub fn indexes_address(&self, address: &M::Address, number: u64, index: u32) -> Result<bool, ChainError> {
        Ok(self.store.get::<crate::schema::AddressIndex<M>>(&(Fixed(*address), number, index))?.is_some())
    }

    /// Every item of the packed table `T` for block `at` (decoded in place where the engine
    /// allows), which must hold `count` of them if given.
    fn all<T, X>(&self, at: &BlockRef<M::Hash>, count: Option<u32>) -> Result<Vec<X>, ChainError>
    where
        T: Table<Key = (u64, Fixed<M::Hash>), Value = Packed<X>>,
        X: serde::Serialize + serde::de::DeserializeOwned,
    {
        Ok(self.all_if::<T, X>(at, count, |_| true)?.unwrap_or_default())
    }

    /// [`Self::all`] if `keep` accepts the stored bytes; `None`, nothing decoded, if it does
    /// not. A value whose offset table is damaged is an error either way.
    fn all_if<T, X>(
        &self,
        at: &BlockRef<M::Hash>,
        count: Option<u32>,
        keep: impl FnOnce(&[u8]) -> bool,
    ) -> Result<Option<Vec<X>>, ChainError>
    where
        T: Table<Key = (u64, Fixed<M::Hash>), Value = Packed<X>>,
        X: serde::Serialize + serde::de::DeserializeOwned,
    {
        self.not_pruned::<T>(at)?;
        let key = storage_api::KeyCodec::to_key_bytes(&block_key::<M>(at));
        let read = self.store.get_raw_with(T::NAME, &key, |bytes| {
            if keep(bytes) {
                Some(crate::packed::unpack_bytes::<X>(bytes))
            } else {
                crate::packed::check_table(bytes).err().map(Err)
            }
        })?;
        let items = match read {
            Some(Some(items)) => items.map_err(|source| decode_error::<T>(source))?,
            Some(None) => return Ok(None),
            None => return Err(self.absent::<T>(at)),
        };
        if count.is_some_and(|c| items.len() != c as usize) {
            return Err(self.missing::<T>(at.number, &at.hash));
        }
        Ok(Some(items))
    }

    /// Item `loc.index` of the packed table `T` for the block at `loc`: one point read, that
    /// item alone decoded (the value is read in place where the engine allows).
    pub(crate) fn tx_part<T, X>(&self, loc: &TxLocation<M::Hash>) -> Result<X, ChainError>
    where
        T: Table<Key = (u64, Fixed<M::Hash>), Value = Packed<X>>,
        X: serde::Serialize + serde::de::DeserializeOwned,
    {
        let at = BlockRef { number: loc.number, hash: loc.block };
        self.not_pruned::<T>(&at)?;
        let key = storage_api::KeyCodec::to_key_bytes(&block_key::<M>(&at));
        let item = self.store.get_raw_with(T::NAME, &key, |bytes| item_from_bytes::<X>(bytes, loc.index as usize))?;
        match item {
            Some(Ok(Some(x))) => Ok(x),
            Some(Ok(None)) => Err(self.missing::<T>(at.number, &at.hash)),
            Some(Err(source)) => Err(decode_error::<T>(source)),
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

pub(crate) fn decode_error<T: Table>(source: storage_api::codec::CodecError) -> ChainError {
    ChainError::Read(storage_api::ReadError::Decode { table: T::NAME, part: storage_api::error::Part::Value, source })
}
