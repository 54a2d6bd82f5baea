//! Backups to a local directory: round trips, reuse of unchanged files, interrupted backups,
//! point-in-time selection, retention and garbage collection, logical dumps.

mod support;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use storage_api::mem::MemStore;
use storage_api::{Blob, Durability, KvSnapshots, KvWrite, ReadExt, Schema, table};
use storage_backup::{
    BackupConfig, BackupError, BackupKind, Backups, Compression, IntegrityError, Location, Manifest, RetentionPolicy,
    Selector, StoreRecord, TableDigest, select_kept,
};
use support::*;

fn local(dir: &std::path::Path) -> BackupConfig {
    BackupConfig { gc_grace_secs: 0, ..BackupConfig::local(dir) }
}

#[test]
fn physical_round_trip_reproduces_every_file() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let (src, dest, scratch, staging) =
        (work.path().join("ckpt"), work.path().join("dest"), work.path().join("scratch"), work.path().join("staging"));
    fake_checkpoint(&src, 1, 3, 3 << 20);
    // One large mutable file goes to the shared objects too.
    std::fs::write(src.join("chain/000009.log"), vec![7u8; 5 << 20]).unwrap();
    for compression in [Compression::Zstd, Compression::Gzip, Compression::None] {
        let backups =
            Backups::open(&BackupConfig { compression, ..local(&dest.join(compression.extension())) }).unwrap();
        let m = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
        assert_eq!(m.kind, BackupKind::Physical);
        assert_eq!(m.totals.files, 8);
        assert_eq!(m.stores[0].head, Some(42));
        let objects = m.files.iter().filter(|f| matches!(f.location, Location::Object { .. })).count();
        assert_eq!(objects, 4, "three SSTs and the large log are shared objects");
        rt.block_on(backups.verify(&m, &scratch, quiet())).unwrap();
        let out = staging.join(compression.extension());
        std::fs::create_dir_all(&out).unwrap();
        let progress = Arc::new(Count::default());
        rt.block_on(backups.extract(&m, &scratch, &out, progress.clone())).unwrap();
        assert_eq!(tree(&src), tree(&out), "{compression:?} restore differs");
        assert_eq!(progress.0.load(Ordering::Relaxed), m.totals.raw_bytes);
    }
}

#[test]
fn unchanged_files_are_referenced_not_uploaded() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let (src, dest) = (work.path().join("ckpt"), work.path().join("dest"));
    fake_checkpoint(&src, 2, 4, 1 << 20);
    let backups = Backups::open(&local(&dest)).unwrap();
    let first = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    assert_eq!(first.totals.reused_files, 0);
    // A new SST appears; the old ones are unchanged.
    std::fs::write(src.join("chain/000099.sst"), vec![3u8; 100_000]).unwrap();
    let progress = Arc::new(Count::default());
    let second = rt.block_on(backups.create_physical(&src, vec![chain_record()], progress.clone())).unwrap();
    assert_eq!(second.totals.reused_files, 4);
    // Only the new SST and the small files were read: the old SSTs were known by name and size.
    // The new SST is hashed, then compressed (100 kB twice), plus the small files; the old
    // 4 MiB of SSTs are not read at all.
    assert!(progress.0.load(Ordering::Relaxed) < 250_000, "read {} bytes", progress.0.load(Ordering::Relaxed));
    let shared = |m: &Manifest, path: &str| m.files.iter().find(|f| f.path == path).unwrap().location.clone();
    assert_eq!(shared(&first, "chain/000010.sst"), shared(&second, "chain/000010.sst"));
    assert!(second.totals.uploaded_bytes < first.totals.uploaded_bytes / 4);
    assert_eq!(rt.block_on(backups.complete()).unwrap().len(), 2);
    let scratch = work.path().join("scratch");
    rt.block_on(backups.verify(&second, &scratch, quiet())).unwrap();
}

#[test]
fn interrupted_backup_is_never_listed_and_is_cleaned_up() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let (src, dest) = (work.path().join("ckpt"), work.path().join("dest"));
    fake_checkpoint(&src, 3, 2, 100_000);
    let backups = Backups::open(&local(&dest)).unwrap();
    let m = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    // Simulate a crash before the marker: remove it.
    std::fs::remove_file(dest.join(format!("backups/{}/COMPLETE", m.id))).unwrap();
    let listed = rt.block_on(backups.list()).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(!listed[0].is_complete());
    assert!(matches!(rt.block_on(backups.select(&Selector::Latest)), Err(BackupError::NoSuchBackup(_))));
    assert!(matches!(rt.block_on(backups.load_manifest(&m.id)), Err(BackupError::NoSuchBackup(_))));
    // The next run cleans it up and reuses the objects it had uploaded.
    let next = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    let listed = rt.block_on(backups.list()).unwrap();
    assert_eq!(listed.iter().map(|b| b.id.clone()).collect::<Vec<_>>(), vec![next.id.clone()]);
    assert!(!dest.join(format!("backups/{}", m.id)).join("manifest.json").exists());
}

