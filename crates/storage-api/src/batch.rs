//! Atomic write batches spanning tables.
//!
//! A backend supplies a [`RawBatch`] of encoded operations; [`WriteBatch`] is the typed face
//! domain code uses, encoding keys and values into reused buffers. A batch is applied with
//! [`KvWrite::write`] all at once or not at all.

use std::ops::RangeBounds;

use crate::codec::{KeyCodec, KeyPrefix, ValueCodec};
use crate::error::{Part, WriteError};
use crate::iter::RawRange;
use crate::table::Table;

/// How durable a write must be when [`KvWrite::write`] returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Durability {
    /// On stable storage (fsync'd) before returning: survives power loss.
    #[default]
    Synced,
    /// Handed to the engine and the OS: survives a process crash on engines with a write-ahead
    /// log, and becomes durable with the next synced write or flush.
    Buffered,
}

/// A backend's batch of encoded operations.
pub trait RawBatch {
    /// Stores `value` under `key`.
    fn put_raw(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), WriteError>;
    /// Removes `key`.
    fn delete_raw(&mut self, table: &str, key: &[u8]) -> Result<(), WriteError>;
    /// Removes every key in `range` (`lower` inclusive, `upper` exclusive).
    fn delete_range_raw(&mut self, table: &str, range: &RawRange) -> Result<(), WriteError>;
    /// The number of operations queued.
    fn len(&self) -> usize;
    /// Whether no operation is queued.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Raw atomic writes: what a backend implements. Domain code uses [`WriteBatch`] through
/// [`KvWrite::batch`] and [`KvWrite::write`].
pub trait KvWrite {
    /// The backend's batch type.
    type Batch<'a>: RawBatch
    where
        Self: 'a;

    /// A new, empty raw batch.
    fn raw_batch(&self) -> Self::Batch<'_>;

    /// Applies every operation of `batch` atomically with `durability`. On failure nothing is
    /// applied and the store is poisoned when the failure was the engine's.
    fn write_raw(&self, batch: Self::Batch<'_>, durability: Durability) -> Result<(), WriteError>;

    /// Whether an earlier write or flush failed in the engine, so that writes are refused until
    /// the store is reopened. Required of every backend: health reporting depends on it.
    fn is_poisoned(&self) -> bool;

    /// A new, empty typed batch.
    fn batch(&self) -> WriteBatch<Self::Batch<'_>> {
        WriteBatch::new(self.raw_batch())
    }

    /// Applies a typed batch atomically.
    fn write(&self, batch: WriteBatch<Self::Batch<'_>>, durability: Durability) -> Result<(), WriteError> {
        self.write_raw(batch.into_raw(), durability)
    }

    /// Stores one entry: a batch of one.
    fn put<T: Table>(&self, key: &T::Key, value: &T::Value, durability: Durability) -> Result<(), WriteError> {
        let mut batch = self.batch();
        batch.put::<T>(key, value)?;
        self.write(batch, durability)
    }
}

/// A typed batch: operations on any tables, applied together by [`KvWrite::write`].
#[derive(Debug)]
pub struct WriteBatch<B> {
    raw: B,
    key: Vec<u8>,
    value: Vec<u8>,
}

impl<B: RawBatch> WriteBatch<B> {
    /// Wraps a backend batch.
    pub fn new(raw: B) -> Self {
        WriteBatch { raw, key: Vec::with_capacity(64), value: Vec::with_capacity(256) }
    }

    /// Stores `value` under `key` in table `T`.
    #[inline]
    pub fn put<T: Table>(&mut self, key: &T::Key, value: &T::Value) -> Result<&mut Self, WriteError> {
        self.key.clear();
        self.value.clear();
        key.encode_key(&mut self.key);
        value.encode_value(&mut self.value).map_err(|source| WriteError::Encode {
            table: T::NAME,
            part: Part::Value,
            source,
        })?;
        self.raw.put_raw(T::NAME, &self.key, &self.value)?;
        Ok(self)
    }

    /// Removes `key` from table `T`.
    pub fn delete<T: Table>(&mut self, key: &T::Key) -> Result<&mut Self, WriteError> {
        self.key.clear();
        key.encode_key(&mut self.key);
        self.raw.delete_raw(T::NAME, &self.key)?;
        Ok(self)
    }

