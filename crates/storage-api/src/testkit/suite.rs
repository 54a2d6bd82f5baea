//! The core conformance tests: what every backend must do.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::{Extra, Harness, Items, Pairs, Records, extended_schema, open_suite, suite_schema, tempdir};
use crate::batch::{Durability, KvWrite, RawBatch};
use crate::codec::Blob;
use crate::error::{OpenError, ReadError, WriteError};
use crate::iter::Direction;
use crate::read::{KvRead, ReadExt};
use crate::schema::VersionPolicy;

fn blob(s: &str) -> Blob {
    Blob(s.as_bytes().to_vec())
}

/// Single puts, overwrites and deletes.
pub fn put_get_delete<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    assert_eq!(s.get::<Items>(&1).unwrap(), None);
    s.put::<Items>(&1, &blob("one"), Durability::Synced).unwrap();
    assert_eq!(s.get::<Items>(&1).unwrap(), Some(blob("one")));
    assert!(s.contains::<Items>(&1).unwrap());
    s.put::<Items>(&1, &blob("uno"), Durability::Buffered).unwrap();
    assert_eq!(s.get::<Items>(&1).unwrap(), Some(blob("uno")));
    s.put::<Records>(&1, &(7, "seven".into()), Durability::Synced).unwrap();
    assert_eq!(s.get::<Records>(&1).unwrap(), Some((7, "seven".to_string())));
    // Same key, different table: independent.
    assert_eq!(s.get::<Items>(&1).unwrap(), Some(blob("uno")));
    let mut b = s.batch();
    b.delete::<Items>(&1).unwrap();
    s.write(b, Durability::Synced).unwrap();
    assert_eq!(s.get::<Items>(&1).unwrap(), None);
    assert!(!s.contains::<Items>(&1).unwrap());
    assert_eq!(s.get::<Records>(&1).unwrap(), Some((7, "seven".to_string())));
    // An empty value round-trips as present.
    s.put::<Items>(&2, &Blob(vec![]), Durability::Synced).unwrap();
    assert_eq!(s.get::<Items>(&2).unwrap(), Some(Blob(vec![])));
}

/// Multi-get returns results in key order given, including misses and duplicates.
pub fn multi_get_keeps_order<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    for i in 0..50u32 {
        b.put::<Items>(&(i * 2), &Blob(i.to_be_bytes().to_vec())).unwrap();
    }
    s.write(b, Durability::Synced).unwrap();
    let keys = [9u32, 4, 98, 4, 1000, 0];
    let got = s.multi_get::<Items>(&keys).unwrap();
    let want: Vec<Option<Blob>> =
        keys.iter().map(|k| (k % 2 == 0 && *k < 100).then(|| Blob((k / 2).to_be_bytes().to_vec()))).collect();
    assert_eq!(got, want);
    assert!(s.multi_get::<Items>(&[]).unwrap().is_empty());
}

/// One batch writes to several tables at once.
pub fn batch_spans_tables<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    b.put::<Items>(&5, &blob("item"))
        .unwrap()
        .put::<Pairs>(&(1, 2), &blob("pair"))
        .unwrap()
        .put::<Records>(&9, &(1, "r".into()))
        .unwrap();
    assert_eq!(b.len(), 3);
    s.write(b, Durability::Synced).unwrap();
    assert_eq!(s.get::<Items>(&5).unwrap(), Some(blob("item")));
    assert_eq!(s.get::<Pairs>(&(1, 2)).unwrap(), Some(blob("pair")));
    assert_eq!(s.get::<Records>(&9).unwrap(), Some((1, "r".into())));
}

/// Operations within a batch apply in order.
pub fn batch_applies_in_order<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    b.put::<Items>(&1, &blob("a")).unwrap();
    b.delete::<Items>(&1).unwrap();
    b.put::<Items>(&2, &blob("a")).unwrap();
    b.delete::<Items>(&2).unwrap();
    b.put::<Items>(&2, &blob("b")).unwrap();
    b.put::<Items>(&3, &blob("c")).unwrap();
    b.delete_range::<Items>(0..=3).unwrap();
    b.put::<Items>(&3, &blob("d")).unwrap();
    s.write(b, Durability::Synced).unwrap();
    assert_eq!(s.get::<Items>(&1).unwrap(), None);
    assert_eq!(s.get::<Items>(&2).unwrap(), None);
    assert_eq!(s.get::<Items>(&3).unwrap(), Some(blob("d")));
}

