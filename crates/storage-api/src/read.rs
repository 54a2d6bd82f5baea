//! Point reads and range reads: the raw backend seam ([`KvRead`]) and its typed face
//! ([`ReadExt`]), shared by stores and their snapshots.

use std::ops::RangeBounds;

use crate::codec::{KeyCodec, KeyPrefix, ValueCodec};
use crate::error::{Part, ReadError};
use crate::iter::{Direction, Entry, Iter, RawCursor, RawRange};
use crate::table::Table;

/// Raw reads by table name and encoded key: what a backend implements, for stores and
/// snapshots alike. Domain code uses the typed methods of [`ReadExt`] instead.
pub trait KvRead {
    /// The backend's cursor type.
    type Cursor<'a>: RawCursor
    where
        Self: 'a;

    /// Looks `key` up in `table` and, if present, hands the value bytes to `f` without copying
    /// them where the engine allows.
    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError>;

    /// Looks up many keys of one table, calling `f(index, value)` for every key in order.
    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError>;

    /// A cursor over the keys of `table` in `range`, in `direction`.
    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<Self::Cursor<'_>, ReadError>;
}

/// Encodes `key` into a per-thread scratch buffer and passes the bytes to `f`, saving an
/// allocation on every point read (falls back to a fresh buffer if re-entered).
fn with_key<K: KeyCodec, R>(key: &K, f: impl FnOnce(&[u8]) -> R) -> R {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(64));
    }
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            buf.clear();
            key.encode_key(&mut buf);
            f(&buf)
        }
        Err(_) => f(&key.to_key_bytes()),
    })
}

fn decode_value<T: Table>(bytes: &[u8]) -> Result<T::Value, ReadError> {
    T::Value::decode_value(bytes).map_err(|source| ReadError::Decode { table: T::NAME, part: Part::Value, source })
}

/// Typed reads, available on every [`KvRead`].
pub trait ReadExt: KvRead {
    /// The value stored under `key` in table `T`.
    fn get<T: Table>(&self, key: &T::Key) -> Result<Option<T::Value>, ReadError> {
        with_key(key, |k| self.get_raw_with(T::NAME, k, decode_value::<T>))?.transpose()
    }

    /// Whether table `T` holds `key`.
    fn contains<T: Table>(&self, key: &T::Key) -> Result<bool, ReadError> {
        Ok(with_key(key, |k| self.get_raw_with(T::NAME, k, |_| ()))?.is_some())
    }

    /// The values stored under `keys`, in the same order.
    fn multi_get<T: Table>(&self, keys: &[T::Key]) -> Result<Vec<Option<T::Value>>, ReadError> {
        let encoded: Vec<Vec<u8>> = keys.iter().map(KeyCodec::to_key_bytes).collect();
        let refs: Vec<&[u8]> = encoded.iter().map(Vec::as_slice).collect();
        let mut out: Vec<Option<T::Value>> = Vec::with_capacity(keys.len());
        let mut failure = None;
        self.multi_get_raw_with(T::NAME, &refs, &mut |_, value| match value.map(decode_value::<T>).transpose() {
            Ok(v) => out.push(v),
            Err(e) => {
                out.push(None);
                failure.get_or_insert(e);
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Iterates over the entries of `T` whose keys lie in `range`.
    fn iter<T: Table>(
        &self,
        range: impl RangeBounds<T::Key>,
        direction: Direction,
    ) -> Result<Iter<T, Self::Cursor<'_>>, ReadError> {
        Ok(Iter::new(self.cursor(T::NAME, RawRange::from_bounds(&range), direction)?))
    }

    /// Iterates over every entry of `T`.
    fn iter_all<T: Table>(&self, direction: Direction) -> Result<Iter<T, Self::Cursor<'_>>, ReadError> {
        Ok(Iter::new(self.cursor(T::NAME, RawRange::all(), direction)?))
    }

    /// Iterates over the entries of `T` whose composite keys start with `prefix`.
    fn iter_prefix<T: Table, P: KeyPrefix<T::Key> + ?Sized>(
        &self,
        prefix: &P,
        direction: Direction,
    ) -> Result<Iter<T, Self::Cursor<'_>>, ReadError> {
        Ok(Iter::new(self.cursor(T::NAME, RawRange::from_prefix::<T::Key, P>(prefix), direction)?))
    }

    /// Iterates over the entries of `T` whose leading key components lie in `range`.
    fn iter_prefix_range<T: Table, P: KeyPrefix<T::Key>>(
        &self,
        range: impl RangeBounds<P>,
        direction: Direction,
    ) -> Result<Iter<T, Self::Cursor<'_>>, ReadError> {
        Ok(Iter::new(self.cursor(T::NAME, RawRange::from_prefix_bounds::<T::Key, P>(&range), direction)?))
    }

    /// The entry of `T` with the smallest key, if any.
    fn first<T: Table>(&self) -> Result<Option<Entry<T>>, ReadError> {
        self.iter_all::<T>(Direction::Forward)?.next().transpose()
    }

    /// The entry of `T` with the largest key, if any.
    fn last<T: Table>(&self) -> Result<Option<Entry<T>>, ReadError> {
        self.iter_all::<T>(Direction::Reverse)?.next().transpose()
    }
}

impl<S: KvRead + ?Sized> ReadExt for S {}
