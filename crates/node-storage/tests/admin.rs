//! The admin endpoint of a running node: every operation through the socket while blocks and
//! vertices keep being written (and the backups taken meanwhile restore and check out);
//! refusals of another user's connection, of a socket open to others or planted by another
//! user, of a wrong protocol version; no secret in answers or logs.

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use dag_store::{Vertex, VertexBuilder};
use node_storage::admin::{AdminClient, AdminError};
use node_storage::backups::{BackupKind, Backups, Credentials, Progress, Selector};
use node_storage::{Backend, Config, ErrorKind, RedbStore, RocksStore, SledStore, StorageHandle};

fn config(root: &std::path::Path) -> Config {
    let mut c = Config { data_dir: root.join("data"), ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 4 << 20;
    c.admin.enabled = true;
    c.backup.destination = root.join("backups").display().to_string();
    c
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

fn vertex(i: u64) -> Vertex {
    VertexBuilder::new(format!("agent-{}", i % 7))
        .id(format!("v{i}"))
        .payload(i.to_le_bytes().to_vec())
        .timestamp(i)
        .build()
}

/// Blocks (finalized 10 behind the head) and vertices written until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    blocks: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Load {
    fn start<B: Backend>(h: StorageHandle<B, Synthetic>) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let blocks = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), blocks.clone());
        let task = tokio::spawn(async move {
            let mut g = ChainGenerator::new(GenConfig {
                txs_per_block: 5,
                accounts: 20,
                fork_probability: 0.0,
                ..GenConfig::default()
            });
            let genesis = g.child(None);
            h.init_chain(genesis.clone()).await.unwrap();
            let mut hashes = vec![genesis.block.hash()];
            let mut last = genesis;
            let mut i = 0u64;
            while !s.load(Ordering::SeqCst) {
                let b = g.child(Some(&last.block.header));
                h.insert_block(b.clone()).await.unwrap();
                hashes.push(b.block.hash());
                h.insert_vertex(vertex(i), vec![1; 64]).await.unwrap();
                if hashes.len() > 10 && i.is_multiple_of(5) {
                    h.set_finalized(hashes[hashes.len() - 10]).await.unwrap();
                }
                last = b;
                i += 1;
                n.store(i, Ordering::SeqCst);
            }
        });
        Load { stop, blocks, task }
    }

    async fn wait_for(&self, blocks: u64) {
        while self.blocks.load(Ordering::SeqCst) < blocks {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        self.blocks.load(Ordering::SeqCst)
    }
}

async fn client(c: &Config) -> AdminClient {
    AdminClient::connect(c).await.unwrap().expect("the node listens")
}

#[derive(Default)]
struct Counted {
    phases: Mutex<Vec<String>>,
    bytes: AtomicU64,
}

impl Progress for Counted {
    fn phase(&self, name: &str, _total: u64) {
        self.phases.lock().unwrap().push(name.to_owned());
    }
    fn advance(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
}

#[test]
fn every_operation_runs_through_the_socket_while_the_node_writes() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.backup.schedule_interval_secs = 1;
    rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        let server = h.serve_admin().unwrap();
        let mode = std::fs::metadata(server.path()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "owner-only socket");
        let _schedule = h.spawn_backup_schedule().unwrap();
        let load = Load::start(h.clone());
        load.wait_for(30).await;
        let before = load.blocks.load(Ordering::SeqCst);

        let stats = client(&cfg).await.stats().await.unwrap();
        assert_eq!(stats.backend, "rocksdb");
        assert_eq!(stats.stores.len(), 3);
        assert!(stats.chain_head.unwrap() >= 30 && stats.finalized.is_some(), "{stats:?}");

        // Snapshot checks: blocks written during the scan never look half-written.
        for _ in 0..3 {
            let c = client(&cfg).await.check(false).await.unwrap();
            assert!(c.ok, "{c:?}");
            assert!(c.chain.blocks_checked >= 30 && c.dag.vertices >= 30, "{c:?}");
        }
        let c = client(&cfg).await.check(true).await.unwrap();
        assert!(c.ok && c.state.as_ref().is_some_and(|s| s.ok), "{c:?}");

