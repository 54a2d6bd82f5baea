//! Flush, compaction and statistics.

use redb::{Durability as RedbDurability, ReadableDatabase, ReadableTableMetadata};
use storage_api::{BackendError, FlushError, KvCompact, KvFlush, KvStats, MaintenanceError, RawRange, TableStats};
use tracing::error;

use crate::RedbStore;
use crate::error::map_err;

impl KvFlush for RedbStore {
    /// Commits an empty transaction with immediate durability, which makes every earlier
    /// non-durable commit durable too.
    fn flush(&self) -> Result<(), FlushError> {
        self.poison.guard_flush(|| {
            let commit = || -> Result<(), BackendError> {
                let db = self.db();
                let mut txn = db.begin_write().map_err(map_err)?;
                txn.set_durability(RedbDurability::Immediate).map_err(map_err)?;
                txn.commit().map_err(map_err)
            };
            commit().inspect_err(
                |e| error!(path = %self.path.display(), error = %e, "flush failed; store poisoned until reopened"),
            )
        })
    }
}

impl KvCompact for RedbStore {
    /// Compacts the whole file (redb has no narrower compaction): `table` is checked, `range`
    /// ignored. Fails as busy while a snapshot or cursor is open.
    fn compact_raw(&self, table: &str, _range: &RawRange) -> Result<(), MaintenanceError> {
        if self.table(table).is_none() {
            return Err(MaintenanceError::UnknownTable(table.to_owned()));
        }
        self.compact_all()
    }

    /// The one file, once (every table lives in it).
    fn compact_all(&self) -> Result<(), MaintenanceError> {
        let mut db = self.db.write().unwrap_or_else(|p| p.into_inner());
        db.compact().map_err(map_err)?;
        Ok(())
    }
}

impl KvStats for RedbStore {
    /// Exact key counts; bytes are redb's stored, metadata and fragmented bytes of the table.
    fn table_stats_raw(&self, table: &str) -> Result<TableStats, MaintenanceError> {
        let def = self.table(table).ok_or_else(|| MaintenanceError::UnknownTable(table.to_owned()))?;
        stats_of(&self.db().begin_read().map_err(map_err)?, def)
    }
}

/// The statistics of one table, read in `txn`.
pub(crate) fn stats_of(txn: &redb::ReadTransaction, def: crate::RawTable<'_>) -> Result<TableStats, MaintenanceError> {
    let t = txn.open_table(def).map_err(map_err)?;
    let stats = t.stats().map_err(map_err)?;
    Ok(TableStats {
        approx_keys: t.len().map_err(map_err)?,
        approx_bytes: stats.stored_bytes() + stats.metadata_bytes() + stats.fragmented_bytes(),
    })
}