/// A batch whose building failed is never written, and unknown tables fail at the operation.
pub fn failed_batch_writes_nothing<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    b.put::<Items>(&1, &blob("x")).unwrap();
    let err = b.raw_mut().put_raw("no_such_table", b"k", b"v").unwrap_err();
    assert!(matches!(err, WriteError::UnknownTable(ref t) if t == "no_such_table"), "{err}");
    let err = b.put::<Extra>(&1, &blob("x")).err().expect("unknown table must fail");
    assert!(matches!(err, WriteError::UnknownTable(ref t) if t == "extra"), "{err}");
    drop(b);
    assert_eq!(s.get::<Items>(&1).unwrap(), None);
    // An empty batch is fine.
    s.write(s.batch(), Durability::Synced).unwrap();
}

fn fill_items<S: KvWrite>(s: &S, n: u32) {
    let mut b = s.batch();
    for i in 0..n {
        b.put::<Items>(&i, &Blob(vec![i as u8])).unwrap();
    }
    s.write(b, Durability::Synced).unwrap();
}

fn item_keys<S: KvRead>(s: &S, dir: Direction) -> Vec<u32> {
    s.iter_all::<Items>(dir).unwrap().keys().map(|k| k.unwrap()).collect()
}

/// Range deletes of every shape, including an inverted range.
pub fn delete_ranges<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    fill_items(&s, 20);
    let mut b = s.batch();
    b.delete_range::<Items>(3..6).unwrap();
    b.delete_range::<Items>(10..=11).unwrap();
    b.delete_range::<Items>(18..).unwrap();
    s.write(b, Durability::Synced).unwrap();
    let want: Vec<u32> = (0..20).filter(|i| !(3..6).contains(i) && !(10..=11).contains(i) && *i < 18).collect();
    assert_eq!(item_keys(&s, Direction::Forward), want);

    let mut b = s.batch();
    let err = b.delete_range::<Items>((Bound::Included(9), Bound::Excluded(2))).err().expect("inverted range");
    assert!(matches!(err, WriteError::InvalidRange(_)), "{err}");
    b.delete_range::<Items>(7..7).unwrap(); // empty: no-op
    s.write(b, Durability::Synced).unwrap();
    assert_eq!(item_keys(&s, Direction::Forward), want);

    let mut b = s.batch();
    for a in 0..3u16 {
        for c in 0..3u16 {
            b.put::<Pairs>(&(a, c), &blob("p")).unwrap();
        }
    }
    s.write(b, Durability::Synced).unwrap();
    let mut b = s.batch();
    b.delete_prefix::<Pairs, _>(&1u16).unwrap();
    b.clear_table::<Items>().unwrap();
    s.write(b, Durability::Synced).unwrap();
    let pairs: Vec<(u16, u16)> = s.iter_all::<Pairs>(Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
    assert_eq!(pairs, vec![(0, 0), (0, 1), (0, 2), (2, 0), (2, 1), (2, 2)]);
    assert!(item_keys(&s, Direction::Forward).is_empty());
}

/// Every kind of bound, forward and reverse, against a `BTreeMap`.
pub fn iteration_bounds_both_directions<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let keys: Vec<u32> = vec![0, 1, 2, 7, 8, 255, 256, 1000, u32::MAX - 1, u32::MAX];
    let model: BTreeMap<u32, Blob> = keys.iter().map(|k| (*k, Blob(k.to_le_bytes().to_vec()))).collect();
    let mut b = s.batch();
    for (k, v) in &model {
        b.put::<Items>(k, v).unwrap();
    }
    s.write(b, Durability::Synced).unwrap();
    let points = [0u32, 1, 5, 8, 255, 256, 999, u32::MAX];
    let mut bounds: Vec<Bound<u32>> = vec![Bound::Unbounded];
    for p in points {
        bounds.push(Bound::Included(p));
        bounds.push(Bound::Excluded(p));
    }
    for lo in &bounds {
        for hi in &bounds {
            let valid = match (lo, hi) {
                (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                    a < b || (a == b && !matches!((lo, hi), (Bound::Excluded(_), Bound::Excluded(_))))
                }
                _ => true,
            };
            if !valid {
                continue;
            }
            let want: Vec<(u32, Blob)> = model.range((*lo, *hi)).map(|(k, v)| (*k, v.clone())).collect();
            let got: Vec<(u32, Blob)> =
                s.iter::<Items>((*lo, *hi), Direction::Forward).unwrap().map(|e| e.unwrap()).collect();
            assert_eq!(got, want, "forward {lo:?}..{hi:?}");
            let mut rev: Vec<(u32, Blob)> =
                s.iter::<Items>((*lo, *hi), Direction::Reverse).unwrap().map(|e| e.unwrap()).collect();
            rev.reverse();
            assert_eq!(rev, want, "reverse {lo:?}..{hi:?}");
        }
    }
    assert_eq!(s.first::<Items>().unwrap().map(|e| e.0), Some(0));
    assert_eq!(s.last::<Items>().unwrap().map(|e| e.0), Some(u32::MAX));
    assert_eq!(s.first::<Pairs>().unwrap(), None);
    // Iteration stops at the table's end: other tables never leak in.
    s.put::<Records>(&0, &(0, String::new()), Durability::Synced).unwrap();
    assert_eq!(s.iter_all::<Items>(Direction::Forward).unwrap().count(), keys.len());
}

