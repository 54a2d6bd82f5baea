//! Power cuts under a running node, on the fault-injecting FUSE file system (`fault-fs`).
//!
//! A child process writes through `StorageHandle` — chain blocks with finality, lone DAG
//! vertices from concurrent submitters, and a finalized vertex chain — printing each
//! acknowledgement. The driver cuts the power at a random moment (every write not made durable
//! by an `fsync` is lost, sometimes with a torn last write), kills the child, remounts, reopens
//! and checks: every acknowledged write present, each submitter's writes a prefix of what it
//! submitted (no holes), the integrity check clean, and the open itself never failing.
//!
//! A new node every 50 cycles keeps the cycles of a long run the same size.
//! `NODE_STORAGE_POWERCUT_CYCLES` cycles per engine (default 20; `cargo xtask powercut
//! --cycles N` runs more). Skipped, saying why, where FUSE cannot mount.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chain_store::generator::{ChainGenerator, GenConfig, SplitMix};
use chain_store::synthetic::Synthetic;
use chain_store::{BlockHeader, NewBlock};
use dag_store::{Vertex, VertexBuilder, VertexHash};
use fault_fs::Cut;
use node_storage::{Backend, Config, RedbStore, RocksStore, StorageHandle};

const SUBMITTERS: u64 = 4;

/// Cycles per node: after this many the loop starts a new node (and deletes the old one), so a
/// long run's cycles stay the same size — each reopen checks the whole node.
const CYCLES_PER_NODE: u64 = 50;

fn config<B: Backend>(dir: &Path) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), backend: B::KIND, ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    // Small memtables: flushes and compactions happen within a cycle, under the cut too.
    c.engine.write_buffer_bytes = 1 << 20;
    c
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn chain() -> ChainGenerator {
    ChainGenerator::new(GenConfig { txs_per_block: 4, accounts: 16, fork_probability: 0.0, ..GenConfig::default() })
}

/// Submitter `w`'s `i`th lone vertex of cycle `cycle`.
fn lone(cycle: u64, w: u64, i: u64) -> Vertex {
    VertexBuilder::new(format!("submitter-{w}"))
        .id(format!("c{cycle}-w{w}-{i}"))
        .payload(vec![w as u8; 200])
        .timestamp(i)
        .build()
}

/// The `k`th vertex of the finalized chain (whose parent is the `k-1`th).
fn finalized_link(k: u64, parent: Option<VertexHash>) -> Vertex {
    VertexBuilder::new("finalizer").id(format!("f{k}")).parents(parent.into_iter().collect()).timestamp(k).build()
}

/// The child: writes until killed. Resumes the chain and the finalized vertex chain from
/// what the store holds.
#[test]
#[ignore = "run by the power-cut tests as a child process"]
fn powercut_child() {
    let (Ok(dir), Ok(cycle)) = (std::env::var("POWERCUT_DIR"), std::env::var("POWERCUT_CYCLE")) else { return };
    let cycle: u64 = cycle.parse().unwrap();
    match std::env::var("POWERCUT_ENGINE").as_deref() {
        Ok("redb") => write_until_cut::<RedbStore>(Path::new(&dir), cycle),
        _ => write_until_cut::<RocksStore>(Path::new(&dir), cycle),
    }
}

