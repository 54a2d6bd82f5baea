//! The bulk import of finalized vertices: the same tables as inserts plus finalization, an
//! interrupted range rolled back, bad vertices refused, and SIGKILLs mid-import. On every
//! backend with the ingest capability.

mod common;

use common::{Fx, fixture};
use dag_store::generator::DagGenerator;
use dag_store::schema::{DagMeta, Finalized, MetaKey, Tips, VertexMetas, Vertices};
use dag_store::{DagBulkOptions, DagError, DagStore, Vertex, VertexBuilder, VertexMeta, dag_schema};
use engine_test::{Memory, Redb, Rocks, TestEngine};
use storage_api::{Direction, Durability, Ingest, KvIngest, KvStore, RawRange, ReadExt, Table};

/// Every entry of every table but the meta tables; vertex metadata without its arrival time
/// (which says when this node stored the vertex).
fn dump<S: KvStore>(dag: &DagStore<S>) -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    let store = dag.store();
    let mut out = Vec::new();
    for t in store.schema().physical_tables() {
        if t == DagMeta::NAME || t == storage_api::table::META_TABLE || t == VertexMetas::NAME {
            continue;
        }
        let mut c = store.cursor(t, RawRange::all(), Direction::Forward).unwrap();
        while let Some(e) = storage_api::iter::RawCursor::next_entry(&mut c) {
            let (k, v) = e.unwrap();
            out.push((t, k.to_vec(), v.to_vec()));
        }
    }
    for entry in store.iter_all::<VertexMetas>(Direction::Forward).unwrap() {
        let (hash, meta) = entry.unwrap();
        let meta = VertexMeta { received_at_ms: 0, ..meta };
        out.push((VertexMetas::NAME, hash.0.to_vec(), format!("{meta:?}").into_bytes()));
    }
    out
}

fn options(dir: &std::path::Path, range: u64, budget: usize) -> DagBulkOptions {
    DagBulkOptions { range_vertices: range, memory_budget: budget, ..DagBulkOptions::new(dir.join("scratch")) }
}

/// `n` generated vertices inserted and finalized in order, live, into a memory store.
fn reference(seed: u64, n: usize) -> (Fx<storage_api::mem::MemStore>, Vec<(Vertex, Vec<u8>)>) {
    let fx = fixture::<Memory>();
    let vertices = DagGenerator::new(seed).generate(n);
    for chunk in vertices.chunks(100) {
        fx.insert_batch(chunk).unwrap();
    }
    for (seq, (v, _)) in vertices.iter().enumerate() {
        fx.mark_finalized(&v.hash, seq as u64).unwrap();
    }
    (fx, vertices)
}

/// Bulk-imported finalized vertices leave exactly the tables that inserts and finalization
/// leave — on top of a live-built start, across ranges, with runs spilled — and the check is
/// clean; live inserts continue on top.
fn same_tables_as_inserts<S: KvIngest>(fx: Fx<S>) {
    let (want, vertices) = reference(3, 2_500);
    // The first 200 live, so the import builds on stored tips.
    fx.insert_batch(&vertices[..200]).unwrap();
    for (seq, (v, _)) in vertices[..200].iter().enumerate() {
        fx.mark_finalized(&v.hash, seq as u64).unwrap();
    }
    let mut import = fx.bulk_import_finalized(options(fx._dir.path(), 700, 1 << 16)).unwrap();
    assert_eq!(import.next_sequence(), 200);
    for (i, (v, sig)) in vertices[200..].iter().enumerate() {
        assert_eq!(import.push(v, sig).unwrap(), 200 + i as u64);
    }
    let report = import.finish().unwrap();
    assert_eq!(report.vertices, 2_300);
    assert_eq!(report.ranges, 4);
    assert!(report.spilled_runs > 0, "a 64 KiB budget spills: {report:?}");
    let (got, expected) = (dump(&fx.dag), dump(&want.dag));
    assert_eq!(got.len(), expected.len());
    for (g, w) in got.iter().zip(&expected) {
        assert_eq!(g, w, "first difference in table {}", w.0);
    }
    assert_eq!(fx.tips().unwrap(), want.tips().unwrap(), "the in-memory tip set follows");
    let report = fx.check().unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(std::fs::read_dir(fx._dir.path().join("scratch")).unwrap().count(), 0, "scratch files removed");
    // Live inserts and finalization continue on top.
    let tips = fx.tips().unwrap();
    let v = VertexBuilder::new("live").parents(tips.into_iter().collect()).build();
    fx.insert_vertex(&v, b"sig").unwrap();
    fx.mark_finalized(&v.hash, 2_500).unwrap();
    assert!(fx.check().unwrap().is_ok());
}

