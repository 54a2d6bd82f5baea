//! Batches: recorded operations applied in one write transaction.

use std::ops::Bound;

use redb::{Durability as RedbDurability, Table};
use storage_api::batch::{Op, OpsBatch};
use storage_api::{BackendError, Durability, KvWrite, WriteError};
use tracing::error;

use crate::error::map_err;
use crate::{RawTable, RedbStore};

type OpenTable<'t> = Table<'t, &'static [u8], &'static [u8]>;

impl RedbStore {
    fn apply(&self, ops: Vec<Op>, durability: Durability) -> Result<(), BackendError> {
        let db = self.db();
        let mut txn = db.begin_write().map_err(map_err)?;
        let level = match durability {
            Durability::Synced => RedbDurability::Immediate,
            Durability::Buffered => RedbDurability::None,
        };
        txn.set_durability(level).map_err(map_err)?;
        {
            let mut open: Vec<Option<OpenTable<'_>>> = (0..self.names.len()).map(|_| None).collect();
            for op in ops {
                let index = match &op {
                    Op::Put { table, .. } | Op::Delete { table, .. } | Op::DeleteRange { table, .. } => *table,
                };
                let table = match &mut open[index] {
                    Some(t) => t,
                    slot => slot.insert(txn.open_table(RawTable::new(self.names[index])).map_err(map_err)?),
                };
                match op {
                    Op::Put { key, value, .. } => {
                        table.insert(key.as_slice(), value.as_slice()).map_err(map_err)?;
                    }
                    Op::Delete { key, .. } => {
                        table.remove(key.as_slice()).map_err(map_err)?;
                    }
                    Op::DeleteRange { range, .. } => {
                        let lower = range.lower.as_deref().map_or(Bound::Unbounded, Bound::Included);
                        let upper = range.upper.as_deref().map_or(Bound::Unbounded, Bound::Excluded);
                        table.retain_in::<&[u8], _>((lower, upper), |_, _| false).map_err(map_err)?;
                    }
                }
            }
        }
        txn.commit().map_err(map_err)
    }
}

impl KvWrite for RedbStore {
    type Batch<'a> = OpsBatch<'a>;

    fn is_poisoned(&self) -> bool {
        self.poison.is_poisoned()
    }

    fn raw_batch(&self) -> OpsBatch<'_> {
        OpsBatch::new(&self.names)
    }

    fn write_raw(&self, batch: OpsBatch<'_>, durability: Durability) -> Result<(), WriteError> {
        self.poison.guard_write(|| {
            if batch.ops().is_empty() {
                return Ok(());
            }
            self.apply(batch.into_ops(), durability).inspect_err(
                |e| error!(path = %self.path.display(), error = %e, "commit failed; store poisoned until reopened"),
            )
        })
    }
}

/// Entries applied to the ingest's transaction at a time (each chunk opens its tables once).
const INGEST_CHUNK: usize = 16_384;

/// Ordered inserts in one write transaction, committed durably (visible all at once).
impl storage_api::KvIngest for RedbStore {
    type Ingest<'a> = RedbIngest<'a>;

    fn ingest(&self) -> Result<RedbIngest<'_>, storage_api::IngestError> {
        self.poison.check_write()?;
        let db = self.db();
        let txn = db.begin_write().map_err(map_err)?;
        Ok(RedbIngest {
            store: self,
            order: storage_api::ingest::IngestOrder::new(&self.schema),
            txn: Some(txn),
            pending: Vec::with_capacity(INGEST_CHUNK),
        })
    }
}

/// An ingest into a [`RedbStore`]: one write transaction, fed in chunks.
pub struct RedbIngest<'a> {
    store: &'a RedbStore,
    order: storage_api::ingest::IngestOrder,
    txn: Option<redb::WriteTransaction>,
    pending: Vec<(usize, Vec<u8>, Option<Vec<u8>>)>,
}

impl std::fmt::Debug for RedbIngest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RedbIngest({:?})", self.order.stats())
    }
}

impl RedbIngest<'_> {
    fn apply_pending(&mut self) -> Result<(), BackendError> {
        let Some(txn) = self.txn.as_ref() else { return Ok(()) };
        let mut open: Vec<Option<OpenTable<'_>>> = (0..self.store.names.len()).map(|_| None).collect();
        for (t, key, value) in self.pending.drain(..) {
            let table = match &mut open[t] {
                Some(table) => table,
                slot => slot.insert(txn.open_table(RawTable::new(self.store.names[t])).map_err(map_err)?),
            };
            match value {
                Some(v) => table.insert(key.as_slice(), v.as_slice()).map_err(map_err)?,
                None => table.remove(key.as_slice()).map_err(map_err)?,
            };
        }
        Ok(())
    }

    fn push(&mut self, t: usize, key: &[u8], value: Option<&[u8]>) -> Result<(), storage_api::IngestError> {
        self.pending.push((t, key.to_vec(), value.map(<[u8]>::to_vec)));
        if self.pending.len() >= INGEST_CHUNK {
            self.apply_pending()?;
        }
        Ok(())
    }
}

impl storage_api::Ingest for RedbIngest<'_> {
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), storage_api::IngestError> {
        let t = self.order.check(table, key, value.len())?;
        self.push(t, key, Some(value))
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> Result<(), storage_api::IngestError> {
        let t = self.order.check(table, key, 0)?;
        self.push(t, key, None)
    }

    fn commit(mut self) -> Result<storage_api::IngestStats, storage_api::IngestError> {
        let stats = self.order.stats();
        self.apply_pending()?;
        let Some(mut txn) = self.txn.take() else { return Ok(stats) };
        let store = self.store;
        store.poison.guard_write(|| {
            txn.set_durability(RedbDurability::Immediate).map_err(map_err)?;
            txn.commit().map_err(map_err)
        })?;
        Ok(stats)
    }
}
