//! Backups of a live node and restores, on real engines: every table comes back byte for byte
//! (compared by per-table key count and ordered BLAKE3 digest), physical and logical, local
//! and S3 (s3s-fs on loopback), across engines for logical backups; refusals leave the live
//! data untouched.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use dag_store::generator::DagGenerator;
use node_storage::{Backend, BackendKind, Config, RedbStore, RocksStore, SledStore, StorageHandle, StoreId, restore};
use storage_backup::testkit::S3Server;
use storage_backup::{BackupConfig, BackupKind, Backups, Selector, TableDigest};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn config(data: &Path, backend: BackendKind, backup: BackupConfig) -> Config {
    let mut c = Config { data_dir: data.to_owned(), backend, backup, ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 1 << 20; // small memtables: real SSTs from little data
    c.metrics.enabled = false;
    c
}

/// Adds a new chain of `blocks` blocks (if `blocks` > 0; the node must have no chain yet) and
/// `vertices` vertices from generator `seed`.
async fn populate<B: Backend>(h: &StorageHandle<B, Synthetic>, seed: u64, blocks: usize, vertices: usize) {
    if blocks > 0 {
        let mut g = ChainGenerator::new(GenConfig { txs_per_block: 10, ..GenConfig::default() });
        h.init_chain(g.next_blocks().remove(0)).await.unwrap();
        let mut batch = Vec::new();
        for _ in 0..blocks {
            batch.extend(g.next_blocks());
        }
        for r in h.insert_blocks(batch).await {
            r.unwrap();
        }
    }
    let mut dg = DagGenerator::new(seed);
    for r in h.insert_vertices(dg.generate(vertices)).await {
        r.unwrap();
    }
}

/// (store, table) → (keys, digest) of every table, read with the node closed.
fn digests<B: Backend>(config: &Config) -> BTreeMap<(String, String), (u64, String)> {
    let mut out = BTreeMap::new();
    for id in StoreId::ALL {
        let store = B::open_store(config, id, id.schema::<Synthetic>()).unwrap();
        for t in store.schema().tables() {
            out.insert((id.to_string(), t.name.to_owned()), TableDigest::of_table(&store, t.name).unwrap());
        }
    }
    out
}

/// Populates a node, backs it up, adds more, then restores: the data equals the backup's.
fn round_trip<B: Backend>(kind: BackupKind, backup: BackupConfig) {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let c = config(&data, B::KIND, backup.clone());
    let report = rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        populate(&h, 1, 300, 3_000).await;
        let r = h.backup(kind, Arc::new(())).await.unwrap();
        h.shutdown().await;
        r
    });
    assert_eq!(report.manifest.kind, kind);
    assert!(report.manifest.stores[0].head.is_some());
    let at_backup = digests::<B>(&c);
    assert!(at_backup.values().any(|(n, _)| *n > 1000), "the node holds data");
    rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        populate(&h, 2, 0, 500).await;
        h.shutdown().await;
    });
    assert_ne!(digests::<B>(&c), at_backup);
    let restored =
        rt.block_on(restore::<B, Synthetic, ()>(&c, &Selector::Id(report.manifest.id.clone()), false, Arc::new(())));
    let restored = restored.unwrap();
    assert_eq!(digests::<B>(&c), at_backup, "{kind} restore is not byte for byte");
    // The previous data is kept aside, untouched.
    let previous = restored.previous.expect("the old data is kept");
    assert!(previous.exists());
    let mut old = c.clone();
    old.data_dir = previous;
    assert_ne!(digests::<B>(&old), at_backup);
}

#[test]
fn physical_round_trip_rocksdb_local() {
    let dest = tempfile::tempdir().unwrap();
    round_trip::<RocksStore>(BackupKind::Physical, BackupConfig::local(dest.path()));
}

#[test]
fn logical_round_trip_rocksdb_local() {
    let dest = tempfile::tempdir().unwrap();
    round_trip::<RocksStore>(BackupKind::Logical, BackupConfig::local(dest.path()));
}

#[test]
fn physical_and_logical_round_trips_redb() {
    let dest = tempfile::tempdir().unwrap();
    round_trip::<RedbStore>(BackupKind::Physical, BackupConfig::local(dest.path()));
    round_trip::<RedbStore>(BackupKind::Logical, BackupConfig::local(dest.path()));
}

