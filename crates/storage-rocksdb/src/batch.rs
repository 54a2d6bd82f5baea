//! Write batches: typed operations land directly in a RocksDB `WriteBatch`.

use rocksdb::{WriteBatch, WriteOptions};
use storage_api::{Durability, KvWrite, RawBatch, RawRange, WriteError};
use tracing::error;

use crate::RocksStore;
use crate::error::map_err;

/// A batch of operations on a [`RocksStore`], applied atomically by `write`.
pub struct RocksBatch<'a> {
    store: &'a RocksStore,
    batch: WriteBatch,
    /// The longest key put so far, to bound unbounded range deletes (see `delete_range_raw`).
    max_key_len: usize,
}

impl RocksBatch<'_> {
    fn cf(&self, table: &str) -> Result<&rocksdb::ColumnFamily, WriteError> {
        self.store.cf(table).ok_or_else(|| WriteError::UnknownTable(table.to_owned()))
    }

    /// A key above every key of `table`, both stored and put earlier in this batch. RocksDB's
    /// range delete needs a concrete end key.
    fn end_beyond_all(&self, table: &str) -> Result<Vec<u8>, WriteError> {
        let cf = self.cf(table)?;
        let mut it = self.store.db.raw_iterator_cf(cf);
        it.seek_to_last();
        let mut end = it.key().map(|k| {
            let mut k = k.to_vec();
            k.push(0);
            k
        });
        it.status().map_err(map_err)?;
        let all_ff = vec![0xff; self.max_key_len + 1];
        if end.as_ref().is_none_or(|e| *e < all_ff) {
            end = Some(all_ff);
        }
        Ok(end.unwrap_or_default())
    }
}

impl RawBatch for RocksBatch<'_> {
    #[inline]
    fn put_raw(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), WriteError> {
        let cf = self.store.cf(table).ok_or_else(|| WriteError::UnknownTable(table.to_owned()))?;
        self.batch.put_cf(cf, key, value);
        self.max_key_len = self.max_key_len.max(key.len());
        Ok(())
    }

    fn delete_raw(&mut self, table: &str, key: &[u8]) -> Result<(), WriteError> {
        let cf = self.store.cf(table).ok_or_else(|| WriteError::UnknownTable(table.to_owned()))?;
        self.batch.delete_cf(cf, key);
        Ok(())
    }

    fn delete_range_raw(&mut self, table: &str, range: &RawRange) -> Result<(), WriteError> {
        let upper = match &range.upper {
            Some(u) => u.clone(),
            None => self.end_beyond_all(table)?,
        };
        let lower = range.lower.clone().unwrap_or_default();
        if lower >= upper {
            return Ok(());
        }
        let cf = self.store.cf(table).ok_or_else(|| WriteError::UnknownTable(table.to_owned()))?;
        self.batch.delete_range_cf(cf, lower, upper);
        Ok(())
    }

    fn len(&self) -> usize {
        self.batch.len()
    }
}

impl KvWrite for RocksStore {
    type Batch<'a> = RocksBatch<'a>;

    fn is_poisoned(&self) -> bool {
        self.poison.is_poisoned()
    }

    fn raw_batch(&self) -> RocksBatch<'_> {
        RocksBatch { store: self, batch: WriteBatch::default(), max_key_len: 0 }
    }

    fn write_raw(&self, batch: RocksBatch<'_>, durability: Durability) -> Result<(), WriteError> {
        self.poison.guard_write(|| {
            if batch.batch.is_empty() {
                return Ok(());
            }
            let mut opts = WriteOptions::default();
            let synced = durability == Durability::Synced;
            opts.set_sync(synced && self.wal);
            opts.disable_wal(!self.wal);
            let mut acked = self.write_lock();
            self.db
                .write_opt(batch.batch, &opts)
                .map_err(map_err)
                // Without a log, durability means writing the memtables out.
                .and_then(|()| if synced && !self.wal { self.flush_all_memtables() } else { Ok(()) })
                .and_then(|()| if synced { self.acknowledge(&mut acked) } else { Ok(()) })
                .inspect_err(
                    |e| error!(path = %self.path.display(), error = %e, "write failed; store poisoned until reopened"),
                )
        })
    }
}
