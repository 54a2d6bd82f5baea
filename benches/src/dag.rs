//! DAG workloads: vertex ingest (batched and single), tip-set reads, 1,000-vertex ancestor
//! walks — through dag-store on each backend, inserts with buffered durability.

use std::path::Path;
use std::time::{Duration, Instant};

use dag_store::generator::DagGenerator;
use dag_store::{DagStore, Walk, dag_schema};
use storage_api::Durability;

use crate::Rng;
use crate::backends::Compared;
use crate::measure::{Row, Sizes, row, timed};

/// Runs the DAG workloads on backend `B` in a fresh directory under `root`.
pub fn run<B: Compared>(root: &Path, sizes: Sizes) -> Vec<Row> {
    let name = B::NAME;
    let dir = root.join(format!("{name}-dag"));
    std::fs::create_dir_all(&dir).unwrap();
    let dag = DagStore::new(B::open_schema(&dir, dag_schema()).unwrap())
        .unwrap()
        .with_insert_durability(Durability::Buffered);
    let mut generator = DagGenerator::new(17);
    let mut rows = Vec::new();

    eprintln!("[{name}] DAG ingest");
    let mut samples = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < sizes.dag_batched {
        let n = 1000.min(sizes.dag_batched - done);
        let batch = generator.generate(n as usize);
        let t = Instant::now();
        timed(&mut samples, || {
            dag.insert_batch(&batch).unwrap();
        });
        elapsed += t.elapsed();
        done += n;
    }
    let mut r = row(
        "DAG vertex ingest, batches of 1,000, buffered",
        name,
        sizes.dag_batched,
        elapsed,
        &mut samples,
        "vertices",
    );
    r.note = "300-byte payloads, 2–4 parents; latency per batch".into();
    rows.push(r);

    let singles = generator.generate(sizes.dag_single as usize);
    let mut samples = Vec::new();
    let t = Instant::now();
    for (v, sig) in &singles {
        timed(&mut samples, || {
            dag.insert_vertex(v, sig).unwrap();
        });
    }
    let mut r = row(
        "DAG vertex ingest, one per write, buffered",
        name,
        sizes.dag_single,
        t.elapsed(),
        &mut samples,
        "vertices",
    );
    r.note = "300-byte payloads, 2–4 parents".into();
    rows.push(r);

    eprintln!("[{name}] DAG reads");
    let mut samples = Vec::new();
    let t = Instant::now();
    let mut tips = 0;
    for _ in 0..sizes.dag_tip_reads {
        timed(&mut samples, || tips = dag.tips().unwrap().len());
    }
    let mut r = row("DAG tip-set read", name, sizes.dag_tip_reads, t.elapsed(), &mut samples, "reads");
    r.note = format!("{tips} tips");
    rows.push(r);

    let starts: Vec<_> = singles.iter().map(|(v, _)| v.hash).collect();
    let mut rng = Rng::new(23);
    let mut samples = Vec::new();
    let t = Instant::now();
    for _ in 0..sizes.dag_walks {
        let start = starts[rng.below(starts.len() as u64) as usize];
        timed(&mut samples, || assert_eq!(dag.ancestors(&start, Walk::count(1000)).unwrap().len(), 1000));
    }
    let mut r = row("DAG ancestor walk, 1,000 vertices", name, sizes.dag_walks, t.elapsed(), &mut samples, "walks");
    r.note = "breadth-first from a recent vertex".into();
    rows.push(r);
    rows
}
