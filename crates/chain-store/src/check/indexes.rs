//! The transaction and address indexes in the integrity check, without a point read per entry
//! on a healthy store.
//!
//! The canonical walk adds up the entries each block should have ([`Expected`]); a sequential
//! scan of each index adds up the entries it holds at or above the pruning boundary. Both sums
//! are order-independent ([`EntrySum`]: a count and the wrapping sum of each entry's BLAKE3
//! hash), so equal sums mean the index holds exactly the expected entries: a missing, wrong,
//! stale or extra entry changes its index's sum (but for a 2⁻¹²⁸ chance). Only an index whose
//! sums differ is then checked entry by entry ([`ChainStore::index_entries`]), which names the
//! problems: expected entries looked up in batches, and every entry of the index against the
//! canonical chain.

use storage_api::{Direction, KvReader, ReadExt, Table};

use super::{IntegrityReport, decoded};
use crate::canonical::{self, TxEntry};
use crate::error::ChainError;
use crate::model::{BlockRef, ChainModel, Transaction, TxLocation, hex};
use crate::schema::{AddressIndex, Canonical, Fixed, Senders, Transactions, TxIndex, block_key};
use crate::{ChainStore, Pointers};

/// An order-independent digest of a set of entries: how many, and the wrapping sum of the
/// first 128 bits of each entry's BLAKE3 hash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct EntrySum {
    count: u64,
    sum: u128,
}

impl EntrySum {
    /// Adds the entry made of `parts` (each length-prefixed, so parts cannot run together).
    fn add(&mut self, parts: &[&[u8]]) {
        let mut hasher = blake3::Hasher::new();
        for part in parts {
            hasher.update(&(part.len() as u32).to_le_bytes());
            hasher.update(part);
        }
        let mut first = [0u8; 16];
        first.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
        self.count += 1;
    }

    fn merge(&mut self, other: EntrySum) {
        self.count += other.count;
        self.sum = self.sum.wrapping_add(other.sum);
    }
}

/// How many entries, and the digest: what a report says of sums that differ.
impl std::fmt::Display for EntrySum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} entries, digest {:032x}", self.count, self.sum)
    }
}

/// The sums of the transaction index and the address index: expected by the walk, or held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct IndexSums {
    pub(super) txs: EntrySum,
    pub(super) addresses: EntrySum,
}

impl IndexSums {
    fn add_tx<H: AsRef<[u8]>>(&mut self, hash: &H, at: &TxLocation<H>) {
        self.txs.add(&[hash.as_ref(), &at.number.to_be_bytes(), at.block.as_ref(), &at.index.to_be_bytes()]);
    }

    fn add_address<A: AsRef<[u8]>, H: AsRef<[u8]>>(&mut self, party: &A, number: u64, index: u32, tx: &H) {
        self.addresses.add(&[party.as_ref(), &number.to_be_bytes(), &index.to_be_bytes(), tx.as_ref()]);
    }

    pub(super) fn merge(&mut self, other: IndexSums) {
        self.txs.merge(other.txs);
        self.addresses.merge(other.addresses);
    }
}

/// Which indexes to check entry by entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Doubt {
    pub(super) txs: bool,
    pub(super) addresses: bool,
}

/// A transaction-index entry: the transaction's hash, and where it is.
type TxIndexEntry<M> = (Fixed<<M as ChainModel>::Hash>, TxLocation<<M as ChainModel>::Hash>);

/// An address-index entry: (party, height, index in the block), and the transaction's hash.
type AddressIndexEntry<M> = ((Fixed<<M as ChainModel>::Address>, u64, u32), <M as ChainModel>::Hash);

/// The index entries one canonical block's transactions should have.
pub(super) struct Expected<M: ChainModel> {
    txs: Vec<TxIndexEntry<M>>,
    addresses: Vec<AddressIndexEntry<M>>,
}

