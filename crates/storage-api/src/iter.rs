//! Range iteration: raw key ranges, backend cursors and the typed iterator over them.

use std::marker::PhantomData;
use std::ops::{Bound, RangeBounds};

use crate::codec::{KeyCodec, KeyPrefix, ValueCodec};
use crate::error::{Part, ReadError};
use crate::table::Table;

/// Iteration order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Ascending keys.
    Forward,
    /// Descending keys.
    Reverse,
}

/// A range of encoded keys, `lower` inclusive and `upper` exclusive; `None` is unbounded.
///
/// Every [`RangeBounds`] over keys normalises to this form: an excluded start `s` becomes the
/// inclusive start `s ‖ 0x00`, and an included end `e` the exclusive end `e ‖ 0x00`, since
/// `x ‖ 0x00` is the smallest byte string greater than `x`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RawRange {
    /// Inclusive lower bound.
    pub lower: Option<Vec<u8>>,
    /// Exclusive upper bound.
    pub upper: Option<Vec<u8>>,
}

impl RawRange {
    /// Every key.
    pub fn all() -> Self {
        RawRange::default()
    }

    /// The keys of table `T` within `range`.
    pub fn from_bounds<K: KeyCodec>(range: &impl RangeBounds<K>) -> Self {
        let lower = match range.start_bound() {
            Bound::Unbounded => None,
            Bound::Included(k) => Some(k.to_key_bytes()),
            Bound::Excluded(k) => Some(successor(k.to_key_bytes())),
        };
        let upper = match range.end_bound() {
            Bound::Unbounded => None,
            Bound::Included(k) => Some(successor(k.to_key_bytes())),
            Bound::Excluded(k) => Some(k.to_key_bytes()),
        };
        RawRange { lower, upper }
    }

    /// Every key starting with the encoded `prefix`.
    pub fn prefix(prefix: Vec<u8>) -> Self {
        let upper = prefix_end(&prefix);
        RawRange { lower: Some(prefix), upper }
    }

    /// The keys of composite key type `K` that start with `prefix`.
    pub fn from_prefix<K: KeyCodec, P: KeyPrefix<K> + ?Sized>(prefix: &P) -> Self {
        let mut bytes = Vec::with_capacity(32);
        prefix.encode_prefix(&mut bytes);
        Self::prefix(bytes)
    }

    /// The keys of composite key type `K` whose leading components (encoded as prefix type
    /// `P`) lie in `range`: for example every `(height, hash)` key with height in `10..20`.
    pub fn from_prefix_bounds<K: KeyCodec, P: KeyPrefix<K>>(range: &impl RangeBounds<P>) -> Self {
        let encode = |p: &P| {
            let mut bytes = Vec::with_capacity(32);
            p.encode_prefix(&mut bytes);
            bytes
        };
        let lower = match range.start_bound() {
            Bound::Unbounded => None,
            Bound::Included(p) => Some(encode(p)),
            Bound::Excluded(p) => match prefix_end(&encode(p)) {
                Some(end) => Some(end),
                // Nothing sorts after every key with an all-0xff prefix: the range is empty.
                None => return RawRange { lower: Some(encode(p)), upper: Some(encode(p)) },
            },
        };
        let upper = match range.end_bound() {
            Bound::Unbounded => None,
            Bound::Included(p) => prefix_end(&encode(p)),
            Bound::Excluded(p) => Some(encode(p)),
        };
        RawRange { lower, upper }
    }

    /// Whether `key` lies in the range.
    pub fn contains(&self, key: &[u8]) -> bool {
        self.lower.as_deref().is_none_or(|l| key >= l) && self.upper.as_deref().is_none_or(|u| key < u)
    }

    /// Whether the range cannot contain any key.
    pub fn is_empty(&self) -> bool {
        matches!((&self.lower, &self.upper), (Some(l), Some(u)) if l >= u)
    }
}

/// The smallest byte string greater than `key`.
fn successor(mut key: Vec<u8>) -> Vec<u8> {
    key.push(0);
    key
}

/// The smallest byte string greater than every string starting with `prefix`, or `None` if
/// there is none (the prefix is empty or all `0xff`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// A raw entry borrowed from a cursor: (key, value).
pub type RawEntry<'a> = (&'a [u8], &'a [u8]);