/// Prefix scans over composite keys, including prefixes at the 0xff edge.
pub fn prefix_iteration<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    for a in [0u16, 1, 2, 0x00ff, 0xff00, 0xffff] {
        for c in [0u16, 5, 0xffff] {
            b.put::<Pairs>(&(a, c), &Blob(vec![a as u8, c as u8])).unwrap();
        }
    }
    s.write(b, Durability::Synced).unwrap();
    for a in [0u16, 1, 3, 0x00ff, 0xff00, 0xffff] {
        let fwd: Vec<(u16, u16)> =
            s.iter_prefix::<Pairs, _>(&a, Direction::Forward).unwrap().keys().map(|k| k.unwrap()).collect();
        let want: Vec<(u16, u16)> = if a == 3 { vec![] } else { vec![(a, 0), (a, 5), (a, 0xffff)] };
        assert_eq!(fwd, want, "prefix {a:#x}");
        let mut rev: Vec<(u16, u16)> =
            s.iter_prefix::<Pairs, _>(&a, Direction::Reverse).unwrap().keys().map(|k| k.unwrap()).collect();
        rev.reverse();
        assert_eq!(rev, want, "reverse prefix {a:#x}");
    }
}

/// Stored bytes that do not decode give a `Decode` error naming the table, never a panic.
pub fn corrupt_values_name_the_table<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let mut b = s.batch();
    b.raw_mut().put_raw("records", &1u64.to_be_bytes(), &[1, 0xff, 0xff]).unwrap(); // truncated postcard
    b.raw_mut().put_raw("records", &2u64.to_be_bytes(), &[42, 0]).unwrap(); // unknown version
    b.raw_mut().put_raw("records", &3u64.to_be_bytes(), &[]).unwrap(); // no version byte
    b.raw_mut().put_raw("items", &[1, 2], b"\x01x").unwrap(); // key of the wrong width
    s.write_raw(b.into_raw(), Durability::Synced).unwrap();
    for k in 1..=3u64 {
        let err = s.get::<Records>(&k).unwrap_err();
        assert!(
            matches!(err, ReadError::Decode { table: "records", .. }) && err.to_string().contains("`records`"),
            "key {k}: {err}"
        );
    }
    let err = s.get::<Records>(&2).unwrap_err().to_string();
    assert!(err.contains("version 42"), "{err}");
    let results: Vec<_> = s.iter_all::<Records>(Direction::Forward).unwrap().collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|r| r.is_err()));
    let err = s.iter_all::<Items>(Direction::Forward).unwrap().next().unwrap().unwrap_err();
    assert!(matches!(err, ReadError::Decode { table: "items", part: crate::error::Part::Key, .. }), "{err}");
    // The multi-get reports the failure rather than dropping the entry.
    assert!(s.multi_get::<Records>(&[1, 4]).is_err());
}

/// Raw access to tables outside the schema fails clearly.
pub fn unknown_tables_are_errors<H: Harness>() {
    let dir = tempdir();
    let s = open_suite::<H>(dir.path());
    let err = s.get::<Extra>(&1).unwrap_err();
    assert!(matches!(err, ReadError::UnknownTable(ref t) if t == "extra"), "{err}");
    assert!(s.iter_all::<Extra>(Direction::Forward).is_err());
    assert!(s.get_raw_with("nope", b"k", |_| ()).is_err());
}

/// Buffered and synced writes are both visible at once; a synced write after buffered ones
/// makes all of them durable.
pub fn durability_modes<H: Harness>() {
    let dir = tempdir();
    {
        let s = open_suite::<H>(dir.path());
        for i in 0..100u32 {
            s.put::<Items>(&i, &Blob(vec![1]), Durability::Buffered).unwrap();
            assert!(s.contains::<Items>(&i).unwrap());
        }
        s.put::<Items>(&100, &Blob(vec![2]), Durability::Synced).unwrap();
    }
    if H::PERSISTENT {
        let s = open_suite::<H>(dir.path());
        assert_eq!(s.iter_all::<Items>(Direction::Forward).unwrap().count(), 101);
    }
}

