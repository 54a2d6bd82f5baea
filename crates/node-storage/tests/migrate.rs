//! Cross-backend copy of a whole node for every engine pair, verified entry by entry; a
//! corrupted target is detected and named.

use std::path::Path;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use dag_store::dag_schema;
use dag_store::generator::DagGenerator;
use node_storage::{Backend, BackendKind, Config, RedbStore, RocksStore, SledStore, StorageHandle, copy_node};
use storage_api::{Durability, KeyCodec, KvWrite, RawBatch, ReadExt};
use storage_migrate::MigrateError;

fn config(dir: &Path, backend: BackendKind) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), backend, ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.metrics.enabled = false;
    c
}

fn populate<B: Backend>(c: &Config) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        let mut g = ChainGenerator::new(GenConfig { txs_per_block: 5, ..GenConfig::default() });
        h.init_chain(g.next_blocks().remove(0)).await.unwrap();
        let blocks: Vec<_> = (0..100).flat_map(|_| g.next_blocks()).collect();
        for r in h.insert_blocks(blocks).await {
            r.unwrap();
        }
        for r in h.insert_vertices(DagGenerator::new(3).generate(1_000)).await {
            r.unwrap();
        }
        h.shutdown().await;
    });
}

fn pair<S: Backend, D: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let from = config(&dir.path().join("from"), S::KIND);
    let to = config(&dir.path().join("to"), D::KIND);
    populate::<S>(&from);
    let mut last = 0;
    let report = copy_node::<S, D, Synthetic>(&from, &to, &mut |_, n| last = last.max(n)).unwrap();
    assert!(report.entries > 3_000, "{}", report.entries);
    assert!(last > 0);
    let chain = &report.stores[0].1;
    assert!(chain.iter().any(|t| t.table == "headers" && t.keys == 101), "{chain:?}");
    // The copy opens as a node on the target engine.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let h = StorageHandle::<D, Synthetic>::open(to.clone()).unwrap();
        assert_eq!(h.pointers().head.map(|b| b.number), Some(100));
        h.shutdown().await;
    });
    // Checked stopped (sled has no snapshots for a live check).
    let (c, d) = node_storage::NodeReader::<D, Synthetic>::open(to.clone()).unwrap().check().unwrap();
    assert!(c.is_ok() && d.is_ok());
    // Copying again into the same target is refused.
    let err = copy_node::<S, D, Synthetic>(&from, &to, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn rocksdb_to_redb_and_sled() {
    pair::<RocksStore, RedbStore>();
    pair::<RocksStore, SledStore>();
}

#[test]
fn redb_to_rocksdb_and_sled() {
    pair::<RedbStore, RocksStore>();
    pair::<RedbStore, SledStore>();
}

#[test]
fn sled_to_rocksdb_and_redb() {
    pair::<SledStore, RocksStore>();
    pair::<SledStore, RedbStore>();
}

#[test]
fn a_corrupted_target_is_detected_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let from = config(&dir.path().join("from"), BackendKind::Rocksdb);
    populate::<RocksStore>(&from);
    let target = RedbStore::open_store(
        &config(&dir.path().join("to"), BackendKind::Redb),
        node_storage::StoreId::Dag,
        dag_schema(),
    )
    .unwrap();
    let source = RocksStore::open_store(&from, node_storage::StoreId::Dag, dag_schema()).unwrap();
    let tables = ["vertices"];
    storage_migrate::copy_tables("dag", &source, &target, &tables, 100, &mut |_| {}).unwrap();
    storage_migrate::verify_tables("dag", &source, &target, &tables).unwrap();
    // Damage one value in the target.
    let first = ReadExt::first::<dag_store::schema::Vertices>(&source).unwrap().unwrap();
    let key = KeyCodec::to_key_bytes(&first.0);
    let mut batch = target.raw_batch();
    batch.put_raw("vertices", &key, b"\x01garbage").unwrap();
    target.write_raw(batch, Durability::Synced).unwrap();
    let err = storage_migrate::verify_tables("dag", &source, &target, &tables).unwrap_err();
    assert!(matches!(err, MigrateError::Mismatch { what: "value differs", .. }), "{err}");
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    assert!(err.to_string().contains(&format!("table vertices: value differs at key {hex}")), "{err}");
}
