//! Snapshots: a read transaction held open.

use redb::{ReadTransaction, ReadableDatabase};
use storage_api::{Direction, KvRead, KvSnapshots, RawRange, ReadError};

use crate::RedbStore;
use crate::error::map_err;
use crate::iter::RedbCursor;
use crate::read::{cursor, get_with, multi_get_with, table_def};

/// A consistent view of a [`RedbStore`]. While it lives, compaction reports the database busy.
pub struct RedbSnapshot<'a> {
    store: &'a RedbStore,
    txn: Result<ReadTransaction, storage_api::BackendError>,
}

impl RedbSnapshot<'_> {
    fn txn(&self) -> Result<&ReadTransaction, ReadError> {
        self.txn.as_ref().map_err(|e| ReadError::Backend(e.clone()))
    }
}

impl KvRead for RedbSnapshot<'_> {
    type Cursor<'b>
        = RedbCursor
    where
        Self: 'b;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        get_with(self.txn()?, table_def(self.store, table)?, key, f)
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        multi_get_with(self.txn()?, table_def(self.store, table)?, keys, f)
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<RedbCursor, ReadError> {
        cursor(self.txn()?, table_def(self.store, table)?, range, direction)
    }
}

impl KvSnapshots for RedbStore {
    type Snapshot<'a> = RedbSnapshot<'a>;

    /// Begins a read transaction. Should that fail, every read through the snapshot reports it.
    fn snapshot(&self) -> RedbSnapshot<'_> {
        RedbSnapshot { store: self, txn: self.db().begin_read().map_err(map_err) }
    }
}