        assert!(client(&cfg).await.compact().await.unwrap());
        let pruned = client(&cfg).await.prune(Some(5), None).await.unwrap();
        let chain = pruned.chain.expect("chain pruned");
        assert!(chain.pruned_below > 0 && pruned.dag.is_none(), "{chain:?}");

        let mut ids = Vec::new();
        for kind in [BackupKind::Physical, BackupKind::Logical] {
            let progress = Arc::new(Counted::default());
            let r = client(&cfg).await.backup(kind, progress.clone()).await.unwrap();
            assert_eq!(r.manifest.kind, kind);
            assert!(!progress.phases.lock().unwrap().is_empty(), "progress phases reach the client");
            assert!(progress.bytes.load(Ordering::Relaxed) > 0, "progress bytes reach the client");
            ids.push(r.manifest.id);
        }

        // A dead letter (a vertex whose parent is missing), listed and replayed.
        let parent = vertex(1_000_000);
        let orphan = VertexBuilder::new("x").id("orphan").parents(vec![parent.hash]).timestamp(9).build();
        h.insert_vertex(orphan.clone(), vec![]).await.unwrap_err();
        let letters = client(&cfg).await.dead_letter_page(None, 100).await.unwrap().letters;
        assert_eq!(letters.len(), 1, "{letters:?}");
        h.insert_vertex(parent, vec![]).await.unwrap();
        let replayed = client(&cfg).await.replay_dead_letters(Some(vec![letters[0].id])).await.unwrap();
        assert_eq!(replayed[0].error, None, "{replayed:?}");
        assert!(client(&cfg).await.dead_letter_page(None, 100).await.unwrap().letters.is_empty());
        assert!(h.vertex(orphan.hash).await.unwrap().is_some());

        let status = loop {
            let s = client(&cfg).await.schedule_status().await.unwrap();
            if s.runs > 0 && !s.in_progress {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.running && status.interval_secs == 1 && status.next_at.is_some(), "{status:?}");
        let last = status.last.expect("a scheduled run");
        assert!(last.backup.is_some() && last.error.is_none(), "{last:?}");

        let after = load.stop().await;
        assert!(after > before, "the node kept writing while the operations ran ({before} → {after} blocks)");
        h.shutdown().await;
        drop(server);
        assert!(!cfg.admin_socket().exists(), "the socket is removed when the endpoint stops");
        assert!(AdminClient::connect(&cfg).await.unwrap().is_none(), "no node: no client");

        // The backups taken under load restore and pass the integrity check.
        let listed = Backups::open(&cfg.backup).unwrap().list().await.unwrap();
        for id in &ids {
            assert!(listed.iter().any(|b| &b.id == id && b.manifest.is_some()), "{id} complete");
            let mut restored = cfg.clone();
            restored.data_dir = dir.path().join(format!("restored-{id}"));
            node_storage::restore::<RocksStore, Synthetic, ()>(
                &restored,
                &Selector::Id(id.clone()),
                false,
                Arc::new(()),
            )
            .await
            .unwrap();
        }
    });
}

/// Checks on a snapshot while the node writes (RocksDB above, redb here).
fn consistent_checks_under_load<B: Backend>() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    rt().block_on(async {
        let h = StorageHandle::<B, Synthetic>::open(cfg.clone()).unwrap();
        let _server = h.serve_admin().unwrap();
        let load = Load::start(h.clone());
        load.wait_for(20).await;
        for _ in 0..3 {
            let c = client(&cfg).await.check(false).await.unwrap();
            assert!(c.ok, "{c:?}");
        }
        let s = client(&cfg).await.stats().await.unwrap();
        assert_eq!(s.backend, B::KIND.to_string());
        load.stop().await;
        h.shutdown().await;
    });
}

