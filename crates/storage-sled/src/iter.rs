//! Cursors over sled range iterators.

use std::ops::Bound;

use sled::IVec;
use storage_api::iter::{RawCursor, RawEntry};
use storage_api::{Direction, RawRange, ReadError};

use crate::error::map_err;

/// The sled iterator over `range` of `tree`.
pub(crate) fn range(tree: &sled::Tree, range: &RawRange) -> sled::Iter {
    let lower = range.lower.clone().map_or(Bound::Unbounded, Bound::Included);
    let upper = range.upper.clone().map_or(Bound::Unbounded, Bound::Excluded);
    tree.range::<Vec<u8>, _>((lower, upper))
}

/// A cursor over one sled tree.
pub struct SledCursor {
    iter: Option<sled::Iter>,
    direction: Direction,
    current: Option<(IVec, IVec)>,
}

impl SledCursor {
    pub(crate) fn new(iter: sled::Iter, direction: Direction) -> Self {
        SledCursor { iter: Some(iter), direction, current: None }
    }

    pub(crate) fn empty(direction: Direction) -> Self {
        SledCursor { iter: None, direction, current: None }
    }
}

impl RawCursor for SledCursor {
    fn next_entry(&mut self) -> Option<Result<RawEntry<'_>, ReadError>> {
        let iter = self.iter.as_mut()?;
        let next = match self.direction {
            Direction::Forward => iter.next(),
            Direction::Reverse => iter.next_back(),
        };
        match next {
            None => {
                self.iter = None;
                None
            }
            Some(Err(e)) => {
                self.iter = None;
                Some(Err(map_err(e).into()))
            }
            Some(Ok(pair)) => {
                let (k, v) = self.current.insert(pair);
                Some(Ok((&k[..], &v[..])))
            }
        }
    }
}
