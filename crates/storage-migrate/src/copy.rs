//! Cross-backend copy: every table copied in bounded batches, then compared entry by entry.

use storage_api::iter::RawCursor;
use storage_api::{Direction, Durability, KvRead, KvStore, RawBatch, RawRange};
use storage_backup::TableDigest;

use crate::{MigrateError, TableCopy, hex};

/// Copies every entry of `tables` from `source` into `target` (whose tables must be empty), in
/// atomic batches of at most `batch_entries` entries, buffered; the caller flushes the target
/// afterwards. `progress` receives the entries copied so far. Returns the entries copied.
pub fn copy_tables<S: KvRead + ?Sized, D: KvStore>(
    store: &str,
    source: &S,
    target: &D,
    tables: &[&str],
    batch_entries: usize,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, MigrateError> {
    let read = |side, table: &str| {
        let (store, table) = (store.to_owned(), table.to_owned());
        move |source| MigrateError::Read { side, store, table, source }
    };
    let write = |table: &str| {
        let (store, table) = (store.to_owned(), table.to_owned());
        move |source| MigrateError::Write { store, table, source }
    };
    let mut copied = 0u64;
    for table in tables {
        let mut probe = target.cursor(table, RawRange::all(), Direction::Forward).map_err(read("target", table))?;
        if probe.next_entry().is_some() {
            return Err(MigrateError::TargetNotEmpty { store: store.to_owned(), table: (*table).to_owned() });
        }
        drop(probe);
        let mut cursor = source.cursor(table, RawRange::all(), Direction::Forward).map_err(read("source", table))?;
        let mut batch = target.raw_batch();
        while let Some(entry) = cursor.next_entry() {
            let (key, value) = entry.map_err(read("source", table))?;
            batch.put_raw(table, key, value).map_err(write(table))?;
            copied += 1;
            if batch.len() >= batch_entries.max(1) {
                let full = std::mem::replace(&mut batch, target.raw_batch());
                target.write_raw(full, Durability::Buffered).map_err(write(table))?;
                progress(copied);
            }
        }
        if !batch.is_empty() {
            target.write_raw(batch, Durability::Buffered).map_err(write(table))?;
        }
        progress(copied);
    }
    Ok(copied)
}

/// Compares `tables` of `source` and `target` entry by entry in key order — equal entries
/// mean equal key counts and equal digests, and the first difference names the table and key
/// — and returns each table's count and digest.
pub fn verify_tables<S: KvRead + ?Sized, D: KvRead + ?Sized>(
    store: &str,
    source: &S,
    target: &D,
    tables: &[&str],
) -> Result<Vec<TableCopy>, MigrateError> {
    let mut out = Vec::new();
    for table in tables {
        let read = |side| {
            let (store, table) = (store.to_owned(), (*table).to_owned());
            move |source| MigrateError::Read { side, store, table, source }
        };
        let mut a = source.cursor(table, RawRange::all(), Direction::Forward).map_err(read("source"))?;
        let mut b = target.cursor(table, RawRange::all(), Direction::Forward).map_err(read("target"))?;
        let mut digest = TableDigest::default();
        let (mut na, mut nb) = (0u64, 0u64);
        loop {
            let ea = a.next_entry().transpose().map_err(read("source"))?.map(|(k, v)| (k.to_vec(), v.to_vec()));
            let eb = b.next_entry().transpose().map_err(read("target"))?.map(|(k, v)| (k.to_vec(), v.to_vec()));
            let mismatch = |key: &[u8], what, na, nb| MigrateError::Mismatch {
                store: store.to_owned(),
                table: (*table).to_owned(),
                key: hex(key),
                what,
                source_keys: na,
                target_keys: nb,
            };
            match (ea, eb) {
                (None, None) => break,
                (Some((k, _)), None) => return Err(mismatch(&k, "missing in the target", na, nb)),
                (None, Some((k, _))) => return Err(mismatch(&k, "extra in the target", na, nb)),
                (Some((ka, va)), Some((kb, vb))) => {
                    if ka != kb {
                        let (key, what) =
                            if ka < kb { (ka, "missing in the target") } else { (kb, "extra in the target") };
                        return Err(mismatch(&key, what, na, nb));
                    }
                    if va != vb {
                        return Err(mismatch(&ka, "value differs", na, nb));
                    }
                    digest.add(&ka, &va);
                    na += 1;
                    nb += 1;
                }
            }
        }
        let (keys, digest) = digest.finish();
        out.push(TableCopy { table: (*table).to_owned(), keys, digest });
    }
    Ok(out)
}