#[test]
fn checks_under_load_are_consistent_on_redb() {
    consistent_checks_under_load::<RedbStore>();
}

/// sled has no snapshots: a running sled node refuses a live check and a logical backup with a
/// clear error instead of stopping every write for their length, and its writes go on.
#[test]
fn a_running_sled_node_refuses_what_would_stop_its_writes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    rt().block_on(async {
        let h = StorageHandle::<SledStore, Synthetic>::open(cfg.clone()).unwrap();
        let _server = h.serve_admin().unwrap();
        let load = Load::start(h.clone());
        load.wait_for(20).await;
        let before = load.blocks.load(Ordering::SeqCst);
        let err = client(&cfg).await.check(false).await.unwrap_err();
        assert!(
            matches!(&err, AdminError::Node { kind, message } if *kind == ErrorKind::Unsupported && message.contains("snapshots")),
            "{err}"
        );
        let err = client(&cfg).await.backup(BackupKind::Logical, Arc::new(())).await.unwrap_err();
        assert!(matches!(&err, AdminError::Node { message, .. } if message.contains("snapshots")), "{err}");
        load.wait_for(before + 20).await;
        assert_eq!(client(&cfg).await.stats().await.unwrap().backend, "sled");
        load.stop().await;
        h.shutdown().await;
    });
}

/// A node whose writes must answer within 400 ms.
fn impatient(root: &std::path::Path) -> Config {
    let mut c = config(root);
    c.writer.request_timeout_ms = 400;
    c
}

/// `n` small blocks on the generator's chain, genesis first.
fn blocks(n: usize) -> Vec<chain_store::NewBlock<Synthetic>> {
    let mut g = ChainGenerator::new(GenConfig {
        txs_per_block: 5,
        accounts: 50,
        fork_probability: 0.0,
        ..GenConfig::default()
    });
    g.generate(n)
}

/// A node holding the chain's first 50 blocks and `vertices` vertices of 1 KiB (about that
/// many KiB of data to compact or back up), written with the default timeouts, then closed.
fn filled(cfg: &Config, chain: &[chain_store::NewBlock<Synthetic>], vertices: u64) {
    rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        h.init_chain(chain[0].clone()).await.unwrap();
        for r in h.insert_blocks(chain[1..50].to_vec()).await {
            r.unwrap();
        }
        let mut parent: Option<Vertex> = None;
        for start in (0..vertices).step_by(1_000) {
            let batch: Vec<(Vertex, Vec<u8>)> = (start..(start + 1_000).min(vertices))
                .map(|i| {
                    let v = VertexBuilder::new("filler")
                        .id(format!("f{i}"))
                        .parents(parent.iter().map(|p| p.hash).collect())
                        .payload(vec![(i % 251) as u8; 1_024])
                        .timestamp(i)
                        .build();
                    parent = Some(v.clone());
                    (v, vec![1; 64])
                })
                .collect();
            for r in h.insert_vertices(batch).await {
                r.unwrap();
            }
        }
        h.shutdown().await;
    });
}

/// Inserts `more` one by one while `busy` runs; every insert must succeed within the writer's
/// timeout. Returns how long `busy` took.
async fn inserts_during<F: std::future::Future>(
    h: &StorageHandle<RocksStore, Synthetic>,
    more: &[chain_store::NewBlock<Synthetic>],
    busy: F,
) -> (F::Output, Duration) {
    let started = std::time::Instant::now();
    let writes = async {
        for b in more {
            h.insert_block(b.clone()).await.expect("an insert while the node is busy");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let (out, ()) = tokio::join!(async { (busy.await, started.elapsed()) }, writes);
    out
}

/// Compaction runs beside the writer, never on its thread: inserts keep answering within their
/// timeout while a compaction of the whole store takes many times longer.
#[test]
fn writes_go_on_during_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = impatient(dir.path());
    let all = blocks(200);
    filled(&cfg, &all, 150_000);
    rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        let ((compacted, took), ()) = (inserts_during(&h, &all[50..], h.compact()).await, ());
        assert!(compacted.unwrap());
        assert!(took > Duration::from_millis(800), "the compaction took only {took:?}: too short to show anything");
        h.shutdown().await;
    });
}