    /// Removes every key of table `T` in `range`.
    pub fn delete_range<T: Table>(&mut self, range: impl RangeBounds<T::Key>) -> Result<&mut Self, WriteError> {
        self.delete_raw_range::<T>(RawRange::from_bounds(&range))
    }

    /// Removes every key of table `T` starting with `prefix`.
    pub fn delete_prefix<T: Table, P: KeyPrefix<T::Key> + ?Sized>(
        &mut self,
        prefix: &P,
    ) -> Result<&mut Self, WriteError> {
        self.delete_raw_range::<T>(RawRange::from_prefix::<T::Key, P>(prefix))
    }

    /// Removes every key of table `T` whose leading components lie in `range` (for example
    /// every `(height, hash)` key below a height).
    pub fn delete_prefix_range<T: Table, P: KeyPrefix<T::Key>>(
        &mut self,
        range: impl RangeBounds<P>,
    ) -> Result<&mut Self, WriteError> {
        self.delete_raw_range::<T>(RawRange::from_prefix_bounds::<T::Key, P>(&range))
    }

    /// Removes every key of table `T`.
    pub fn clear_table<T: Table>(&mut self) -> Result<&mut Self, WriteError> {
        self.delete_raw_range::<T>(RawRange::all())
    }

    fn delete_raw_range<T: Table>(&mut self, range: RawRange) -> Result<&mut Self, WriteError> {
        if range.is_empty() {
            if matches!((&range.lower, &range.upper), (Some(l), Some(u)) if l > u) {
                return Err(WriteError::InvalidRange(T::NAME.to_owned()));
            }
            return Ok(self);
        }
        self.raw.delete_range_raw(T::NAME, &range)?;
        Ok(self)
    }

    /// The number of operations queued.
    pub fn len(&self) -> usize {
        self.raw.len()
    }

    /// Whether no operation is queued.
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// The backend batch, for raw operations (migration tools copying tables by name).
    pub fn raw_mut(&mut self) -> &mut B {
        &mut self.raw
    }

    /// Unwraps the backend batch.
    pub fn into_raw(self) -> B {
        self.raw
    }
}

/// One queued operation of an [`OpsBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Store a value.
    Put {
        /// Index of the table in the store's schema table list.
        table: usize,
        /// Encoded key.
        key: Vec<u8>,
        /// Encoded value.
        value: Vec<u8>,
    },
    /// Remove a key.
    Delete {
        /// Table index.
        table: usize,
        /// Encoded key.
        key: Vec<u8>,
    },
    /// Remove a range of keys.
    DeleteRange {
        /// Table index.
        table: usize,
        /// The range.
        range: RawRange,
    },
}

/// A batch that records operations for the backend to apply at commit, for engines without a
/// native batch type (the in-memory backend, redb, sled). Tables are resolved to indexes when
/// an operation is queued, so unknown tables fail early.
#[derive(Debug, Clone)]
pub struct OpsBatch<'s> {
    tables: &'s [&'s str],
    ops: Vec<Op>,
}

impl<'s> OpsBatch<'s> {
    /// An empty batch over the physical tables `tables`.
    pub fn new(tables: &'s [&'s str]) -> Self {
        OpsBatch { tables, ops: Vec::new() }
    }

    fn index(&self, table: &str) -> Result<usize, WriteError> {
        self.tables.iter().position(|t| *t == table).ok_or_else(|| WriteError::UnknownTable(table.to_owned()))
    }

    /// The queued operations, in order.
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Takes the queued operations.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}

impl RawBatch for OpsBatch<'_> {
    fn put_raw(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), WriteError> {
        let table = self.index(table)?;
        self.ops.push(Op::Put { table, key: key.to_vec(), value: value.to_vec() });
        Ok(())
    }

    fn delete_raw(&mut self, table: &str, key: &[u8]) -> Result<(), WriteError> {
        let table = self.index(table)?;
        self.ops.push(Op::Delete { table, key: key.to_vec() });
        Ok(())
    }

    fn delete_range_raw(&mut self, table: &str, range: &RawRange) -> Result<(), WriteError> {
        let table = self.index(table)?;
        self.ops.push(Op::DeleteRange { table, range: range.clone() });
        Ok(())
    }

    fn len(&self) -> usize {
        self.ops.len()
    }
}
