//! Bulk ingest: SST files built with each table's own options and ingested by RocksDB
//! (`SstFileWriter` + `IngestExternalFile`): no memtable, no write-ahead log, and the files
//! land in the lowest level their key range allows, so fresh data is not rewritten by
//! compaction.
//!
//! Each table gets its own writer (tables may interleave); a file is closed at
//! [`FILE_TARGET`] bytes and a new one started. The files live in a scratch directory inside
//! the database directory (same file system, so ingestion moves them by hard link) which is
//! removed when the ingest ends and, after a crash, on the next open. `commit` ingests table
//! by table in the order the tables were first written; RocksDB syncs the files and records
//! them in the MANIFEST before each ingestion returns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::{IngestExternalFileOptions, SstFileWriter};
use storage_api::ingest::IngestOrder;
use storage_api::{BackendError, BackendErrorKind, Ingest, IngestError, IngestStats, KvIngest};

use crate::RocksStore;
use crate::error::{BACKEND, map_err};

/// The size at which an SST file is closed and the next started.
pub(crate) const FILE_TARGET: u64 = 256 << 20;

/// Prefix of the scratch directories inside the database directory.
const SCRATCH_PREFIX: &str = "ingest.tmp-";

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Removes scratch directories an interrupted ingest left in `db_path`.
pub(crate) fn remove_leftovers(db_path: &Path) {
    let Ok(entries) = std::fs::read_dir(db_path) else { return };
    for e in entries.flatten() {
        if e.file_name().to_string_lossy().starts_with(SCRATCH_PREFIX) {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

impl KvIngest for RocksStore {
    type Ingest<'a> = RocksIngest<'a>;

    fn ingest(&self) -> Result<RocksIngest<'_>, IngestError> {
        self.poison.check_write()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = self.path.join(format!("{SCRATCH_PREFIX}{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|source| IngestError::Scratch { path: dir.clone(), source })?;
        let tables = self.schema.physical_tables().count();
        Ok(RocksIngest {
            store: self,
            order: IngestOrder::new(&self.schema),
            dir,
            open: (0..tables).map(|_| None).collect(),
            files: vec![Vec::new(); tables],
        })
    }
}

/// A file being written for one table.
struct Open<'a> {
    writer: SstFileWriter<'a>,
    path: PathBuf,
    bytes: u64,
}

/// An ingest into a [`RocksStore`].
pub struct RocksIngest<'a> {
    store: &'a RocksStore,
    order: IngestOrder,
    dir: PathBuf,
    open: Vec<Option<Open<'a>>>,
    files: Vec<Vec<PathBuf>>,
}

impl std::fmt::Debug for RocksIngest<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RocksIngest({}, {:?})", self.dir.display(), self.order.stats())
    }
}

impl<'a> RocksIngest<'a> {
    fn writer(&mut self, t: usize) -> Result<&mut Open<'a>, IngestError> {
        if self.open[t].as_ref().is_some_and(|o| o.bytes >= FILE_TARGET) {
            self.finish_file(t)?;
        }
        if self.open[t].is_none() {
            let store: &'a RocksStore = self.store;
            let writer = SstFileWriter::create(&store.ingest_options[t]);
            let path = self.dir.join(format!("{}-{:05}.sst", self.order.name(t), self.files[t].len()));
            writer.open(&path).map_err(map_err)?;
            self.open[t] = Some(Open { writer, path, bytes: 0 });
        }
        Ok(self.open[t].as_mut().expect("opened above"))
    }

    fn finish_file(&mut self, t: usize) -> Result<(), IngestError> {
        if let Some(mut o) = self.open[t].take() {
            o.writer.finish().map_err(map_err)?;
            self.files[t].push(o.path);
        }
        Ok(())
    }
}

impl Ingest for RocksIngest<'_> {
    fn put(&mut self, table: &str, key: &[u8], value: &[u8]) -> Result<(), IngestError> {
        let t = self.order.check(table, key, value.len())?;
        let o = self.writer(t)?;
        o.writer.put(key, value).map_err(map_err)?;
        o.bytes += (key.len() + value.len()) as u64;
        Ok(())
    }

    fn delete(&mut self, table: &str, key: &[u8]) -> Result<(), IngestError> {
        let t = self.order.check(table, key, 0)?;
        let o = self.writer(t)?;
        o.writer.delete(key).map_err(map_err)?;
        o.bytes += key.len() as u64;
        Ok(())
    }

    fn commit(mut self) -> Result<IngestStats, IngestError> {
        self.store.poison.check_write()?;
        let mut stats = self.order.stats();
        let order: Vec<usize> = self.order.tables_in_order().to_vec();
        for &t in &order {
            self.finish_file(t)?;
        }
        let mut opts = IngestExternalFileOptions::default();
        opts.set_move_files(true);
        for &t in &order {
            let files = std::mem::take(&mut self.files[t]);
            if files.is_empty() {
                continue;
            }
            let name = self.order.name(t);
            let cf = self.store.db.cf_handle(name).ok_or_else(|| {
                BackendError::new(BACKEND, BackendErrorKind::InvalidArgument, format!("no column family `{name}`"))
            })?;
            stats.files += files.len() as u64;
            self.store.db.ingest_external_file_cf_opts(cf, &opts, files).map_err(map_err)?;
        }
        Ok(stats)
    }
}

impl Drop for RocksIngest<'_> {
    fn drop(&mut self) {
        self.open.clear();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
