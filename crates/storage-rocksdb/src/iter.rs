//! Cursors: RocksDB raw iterators bounded by the range through read options.

use rocksdb::{DB, DBRawIteratorWithThreadMode};
use storage_api::iter::{RawCursor, RawEntry};
use storage_api::{Direction, ReadError};

use crate::error::map_err;

/// A cursor over one column family; the range bounds live in its read options.
pub struct RocksCursor<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
    direction: Direction,
    started: bool,
    done: bool,
}

impl<'a> RocksCursor<'a> {
    pub(crate) fn new(it: DBRawIteratorWithThreadMode<'a, DB>, direction: Direction, empty: bool) -> Self {
        RocksCursor { it, direction, started: false, done: empty }
    }
}

impl RawCursor for RocksCursor<'_> {
    fn next_entry(&mut self) -> Option<Result<RawEntry<'_>, ReadError>> {
        if self.done {
            return None;
        }
        match (self.started, self.direction) {
            (false, Direction::Forward) => self.it.seek_to_first(),
            (false, Direction::Reverse) => self.it.seek_to_last(),
            (true, Direction::Forward) => self.it.next(),
            (true, Direction::Reverse) => self.it.prev(),
        }
        self.started = true;
        if !self.it.valid() {
            self.done = true;
            return match self.it.status() {
                Ok(()) => None,
                Err(e) => Some(Err(map_err(e).into())),
            };
        }
        self.it.item().map(Ok)
    }
}