/// A decoded entry of table `T`.
pub type Entry<T> = (<T as Table>::Key, <T as Table>::Value);

/// A backend's cursor over one table and range: a lending iterator over borrowed entries.
pub trait RawCursor {
    /// The next entry, borrowed until the next call; `None` when the range is exhausted.
    /// After an error the cursor is exhausted.
    fn next_entry(&mut self) -> Option<Result<RawEntry<'_>, ReadError>>;
}

/// A typed iterator over a table, decoding each entry.
#[derive(Debug)]
pub struct Iter<T, C> {
    cursor: C,
    _table: PhantomData<fn() -> T>,
}

impl<T: Table, C: RawCursor> Iter<T, C> {
    /// Wraps a raw cursor over table `T`.
    pub fn new(cursor: C) -> Self {
        Iter { cursor, _table: PhantomData }
    }

    /// Iterates over keys only, skipping value decoding.
    pub fn keys(self) -> Keys<T, C> {
        Keys { cursor: self.cursor, _table: PhantomData }
    }
}

/// Decodes a raw entry of table `T`.
pub fn decode_entry<T: Table>(key: &[u8], value: &[u8]) -> Result<Entry<T>, ReadError> {
    let k = T::Key::decode_key(key).map_err(|source| ReadError::Decode { table: T::NAME, part: Part::Key, source })?;
    let v = T::Value::decode_value(value).map_err(|source| ReadError::Decode {
        table: T::NAME,
        part: Part::Value,
        source,
    })?;
    Ok((k, v))
}

impl<T: Table, C: RawCursor> Iterator for Iter<T, C> {
    type Item = Result<Entry<T>, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.cursor.next_entry()?.and_then(|(k, v)| decode_entry::<T>(k, v)))
    }
}

/// A typed iterator over the keys of a table.
#[derive(Debug)]
pub struct Keys<T, C> {
    cursor: C,
    _table: PhantomData<fn() -> T>,
}

impl<T: Table, C: RawCursor> Iterator for Keys<T, C> {
    type Item = Result<T::Key, ReadError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.cursor.next_entry()?.and_then(|(k, _)| {
            T::Key::decode_key(k).map_err(|source| ReadError::Decode { table: T::NAME, part: Part::Key, source })
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
        assert_eq!(prefix_end(&[]), None);
    }

    #[test]
    fn prefix_bounds_cover_whole_prefixes() {
        type K = (u8, u16);
        let r = RawRange::from_prefix_bounds::<K, u8>(&(3u8..5u8));
        assert!(r.contains(&[3, 0, 0]) && r.contains(&[4, 0xff, 0xff]) && !r.contains(&[5, 0, 0]));
        assert!(!r.contains(&[2, 0xff, 0xff]));
        let r = RawRange::from_prefix_bounds::<K, u8>(&(3u8..=4u8));
        assert!(r.contains(&[4, 0xff, 0xff]) && !r.contains(&[5, 0, 0]));
        let r = RawRange::from_prefix_bounds::<K, u8>(&(Bound::Excluded(3u8), Bound::Unbounded));
        assert!(!r.contains(&[3, 0xff, 0xff]) && r.contains(&[4, 0, 0]));
        let r = RawRange::from_prefix_bounds::<K, u8>(&(Bound::Excluded(0xffu8), Bound::Unbounded));
        assert!(r.is_empty() && !r.contains(&[0xff, 0xff, 0xff]));
        assert_eq!(RawRange::from_prefix_bounds::<K, u8>(&(..=0xffu8)).upper, None);
    }

    #[test]
    fn bounds_normalise() {
        let r = RawRange::from_bounds(&(3u8..=5u8));
        assert_eq!(r, RawRange { lower: Some(vec![3]), upper: Some(vec![5, 0]) });
        assert!(r.contains(&[5]) && !r.contains(&[6]) && r.contains(&[3]) && !r.contains(&[2]));
        let r = RawRange::from_bounds::<u8>(&(Bound::Excluded(3u8), Bound::Unbounded));
        assert!(!r.contains(&[3]) && r.contains(&[4]));
        assert!(RawRange::from_bounds(&(5u8..5u8)).is_empty());
    }
}
