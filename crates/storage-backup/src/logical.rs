//! Logical backups: every table's entries as an engine-independent stream.
//!
//! The archive holds `logical/<store>/<table>/<chunk>.kv` entries of at most [`CHUNK_BYTES`]
//! each; a chunk is a run of records `key_len: u32 LE, key, value_len: u32 LE, value` in key
//! order. A table's [`TableDigest`] is the BLAKE3 of exactly those bytes, so the digest in the
//! manifest can be recomputed from any store holding the table, whatever its engine.

use std::io::{Read, Write};

use storage_api::iter::RawCursor;
use storage_api::{Direction, Ingest, KvIngest, KvRead, KvStore, RawBatch, RawRange};

use crate::archive;
use crate::error::{BackupError, IntegrityError};
use crate::manifest::{StoreRecord, TableRecord};

/// Upper bound of a chunk's raw size.
pub const CHUNK_BYTES: usize = 32 << 20;

/// Entries per batch when loading.
const LOAD_BATCH: usize = 4096;

/// An order-sensitive digest of a table's entries, with their count.
#[derive(Debug, Clone)]
pub struct TableDigest {
    hasher: blake3::Hasher,
    keys: u64,
}

impl Default for TableDigest {
    fn default() -> Self {
        TableDigest { hasher: blake3::Hasher::new(), keys: 0 }
    }
}

impl TableDigest {
    /// Adds the next entry.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut record = Vec::with_capacity(8 + key.len() + value.len());
        encode_record(&mut record, key, value);
        self.hasher.update(&record);
        self.keys += 1;
    }

    /// The count and hex digest.
    pub fn finish(&self) -> (u64, String) {
        (self.keys, self.hasher.finalize().to_hex().to_string())
    }

    /// The digest of table `table` as `reader` holds it.
    pub fn of_table<R: KvRead + ?Sized>(reader: &R, table: &str) -> Result<(u64, String), storage_api::ReadError> {
        let mut digest = TableDigest::default();
        let mut cursor = reader.cursor(table, RawRange::all(), Direction::Forward)?;
        while let Some(entry) = cursor.next_entry() {
            let entry = entry?;
            digest.add(entry.0, entry.1);
        }
        Ok(digest.finish())
    }
}

fn encode_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    out.extend_from_slice(value);
}

/// Writes logical dumps of stores into a backup archive (see [`crate::Backups::create_logical`]).
pub struct LogicalWriter<'w> {
    pub(crate) builder: tar::Builder<&'w mut dyn Write>,
    pub(crate) files: Vec<(String, u64, String)>,
    pub(crate) stores: Vec<StoreRecord>,
    pub(crate) on_bytes: &'w (dyn Fn(u64) + Send + Sync),
}

impl LogicalWriter<'_> {
    /// Dumps every table in `tables` of one store from `reader` — which must be a consistent
    /// view (a snapshot, or the store while writes are paused) — and records the store.
    pub fn dump_store<R: KvRead + ?Sized>(
        &mut self,
        mut record: StoreRecord,
        reader: &R,
        tables: &[&str],
    ) -> Result<(), BackupError> {
        let store = record.name.clone();
        for table in tables {
            let mut digest = TableDigest::default();
            let mut chunk = Vec::with_capacity(1 << 20);
            let mut seq = 0u32;
            let mut cursor =
                reader.cursor(table, RawRange::all(), Direction::Forward).map_err(|e| BackupError::store(&store, e))?;
            while let Some(entry) = cursor.next_entry() {
                let entry = entry.map_err(|e| BackupError::store(&store, e))?;
                digest.add(entry.0, entry.1);
                encode_record(&mut chunk, entry.0, entry.1);
                if chunk.len() >= CHUNK_BYTES {
                    self.flush_chunk(&store, table, &mut seq, &mut chunk)?;
                }
            }
            if !chunk.is_empty() || seq == 0 {
                self.flush_chunk(&store, table, &mut seq, &mut chunk)?;
            }
            let (keys, digest) = digest.finish();
            record.tables.push(TableRecord { name: (*table).to_owned(), keys, digest });
        }
        self.stores.push(record);
        Ok(())
    }

    fn flush_chunk(&mut self, store: &str, table: &str, seq: &mut u32, chunk: &mut Vec<u8>) -> Result<(), BackupError> {
        let path = format!("logical/{store}/{table}/{seq:06}.kv");
        let hash = archive::append(&mut self.builder, &path, chunk.len() as u64, chunk.as_slice())?;
        (self.on_bytes)(chunk.len() as u64);
        self.files.push((path, chunk.len() as u64, hash.to_hex().to_string()));
        *seq += 1;
        chunk.clear();
        Ok(())
    }
}

