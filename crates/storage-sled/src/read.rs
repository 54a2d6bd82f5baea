//! Reads straight from the trees (sled has no snapshots).

use storage_api::{Direction, KvRead, RawRange, ReadError};

use crate::SledStore;
use crate::error::map_err;
use crate::iter::SledCursor;

impl SledStore {
    fn tree(&self, table: &str) -> Result<&sled::Tree, ReadError> {
        self.index(table).map(|i| &self.trees[i]).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))
    }
}

impl KvRead for SledStore {
    type Cursor<'a> = SledCursor;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        let value = self.tree(table)?.get(key).map_err(map_err)?;
        Ok(value.map(|v| f(&v)))
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        let tree = self.tree(table)?;
        for (i, key) in keys.iter().enumerate() {
            let value = tree.get(key).map_err(map_err)?;
            f(i, value.as_deref());
        }
        Ok(())
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<SledCursor, ReadError> {
        let tree = self.tree(table)?;
        if range.is_empty() {
            return Ok(SledCursor::empty(direction));
        }
        Ok(SledCursor::new(crate::iter::range(tree, &range), direction))
    }
}
