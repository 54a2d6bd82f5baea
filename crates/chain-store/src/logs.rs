//! Log filtering with `eth_getLogs` semantics over a block range.

use std::collections::{BTreeSet, HashMap};

use memchr::memmem;

use storage_api::{Direction, KvReader, ReadExt};

use crate::ChainStore;
use crate::bloom::{Bloom, BloomBits, SECTION_SIZE};
use crate::error::ChainError;
use crate::model::{BlockRef, ChainModel, Log, Receipt, Transaction, TxLocation};
use crate::schema::{BloomBitsTable, Canonical, LogBloom, Transactions};

/// Candidate blocks handed to a [`LogSource`] at once.
const CANDIDATES_PER_READ: usize = 256;

/// Topic positions a filter may constrain.
pub const MAX_TOPICS: usize = 4;

/// A log filter: a block range, emitting addresses, and topics by position.
///
/// A log matches if its address is one of `addresses` (any address if empty) and, for each
/// position `i` with a non-empty `topics[i]`, its topic `i` is one of those alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter<A, H> {
    /// Lowest height (clamped to the first block).
    pub from: u64,
    /// Highest height, inclusive (clamped to the head).
    pub to: u64,
    /// Emitting contracts; empty for any.
    pub addresses: Vec<A>,
    /// Per position, the alternatives; empty for any. At most four positions.
    pub topics: Vec<Vec<H>>,
}

impl<A, H> LogFilter<A, H> {
    /// Every log of heights `from..=to`.
    pub fn range(from: u64, to: u64) -> Self {
        LogFilter { from, to, addresses: Vec::new(), topics: Vec::new() }
    }

    /// Only logs emitted by one of `addresses`.
    pub fn addresses(mut self, addresses: impl IntoIterator<Item = A>) -> Self {
        self.addresses = addresses.into_iter().collect();
        self
    }

    /// Only logs whose topic at `position` is one of `alternatives`.
    pub fn topic(mut self, position: usize, alternatives: impl IntoIterator<Item = H>) -> Self {
        if self.topics.len() <= position {
            self.topics.resize_with(position + 1, Vec::new);
        }
        self.topics[position] = alternatives.into_iter().collect();
        self
    }
}

/// A log that matched, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogMatch<H, L> {
    /// The block's height.
    pub block_number: u64,
    /// The block's hash.
    pub block_hash: H,
    /// The transaction's hash.
    pub tx_hash: H,
    /// The transaction's index in the block.
    pub tx_index: u32,
    /// The log's index in the block.
    pub log_index: u32,
    /// The log.
    pub log: L,
}

/// A [`LogMatch`] of model `M`.
pub type LogMatchOf<M> = LogMatch<<M as ChainModel>::Hash, <M as ChainModel>::Log>;

/// Where a log filter reads: the local store, or (in the facade) an archive of history pruned
/// locally. [`filter_logs`] runs the same algorithm over either.
pub trait LogSource<M: ChainModel> {
    /// The source's error.
    type Error: From<ChainError>;

    /// The vectors of `bits` in bloom-bit section `section`, in the order asked; `None` if the
    /// source has not built that section (its blocks are then tested one bloom at a time).
    fn section_bits(&self, section: u64, bits: &[u16]) -> Result<Option<Vec<BloomBits>>, Self::Error>;

    /// The blooms of canonical blocks `from..=to`, ascending (heights without one are left out).
    fn blooms(&self, from: u64, to: u64) -> Result<Vec<(u64, Bloom)>, Self::Error>;

    /// Appends the logs of canonical blocks `numbers` (ascending) that match `filter`, in
    /// order. A source that fetches blocks from far away fetches them together.
    fn block_logs(
        &self,
        numbers: &[u64],
        filter: &LogFilter<M::Address, M::Hash>,
        out: &mut Vec<LogMatchOf<M>>,
    ) -> Result<(), Self::Error>;
}

