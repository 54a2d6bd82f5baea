//! Read replicas on RocksDB secondary instances: a replica of a running node sees what the
//! node acknowledged after each catch-up (on demand and on its interval), follows reorgs and
//! pruning, and changes nothing; engines without replicas say so.

use std::time::{Duration, Instant};

use chain_store::Transaction;
use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use dag_store::VertexBuilder;
use node_storage::{
    BackendKind, Config, ReplicaBackend, ReplicaHandle, ReplicaVisitor, RocksStore, StorageError, StorageHandle,
    with_replica_backend,
};

type Handle = StorageHandle<RocksStore, Synthetic>;
type Replica = ReplicaHandle<RocksStore, Synthetic>;

fn config(dir: &std::path::Path) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 4 << 20;
    c.replica.catch_up_interval_ms = 0;
    c
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(4).enable_all().build().unwrap()
}

#[test]
// `ReplicaHandle::read` closures return the facade's `StorageError`, whatever its size.
#[allow(clippy::result_large_err)]
fn a_replica_follows_a_running_node() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = ChainGenerator::new(GenConfig { txs_per_block: 4, seed: 5, ..GenConfig::default() });
    let blocks = g.generate(300);
    rt().block_on(async {
        let h = Handle::open(config(dir.path())).unwrap();
        h.init_chain(blocks[0].clone()).await.unwrap();
        for r in h.insert_blocks(blocks[1..100].to_vec()).await {
            r.unwrap();
        }
        let replica = Replica::open(config(dir.path())).unwrap();
        assert_eq!(replica.pointers().head.unwrap().number, 99, "what the node had acknowledged at open");
        for r in h.insert_blocks(blocks[100..200].to_vec()).await {
            r.unwrap();
        }
        let v = VertexBuilder::new("a").id("x").payload(vec![1]).build();
        h.insert_vertex(v.clone(), vec![2]).await.unwrap();
        assert_eq!(replica.pointers().head.unwrap().number, 99, "nothing changes until a catch-up");
        assert!(replica.block_by_number(150).await.unwrap().is_none());
        replica.catch_up().await.unwrap();
        assert_eq!(replica.pointers().head.unwrap().number, 199);
        let b = replica.block_by_number(150).await.unwrap().unwrap();
        assert_eq!(b.hash(), blocks[150].block.hash());
        let tx = blocks[170].block.transactions[2].hash();
        assert_eq!(replica.transaction(tx).await.unwrap().unwrap().1.number, 170);
        assert_eq!(replica.vertex(v.hash).await.unwrap().unwrap().vertex, v);
        assert_eq!(replica.read(|r| Ok(r.dag().tips()?)).await.unwrap(), vec![v.hash], "tips reloaded");

        // A reorg on the node: the replica's canonical chain follows.
        let side = g.child(Some(&blocks[190].block.header));
        h.insert_block(side.clone()).await.unwrap();
        h.set_head(side.block.hash()).await.unwrap();
        replica.catch_up().await.unwrap();
        assert_eq!(replica.pointers().head.unwrap().hash, side.block.hash());
        assert_eq!(replica.block_by_number(191).await.unwrap().unwrap().hash(), side.block.hash());
        assert!(replica.block_by_number(195).await.unwrap().is_none(), "the old branch is no longer canonical");

        // Pruning on the node: the replica reports it as the node would.
        h.set_finalized(side.block.hash()).await.unwrap();
        h.prune_chain(20).await.unwrap();
        replica.catch_up().await.unwrap();
        let e = replica.block_by_number(10).await.unwrap_err();
        assert!(matches!(e, StorageError::Chain(chain_store::ChainError::Pruned { .. })), "{e}");

        // On an interval, without asking.
        let mut c = config(dir.path());
        c.replica.catch_up_interval_ms = 50;
        let following = Replica::open(c).unwrap();
        let next = g.child(Some(&side.block.header));
        h.insert_block(next.clone()).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while following.pointers().head.unwrap().hash != next.block.hash() {
            assert!(Instant::now() < deadline, "the interval catch-up never saw the new head");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(following.catch_ups() >= 1);
        assert!(following.staleness() < Duration::from_secs(5));
        // The node still runs and writes; the replicas changed nothing it relies on.
        h.insert_block(g.child(Some(&next.block.header))).await.unwrap();
        let check = replica.read(|r| r.check()).await.unwrap();
        assert!(check.0.is_ok() && check.1.is_ok(), "{check:?}");
        h.shutdown().await;
    });
}

struct Probe;

impl ReplicaVisitor for Probe {
    type Output = ();
    fn visit<B: ReplicaBackend>(self) {}
}

#[test]
fn engines_without_replicas_say_so() {
    let mut c = config(std::path::Path::new("/nonexistent"));
    c.backend = BackendKind::Redb;
    let e = with_replica_backend(&c, Probe).unwrap_err();
    assert!(matches!(e, StorageError::Incapable { .. }), "{e}");
    assert!(e.to_string().contains("RocksDB"), "{e}");
    c.backend = BackendKind::Rocksdb;
    with_replica_backend(&c, Probe).unwrap();
}