/// sled has no snapshots: its running node refuses a logical backup (it would stop every
/// write for the dump's length), and the stopped node is backed up and restored byte for byte.
#[test]
fn logical_round_trip_sled_with_the_node_stopped() {
    let dest = tempfile::tempdir().unwrap();
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("data"), BackendKind::Sled, BackupConfig::local(dest.path()));
    rt.block_on(async {
        let h = StorageHandle::<SledStore, Synthetic>::open(c.clone()).unwrap();
        populate(&h, 1, 300, 3_000).await;
        let err = h.backup(BackupKind::Logical, Arc::new(())).await.unwrap_err();
        assert!(matches!(err, node_storage::StorageError::NoSnapshots { .. }), "{err}");
        h.shutdown().await;
    });
    let report = rt
        .block_on(node_storage::backup_stopped::<SledStore, Synthetic, ()>(&c, BackupKind::Logical, Arc::new(())))
        .unwrap();
    assert_eq!(report.manifest.stores[0].head, Some(300), "the marks are recorded");
    let at_backup = digests::<SledStore>(&c);
    rt.block_on(async {
        let h = StorageHandle::<SledStore, Synthetic>::open(c.clone()).unwrap();
        populate(&h, 2, 0, 500).await;
        h.shutdown().await;
    });
    assert_ne!(digests::<SledStore>(&c), at_backup);
    rt.block_on(restore::<SledStore, Synthetic, ()>(
        &c,
        &Selector::Id(report.manifest.id.clone()),
        false,
        Arc::new(()),
    ))
    .unwrap();
    assert_eq!(digests::<SledStore>(&c), at_backup, "restored byte for byte");
}

#[test]
fn physical_and_logical_round_trips_rocksdb_s3() {
    let server = S3Server::start();
    round_trip::<RocksStore>(BackupKind::Physical, server.config("physical"));
    round_trip::<RocksStore>(BackupKind::Logical, server.config("logical"));
}

#[test]
fn unchanged_database_backs_up_by_reference() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("data"), BackendKind::Rocksdb, BackupConfig::local(dir.path().join("dest")));
    rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(c.clone()).unwrap();
        populate(&h, 3, 300, 3_000).await;
        h.compact().await.unwrap();
        let first = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap();
        let second = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap();
        let ssts = first.manifest.files.iter().filter(|f| f.path.ends_with(".sst")).count() as u64;
        assert!(ssts >= 3, "{ssts} SSTs");
        assert!(second.manifest.totals.reused_files >= ssts, "{:?}", second.manifest.totals);
        assert!(second.manifest.totals.uploaded_bytes < first.manifest.totals.uploaded_bytes / 2);
        h.shutdown().await;
    });
}

#[test]
fn logical_backup_moves_data_between_engines() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let dest = BackupConfig::local(dir.path().join("dest"));
    let rocks = config(&dir.path().join("rocks"), BackendKind::Rocksdb, dest.clone());
    let id = rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(rocks.clone()).unwrap();
        populate(&h, 4, 200, 2_000).await;
        let r = h.backup(BackupKind::Logical, Arc::new(())).await.unwrap();
        h.shutdown().await;
        r.manifest.id
    });
    let source = digests::<RocksStore>(&rocks);
    for (kind, path) in [(BackendKind::Redb, "redb"), (BackendKind::Sled, "sled")] {
        let target = config(&dir.path().join(path), kind, dest.clone());
        let selector = Selector::Id(id.clone());
        match kind {
            BackendKind::Redb => {
                rt.block_on(restore::<RedbStore, Synthetic, ()>(&target, &selector, false, Arc::new(()))).unwrap();
                assert_eq!(digests::<RedbStore>(&target), source);
            }
            _ => {
                rt.block_on(restore::<SledStore, Synthetic, ()>(&target, &selector, false, Arc::new(()))).unwrap();
                assert_eq!(digests::<SledStore>(&target), source);
            }
        }
    }
    // A physical RocksDB backup cannot go into redb: a clear error, nothing changed.
    let physical = rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(rocks.clone()).unwrap();
        let r = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap();
        h.shutdown().await;
        r.manifest.id
    });
    let target = config(&dir.path().join("redb"), BackendKind::Redb, dest);
    let before = digests::<RedbStore>(&target);
    let err = rt
        .block_on(restore::<RedbStore, Synthetic, ()>(&target, &Selector::Id(physical), false, Arc::new(())))
        .unwrap_err();
    assert!(
        err.to_string().contains("physical rocksdb backup") && err.to_string().contains("--backend rocksdb"),
        "{err}"
    );
    assert_eq!(digests::<RedbStore>(&target), before);
}

