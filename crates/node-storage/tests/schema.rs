//! Schema migrations of a whole node: the DAG v1 → v2 step on every engine (round trip, dry
//! run, refusal on open, backup first), and bad input: an unknown source version, a newer
//! database, a corrupt v1 vertex.

use std::path::Path;
use std::sync::Arc;

use chain_store::synthetic::Synthetic;
use dag_store::generator::DagGenerator;
use dag_store::migrate::fixture::downgrade_to_v1;
use dag_store::{StoredVertex, VertexHash, dag_schema};
use node_storage::{
    Backend, BackendKind, Config, MigrateOptions, MigrateProgress, RedbStore, RocksStore, SledStore, StorageError,
    StorageHandle, migrate_node, plan_node,
};
use storage_api::iter::RawCursor;
use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaRecord};
use storage_api::table::META_TABLE;
use storage_api::{Direction, Durability, KvRead, KvReader, KvStore, KvWrite, OpenError, RawBatch, RawRange};
use storage_backup::{BackupKind, TableDigest};
use storage_migrate::MigrateError;

const VERTICES: usize = 1_500;

fn config(dir: &Path, backend: BackendKind) -> Config {
    let mut c = Config { data_dir: dir.join("db"), backend, ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.metrics.enabled = false;
    c.backup.destination = dir.join("backups").display().to_string();
    c
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// A node with a DAG of `VERTICES` vertices, the first 500 finalized; returns them as stored.
fn populate<B: Backend>(c: &Config) -> Vec<StoredVertex> {
    rt().block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        let vertices = DagGenerator::new(11).generate(VERTICES);
        for r in h.insert_vertices(vertices.clone()).await {
            r.unwrap();
        }
        for (seq, (v, _)) in vertices.iter().take(500).enumerate() {
            h.finalize_vertex(v.hash, seq as u64).await.unwrap();
        }
        let mut stored = Vec::new();
        for (v, _) in &vertices {
            stored.push((*h.vertex(v.hash).await.unwrap().unwrap()).clone());
        }
        h.shutdown().await;
        stored
    })
}

/// Per table of the DAG store: key count and digest.
fn digests<S: KvRead + KvStore>(store: &S) -> Vec<(String, u64, String)> {
    let mut out = Vec::new();
    for t in store.schema().tables() {
        let mut digest = TableDigest::default();
        let mut cursor = store.cursor(t.name, RawRange::all(), Direction::Forward).unwrap();
        while let Some(entry) = cursor.next_entry() {
            let (k, v) = entry.unwrap();
            digest.add(k, v);
        }
        let (keys, d) = digest.finish();
        out.push((t.name.to_owned(), keys, d));
    }
    out
}

fn open_dag<B: Backend>(c: &Config) -> B {
    B::open_store_with(c, node_storage::StoreId::Dag, dag_schema(), storage_api::VersionPolicy::AllowOlder).unwrap()
}

fn set_dag_version<B: Backend>(c: &Config, version: u32) {
    let store = open_dag::<B>(c);
    let mut record = SchemaRecord::for_schema(store.schema());
    record.version = version;
    let mut batch = store.raw_batch();
    batch.put_raw(META_TABLE, SCHEMA_RECORD_KEY, &record.encode().unwrap()).unwrap();
    store.write_raw(batch, Durability::Synced).unwrap();
}

fn quiet() -> Arc<MigrateProgress> {
    Arc::new(|_: node_storage::StoreId, _: u32, _: &str, _: u64| {})
}

fn options(dry_run: bool, backup: Option<BackupKind>) -> MigrateOptions {
    MigrateOptions { dry_run, backup, batch_entries: 200 }
}

fn open_error<B: Backend>(c: &Config) -> StorageError {
    match StorageHandle::<B, Synthetic>::open(c.clone()) {
        Ok(_) => panic!("the node must refuse to open"),
        Err(e) => e,
    }
}

