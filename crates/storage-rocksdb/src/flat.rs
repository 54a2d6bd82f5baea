//! A plain RocksDB database with one keyspace (the default column family) and no schema
//! record: how databases were laid out before typed tables. Used to import them; the keyspace
//! is read through [`KvRead`] as the single table [`FLAT_TABLE`].

use std::path::{Path, PathBuf};

use rocksdb::{DB, Options, ReadOptions, WriteBatch, WriteOptions};
use storage_api::{BackendError, BackendErrorKind, Direction, KvRead, OpenError, RawRange, ReadError, WriteError};

use crate::error::{BACKEND, map_err};
use crate::iter::RocksCursor;

/// The table name under which [`RocksFlat`] exposes its one keyspace.
pub const FLAT_TABLE: &str = "default";

/// A flat RocksDB database opened read-only (it is never modified: the info log goes to a
/// scratch directory), or created for writing fixtures.
pub struct RocksFlat {
    db: DB,
    scratch: Option<PathBuf>,
}

impl std::fmt::Debug for RocksFlat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksFlat").field("path", &self.db.path()).finish()
    }
}

impl Drop for RocksFlat {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl RocksFlat {
    /// Opens the database at `path` read-only. Fails if there is no RocksDB database there.
    pub fn open_read_only(path: &Path) -> Result<Self, OpenError> {
        if !path.join("CURRENT").exists() {
            return Err(OpenError::Backend(BackendError::new(
                BACKEND,
                BackendErrorKind::InvalidArgument,
                format!("{} holds no RocksDB database (no CURRENT file)", path.display()),
            )));
        }
        let scratch = std::env::temp_dir().join(format!("storage-rocksdb-flat-{}-{}", std::process::id(), nanos()));
        std::fs::create_dir_all(&scratch).map_err(|source| OpenError::Io {
            action: "create",
            path: scratch.clone(),
            source,
        })?;
        let mut opts = Options::default();
        opts.set_db_log_dir(&scratch);
        opts.set_max_open_files(256);
        let db = DB::open_for_read_only(&opts, path, false).map_err(map_err)?;
        Ok(RocksFlat { db, scratch: Some(scratch) })
    }

    /// Creates a new flat database at `path` (for fixtures); fails if one exists.
    pub fn create(path: &Path) -> Result<Self, OpenError> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_error_if_exists(true);
        let db = DB::open(&opts, path).map_err(map_err)?;
        Ok(RocksFlat { db, scratch: None })
    }

    /// Writes `entries` in one synced batch (databases opened with [`RocksFlat::create`] only).
    pub fn write(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Result<(), WriteError> {
        let mut batch = WriteBatch::default();
        for (k, v) in entries {
            batch.put(k, v);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db.write_opt(batch, &wo).map_err(|e| WriteError::Backend(map_err(e)))
    }

    fn check_table(table: &str) -> Result<(), ReadError> {
        if table == FLAT_TABLE { Ok(()) } else { Err(ReadError::UnknownTable(table.to_owned())) }
    }
}

fn nanos() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0)
}

impl KvRead for RocksFlat {
    type Cursor<'a> = RocksCursor<'a>;

    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        Self::check_table(table)?;
        Ok(self.db.get_pinned(key).map_err(map_err)?.map(|v| f(&v)))
    }

    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        Self::check_table(table)?;
        for (i, key) in keys.iter().enumerate() {
            let v = self.db.get_pinned(key).map_err(map_err)?;
            f(i, v.as_deref());
        }
        Ok(())
    }

    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<RocksCursor<'_>, ReadError> {
        Self::check_table(table)?;
        let empty = range.is_empty();
        let mut opts = ReadOptions::default();
        if let Some(l) = range.lower {
            opts.set_iterate_lower_bound(l);
        }
        if let Some(u) = range.upper {
            opts.set_iterate_upper_bound(u);
        }
        Ok(RocksCursor::new(self.db.raw_iterator_opt(opts), direction, empty))
    }
}
