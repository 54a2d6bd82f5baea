//! Snapshots of the in-memory store.

use std::sync::Arc;

use super::{Map, MemCursor, get_from};
use crate::error::ReadError;
use crate::iter::{Direction, RawRange};
use crate::read::KvRead;

/// A frozen view of a [`MemStore`](super::MemStore).
#[derive(Debug, Clone)]
pub struct MemSnapshot {
    data: Arc<Vec<Map>>,
    names: Vec<&'static str>,
}

impl MemSnapshot {
    pub(crate) fn new(data: Arc<Vec<Map>>, names: Vec<&'static str>) -> Self {
        MemSnapshot { data, names }
    }

    fn index(&self, table: &str) -> Result<usize, ReadError> {
        self.names.iter().position(|t| *t == table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))
    }
}

impl KvRead for MemSnapshot {
    type Cursor<'a> = MemCursor;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        Ok(get_from(&self.data, self.index(table)?, key, f))
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        let t = self.index(table)?;
        for (i, k) in keys.iter().enumerate() {
            f(i, self.data[t].get(*k).map(Vec::as_slice));
        }
        Ok(())
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<MemCursor, ReadError> {
        Ok(MemCursor::new(Arc::clone(&self.data), self.index(table)?, range, direction))
    }
}