#[test]
fn tampered_manifest_or_marker_is_refused() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let (src, dest) = (work.path().join("ckpt"), work.path().join("dest"));
    fake_checkpoint(&src, 4, 1, 10_000);
    let backups = Backups::open(&local(&dest)).unwrap();
    let m = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    let path = dest.join(format!("backups/{}/manifest.json", m.id));
    let text = std::fs::read_to_string(&path).unwrap().replace("\"head\": 42", "\"head\": 43");
    std::fs::write(&path, text).unwrap();
    let err = rt.block_on(backups.load_manifest(&m.id)).unwrap_err();
    assert!(matches!(err, BackupError::Integrity(IntegrityError::Manifest { .. })), "{err}");
    assert!(err.to_string().contains("does not match the completion marker"), "{err}");
}

#[test]
fn point_in_time_picks_the_latest_at_or_before() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let (src, dest) = (work.path().join("ckpt"), work.path().join("dest"));
    fake_checkpoint(&src, 5, 1, 1000);
    let backups = Backups::open(&local(&dest)).unwrap();
    let a = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let b = rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap();
    assert_eq!(rt.block_on(backups.select(&Selector::Latest)).unwrap().id, b.id);
    assert_eq!(rt.block_on(backups.select(&Selector::AtOrBefore(b.created_at_ms - 1))).unwrap().id, a.id);
    assert_eq!(rt.block_on(backups.select(&Selector::AtOrBefore(b.created_at_ms))).unwrap().id, b.id);
    assert!(rt.block_on(backups.select(&Selector::AtOrBefore(a.created_at_ms - 1))).is_err());
    assert_eq!(rt.block_on(backups.select(&Selector::Id(a.id.clone()))).unwrap().id, a.id);
    assert!(rt.block_on(backups.select(&Selector::Id("../etc".into()))).is_err());
}

fn at(id: &str, ms: u64) -> Manifest {
    Manifest {
        format: 1,
        id: id.into(),
        created_at_ms: ms,
        created_at: String::new(),
        kind: BackupKind::Physical,
        stores: vec![],
        files: vec![],
        archive: None,
        totals: Default::default(),
    }
}

#[test]
fn retention_keeps_last_daily_and_weekly() {
    const H: u64 = 3_600_000;
    const D: u64 = 24 * H;
    // Day 20 000 after the epoch (a Thursday, day 0) is a Friday; noon UTC.
    let now = 20_000 * D + 12 * H;
    // Four backups a day (12:00, 10:00, 08:00, 06:00) for the last 60 days: b(4d) is the newest
    // of the day d days ago.
    let backups: Vec<Manifest> =
        (0..240u64).map(|i| at(&format!("b{i:03}"), now - (i / 4) * D - (i % 4) * 2 * H)).collect();
    let policy = RetentionPolicy { keep_last: 3, keep_daily: 5, keep_weekly: 3 };
    let kept = select_kept(&backups, &policy, now);
    // Last 3; newest of days 0..4; newest of this (Monday-based) week (today), of last week
    // (its Sunday, 5 days ago) and of the week before (12 days ago).
    let expect: std::collections::BTreeSet<String> =
        ["b000", "b001", "b002", "b004", "b008", "b012", "b016", "b020", "b048"]
            .into_iter()
            .map(String::from)
            .collect();
    assert_eq!(kept, expect);
    assert!(select_kept(&[], &policy, now).is_empty());
    let none = RetentionPolicy { keep_last: 0, keep_daily: 0, keep_weekly: 0 };
    assert!(select_kept(&backups, &none, now).is_empty());
}