/// Vertices with a bad hash, missing or unfinalized parents, or already stored are refused,
/// and a refused vertex changes nothing: the import goes on.
fn bad_vertices_are_refused<S: KvIngest>(fx: Fx<S>) {
    let vertices = DagGenerator::new(5).generate(40);
    fx.insert_batch(&vertices[..10]).unwrap();
    for (seq, (v, _)) in vertices[..9].iter().enumerate() {
        fx.mark_finalized(&v.hash, seq as u64).unwrap();
    }
    // vertices[9] is stored but pending: a child of it is refused.
    let on_pending = VertexBuilder::new("x").parents(vec![vertices[9].0.hash]).build();
    let mut import = fx.bulk_import_finalized(options(fx._dir.path(), 100, 1 << 20)).unwrap();
    let err = import.push(&on_pending, b"").unwrap_err();
    assert!(matches!(err, DagError::UnfinalizedParents { .. }), "{err}");
    let err = import.push(&vertices[9].0, b"").unwrap_err();
    assert!(matches!(err, DagError::AlreadyStored(_)), "{err}");
    let orphan = VertexBuilder::new("x").parents(vec![vertices[30].0.hash]).build();
    let err = import.push(&orphan, b"").unwrap_err();
    assert!(matches!(err, DagError::MissingParents { .. }), "{err}");
    let mut tampered = VertexBuilder::new("x").parents(vec![vertices[0].0.hash]).build();
    tampered.payload.push(1);
    let err = import.push(&tampered, b"").unwrap_err();
    assert!(matches!(err, DagError::HashMismatch { .. }), "{err}");
    let ok = VertexBuilder::new("y").parents(vec![vertices[8].0.hash]).build();
    assert_eq!(import.push(&ok, b"s").unwrap(), 9);
    let err = import.push(&ok, b"s").unwrap_err();
    assert!(matches!(err, DagError::AlreadyStored(_)), "a vertex twice in one range: {err}");
    // Live writes wait for the import: the range is pending.
    let err = fx.mark_finalized(&vertices[9].0.hash, 10).unwrap_err();
    assert!(matches!(err, DagError::ImportPending { from: 9 }), "{err}");
    drop(import);
    assert_eq!(fx.pending_import(), None, "a dropped import removes its pending record");
    assert_eq!(fx.next_sequence().unwrap(), 9, "an unfinished range is not committed");
    assert!(fx.vertex(&ok.hash).unwrap().is_none());
    assert!(fx.check().unwrap().is_ok());
}

