//! Injected engine failures and stalls: retries, the circuit breaker, timeouts. The engine is
//! real RocksDB wrapped in a thin layer that fails or delays writes on demand (one process-
//! wide switch, so these tests live in their own binary and run one at a time).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use chain_store::synthetic::Synthetic;
use dag_store::{Vertex, VertexBuilder};
use node_storage::{
    Backend, BackendKind, BreakerState, Config, RocksStore, StorageError, StorageHandle, StoreId, caps,
};
use storage_api::{
    BackendError, BackendErrorKind, Direction, Durability, FlushError, KvFlush, KvRead, KvReader, KvStats, KvWrite,
    MaintenanceError, OpenError, RawRange, ReadError, Schema, TableStats, WriteError,
};
use storage_metrics::Sample;

/// Writes to fail from now on (u32::MAX: all).
static FAIL: AtomicU32 = AtomicU32::new(0);
/// Milliseconds each write stalls.
static DELAY_MS: AtomicU64 = AtomicU64::new(0);
/// One test at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Faulty(RocksStore);

impl KvRead for Faulty {
    type Cursor<'a> = <RocksStore as KvRead>::Cursor<'a>;
    fn get_raw_with<R>(&self, table: &str, key: &[u8], f: impl FnOnce(&[u8]) -> R) -> Result<Option<R>, ReadError> {
        self.0.get_raw_with(table, key, f)
    }
    fn multi_get_raw_with(
        &self,
        table: &str,
        keys: &[&[u8]],
        f: &mut dyn FnMut(usize, Option<&[u8]>),
    ) -> Result<(), ReadError> {
        self.0.multi_get_raw_with(table, keys, f)
    }
    fn cursor(&self, table: &str, range: RawRange, direction: Direction) -> Result<Self::Cursor<'_>, ReadError> {
        self.0.cursor(table, range, direction)
    }
}

impl KvWrite for Faulty {
    type Batch<'a> = <RocksStore as KvWrite>::Batch<'a>;
    fn is_poisoned(&self) -> bool {
        self.0.is_poisoned()
    }
    fn raw_batch(&self) -> Self::Batch<'_> {
        self.0.raw_batch()
    }
    fn write_raw(&self, batch: Self::Batch<'_>, durability: Durability) -> Result<(), WriteError> {
        let delay = DELAY_MS.load(Ordering::SeqCst);
        if delay > 0 {
            std::thread::sleep(Duration::from_millis(delay));
        }
        let fail = FAIL.load(Ordering::SeqCst);
        if fail > 0 {
            if fail != u32::MAX {
                FAIL.fetch_sub(1, Ordering::SeqCst);
            }
            return Err(WriteError::Backend(BackendError::new("faulty", BackendErrorKind::Io, "injected I/O error")));
        }
        self.0.write_raw(batch, durability)
    }
}

impl KvReader for Faulty {
    const BACKEND: &'static str = "faulty-rocksdb";
    fn schema(&self) -> &Schema {
        self.0.schema()
    }
    fn stored_schema_version(&self) -> u32 {
        self.0.stored_schema_version()
    }
}

impl KvFlush for Faulty {
    fn flush(&self) -> Result<(), FlushError> {
        self.0.flush()
    }
    fn sync(&self) -> Result<(), FlushError> {
        self.0.sync()
    }
}

impl KvStats for Faulty {
    fn table_stats_raw(&self, table: &str) -> Result<TableStats, MaintenanceError> {
        self.0.table_stats_raw(table)
    }
}

impl Backend for Faulty {
    const KIND: BackendKind = BackendKind::Rocksdb;
    fn open_store_with(
        config: &Config,
        name: StoreId,
        schema: Schema,
        policy: storage_api::VersionPolicy,
    ) -> Result<Self, OpenError> {
        RocksStore::open_store_with(config, name, schema, policy).map(Faulty)
    }
    type Reader = <RocksStore as Backend>::Reader;
    fn open_reader(config: &Config, name: StoreId, schema: Schema) -> Result<Self::Reader, OpenError> {
        RocksStore::open_reader(config, name, schema)
    }
    fn engine_samples(&self, store: StoreId, out: &mut Vec<Sample>) {
        self.0.engine_samples(store, out)
    }
    // The wrapper implements none of the optional capabilities: the facade refuses what needs
    // them, and loads through batches.
    type Views = caps::Absent;
    type Compaction = caps::Absent;
    type Loading = caps::Batched;
    type Physical = caps::Absent;
}

