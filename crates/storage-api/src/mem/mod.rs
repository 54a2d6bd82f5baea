//! The in-memory backend: one `BTreeMap` per table. It is the oracle the conformance suite and
//! the model test compare every other backend against, and a quick store for tests.
//!
//! Writes take a lock and replace the table set copy-on-write, so snapshots and open cursors
//! are an `Arc` clone and never see later writes. Nothing persists past the process.

mod iter;
mod snapshot;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub use iter::MemCursor;
pub use snapshot::MemSnapshot;

use crate::batch::{Durability, KvWrite, Op, OpsBatch, RawBatch};
use crate::error::{MaintenanceError, OpenError, ReadError, WriteError};
use crate::ingest::{Ingest, IngestError, IngestOrder, IngestStats, KvIngest};
use crate::iter::{Direction, RawRange};
use crate::read::KvRead;
use crate::schema::VersionPolicy;
use crate::store::{KvFlush, KvOpen, KvReader, KvSnapshots, KvStats, TableStats};
use crate::table::Schema;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

/// The in-memory store.
#[derive(Debug)]
pub struct MemStore {
    schema: Schema,
    names: Vec<&'static str>,
    data: RwLock<Arc<Vec<Map>>>,
}

impl MemStore {
    /// An empty store for `schema`.
    pub fn new(schema: Schema) -> Self {
        let names: Vec<&'static str> = schema.physical_tables().collect();
        let data = RwLock::new(Arc::new(vec![Map::new(); names.len()]));
        MemStore { schema, names, data }
    }

    fn table_index(&self, table: &str) -> Option<usize> {
        self.names.iter().position(|t| *t == table)
    }

    fn read_index(&self, table: &str) -> Result<usize, ReadError> {
        self.table_index(table).ok_or_else(|| ReadError::UnknownTable(table.to_owned()))
    }

    fn current(&self) -> Arc<Vec<Map>> {
        Arc::clone(&self.data.read().unwrap_or_else(|p| p.into_inner()))
    }
}

pub(crate) fn get_from<R>(data: &[Map], table: usize, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    data[table].get(key).map(|v| f(v))
}

impl KvRead for MemStore {
    type Cursor<'a> = MemCursor;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        let t = self.read_index(table)?;
        Ok(get_from(&self.current(), t, key, f))
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        let t = self.read_index(table)?;
        let data = self.current();
        for (i, k) in keys.iter().enumerate() {
            f(i, data[t].get(*k).map(Vec::as_slice));
        }
        Ok(())
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<MemCursor, ReadError> {
        let t = self.read_index(table)?;
        Ok(MemCursor::new(self.current(), t, range, direction))
    }
}

impl KvWrite for MemStore {
    type Batch<'a> = OpsBatch<'a>;

    /// Never: an in-memory write cannot fail in an engine.
    fn is_poisoned(&self) -> bool {
        false
    }

    fn raw_batch(&self) -> OpsBatch<'_> {
        OpsBatch::new(&self.names)
    }

    fn write_raw(&self, batch: OpsBatch<'_>, _durability: Durability) -> Result<(), WriteError> {
        let mut guard = self.data.write().unwrap_or_else(|p| p.into_inner());
        let data = Arc::make_mut(&mut guard);
        for op in batch.into_ops() {
            match op {
                Op::Put { table, key, value } => {
                    data[table].insert(key, value);
                }
                Op::Delete { table, key } => {
                    data[table].remove(&key);
                }
                Op::DeleteRange { table, range } => {
                    data[table].retain(|k, _| !range.contains(k));
                }
            }
        }
        Ok(())
    }
}

impl KvReader for MemStore {
    const BACKEND: &'static str = "memory";

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn stored_schema_version(&self) -> u32 {
        self.schema.version()
    }
}

impl KvOpen for MemStore {
    type Config = ();

    fn open(_config: &(), schema: Schema, _policy: VersionPolicy) -> Result<Self, OpenError> {
        Ok(MemStore::new(schema))
    }
}

impl KvSnapshots for MemStore {
    type Snapshot<'a> = MemSnapshot;

    fn snapshot(&self) -> MemSnapshot {
        MemSnapshot::new(self.current(), self.names.clone())
    }
}

/// Every write is visible and as durable as memory allows once acknowledged, so a flush has
/// nothing to do.
impl KvFlush for MemStore {
    fn flush(&self) -> Result<(), crate::error::FlushError> {
        Ok(())
    }
}

impl KvStats for MemStore {
    fn table_stats_raw(&self, table: &str) -> Result<TableStats, MaintenanceError> {
        let t = self.table_index(table).ok_or_else(|| MaintenanceError::UnknownTable(table.to_owned()))?;
        let data = self.current();
        let bytes = data[t].iter().map(|(k, v)| (k.len() + v.len()) as u64).sum();
        Ok(TableStats { approx_keys: data[t].len() as u64, approx_bytes: bytes })
    }
}

/// Ordered inserts applied in one write at commit (visible all at once).
impl KvIngest for MemStore {
    type Ingest<'a> = MemIngest<'a>;

    fn ingest(&self) -> Result<MemIngest<'_>, IngestError> {
        Ok(MemIngest { store: self, order: IngestOrder::new(&self.schema), batch: OpsBatch::new(&self.names) })
    }
}

/// An ingest into a [`MemStore`].
#[derive(Debug)]
pub struct MemIngest<'a> {
    store: &'a MemStore,
    order: IngestOrder,
    batch: OpsBatch<'a>,
}

impl Ingest for MemIngest<'_> {
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), IngestError> {
        self.order.check(table, key, value.len())?;
        self.batch.put_raw(table, key, value)?;
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> Result<(), IngestError> {
        self.order.check(table, key, 0)?;
        self.batch.delete_raw(table, key)?;
        Ok(())
    }

    fn commit(self) -> Result<IngestStats, IngestError> {
        let stats = self.order.stats();
        self.store.write_raw(self.batch, Durability::Synced)?;
        Ok(stats)
    }
}
