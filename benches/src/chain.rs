//! Chain workloads through chain-store on each backend: bulk import of synthetic 100-tx blocks
//! with every index (buffered, one synced flush at the end), warm block reads by height, and
//! log filters for one address over a long chain.

use std::path::Path;
use std::time::{Duration, Instant};

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use chain_store::{ChainStore, LogFilter, chain_schema};
use storage_api::{Durability, KvFlush};

use crate::Rng;
use crate::backends::Compared;
use crate::measure::{Row, Sizes, row, timed};

/// Blocks per import batch.
const IMPORT_BATCH: usize = 64;

/// Runs the chain workloads on backend `B` in fresh directories under `root`.
pub fn run<B: Compared>(root: &Path, sizes: Sizes) -> Vec<Row> {
    let name = B::NAME;
    let mut rows = Vec::new();
    let dir = root.join(format!("{name}-chain"));
    std::fs::create_dir_all(&dir).unwrap();
    let chain = open::<B>(&dir);

    eprintln!("[{name}] chain import");
    let mut g = ChainGenerator::new(GenConfig::default());
    let (elapsed, mut samples) = import(&chain, &mut g, sizes.chain_blocks);
    let mut r =
        row("Chain import, 100-tx blocks, every index", name, sizes.chain_blocks, elapsed, &mut samples, "blocks");
    r.note = format!("batches of {IMPORT_BATCH} blocks, buffered, one synced flush at the end; latency per batch");
    rows.push(r);

    eprintln!("[{name}] chain reads");
    let head = chain.head().unwrap().number;
    let mut rng = Rng::new(5);
    let heights: Vec<u64> = (0..sizes.chain_reads).map(|_| 1 + rng.below(head)).collect();
    for &h in heights.iter().take(1000) {
        chain.block_by_number(h).unwrap().unwrap();
    }
    let mut samples = Vec::new();
    let t = Instant::now();
    for h in &heights {
        timed(&mut samples, || assert_eq!(chain.block_by_number(*h).unwrap().unwrap().transactions.len(), 100));
    }
    let mut r = row("Chain block by height, warm", name, sizes.chain_reads, t.elapsed(), &mut samples, "reads");
    r.note = "header and 100 transactions, decoded".into();
    rows.push(r);
    drop(chain);

    eprintln!("[{name}] chain transaction and receipt lookups");
    let dir = root.join(format!("{name}-chain-tx"));
    std::fs::create_dir_all(&dir).unwrap();
    let chain = open::<B>(&dir);
    let mut g = ChainGenerator::new(GenConfig { txs_per_block: 200, seed: 3, ..GenConfig::default() });
    import(&chain, &mut g, sizes.chain_blocks / 4);
    let head = chain.head().unwrap().number;
    let mut rng = Rng::new(9);
    let hashes: Vec<_> = (0..sizes.chain_reads)
        .map(|_| {
            let b = chain.block_by_number(1 + rng.below(head)).unwrap().unwrap();
            b.transactions[rng.below(200) as usize].hash
        })
        .collect();
    for (what, title) in [
        ("transaction", "Chain transaction by hash, warm, 200-tx blocks"),
        ("receipt", "Chain receipt by hash, warm, 200-tx blocks"),
    ] {
        for h in hashes.iter().take(1000) {
            chain.transaction(h).unwrap().unwrap();
        }
        let mut samples = Vec::new();
        let t = Instant::now();
        for h in &hashes {
            if what == "transaction" {
                timed(&mut samples, || assert!(chain.transaction(h).unwrap().is_some()));
            } else {
                timed(&mut samples, || assert!(chain.receipt(h).unwrap().is_some()));
            }
        }
        let mut r = row(title, name, sizes.chain_reads, t.elapsed(), &mut samples, "lookups");
        r.note = "one index read and one point read; one value decoded".into();
        rows.push(r);
    }
    drop(chain);

    eprintln!("[{name}] chain for log filters ({} blocks)", sizes.chain_log_blocks);
    let dir = root.join(format!("{name}-chain-logs"));
    std::fs::create_dir_all(&dir).unwrap();
    let chain = open::<B>(&dir);
    // Small blocks with the same logs per block as the import chain (50), so blooms are as
    // full; the marker contract logs once every 1,000 blocks.
    let mut g = ChainGenerator::new(GenConfig { txs_per_block: 10, logs_per_tx: 5.0, ..GenConfig::default() });
    import(&chain, &mut g, sizes.chain_log_blocks);
    let head = chain.head().unwrap().number;
    let marker = LogFilter::range(0, head).addresses([ChainGenerator::marker_contract()]);
    let expected = chain.logs(&marker, usize::MAX).unwrap().len();
    assert_eq!(expected as u64, head / 1000, "one marker log per 1,000 blocks (genesis has none)");
    let mut samples = Vec::new();
    let t = Instant::now();
    for _ in 0..sizes.chain_log_queries {
        timed(&mut samples, || assert_eq!(chain.logs(&marker, 10_000).unwrap().len(), expected));
    }
    let mut r = row(
        "Log filter, one address, whole chain",
        name,
        sizes.chain_log_queries,
        t.elapsed(),
        &mut samples,
        "queries",
    );
    r.note = format!("{head} blocks, {expected} matching logs, bloom-bit sections of 4,096 blocks");
    rows.push(r);
    // A busier contract: the rarest of the skewed pool still logs in many blocks.
    let busy = LogFilter::range(head.saturating_sub(10_000), head).addresses([ChainGenerator::contract(499)]);
    let found = chain.logs(&busy, usize::MAX).unwrap().len();
    let mut samples = Vec::new();
    let t = Instant::now();
    for _ in 0..sizes.chain_log_queries {
        timed(&mut samples, || assert_eq!(chain.logs(&busy, usize::MAX).unwrap().len(), found));
    }
    let mut r = row(
        "Log filter, one busier address, last 10,000 blocks",
        name,
        sizes.chain_log_queries,
        t.elapsed(),
        &mut samples,
        "queries",
    );
    r.note = format!("{found} matching logs");
    rows.push(r);
    rows
}

fn open<B: Compared>(dir: &Path) -> ChainStore<B::Store, Synthetic> {
    ChainStore::new(B::open_schema(dir, chain_schema::<Synthetic>()).unwrap())
        .unwrap()
        .with_insert_durability(Durability::Buffered)
}

/// Imports genesis and `n` blocks; returns the time (including the final flush) and the
/// per-batch latencies. Blocks are generated outside the timed section.
fn import<S: storage_api::KvStore + KvFlush>(
    chain: &ChainStore<S, Synthetic>,
    g: &mut ChainGenerator,
    n: u64,
) -> (Duration, Vec<u64>) {
    chain.init(&g.next_blocks().remove(0)).unwrap();
    let mut samples = Vec::new();
    let mut elapsed = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let count = (IMPORT_BATCH as u64).min(n - done);
        let batch = g.generate(count as usize);
        let t = Instant::now();
        timed(&mut samples, || {
            chain.insert_blocks(&batch).unwrap();
        });
        elapsed += t.elapsed();
        done += count;
    }
    let t = Instant::now();
    chain.store().flush().unwrap();
    (elapsed + t.elapsed(), samples)
}