/// Parses a chunk entry's path into (store, table).
pub(crate) fn chunk_target(path: &str) -> Option<(&str, &str)> {
    let mut parts = path.split('/');
    match (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("logical"), Some(store), Some(table), Some(_), None) => Some((store, table)),
        _ => None,
    }
}

/// How a logical chunk enters a store: [`load_chunk_in_batches`] for any store,
/// [`load_chunk_ingested`] for engines with bulk ingestion. A restore names one.
pub type ChunkLoader<S> =
    fn(store_name: &str, store: &S, table: &str, reader: &mut dyn Read) -> Result<(), BackupError>;

/// Loads one chunk (already size- and hash-checked by the archive reader as it streams) into
/// `store`'s table `table`, in write batches.
pub fn load_chunk_in_batches<S: KvStore>(
    store_name: &str,
    store: &S,
    table: &str,
    reader: &mut dyn Read,
) -> Result<(), BackupError> {
    let fail = |e: &dyn std::fmt::Display| BackupError::store(store_name, e);
    let mut batch = store.raw_batch();
    read_records(reader, store_name, table, |key, value| {
        batch.put_raw(table, key, value).map_err(|e| fail(&e))?;
        if batch.len() >= LOAD_BATCH {
            let full = std::mem::replace(&mut batch, store.raw_batch());
            store.write_raw(full, storage_api::Durability::Buffered).map_err(|e| fail(&e))?;
        }
        Ok(())
    })?;
    if !batch.is_empty() {
        store.write_raw(batch, storage_api::Durability::Buffered).map_err(|e| fail(&e))?;
    }
    Ok(())
}

/// Loads one chunk into `store`'s table `table` through one bulk ingest (RocksDB: an SST
/// file, no memtable or write-ahead log). A chunk's keys ascend, as the ingest requires; a
/// chunk that does not is refused and nothing of it is loaded.
pub fn load_chunk_ingested<S: KvIngest>(
    store_name: &str,
    store: &S,
    table: &str,
    reader: &mut dyn Read,
) -> Result<(), BackupError> {
    let fail = |e: &dyn std::fmt::Display| BackupError::store(store_name, e);
    let mut ingest = store.ingest().map_err(|e| fail(&e))?;
    read_records(reader, store_name, table, |key, value| ingest.put(table, key, value).map_err(|e| fail(&e)))?;
    ingest.commit().map_err(|e| fail(&e))?;
    Ok(())
}

/// Calls `f` with each record of a chunk, reusing one key and one value buffer.
fn read_records(
    reader: &mut dyn Read,
    store_name: &str,
    table: &str,
    mut f: impl FnMut(&[u8], &[u8]) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let (mut key, mut value) = (Vec::new(), Vec::new());
    let mut len = [0u8; 4];
    loop {
        if !read_exact_or_eof(reader, &mut len)? {
            return Ok(());
        }
        key.resize(u32::from_le_bytes(len) as usize, 0);
        read_body(reader, &mut key)?;
        if !read_exact_or_eof(reader, &mut len)? {
            return Err(BackupError::Invalid(format!("truncated record in {store_name}/{table}")));
        }
        value.resize(u32::from_le_bytes(len) as usize, 0);
        read_body(reader, &mut value)?;
        f(&key, &value)?;
    }
}

fn read_body(reader: &mut dyn Read, buf: &mut [u8]) -> Result<(), BackupError> {
    if read_exact_or_eof(reader, buf)? || buf.is_empty() {
        Ok(())
    } else {
        Err(BackupError::Invalid("truncated record in a logical chunk".into()))
    }
}

/// Fills `buf`; `Ok(false)` on a clean end of input before the first byte.
fn read_exact_or_eof(reader: &mut dyn Read, buf: &mut [u8]) -> Result<bool, BackupError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(BackupError::Invalid("truncated record in a logical chunk".into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => return Err(BackupError::Io { action: "reading archive", path: "(chunk)".into(), source }),
        }
    }
    Ok(true)
}

/// Checks every table of `record` in `store` against the manifest's count and digest.
pub fn verify_store<S: KvRead + ?Sized>(record: &StoreRecord, store: &S) -> Result<(), BackupError> {
    for table in &record.tables {
        let (keys, digest) =
            TableDigest::of_table(store, &table.name).map_err(|e| BackupError::store(&record.name, e))?;
        let mismatch = |what, expected: String, found: String| IntegrityError::Table {
            store: record.name.clone(),
            table: table.name.clone(),
            what,
            expected,
            found,
        };
        if keys != table.keys {
            return Err(mismatch("key count", table.keys.to_string(), keys.to_string()).into());
        }
        if digest != table.digest {
            return Err(mismatch("digest", table.digest.clone(), digest).into());
        }
    }
    Ok(())
}