fn round_trip<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), B::KIND);
    let stored = populate::<B>(&c);
    let (before, v2_vertex_bytes) = {
        let dag = open_dag::<B>(&c);
        let d = digests(&dag);
        let bytes = value_bytes(&dag);
        assert_eq!(downgrade_to_v1(&dag).unwrap(), VERTICES as u64);
        (d, bytes)
    };
    let v1_vertex_bytes = value_bytes(&open_dag::<B>(&c));

    // The node refuses the older schema and names the command; nothing changed.
    let err = open_error::<B>(&c);
    assert!(
        matches!(
            err,
            StorageError::Open {
                store: node_storage::StoreId::Dag,
                source: OpenError::OlderSchema { found: 1, expected: 2, .. }
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("nodestore migrate"), "{err}");

    let plans = plan_node::<B, Synthetic>(&c).unwrap();
    let dag_plan = &plans.iter().find(|(n, _)| *n == node_storage::StoreId::Dag).unwrap().1;
    assert_eq!((dag_plan.stored, dag_plan.target, dag_plan.steps.len()), (1, 2, 1));
    assert!(plans.iter().filter(|(n, _)| *n != node_storage::StoreId::Dag).all(|(_, p)| p.is_current()));

    // Dry run: every vertex transformed and verified in memory, nothing written.
    let rt = rt();
    let dry = rt.block_on(migrate_node::<B, Synthetic, ()>(&c, options(true, None), quiet(), Arc::new(()))).unwrap();
    let step = &dry.stores.iter().find(|s| s.store == node_storage::StoreId::Dag).unwrap().steps[0];
    assert_eq!((step.scanned, step.changed, step.verified), (VERTICES as u64, VERTICES as u64, VERTICES as u64));
    assert!(dry.backup.is_none());
    assert!(matches!(open_error::<B>(&c), StorageError::Open { source: OpenError::OlderSchema { .. }, .. }));
    assert_eq!(value_bytes(&open_dag::<B>(&c)), v1_vertex_bytes, "a dry run writes nothing");

    // The real run.
    let done = rt.block_on(migrate_node::<B, Synthetic, ()>(&c, options(false, None), quiet(), Arc::new(()))).unwrap();
    let step = &done.stores.iter().find(|s| s.store == node_storage::StoreId::Dag).unwrap().steps[0];
    assert_eq!(
        (step.scanned, step.changed, step.verified, step.resumed_after),
        (VERTICES as u64, VERTICES as u64, VERTICES as u64, 0)
    );
    // Every table as before the downgrade, byte for byte; 32 bytes less per vertex than v1.
    let dag = open_dag::<B>(&c);
    assert_eq!(dag.stored_schema_version(), 2);
    assert_eq!(digests(&dag), before);
    assert_eq!(v1_vertex_bytes - value_bytes(&dag), 32 * VERTICES as u64);
    assert_eq!(value_bytes(&dag), v2_vertex_bytes);
    drop(dag);
    rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        for s in &stored {
            assert_eq!(*h.vertex(s.vertex.hash).await.unwrap().unwrap(), *s);
        }
        assert_eq!(h.last_finalized_vertex().await.unwrap().unwrap().0, 499);
        h.shutdown().await;
    });
    let (_, dag) = node_storage::NodeReader::<B, Synthetic>::open(c.clone()).unwrap().check().unwrap();
    assert!(dag.is_ok(), "{dag:?}");
    // Nothing left to do.
    let again = rt.block_on(migrate_node::<B, Synthetic, ()>(&c, options(false, None), quiet(), Arc::new(()))).unwrap();
    assert!(again.was_current());
}

/// Bytes of every value of the `vertices` table.
fn value_bytes<S: KvRead>(store: &S) -> u64 {
    let mut cursor = store.cursor("vertices", RawRange::all(), Direction::Forward).unwrap();
    let mut n = 0;
    while let Some(entry) = cursor.next_entry() {
        n += entry.unwrap().1.len() as u64;
    }
    n
}

#[test]
fn dag_v1_to_v2_rocksdb() {
    round_trip::<RocksStore>();
}

#[test]
fn dag_v1_to_v2_redb() {
    round_trip::<RedbStore>();
}

#[test]
fn dag_v1_to_v2_sled() {
    round_trip::<SledStore>();
}

#[test]
fn a_backup_is_taken_first_and_records_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), BackendKind::Rocksdb);
    populate::<RocksStore>(&c);
    downgrade_to_v1(&open_dag::<RocksStore>(&c)).unwrap();
    let report = rt()
        .block_on(migrate_node::<RocksStore, Synthetic, ()>(
            &c,
            options(false, Some(BackupKind::Physical)),
            quiet(),
            Arc::new(()),
        ))
        .unwrap();
    let backup = report.backup.expect("a backup before migrating");
    let dag = backup.manifest.stores.iter().find(|s| s.name == "dag").unwrap();
    assert_eq!(dag.schema_version, 1, "the backup holds the data as it was");
    assert_eq!(open_dag::<RocksStore>(&c).stored_schema_version(), 2);
}