/// A TCP listener that accepts connections and never answers (an archive that hangs).
fn black_hole() -> (std::net::SocketAddr, std::thread::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let thread = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().take(64) {
            match s {
                Ok(s) => held.push(s),
                Err(_) => return,
            }
        }
    });
    (addr, thread)
}

/// A prune with the archive hanging: what it may prune is learned off the writer thread, so
/// inserts keep answering within their timeout while the archive does not answer, and the prune
/// holds (nothing is verified archived).
#[test]
fn writes_go_on_while_a_prune_waits_for_a_hung_archive() {
    let dir = tempfile::tempdir().unwrap();
    let (addr, _hole) = black_hole();
    let mut cfg = impatient(dir.path());
    cfg.history = storage_history::testkit::config_at(&addr.to_string(), "hung_");
    cfg.history.bigtable.create_tables = false;
    cfg.history.timeout_ms = 2_000;
    cfg.history.upload = false;
    let all = blocks(120);
    rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        h.init_chain(all[0].clone()).await.unwrap();
        for chunk in all[1..60].chunks(5) {
            for r in h.insert_blocks(chunk.to_vec()).await {
                r.unwrap();
            }
        }
        h.set_finalized(all[50].block.hash()).await.unwrap();
        let ((pruned, took), ()) = (inserts_during(&h, &all[60..], h.prune_chain(10)).await, ());
        let report = pruned.unwrap();
        assert_eq!(report.pruned_below, 0, "nothing is verified archived: {report:?}");
        assert!(report.limited_by_archive, "{report:?}");
        assert!(took >= Duration::from_millis(1_500), "the archive answered after {took:?}: it was meant to hang");
        h.shutdown().await;
    });
}

/// A client that asks for a backup and then reads nothing neither holds the backup up nor
/// the node's writes: the operation runs in a task of its own and completes.
#[test]
fn a_client_that_stops_reading_holds_nothing_up() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = impatient(dir.path());
    let all = blocks(200);
    filled(&cfg, &all, 60_000);
    rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        let server = h.serve_admin().unwrap();
        // A raw client with the smallest receive buffer, which sends its request and never reads.
        let stalled = std::os::unix::net::UnixStream::connect(server.path()).unwrap();
        rustix::net::sockopt::set_socket_recv_buffer_size(&stalled, 1).unwrap();
        let request = serde_json::json!({
            "version": node_storage::admin::PROTOCOL_VERSION,
            "request": { "op": "backup", "kind": "logical" },
        });
        (&stalled).write_all(format!("{request}\n").as_bytes()).unwrap();
        let done = async {
            let backups = Backups::open(&cfg.backup).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            loop {
                if backups.list().await.unwrap().iter().any(|b| b.manifest.is_some()) {
                    return;
                }
                assert!(std::time::Instant::now() < deadline, "the backup never completed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        let ((), _) = inserts_during(&h, &all[50..], done).await;
        drop(stalled);
        // Dropping the endpoint closes its connections too.
        let idle = std::os::unix::net::UnixStream::connect(server.path()).unwrap();
        idle.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        drop(server);
        let mut buf = [0u8; 1];
        let n = (&idle).read(&mut buf);
        let closed = match &n {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        };
        assert!(closed, "the connection outlived the endpoint: {n:?}");
        h.shutdown().await;
    });
}

