//! Cursors over an in-memory table.

use std::ops::Bound;
use std::sync::Arc;

use super::Map;
use crate::error::ReadError;
use crate::iter::{Direction, RawCursor, RawEntry, RawRange};

/// A cursor over one table of a frozen table set. Each step is one ordered-map lookup from
/// the last key returned.
#[derive(Debug)]
pub struct MemCursor {
    data: Arc<Vec<Map>>,
    table: usize,
    range: RawRange,
    direction: Direction,
    last: Option<Vec<u8>>,
    done: bool,
}

impl MemCursor {
    pub(crate) fn new(data: Arc<Vec<Map>>, table: usize, range: RawRange, direction: Direction) -> Self {
        let done = range.is_empty();
        MemCursor { data, table, range, direction, last: None, done }
    }
}

impl RawCursor for MemCursor {
    fn next_entry(&mut self) -> Option<Result<RawEntry<'_>, ReadError>> {
        if self.done {
            return None;
        }
        let lower = self.range.lower.as_deref().map_or(Bound::Unbounded, Bound::Included);
        let upper = self.range.upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
        let last = self.last.as_deref().map(Bound::Excluded);
        let map = &self.data[self.table];
        let found = match self.direction {
            Direction::Forward => map.range::<[u8], _>((last.unwrap_or(lower), upper)).next(),
            Direction::Reverse => map.range::<[u8], _>((lower, last.unwrap_or(upper))).next_back(),
        };
        match found {
            Some((k, v)) => {
                self.last = Some(k.clone());
                Some(Ok((k.as_slice(), v.as_slice())))
            }
            None => {
                self.done = true;
                None
            }
        }
    }
}
