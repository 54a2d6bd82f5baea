//! The history tier under a running node, on real servers (the Bigtable emulator and the
//! s3s-fs S3 server, on loopback): a node keeping 1,000 blocks serves every block,
//! transaction, receipt, log and vertex of a 20,000-block chain through the archive; pruning
//! stops at the archive's watermark; an archive outage is `Unavailable`, never "not found", and
//! uploads resume after it; a SIGKILL mid-upload resumes without a gap or a duplicate.

use std::ffi::OsStr;
use std::time::{Duration, Instant};

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::{Address, Synthetic};
use chain_store::{LogFilter, NewBlock, Receipt, Transaction};
use dag_store::{Vertex, VertexBuilder};
use node_storage::history_tier::{HistoryConfig, TierKind};
use node_storage::{Config, RocksStore, StorageError, StorageHandle};
use storage_history::testkit::{Emulator, Proxy, config_at};

type Handle = StorageHandle<RocksStore, Synthetic>;

const BLOCKS: usize = 20_000;
const VERTICES: u64 = 2_000;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

fn node_config(dir: &std::path::Path, history: HistoryConfig) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), history, ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 4 << 20;
    c.retention.prune_interval_s = 0; // the tests prune when they choose
    c
}

fn chain(n: usize, seed: u64) -> Vec<NewBlock<Synthetic>> {
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 3,
        accounts: 500,
        contracts: 40,
        logs_per_tx: 1.0,
        input_bytes: 8,
        fork_probability: 0.0,
        marker_every: 100,
        seed,
    });
    g.generate(n)
}

fn dag(n: u64) -> Vec<Vertex> {
    let mut out: Vec<Vertex> = Vec::new();
    for i in 0..n {
        let parents = out.last().map(|p| vec![p.hash]).unwrap_or_default();
        out.push(
            VertexBuilder::new("a")
                .id(format!("v{i}"))
                .parents(parents)
                .payload(vec![i as u8; 20])
                .timestamp(i)
                .build(),
        );
    }
    out
}

/// Stores `blocks` and `vertices`, finalizing everything but the last 5 blocks.
async fn fill(h: &Handle, blocks: &[NewBlock<Synthetic>], vertices: &[Vertex]) {
    h.init_chain(blocks[0].clone()).await.unwrap();
    for chunk in blocks[1..].chunks(1_000) {
        for r in h.insert_blocks(chunk.to_vec()).await {
            r.unwrap();
        }
        let head = h.pointers().head.unwrap();
        let final_at = head.number.saturating_sub(5) as usize;
        h.set_finalized(blocks[final_at].block.hash()).await.unwrap();
    }
    for r in h.insert_vertices(vertices.iter().map(|v| (v.clone(), vec![7; 8])).collect()).await {
        r.unwrap();
    }
    for (seq, v) in vertices.iter().enumerate() {
        h.finalize_vertex(v.hash, seq as u64).await.unwrap();
    }
}

