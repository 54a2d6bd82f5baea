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
    /// Each column family, one after the other.
    fn compact_all(&self) -> Result<(), MaintenanceError> {
        use storage_api::KvReader;
        for table in self.schema().physical_tables() {
            self.compact_raw(table, &RawRange::all())?;
        }
        Ok(())
    }

    fn compact_raw(&self, table: &str, range: &RawRange) -> Result<(), MaintenanceError> {
        let cf = self.stat_cf(table)?;
        let mut opts = CompactOptions::default();
        opts.set_exclusive_manual_compaction(false);
        opts.set_bottommost_level_compaction(BottommostLevelCompaction::Force);
        // The C API drops the compaction's status; a failure shows as a new background error.
        // (Before this check, a compaction on a full disk reported success — found by the
        // fault-fs error sweeps.)
        let before = self.background_errors();
        self.db.compact_range_cf_opt(cf, range.lower.as_deref(), range.upper.as_deref(), &opts);
        if self.background_errors() > before {
            let cause = last_logged_error(&self.path.join("LOG")).unwrap_or_else(|| match free_bytes(&self.path) {
                // On a full disk even the LOG line could not be written.
                Some(free) if free < 64 << 20 => {
                    format!("no space left: {free} bytes free on the file system of {}", self.path.display())
                }
                _ => format!("see RocksDB's LOG in {}", self.path.display()),
            });
            return Err(MaintenanceError::Backend(BackendError::new(
                crate::error::BACKEND,
                storage_api::BackendErrorKind::Io,
                format!("compaction of `{table}` failed, the data is unchanged: {cause}"),
            )));
        }
        Ok(())
    }
}

impl RocksStore {
    /// `rocksdb.background-errors`: failed flushes and compactions since the open.
    fn background_errors(&self) -> u64 {
        self.db.property_int_value("rocksdb.background-errors").ok().flatten().unwrap_or(0)
    }
}

/// Bytes available to this process on the file system holding `path`.
fn free_bytes(path: &std::path::Path) -> Option<u64> {
    let st = rustix::fs::statvfs(path).ok()?;
    Some(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The last error RocksDB wrote to its info log (the tail of the file), for the error message.
fn last_logged_error(log: &std::path::Path) -> Option<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(log).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(64 << 10))).ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text.lines().rev().find(|l| l.contains("[ERROR]") || l.contains("error"))?;
    // Drop the timestamp and thread id RocksDB prefixes.
    let message = line.split_once("[ERROR]").map_or(line, |(_, m)| m).trim();
    Some(message.chars().take(400).collect())
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
