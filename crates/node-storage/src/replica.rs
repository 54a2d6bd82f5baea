//! [`ReplicaHandle`]: a read-only view of a node running on the same machine, for RPC
//! processes: the node's stores opened as RocksDB secondary instances, caught up with the
//! primary on an interval (`replica.catch_up_interval_ms`) and on demand, with the history
//! archive behind them for pruned heights. It has no write methods; it takes no lock and
//! changes nothing in the data directory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chain_store::synthetic::Synthetic;
use chain_store::{Block, ChainModel, Located, LogFilter, LogMatchOf, Pointers};
use dag_store::{StoredVertex, VertexHash};

use crate::backend::ReplicaBackend;
use crate::config::Config;
use crate::error::StorageError;
use crate::reader::NodeReader;

/// A read replica of a running node (see the module documentation). Clone it freely; the
/// catch-up thread stops with the last clone.
pub struct ReplicaHandle<B: ReplicaBackend, M: ChainModel = Synthetic> {
    inner: Arc<Inner<B, M>>,
    _thread: Arc<CatchUpThread>,
}

impl<B: ReplicaBackend, M: ChainModel> Clone for ReplicaHandle<B, M> {
    fn clone(&self) -> Self {
        ReplicaHandle { inner: self.inner.clone(), _thread: self._thread.clone() }
    }
}

impl<B: ReplicaBackend, M: ChainModel> std::fmt::Debug for ReplicaHandle<B, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicaHandle").field("data_dir", &self.inner.reader.config().data_dir).finish()
    }
}

struct Inner<B: ReplicaBackend, M: ChainModel> {
    reader: NodeReader<B, M>,
    /// When the last catch-up finished.
    last: Mutex<Instant>,
    catch_ups: AtomicU64,
    /// Serialises catch-ups (the interval's and those asked for).
    catching_up: Mutex<()>,
}

impl<B: ReplicaBackend, M: ChainModel> Inner<B, M> {
    fn catch_up(&self) -> Result<(), StorageError> {
        let _one = self.catching_up.lock().unwrap_or_else(|p| p.into_inner());
        self.reader.catch_up()?;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.catch_ups.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

struct CatchUpThread {
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for CatchUpThread {
    fn drop(&mut self) {
        self.stop.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl<B: ReplicaBackend, M: ChainModel> ReplicaHandle<B, M> {
    /// Opens the node at `config.data_dir` as a replica and starts catching up every
    /// `config.replica.catch_up_interval_ms` (never, if 0). Does not need a runtime; the async
    /// methods need a Tokio runtime.
    pub fn open(config: Config) -> Result<Self, StorageError> {
        let interval = Duration::from_millis(config.replica.catch_up_interval_ms);
        let reader = NodeReader::<B, M>::open_replica(config)?;
        let inner = Arc::new(Inner {
            reader,
            last: Mutex::new(Instant::now()),
            catch_ups: AtomicU64::new(0),
            catching_up: Mutex::new(()),
        });
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = if interval.is_zero() {
            None
        } else {
            let weak = Arc::downgrade(&inner);
            Some(
                std::thread::Builder::new()
                    .name("node-storage-replica".into())
                    .spawn(move || {
                        while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                            let Some(inner) = weak.upgrade() else { return };
                            if let Err(e) = inner.catch_up() {
                                tracing::warn!(error = %e, "replica could not catch up with the primary");
                            }
                        }
                    })
                    .map_err(|e| StorageError::Internal(format!("starting the replica thread: {e}")))?,
            )
        };
        let thread = Arc::new(CatchUpThread { stop: Mutex::new(Some(stop)), thread: Mutex::new(thread) });
        Ok(ReplicaHandle { inner, _thread: thread })
    }

    /// Catches up with the primary now: afterwards every write it had acknowledged is visible.
    pub async fn catch_up(&self) -> Result<(), StorageError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || inner.catch_up())
            .await
            .map_err(|e| StorageError::Internal(format!("catch-up task failed: {e}")))?
    }

    /// How long ago the view last caught up (since opening, if it never has).
    pub fn staleness(&self) -> Duration {
        self.inner.last.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }

    /// Catch-ups done so far.
    pub fn catch_ups(&self) -> u64 {
        self.inner.catch_ups.load(Ordering::Relaxed)
    }

    /// Runs `f` on the replica's stores on the blocking pool: every read of [`NodeReader`]
    /// (chain and DAG stores, checks, statistics, the archive's status) is available this way.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&NodeReader<B, M>) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || f(&inner.reader))
            .await
            .map_err(|e| StorageError::Internal(format!("replica read failed: {e}")))?
    }

    /// The chain's pointers as of the last catch-up.
    pub fn pointers(&self) -> Pointers<M::Hash> {
        self.inner.reader.chain().pointers()
    }

    /// A block by hash (pruned heights from the archive).
    pub async fn block(&self, hash: M::Hash) -> Result<Option<Block<M>>, StorageError> {
        self.read(move |r| r.block(&hash)).await
    }

    /// The canonical block at `number`.
    pub async fn block_by_number(&self, number: u64) -> Result<Option<Block<M>>, StorageError> {
        self.read(move |r| r.block_by_number(number)).await
    }

    /// A canonical transaction by hash.
    pub async fn transaction(&self, tx_hash: M::Hash) -> Result<Option<Located<M::Tx, M>>, StorageError> {
        self.read(move |r| r.transaction(&tx_hash)).await
    }

    /// A canonical transaction's receipt by transaction hash.
    pub async fn receipt(&self, tx_hash: M::Hash) -> Result<Option<Located<M::Receipt, M>>, StorageError> {
        self.read(move |r| r.receipt(&tx_hash)).await
    }

    /// Logs matching `filter`, at most `cap`.
    pub async fn logs(
        &self,
        filter: LogFilter<M::Address, M::Hash>,
        cap: usize,
    ) -> Result<Vec<LogMatchOf<M>>, StorageError> {
        self.read(move |r| r.logs(&filter, cap)).await
    }

    /// A vertex by hash.
    pub async fn vertex(&self, hash: VertexHash) -> Result<Option<StoredVertex>, StorageError> {
        self.read(move |r| r.vertex(&hash)).await
    }
}