/// Dead letters are listed a page at a time and without their payloads, so the answer stays
/// small whatever the table holds; replays from two clients at once count each letter off once.
#[test]
fn dead_letters_are_listed_in_pages_and_replayed_once() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path());
    rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        let _server = h.serve_admin().unwrap();
        // 30 orphans of one missing parent, each with a 64 KiB payload.
        let parent = vertex(7_000_000);
        for i in 0..30 {
            let orphan = VertexBuilder::new("x")
                .id(format!("orphan-{i}"))
                .parents(vec![parent.hash])
                .payload(vec![i as u8; 64 << 10])
                .timestamp(9)
                .build();
            h.insert_vertex(orphan, vec![]).await.unwrap_err();
        }
        let first = client(&cfg).await.dead_letter_page(None, 12).await.unwrap();
        assert_eq!(first.letters.len(), 12);
        assert!(first.letters.iter().all(|l| l.bytes > 64 << 10), "{:?}", first.letters[0]);
        let raw_answer = raw(
            &cfg.admin_socket(),
            &format!(
                "{{\"version\":{},\"request\":{{\"op\":\"dead_letters\",\"after\":null,\"limit\":100}}}}\n",
                node_storage::admin::PROTOCOL_VERSION
            ),
        );
        assert!(raw_answer.len() < 32 << 10, "a page of 30 letters without payloads: {} bytes", raw_answer.len());
        let mut all = first.letters.clone();
        let mut after = first.next_after;
        while let Some(a) = after {
            let page = client(&cfg).await.dead_letter_page(Some(a), 12).await.unwrap();
            all.extend(page.letters);
            after = page.next_after;
        }
        assert_eq!(all.len(), 30);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        h.insert_vertex(parent, vec![]).await.unwrap();
        let (a, b) = tokio::join!(async { client(&cfg).await.replay_dead_letters(None).await.unwrap() }, async {
            client(&cfg).await.replay_dead_letters(None).await.unwrap()
        });
        assert_eq!(a.len() + b.len(), 30, "each letter replayed once: {} + {}", a.len(), b.len());
        assert!(client(&cfg).await.dead_letter_page(None, 100).await.unwrap().letters.is_empty());
        let health = h.health();
        assert_eq!(health.detail["dead_letters"], 0, "{health:?}");
        h.shutdown().await;
    });
}