type Handle = StorageHandle<Faulty, Synthetic>;

fn vertex(i: u64) -> Vertex {
    VertexBuilder::new("a").id(format!("v{i}")).timestamp(i).build()
}

fn setup(
    f: impl FnOnce(&mut Config),
) -> (tempfile::TempDir, Handle, tokio::runtime::Runtime, std::sync::MutexGuard<'static, ()>) {
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    FAIL.store(0, Ordering::SeqCst);
    DELAY_MS.store(0, Ordering::SeqCst);
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    c.engine.cache_bytes = 8 << 20;
    c.engine.write_buffer_bytes = 4 << 20;
    f(&mut c);
    let h = Handle::open(c).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    (dir, h, rt, guard)
}

#[test]
fn transient_failures_are_retried() {
    let (_dir, h, rt, _g) = setup(|c| {
        c.writer.retries = 3;
        c.writer.retry_base_ms = 1;
    });
    rt.block_on(async {
        FAIL.store(2, Ordering::SeqCst);
        h.insert_vertex(vertex(1), vec![]).await.expect("succeeds on the third attempt");
        assert!(h.vertex(vertex(1).hash).await.unwrap().is_some());
        assert!(h.metrics().render().contains("node_storage_write_retries_total 2"));
        // Four failures: the first attempt and three retries; the outage ends before the
        // dead-letter write (which goes to the same engine).
        FAIL.store(4, Ordering::SeqCst);
        let e = h.insert_vertex(vertex(2), vec![]).await.unwrap_err();
        assert!(e.to_string().contains("injected I/O error"), "{e}");
        // Engine failures may succeed later: dead-lettered.
        assert_eq!(h.dead_letters().await.unwrap().len(), 1);
    });
}

#[test]
fn breaker_opens_fails_fast_and_recovers() {
    let (_dir, h, rt, _g) = setup(|c| {
        c.writer.retries = 0;
        c.writer.breaker_failures = 3;
        c.writer.breaker_cooldown_ms = 300;
    });
    rt.block_on(async {
        FAIL.store(u32::MAX, Ordering::SeqCst);
        for i in 0..3 {
            let e = h.insert_vertex(vertex(i), vec![]).await.unwrap_err();
            assert!(e.is_engine_failure(), "{e}");
        }
        assert_eq!(h.breaker(), BreakerState::Open);
        assert_eq!(h.health().status, storage_metrics::Status::Failing);
        let started = std::time::Instant::now();
        let e = h.insert_vertex(vertex(10), vec![]).await.unwrap_err();
        assert!(matches!(e, StorageError::Unavailable { .. }), "{e}");
        assert!(started.elapsed() < Duration::from_millis(50), "refused fast");
        // Still failing after the cooldown: the probe fails and the breaker reopens.
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert!(h.insert_vertex(vertex(11), vec![]).await.unwrap_err().is_engine_failure());
        assert_eq!(h.breaker(), BreakerState::Open);
        // The engine recovers: after the cooldown a probe succeeds and closes the breaker.
        FAIL.store(0, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(h.breaker(), BreakerState::HalfOpen);
        h.insert_vertex(vertex(12), vec![]).await.unwrap();
        assert_eq!(h.breaker(), BreakerState::Closed);
        h.insert_vertex(vertex(13), vec![]).await.unwrap();
        let text = h.metrics().render();
        assert!(text.contains("node_storage_rejected_total 1"), "{text}");
        assert!(text.contains("node_storage_breaker_state 0"), "{text}");
    });
}

#[test]
fn slow_writes_time_out_and_queued_ones_are_not_run_late() {
    let (_dir, h, rt, _g) = setup(|c| c.writer.request_timeout_ms = 100);
    rt.block_on(async {
        DELAY_MS.store(300, Ordering::SeqCst);
        let (a, b) = tokio::join!(h.insert_vertex(vertex(1), vec![]), async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            h.insert_vertex(vertex(2), vec![]).await
        });
        assert!(matches!(a, Err(StorageError::Timeout { .. })), "{a:?}");
        assert!(matches!(b, Err(StorageError::Timeout { .. })), "{b:?}");
        DELAY_MS.store(0, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(400)).await;
        // The first had started and committed (inserts are idempotent, so a retry is safe);
        // the second expired in the queue and was never run.
        assert!(h.vertex(vertex(1).hash).await.unwrap().is_some());
        assert!(h.vertex(vertex(2).hash).await.unwrap().is_none());
        assert!(h.metrics().render().contains("node_storage_timeouts_total"));
    });
}