#[test]
fn an_unknown_source_version_is_refused_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), BackendKind::Rocksdb);
    populate::<RocksStore>(&c);
    let before = digests(&open_dag::<RocksStore>(&c));
    set_dag_version::<RocksStore>(&c, 0);
    let err = rt()
        .block_on(migrate_node::<RocksStore, Synthetic, ()>(
            &c,
            options(false, Some(BackupKind::Physical)),
            quiet(),
            Arc::new(()),
        ))
        .unwrap_err();
    assert!(
        matches!(
            &err,
            StorageError::Migrate(MigrateError::NoPath { found: 0, missing: 0, first: 1, supported: 2, .. })
        ),
        "{err}"
    );
    assert!(err.to_string().contains("version 0"), "{err}");
    assert_eq!(digests(&open_dag::<RocksStore>(&c)), before);
    assert!(!dir.path().join("backups").exists(), "no backup for a migration that cannot run");
}

#[test]
fn a_newer_database_is_refused_by_the_node_and_by_migrate() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), BackendKind::Rocksdb);
    populate::<RocksStore>(&c);
    set_dag_version::<RocksStore>(&c, 3);
    let err = open_error::<RocksStore>(&c);
    assert!(
        matches!(err, StorageError::Open { source: OpenError::NewerSchema { found: 3, supported: 2, .. }, .. }),
        "{err}"
    );
    let err = rt()
        .block_on(migrate_node::<RocksStore, Synthetic, ()>(&c, options(true, None), quiet(), Arc::new(())))
        .unwrap_err();
    assert!(err.to_string().contains("version 3"), "{err}");
}

#[test]
fn a_corrupt_v1_vertex_stops_the_migration_before_the_version_bump() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), BackendKind::Rocksdb);
    let stored = populate::<RocksStore>(&c);
    let mut keys: Vec<VertexHash> = stored.iter().map(|s| s.vertex.hash).collect();
    keys.sort();
    let victim = keys[keys.len() / 2];
    {
        let dag = open_dag::<RocksStore>(&c);
        downgrade_to_v1(&dag).unwrap();
        let mut batch = dag.raw_batch();
        batch.put_raw("vertices", &victim.0, &[1, 0xff, 0xff, 0xff]).unwrap();
        dag.write_raw(batch, Durability::Synced).unwrap();
    }
    let victim_hex: String = victim.0.iter().map(|b| format!("{b:02x}")).collect();
    for dry_run in [true, false] {
        let err = rt()
            .block_on(migrate_node::<RocksStore, Synthetic, ()>(&c, options(dry_run, None), quiet(), Arc::new(())))
            .unwrap_err();
        assert!(matches!(&err, StorageError::Migrate(MigrateError::Entry { key, .. }) if *key == victim_hex), "{err}");
        assert!(err.to_string().contains("was not raised"), "{err}");
        assert_eq!(open_dag::<RocksStore>(&c).stored_schema_version(), 1);
    }
    // The batches before the bad entry were committed and the run stopped there.
    let plan = plan_node::<RocksStore, Synthetic>(&c).unwrap();
    let progress =
        plan.iter().find(|(n, _)| *n == node_storage::StoreId::Dag).unwrap().1.steps[0].resume.clone().unwrap();
    assert!(progress.scanned > 0 && progress.scanned < VERTICES as u64, "{progress:?}");
    assert!(matches!(open_error::<RocksStore>(&c), StorageError::Open { source: OpenError::OlderSchema { .. }, .. }));
}

// ---- the chain store: v1 (one value per block) → v3 (one row per transaction and receipt) --

/// A chain of 60 blocks with side blocks and a reorg; returns the canonical blocks as read
/// back, with their receipts.
fn populate_chain<B: Backend>(
    c: &Config,
) -> Vec<(chain_store::Block<Synthetic>, Vec<chain_store::synthetic::SyntheticReceipt>)> {
    use chain_store::generator::{ChainGenerator, GenConfig};
    rt().block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        let mut g = ChainGenerator::new(GenConfig {
            txs_per_block: 7,
            fork_probability: 0.2,
            marker_every: 5,
            ..GenConfig::default()
        });
        h.init_chain(g.next_blocks().remove(0)).await.unwrap();
        let blocks = g.generate(60);
        for r in h.insert_blocks(blocks.clone()).await {
            r.unwrap();
        }
        // A reorg onto the newest side block, so reverted state and re-applied blocks are
        // migrated too.
        let mut side = None;
        for b in blocks.iter().rev() {
            let canonical = h.block_by_number(b.block.number()).await.unwrap().map(|c| c.hash());
            if canonical != Some(b.block.hash()) {
                side = Some(b.block.hash());
                break;
            }
        }
        h.set_head(side.expect("the generator made side blocks")).await.unwrap();
        let head = h.pointers().head.unwrap().number;
        let mut out = Vec::new();
        for n in 0..=head {
            let b = h.block_by_number(n).await.unwrap().unwrap();
            let r = h.receipts(b.hash()).await.unwrap().unwrap();
            out.push(((*b).clone(), (*r).clone()));
        }
        h.shutdown().await;
        out
    })
}

