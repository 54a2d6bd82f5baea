//! Read-through: a read the local store answers with `Pruned` is answered from the archive
//! instead (blocks, receipts, transactions, logs, vertices), checked against what the local
//! store still knows: an archived block's header must hash to the local canonical hash, and
//! its transactions, receipts and bloom must match that header's roots (every check an insert
//! makes) before anything of it is used or cached; a sender must be in the local address
//! index; a vertex must hash to its local hash. Whoever can write the archive cannot make the
//! node serve a transaction, receipt or log the chain does not hold. An archive that is down is
//! `StorageError::History(Unavailable)`, never "not found".

use chain_eth::inclusion::Item;
use chain_store::{
    Block, BlockRef, Bloom, BloomBits, ChainError, ChainModel, ChainStore, Located, LogFilter, LogMatchOf, LogSource,
    TxInBlock, Unarchived, filter_logs,
};
use dag_store::{DagError, DagStore, StoredVertex, VertexHash};
use storage_api::KvReader;
use storage_history::HistoryTier;

use super::History;
use crate::error::StorageError;
use crate::model::{HistoryProofs, NodeModel, ProvenItem};

/// The local stores with the archive behind them (when one is configured for reading).
pub(crate) struct Through<'a, S, M: ChainModel> {
    pub(crate) chain: &'a ChainStore<S, M>,
    pub(crate) dag: &'a DagStore<S>,
    pub(crate) history: Option<&'a History>,
}

impl<'a, S: KvReader, M: ChainModel> Through<'a, S, M> {
    pub(crate) fn new(chain: &'a ChainStore<S, M>, dag: &'a DagStore<S>, history: Option<&'a History>) -> Self {
        Through { chain, dag, history: history.filter(|h| h.config.read_through) }
    }

    /// The archived block `number`, checked to be block `hash` with contents that match its
    /// header; `Ok(None)` when the archive does not hold it.
    fn archived(&self, history: &History, number: u64, hash: &M::Hash) -> Result<Option<Unarchived<M>>, StorageError> {
        match history.chain_record(number, |record| verified::<M>(number, record, hash).map(drop))? {
            Some(record) => Ok(Some(Unarchived::decode(number, &record, Some(hash))?)),
            None => Ok(None),
        }
    }

    /// `local`, or for a block pruned locally, `from_archive` on its archived record (the
    /// original `Pruned` error when the archive does not hold it either).
    fn or_archived<T>(
        &self,
        local: Result<T, ChainError>,
        hash: &M::Hash,
        from_archive: impl FnOnce(Unarchived<M>) -> Result<T, ChainError>,
    ) -> Result<T, StorageError> {
        match (local, self.history) {
            (Err(pruned @ ChainError::Pruned { number, .. }), Some(h)) => match self.archived(h, number, hash)? {
                Some(u) => Ok(from_archive(u)?),
                None => Err(pruned.into()),
            },
            (r, _) => Ok(r?),
        }
    }

    /// Block `hash`.
    pub(crate) fn block(&self, hash: &M::Hash) -> Result<Option<Block<M>>, StorageError> {
        self.or_archived(self.chain.block(hash), hash, |u| u.block().map(Some))
    }

    /// The receipts of block `hash`.
    pub(crate) fn receipts(&self, hash: &M::Hash) -> Result<Option<Vec<M::Receipt>>, StorageError> {
        self.or_archived(self.chain.receipts(hash), hash, |u| u.receipts().map(Some))
    }

