//! Reads through a read transaction, shared by the store (one transaction per call) and its
//! snapshots (one transaction for the snapshot's life).

use redb::{ReadTransaction, ReadableDatabase};
use storage_api::{Direction, KvRead, RawRange, ReadError};

use crate::error::map_err;
use crate::iter::RedbCursor;
use crate::{RawTable, RedbStore};

pub(crate) fn table_def(store: &RedbStore, table: &str) -> Result<RawTable<'static>, ReadError> {
    named(&store.names, table)
}

/// The physical table `table` among `names`.
pub(crate) fn named(names: &[&'static str], table: &str) -> Result<RawTable<'static>, ReadError> {
    names
        .iter()
        .find(|n| **n == table)
        .map(|n| RawTable::new(n))
        .ok_or_else(|| ReadError::UnknownTable(table.to_owned()))
}

pub(crate) fn get_with<R>(
    txn: &ReadTransaction,
    def: RawTable<'_>,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>, ReadError> {
    let table = txn.open_table(def).map_err(map_err)?;
    let value = table.get(key).map_err(map_err)?;
    Ok(value.map(|v| f(v.value())))
}

pub(crate) fn multi_get_with(
    txn: &ReadTransaction,
    def: RawTable<'_>,
    keys: &[&[u8]],
    f: &mut dyn FnMut(usize, Option<&[u8]>),
) -> Result<(), ReadError> {
    let table = txn.open_table(def).map_err(map_err)?;
    for (i, key) in keys.iter().enumerate() {
        let value = table.get(*key).map_err(map_err)?;
        f(i, value.as_ref().map(|v| v.value()));
    }
    Ok(())
}

pub(crate) fn cursor(
    txn: &ReadTransaction,
    def: RawTable<'_>,
    range: RawRange,
    direction: Direction,
) -> Result<RedbCursor, ReadError> {
    if range.is_empty() {
        return Ok(RedbCursor::empty(direction));
    }
    let table = txn.open_table(def).map_err(map_err)?;
    let lower = range.lower.as_deref().map_or(std::ops::Bound::Unbounded, std::ops::Bound::Included);
    let upper = range.upper.as_deref().map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
    let iter = table.range::<&[u8]>((lower, upper)).map_err(map_err)?;
    Ok(RedbCursor::new(iter, direction))
}

impl RedbStore {
    fn read_txn(&self) -> Result<ReadTransaction, ReadError> {
        self.db().begin_read().map_err(|e| ReadError::Backend(map_err(e)))
    }
}

impl KvRead for RedbStore {
    type Cursor<'a> = RedbCursor;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        let def = table_def(self, table)?;
        get_with(&self.read_txn()?, def, key, f)
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        let def = table_def(self, table)?;
        multi_get_with(&self.read_txn()?, def, keys, f)
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<RedbCursor, ReadError> {
        let def = table_def(self, table)?;
        cursor(&self.read_txn()?, def, range, direction)
    }
}