/// Waits until the background uploader has archived everything final but what waits for a
/// whole unit (`unit` items).
async fn uploaded(h: &Handle, chain_unit: u64, dag_unit: u64) -> node_storage::ArchiveStatus {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = match h.archive_status().await {
            Ok(s) => s,
            // An archive just back from an outage may take a moment to answer again.
            Err(e) if is_unavailable(&e) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            Err(e) => panic!("{e}"),
        };
        if s.chain_lag().unwrap_or(0) < chain_unit && s.dag_lag().unwrap_or(0) < dag_unit {
            return s;
        }
        assert!(Instant::now() < deadline, "uploads did not catch up: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every block, transaction, receipt, log and vertex, through the node.
async fn serves_everything(h: &Handle, blocks: &[NewBlock<Synthetic>], vertices: &[Vertex]) {
    let mut tasks = tokio::task::JoinSet::new();
    // Many readers at once, as RPC traffic would be (the archive answers them concurrently).
    for chunk in blocks.chunks(blocks.len().div_ceil(64)) {
        let (h, chunk) = (h.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for b in chunk {
                let n = b.block.number();
                let got = h.block_by_number(n).await.unwrap().unwrap_or_else(|| panic!("block {n}"));
                assert_eq!(got.hash(), b.block.hash(), "block {n}");
                assert_eq!(got.transactions, b.block.transactions, "block {n}");
                for (i, tx) in b.block.transactions.iter().enumerate() {
                    let (t, at) = h.transaction(tx.hash()).await.unwrap().unwrap();
                    assert_eq!((&t, at.number, at.index), (tx, n, i as u32));
                    let (r, _) = h.receipt(tx.hash()).await.unwrap().unwrap();
                    assert_eq!(r, b.receipts[i], "receipt {i} of block {n}");
                }
                assert_eq!(*h.receipts(b.block.hash()).await.unwrap().unwrap(), b.receipts);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    // Logs: the marker contract over the whole chain, and a busy contract across the boundary.
    let marker = ChainGenerator::marker_contract();
    let expected = |address: Address, from: u64, to: u64| -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for b in &blocks[from as usize..=to as usize] {
            let mut log_index = 0;
            for r in &b.receipts {
                for l in r.logs() {
                    if l.address == address {
                        out.push((b.block.number(), log_index));
                    }
                    log_index += 1;
                }
            }
        }
        out
    };
    let last = blocks.len() as u64 - 1;
    let t = Instant::now();
    let got = h.logs(LogFilter::range(0, last).addresses([marker]), 10_000).await.unwrap();
    eprintln!("marker logs over {} blocks: {:?}", last + 1, t.elapsed());
    let got: Vec<(u64, u32)> = got.iter().map(|m| (m.block_number, m.log_index)).collect();
    assert_eq!(got, expected(marker, 0, last));
    assert_eq!(got.len(), BLOCKS / 100 - 1, "every 100th block but genesis, which has no transactions");
    let busy = ChainGenerator::contract(0);
    let pruned_below = h.pointers().pruned_below;
    let (from, to) = (pruned_below - 5_000, (pruned_below + 500).min(last));
    let t = Instant::now();
    let got = h.logs(LogFilter::range(from, to).addresses([busy]), 100_000).await.unwrap();
    eprintln!("busy-contract logs over {} blocks: {:?}", to - from + 1, t.elapsed());
    let got: Vec<(u64, u32)> = got.iter().map(|m| (m.block_number, m.log_index)).collect();
    assert_eq!(got, expected(busy, from, to));
    assert!(!got.is_empty());
    // Everything at once: every log of an archived range, unfiltered.
    let all = h.logs(LogFilter::range(100, 199), 100_000).await.unwrap();
    let count: usize = blocks[100..200].iter().flat_map(|b| &b.receipts).map(|r| r.logs().len()).sum();
    assert_eq!(all.len(), count);
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in vertices.chunks(vertices.len().div_ceil(64)) {
        let (h, chunk) = (h.clone(), chunk.to_vec());
        tasks.spawn(async move {
            for v in chunk {
                let got = h.vertex(v.hash).await.unwrap().unwrap_or_else(|| panic!("vertex {}", v.id));
                assert_eq!(got.vertex, v);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
}

/// The whole story on one archive: fill, upload, prune to 1,000 blocks, serve everything.
fn serves_pruned_history(history: HistoryConfig, chain_unit: u64, dag_unit: u64) {
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(BLOCKS, 7);
    let vertices = dag(VERTICES);
    rt().block_on(async {
        let started = Instant::now();
        let h = Handle::open(node_config(dir.path(), history)).unwrap();
        fill(&h, &blocks, &vertices).await;
        eprintln!("filled in {:?}", started.elapsed());
        let status = uploaded(&h, chain_unit, dag_unit).await;
        eprintln!("uploaded after {:?}", started.elapsed());
        let archived = status.chain.clone().unwrap().next;
        assert!(archived + chain_unit > BLOCKS as u64 - 5, "{status:?}");
        let r = h.prune_chain(1_000).await.unwrap();
        let wanted = BLOCKS as u64 - 1_000;
        assert_eq!(r.pruned_below, wanted.min(archived), "{r:?} with the archive at {archived}");
        assert_eq!(r.limited_by_archive, archived < wanted);
        // The DAG: pruned up to what is archived.
        let d = h.prune_dag(VERTICES).await.unwrap();
        assert_eq!(d.pruned_below, status.dag.clone().unwrap().next, "vertex heights equal their sequences");
        // Nothing the archive lacks was pruned; everything is served.
        serves_everything(&h, &blocks, &vertices).await;
        eprintln!("served everything after {:?}", started.elapsed());
        let m = h.metrics().render();
        assert!(m.contains("node_storage_archive_watermark{history=\"chain\"}"), "{m}");
        let report = h.verify_archive().await.unwrap();
        assert!(report.is_ok(), "{:?}", report.tier.problems);
        assert_eq!(report.blocks, archived);
        assert_eq!(report.vertices, status.dag.unwrap().next);
        h.shutdown().await;
    });
}

#[test]
fn node_keeping_1000_blocks_serves_20000_through_bigtable() {
    let Some(emulator) = Emulator::start_or_skip("node_keeping_1000_blocks_serves_20000_through_bigtable") else {
        return;
    };
    let mut history = emulator.config("serve-");
    history.bigtable_batch_blocks = 2_000;
    history.bigtable_batch_vertices = 500;
    serves_pruned_history(history, 1, 1);
}

fn s3_history(server: &storage_backup::testkit::S3Server, prefix: &str) -> HistoryConfig {
    let s3 = server.config(prefix);
    let mut h = HistoryConfig {
        kind: Some(TierKind::Segments),
        upload_interval_ms: 50,
        max_backoff_ms: 200,
        ..HistoryConfig::default()
    };
    h.timeout_ms = 5_000;
    h.segments.destination = s3.destination;
    h.segments.endpoint = s3.endpoint;
    h.segments.region = s3.region;
    h.segments.allow_http = true;
    h.segments.credentials = s3.credentials;
    h.segments.max_retries = 1;
    // Small segments: the test server (s3s-fs) hashes a whole object for every ranged read.
    h.segments.blocks_per_segment = 128;
    h.segments.vertices_per_segment = 256;
    h
}

#[test]
fn node_keeping_1000_blocks_serves_20000_through_s3_segments() {
    let server = storage_backup::testkit::S3Server::start();
    serves_pruned_history(s3_history(&server, "serve"), 128, 256);
}

fn is_unavailable(e: &StorageError) -> bool {
    matches!(e, StorageError::History(h) if h.is_unavailable())
}

#[test]
fn archive_outage_is_unavailable_and_uploads_resume() {
    let Some(emulator) = Emulator::start_or_skip("archive_outage_is_unavailable_and_uploads_resume") else { return };
    let proxy = Proxy::start(emulator.addr());
    let mut history = config_at(&proxy.addr().to_string(), "outage-");
    history.timeout_ms = 2_000;
    history.bigtable_batch_blocks = 100;
    let dir = tempfile::tempdir().unwrap();
    let blocks = chain(1_200, 3);
    rt().block_on(async {
        let h = Handle::open(node_config(dir.path(), history)).unwrap();
        fill(&h, &blocks[..600], &[]).await;
        let before = uploaded(&h, 1, 1).await.chain.unwrap().next;
        assert_eq!(before, 595);
        h.prune_chain(100).await.unwrap();
        assert_eq!(h.pointers().pruned_below, 500);
        proxy.cut();
        // A pruned block: the archive is down, so the read fails — it does not say "no block".
        let e = h.block_by_number(10).await.unwrap_err();
        assert!(is_unavailable(&e), "{e}");
        let tx = blocks[10].block.transactions[0].hash();
        assert!(is_unavailable(&h.transaction(tx).await.unwrap_err()));
        assert!(is_unavailable(&h.logs(LogFilter::range(0, 599), 10_000).await.unwrap_err()));
        // The node keeps working: more blocks, finalized, but nothing uploaded or pruned past
        // the old watermark.
        for r in h.insert_blocks(blocks[600..].to_vec()).await {
            r.unwrap();
        }
        h.set_finalized(blocks[1_150].block.hash()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let r = h.prune_chain(100).await.unwrap();
        assert_eq!(r.pruned_below, before, "pruned only what the archive holds");
        assert!(r.limited_by_archive);
        let m = h.metrics().render_json();
        let failures = m["node_storage_archive_upload_failures_total"]["samples"][0]["value"].as_f64().unwrap_or(0.0);
        assert!(failures >= 1.0, "{m}");
        assert!(h.health().detail["archive_error"].is_string());
        proxy.restore();
        let s = uploaded(&h, 1, 1).await;
        assert_eq!(s.chain.unwrap().next, 1_151, "resumed at the watermark, without a gap");
        assert_eq!(h.block_by_number(10).await.unwrap().unwrap().hash(), blocks[10].block.hash());
        let report = h.verify_archive().await.unwrap();
        assert!(report.is_ok(), "{:?}", report.tier.problems);
        assert_eq!(report.blocks, 1_151);
        h.shutdown().await;
    });
}

#[test]
fn an_archive_of_another_chain_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let mut history =
        HistoryConfig { kind: Some(TierKind::Segments), upload_interval_ms: 50, ..HistoryConfig::default() };
    history.segments.destination = archive.path().display().to_string();
    history.segments.blocks_per_segment = 64;
    rt().block_on(async {
        let h = Handle::open(node_config(dir.path(), history.clone())).unwrap();
        fill(&h, &chain(200, 1), &[]).await;
        uploaded(&h, 64, 1).await;
        h.shutdown().await;
    });
    let other = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let h = Handle::open(node_config(other.path(), history)).unwrap();
        fill(&h, &chain(300, 2), &[]).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        let e = loop {
            match h.archive_upload().await {
                Err(e) => break e,
                Ok(_) => assert!(Instant::now() < deadline, "another chain's archive was accepted"),
            }
        };
        assert!(matches!(e, StorageError::ArchiveMismatch { .. }), "{e}");
        assert_eq!(h.prune_chain(10).await.unwrap().pruned_below, 0, "nothing of this chain is archived");
        h.shutdown().await;
    });
}

/// A segment archive in a local directory, 64 blocks and 64 vertices per segment.
fn local_segments(dir: &std::path::Path) -> HistoryConfig {
    let mut history =
        HistoryConfig { kind: Some(TierKind::Segments), upload_interval_ms: 50, ..HistoryConfig::default() };
    history.segments.destination = dir.display().to_string();
    history.segments.blocks_per_segment = 64;
    history.segments.vertices_per_segment = 64;
    history
}

/// `n` vertices in a line, by `creator` (another creator: another DAG).
fn dag_of(creator: &str, n: u64) -> Vec<Vertex> {
    let mut out: Vec<Vertex> = Vec::new();
    for i in 0..n {
        let parents = out.last().map(|p| vec![p.hash]).unwrap_or_default();
        out.push(VertexBuilder::new(creator).id(format!("v{i}")).parents(parents).timestamp(i).build());
    }
    out
}

/// An archive that starts above the lowest height a node still holds does not hold what lies
/// below its start: pruning deletes everything below its boundary, so it stays where it is
/// (chain: a node that pruned to 100 before it had an archive started it at 100; DAG: an
/// archive whose finalized sequence starts at 100, written straight through the tier, since
/// this node's uploader always starts at 0).
#[test]
fn pruning_stays_above_what_the_archive_never_held() {
    let (a, b, archive) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let history = local_segments(archive.path());
    let blocks = chain(300, 3);
    let vertices = dag_of("a", 300);
    rt().block_on(async {
        // Node A prunes to 100 with no archive, then gets one: it uploads from 100.
        let h = Handle::open(node_config(a.path(), HistoryConfig::default())).unwrap();
        fill(&h, &blocks, &[]).await;
        assert_eq!(h.prune_chain(200).await.unwrap().pruned_below, 100);
        h.shutdown().await;
        drop(h);
        let h = Handle::open(node_config(a.path(), history.clone())).unwrap();
        let status = uploaded(&h, 64, 1).await;
        assert_eq!(status.chain.as_ref().map(|m| (m.first, m.next)), Some((100, 256)), "{status:?}");
        h.shutdown().await;
    });
    // The DAG archive: finalized sequences 100..=255 of the same vertices.
    let reference = dag_store::DagStore::new(storage_api::mem::MemStore::new(dag_store::dag_schema())).unwrap();
    let signed: Vec<(Vertex, Vec<u8>)> = vertices.iter().map(|v| (v.clone(), vec![7; 8])).collect();
    reference.insert_batch(&signed).unwrap();
    for (seq, v) in vertices.iter().enumerate() {
        reference.mark_finalized(&v.hash, seq as u64).unwrap();
    }
    let tier = storage_history::Archive::open(&history).unwrap().unwrap();
    for unit in [100u64..128, 128..192, 192..256] {
        let items: Vec<storage_history::DagItem> = unit
            .map(|seq| {
                let (hash, record) = reference.archive_vertex(seq).unwrap().unwrap();
                storage_history::DagItem { sequence: seq, hash: hash.0.to_vec(), record }
            })
            .collect();
        storage_history::HistoryTier::upload_dag(&tier, &items).unwrap();
    }
    drop(tier);
    // Node B holds all of 0..300 and shares the archive: its prunes hold at 0.
    rt().block_on(async {
        let mut config = node_config(b.path(), history);
        config.history.upload = false;
        let h = Handle::open(config).unwrap();
        fill(&h, &blocks, &vertices).await;
        let report = h.prune_chain(10).await.unwrap();
        assert_eq!(report.pruned_below, 0, "blocks 0..100 are in no archive: {report:?}");
        assert!(report.limited_by_archive, "{report:?}");
        assert!(h.block_by_number(50).await.unwrap().is_some());
        let report = h.prune_dag(290).await.unwrap();
        assert_eq!(report.pruned_below, 0, "vertices 0..100 are in no archive: {report:?}");
        assert!(h.vertex(vertices[50].hash).await.unwrap().is_some());
        h.shutdown().await;
    });
}

/// An archive that runs ahead of a node is checked at the highest height both hold (the
/// node's head), not skipped: another chain's archive is refused and nothing is pruned; the
/// same chain's archive is trusted up to the node's head.
#[test]
fn an_archive_ahead_of_the_node_is_checked_at_its_head() {
    let (a, other, lagging, archive) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let history = local_segments(archive.path());
    let (blocks, vertices) = (chain(400, 4), dag_of("a", 400));
    rt().block_on(async {
        let h = Handle::open(node_config(a.path(), history.clone())).unwrap();
        fill(&h, &blocks, &vertices).await;
        let status = uploaded(&h, 64, 64).await;
        assert_eq!(status.chain.as_ref().map(|m| m.next), Some(384), "{status:?}");
        assert_eq!(status.dag.as_ref().map(|m| m.next), Some(384), "{status:?}");
        h.shutdown().await;
    });
    let mut follower = history.clone();
    follower.upload = false;
    // A new node of another chain and DAG, 50 blocks and vertices: below the archive's end.
    rt().block_on(async {
        let h = Handle::open(node_config(other.path(), follower.clone())).unwrap();
        fill(&h, &chain(50, 5), &dag_of("b", 50)).await;
        let report = h.prune_chain(10).await.unwrap();
        assert_eq!(report.pruned_below, 0, "{report:?}");
        assert_eq!(h.prune_dag(40).await.unwrap().pruned_below, 0);
        let mut config = node_config(other.path(), history.clone());
        config.history.upload = true;
        h.shutdown().await;
        drop(h);
        let h = Handle::open(config).unwrap();
        let e = h.archive_upload().await.unwrap_err();
        assert!(matches!(e, StorageError::ArchiveMismatch { .. }), "{e}");
        h.shutdown().await;
    });
    // A lagging node of the same chain (100 blocks, 100 vertices): trusted up to its head.
    rt().block_on(async {
        let h = Handle::open(node_config(lagging.path(), follower)).unwrap();
        fill(&h, &blocks[..100], &vertices[..100]).await;
        let report = h.prune_chain(10).await.unwrap();
        assert_eq!(report.pruned_below, 90, "{report:?}");
        let report = h.prune_dag(60).await.unwrap();
        assert_eq!(report.pruned_below, 60, "{report:?}");
        h.shutdown().await;
    });
}

/// The child half of the SIGKILL test: a node uploading to segments in `HISTORY_KILL_ARCHIVE`
/// while it stores `HISTORY_KILL_BLOCKS` more blocks, printing each upload it sees.
#[test]
#[ignore = "run by history_upload_survives_sigkill as a child process"]
fn history_kill_child() {
    let dir = std::env::var_os("HISTORY_KILL_DIR").expect("HISTORY_KILL_DIR");
    let archive = std::env::var("HISTORY_KILL_ARCHIVE").expect("HISTORY_KILL_ARCHIVE");
    let mut history =
        HistoryConfig { kind: Some(TierKind::Segments), upload_interval_ms: 20, ..HistoryConfig::default() };
    history.segments.destination = archive;
    history.segments.blocks_per_segment = 32;
    history.segments.vertices_per_segment = 16;
    let blocks = chain(3_000, 11);
    let vertices = dag(400);
    rt().block_on(async {
        let h = Handle::open(node_config(std::path::Path::new(&dir), history)).unwrap();
        let have = h.pointers().head.map_or(0, |b| b.number as usize + 1);
        if have == 0 {
            fill(&h, &blocks, &vertices).await;
        }
        println!("ready");
        loop {
            let s = h.archive_status().await.unwrap();
            println!("archived {}", s.chain.map_or(0, |m| m.next));
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
    });
}

#[test]
fn history_upload_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let archive = tempfile::tempdir().unwrap();
    let blocks = chain(3_000, 11);
    let vertices = dag(400);
    let env = [("HISTORY_KILL_DIR", dir.path().as_os_str()), ("HISTORY_KILL_ARCHIVE", archive.path().as_os_str())];
    let mut seen = Vec::new();
    for cycle in 0..4u64 {
        // Kill at a different moment each time: after the child reported some uploads.
        let wanted = 2 + cycle * 3;
        let mut reports = 0;
        let killed = engine_test::child::run_and_kill(
            "history_kill_child",
            &env as &[(&str, &OsStr)],
            Duration::from_millis(7 * cycle),
            |line| {
                if line.starts_with("archived") {
                    reports += 1;
                }
                reports >= wanted
            },
        );
        seen.extend(killed.lines.iter().filter_map(|l| l.strip_prefix("archived ")?.parse::<u64>().ok()));
    }
    assert!(seen.iter().any(|n| *n > 0), "the child uploaded before it was killed: {seen:?}");
    // Reopened, the node finishes the upload; the archive is whole and in order.
    let mut history =
        HistoryConfig { kind: Some(TierKind::Segments), upload_interval_ms: 20, ..HistoryConfig::default() };
    history.segments.destination = archive.path().display().to_string();
    history.segments.blocks_per_segment = 32;
    history.segments.vertices_per_segment = 16;
    rt().block_on(async {
        let h = Handle::open(node_config(dir.path(), history)).unwrap();
        assert_eq!(h.pointers().head.unwrap().number, 2_999);
        let s = uploaded(&h, 32, 16).await;
        assert_eq!(s.chain.clone().unwrap().first, 0);
        assert_eq!(s.chain.unwrap().next, 2_976, "every whole final segment, from 0");
        assert_eq!(s.dag.unwrap().next, 400);
        let report = h.verify_archive().await.unwrap();
        assert!(report.is_ok(), "{:?}", report.tier.problems);
        assert_eq!((report.blocks, report.vertices), (2_976, 400));
        h.prune_chain(10).await.unwrap();
        for n in [0u64, 31, 32, 1_500, 2_975] {
            let b = h.block_by_number(n).await.unwrap().unwrap();
            assert_eq!(b.hash(), blocks[n as usize].block.hash());
        }
        assert_eq!(h.vertex(vertices[5].hash).await.unwrap().unwrap().vertex, vertices[5]);
        h.shutdown().await;
    });
}

/// Ethereum blocks pruned locally are still proven: the inclusion proof of a transaction and
/// of its receipt reads the block through the archive (checked against the local chain) and
/// verifies against the header; a block of an epoch never imported whole has no header proof.
#[test]
fn pruned_ethereum_history_is_proven_through_the_archive() {
    use chain_eth::generator::{EthGenerator, EthShape, MAINNET_LONDON};
    use node_storage::Item;
    type EthHandle = StorageHandle<RocksStore, chain_eth::Eth>;
    let (dir, archive) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut g = EthGenerator::new(EthShape { txs_per_block: 4, ..MAINNET_LONDON }, 21);
    let blocks: Vec<NewBlock<chain_eth::Eth>> = (0..200).map(|_| g.next_block()).collect();
    let mut config = node_config(dir.path(), local_segments(archive.path()));
    config.model = node_storage::ModelKind::Ethereum;
    rt().block_on(async {
        let h = EthHandle::open(config).unwrap();
        h.init_chain(blocks[0].clone()).await.unwrap();
        for r in h.insert_blocks(blocks[1..].to_vec()).await {
            r.unwrap();
        }
        h.set_finalized(blocks[195].block.hash()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        while h.archive_status().await.unwrap().chain_lag().unwrap_or(u64::MAX) >= 64 {
            assert!(Instant::now() < deadline, "uploads did not catch up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let report = h.prune_chain(50).await.unwrap();
        assert!(report.pruned_below > 10, "block 10 is pruned locally: {report:?}");
        let block = &blocks[10];
        let tx = block.block.transactions[2].hash();
        let proof = h.inclusion_proof(tx, Item::Transaction).await.unwrap().expect("through the archive");
        proof.verify().unwrap();
        assert_eq!(
            (proof.block_hash, proof.index, proof.transaction().map(|t| t.hash())),
            (block.block.hash(), 2, Some(tx))
        );
        let proof = h.inclusion_proof(tx, Item::Receipt).await.unwrap().expect("through the archive");
        proof.verify().unwrap();
        let expected = chain_eth::inclusion::receipt_proof(&block.block.header, &block.receipts, 2).unwrap();
        assert_eq!(proof, expected);
        assert_eq!(h.header_proof(10).await.unwrap(), None, "no whole epoch was imported");
        h.shutdown().await;
    });
}
