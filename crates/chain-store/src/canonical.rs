//! What a canonical block writes: the one statement of the entries that make a stored block
//! part of the canonical chain — its height in the canonical index, each transaction's
//! location, each party's address-index entry, its logs bloom. Every path that writes, removes
//! or checks them goes through [`entries`]: apply and revert (inserts and reorgs), the bulk
//! import and its rollback, and the integrity check. A change to the canonical tables is made
//! here once (and in the schema).
//!
//! A block's own records — header, body, transactions, receipts, senders, change set — are
//! not here: they are stored whether or not the block is canonical.

use crate::bloom::Bloom;
use crate::model::{BlockRef, ChainModel, TxLocation};

/// What the indexes need of one transaction of a block that joins or leaves the canonical
/// chain.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TxEntry<M: ChainModel> {
    pub(crate) hash: M::Hash,
    pub(crate) sender: M::Address,
    pub(crate) to: Option<M::Address>,
}

/// One entry a canonical block owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry<'a, M: ChainModel> {
    /// [`Canonical`](crate::schema::Canonical): the height names the block.
    Canonical {
        /// The height.
        number: u64,
        /// The block.
        hash: M::Hash,
    },
    /// [`TxIndex`](crate::schema::TxIndex): where a transaction is.
    Tx {
        /// The transaction's hash.
        hash: M::Hash,
        /// Its block and index there.
        at: TxLocation<M::Hash>,
    },
    /// [`AddressIndex`](crate::schema::AddressIndex): a party of a transaction (its sender, and
    /// its recipient unless that is the sender: one entry per party).
    Address {
        /// (party, height, index in the block).
        key: (M::Address, u64, u32),
        /// The transaction.
        tx: M::Hash,
    },
    /// [`LogBloom`](crate::schema::LogBloom): the block's bloom, when known (a checkpoint block
    /// of a model whose headers carry none has none).
    Bloom {
        /// The height.
        number: u64,
        /// The bloom.
        bloom: Option<&'a Bloom>,
    },
}

/// The entries canonical block `at` owns, given its transactions (`txs`, in block order) and
/// its bloom: the canonical entry first, then each transaction's ([`tx_entries`]), then the
/// bloom.
pub(crate) fn entries<'a, M: ChainModel>(
    at: BlockRef<M::Hash>,
    txs: &'a [TxEntry<M>],
    bloom: Option<&'a Bloom>,
) -> impl Iterator<Item = Entry<'a, M>> + 'a {
    let indexes = txs.iter().enumerate().flat_map(move |(i, tx)| tx_entries(at, i as u32, tx));
    std::iter::once(Entry::Canonical { number: at.number, hash: at.hash })
        .chain(indexes)
        .chain(std::iter::once(Entry::Bloom { number: at.number, bloom }))
}

/// The entries transaction `index` of canonical block `at` owns: its location, then its
/// parties (the sender, and the recipient unless that is the sender).
pub(crate) fn tx_entries<'a, M: ChainModel>(
    at: BlockRef<M::Hash>,
    index: u32,
    tx: &TxEntry<M>,
) -> impl Iterator<Item = Entry<'a, M>> + 'a {
    let BlockRef { number, hash: block } = at;
    let location = Entry::Tx { hash: tx.hash, at: TxLocation { number, block, index } };
    let sender = Entry::Address { key: (tx.sender, number, index), tx: tx.hash };
    let recipient =
        tx.to.filter(|to| *to != tx.sender).map(|to| Entry::Address { key: (to, number, index), tx: tx.hash });
    [Some(location), Some(sender), recipient].into_iter().flatten()
}
