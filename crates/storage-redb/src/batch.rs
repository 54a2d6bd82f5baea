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
