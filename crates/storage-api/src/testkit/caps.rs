//! Conformance tests of the optional capabilities. A backend instantiates only those it has.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Harness, Items, Pairs, ReadOnlyHarness, open_suite, suite_schema, tempdir};
use crate::batch::{Durability, KvWrite};
use crate::codec::Blob;
use crate::error::{CheckpointError, OpenError};
use crate::ingest::{Ingest, IngestError, KvIngest};
use crate::iter::Direction;
use crate::read::ReadExt;
use crate::schema::VersionPolicy;
use crate::store::{KvCheckpoint, KvCompact, KvFlush, KvReader, KvSnapshots, KvStats};

/// Every file under `dir` with its size and a hash of its contents, to show that a refused
/// operation changed nothing.
pub fn dir_fingerprint(dir: &Path) -> BTreeMap<PathBuf, (usize, u64)> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, (usize, u64)>) {
        for entry in std::fs::read_dir(dir).expect("read_dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("prefix").to_path_buf();
                let bytes = std::fs::read(&path).expect("read");
                let mut h = std::collections::hash_map::DefaultHasher::new();
                std::hash::Hash::hash(&bytes, &mut h);
                out.insert(rel, (bytes.len(), std::hash::Hasher::finish(&h)));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn value(i: u32, len: usize) -> Blob {
    Blob(i.to_le_bytes().iter().copied().cycle().take(len).collect())
}

/// A snapshot sees the store as it was, whatever is written afterwards.
pub fn snapshot_isolation<H: Harness>()
where
    H::Store: KvSnapshots,
{
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    for i in 0..10u32 {
        s.put::<Items>(&i, &value(i, 8), Durability::Buffered).unwrap();
    }
    let snap = s.snapshot();
    let mut b = s.batch();
    b.delete_range::<Items>(0..5).unwrap();
    b.put::<Items>(&7, &value(70, 8)).unwrap();
    b.put::<Items>(&100, &value(100, 8)).unwrap();
    s.write(b, Durability::Synced).unwrap();
    let seen: Vec<(u32, Blob)> = snap.iter_all::<Items>(Direction::Forward).unwrap().map(|e| e.unwrap()).collect();
    assert_eq!(seen, (0..10).map(|i| (i, value(i, 8))).collect::<Vec<_>>());
    assert_eq!(snap.get::<Items>(&7).unwrap(), Some(value(7, 8)));
    assert_eq!(snap.get::<Items>(&100).unwrap(), None);
    assert_eq!(snap.multi_get::<Items>(&[1, 100]).unwrap(), vec![Some(value(1, 8)), None]);
    let rev: Vec<u32> = snap.iter_all::<Items>(Direction::Reverse).unwrap().keys().map(|k| k.unwrap()).collect();
    assert_eq!(rev, (0..10).rev().collect::<Vec<_>>());
    // The store itself sees the new state.
    assert_eq!(s.get::<Items>(&7).unwrap(), Some(value(70, 8)));
    assert_eq!(s.get::<Items>(&1).unwrap(), None);
}

/// Buffered writes followed by a flush survive reopening.
pub fn flush_makes_buffered_durable<H: Harness>()
where
    H::Store: KvFlush,
{
    let dir = tempdir();
    {
        let s = open_suite::<H>(dir.path());
        for i in 0..500u32 {
            s.put::<Items>(&i, &value(i, 100), Durability::Buffered).unwrap();
        }
        s.flush().unwrap();
        s.flush().unwrap();
    }
    if H::PERSISTENT {
        let s = open_suite::<H>(dir.path());
        assert_eq!(s.iter_all::<Items>(Direction::Forward).unwrap().count(), 500);
        assert_eq!(s.get::<Items>(&499).unwrap(), Some(value(499, 100)));
    }
}

/// Compaction keeps every live entry, drops deleted ones and (with statistics) shrinks the
/// table after most of it was deleted.
pub fn compaction_keeps_live_data<H: Harness>()
where
    H::Store: KvCompact + KvStats + KvFlush,
{
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    for i in 0..4000u32 {
        b.put::<Items>(&i, &value(i, 256)).unwrap();
    }
    s.write(b, Durability::Synced).unwrap();
    s.flush().unwrap();
    s.compact_table::<Items>().unwrap();
    let before = s.table_stats::<Items>().unwrap();
    let mut b = s.batch();
    b.delete_range::<Items>(0..3900).unwrap();
    s.write(b, Durability::Synced).unwrap();
    s.flush().unwrap();
    s.compact::<Items>(0..3900).unwrap();
    s.compact_table::<Items>().unwrap();
    s.compact_table::<Pairs>().unwrap();
    let after = s.table_stats::<Items>().unwrap();
    assert!(after.approx_bytes < before.approx_bytes, "compaction did not shrink: {before:?} -> {after:?}");
    let keys: Vec<u32> = s.iter_all::<Items>(Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
    assert_eq!(keys, (3900..4000).collect::<Vec<_>>());
    assert_eq!(s.get::<Items>(&3999).unwrap(), Some(value(3999, 256)));
    // The whole store at once keeps the same data.
    s.compact_all().unwrap();
    let again: Vec<u32> = s.iter_all::<Items>(Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
    assert_eq!(again, keys);
}

/// Statistics count keys and bytes per table.
pub fn statistics_count_keys<H: Harness>()
where
    H::Store: KvStats + KvFlush,
{
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    for i in 0..2000u32 {
        b.put::<Items>(&i, &value(i, 64)).unwrap();
    }
    s.write(b, Durability::Synced).unwrap();
    s.flush().unwrap();
    let items = s.table_stats::<Items>().unwrap();
    assert!((1000..=4000).contains(&items.approx_keys), "approximate key count far off: {items:?}");
    assert!(items.approx_bytes > 0, "{items:?}");
    let pairs = s.table_stats::<Pairs>().unwrap();
    assert_eq!(pairs.approx_keys, 0, "{pairs:?}");
    let all = s.all_table_stats().unwrap();
    assert_eq!(all.iter().map(|(n, _)| *n).collect::<Vec<_>>(), vec!["items", "pairs", "records"]);
    assert!(matches!(s.table_stats_raw("nope"), Err(crate::error::MaintenanceError::UnknownTable(_))));
}

/// A checkpoint is a consistent copy that opens as a store, and never overwrites.
pub fn checkpoint_is_consistent_copy<H: Harness>()
where
    H::Store: KvCheckpoint,
{
    let dir = tempdir();
    let out = tempdir();
    let target = out.path().join("ckpt");
    let s = open_suite::<H>(dir.path());
    for i in 0..300u32 {
        s.put::<Items>(&i, &value(i, 32), Durability::Buffered).unwrap();
    }
    s.checkpoint(&target).unwrap();
    s.put::<Items>(&1000, &value(1000, 32), Durability::Synced).unwrap();
    let err = s.checkpoint(&target).unwrap_err();
    assert!(matches!(err, CheckpointError::TargetExists(_)), "{err}");
    drop(s);
    let c = H::open(&target, super::suite_schema(1), VersionPolicy::Exact).unwrap();
    let keys: Vec<u32> = c.iter_all::<Items>(Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
    assert_eq!(keys, (0..300).collect::<Vec<_>>());
    assert_eq!(c.get::<Items>(&1000).unwrap(), None);
}

/// A read-only open sees everything written (buffered writes included, once the writer closed
/// cleanly), changes no file, and never creates a store.
pub fn read_only_open_changes_nothing<H: ReadOnlyHarness>() {
    let dir = tempdir();
    let path = dir.path().join("store");
    {
        let s = open_suite::<H>(&path);
        let mut b = s.batch();
        for i in 0..200u32 {
            b.put::<Items>(&i, &value(i, 48)).unwrap();
        }
        s.write(b, Durability::Synced).unwrap();
        s.put::<Pairs>(&(1, 2), &value(3, 4), Durability::Buffered).unwrap();
    }
    let before = dir_fingerprint(dir.path());
    {
        let r = H::open_read_only(&path, suite_schema(1), VersionPolicy::Exact).unwrap();
        assert_eq!(r.schema().name(), "suite");
        assert_eq!(r.stored_schema_version(), 1);
        let keys: Vec<u32> = r.iter_all::<Items>(Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
        assert_eq!(keys, (0..200).collect::<Vec<_>>());
        assert_eq!(r.get::<Items>(&199).unwrap(), Some(value(199, 48)));
        assert_eq!(r.get::<Pairs>(&(1, 2)).unwrap(), Some(value(3, 4)));
        assert_eq!(r.multi_get::<Items>(&[5, 500]).unwrap(), vec![Some(value(5, 48)), None]);
        // Two readers at once.
        let r2 = H::open_read_only(&path, suite_schema(1), VersionPolicy::Exact).unwrap();
        assert_eq!(r2.get::<Items>(&7).unwrap(), Some(value(7, 48)));
    }
    assert_eq!(before, dir_fingerprint(dir.path()), "a read-only open changed files");
    // A newer schema version on disk is refused as by a read-write open.
    let err = H::open_read_only(&path, suite_schema(0), VersionPolicy::Exact).unwrap_err();
    assert!(matches!(err, OpenError::NewerSchema { .. }), "{err}");
    // Nothing there: an error, and nothing created.
    let missing = dir.path().join("missing");
    let err = H::open_read_only(&missing, suite_schema(1), VersionPolicy::Exact).unwrap_err();
    assert!(matches!(err, OpenError::NotFound(_)), "{err}");
    assert!(!missing.exists(), "a read-only open created {}", missing.display());
}

/// An ingest makes nothing visible before commit and everything after it (puts and deletes,
/// over existing data, across tables, past a reopen); keys out of order and unknown tables are
/// refused by name; a dropped ingest leaves nothing behind.
pub fn ingest_sorted_entries<H: Harness>()
where
    H::Store: KvIngest,
{
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    for i in 0..100u32 {
        s.put::<Items>(&i, &value(i, 16), Durability::Synced).unwrap();
    }
    let key = |i: u32| i.to_be_bytes();
    let pair = |a: u16, b: u16| [a.to_be_bytes(), b.to_be_bytes()].concat();
    let blob = |i: u32| {
        let mut out = Vec::new();
        crate::codec::ValueCodec::encode_value(&value(i, 40), &mut out).unwrap();
        out
    };
    {
        let mut ing = s.ingest().unwrap();
        ing.put("items", &key(5), &blob(5)).unwrap();
        let err = ing.put("items", &key(5), &blob(5)).unwrap_err();
        assert!(matches!(err, IngestError::OutOfOrder { .. }), "{err}");
        assert!(matches!(ing.put("nope", b"k", b"v"), Err(IngestError::UnknownTable(_))));
        // dropped uncommitted
    }
    assert_eq!(s.get::<Items>(&5).unwrap(), Some(value(5, 16)), "a dropped ingest changes nothing");

    let mut ing = s.ingest().unwrap();
    for i in (50..5_000u32).step_by(2) {
        ing.put("items", &key(i), &blob(i)).unwrap();
        if i % 10 == 0 {
            ing.put("pairs", &pair((i / 10) as u16, 1), &blob(i)).unwrap();
        }
    }
    assert_eq!(s.get::<Items>(&60).unwrap(), Some(value(60, 16)), "nothing visible before commit");
    let stats = ing.commit().unwrap();
    assert_eq!(stats.entries, 2_475 + 495);
    let mut ing = s.ingest().unwrap();
    ing.delete("items", &key(1)).unwrap();
    ing.delete("items", &key(52)).unwrap();
    ing.commit().unwrap();
    let check = |s: &H::Store| {
        assert_eq!(s.get::<Items>(&0).unwrap(), Some(value(0, 16)));
        assert_eq!(s.get::<Items>(&1).unwrap(), None, "deleted by ingest");
        assert_eq!(s.get::<Items>(&51).unwrap(), Some(value(51, 16)), "untouched key kept");
        assert_eq!(s.get::<Items>(&52).unwrap(), None);
        assert_eq!(s.get::<Items>(&54).unwrap(), Some(value(54, 40)), "ingested value replaces the old");
        assert_eq!(s.get::<Items>(&4_998).unwrap(), Some(value(4_998, 40)));
        let keys: Vec<u32> = s.iter_all::<Items>(Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
        assert_eq!(keys.len(), 100 - 1 + 2_475 - 25 - 1);
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(s.get::<Pairs>(&(5, 1)).unwrap(), Some(value(50, 40)));
    };
    check(&s);
    if H::PERSISTENT {
        drop(s);
        check(&open_suite::<H>(dir.path()));
    }
}