fn chain_v1_to_v3<B: Backend>() {
    use chain_store::migrate::fixture::downgrade_to_v1 as chain_downgrade;
    use chain_store::{ChainStore, chain_schema};
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), B::KIND);
    let canonical = populate_chain::<B>(&c);
    {
        let store = B::open_store_with(
            &c,
            node_storage::StoreId::Chain,
            chain_schema::<Synthetic>(),
            storage_api::VersionPolicy::AllowOlder,
        )
        .unwrap();
        let (_, blocks) = chain_downgrade(ChainStore::<B, Synthetic>::new(store).unwrap()).unwrap();
        assert!(blocks >= canonical.len() as u64);
    }
    let err = open_error::<B>(&c);
    assert!(
        matches!(
            err,
            StorageError::Open {
                store: node_storage::StoreId::Chain,
                source: OpenError::OlderSchema { found: 1, expected: 3, .. }
            }
        ),
        "{err}"
    );
    let plans = plan_node::<B, Synthetic>(&c).unwrap();
    let chain_plan = &plans.iter().find(|(n, _)| *n == node_storage::StoreId::Chain).unwrap().1;
    assert_eq!((chain_plan.stored, chain_plan.target, chain_plan.steps.len()), (1, 3, 2));
    let rt = rt();
    let report =
        rt.block_on(migrate_node::<B, Synthetic, ()>(&c, options(false, None), quiet(), Arc::new(()))).unwrap();
    let steps = &report.stores.iter().find(|s| s.store == node_storage::StoreId::Chain).unwrap().steps;
    assert_eq!(steps.len(), 2, "{steps:?}");
    // Every entry of each walked table is verified afterwards (for receipts: the new rows).
    assert!(steps.iter().all(|s| s.changed > 0 && s.verified >= s.changed), "{steps:?}");
    // Everything reads as before, per transaction, and the integrity check is clean.
    rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        for (block, receipts) in &canonical {
            assert_eq!(&*h.block_by_number(block.number()).await.unwrap().unwrap(), block);
            assert_eq!(&*h.receipts(block.hash()).await.unwrap().unwrap(), receipts);
            for (i, tx) in block.transactions.iter().enumerate() {
                let (found, at) = h.transaction(tx.hash).await.unwrap().unwrap();
                assert_eq!((&found, at.index), (tx, i as u32));
                assert_eq!(h.receipt(tx.hash).await.unwrap().unwrap().0, receipts[i]);
            }
        }
        h.shutdown().await;
    });
    let (chain, dag) = node_storage::NodeReader::<B, Synthetic>::open(c.clone()).unwrap().check().unwrap();
    assert!(chain.is_ok() && dag.is_ok(), "{chain}");
    // A rerun finds nothing to do.
    assert!(plan_node::<B, Synthetic>(&c).unwrap().iter().all(|(_, p)| p.is_current()));
}

#[test]
fn chain_v1_to_v3_rocksdb() {
    chain_v1_to_v3::<RocksStore>();
}

#[test]
fn chain_v1_to_v3_redb() {
    chain_v1_to_v3::<RedbStore>();
}

/// The child half of `power_cuts_during_a_migration_*`: migrates the node at `MIGRATE_DIR`
/// in small batches until the power goes (or it is done).
#[test]
#[ignore = "run by power_cuts_during_a_migration_* as a child process"]
fn migrate_child() {
    let Ok(dir) = std::env::var("MIGRATE_DIR") else { return };
    let kind = match std::env::var("MIGRATE_ENGINE").as_deref() {
        Ok("redb") => BackendKind::Redb,
        _ => BackendKind::Rocksdb,
    };
    let c = config(Path::new(&dir), kind);
    println!("READY");
    let opts = MigrateOptions { dry_run: false, backup: None, batch_entries: 25 };
    // Each synced batch of the migrate phase reports the entries done so far.
    let shown: Arc<MigrateProgress> = Arc::new(|store: node_storage::StoreId, _: u32, phase: &str, done: u64| {
        if store == node_storage::StoreId::Dag && phase == "migrate" {
            println!("DONE {done}");
        }
    });
    let done = match kind {
        BackendKind::Redb => {
            rt().block_on(migrate_node::<RedbStore, Synthetic, ()>(&c, opts, shown, Arc::new(()))).map(drop)
        }
        _ => rt().block_on(migrate_node::<RocksStore, Synthetic, ()>(&c, opts, shown, Arc::new(()))).map(drop),
    };
    done.expect("migrate");
    println!("MIGRATED");
}

