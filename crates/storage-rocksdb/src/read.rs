//! Reads shared by the store and its snapshots: each read takes `ReadOptions` from its caller,
//! which pins a snapshot where there is one.

use rocksdb::{DB, ReadOptions};
use storage_api::{Direction, KvRead, RawRange, ReadError};

use crate::RocksStore;
use crate::error::map_err;
use crate::iter::RocksCursor;

pub(crate) fn get_with<R>(
    store: &RocksStore,
    opts: &ReadOptions,
    table: &str,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>, ReadError> {
    let cf = store.cf(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))?;
    let value = store.db.get_pinned_cf_opt(cf, key, opts).map_err(map_err)?;
    Ok(value.map(|v| f(&v)))
}

pub(crate) fn multi_get_with(
    store: &RocksStore,
    opts: &ReadOptions,
    table: &str,
    keys: &[&[u8]],
    f: &mut dyn FnMut(usize, Option<&[u8]>),
) -> Result<(), ReadError> {
    let cf = store.cf(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))?;
    let results = store.db.batched_multi_get_cf_opt(cf, keys.iter().copied(), false, opts);
    for (i, r) in results.into_iter().enumerate() {
        let v = r.map_err(map_err)?;
        f(i, v.as_deref());
    }
    Ok(())
}

pub(crate) fn cursor<'a>(
    db: &'a DB,
    store: &RocksStore,
    mut opts: ReadOptions,
    table: &str,
    range: RawRange,
    direction: Direction,
) -> Result<RocksCursor<'a>, ReadError> {
    let cf = store.cf(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))?;
    let empty = range.is_empty();
    if let Some(l) = range.lower {
        opts.set_iterate_lower_bound(l);
    }
    if let Some(u) = range.upper {
        opts.set_iterate_upper_bound(u);
    }
    Ok(RocksCursor::new(db.raw_iterator_cf_opt(cf, opts), direction, empty))
}

impl KvRead for RocksStore {
    type Cursor<'a> = RocksCursor<'a>;

    #[inline]
    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        get_with(self, &ReadOptions::default(), table, key, f)
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        multi_get_with(self, &ReadOptions::default(), table, keys, f)
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<RocksCursor<'_>, ReadError> {
        cursor(&self.db, self, ReadOptions::default(), table, range, direction)
    }
}