#[test]
fn prune_deletes_unkept_backups_and_unreferenced_objects_only() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let (src, dest) = (work.path().join("ckpt"), work.path().join("dest"));
    let config =
        BackupConfig { retention: RetentionPolicy { keep_last: 2, keep_daily: 0, keep_weekly: 0 }, ..local(&dest) };
    let backups = Backups::open(&config).unwrap();
    let mut made = Vec::new();
    for seed in 0..4u8 {
        // Each round replaces one SST and keeps the others, so objects are shared.
        std::fs::remove_dir_all(&src).ok();
        fake_checkpoint(&src, 6, 2, 50_000);
        std::fs::write(src.join("chain/000500.sst"), vec![seed; 60_000]).unwrap();
        made.push(rt.block_on(backups.create_physical(&src, vec![chain_record()], quiet())).unwrap());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let dry = rt.block_on(backups.prune(true)).unwrap();
    assert_eq!(dry.deleted, vec![made[0].id.clone(), made[1].id.clone()]);
    assert_eq!(dry.objects.len(), 2, "the two replaced SSTs: {dry:?} {:?}", tree(&dest).keys().collect::<Vec<_>>());
    assert_eq!(rt.block_on(backups.complete()).unwrap().len(), 4, "dry run deletes nothing");
    let report = rt.block_on(backups.prune(false)).unwrap();
    assert_eq!(report.deleted, dry.deleted);
    assert_eq!(report.objects, dry.objects);
    let left = rt.block_on(backups.complete()).unwrap();
    assert_eq!(left.iter().map(|m| m.id.clone()).collect::<Vec<_>>(), vec![made[2].id.clone(), made[3].id.clone()]);
    // Every kept backup still verifies: no referenced object was collected.
    for m in &left {
        rt.block_on(backups.verify(m, &work.path().join("scratch"), quiet())).unwrap();
    }
}

table! {
    /// Test table.
    pub struct Alpha("alpha"): u64 => Blob;
    /// Test table.
    pub struct Beta("beta"): [u8; 4] => u64;
}

fn schema() -> Schema {
    Schema::new("test", 1).with::<Alpha>().with::<Beta>()
}

#[test]
fn logical_round_trip_reproduces_every_table() {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let source = Arc::new(MemStore::new(schema()));
    let mut batch = source.batch();
    for i in 0..20_000u64 {
        batch.put::<Alpha>(&i, &Blob(vec![(i % 256) as u8; (i % 300) as usize])).unwrap();
        batch.put::<Beta>(&(i as u32).to_be_bytes(), &(i * 3)).unwrap();
    }
    source.write(batch, Durability::Synced).unwrap();
    let backups = Backups::open(&local(&work.path().join("dest"))).unwrap();
    let from = source.clone();
    let m = rt
        .block_on(backups.create_logical(
            move |w| {
                let snapshot = from.snapshot();
                let record = StoreRecord { tables: vec![], ..support::chain_record() };
                w.dump_store(record, &snapshot, &["alpha", "beta"])
            },
            quiet(),
        ))
        .unwrap();
    assert_eq!(m.kind, BackupKind::Logical);
    assert_eq!(m.stores[0].tables.iter().map(|t| t.keys).collect::<Vec<_>>(), vec![20_000, 20_000]);
    rt.block_on(backups.verify(&m, &work.path().join("scratch"), quiet())).unwrap();
    // Loaded in write batches and through bulk ingestion: the same tables.
    let loaders: [storage_backup::ChunkLoader<MemStore>; 2] =
        [storage_backup::load_chunk_in_batches, storage_backup::load_chunk_ingested];
    for load in loaders {
        let target = Arc::new(MemStore::new(schema()));
        rt.block_on(backups.load_logical(
            &m,
            &work.path().join("scratch"),
            vec![("chain".into(), target.clone())],
            load,
            quiet(),
        ))
        .unwrap();
        for table in ["alpha", "beta"] {
            assert_eq!(
                TableDigest::of_table(&*source, table).unwrap(),
                TableDigest::of_table(&*target, table).unwrap()
            );
        }
        assert_eq!(target.get::<Beta>(&7u32.to_be_bytes()).unwrap(), Some(21));
        // A target that already holds different data fails the digest check, naming the table.
        let dirty = Arc::new(MemStore::new(schema()));
        dirty.put::<Alpha>(&999_999, &Blob(vec![1]), Durability::Synced).unwrap();
        let err = rt
            .block_on(backups.load_logical(
                &m,
                &work.path().join("scratch"),
                vec![("chain".into(), dirty)],
                load,
                quiet(),
            ))
            .unwrap_err();
        assert!(err.to_string().contains("table alpha: key count differs"), "{err}");
    }
}

#[test]
fn restoring_twice_from_one_backup_keeps_both_previous_copies() {
    let work = tempfile::tempdir().unwrap();
    let target = work.path().join("data");
    for round in 0..2u8 {
        let staging = work.path().join(format!("staging-{round}"));
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("f"), [round]).unwrap();
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("f"), [100 + round]).unwrap();
        let r = storage_backup::swap_in(&staging, &target, "same-id").unwrap();
        let kept = r.previous.unwrap();
        assert_eq!(std::fs::read(kept.join("f")).unwrap(), vec![100 + round]);
        assert_eq!(std::fs::read(target.join("f")).unwrap(), vec![round]);
        assert!(!staging.exists());
    }
}
