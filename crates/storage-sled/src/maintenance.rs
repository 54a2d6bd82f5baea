//! Flush and statistics. sled has no manual compaction.

use storage_api::{FlushError, KvFlush, KvStats, MaintenanceError, TableStats};
use tracing::error;

use crate::SledStore;
use crate::error::map_err;

impl KvFlush for SledStore {
    /// sled's flush: writes dirty pages out and syncs on its main path (not on every path).
    fn flush(&self) -> Result<(), FlushError> {
        self.poison.guard_flush(|| {
            self.db.flush().map(|_| ()).map_err(map_err).inspect_err(
                |e| error!(path = %self.path.display(), error = %e, "flush failed; store poisoned until reopened"),
            )
        })
    }
}

impl KvStats for SledStore {
    /// Scans the tree: exact key count, and logical bytes (keys plus values), since sled does
    /// not report per-tree disk usage.
    fn table_stats_raw(&self, table: &str) -> Result<TableStats, MaintenanceError> {
        let i = self.index(table).ok_or_else(|| MaintenanceError::UnknownTable(table.to_owned()))?;
        let mut stats = TableStats::default();
        for entry in self.trees[i].iter() {
            let (k, v) = entry.map_err(map_err)?;
            stats.approx_keys += 1;
            stats.approx_bytes += (k.len() + v.len()) as u64;
        }
        Ok(stats)
    }
}
