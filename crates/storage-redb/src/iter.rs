//! Cursors over redb range iterators, which keep their read transaction alive themselves.

use redb::{AccessGuard, Range};
use storage_api::iter::{RawCursor, RawEntry};
use storage_api::{Direction, ReadError};

use crate::error::map_err;

type Guard = AccessGuard<'static, &'static [u8]>;

/// A cursor over one redb table.
pub struct RedbCursor {
    range: Option<Range<'static, &'static [u8], &'static [u8]>>,
    direction: Direction,
    current: Option<(Guard, Guard)>,
}

impl RedbCursor {
    pub(crate) fn new(range: Range<'static, &'static [u8], &'static [u8]>, direction: Direction) -> Self {
        RedbCursor { range: Some(range), direction, current: None }
    }

    pub(crate) fn empty(direction: Direction) -> Self {
        RedbCursor { range: None, direction, current: None }
    }
}

impl RawCursor for RedbCursor {
    fn next_entry(&mut self) -> Option<Result<RawEntry<'_>, ReadError>> {
        let range = self.range.as_mut()?;
        let next = match self.direction {
            Direction::Forward => range.next(),
            Direction::Reverse => range.next_back(),
        };
        match next {
            None => {
                self.range = None;
                None
            }
            Some(Err(e)) => {
                self.range = None;
                Some(Err(map_err(e).into()))
            }
            Some(Ok(pair)) => {
                let (k, v) = self.current.insert(pair);
                Some(Ok((k.value(), v.value())))
            }
        }
    }
}