/// Data survives closing and reopening (persistent backends).
pub fn reopen_keeps_data<H: Harness>() {
    if !H::PERSISTENT {
        eprintln!("skipped: backend does not persist");
        return;
    }
    let dir = tempdir();
    {
        let s = open_suite::<H>(dir.path());
        fill_items(&s, 300);
        s.put::<Records>(&1, &(1, "x".into()), Durability::Synced).unwrap();
    }
    for _ in 0..2 {
        let s = open_suite::<H>(dir.path());
        assert_eq!(item_keys(&s, Direction::Forward), (0..300).collect::<Vec<_>>());
        assert_eq!(s.get::<Records>(&1).unwrap(), Some((1, "x".into())));
    }
}

fn persistent_only<H: Harness>() -> bool {
    if !H::PERSISTENT {
        eprintln!("skipped: backend does not persist, so there is no stored schema to check");
    }
    H::PERSISTENT
}

/// A database written by a newer schema version is refused, and stays as it was.
pub fn newer_schema_is_refused_untouched<H: Harness>() {
    if !persistent_only::<H>() {
        return;
    }
    let dir = tempdir();
    {
        let s = H::open(dir.path(), suite_schema(2), VersionPolicy::Exact).unwrap();
        fill_items(&s, 10);
    }
    let before = super::caps::dir_fingerprint(dir.path());
    let err = H::open(dir.path(), suite_schema(1), VersionPolicy::Exact).err().expect("newer schema must fail");
    assert!(matches!(err, OpenError::NewerSchema { found: 2, supported: 1, .. }), "{err}");
    assert!(err.to_string().contains("newer"), "{err}");
    let err = H::open(dir.path(), suite_schema(1), VersionPolicy::AllowOlder).err().expect("still newer");
    assert!(matches!(err, OpenError::NewerSchema { .. }), "{err}");
    assert_eq!(before, super::caps::dir_fingerprint(dir.path()), "a refused open changed files on disk");
    let s = H::open(dir.path(), suite_schema(2), VersionPolicy::Exact).unwrap();
    assert_eq!(item_keys(&s, Direction::Forward).len(), 10);
}

/// A database holding tables the schema does not know is refused, and stays as it was.
pub fn unknown_tables_on_disk_are_refused<H: Harness>() {
    if !persistent_only::<H>() {
        return;
    }
    let dir = tempdir();
    {
        let s = H::open(dir.path(), extended_schema(1), VersionPolicy::Exact).unwrap();
        s.put::<Extra>(&1, &blob("e"), Durability::Synced).unwrap();
    }
    let before = super::caps::dir_fingerprint(dir.path());
    let err = H::open(dir.path(), suite_schema(1), VersionPolicy::Exact).err().expect("unknown table must fail");
    match &err {
        OpenError::UnknownTables { tables, .. } => assert_eq!(tables, &vec!["extra".to_string()]),
        e => panic!("unexpected error: {e}"),
    }
    assert!(err.to_string().contains("extra"), "{err}");
    assert_eq!(before, super::caps::dir_fingerprint(dir.path()), "a refused open changed files on disk");
    // A schema that adds a table to an existing database is fine: the table is created.
    {
        let s = H::open(dir.path(), extended_schema(1), VersionPolicy::Exact).unwrap();
        assert_eq!(s.get::<Extra>(&1).unwrap(), Some(blob("e")));
    }
}

/// An older database is refused in normal operation and accepted by migration tools.
pub fn older_schema_needs_migration<H: Harness>() {
    if !persistent_only::<H>() {
        return;
    }
    let dir = tempdir();
    {
        let s = H::open(dir.path(), suite_schema(1), VersionPolicy::Exact).unwrap();
        fill_items(&s, 3);
    }
    let err = H::open(dir.path(), suite_schema(2), VersionPolicy::Exact).err().expect("older must fail");
    assert!(matches!(err, OpenError::OlderSchema { found: 1, expected: 2, .. }), "{err}");
    assert!(err.to_string().contains("nodestore migrate"), "{err}");
    let s = H::open(dir.path(), suite_schema(2), VersionPolicy::AllowOlder).unwrap();
    assert_eq!(crate::store::KvReader::stored_schema_version(&s), 1);
    assert_eq!(item_keys(&s, Direction::Forward).len(), 3);
}
