//! The legacy flat layout imported as a node's DAG store: dry run, real import verified record
//! by record, and bad input (damaged vertices, undecodable records, records that disagree with
//! each other, an existing target) reported with keys and nothing committed.

use std::path::Path;

use chain_store::synthetic::Synthetic;
use dag_store::legacy::{self, LegacyError, LegacyRecord};
use dag_store::{Status, VertexHash};
use node_storage::{
    Backend, BackendKind, Config, RedbStore, RocksStore, SledStore, StorageError, StorageHandle, import_legacy,
    write_legacy_fixture,
};
use storage_rocksdb::RocksFlat;

const VERTICES: usize = 1_200;
const FINALIZED: usize = 700;

fn config(dir: &Path, backend: BackendKind) -> Config {
    let mut c = Config { data_dir: dir.join("db"), backend, ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.metrics.enabled = false;
    c
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Nothing of an import is left: no DAG store, no staging directory.
fn untouched<B: Backend>(c: &Config) {
    assert!(!B::store_path(&c.data_dir, node_storage::StoreId::Dag).exists(), "no DAG store may appear");
    let leftovers: Vec<_> = std::fs::read_dir(&c.data_dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(leftovers.iter().all(|n| !n.to_string_lossy().starts_with(".import-legacy")), "{leftovers:?}");
}

fn import<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("legacy");
    write_legacy_fixture(&source, VERTICES, FINALIZED, 0, 5).unwrap();
    let c = config(dir.path(), B::KIND);

    let mut phases = Vec::new();
    let dry = import_legacy::<B, Synthetic>(&c, &source, true, &mut |p, _| phases.push(p)).unwrap();
    assert!(dry.dry_run);
    assert_eq!(
        (dry.counts.vertices, dry.counts.metas, dry.counts.finalized),
        (VERTICES as u64, VERTICES as u64, FINALIZED as u64)
    );
    assert!(["validate", "import", "verify"].iter().all(|p| phases.contains(p)), "{phases:?}");
    untouched::<B>(&c);

    let report = import_legacy::<B, Synthetic>(&c, &source, false, &mut |_, _| {}).unwrap();
    assert_eq!(report.counts, dry.counts);
    assert!(report.target.exists());
    // The node opens on it and every legacy record is there as it was.
    let expected = legacy::fixture(VERTICES, FINALIZED, 5);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(c.clone()).unwrap();
        for record in &expected {
            if let LegacyRecord::Vertex(v, signature) = record {
                let got = h.vertex(v.hash).await.unwrap().unwrap();
                assert_eq!((&got.vertex, &got.signature), (v, signature));
            }
        }
        let last = h.last_finalized_vertex().await.unwrap().unwrap();
        assert_eq!(last.0, FINALIZED as u64 - 1);
        assert_eq!(h.next_finalization_sequence().await.unwrap(), FINALIZED as u64);
        assert!(!h.tips().await.unwrap().is_empty());
        h.shutdown().await;
    });
    // Checked with the node stopped (sled has no snapshots for a live check).
    let (_, dag) = node_storage::NodeReader::<B, Synthetic>::open(c.clone()).unwrap().check().unwrap();
    assert!(dag.is_ok(), "{dag:?}");
    // Metadata (arrival times included) came across unchanged.
    let meta = expected.iter().find_map(|r| match r {
        LegacyRecord::Meta(hash, m) if m.status == Status::Finalized => Some((*hash, *m)),
        _ => None,
    });
    let (hash, m) = meta.unwrap();
    let store = B::open_store(&c, node_storage::StoreId::Dag, dag_store::dag_schema()).unwrap();
    let got = storage_api::ReadExt::get::<dag_store::schema::VertexMetas>(&store, &hash).unwrap().unwrap();
    assert_eq!(got, m);
    drop(store);
    // A second import into the same node is refused.
    let err = import_legacy::<B, Synthetic>(&c, &source, false, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
}

#[test]
fn import_into_rocksdb() {
    import::<RocksStore>();
}

#[test]
fn import_into_redb() {
    import::<RedbStore>();
}

#[test]
fn import_into_sled() {
    import::<SledStore>();
}

fn corrupt_error(err: StorageError) -> (Vec<String>, u64) {
    match err {
        StorageError::Legacy(LegacyError::Corrupt { problems, total }) => {
            (problems.into_iter().map(|p| format!("{}|{}", p.key, p.reason)).collect(), total)
        }
        e => panic!("expected corrupt records, got {e}"),
    }
}

#[test]
fn damaged_vertices_are_reported_with_their_keys_and_nothing_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("legacy");
    let damaged = write_legacy_fixture(&source, 300, 100, 3, 9).unwrap();
    assert_eq!(damaged.len(), 3);
    let c = config(dir.path(), BackendKind::Rocksdb);
    for dry_run in [true, false] {
        let err = import_legacy::<RocksStore, Synthetic>(&c, &source, dry_run, &mut |_, _| {}).unwrap_err();
        let text = err.to_string();
        let (problems, total) = corrupt_error(err);
        assert_eq!(total, 3);
        let mut keys: Vec<&str> = problems.iter().map(|p| p.split('|').next().unwrap()).collect();
        keys.sort();
        let mut want: Vec<&str> = damaged.iter().map(String::as_str).collect();
        want.sort();
        assert_eq!(keys, want);
        assert!(problems.iter().all(|p| p.contains("not to its key")), "{problems:?}");
        assert!(text.contains(&damaged[0]) && text.contains("nothing imported"), "{text}");
        untouched::<RocksStore>(&c);
    }
}