    /// The part of a located transaction that `local` reads, or that `part` takes from the
    /// archived block.
    fn located<T>(
        &self,
        tx_hash: &M::Hash,
        local: Result<Option<Located<T, M>>, ChainError>,
        part: impl FnOnce(&Unarchived<M>, u32) -> Result<Option<T>, ChainError>,
    ) -> Result<Option<Located<T, M>>, StorageError> {
        let Err(ChainError::Pruned { .. }) = &local else { return Ok(local?) };
        let Some(loc) = self.chain.tx_location(tx_hash)? else { return Ok(None) };
        self.or_archived(local, &loc.block, |u| {
            let what = part(&u, loc.index)?.ok_or(ChainError::BadRecord {
                number: loc.number,
                reason: format!("has no transaction {}", loc.index),
            })?;
            Ok(Some((what, loc)))
        })
    }

    /// A canonical transaction by hash.
    pub(crate) fn transaction(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Tx, M>>, StorageError> {
        self.located(tx_hash, self.chain.transaction(tx_hash), |u, i| {
            let tx = u.transaction(i)?;
            if let Some(t) = &tx
                && chain_store::Transaction::hash(t) != *tx_hash
            {
                return Err(ChainError::BadRecord {
                    number: u.block_ref().number,
                    reason: "transaction hash differs".into(),
                });
            }
            Ok(tx)
        })
    }

    /// A canonical transaction's receipt by transaction hash.
    pub(crate) fn receipt(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Receipt, M>>, StorageError> {
        self.located(tx_hash, self.chain.receipt(tx_hash), |u, i| u.receipt(i))
    }

    /// A canonical transaction's sender by transaction hash. An archived sender (for models
    /// whose transactions do not carry theirs) must be the one the local address index holds
    /// for that transaction.
    pub(crate) fn sender(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Address, M>>, StorageError> {
        let chain = self.chain;
        self.located(tx_hash, chain.sender(tx_hash), |u, i| {
            let Some(sender) = u.sender(i)? else { return Ok(None) };
            let number = u.block_ref().number;
            if !chain.indexes_address(&sender, number, i)? {
                return Err(ChainError::BadRecord {
                    number,
                    reason: format!("its sender of transaction {i} is not the one this node indexed"),
                });
            }
            Ok(Some(sender))
        })
    }

    /// A canonical transaction with its location, sender and block header (see
    /// [`ChainStore::transaction_in_block`]); a pruned block's from the archive (the header is
    /// never pruned).
    pub(crate) fn transaction_in_block(&self, tx_hash: &M::Hash) -> Result<Option<TxInBlock<M>>, StorageError> {
        match self.chain.transaction_in_block(tx_hash) {
            Err(ChainError::Pruned { .. }) => {}
            local => return Ok(local?),
        }
        let Some((tx, location)) = self.transaction(tx_hash)? else { return Ok(None) };
        let Some((sender, _)) = self.sender(tx_hash)? else { return Ok(None) };
        let header = self
            .chain
            .header(&location.block)?
            .ok_or_else(|| ChainError::BadRecord { number: location.number, reason: "its header is missing".into() })?;
        Ok(Some(TxInBlock { tx, location, sender, header }))
    }

    /// The senders of block `at`'s transactions, in order; an archived block's each checked
    /// against the local address index (as [`Through::sender`] does).
    pub(crate) fn block_senders(&self, at: &BlockRef<M::Hash>) -> Result<Vec<M::Address>, StorageError> {
        let chain = self.chain;
        self.or_archived(chain.block_senders(at), &at.hash, |u| {
            let count = u.block()?.transactions.len() as u32;
            (0..count)
                .map(|i| {
                    let bad = |reason: String| ChainError::BadRecord { number: at.number, reason };
                    let sender = u.sender(i)?.ok_or_else(|| bad(format!("has no sender of transaction {i}")))?;
                    if !chain.indexes_address(&sender, at.number, i)? {
                        return Err(bad(format!("its sender of transaction {i} is not the one this node indexed")));
                    }
                    Ok(sender)
                })
                .collect()
        })
    }

    /// Logs matching `filter`: heights pruned locally from the archive, the rest locally, in
    /// chain order, at most `cap`.
    pub(crate) fn logs(
        &self,
        filter: &LogFilter<M::Address, M::Hash>,
        cap: usize,
    ) -> Result<Vec<LogMatchOf<M>>, StorageError> {
        let ptrs = self.chain.pointers();
        let (Some(history), Some(head), Some(first)) = (self.history, ptrs.head, ptrs.first) else {
            return Ok(self.chain.logs(filter, cap)?);
        };
        let (from, to) = (filter.from.max(first.number), filter.to.min(head.number));
        if from > to || from >= ptrs.pruned_below {
            return Ok(self.chain.logs(filter, cap)?);
        }
        let archived_to = to.min(ptrs.pruned_below - 1);
        // Only what the archive verifiably holds of this node's chain is read from it.
        if !super::upload::verified_chain(history, self.chain)?.is_some_and(|v| v.covers(from, archived_to)) {
            return Err(ChainError::Pruned { what: "receipts", number: from, pruned_below: ptrs.pruned_below }.into());
        }
        let mut out = Vec::new();
        filter_logs(
            &ArchiveLogs { through: self, history, pruned_below: ptrs.pruned_below },
            filter,
            from,
            archived_to,
            cap,
            &mut out,
        )?;
        if to >= ptrs.pruned_below {
            filter_logs(self.chain, filter, ptrs.pruned_below, to, cap, &mut out)?;
        }
        Ok(out)
    }

    /// Vertex `hash`: pruned ones from the archive, by the sequence their metadata keeps.
    pub(crate) fn vertex(&self, hash: &VertexHash) -> Result<Option<StoredVertex>, StorageError> {
        match (self.dag.vertex(hash), self.history) {
            (Err(pruned @ DagError::Pruned(_)), Some(h)) => {
                let Some(seq) = self.dag.finalization_of(hash)? else { return Err(pruned.into()) };
                match h.read(h.archive.vertex(seq))? {
                    Some((stored_hash, record)) if stored_hash.as_slice() == hash.0.as_slice() => {
                        Ok(Some(dag_store::unarchive(*hash, &record)?))
                    }
                    Some(_) => Err(DagError::CorruptVertex(*hash).into()),
                    None => Err(pruned.into()),
                }
            }
            (r, _) => Ok(r?),
        }
    }
}

/// The archive as a log source (for heights pruned locally).
struct ArchiveLogs<'t, 'a, S, M: ChainModel> {
    through: &'t Through<'a, S, M>,
    history: &'t History,
    pruned_below: u64,
}

impl<S: KvReader, M: ChainModel> LogSource<M> for ArchiveLogs<'_, '_, S, M> {
    type Error = StorageError;

    fn section_bits(&self, section: u64, bits: &[u16]) -> Result<Option<Vec<BloomBits>>, StorageError> {
        let Some(vectors) = self.history.read(self.history.archive.section_bits(section, bits))? else {
            return Ok(None);
        };
        vectors
            .into_iter()
            .map(|v| {
                let bytes: Box<[u8; SECTION_VECTOR]> =
                    v.into_boxed_slice().try_into().map_err(|_| ChainError::BadRecord {
                        number: section * chain_store::SECTION_SIZE,
                        reason: "bloom-bit vector length".into(),
                    })?;
                Ok(BloomBits(bytes))
            })
            .collect::<Result<Vec<_>, StorageError>>()
            .map(Some)
    }

    fn blooms(&self, from: u64, to: u64) -> Result<Vec<(u64, Bloom)>, StorageError> {
        let blooms = self.history.read(self.history.archive.blooms(from, to))?;
        if blooms.len() as u64 != to - from + 1 {
            return Err(ChainError::Pruned { what: "log blooms", number: from, pruned_below: self.pruned_below }.into());
        }
        let chain = self.through.chain;
        blooms
            .into_iter()
            .map(|(n, b)| {
                let bytes: [u8; chain_store::BLOOM_BYTES] =
                    b.try_into().map_err(|_| ChainError::BadRecord { number: n, reason: "bloom length".into() })?;
                let bloom = Bloom::from_bytes(bytes);
                // Where the model's headers carry the bloom, the local header vouches for it.
                if let Some(header) = chain.header_by_number(n)?
                    && let Some(claimed) = M::header_bloom(&header)
                    && claimed != bloom
                {
                    return Err(ChainError::BadRecord {
                        number: n,
                        reason: "its archived bloom is not its header's".into(),
                    }
                    .into());
                }
                Ok((n, bloom))
            })
            .collect()
    }

    fn block_logs(
        &self,
        numbers: &[u64],
        filter: &LogFilter<M::Address, M::Hash>,
        out: &mut Vec<LogMatchOf<M>>,
    ) -> Result<(), StorageError> {
        let chain = self.through.chain;
        let hashes = numbers.iter().map(|&n| local_hash(chain, n)).collect::<Result<Vec<_>, _>>()?;
        let hash_of = |n: u64| numbers.iter().position(|&m| m == n).map(|i| hashes[i]);
        let records = self.history.chain_records(numbers, |n, record| match hash_of(n) {
            Some(hash) => verified::<M>(n, record, &hash).map(drop),
            None => Err(ChainError::BadRecord { number: n, reason: "not asked for".into() }.into()),
        })?;
        for ((&number, record), hash) in numbers.iter().zip(records).zip(&hashes) {
            let Some(record) = record else {
                return Err(ChainError::Pruned { what: "receipts", number, pruned_below: self.pruned_below }.into());
            };
            Unarchived::<M>::decode(number, &record, Some(hash))?.match_logs(filter, out)?;
        }
        Ok(())
    }
}

/// The local canonical hash of `number` (headers and the canonical index are never pruned):
/// what an archived block must hash to.
fn local_hash<S: KvReader, M: ChainModel>(chain: &ChainStore<S, M>, number: u64) -> Result<M::Hash, StorageError> {
    chain.canonical_hash(number)?.ok_or_else(|| {
        ChainError::BadRecord {
            number,
            reason: "this node has no canonical hash to check its archived record against".into(),
        }
        .into()
    })
}

/// The archived record of block `number`, decoded and checked: its header is block `hash`,
/// and its transactions, receipts (and their bloom) match that header — every check an insert
/// makes.
fn verified<M: ChainModel>(number: u64, record: &[u8], hash: &M::Hash) -> Result<Unarchived<M>, StorageError> {
    let u = Unarchived::<M>::decode(number, record, Some(hash))?;
    u.verify(None)?;
    Ok(u)
}

/// Bytes of a bloom-bit vector.
const SECTION_VECTOR: usize = chain_store::SECTION_SIZE as usize / 8;

impl<S: KvReader, M: NodeModel> Through<'_, S, M> {
    /// The proof that a canonical transaction or its receipt is in its block's trie, the
    /// block read through the archive if pruned locally (see `NodeReader::inclusion_proof`).
    pub(crate) fn inclusion_proof(
        &self,
        tx_hash: &M::Hash,
        item: Item,
    ) -> Result<Option<<M::Proofs as HistoryProofs<M>>::Proof>, StorageError> {
        let Some(at) = self.chain.tx_location(tx_hash)? else { return Ok(None) };
        let missing = || {
            StorageError::Chain(ChainError::BadRecord {
                number: at.number,
                reason: "the transaction index names a block the store does not hold".into(),
            })
        };
        let block = self.block(&at.block)?.ok_or_else(missing)?;
        let proof = match item {
            Item::Transaction => M::Proofs::prove(&block, ProvenItem::Transaction, at.index)?,
            Item::Receipt => {
                let receipts = self.receipts(&at.block)?.ok_or_else(missing)?;
                M::Proofs::prove(&block, ProvenItem::Receipt(&receipts), at.index)?
            }
        };
        Ok(Some(proof))
    }
}