/// A range interrupted while committing (the pending record and some of its tables
/// ingested) refuses writes and shows in the check; the next import rolls it back to exactly
/// the last committed range and completes it.
fn interrupted_range_rolls_back<S: KvIngest>(fx: Fx<S>) {
    let (want, vertices) = reference(9, 600);
    let mut import = fx.bulk_import_finalized(options(fx._dir.path(), 300, 1 << 20)).unwrap();
    for (v, sig) in &vertices[..300] {
        import.push(v, sig).unwrap();
    }
    import.finish().unwrap();
    let before = dump(&fx.dag);
    // The crash: the pending record, then the sequence, the vertices, half the edges and the
    // tip changes of the second range ingested.
    let store = fx.dag.store();
    let mut batch = store.batch();
    batch.put::<DagMeta>(&(MetaKey::BulkPending as u8), &300).unwrap();
    store.write(batch, Durability::Synced).unwrap();
    let full = dump(&want.dag);
    let mut ing = store.ingest().unwrap();
    let second: std::collections::HashSet<[u8; 32]> = vertices[300..].iter().map(|(v, _)| v.hash.0).collect();
    for (t, k, v) in &full {
        let take = match *t {
            t if t == Finalized::NAME => u64::from_be_bytes(k[..8].try_into().unwrap()) >= 300,
            t if t == Vertices::NAME => second.contains(&<[u8; 32]>::try_from(&k[..]).unwrap()),
            "children" => second.contains(&<[u8; 32]>::try_from(&k[40..72]).unwrap()) && k[8] < 0x80,
            t if t == Tips::NAME => true,
            _ => false,
        };
        if take {
            ing.put(t, k, v).unwrap();
        }
    }
    ing.commit().unwrap();
    let dag = DagStore::new(fx.dag.into_inner()).unwrap();
    assert_eq!(dag.pending_import(), Some(300));
    let report = dag.check().unwrap();
    assert!(report.problems.iter().any(|p| matches!(p, dag_store::Problem::ImportPending { from: 300 })));
    let err = dag.insert_batch(&vertices[300..301]).unwrap_err();
    assert!(matches!(err, DagError::ImportPending { from: 300 }), "{err}");
    let mut import = dag.bulk_import_finalized(options(fx._dir.path(), 300, 1 << 20)).unwrap();
    assert_eq!(dag.pending_import(), None);
    let after = dump(&dag);
    assert_eq!(after.len(), before.len());
    for (a, b) in after.iter().zip(&before) {
        assert_eq!(a, b, "rolled back to the committed range (table {})", b.0);
    }
    assert_eq!(import.next_sequence(), 300);
    for (v, sig) in &vertices[300..] {
        import.push(v, sig).unwrap();
    }
    import.finish().unwrap();
    assert_eq!(dump(&dag), full);
    assert!(dag.check().unwrap().is_ok());
}

/// A commit that fails (here: its spilled runs are gone) rolls the range back and says so
/// until the caller discards: a retried `commit` or `finish` never reports success for
/// vertices it did not store.
fn a_failed_commit_is_not_retried_into_success<S: KvIngest>(fx: Fx<S>) {
    let (want, vertices) = reference(5, 600);
    let scratch = fx._dir.path().join("scratch");
    let mut import = fx.bulk_import_finalized(options(fx._dir.path(), 10_000, 1 << 10)).unwrap();
    for (v, sig) in &vertices[..400] {
        import.push(v, sig).unwrap();
    }
    std::fs::remove_dir_all(&scratch).unwrap();
    let err = import.commit().unwrap_err();
    assert!(!matches!(err, DagError::RangeLost { .. }), "the first error is the cause: {err}");
    for _ in 0..2 {
        let again = import.commit().unwrap_err();
        assert!(matches!(again, DagError::RangeLost { from: 0, to: 399, .. }), "{again}");
    }
    assert!(matches!(import.push(&vertices[400].0, &vertices[400].1), Err(DagError::RangeLost { .. })));
    assert_eq!(fx.next_sequence().unwrap(), 0);
    assert_eq!(fx.pending_import(), None);
    // Acknowledged: the import goes on at the committed sequence.
    import.discard().unwrap();
    assert_eq!(import.next_sequence(), 0);
    std::fs::create_dir_all(&scratch).unwrap();
    for (v, sig) in &vertices {
        import.push(v, sig).unwrap();
    }
    import.finish().unwrap();
    assert_eq!(dump(&fx.dag), dump(&want.dag));
}

engine_test::on_every_engine!(fixture => [memory, rocksdb, redb]: [same_tables_as_inserts, bad_vertices_are_refused, interrupted_range_rolls_back, a_failed_commit_is_not_retried_into_success]);

const KILL_VERTICES: usize = 6_000;