/// Power cuts during the DAG v1 → v2 migration, on the fault-injecting file system: after
/// every cut the node is either still v1 (and the next run resumes) or v2 with every table as
/// before the downgrade — never a half state, never a failed open for another reason — and
/// the final result is byte for byte the migrated DAG.
fn power_cuts_during_a_migration<B: Backend>() {
    let Some(mut fs) = fault_fs::mount_or_skip(&format!("power cuts during a migration on {}", B::KIND)) else {
        return;
    };
    let root = fs.path().to_owned();
    let c = config(&root, B::KIND);
    populate::<B>(&c);
    let before = {
        let dag = open_dag::<B>(&c);
        let d = digests(&dag);
        downgrade_to_v1(&dag).unwrap();
        d
    };
    let (mut cuts_mid_migration, mut resumed) = (0, 0);
    for cycle in 0..8u64 {
        let engine = B::KIND.to_string();
        let env: [(&str, &std::ffi::OsStr); 3] =
            [("MIGRATE_DIR", root.as_os_str()), ("MIGRATE_ENGINE", engine.as_ref()), ("RUST_LOG", "off".as_ref())];
        // Cut a little after the first batch of this run is reported (or, once the migration is
        // through, anywhere up to the end).
        let wait = std::time::Duration::from_millis(cycle * 13 % 60);
        let killed = engine_test::child::run_and_cut("migrate_child", &env, "DONE", wait, || fs.power_off());
        fs.power_on(fault_fs::Cut { tear: cycle % 2 == 0, seed: cycle }).unwrap();
        let done = killed.lines.iter().any(|l| l == "MIGRATED");
        let version = open_dag::<B>(&c).stored_schema_version();
        match version {
            2 => assert_eq!(digests(&open_dag::<B>(&c)), before, "{} cycle {cycle}: v2 but not migrated", B::KIND),
            1 => {
                assert!(!done, "{} cycle {cycle}: the migration finished, then the cut undid it", B::KIND);
                assert!(
                    matches!(open_error::<B>(&c), StorageError::Open { source: OpenError::OlderSchema { .. }, .. }),
                    "{} cycle {cycle}: a half-migrated node must refuse to open only for its older schema",
                    B::KIND
                );
                cuts_mid_migration += 1;
                let plans = plan_node::<B, Synthetic>(&c).unwrap();
                let dag = &plans.iter().find(|(n, _)| *n == node_storage::StoreId::Dag).unwrap().1;
                let kept = dag.steps.first().and_then(|s| s.resume.as_ref()).map_or(0, |r| r.scanned);
                // Progress is reported after its batch is synced: it must survive the cut.
                let acked = killed.lines.iter().filter_map(|l| l.strip_prefix("DONE ")?.parse::<u64>().ok()).max();
                assert!(
                    kept >= acked.unwrap_or(0),
                    "{} cycle {cycle}: {acked:?} entries were reported migrated, the resume point is {kept}",
                    B::KIND
                );
                resumed += u64::from(kept > 0);
            }
            v => panic!("{} cycle {cycle}: DAG schema version {v}", B::KIND),
        }
        if version == 2 {
            break;
        }
    }
    let rt = rt();
    rt.block_on(migrate_node::<B, Synthetic, ()>(&c, options(false, None), quiet(), Arc::new(()))).unwrap();
    assert_eq!(digests(&open_dag::<B>(&c)), before, "{}", B::KIND);
    let (chain, dag) = node_storage::NodeReader::<B, Synthetic>::open(c.clone()).unwrap().check().unwrap();
    assert!(chain.is_ok() && dag.is_ok(), "{dag:?}");
    println!(
        "{}: {cuts_mid_migration} power cuts mid-migration ({resumed} left progress to resume from), then \
         migrated byte for byte",
        B::KIND
    );
}

#[test]
fn power_cuts_during_a_migration_rocksdb() {
    power_cuts_during_a_migration::<RocksStore>();
}

#[test]
fn power_cuts_during_a_migration_redb() {
    power_cuts_during_a_migration::<RedbStore>();
}