fn write_until_cut<B: Backend>(dir: &Path, cycle: u64) {
    rt().block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(config::<B>(dir)).expect("open");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        // The chain: regenerate what is stored (the generator is deterministic), go on.
        {
            let (h, tx) = (h.clone(), tx.clone());
            tokio::spawn(async move {
                let mut g = chain();
                let head = h.pointers().head;
                let mut last: NewBlock<Synthetic> = g.child(None);
                match head {
                    None => {
                        h.init_chain(last.clone()).await.expect("init");
                        let _ = tx.send(format!("B 0 {}", last.block.hash()));
                    }
                    Some(head) => {
                        while last.block.header.number() < head.number {
                            last = g.child(Some(&last.block.header));
                        }
                        assert_eq!(last.block.hash(), head.hash, "the regenerated chain matches the stored head");
                    }
                }
                let mut recent = vec![last.block.hash()];
                loop {
                    let b = g.child(Some(&last.block.header));
                    let n = b.block.header.number();
                    h.insert_block(b.clone()).await.expect("insert block");
                    let _ = tx.send(format!("B {n} {}", b.block.hash()));
                    recent.push(b.block.hash());
                    if n.is_multiple_of(4) && recent.len() > 3 {
                        let fin = recent[recent.len() - 3];
                        h.set_finalized(fin).await.expect("finalize block");
                        let _ = tx.send(format!("CF {} {fin}", n - 2));
                    }
                    last = b;
                }
            });
        }
        // Concurrent submitters of lone vertices.
        for w in 0..SUBMITTERS {
            let (h, tx) = (h.clone(), tx.clone());
            tokio::spawn(async move {
                for i in 0.. {
                    let v = lone(cycle, w, i);
                    let hash = v.hash;
                    h.insert_vertex(v, vec![7; 64]).await.expect("insert vertex");
                    let _ = tx.send(format!("V {w} {i} {hash}"));
                }
            });
        }
        // The finalized vertex chain: insert the next link, finalize it.
        {
            let (h, tx) = (h.clone(), tx.clone());
            tokio::spawn(async move {
                let mut seq = h.next_finalization_sequence().await.expect("sequence");
                let mut parent = match seq {
                    0 => None,
                    _ => Some(h.last_finalized_vertex().await.expect("last").expect("finalized").1),
                };
                loop {
                    let v = finalized_link(seq, parent);
                    let hash = v.hash;
                    h.insert_vertex(v, vec![]).await.expect("insert link");
                    h.finalize_vertex(hash, seq).await.expect("finalize vertex");
                    let _ = tx.send(format!("DF {seq} {hash}"));
                    parent = Some(hash);
                    seq += 1;
                }
            });
        }
        println!("READY");
        while let Some(line) = rx.recv().await {
            println!("{line}");
        }
    });
}

/// What the child acknowledged in one cycle.
#[derive(Default)]
struct Acks {
    blocks: BTreeMap<u64, String>,
    chain_finalized: Option<u64>,
    vertices: BTreeMap<u64, Vec<(u64, String)>>,
    dag_finalized: Option<(u64, String)>,
}

fn parse(lines: &[String]) -> Acks {
    let mut acks = Acks::default();
    for line in lines {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["B", n, hash] => {
                acks.blocks.insert(n.parse().unwrap(), hash.to_string());
            }
            ["CF", n, _] => acks.chain_finalized = Some(n.parse().unwrap()),
            ["V", w, i, hash] => {
                acks.vertices.entry(w.parse().unwrap()).or_default().push((i.parse().unwrap(), hash.to_string()))
            }
            ["DF", seq, hash] => acks.dag_finalized = Some((seq.parse().unwrap(), hash.to_string())),
            _ => {}
        }
    }
    acks
}

/// Totals over the cycles of one engine.
#[derive(Default, Debug)]
struct Totals {
    acked: u64,
    unacked_but_kept: u64,
    torn_cuts: u64,
    bytes_discarded: u64,
    entries_dropped: u64,
}

