//! Migration figures on RocksDB: the DAG v1 → v2 step (dry run and real run, against a plain
//! rewrite of the same entries in the same batches), the bytes it saves, the chain steps, copying
//! the whole node (write batches vs bulk ingestion, and `copy_node`), and the legacy import
//! against inserting the same vertices through the node.
//! `cargo xtask bench --only-migrate [--quick]`; prints a Markdown table.

use std::sync::Arc;
use std::time::Instant;

use chain_store::synthetic::Synthetic;
use dag_store::generator::DagGenerator;
use node_storage::{
    Backend, Config, MigrateOptions, MigrateProgress, RocksStore, StorageHandle, StoreId, copy_node, import_legacy,
    migrate_node, write_legacy_fixture,
};
use storage_api::iter::RawCursor;
use storage_api::{Direction, Durability, KvFlush, KvRead, KvReader, KvWrite, RawBatch, RawRange, VersionPolicy};

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), ..Config::default() };
    c.metrics.enabled = false;
    c
}

fn open_dag(c: &Config) -> RocksStore {
    RocksStore::open_store_with(c, StoreId::Dag, dag_store::dag_schema(), VersionPolicy::AllowOlder).expect("open dag")
}

/// Every (key, value) of the `vertices` table.
fn vertices(store: &RocksStore) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut cursor = store.cursor("vertices", RawRange::all(), Direction::Forward).expect("cursor");
    let mut out = Vec::new();
    while let Some(e) = cursor.next_entry() {
        let (k, v) = e.expect("read");
        out.push((k.to_vec(), v.to_vec()));
    }
    out
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: usize = if quick { 20_000 } else { 200_000 };
    let work = tempfile::tempdir_in(std::env::var_os("NODE_STORAGE_BENCH_DIR").unwrap_or_else(|| ".".into()))
        .expect("tempdir");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    println!("migration benchmarks (RocksDB, {n} vertices of 300-byte payload){}", if quick { ", quick" } else { "" });
    let node = config(&work.path().join("node"));

    // Baseline: the same vertices inserted through the node.
    let generated = DagGenerator::new(1).generate(n);
    let insert_secs = rt.block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(node.clone()).expect("open");
        let started = Instant::now();
        for chunk in generated.chunks(2_000) {
            for r in h.insert_vertices(chunk.to_vec()).await {
                r.expect("insert");
            }
        }
        let secs = started.elapsed().as_secs_f64();
        h.shutdown().await;
        secs
    });
    drop(generated);

    let (v2_bytes, v1_bytes, rewrite_secs) = {
        let dag = open_dag(&node);
        let v2: u64 = vertices(&dag).iter().map(|(_, v)| v.len() as u64).sum();
        dag_store::migrate::fixture::downgrade_to_v1(&dag).expect("downgrade");
        let entries = vertices(&dag);
        let v1: u64 = entries.iter().map(|(_, v)| v.len() as u64).sum();
        // Baseline: rewriting every v1 value unchanged, in synced batches of 1 000 as the
        // migration does (read + write cost without transform or verification).
        let started = Instant::now();
        for chunk in entries.chunks(1_000) {
            let mut batch = dag.raw_batch();
            for (k, v) in chunk {
                batch.put_raw("vertices", k, v).expect("put");
            }
            dag.write_raw(batch, Durability::Synced).expect("write");
        }
        (v2, v1, started.elapsed().as_secs_f64())
    };

    let quiet: Arc<MigrateProgress> = Arc::new(|_: StoreId, _: u32, _: &str, _: u64| {});
    let run = |dry_run| {
        let options = MigrateOptions { dry_run, backup: None, batch_entries: 1_000 };
        let started = Instant::now();
        rt.block_on(migrate_node::<RocksStore, Synthetic, ()>(&node, options, quiet.clone(), Arc::new(())))
            .expect("migrate");
        started.elapsed().as_secs_f64()
    };
    let dry_secs = run(true);
    let migrate_secs = run(false);

    // The chain steps (v1 → v2 → v3): a synthetic chain written as version 1 wrote it.
    let chain_blocks: usize = if quick { 500 } else { 5_000 };
    {
        let store = RocksStore::open_store_with(
            &node,
            StoreId::Chain,
            chain_store::chain_schema::<Synthetic>(),
            VersionPolicy::Exact,
        )
        .expect("open chain");
        let chain = chain_store::ChainStore::<RocksStore, Synthetic>::new(store)
            .expect("chain")
            .with_insert_durability(Durability::Buffered);
        let mut g = chain_store::generator::ChainGenerator::new(chain_store::generator::GenConfig::default());
        chain.init(&g.next_blocks().remove(0)).expect("genesis");
        for _ in 0..chain_blocks / 50 {
            chain.insert_blocks(&g.generate(50)).expect("insert");
        }
        chain_store::migrate::fixture::downgrade_to_v1(chain).expect("downgrade chain");
    }
    let chain_secs = run(false);

    // Copying the whole node (the DAG and chain stores written above) into a new RocksDB node:
    // write batches vs bulk ingestion (SST files), same source, same run; then `copy_node`
    // end to end (ingest, flush, entry-by-entry verification).
    let copy_with = |ingest: bool, dir: &str| {
        let to = config(&work.path().join(dir));
        let started = Instant::now();
        let mut entries = 0;
        for id in StoreId::ALL {
            let schema = id.schema::<Synthetic>();
            let source = RocksStore::open_store(&node, id, schema.clone()).expect("open source");
            let target = RocksStore::open_store(&to, id, schema).expect("open target");
            let tables: Vec<&str> = source.schema().tables().iter().map(|t| t.name).collect();
            entries += if ingest {
                storage_migrate::ingest_tables(id.name(), &source, &target, &tables, &mut |_| {}).expect("ingest")
            } else {
                storage_migrate::copy_tables(id.name(), &source, &target, &tables, 10_000, &mut |_| {}).expect("copy")
            };
            target.flush().expect("flush");
        }
        (entries, started.elapsed().as_secs_f64())
    };
    let (copy_entries, batch_copy_secs) = copy_with(false, "copy-batches");
    let (_, ingest_copy_secs) = copy_with(true, "copy-ingest");
    let started = Instant::now();
    copy_node::<RocksStore, RocksStore, Synthetic>(&node, &config(&work.path().join("copy-node")), &mut |_, _| {})
        .expect("copy_node");
    let copy_node_secs = started.elapsed().as_secs_f64();

    let legacy = work.path().join("legacy");
    write_legacy_fixture(&legacy, n, n / 2, 0, 1).expect("fixture");
    let imported = config(&work.path().join("imported"));
    let started = Instant::now();
    let report =
        import_legacy::<RocksStore, chain_store::synthetic::Synthetic>(&imported, &legacy, false, &mut |_, _| {})
            .expect("import");
    let import_secs = started.elapsed().as_secs_f64();

    let mib = |bytes: u64, secs: f64| bytes as f64 / (1 << 20) as f64 / secs;
    let rows = [
        (
            "vertices value bytes, v1 → v2".to_owned(),
            format!("{v1_bytes} → {v2_bytes} ({:.1} % smaller)", 100.0 * (1.0 - v2_bytes as f64 / v1_bytes as f64)),
        ),
        (
            "plain rewrite of every v1 value (baseline)".to_owned(),
            format!(
                "{:.2} s, {:.0} vertices/s, {:.0} MiB/s",
                rewrite_secs,
                n as f64 / rewrite_secs,
                mib(v1_bytes, rewrite_secs)
            ),
        ),
        (
            "DAG v1 → v2, dry run (transform + verify in memory)".to_owned(),
            format!("{:.2} s, {:.0} vertices/s", dry_secs, n as f64 / dry_secs),
        ),
        (
            "DAG v1 → v2, real run (transform, synced batches, verify pass, bump)".to_owned(),
            format!(
                "{:.2} s, {:.0} vertices/s, {:.2}× the plain rewrite",
                migrate_secs,
                n as f64 / migrate_secs,
                migrate_secs / rewrite_secs
            ),
        ),
        (
            format!("chain v1 → v3, real run ({chain_blocks} blocks of 100 transactions, both steps)"),
            format!("{:.2} s, {:.0} blocks/s", chain_secs, chain_blocks as f64 / chain_secs),
        ),
        (
            format!("copy the node into a new RocksDB node, write batches ({copy_entries} entries)"),
            format!("{:.2} s, {:.0} entries/s", batch_copy_secs, copy_entries as f64 / batch_copy_secs),
        ),
        (
            "the same copy through bulk ingestion (SST files)".to_owned(),
            format!(
                "{:.2} s, {:.0} entries/s, {:.2}× the batches' time",
                ingest_copy_secs,
                copy_entries as f64 / ingest_copy_secs,
                ingest_copy_secs / batch_copy_secs
            ),
        ),
        (
            "`copy_node` end to end (ingest, flush, verify every entry)".to_owned(),
            format!("{:.2} s, {:.0} entries/s", copy_node_secs, copy_entries as f64 / copy_node_secs),
        ),
        (
            "insert the same vertices through the node (baseline)".to_owned(),
            format!("{:.2} s, {:.0} vertices/s", insert_secs, n as f64 / insert_secs),
        ),
        (
            format!("legacy import, validate + import + verify ({} records)", report.counts.total()),
            format!(
                "{:.2} s, {:.0} vertices/s, {:.2}× the node insert",
                import_secs,
                n as f64 / import_secs,
                import_secs / insert_secs
            ),
        ),
    ];
    println!("| measure | result |\n|---|---|");
    for (what, result) in rows {
        println!("| {what} | {result} |");
    }
}
