//! [`SnapshotView`]: a snapshot that reads like the store it was taken from.
//!
//! Domain stores are written over [`KvReader`] (reads plus the schema they were opened with); a
//! bare snapshot has the reads but not the schema. Wrapping it lends it the store's schema, so a
//! domain store can be opened over a point-in-time view — an integrity check of a node that
//! keeps writing sees one consistent state instead of tables scanned at different moments.

use crate::ReadError;
use crate::iter::{Direction, RawRange};
use crate::read::KvRead;
use crate::store::{KvReader, KvSnapshots};
use crate::table::Schema;

/// A snapshot of `S` that is a [`KvReader`]: reads go to the snapshot, the schema is the store's.
pub struct SnapshotView<'a, S: KvSnapshots + 'a> {
    store: &'a S,
    snapshot: S::Snapshot<'a>,
}

impl<'a, S: KvReader + KvSnapshots> SnapshotView<'a, S> {
    /// Takes a snapshot of `store`.
    pub fn new(store: &'a S) -> Self {
        SnapshotView { store, snapshot: store.snapshot() }
    }
}

impl<'a, S: KvReader + KvSnapshots> KvRead for SnapshotView<'a, S> {
    type Cursor<'b>
        = <S::Snapshot<'a> as KvRead>::Cursor<'b>
    where
        Self: 'b;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        self.snapshot.get_raw_with(table, key, f)
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        self.snapshot.multi_get_raw_with(table, keys, f)
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<Self::Cursor<'_>, ReadError> {
        self.snapshot.cursor(table, range, direction)
    }
}

impl<'a, S> KvReader for SnapshotView<'a, S>
where
    S: KvReader + KvSnapshots,
    S::Snapshot<'a>: Send + Sync,
{
    const BACKEND: &'static str = S::BACKEND;

    fn schema(&self) -> &Schema {
        self.store.schema()
    }

    fn stored_schema_version(&self) -> u32 {
        self.store.stored_schema_version()
    }
}

/// A borrowed store reads like the store: domain stores can be opened over `&S` (a view
/// borrowed for one task) as well as over an owned store.
impl<T: KvRead + ?Sized> KvRead for &T {
    type Cursor<'b>
        = T::Cursor<'b>
    where
        Self: 'b;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        (**self).get_raw_with(table, key, f)
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        (**self).multi_get_raw_with(table, keys, f)
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<Self::Cursor<'_>, ReadError> {
        (**self).cursor(table, range, direction)
    }
}

impl<T: KvReader + ?Sized> KvReader for &T {
    const BACKEND: &'static str = T::BACKEND;

    fn schema(&self) -> &Schema {
        (**self).schema()
    }

    fn stored_schema_version(&self) -> u32 {
        (**self).stored_schema_version()
    }
}