#[test]
fn undecodable_records_are_all_reported() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("legacy");
    let bad: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![0x07, 1, 2], vec![]),                                          // unknown record type
        ([&[0x03][..], &[9; 32]].concat(), vec![0; 24]),                     // truncated metadata
        ([&[0x03][..], &[8; 32]].concat(), [&[5u8][..], &[0; 24]].concat()), // bad status
        ([&[0x02][..], &[1; 32]].concat(), vec![]),                          // edge key too short
        ([&[0x06][..], &[0; 8]].concat(), vec![1; 31]),                      // finalized value too short
        ([&[0x04][..], &[0; 40]].concat(), vec![1]),                         // index entry with a value
    ];
    let db = RocksFlat::create(&source).unwrap();
    let mut entries: Vec<_> = legacy::fixture(100, 10, 2).iter().map(legacy::encode).collect();
    entries.extend(bad.iter().cloned());
    db.write(&entries).unwrap();
    drop(db);
    let c = config(dir.path(), BackendKind::Rocksdb);
    let (problems, total) =
        corrupt_error(import_legacy::<RocksStore, Synthetic>(&c, &source, true, &mut |_, _| {}).unwrap_err());
    assert_eq!(total, bad.len() as u64, "{problems:#?}");
    for (key, _) in &bad {
        assert!(
            problems.iter().any(|p| p.starts_with(&format!("{}|", hex(key)))),
            "{} not reported: {problems:#?}",
            hex(key)
        );
    }
    assert!(problems.iter().any(|p| p.contains("unknown record type 0x07")));
    assert!(problems.iter().any(|p| p.contains("status 5")));
    untouched::<RocksStore>(&c);
}

#[test]
fn records_that_disagree_fail_verification_and_nothing_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), BackendKind::Rocksdb);
    let records = legacy::fixture(200, 50, 4);
    // 1. A vertex missing from the height index is never imported: verification names it.
    // 2. An edge for which no vertex has the parent: verification names the edge.
    let first_vertex = records.iter().find_map(|r| match r {
        LegacyRecord::Vertex(v, _) if !v.parents.is_empty() => Some(v.hash),
        _ => None,
    });
    let skipped = first_vertex.unwrap();
    type Omit = Box<dyn Fn(&LegacyRecord) -> bool>;
    let cases: Vec<(&str, Omit, Vec<LegacyRecord>)> = vec![
        ("missing height entry", Box::new(move |r| matches!(r, LegacyRecord::Height(_, h) if *h == skipped)), vec![]),
        ("extra edge", Box::new(|_| false), vec![LegacyRecord::Edge(VertexHash([7; 32]), skipped)]),
        (
            "finalized entry for an unfinalized vertex",
            Box::new(|_| false),
            vec![LegacyRecord::Finalized(
                50,
                records
                    .iter()
                    .rev()
                    .find_map(|r| match r {
                        LegacyRecord::Vertex(v, _) => Some(v.hash),
                        _ => None,
                    })
                    .unwrap(),
            )],
        ),
    ];
    for (i, (what, drop_if, extra)) in cases.into_iter().enumerate() {
        let source = dir.path().join(format!("legacy-{i}"));
        let db = RocksFlat::create(&source).unwrap();
        let entries: Vec<_> = records.iter().filter(|r| !drop_if(r)).chain(extra.iter()).map(legacy::encode).collect();
        db.write(&entries).unwrap();
        drop(db);
        let err = import_legacy::<RocksStore, Synthetic>(&c, &source, false, &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(err, StorageError::Legacy(LegacyError::Mismatch(_) | LegacyError::Corrupt { .. })),
            "{what}: {err}"
        );
        assert!(err.to_string().contains("key "), "{what}: {err}");
        untouched::<RocksStore>(&c);
    }
}
