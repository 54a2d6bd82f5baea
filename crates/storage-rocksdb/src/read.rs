//! Reads shared by the store and its snapshots: each read takes `ReadOptions` from its caller,
//! which pins a snapshot where there is one.

use rocksdb::{DB, ReadOptions};
use storage_api::{Direction, RawRange, ReadError};

use crate::RocksStore;
use crate::error::map_err;
use crate::iter::RocksCursor;

pub(crate) fn get_with<R>(
    db: &DB,
    opts: &ReadOptions,
    table: &str,
    key: &[u8],
    f: impl FnOnce(&[u8]) -> R,
) -> Result<Option<R>, ReadError> {
    let cf = db.cf_handle(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))?;
    let value = db.get_pinned_cf_opt(cf, key, opts).map_err(map_err)?;
    Ok(value.map(|v| f(&v)))
}

pub(crate) fn multi_get_with(
    db: &DB,
    opts: &ReadOptions,
    table: &str,
    keys: &[&[u8]],
    f: &mut dyn FnMut(usize, Option<&[u8]>),
) -> Result<(), ReadError> {
    let cf = db.cf_handle(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))?;
    let results = db.batched_multi_get_cf_opt(cf, keys.iter().copied(), false, opts);
    for (i, r) in results.into_iter().enumerate() {
        let v = r.map_err(map_err)?;
        f(i, v.as_deref());
    }
    Ok(())
}

pub(crate) fn cursor<'a>(
    db: &'a DB,
    mut opts: ReadOptions,
    table: &str,
    range: RawRange,
    direction: Direction,
) -> Result<RocksCursor<'a>, ReadError> {
    let cf = db.cf_handle(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))?;
    let empty = range.is_empty();
    if let Some(l) = range.lower {
        opts.set_iterate_lower_bound(l);
    }
    if let Some(u) = range.upper {
        opts.set_iterate_upper_bound(u);
    }
    Ok(RocksCursor::new(db.raw_iterator_cf_opt(cf, opts), direction, empty))
}

/// Implements `KvRead` for a type whose `db` field is the database to read.
macro_rules! read_through_db {
    ($ty:ty) => {
        impl storage_api::KvRead for $ty {
            type Cursor<'a> = $crate::iter::RocksCursor<'a>;

            #[inline]
            fn get_raw_with<R>(
                &self,
                table: &str,
                key: &[u8],
                f: impl FnOnce(&[u8]) -> R,
            ) -> Result<Option<R>, storage_api::ReadError> {
                $crate::read::get_with(&self.db, &rocksdb::ReadOptions::default(), table, key, f)
            }

            fn multi_get_raw_with(
                &self,
                table: &str,
                keys: &[&[u8]],
                f: &mut dyn FnMut(usize, Option<&[u8]>),
            ) -> Result<(), storage_api::ReadError> {
                $crate::read::multi_get_with(&self.db, &rocksdb::ReadOptions::default(), table, keys, f)
            }

            fn cursor(
                &self,
                table: &str,
                range: storage_api::RawRange,
                direction: storage_api::Direction,
            ) -> Result<$crate::iter::RocksCursor<'_>, storage_api::ReadError> {
                $crate::read::cursor(&self.db, rocksdb::ReadOptions::default(), table, range, direction)
            }
        }
    };
}
pub(crate) use read_through_db;

read_through_db!(RocksStore);
