//! Snapshots: a RocksDB snapshot pinned into every read's options.

use rocksdb::{DB, ReadOptions, SnapshotWithThreadMode};
use storage_api::{Direction, KvRead, KvSnapshots, RawRange, ReadError};

use crate::iter::RocksCursor;
use crate::{RocksStore, read};

/// A consistent point-in-time view of a [`RocksStore`].
pub struct RocksSnapshot<'a> {
    store: &'a RocksStore,
    snapshot: SnapshotWithThreadMode<'a, DB>,
}

impl RocksSnapshot<'_> {
    fn opts(&self) -> ReadOptions {
        let mut o = ReadOptions::default();
        o.set_snapshot(&self.snapshot);
        o
    }
}

impl KvRead for RocksSnapshot<'_> {
    type Cursor<'b>
        = RocksCursor<'b>
    where
        Self: 'b;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        read::get_with(&self.store.db, &self.opts(), table, key, f)
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        read::multi_get_with(&self.store.db, &self.opts(), table, keys, f)
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<RocksCursor<'_>, ReadError> {
        read::cursor(&self.store.db, self.opts(), table, range, direction)
    }
}

impl KvSnapshots for RocksStore {
    type Snapshot<'a> = RocksSnapshot<'a>;

    fn snapshot(&self) -> RocksSnapshot<'_> {
        RocksSnapshot { store: self, snapshot: self.db.snapshot() }
    }
}
