//! Read-through: a read the local store answers with `Pruned` is answered from the archive
//! instead (blocks, receipts, transactions, logs, vertices), checked against what the local
//! store still knows (the canonical hash, the transaction's location, the vertex's hash). An
//! archive that is down is `StorageError::History(Unavailable)`, never "not found".

use chain_store::{
    Block, Bloom, BloomBits, ChainError, ChainModel, ChainStore, Located, LogFilter, LogMatchOf, LogSource, Unarchived,
    filter_logs,
};
use dag_store::{DagError, DagStore, StoredVertex, VertexHash};
use storage_api::KvReader;
use storage_history::{HistoryTier, Kind};

use super::History;
use crate::error::StorageError;

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

    /// The archived block `number` (checked to be `hash` when given); `Ok(None)` when the
    /// archive does not hold it.
    fn archived(
        &self,
        history: &History,
        number: u64,
        hash: Option<&M::Hash>,
    ) -> Result<Option<Unarchived<M>>, StorageError> {
        match history.chain_record(number)? {
            Some(record) => Ok(Some(Unarchived::decode(number, &record, hash)?)),
            None => Ok(None),
        }
    }

    /// `local`, or for a block pruned locally, `from_archive` on its archived record (the
    /// original `Pruned` error when the archive does not hold it either).
    fn or_archived<T>(
        &self,
        local: Result<T, ChainError>,
        hash: Option<&M::Hash>,
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
        self.or_archived(self.chain.block(hash), Some(hash), |u| u.block().map(Some))
    }

    /// The receipts of block `hash`.
    pub(crate) fn receipts(&self, hash: &M::Hash) -> Result<Option<Vec<M::Receipt>>, StorageError> {
        self.or_archived(self.chain.receipts(hash), Some(hash), |u| u.receipts().map(Some))
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
        self.or_archived(local, Some(&loc.block), |u| {
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

    /// A canonical transaction's sender by transaction hash.
    pub(crate) fn sender(&self, tx_hash: &M::Hash) -> Result<Option<Located<M::Address, M>>, StorageError> {
        self.located(tx_hash, self.chain.sender(tx_hash), |u, i| u.sender(i))
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
        if !history.covers(Kind::Chain, from, archived_to)? {
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
        blooms
            .into_iter()
            .map(|(n, b)| {
                let bytes: [u8; chain_store::BLOOM_BYTES] =
                    b.try_into().map_err(|_| ChainError::BadRecord { number: n, reason: "bloom length".into() })?;
                Ok((n, Bloom::from_bytes(bytes)))
            })
            .collect()
    }

    fn block_logs(
        &self,
        numbers: &[u64],
        filter: &LogFilter<M::Address, M::Hash>,
        out: &mut Vec<LogMatchOf<M>>,
    ) -> Result<(), StorageError> {
        let records = self.history.chain_records(numbers)?;
        for (&number, record) in numbers.iter().zip(records) {
            let Some(record) = record else {
                return Err(ChainError::Pruned { what: "receipts", number, pruned_below: self.pruned_below }.into());
            };
            let hash = self.through.chain.canonical_hash(number)?;
            Unarchived::<M>::decode(number, &record, hash.as_ref())?.match_logs(filter, out)?;
        }
        Ok(())
    }
}

/// Bytes of a bloom-bit vector.
const SECTION_VECTOR: usize = chain_store::SECTION_SIZE as usize / 8;