impl<M: ChainModel> Expected<M> {
    /// The entries of block `at`'s transactions (`txs`, with their indexes), with the senders
    /// the transactions do not carry from `senders`; also the indexes of transactions without
    /// a sender (which have no entries here).
    pub(super) fn of(at: BlockRef<M::Hash>, txs: &[(u32, M::Tx)], senders: &[(u32, M::Address)]) -> (Self, Vec<u32>) {
        let mut expected =
            Expected { txs: Vec::with_capacity(txs.len()), addresses: Vec::with_capacity(2 * txs.len()) };
        let mut without_sender = Vec::new();
        for (index, tx) in txs {
            let sender = tx.sender().or_else(|| senders.iter().find(|(j, _)| j == index).map(|(_, s)| *s));
            let Some(sender) = sender else {
                without_sender.push(*index);
                continue;
            };
            let entry = TxEntry { hash: tx.hash(), sender, to: tx.to() };
            for owned in canonical::tx_entries::<M>(at, *index, &entry) {
                match owned {
                    canonical::Entry::Tx { hash, at: location } => expected.txs.push((Fixed(hash), location)),
                    canonical::Entry::Address { key: (party, number, index), tx } => {
                        expected.addresses.push(((Fixed(party), number, index), tx));
                    }
                    // The walk follows the canonical index and checks the bloom itself.
                    canonical::Entry::Canonical { .. } | canonical::Entry::Bloom { .. } => {}
                }
            }
        }
        (expected, without_sender)
    }

    /// Adds these entries to `sums`.
    pub(super) fn sum(&self, sums: &mut IndexSums) {
        for (hash, at) in &self.txs {
            sums.add_tx(&hash.0, at);
        }
        for ((party, number, index), tx) in &self.addresses {
            sums.add_address(&party.0, *number, *index, tx);
        }
    }
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// The sums of the entries the two indexes hold at or above the pruning boundary, in one
    /// sequential scan each; every entry is decoded (failures noted), and the transaction-index
    /// entries of pruned heights (which the walk does not reach) are checked against the
    /// canonical index one by one.
    pub(super) fn index_sums(
        &self,
        r: &mut IntegrityReport,
        ptrs: &Pointers<M::Hash>,
    ) -> Result<IndexSums, ChainError> {
        let head = ptrs.head.map_or(0, |h| h.number);
        let mut sums = IndexSums::default();
        for entry in self.store.iter_all::<TxIndex<M>>(Direction::Forward)? {
            let Some((tx, loc)) = decoded(r, TxIndex::<M>::NAME, "entry", entry) else { continue };
            if loc.0.number >= ptrs.pruned_below {
                sums.add_tx(&tx.0, &loc.0);
            } else if self.canonical_matches(BlockRef { number: loc.0.number, hash: loc.0.block }, head)? == Some(false)
            {
                r.note(TxIndex::<M>::NAME, hex(tx.0.as_ref()), "points to a block that is not canonical");
            }
        }
        for entry in self.store.iter_all::<AddressIndex<M>>(Direction::Forward)? {
            let Some(((party, number, index), tx)) = decoded(r, AddressIndex::<M>::NAME, "entry", entry) else {
                continue;
            };
            if number >= ptrs.pruned_below {
                sums.add_address(&party.0, number, index, &tx.0);
            }
        }
        Ok(sums)
    }

