//! The handle on real RocksDB: group commit, durability across restarts (including SIGKILL, on
//! every engine),
//! cache invalidation on reorg and prune, dead letters, config loading.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use chain_store::{BlockHeader, NewBlock};
use dag_store::{DagError, Inserted, Vertex, VertexBuilder};
use node_storage::{Backend, Config, RedbStore, RocksStore, SledStore, StorageError, StorageHandle};

type Handle = StorageHandle<RocksStore, Synthetic>;

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 4 << 20;
    c
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

fn lone_vertex(i: u64) -> Vertex {
    VertexBuilder::new(format!("agent-{}", i % 7))
        .id(format!("v{i}"))
        .payload(i.to_le_bytes().to_vec())
        .timestamp(i)
        .build()
}

fn sum_of(json: &serde_json::Value, name: &str, field: &str) -> f64 {
    json[name]["samples"].as_array().map_or(0.0, |s| s.iter().map(|x| x[field].as_f64().unwrap_or(0.0)).sum())
}

#[test]
fn concurrent_inserts_share_group_commits_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    let vertices: Vec<Vertex> = (0..2_000).map(lone_vertex).collect();
    rt.block_on(async {
        let h = Handle::open(config(dir.path())).unwrap();
        let mut tasks = Vec::new();
        for chunk in vertices.chunks(8) {
            let h = h.clone();
            let chunk = chunk.to_vec();
            tasks.push(tokio::spawn(async move {
                for v in chunk {
                    assert!(matches!(h.insert_vertex(v, vec![1; 64]).await.unwrap(), Inserted::New { .. }));
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let m = h.metrics().render_json();
        let requests = sum_of(&m, "node_storage_batch_requests", "sum");
        let groups = sum_of(&m, "node_storage_batch_requests", "count");
        assert_eq!(requests, 2_000.0);
        assert!(groups < 1_000.0, "250 concurrent submitters should share syncs: {groups} groups for 2000 writes");
        // Re-inserting is idempotent.
        assert_eq!(h.insert_vertex(vertices[0].clone(), vec![1; 64]).await.unwrap(), Inserted::AlreadyStored);
        h.shutdown().await;
        assert!(matches!(h.insert_vertex(lone_vertex(9_999), vec![]).await, Err(StorageError::ShuttingDown)));
    });
    rt.block_on(async {
        let h = Handle::open(config(dir.path())).unwrap();
        for v in &vertices {
            let stored = h.vertex(v.hash).await.unwrap().expect("acknowledged vertex survives a restart");
            assert_eq!(stored.vertex, *v);
        }
        assert_eq!(h.tips().await.unwrap().len(), vertices.len());
    });
}

/// The child half of `acknowledged_writes_survive_sigkill_*`: writes on the engine named by
/// `NODE_STORAGE_SIGKILL_ENGINE` until killed, printing each acknowledged vertex.
#[test]
#[ignore = "run by acknowledged_writes_survive_sigkill_* as a child process"]
fn sigkill_child() {
    let Ok(dir) = std::env::var("NODE_STORAGE_SIGKILL_DIR") else { return };
    let dir = std::path::Path::new(&dir);
    match std::env::var("NODE_STORAGE_SIGKILL_ENGINE").as_deref() {
        Ok("redb") => write_until_killed::<RedbStore>(dir),
        Ok("sled") => write_until_killed::<SledStore>(dir),
        _ => write_until_killed::<RocksStore>(dir),
    }
}

fn engine_config<B: Backend>(dir: &std::path::Path) -> Config {
    Config { backend: B::KIND, ..config(dir) }
}

fn write_until_killed<B: Backend>(dir: &std::path::Path) {
    let rt = rt();
    rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(engine_config::<B>(dir)).unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for w in 0..32u64 {
            let h = h.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    let v = lone_vertex(w * 1_000_000 + i);
                    let hash = v.hash;
                    h.insert_vertex(v, vec![]).await.unwrap();
                    let _ = tx.send(hash);
                }
            });
        }
        while let Some(hash) = rx.recv().await {
            println!("ACK {hash}");
        }
    });
}

