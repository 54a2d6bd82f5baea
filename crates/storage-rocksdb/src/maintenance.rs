//! Flush, compaction and statistics.

use rocksdb::{BottommostLevelCompaction, CompactOptions, FlushOptions};
use storage_api::{BackendError, FlushError, KvCompact, KvFlush, KvStats, MaintenanceError, RawRange, TableStats};
use tracing::error;

use crate::RocksStore;
use crate::error::map_err;

impl RocksStore {
    pub(crate) fn flush_all_memtables(&self) -> Result<(), BackendError> {
        let cfs: Vec<&rocksdb::ColumnFamily> = self.schema.physical_tables().filter_map(|t| self.cf(t)).collect();
        let mut opts = FlushOptions::default();
        opts.set_wait(true);
        self.db.flush_cfs_opt(&cfs, &opts).map_err(map_err)
    }

    fn stat_cf(&self, table: &str) -> Result<&rocksdb::ColumnFamily, MaintenanceError> {
        self.cf(table).ok_or_else(|| MaintenanceError::UnknownTable(table.to_owned()))
    }
}

impl KvFlush for RocksStore {
    /// Syncs the write-ahead log and writes every memtable out to SST files.
    fn flush(&self) -> Result<(), FlushError> {
        self.poison.guard_flush(|| {
            let mut acked = self.write_lock();
            if self.wal { self.db.flush_wal(true).map_err(map_err) } else { self.flush_all_memtables() }
                .and_then(|()| self.acknowledge(&mut acked))
                .and_then(|()| {
                    acked.sync().map_err(|e| {
                        BackendError::new(
                            crate::error::BACKEND,
                            storage_api::BackendErrorKind::Io,
                            format!("syncing {}: {e}", acked.path().display()),
                        )
                    })
                })
                .and_then(|()| {
                    // Durable already; writing the memtables out need not hold up writers.
                    drop(acked);
                    if self.wal { self.flush_all_memtables() } else { Ok(()) }
                })
                .inspect_err(
                    |e| error!(path = %self.path.display(), error = %e, "flush failed; store poisoned until reopened"),
                )
        })
    }

    /// Syncs the write-ahead log only (memtables stay in memory; the WAL makes them durable).
    fn sync(&self) -> Result<(), FlushError> {
        self.sync_wal()
    }
}

impl RocksStore {
    fn sync_wal(&self) -> Result<(), FlushError> {
        if !self.wal {
            return self.flush();
        }
        self.poison.guard_flush(|| {
            let mut acked = self.write_lock();
            self.db.flush_wal(true).map_err(map_err).and_then(|()| self.acknowledge(&mut acked)).inspect_err(
                |e| error!(path = %self.path.display(), error = %e, "WAL sync failed; store poisoned until reopened"),
            )
        })
    }
}

impl KvCompact for RocksStore {
    fn compact_raw(&self, table: &str, range: &RawRange) -> Result<(), MaintenanceError> {
        let cf = self.stat_cf(table)?;
        let mut opts = CompactOptions::default();
        opts.set_exclusive_manual_compaction(false);
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        self.db.compact_range_cf_opt(cf, range.lower.as_deref(), range.upper.as_deref(), &opts);
        Ok(())
    }
}

impl KvStats for RocksStore {
    /// Keys from `rocksdb.estimate-num-keys` (memtables and SST files, an estimate that can
    /// count overwritten keys twice until compaction); bytes from
    /// `rocksdb.live-sst-files-size`.
    fn table_stats_raw(&self, table: &str) -> Result<TableStats, MaintenanceError> {
        stats_of(&self.db, table)
    }
}

impl KvStats for crate::RocksReader {
    /// As for [`RocksStore`]; a table the database lacks counts as empty.
    fn table_stats_raw(&self, table: &str) -> Result<TableStats, MaintenanceError> {
        use storage_api::KvReader;
        if !self.schema().physical_tables().any(|t| t == table) {
            return Err(MaintenanceError::UnknownTable(table.to_owned()));
        }
        if self.db.cf_handle(table).is_none() {
            return Ok(TableStats::default());
        }
        stats_of(&self.db, table)
    }
}

/// The statistics of `table` from RocksDB's properties.
fn stats_of(db: &rocksdb::DB, table: &str) -> Result<TableStats, MaintenanceError> {
    let cf = db.cf_handle(table).ok_or_else(|| MaintenanceError::UnknownTable(table.to_owned()))?;
    let int = |name: &str| -> Result<u64, MaintenanceError> {
        Ok(db.property_int_value_cf(cf, name).map_err(map_err)?.unwrap_or(0))
    };
    Ok(TableStats { approx_keys: int("rocksdb.estimate-num-keys")?, approx_bytes: int("rocksdb.live-sst-files-size")? })
}
