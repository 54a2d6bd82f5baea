//! Cross-backend copy: every table copied in bounded batches ([`copy_tables`]) or, into an
//! engine that can, through its bulk ingestion ([`ingest_tables`]: the source's tables are read
//! in key order, which is the order an ingest takes); then compared entry by entry.

use storage_api::iter::RawCursor;
use storage_api::{Direction, Durability, Ingest, KvIngest, KvRead, KvStore, RawBatch, RawRange};
use storage_backup::TableDigest;

use crate::{MigrateError, TableCopy, hex};

/// Fails with [`MigrateError::TargetNotEmpty`] unless every one of `tables` in `target` is empty.
fn require_empty<D: KvRead + ?Sized>(store: &str, target: &D, tables: &[&str]) -> Result<(), MigrateError> {
    for table in tables {
        let mut probe = target.cursor(table, RawRange::all(), Direction::Forward).map_err(|source| {
            MigrateError::Read { side: "target", store: store.to_owned(), table: (*table).to_owned(), source }
        })?;
        if probe.next_entry().is_some() {
            return Err(MigrateError::TargetNotEmpty { store: store.to_owned(), table: (*table).to_owned() });
        }
    }
    Ok(())
}

/// Copies every entry of `tables` from `source` into `target` (whose tables must be empty)
/// through the target's bulk ingestion — RocksDB builds table files and ingests them, redb
/// inserts in one transaction — instead of write batches. The source is read table by table
/// in key order, which is what an ingest requires, so nothing is sorted or held in memory.
/// Visible and durable when this returns. `progress` receives the entries copied so far.
pub fn ingest_tables<S: KvRead + ?Sized, D: KvIngest>(
    store: &str,
    source: &S,
    target: &D,
    tables: &[&str],
    progress: &mut dyn FnMut(u64),
) -> Result<u64, MigrateError> {
    require_empty(store, target, tables)?;
    let ingest_error = |source| MigrateError::Ingest { store: store.to_owned(), source };
    let mut ingest = target.ingest().map_err(ingest_error)?;
    let mut copied = 0u64;
    for table in tables {
        let mut cursor = source.cursor(table, RawRange::all(), Direction::Forward).map_err(|source| {
            MigrateError::Read { side: "source", store: store.to_owned(), table: (*table).to_owned(), source }
        })?;
        while let Some(entry) = cursor.next_entry() {
            let (key, value) = entry.map_err(|source| MigrateError::Read {
                side: "source",
                store: store.to_owned(),
                table: (*table).to_owned(),
                source,
            })?;
            ingest.put(table, key, value).map_err(ingest_error)?;
            copied += 1;
            if copied.is_multiple_of(65_536) {
                progress(copied);
            }
        }
    }
    ingest.commit().map_err(ingest_error)?;
    progress(copied);
    Ok(copied)
}

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
    require_empty(store, target, tables)?;
    let mut copied = 0u64;
    for table in tables {
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

#[cfg(test)]
mod tests {
    use storage_api::mem::MemStore;
    use storage_api::testkit::{Items, Records, suite_schema};
    use storage_api::{Blob, Durability, KvReader, KvWrite, ReadExt};

    use super::*;

    fn source() -> MemStore {
        let store = MemStore::new(suite_schema(1));
        let mut batch = store.batch();
        for i in 0..1_000u32 {
            batch.put::<Items>(&i, &Blob(vec![(i % 7) as u8; (i % 50) as usize])).unwrap();
            batch.put::<Records>(&u64::from(i), &(u64::from(i) * 3, format!("r{i}"))).unwrap();
        }
        store.write(batch, Durability::Synced).unwrap();
        store
    }

    #[test]
    fn ingest_and_batches_copy_the_same_entries() {
        let from = source();
        let tables: Vec<&str> = from.schema().tables().iter().map(|t| t.name).collect();
        let (by_ingest, by_batches) = (MemStore::new(suite_schema(1)), MemStore::new(suite_schema(1)));
        let mut seen = 0;
        let n = ingest_tables("s", &from, &by_ingest, &tables, &mut |done| seen = done).unwrap();
        assert_eq!((n, seen), (2_000, 2_000));
        assert_eq!(copy_tables("s", &from, &by_batches, &tables, 64, &mut |_| {}).unwrap(), 2_000);
        let a = verify_tables("s", &from, &by_ingest, &tables).unwrap();
        let b = verify_tables("s", &from, &by_batches, &tables).unwrap();
        assert_eq!(a, b);
        assert_eq!(by_ingest.get::<Records>(&999).unwrap(), Some((2_997, "r999".to_owned())));
    }

    #[test]
    fn ingest_refuses_a_target_with_data() {
        let from = source();
        let tables: Vec<&str> = from.schema().tables().iter().map(|t| t.name).collect();
        let target = MemStore::new(suite_schema(1));
        target.put::<Items>(&5, &Blob(vec![1]), Durability::Synced).unwrap();
        let err = ingest_tables("s", &from, &target, &tables, &mut |_| {}).unwrap_err();
        assert!(matches!(err, MigrateError::TargetNotEmpty { ref table, .. } if table == "items"), "{err}");
        assert_eq!(target.get::<Records>(&1).unwrap(), None, "nothing copied");
    }
}