/// Appends the logs of `src`'s blocks `from..=to` matching `filter` to `out`, in chain order;
/// `TooManyLogs` once `out` holds more than `cap`.
///
/// Sections the source has built narrow the range to candidate blocks by reading three bit
/// vectors per filter item; the rest of the range is tested block by block against the
/// blooms. Only candidates' receipts are read.
pub fn filter_logs<M: ChainModel, Src: LogSource<M>>(
    src: &Src,
    filter: &LogFilter<M::Address, M::Hash>,
    from: u64,
    to: u64,
    cap: usize,
    out: &mut Vec<LogMatchOf<M>>,
) -> Result<(), Src::Error> {
    if filter.topics.len() > MAX_TOPICS {
        return Err(ChainError::TooManyTopics(filter.topics.len()).into());
    }
    // Each group is a set of alternatives (OR); a block must match every group (AND).
    let mut groups: Vec<Vec<[u16; 3]>> = Vec::new();
    if !filter.addresses.is_empty() {
        groups.push(filter.addresses.iter().map(|a| M::bloom_positions(a.as_ref())).collect());
    }
    for alternatives in filter.topics.iter().filter(|t| !t.is_empty()) {
        groups.push(alternatives.iter().map(|t| M::bloom_positions(t.as_ref())).collect());
    }
    if from > to {
        return Ok(());
    }
    for section in from / SECTION_SIZE..=to / SECTION_SIZE {
        let lo = from.max(section * SECTION_SIZE);
        let hi = to.min(section * SECTION_SIZE + SECTION_SIZE - 1);
        let candidates: Vec<u64> = if groups.is_empty() {
            (lo..=hi).collect()
        } else if let Some(bits) = section_candidates(src, section, &groups)? {
            bits.offsets().map(|o| section * SECTION_SIZE + o).filter(|h| (lo..=hi).contains(h)).collect()
        } else {
            src.blooms(lo, hi)?
                .into_iter()
                .filter(|(_, bloom)| groups.iter().all(|g| g.iter().any(|bits| bits.iter().all(|&b| bloom.bit(b)))))
                .map(|(h, _)| h)
                .collect()
        };
        for chunk in candidates.chunks(CANDIDATES_PER_READ) {
            src.block_logs(chunk, filter, out)?;
            if out.len() > cap {
                return Err(ChainError::TooManyLogs { cap, reached: out[cap].block_number }.into());
            }
        }
    }
    Ok(())
}

/// The blocks of a built section whose bit vectors allow every group; `None` if the source has
/// not built it.
fn section_candidates<M: ChainModel, Src: LogSource<M>>(
    src: &Src,
    section: u64,
    groups: &[Vec<[u16; 3]>],
) -> Result<Option<BloomBits>, Src::Error> {
    let bits: Vec<u16> = groups.iter().flatten().flatten().copied().collect::<BTreeSet<u16>>().into_iter().collect();
    let Some(found) = src.section_bits(section, &bits)? else { return Ok(None) };
    let vectors: HashMap<u16, BloomBits> = bits.iter().copied().zip(found).collect();
    let mut all = BloomBits::ones();
    for group in groups {
        let mut any = BloomBits::zero();
        for item in group {
            let mut v = vectors[&item[0]].clone();
            v.and(&vectors[&item[1]]);
            v.and(&vectors[&item[2]]);
            any.or(&v);
        }
        all.and(&any);
    }
    Ok(Some(all))
}