/// One request on a raw connection; the answer's lines.
fn raw(path: &std::path::Path, line: &str) -> String {
    let mut s = std::os::unix::net::UnixStream::connect(path).unwrap();
    s.write_all(line.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

/// Connects to `path` as uid 65534 and sends a stats request; what the node answered. The
/// other user's client is perl (part of every Debian system: perl-base), started with that uid.
fn answer_as_another_user(path: &std::path::Path) -> String {
    use std::os::unix::process::CommandExt;
    // The node may answer and close before the request is written: no SIGPIPE, read anyway.
    let script = r#"$SIG{PIPE} = "IGNORE"; $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or die "connect: $!";
        print $s qq({"version":1,"request":{"op":"stats"}}\n); print while <$s>;"#;
    let out = std::process::Command::new("perl")
        .args(["-MIO::Socket::UNIX", "-e", script])
        .arg(path)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("perl runs");
    assert!(out.status.success(), "the other user's client: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn strangers_are_refused_and_no_secret_is_told() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    // A destination that cannot be reached, with credentials whose secret must never show.
    let secret = "admin-test-secret-4f1c9e";
    cfg.backup.destination = "s3://bucket/node".into();
    cfg.backup.endpoint = Some("http://127.0.0.1:1".into());
    cfg.backup.allow_http = true;
    cfg.backup.max_retries = 0;
    cfg.backup.retry_timeout_secs = 1;
    cfg.backup.credentials =
        Some(Credentials { access_key_id: "admin-test-key".into(), secret_access_key: secret.into() });
    let logs = Logs::install();
    rt().block_on(async {
        let h = StorageHandle::<RocksStore, Synthetic>::open(cfg.clone()).unwrap();
        let server = h.serve_admin().unwrap();
        let path = server.path().to_owned();

        let failed = client(&cfg).await.backup(BackupKind::Physical, Arc::new(())).await.unwrap_err();
        assert!(matches!(failed, AdminError::Node { .. }), "{failed}");
        let status = serde_json::to_string(&client(&cfg).await.schedule_status().await.unwrap()).unwrap();
        for text in [failed.to_string(), format!("{failed:?}"), status] {
            assert!(!text.contains(secret), "secret in {text}");
        }

        // The wrong protocol version, and garbage, are refused; the node carries on.
        let old = raw(&path, "{\"version\":99,\"request\":{\"op\":\"resize\"}}\n");
        assert!(old.contains("\"failed\"") && old.contains("protocol version 99"), "{old}");
        let junk = raw(&path, "hello\n");
        assert!(junk.contains("\"failed\"") && junk.contains("not an admin request"), "{junk}");
        assert!(client(&cfg).await.stats().await.is_ok());

        // Another user: refused by the node on its peer credentials (the socket and its
        // directories are opened up here only so that the connection reaches the check).
        if rustix::process::geteuid().is_root() && on_path("perl") {
            for d in [dir.path(), &cfg.data_dir] {
                std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
            let answer = tokio::task::spawn_blocking(move || answer_as_another_user(&path)).await.unwrap();
            assert!(answer.contains("\"refused\"") && answer.contains("admits only"), "{answer}");
            assert!(!answer.contains("chain_head"), "no result for a stranger: {answer}");

            // The client refuses a socket open to others...
            let open = AdminClient::connect(&cfg).await.unwrap_err();
            assert!(matches!(open, AdminError::NotPrivate { mode: 0o666, .. }), "{open}");
            // ...and one that another user owns (it could be planted to catch requests).
            std::fs::set_permissions(cfg.admin_socket(), std::fs::Permissions::from_mode(0o600)).unwrap();
            std::os::unix::fs::chown(cfg.admin_socket(), Some(65534), None).unwrap();
            let foreign = AdminClient::connect(&cfg).await.unwrap_err();
            assert!(matches!(foreign, AdminError::ForeignSocket { owner: 65534, .. }), "{foreign}");
            std::os::unix::fs::chown(cfg.admin_socket(), Some(0), None).unwrap();
        } else {
            eprintln!("SKIPPED (part): acting as another user needs root and perl");
        }
        assert!(client(&cfg).await.stats().await.is_ok(), "the owner is still served");

        // A node that died leaves its socket (made here by binding one and closing it):
        // clients see no node, and the next node replaces it.
        drop(server);
        h.shutdown().await;
        drop(h);
        let stale = cfg.admin_socket();
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        std::fs::set_permissions(&stale, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(AdminClient::connect(&cfg).await.unwrap().is_none(), "a stale socket is no node");
        let h = reopen(&cfg).await;
        let _server = h.serve_admin().unwrap();
        assert!(client(&cfg).await.stats().await.is_ok());
        // Only one node per socket.
        let mut other = cfg.clone();
        other.data_dir = dir.path().join("other");
        other.admin.socket = Some(cfg.admin_socket());
        let h2 = StorageHandle::<RocksStore, Synthetic>::open(other).unwrap();
        let busy = h2.serve_admin().unwrap_err().to_string();
        assert!(busy.contains("another process listens"), "{busy}");
        h2.shutdown().await;
        h.shutdown().await;
    });
    let logs = logs.text();
    if rustix::process::geteuid().is_root() && on_path("perl") {
        assert!(logs.contains("refused a connection from another user"), "{logs}");
    }
    assert!(logs.contains("admin request"), "requests are logged: {logs}");
    assert!(!logs.contains(secret), "secret in the logs: {logs}");
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
}

/// Opens the node again once the previous handle's last clone (the endpoint's task, ending
/// after its abort) has let go of the data directory.
async fn reopen(cfg: &Config) -> StorageHandle<RocksStore, Synthetic> {
    for _ in 0..100 {
        match StorageHandle::open(cfg.clone()) {
            Ok(h) => return h,
            Err(node_storage::StorageError::InUse { .. }) => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the data directory stayed in use")
}

/// Everything logged in this test binary, kept for inspection.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn install() -> Logs {
        let logs = Logs::default();
        let sink = logs.clone();
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .try_init();
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