/// Reopens after a cut and checks everything acknowledged is there, with no holes.
fn verify<B: Backend>(dir: &Path, cycle: u64, acks: &Acks, totals: &mut Totals) {
    rt().block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(config::<B>(dir))
            .unwrap_or_else(|e| panic!("{} cycle {cycle}: the open after a power cut failed: {e}", B::KIND));
        let (chain, dag) = h.check().await.unwrap();
        assert!(chain.is_ok(), "{} cycle {cycle}: chain check: {chain:?}", B::KIND);
        assert!(dag.is_ok(), "{} cycle {cycle}: DAG check: {dag:?}", B::KIND);
        let p = h.pointers();
        let head = p.head.map_or(0, |h| h.number);
        for (n, hash) in &acks.blocks {
            let got = h.block_by_number(*n).await.unwrap().map(|b| b.hash().to_string());
            assert_eq!(got.as_ref(), Some(hash), "{} cycle {cycle}: acknowledged block {n} lost", B::KIND);
        }
        totals.acked += acks.blocks.len() as u64;
        if let Some(&max) = acks.blocks.keys().last() {
            assert!(head >= max, "{} cycle {cycle}: head {head} below acknowledged block {max}", B::KIND);
            totals.unacked_but_kept += head - max;
        }
        for n in 0..=head {
            assert!(h.block_by_number(n).await.unwrap().is_some(), "{} cycle {cycle}: hole at block {n}", B::KIND);
        }
        if let Some(f) = acks.chain_finalized {
            let got = p.finalized.map(|b| b.number);
            assert!(got >= Some(f), "{} cycle {cycle}: finalized {got:?} below acknowledged {f}", B::KIND);
        }
        for w in 0..SUBMITTERS {
            let acked = acks.vertices.get(&w).map_or(&[][..], Vec::as_slice);
            for (i, hash) in acked {
                let present = h.vertex(lone(cycle, w, *i).hash).await.unwrap().is_some();
                assert!(present, "{} cycle {cycle}: acknowledged vertex {w}/{i} {hash} lost", B::KIND);
            }
            totals.acked += acked.len() as u64;
            // A prefix: after the first missing vertex, none of the next ones exists.
            let mut i = acked.len() as u64;
            while h.vertex(lone(cycle, w, i).hash).await.unwrap().is_some() {
                i += 1;
            }
            totals.unacked_but_kept += i - acked.len() as u64;
            for j in i + 1..i + 32 {
                let hole = h.vertex(lone(cycle, w, j).hash).await.unwrap().is_some();
                assert!(!hole, "{} cycle {cycle}: submitter {w}: vertex {j} stored but {i} missing", B::KIND);
            }
        }
        let last = h.last_finalized_vertex().await.unwrap();
        if let Some((seq, hash)) = &acks.dag_finalized {
            let got = last.as_ref().map(|(s, _)| *s);
            assert!(
                got >= Some(*seq),
                "{} cycle {cycle}: DAG finalized {got:?} below acknowledged {seq} {hash}",
                B::KIND
            );
            totals.acked += seq + 1;
        }
        h.shutdown().await;
    });
}

fn powercut_cycles<B: Backend>() {
    let Some(mut fs) = fault_fs::mount_or_skip(&format!("power cuts on {}", B::KIND)) else { return };
    let cycles: u64 = std::env::var("NODE_STORAGE_POWERCUT_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let mut rng = SplitMix::new(0x5eed ^ cycles);
    let mut totals = Totals::default();
    for cycle in 0..cycles {
        let dir: PathBuf = fs.path().join(format!("node-{}", cycle / CYCLES_PER_NODE));
        if cycle % CYCLES_PER_NODE == 0 && cycle > 0 {
            std::fs::remove_dir_all(fs.path().join(format!("node-{}", cycle / CYCLES_PER_NODE - 1))).unwrap();
        }
        let wait = Duration::from_millis(30 + rng.below(400));
        let cut = Cut { tear: cycle % 2 == 1, seed: rng.next_u64() };
        let (cycle_arg, engine) = (cycle.to_string(), B::KIND.to_string());
        let env: [(&str, &OsStr); 4] = [
            ("POWERCUT_DIR", dir.as_os_str()),
            ("POWERCUT_CYCLE", OsStr::new(&cycle_arg)),
            ("POWERCUT_ENGINE", OsStr::new(&engine)),
            ("RUST_LOG", OsStr::new("off")),
        ];
        let killed = engine_test::child::run_and_cut("powercut_child", &env, "READY", wait, || fs.power_off());
        assert!(killed.was_running, "cycle {cycle}: the child stopped before the cut: {:?}", killed.lines);
        let report = fs.power_on(cut).unwrap_or_else(|e| panic!("cycle {cycle}: {e}"));
        totals.torn_cuts += u64::from(report.torn_bytes_kept > 0);
        totals.bytes_discarded += report.bytes_discarded;
        totals.entries_dropped += report.entries_dropped;
        let acks = parse(&killed.lines);
        verify::<B>(&dir, cycle, &acks, &mut totals);
    }
    println!(
        "{}: {cycles} power cuts, {} acknowledged writes all present, 0 failed opens; {} unacknowledged writes kept; \
         {} torn cuts; {} unsynced bytes and {} unsynced names discarded",
        B::KIND,
        totals.acked,
        totals.unacked_but_kept,
        totals.torn_cuts,
        totals.bytes_discarded,
        totals.entries_dropped
    );
}

#[test]
fn power_cuts_lose_nothing_acknowledged_rocksdb() {
    powercut_cycles::<RocksStore>();
}

#[test]
fn power_cuts_lose_nothing_acknowledged_redb() {
    powercut_cycles::<RedbStore>();
}
