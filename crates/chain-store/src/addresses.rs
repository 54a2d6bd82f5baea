//! An address's transactions: the canonical transactions that sent to or from an address, in pages.

use std::ops::Bound;

use storage_api::{Direction, KvReader, ReadExt};

use crate::ChainStore;
use crate::error::ChainError;
use crate::model::ChainModel;
use crate::schema::{AddressIndex, Fixed};

/// The order of a query of an address's transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Highest block first (and, within a block, the last transaction first).
    NewestFirst,
    /// Lowest block first.
    OldestFirst,
}

/// Where a page of an address's transactions ended; pass it back to get the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressCursor {
    /// The height of the last transaction returned.
    pub number: u64,
    /// Its index in the block.
    pub index: u32,
}

/// A query of an address's transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressQuery {
    /// The order.
    pub order: Order,
    /// Lowest height included.
    pub min_height: u64,
    /// Highest height included.
    pub max_height: u64,
    /// Entries per page (at least one).
    pub limit: usize,
    /// Continue after this position (from the previous page's `next`).
    pub after: Option<AddressCursor>,
}

impl AddressQuery {
    /// The first page, newest first, of all heights.
    pub fn newest_first(limit: usize) -> Self {
        AddressQuery { order: Order::NewestFirst, min_height: 0, max_height: u64::MAX, limit, after: None }
    }

    /// The first page, oldest first, of all heights.
    pub fn oldest_first(limit: usize) -> Self {
        AddressQuery { order: Order::OldestFirst, ..Self::newest_first(limit) }
    }

    /// Only heights in `min..=max`.
    pub fn heights(self, min: u64, max: u64) -> Self {
        AddressQuery { min_height: min, max_height: max, ..self }
    }

    /// The page after `cursor`.
    pub fn after(self, cursor: AddressCursor) -> Self {
        AddressQuery { after: Some(cursor), ..self }
    }
}

/// One transaction in an address's history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddressTx<H> {
    /// The block height.
    pub number: u64,
    /// The transaction's index in the block.
    pub index: u32,
    /// The transaction hash.
    pub tx_hash: H,
}

/// A page of an address's transactions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressPage<H> {
    /// The transactions, in the query's order.
    pub items: Vec<AddressTx<H>>,
    /// The cursor for the next page; `None` when this is the last.
    pub next: Option<AddressCursor>,
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// The canonical transactions sent from or to `address`, one page at a time. A
    /// transaction from an address to itself appears once.
    pub fn address_transactions(
        &self,
        address: &M::Address,
        query: &AddressQuery,
    ) -> Result<AddressPage<M::Hash>, ChainError> {
        let limit = query.limit.max(1);
        let address = Fixed(*address);
        let mut lower = Bound::Included((address, query.min_height, 0u32));
        let mut upper = Bound::Included((address, query.max_height, u32::MAX));
        let direction = match query.order {
            Order::OldestFirst => Direction::Forward,
            Order::NewestFirst => Direction::Reverse,
        };
        if let Some(c) = query.after {
            let at = (address, c.number, c.index);
            match query.order {
                Order::OldestFirst => lower = lower_max(lower, at),
                Order::NewestFirst => upper = upper_min(upper, at),
            }
        }
        let mut items = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for entry in self.store.iter::<AddressIndex<M>>((lower, upper), direction)? {
            let ((_, number, index), tx) = entry?;
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(AddressTx { number, index, tx_hash: tx.0 });
        }
        let next = if more { items.last().map(|t| AddressCursor { number: t.number, index: t.index }) } else { None };
        Ok(AddressPage { items, next })
    }
}

type Key<A> = (A, u64, u32);

fn lower_max<A: Ord + Copy>(lower: Bound<Key<A>>, after: Key<A>) -> Bound<Key<A>> {
    match lower {
        Bound::Included(l) if l > after => Bound::Included(l),
        _ => Bound::Excluded(after),
    }
}

fn upper_min<A: Ord + Copy>(upper: Bound<Key<A>>, before: Key<A>) -> Bound<Key<A>> {
    match upper {
        Bound::Included(u) if u < before => Bound::Included(u),
        _ => Bound::Excluded(before),
    }
}