/// Appends the logs in `receipts` (of block `block`) matching `filter`; `tx_hash(i)` gives
/// transaction `i`'s hash, asked only for transactions with a match.
pub(crate) fn push_matches<M: ChainModel>(
    block: BlockRef<M::Hash>,
    receipts: &[M::Receipt],
    mut tx_hash: impl FnMut(u32) -> Result<M::Hash, ChainError>,
    filter: &LogFilter<M::Address, M::Hash>,
    out: &mut Vec<LogMatchOf<M>>,
) -> Result<(), ChainError> {
    let mut log_index = 0u32;
    for (tx_index, receipt) in receipts.iter().enumerate() {
        let mut hash = None;
        for log in receipt.logs() {
            if log_matches::<M>(log, filter) {
                let h = match hash {
                    Some(h) => h,
                    None => *hash.insert(tx_hash(tx_index as u32)?),
                };
                out.push(LogMatch {
                    block_number: block.number,
                    block_hash: block.hash,
                    tx_hash: h,
                    tx_index: tx_index as u32,
                    log_index,
                    log: log.clone(),
                });
            }
            log_index += 1;
        }
    }
    Ok(())
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// The logs of canonical blocks matching `filter`, in chain order. Fails with
    /// `TooManyLogs` once more than `cap` match, and with `Pruned` if the range starts below
    /// the pruning boundary (the facade answers those heights from the history archive).
    pub fn logs(&self, filter: &LogFilter<M::Address, M::Hash>, cap: usize) -> Result<Vec<LogMatchOf<M>>, ChainError> {
        if filter.topics.len() > MAX_TOPICS {
            return Err(ChainError::TooManyTopics(filter.topics.len()));
        }
        let ptrs = self.pointers();
        let (Some(head), Some(first)) = (ptrs.head, ptrs.first) else { return Ok(Vec::new()) };
        let (from, to) = (filter.from.max(first.number), filter.to.min(head.number));
        if from > to {
            return Ok(Vec::new());
        }
        if from < ptrs.pruned_below {
            return Err(ChainError::Pruned { what: "receipts", number: from, pruned_below: ptrs.pruned_below });
        }
        let mut out = Vec::new();
        filter_logs(self, filter, from, to, cap, &mut out)?;
        Ok(out)
    }
}

/// The local store as a log source.
impl<S: KvReader, M: ChainModel> LogSource<M> for ChainStore<S, M> {
    type Error = ChainError;

    fn section_bits(&self, section: u64, bits: &[u16]) -> Result<Option<Vec<BloomBits>>, ChainError> {
        if section >= self.pointers().bloom_sections {
            return Ok(None);
        }
        let keys: Vec<(u64, u16)> = bits.iter().map(|b| (section, *b)).collect();
        let found = self.store.multi_get::<BloomBitsTable<M>>(&keys)?;
        Ok(Some(found.into_iter().map(|v| v.unwrap_or_else(BloomBits::zero)).collect()))
    }

    fn blooms(&self, from: u64, to: u64) -> Result<Vec<(u64, Bloom)>, ChainError> {
        self.store.iter::<LogBloom<M>>(from..=to, Direction::Forward)?.map(|e| Ok(e?)).collect()
    }

    fn block_logs(
        &self,
        numbers: &[u64],
        filter: &LogFilter<M::Address, M::Hash>,
        out: &mut Vec<LogMatchOf<M>>,
    ) -> Result<(), ChainError> {
        let needles = Needles::of::<M>(filter);
        for &number in numbers {
            let Some(hash) = self.store.get::<Canonical<M>>(&number)? else { continue };
            let block = BlockRef { number, hash: hash.0 };
            let receipts = match &needles {
                None => self.block_receipts(&block)?,
                Some(n) => match self.block_receipts_if(&block, |bytes| n.may_match(bytes))? {
                    Some(receipts) => receipts,
                    None => continue,
                },
            };
            let tx_hash = |index: u32| {
                let loc = TxLocation { number, block: block.hash, index };
                Ok(self.tx_part::<Transactions<M>, _>(&loc)?.hash())
            };
            push_matches::<M>(block, &receipts, tx_hash, filter, out)?;
        }
        Ok(())
    }
}

/// The bytes a block's stored receipts must hold for any of its logs to match a filter, where
/// the model stores log items verbatim ([`ChainModel::LOG_ITEMS_VERBATIM`]): per group of the
/// filter (the addresses; each constrained topic position) one of its alternatives. A block
/// lacking a group's every alternative has no match and is not decoded: a bloom false positive
/// costs a byte search (most candidates are false positives once blooms fill up, as mainnet's
/// do).
pub(crate) struct Needles {
    groups: Vec<Vec<memmem::Finder<'static>>>,
}