/// A child writes through the handle on engine `B` and is SIGKILLed after `acks`
/// acknowledgements; every acknowledged vertex must be there when the node reopens (for redb:
/// after the repair of a file that was not closed cleanly).
fn acknowledged_writes_survive_sigkill<B: Backend>(acks: usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "sigkill_child", "--ignored", "--nocapture", "--test-threads=1"])
        .env("NODE_STORAGE_SIGKILL_DIR", dir.path())
        .env("NODE_STORAGE_SIGKILL_ENGINE", B::KIND.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(h) = line.strip_prefix("ACK ") {
            acked.push(h.to_owned());
            if acked.len() == acks {
                break;
            }
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(acked.len(), acks, "{}: the child stopped early", B::KIND);
    let rt = rt();
    rt.block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(engine_config::<B>(dir.path()))
            .unwrap_or_else(|e| panic!("{}: reopen after SIGKILL: {e}", B::KIND));
        let tips: std::collections::HashSet<String> = h.tips().await.unwrap().iter().map(|t| t.to_string()).collect();
        let lost: Vec<&String> = acked.iter().filter(|a| !tips.contains(*a)).collect();
        assert!(
            lost.is_empty(),
            "{}: {} acknowledged vertices lost, e.g. {:?}",
            B::KIND,
            lost.len(),
            &lost[..lost.len().min(3)]
        );
    });
}

#[test]
fn acknowledged_writes_survive_sigkill_rocksdb() {
    acknowledged_writes_survive_sigkill::<RocksStore>(3_000);
}

#[test]
fn acknowledged_writes_survive_sigkill_redb() {
    acknowledged_writes_survive_sigkill::<RedbStore>(1_000);
}

#[test]
fn acknowledged_writes_survive_sigkill_sled() {
    acknowledged_writes_survive_sigkill::<SledStore>(1_000);
}

fn small_chain() -> ChainGenerator {
    ChainGenerator::new(GenConfig { txs_per_block: 5, accounts: 20, fork_probability: 0.0, ..GenConfig::default() })
}

#[test]
fn reorgs_and_pruning_never_leave_stale_cache_entries() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    rt.block_on(async {
        let h = Handle::open(config(dir.path())).unwrap();
        let mut g = small_chain();
        let genesis = g.child(None);
        h.init_chain(genesis.clone()).await.unwrap();
        let mut a: Vec<NewBlock<Synthetic>> = vec![genesis];
        for _ in 0..6 {
            let b = g.child(Some(&a.last().unwrap().block.header));
            h.insert_block(b.clone()).await.unwrap();
            a.push(b);
        }
        let keys: Vec<_> = (0..20).map(|i| ChainGenerator::balance_key(ChainGenerator::account(i))).collect();
        // Warm the caches with branch A.
        for n in 0..=6 {
            assert_eq!(h.block_by_number(n).await.unwrap().unwrap().hash(), a[n as usize].block.hash());
        }
        for k in &keys {
            h.state(*k).await.unwrap();
        }
        // Branch B from A2, longer; then make it canonical.
        let mut b: Vec<NewBlock<Synthetic>> = a[..3].to_vec();
        for _ in 0..5 {
            let blk = g.child(Some(&b.last().unwrap().block.header));
            h.insert_block(blk.clone()).await.unwrap();
            b.push(blk);
        }
        let reorg = h.set_head(b.last().unwrap().block.hash()).await.unwrap();
        assert_eq!(reorg.fork_point.number, 2);
        assert_eq!(reorg.removed.len(), 4);
        for (n, blk) in b.iter().enumerate() {
            let got = h.block_by_number(n as u64).await.unwrap().unwrap();
            assert_eq!(got.hash(), blk.block.hash(), "height {n} after the reorg");
        }
        let mut expected = HashMap::new();
        for blk in &b {
            for (k, v) in &blk.state {
                expected.insert(*k, *v);
            }
        }
        for k in &keys {
            assert_eq!(h.state(*k).await.unwrap(), expected.get(k).copied().flatten(), "state {k:?} after the reorg");
        }
        // Prune: cached bodies below the boundary must not be served.
        let head = b.last().unwrap().block.header.number();
        h.set_finalized(b[head as usize - 1].block.hash()).await.unwrap();
        let old = b[1].block.hash();
        assert!(h.block(old).await.unwrap().is_some());
        let report = h.prune_chain(2).await.unwrap();
        assert!(report.pruned_below >= 2, "{report:?}");
        let err = h.block(old).await.unwrap_err().to_string();
        assert!(err.contains("pruned"), "{err}");
    });
}