#[test]
fn failed_or_dry_run_restores_leave_the_live_data_untouched() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("dest");
    let c = config(&dir.path().join("data"), BackendKind::Rocksdb, BackupConfig::local(&dest));
    let id = rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(c.clone()).unwrap();
        populate(&h, 5, 100, 1_000).await;
        h.compact().await.unwrap(); // SSTs, so the backup has shared objects to corrupt
        let r = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap();
        populate(&h, 6, 0, 100).await;
        h.shutdown().await;
        r.manifest.id
    });
    let live = digests::<RocksStore>(&c);
    let entries = || std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>().len();
    let before = entries();
    // Not a byte of the live directory may change (logical digests alone would not show a
    // store that was opened and closed again: a new MANIFEST, OPTIONS and log).
    let files = || storage_api::testkit::caps::dir_fingerprint(&c.data_dir);
    let untouched = files();
    // Dry run: downloads and verifies, changes nothing.
    let dry = rt.block_on(restore::<RocksStore, Synthetic, ()>(&c, &Selector::Latest, true, Arc::new(()))).unwrap();
    assert!(dry.dry_run && dry.previous.is_none());
    assert_eq!(files(), untouched, "a dry run changed live files");
    assert_eq!(digests::<RocksStore>(&c), live);
    assert_eq!(entries(), before, "no staging left behind");
    // While the node runs, restore refuses.
    let h = rt.block_on(async { StorageHandle::<RocksStore, Synthetic>::open(c.clone()).unwrap() });
    let running = files();
    let err =
        rt.block_on(restore::<RocksStore, Synthetic, ()>(&c, &Selector::Latest, false, Arc::new(()))).unwrap_err();
    assert!(matches!(err, node_storage::StorageError::InUse { .. }), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    assert_eq!(files(), running, "a refused restore changed live files");
    rt.block_on(h.shutdown());
    drop(h);
    // A corrupted object: verification fails, the live data is untouched, no staging remains.
    let manifest = rt.block_on(Backups::open(&c.backup).unwrap().load_manifest(&id)).unwrap();
    let object = manifest
        .files
        .iter()
        .find_map(|f| match &f.location {
            storage_backup::Location::Object { key, .. } => Some(key.clone()),
            _ => None,
        })
        .unwrap();
    let mut bytes = std::fs::read(dest.join(&object)).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(dest.join(&object), bytes).unwrap();
    let untouched = files();
    let err =
        rt.block_on(restore::<RocksStore, Synthetic, ()>(&c, &Selector::Id(id), false, Arc::new(()))).unwrap_err();
    assert!(err.to_string().contains("BLAKE3"), "{err}");
    assert_eq!(files(), untouched, "a rejected restore changed live files");
    assert_eq!(digests::<RocksStore>(&c), live);
    assert_eq!(entries(), before, "no staging left behind");
}

#[test]
fn sled_cannot_take_physical_backups() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let c = config(&dir.path().join("data"), BackendKind::Sled, BackupConfig::local(dir.path().join("dest")));
    rt.block_on(async {
        let h = StorageHandle::<SledStore, Synthetic>::open(c).unwrap();
        let err = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap_err();
        assert!(err.to_string().contains("use a logical backup"), "{err}");
        h.shutdown().await;
    });
}

#[test]
fn scheduled_backups_run_and_show_in_metrics() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let mut backup = BackupConfig::local(dir.path().join("dest"));
    backup.schedule_interval_secs = 1;
    backup.retention.keep_last = 2;
    backup.retention.keep_daily = 0;
    backup.retention.keep_weekly = 0;
    let c = config(&dir.path().join("data"), BackendKind::Rocksdb, backup.clone());
    rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(c).unwrap();
        populate(&h, 7, 50, 500).await;
        let task = h.spawn_backup_schedule().expect("scheduled");
        let backups = Backups::open(&backup).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while backups.complete().await.unwrap().len() < 2 {
            assert!(std::time::Instant::now() < deadline, "two scheduled backups in time");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
        assert!(backups.complete().await.unwrap().len() <= 3, "retention prunes after each backup");
        let m = h.metrics().render_json();
        let runs = m["node_storage_maintenance_seconds"]["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["labels"]["task"] == "backup")
            .map(|s| s["count"].as_f64().unwrap())
            .sum::<f64>();
        assert!(runs >= 2.0, "{m}");
        assert!(m["node_storage_backup_uploaded_bytes_total"].to_string().contains("physical"), "{m}");
        h.shutdown().await;
        task.await.unwrap();
    });
}