fn open_dag<E: TestEngine>(dir: &std::path::Path) -> DagStore<E::Store> {
    DagStore::new(E::open(dir, dag_schema()).unwrap()).unwrap()
}

/// The child half of `bulk_import_survives_sigkill_*`: imports the generated vertices into
/// the store at `NODE_STORAGE_KILL_DIR` on engine `NODE_STORAGE_KILL_ENGINE`, resuming after
/// whatever is committed, printing `COMMITTED <next sequence>` after each range.
#[test]
#[ignore = "run by bulk_import_survives_sigkill_* as a child process"]
fn dag_bulk_kill_child() {
    let Ok(dir) = std::env::var("NODE_STORAGE_KILL_DIR") else { return };
    match std::env::var("NODE_STORAGE_KILL_ENGINE").as_deref() {
        Ok("redb") => import_until_killed::<Redb>(dir.as_ref()),
        _ => import_until_killed::<Rocks>(dir.as_ref()),
    }
}

fn import_until_killed<E: TestEngine>(dir: &std::path::Path)
where
    E::Store: KvIngest,
{
    let vertices = DagGenerator::new(41).generate(KILL_VERTICES);
    let dag = open_dag::<E>(dir);
    let mut import = dag.bulk_import_finalized(options(dir, 500, 1 << 16)).unwrap();
    let start = import.next_sequence() as usize;
    println!("START {start}");
    for (v, sig) in &vertices[start..] {
        let seq = import.push(v, sig).unwrap();
        if (seq + 1).is_multiple_of(500) {
            println!("COMMITTED {}", seq + 1);
        }
    }
    import.finish().unwrap();
    println!("DONE");
}

/// A bulk import SIGKILLed again and again reopens with every committed range, rolls back
/// the one in progress, and resumes to exactly the tables of inserts plus finalization.
fn bulk_import_survives_sigkill<E: TestEngine>()
where
    E::Store: KvIngest,
{
    let dir = tempfile::tempdir().unwrap();
    let mut committed = 0u64;
    for cycle in 0..6u64 {
        let killed = engine_test::child::run_and_kill(
            "dag_bulk_kill_child",
            &[("NODE_STORAGE_KILL_DIR", dir.path().as_os_str()), ("NODE_STORAGE_KILL_ENGINE", E::NAME.as_ref())],
            std::time::Duration::from_millis(cycle * 7 % 23),
            |line| line.starts_with("COMMITTED"),
        );
        let start: u64 =
            killed.lines.iter().find_map(|l| l.strip_prefix("START ")?.parse().ok()).expect("the child started");
        assert!(start >= committed, "{}: cycle {cycle}: resumed at {start}, below the committed {committed}", E::NAME);
        if let Some(last) = killed.lines.iter().rev().find_map(|l| l.strip_prefix("COMMITTED ")?.parse::<u64>().ok()) {
            committed = last;
        }
        let dag = open_dag::<E>(dir.path());
        let next = dag.next_sequence().unwrap();
        assert!(next >= committed, "{}: cycle {cycle}: {next} finalized after SIGKILL, {committed} committed", E::NAME);
        if !killed.was_running {
            break;
        }
    }
    let (want, vertices) = reference(41, KILL_VERTICES);
    let dag = open_dag::<E>(dir.path());
    let mut import = dag.bulk_import_finalized(options(dir.path(), 500, 1 << 16)).unwrap();
    let start = import.next_sequence() as usize;
    for (v, sig) in &vertices[start..] {
        import.push(v, sig).unwrap();
    }
    import.finish().unwrap();
    assert!(dump(&dag) == dump(&want.dag), "{}: the resumed import differs from inserts + finalization", E::NAME);
    let report = dag.check().unwrap();
    assert!(report.is_ok(), "{}: {:?}", E::NAME, report.problems);
}

#[test]
fn bulk_import_survives_sigkill_rocksdb() {
    bulk_import_survives_sigkill::<Rocks>();
}

#[test]
fn bulk_import_survives_sigkill_redb() {
    bulk_import_survives_sigkill::<Redb>();
}