#[test]
fn dead_letters_are_listed_and_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    rt.block_on(async {
        let h = Handle::open(config(dir.path())).unwrap();
        let parent = lone_vertex(1);
        let child = VertexBuilder::new("a").id("child").parents(vec![parent.hash]).timestamp(5).build();
        let err = h.insert_vertex(child.clone(), vec![7]).await.unwrap_err();
        assert!(matches!(err, StorageError::Dag(DagError::MissingParents { .. })), "{err}");
        // Malformed input is refused but not dead-lettered: replaying it can never succeed.
        let mut bad = lone_vertex(2);
        bad.payload.push(0);
        assert!(matches!(h.insert_vertex(bad, vec![]).await, Err(StorageError::Dag(DagError::HashMismatch { .. }))));
        let letters = h.dead_letters().await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].op, "insert_vertex");
        assert!(letters[0].reason.contains("missing parent"), "{}", letters[0].reason);
        // Replaying before the parent exists keeps it, with the attempt counted.
        let r = h.replay_dead_letters(None).await.unwrap();
        assert!(r[0].error.is_some());
        let letters = h.dead_letters().await.unwrap();
        assert_eq!((letters.len(), letters[0].attempts), (1, 2));
        h.insert_vertex(parent, vec![]).await.unwrap();
        let r = h.replay_dead_letters(Some(vec![letters[0].id])).await.unwrap();
        assert_eq!(r[0].error, None);
        assert!(h.dead_letters().await.unwrap().is_empty());
        assert!(h.vertex(child.hash).await.unwrap().is_some());
        assert!(matches!(h.replay_dead_letters(Some(vec![99])).await, Err(StorageError::NoSuchDeadLetter(99))));
        // Dead letters are persisted.
        let child2 = VertexBuilder::new("a").id("orphan").parents(vec![lone_vertex(3).hash]).build();
        let _ = h.insert_vertex(child2, vec![]).await;
        h.shutdown().await;
        drop(h);
        let h = Handle::open(config(dir.path())).unwrap();
        assert_eq!(h.dead_letters().await.unwrap().len(), 1);
        assert_eq!(h.health().detail["dead_letters"], 1);
    });
}

#[test]
fn cached_reads_count_hits() {
    let dir = tempfile::tempdir().unwrap();
    let rt = rt();
    rt.block_on(async {
        let h = Handle::open(config(dir.path())).unwrap();
        let v = lone_vertex(1);
        h.insert_vertex(v.clone(), vec![]).await.unwrap();
        for _ in 0..10 {
            h.vertex(v.hash).await.unwrap().unwrap();
        }
        let stats: HashMap<_, _> = h.cache_stats().into_iter().collect();
        assert_eq!((stats["vertices"].misses, stats["vertices"].hits), (1, 9));
        let text = h.metrics().render();
        assert!(text.contains("node_storage_cache_requests_total{cache=\"vertices\",result=\"hit\"} 9"), "{text}");
        assert!(text.contains("node_storage_rocksdb_sst_files{level=\"0\",store=\"dag\"}"), "{text}");
        assert!(text.contains("node_storage_cache_hit_ratio{cache=\"engine_dag\",level=\"l2\"}"), "{text}");
        let _ = Arc::new(());
    });
}

