//! Batches: one multi-tree sled transaction per batch.

use std::collections::BTreeSet;

use sled::Transactional;
use sled::transaction::TransactionError;
use storage_api::batch::{Op, OpsBatch};
use storage_api::{BackendError, Durability, KvWrite, WriteError};
use tracing::error;

use crate::SledStore;
use crate::error::map_err;

impl SledStore {
    fn apply(&self, ops: &[Op], durability: Durability) -> Result<(), BackendError> {
        let _writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        // The stored keys each range delete removes, listed before the transaction: a sled
        // transaction holds locks that plain tree reads would wait on. The writer lock keeps
        // the lists current.
        let mut stored_in_range: Vec<Vec<sled::IVec>> = Vec::new();
        for op in ops {
            if let Op::DeleteRange { table, range } = op {
                let keys = crate::iter::range(&self.trees[*table], range)
                    .map(|entry| entry.map(|(k, _)| k))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(map_err)?;
                stored_in_range.push(keys);
            }
        }
        let result = self.trees.as_slice().transaction(|views| {
            let mut listed = stored_in_range.iter();
            // Keys put earlier in this batch, per table: a range delete must remove them too,
            // and transactional trees cannot be iterated.
            let mut put: Vec<BTreeSet<&[u8]>> = vec![BTreeSet::new(); views.len()];
            for op in ops {
                match op {
                    Op::Put { table, key, value } => {
                        views[*table].insert(key.as_slice(), value.as_slice())?;
                        put[*table].insert(key);
                    }
                    Op::Delete { table, key } => {
                        views[*table].remove(key.as_slice())?;
                        put[*table].remove(key.as_slice());
                    }
                    Op::DeleteRange { table, range } => {
                        for key in listed.next().expect("listed above") {
                            views[*table].remove(key)?;
                        }
                        let doomed: Vec<&[u8]> = put[*table].iter().copied().filter(|k| range.contains(k)).collect();
                        for key in doomed {
                            views[*table].remove(key)?;
                            put[*table].remove(key);
                        }
                    }
                }
            }
            Ok::<(), sled::transaction::ConflictableTransactionError<sled::Error>>(())
        });
        match result {
            Ok(()) => {}
            Err(TransactionError::Abort(e) | TransactionError::Storage(e)) => return Err(map_err(e)),
        }
        if durability == Durability::Synced {
            self.db.flush().map_err(map_err)?;
        }
        Ok(())
    }
}

impl KvWrite for SledStore {
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
            self.apply(batch.ops(), durability).inspect_err(
                |e| error!(path = %self.path.display(), error = %e, "commit failed; store poisoned until reopened"),
            )
        })
    }
}
