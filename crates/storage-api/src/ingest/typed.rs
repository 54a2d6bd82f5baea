//! Typed writes into an [`Ingest`] and typed [`Collector`]s — what [`ReadExt`](crate::ReadExt)
//! is for reads: domain code names each table by its type, and keys and values are encoded
//! through buffers reused entry after entry (an allocation per entry was a tenth of a bulk
//! import's profile).

use std::marker::PhantomData;
use std::path::Path;

use super::{Collector, Ingest, IngestError, IngestStats};
use crate::codec::{KeyCodec, ValueCodec};
use crate::error::{Part, WriteError};
use crate::table::Table;

/// Reused encoding buffers.
#[derive(Debug, Default)]
struct Buffers {
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Buffers {
    fn encode<T: Table>(&mut self, key: &T::Key, value: &T::Value) -> Result<(&[u8], &[u8]), IngestError> {
        self.key.clear();
        key.encode_key(&mut self.key);
        self.value.clear();
        value.encode_value(&mut self.value).map_err(|source| WriteError::Encode {
            table: T::NAME,
            part: Part::Value,
            source,
        })?;
        Ok((&self.key, &self.value))
    }
}

/// An [`Ingest`] written table by table through the tables' types.
#[derive(Debug)]
pub struct TypedIngest<I> {
    ingest: I,
    buffers: Buffers,
}

impl<I: Ingest> TypedIngest<I> {
    /// Wraps `ingest`.
    pub fn new(ingest: I) -> Self {
        TypedIngest { ingest, buffers: Buffers::default() }
    }

    /// Adds `key` → `value` to table `T` (keys of one table strictly ascending).
    pub fn put<T: Table>(&mut self, key: &T::Key, value: &T::Value) -> Result<(), IngestError> {
        let (k, v) = self.buffers.encode::<T>(key, value)?;
        self.ingest.put(T::NAME, k, v)
    }

    /// Deletes `key` from table `T` (in the same order as puts).
    pub fn delete<T: Table>(&mut self, key: &T::Key) -> Result<(), IngestError> {
        self.buffers.key.clear();
        key.encode_key(&mut self.buffers.key);
        self.ingest.delete(T::NAME, &self.buffers.key)
    }

    /// Adds every entry `runs` collected, in key order, to its table.
    pub fn drain<T: Table>(&mut self, runs: TableRuns<T>) -> Result<(), IngestError> {
        let mut merged = runs.collector.finish()?;
        while let Some((k, v)) = merged.next_entry()? {
            self.ingest.put(T::NAME, k, v)?;
        }
        Ok(())
    }

    /// Makes every entry visible (see [`Ingest::commit`]).
    pub fn commit(self) -> Result<IngestStats, IngestError> {
        self.ingest.commit()
    }
}

/// A [`Collector`] for the entries of table `T`, which arrive in any order.
#[derive(Debug)]
pub struct TableRuns<T> {
    collector: Collector,
    buffers: Buffers,
    table: PhantomData<fn() -> T>,
}

impl<T: Table> TableRuns<T> {
    /// Runs spilled into `dir` (which must exist) under files named after the table and
    /// `tag`, holding at most about `budget` bytes in memory (see [`Collector::new`]).
    pub fn new(dir: &Path, tag: &str, budget: usize) -> Self {
        TableRuns {
            collector: Collector::new(dir, &format!("{}-{tag}", T::NAME), budget),
            buffers: Buffers::default(),
            table: PhantomData,
        }
    }

    /// Collects `key` → `value`.
    pub fn insert(&mut self, key: &T::Key, value: &T::Value) -> Result<(), IngestError> {
        let (k, v) = self.buffers.encode::<T>(key, value)?;
        Ok(self.collector.insert(k, v)?)
    }

    /// Run files spilled so far.
    pub fn runs(&self) -> usize {
        self.collector.runs()
    }

    /// The most bytes held in memory at once.
    pub fn peak_bytes(&self) -> usize {
        self.collector.peak_bytes()
    }
}