/// The state trie through the handle: the root of the head, a proof that verifies against it,
/// the check, and a repair that changes nothing on a sound trie.
#[test]
fn state_root_proofs_check_and_repair() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 6,
        accounts: 200,
        fork_probability: 0.0,
        seed: 31,
        ..GenConfig::default()
    });
    let blocks = g.generate(40);
    rt().block_on(async {
        let h = Handle::open(config(dir.path())).unwrap();
        h.init_chain(blocks[0].clone()).await.unwrap();
        for r in h.insert_blocks(blocks[1..].to_vec()).await {
            r.unwrap();
        }
        let root = h.state_root().await.unwrap();
        let key = blocks[30].state[0].0;
        let proof = h.state_proof(key).await.unwrap();
        assert_eq!(proof.root, root);
        assert!(proof.value.is_some());
        proof.verify().unwrap();
        let check = h.check_state_trie().await.unwrap();
        assert!(check.matches(), "{check:?}");
        let repaired = h.repair_state_trie(false).await.unwrap();
        assert!(repaired.matches() && repaired.written);
        assert_eq!(h.state_root().await.unwrap(), root);
        h.shutdown().await;
    });
}

/// `[state] trie = "off"`: the node keeps no trie (no root, no proof; the repair refused
/// while it is off); switched on, `repair state-trie` builds it and inserts keep it; switched
/// off again, the next open drops it.
#[test]
fn the_state_trie_switch() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 6,
        accounts: 200,
        fork_probability: 0.0,
        seed: 32,
        ..GenConfig::default()
    });
    let blocks = g.generate(40);
    let with = |trie: node_storage::TrieSwitch| {
        let mut c = config(dir.path());
        c.state.trie = trie;
        c
    };
    rt().block_on(async {
        let off = with(node_storage::TrieSwitch::Off);
        let h = Handle::open(off.clone()).unwrap();
        h.init_chain(blocks[0].clone()).await.unwrap();
        for r in h.insert_blocks(blocks[1..20].to_vec()).await {
            r.unwrap();
        }
        let err = h.state_root().await.unwrap_err();
        assert!(matches!(err, StorageError::Chain(chain_store::ChainError::NoStateTrie)), "{err}");
        let err = h.repair_state_trie(false).await.unwrap_err();
        assert!(matches!(&err, StorageError::Config(node_storage::ConfigError::Invalid { key, .. }) if key == "state.trie"), "{err}");
        h.shutdown().await;
        drop(h);

        // On: the node opens without a trie until the repair builds it; inserts then keep it.
        let h = Handle::open(with(node_storage::TrieSwitch::On)).unwrap();
        assert!(h.state_root().await.is_err(), "not built by opening");
        let built = h.repair_state_trie(false).await.unwrap();
        assert!(built.written && built.stored_root.is_none(), "{built:?}");
        for r in h.insert_blocks(blocks[20..].to_vec()).await {
            r.unwrap();
        }
        let check = h.check_state_trie().await.unwrap();
        assert!(check.matches(), "{check:?}");
        let key = blocks[35].state[0].0;
        h.state_proof(key).await.unwrap().verify().unwrap();
        h.shutdown().await;
        drop(h);

        // Off again: dropped at open.
        let h = Handle::open(off).unwrap();
        assert!(matches!(h.state_root().await, Err(StorageError::Chain(chain_store::ChainError::NoStateTrie))));
        h.shutdown().await;
        drop(h);

        // A root check needs the trie.
        let mut both = with(node_storage::TrieSwitch::Off);
        both.state.check_roots = true;
        let Err(err) = Handle::open(both) else { panic!("a root check without the trie opened") };
        assert!(matches!(&err, StorageError::Config(node_storage::ConfigError::Invalid { key, .. }) if key == "state.check_roots"), "{err}");
    });
}