/// The largest file under `dir`.
fn largest_file(dir: &Path) -> std::path::PathBuf {
    let mut best: Option<(u64, std::path::PathBuf)> = None;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let len = p.metadata().unwrap().len();
                if best.as_ref().is_none_or(|(l, _)| len > *l) {
                    best = Some((len, p));
                }
            }
        }
    }
    best.unwrap().1
}

#[test]
fn a_damaged_node_falls_back_to_its_latest_backup_that_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dest = BackupConfig { destination: dir.path().join("backups").display().to_string(), ..Default::default() };
    let cfg = config(&data, BackendKind::Rocksdb, dest);
    let rt = rt();
    let (older, newer) = rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        let mut g = ChainGenerator::new(GenConfig { txs_per_block: 5, fork_probability: 0.0, ..GenConfig::default() });
        let genesis = g.child(None);
        h.init_chain(genesis.clone()).await.unwrap();
        let mut last = genesis;
        let mut grow = async |n: usize| {
            for _ in 0..n {
                let b = g.child(Some(&last.block.header));
                h.insert_block(b.clone()).await.unwrap();
                last = b;
            }
        };
        grow(30).await;
        let older = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap().manifest.id;
        grow(20).await;
        let newer = h.backup(BackupKind::Logical, Arc::new(())).await.unwrap().manifest.id;
        grow(10).await;
        h.shutdown().await;
        (older, newer)
    });
    // The newest backup is tampered with; the DAG store's MANIFEST is destroyed.
    let tampered = largest_file(&dir.path().join("backups").join("backups").join(&newer));
    let mut bytes = std::fs::read(&tampered).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&tampered, bytes).unwrap();
    let dag_dir = RocksStore::store_path(&data, StoreId::Dag);
    let manifest = std::fs::read_dir(&dag_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("MANIFEST-"))
        .unwrap();
    std::fs::write(&manifest, b"not a manifest").unwrap();
    assert!(StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).is_err(), "the damaged node does not open");

    rt.block_on(async {
        let dry = node_storage::recover_from_backup::<RocksStore, Synthetic, ()>(&cfg, None, true, false, Arc::new(()))
            .await
            .unwrap();
        assert!(dry.dry_run && dry.damaged_kept_at.is_none());
        assert_eq!(dry.backup, older, "the tampered newer backup is passed over");
        assert_eq!(dry.skipped.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), vec![newer.clone()]);
        let damaged: Vec<_> = dry.stores.iter().filter(|s| s.damage.is_some()).map(|s| s.store).collect();
        assert_eq!(damaged, vec![StoreId::Dag], "{:?}", dry.stores);
        assert_eq!(dry.uncovered.chain_blocks(), Some((31, 60)), "{:?}", dry.uncovered);
        assert_eq!(std::fs::read(&manifest).unwrap(), b"not a manifest", "a dry run changes nothing");

        let done =
            node_storage::recover_from_backup::<RocksStore, Synthetic, ()>(&cfg, None, false, false, Arc::new(()))
                .await
                .unwrap();
        let kept = done.damaged_kept_at.expect("the damaged data is kept");
        let kept_manifest = RocksStore::store_path(&kept, StoreId::Dag).join(manifest.file_name().unwrap());
        assert_eq!(std::fs::read(kept_manifest).unwrap(), b"not a manifest", "kept as it was");
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        assert_eq!(h.pointers().head.map(|b| b.number), Some(30));
        let (chain, dag) = h.check().await.unwrap();
        assert!(chain.is_ok() && dag.is_ok());
        h.shutdown().await;
        drop(h);
        let sound =
            node_storage::recover_from_backup::<RocksStore, Synthetic, ()>(&cfg, None, true, false, Arc::new(()))
                .await
                .unwrap_err()
                .to_string();
        assert!(sound.contains("nothing to recover"), "{sound}");
    });
}