    /// Checks the doubted indexes entry by entry and names what is wrong: every entry the
    /// canonical blocks at or above the pruning boundary should have, looked up in one batch
    /// per block and index (missing or wrong), then every entry the index holds there (stale:
    /// pointing to a block that is not canonical, or to a transaction not at its position).
    /// Values that do not decode were noted by [`Self::index_sums`] and the walk.
    pub(super) fn index_entries(
        &self,
        r: &mut IntegrityReport,
        ptrs: &Pointers<M::Hash>,
        doubt: Doubt,
    ) -> Result<(), ChainError> {
        let (Some(first), Some(head)) = (ptrs.first, ptrs.head) else { return Ok(()) };
        let from = first.number.max(ptrs.pruned_below);
        for entry in self.store.iter::<Canonical<M>>(from..=head.number, Direction::Forward)? {
            let Ok((number, hash)) = entry else { continue };
            let at = BlockRef { number, hash: hash.0 };
            let key = || format!("{number} {}", hex(at.hash.as_ref()));
            let txs = items(self.store.get::<Transactions<M>>(&block_key::<M>(&at)));
            let senders = items(self.store.get::<Senders<M>>(&block_key::<M>(&at)));
            let (expected, _) = Expected::<M>::of(at, &txs, &senders);
            if doubt.txs {
                let keys: Vec<_> = expected.txs.iter().map(|(k, _)| *k).collect();
                let found = self.index_values::<TxIndex<M>>(&keys)?;
                for ((k, location), stored) in expected.txs.iter().zip(found) {
                    if stored.is_some_and(|loc| loc.is_none_or(|loc| loc.0 != *location)) {
                        r.note(
                            TxIndex::<M>::NAME,
                            hex(k.0.as_ref()),
                            format!("does not point to {} index {}", key(), location.index),
                        );
                    }
                }
            }
            if doubt.addresses {
                let keys: Vec<_> = expected.addresses.iter().map(|(k, _)| *k).collect();
                let found = self.index_values::<AddressIndex<M>>(&keys)?;
                for ((k, tx), stored) in expected.addresses.iter().zip(found) {
                    if stored.is_some_and(|t| t.is_none_or(|t| t.0 != *tx)) {
                        r.note(
                            AddressIndex::<M>::NAME,
                            address_key(&k.0.0, k.1, k.2),
                            format!("missing or wrong entry for tx {}", hex(tx.as_ref())),
                        );
                    }
                }
            }
        }
        // Each doubted index scanned once more (the other one not at all).
        if doubt.txs {
            for (tx, loc) in self.store.iter_all::<TxIndex<M>>(Direction::Forward)?.filter_map(Result::ok) {
                let at = BlockRef { number: loc.0.number, hash: loc.0.block };
                if at.number >= ptrs.pruned_below && self.canonical_matches(at, head.number)? == Some(false) {
                    r.note(TxIndex::<M>::NAME, hex(tx.0.as_ref()), "points to a block that is not canonical");
                }
            }
        }
        if doubt.addresses {
            let entries = self.store.iter_all::<AddressIndex<M>>(Direction::Forward)?.filter_map(Result::ok);
            for ((party, number, index), tx) in entries.filter(|((_, number, _), _)| *number >= ptrs.pruned_below) {
                let loc = self.store.get::<TxIndex<M>>(&Fixed(tx.0)).ok().flatten();
                if !loc.is_some_and(|l| l.0.number == number && l.0.index == index) {
                    r.note(
                        AddressIndex::<M>::NAME,
                        address_key(&party.0, number, index),
                        "entry for a transaction not at this canonical position",
                    );
                }
            }
        }
        Ok(())
    }

    /// The values of index `T` at `keys`, read in one batch: per key, `Some(value)` (`None`
    /// when absent), or `None` where the value does not decode (already noted by the scan).
    fn index_values<T: Table>(&self, keys: &[T::Key]) -> Result<Vec<Option<Option<T::Value>>>, ChainError> {
        match self.store.multi_get::<T>(keys) {
            Ok(values) => Ok(values.into_iter().map(Some).collect()),
            // A value that does not decode: each key alone.
            Err(storage_api::ReadError::Decode { .. }) => {
                Ok(keys.iter().map(|k| self.store.get::<T>(k).ok()).collect())
            }
            Err(e) => Err(e.into()),
        }
    }
}

/// The items of a packed value with their indexes; none where it is missing or does not
/// decode (the walk noted that).
fn items<X: serde::Serialize + serde::de::DeserializeOwned>(
    value: Result<Option<crate::packed::Packed<X>>, storage_api::ReadError>,
) -> Vec<(u32, X)> {
    let unpacked = value.ok().flatten().and_then(|p| p.unpack().ok()).unwrap_or_default();
    unpacked.into_iter().enumerate().map(|(i, x)| (i as u32, x)).collect()
}

/// An address-index key, readable: the party, the height, the index in the block.
fn address_key<A: AsRef<[u8]>>(party: &A, number: u64, index: u32) -> String {
    format!("{} {number} {index}", hex(party.as_ref()))
}