impl Needles {
    /// The needles of `filter`; `None` where the model's encoding does not allow the search
    /// or the filter asks for nothing (every log matches).
    pub(crate) fn of<M: ChainModel>(filter: &LogFilter<M::Address, M::Hash>) -> Option<Self> {
        if !M::LOG_ITEMS_VERBATIM {
            return None;
        }
        let finder = |item: &[u8]| memmem::Finder::new(item).into_owned();
        let mut groups = Vec::new();
        if !filter.addresses.is_empty() {
            groups.push(filter.addresses.iter().map(|a| finder(a.as_ref())).collect::<Vec<_>>());
        }
        for alternatives in filter.topics.iter().filter(|t| !t.is_empty()) {
            groups.push(alternatives.iter().map(|t| finder(t.as_ref())).collect());
        }
        (!groups.is_empty()).then_some(Needles { groups })
    }

    /// Whether `bytes` hold at least one alternative of every group.
    pub(crate) fn may_match(&self, bytes: &[u8]) -> bool {
        self.groups.iter().all(|group| group.iter().any(|f| f.find(bytes).is_some()))
    }
}

/// Whether `log` matches `filter` exactly (no bloom involved).
pub(crate) fn log_matches<M: ChainModel>(log: &M::Log, filter: &LogFilter<M::Address, M::Hash>) -> bool {
    (filter.addresses.is_empty() || filter.addresses.contains(&log.address()))
        && filter
            .topics
            .iter()
            .enumerate()
            .all(|(i, alts)| alts.is_empty() || log.topics().get(i).is_some_and(|t| alts.contains(t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packed::Packed;
    use crate::synthetic::{Address, B256, Synthetic, SyntheticLog, SyntheticReceipt};

    fn receipt(logs: &[(u8, &[u8])]) -> SyntheticReceipt {
        let logs = logs
            .iter()
            .map(|(a, topics)| SyntheticLog {
                address: Address([*a; 20]),
                topics: topics.iter().map(|t| B256([*t; 32])).collect(),
                data: vec![0xee; 40],
            })
            .collect();
        SyntheticReceipt { success: true, gas_used: 21_000, logs }
    }

    /// The stored bytes of a block's receipts hold every log item (the model's promise), and
    /// a filter on an item nowhere in the block is refused without a decode.
    #[test]
    fn needles_find_every_stored_item_and_refuse_absent_ones() {
        let receipts = [receipt(&[(1, &[10, 11]), (2, &[12])]), receipt(&[]), receipt(&[(3, &[13, 14, 15])])];
        let mut bytes = Vec::new();
        storage_api::ValueCodec::encode_value(&Packed::pack(receipts.iter()).unwrap(), &mut bytes).unwrap();
        let filter = |addresses: &[u8], topic0: &[u8]| {
            LogFilter::<Address, B256>::range(0, 10)
                .addresses(addresses.iter().map(|a| Address([*a; 20])))
                .topic(0, topic0.iter().map(|t| B256([*t; 32])))
        };
        let may = |f: &LogFilter<Address, B256>| Needles::of::<Synthetic>(f).expect("items asked").may_match(&bytes);
        for log in receipts.iter().flat_map(|r| &r.logs) {
            assert!(may(&filter(&[log.address.0[0]], &[])));
            for t in &log.topics {
                assert!(may(&filter(&[], &[t.0[0]])));
            }
        }
        assert!(may(&filter(&[9, 2], &[99, 12])), "one alternative of each group is enough");
        assert!(!may(&filter(&[9], &[])), "an address nowhere in the block");
        assert!(!may(&filter(&[1], &[99])), "every group must be present");
        assert!(Needles::of::<Synthetic>(&LogFilter::range(0, 10)).is_none(), "no item asked: every log matches");
    }
}