/// Destroys the DAG store's MANIFEST of the node at `data` (it then refuses to open).
fn damage_dag(data: &Path) {
    let dag_dir = RocksStore::store_path(data, StoreId::Dag);
    let manifest = std::fs::read_dir(&dag_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("MANIFEST-"))
        .unwrap();
    std::fs::write(&manifest, b"not a manifest").unwrap();
}

/// A node of `blocks` blocks at `data`, backed up to `dest` (a physical backup); its id.
fn node_with_backup(rt: &tokio::runtime::Runtime, cfg: &Config, seed: u64, blocks: usize) -> String {
    rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        populate(&h, seed, blocks, 200).await;
        let id = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap().manifest.id;
        h.shutdown().await;
        id
    })
}

/// Two nodes share a destination: a damaged node recovers from its own backup, never the other
/// node's newer one (which is listed as passed over, naming both identities).
#[test]
fn recovery_never_restores_another_nodes_backup() {
    let dir = tempfile::tempdir().unwrap();
    let dest = BackupConfig::local(dir.path().join("backups"));
    let (a, b) = (
        config(&dir.path().join("a"), BackendKind::Rocksdb, dest.clone()),
        config(&dir.path().join("b"), BackendKind::Rocksdb, dest),
    );
    let rt = rt();
    let own = node_with_backup(&rt, &a, 1, 40);
    std::thread::sleep(std::time::Duration::from_millis(5));
    let other = node_with_backup(&rt, &b, 2, 60);
    let (ida, idb) =
        (node_storage::read_node_id(&a.data_dir).unwrap(), node_storage::read_node_id(&b.data_dir).unwrap());
    assert!(ida.is_some() && ida != idb, "each node has its own identity");
    damage_dag(&a.data_dir);
    rt.block_on(async {
        let done = node_storage::recover_from_backup::<RocksStore, Synthetic, ()>(&a, None, false, false, Arc::new(()))
            .await
            .unwrap();
        assert_eq!(done.backup, own);
        assert_eq!(done.skipped.len(), 1, "{:?}", done.skipped);
        assert_eq!(done.skipped[0].0, other);
        assert!(done.skipped[0].1.contains("another node"), "{}", done.skipped[0].1);
        let h = StorageHandle::<RocksStore, Synthetic>::open(a.clone()).unwrap();
        assert_eq!(h.pointers().head.map(|b| b.number), Some(40));
        h.shutdown().await;
    });
    assert_eq!(node_storage::read_node_id(&a.data_dir).unwrap(), ida, "the node keeps its identity");
}

/// A backup that verifies byte for byte but whose data fails the integrity check once restored:
/// the dry run passes it over as the real run does, so both name the same backup.
#[test]
fn a_dry_run_chooses_the_backup_the_real_run_uses() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir.path().join("data"), BackendKind::Rocksdb, BackupConfig::local(dir.path().join("backups")));
    let rt = rt();
    let good = node_with_backup(&rt, &cfg, 1, 30);
    // The chain loses a canonical-index entry (what the check finds), then a newer backup
    // faithfully copies the damage.
    {
        let chain = RocksStore::open_store(&cfg, StoreId::Chain, StoreId::Chain.schema::<Synthetic>()).unwrap();
        let mut batch = storage_api::KvWrite::batch(&chain);
        batch.delete::<chain_store::schema::Canonical<Synthetic>>(&7).unwrap();
        storage_api::KvWrite::write(&chain, batch, storage_api::Durability::Synced).unwrap();
    }
    let bad = rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        let id = h.backup(BackupKind::Physical, Arc::new(())).await.unwrap().manifest.id;
        h.shutdown().await;
        id
    });
    damage_dag(&cfg.data_dir);
    rt.block_on(async {
        let dry = node_storage::recover_from_backup::<RocksStore, Synthetic, ()>(&cfg, None, true, false, Arc::new(()))
            .await
            .unwrap();
        assert_eq!(dry.backup, good, "the dry run passes over the backup that fails its check: {:?}", dry.skipped);
        assert_eq!(dry.skipped.iter().map(|(id, _)| id.clone()).collect::<Vec<_>>(), vec![bad.clone()]);
        let real =
            node_storage::recover_from_backup::<RocksStore, Synthetic, ()>(&cfg, None, false, false, Arc::new(()))
                .await
                .unwrap();
        assert_eq!(real.backup, dry.backup);
    });
}
