//! State shared by the handle's clones, the writer thread and the maintenance thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chain_store::{Block, ChainModel};
use dag_store::{StoredVertex, VertexHash};
use storage_api::Durability;
use storage_metrics::{Health, Lane, Metrics, Observe, Observed, Sample, Status};
use tokio::sync::mpsc;

use crate::backend::{Backend, disk_usage};
use crate::breaker::{Breaker, BreakerState};
use crate::caches::Caches;
use crate::config::Config;
use crate::deadletter::{self, DeadLetter};
use crate::error::StorageError;
use crate::history::{History, Through};
use crate::request::Request;
use crate::stores::{StoreId, Stores};

/// The three lanes' senders.
pub(crate) struct Lanes<M: ChainModel> {
    pub(crate) high: mpsc::Sender<Request<M>>,
    pub(crate) normal: mpsc::Sender<Request<M>>,
    pub(crate) low: mpsc::Sender<Request<M>>,
}

impl<M: ChainModel> Lanes<M> {
    pub(crate) fn get(&self, lane: Lane) -> &mpsc::Sender<Request<M>> {
        match lane {
            Lane::High => &self.high,
            Lane::Normal => &self.normal,
            Lane::Low => &self.low,
        }
    }

    /// (lane, queued, capacity) for each lane.
    pub(crate) fn depths(&self) -> [(Lane, usize, usize); 3] {
        [Lane::High, Lane::Normal, Lane::Low].map(|l| {
            let s = self.get(l);
            (l, s.max_capacity() - s.capacity(), s.max_capacity())
        })
    }
}

pub(crate) struct Shared<B: Backend, M: ChainModel> {
    pub(crate) config: Config,
    pub(crate) stores: Stores<B, M>,
    pub(crate) caches: Caches<M>,
    pub(crate) metrics: Metrics,
    pub(crate) breaker: Breaker,
    pub(crate) lanes: Lanes<M>,
    pub(crate) closing: AtomicBool,
    pub(crate) next_request: AtomicU64,
    pub(crate) dead_letters: AtomicU64,
    pub(crate) next_dead_letter: Mutex<u64>,
    /// Held by a dead-letter replay: one at a time, so an entry is removed (and counted off)
    /// once.
    pub(crate) replaying: tokio::sync::Mutex<()>,
    pub(crate) last_error: Mutex<Option<String>>,
    /// The history archive, when one is configured.
    pub(crate) history: Option<History>,
    /// The backup schedule's state.
    pub(crate) schedule: Mutex<crate::schedule::ScheduleState>,
    /// The node lock, held while the stores are open (declared last: released after them).
    _lock: crate::datadir::DataDirLock,
}

pub(crate) struct Opened<B: Backend, M: ChainModel> {
    pub(crate) shared: Arc<Shared<B, M>>,
    pub(crate) high: mpsc::Receiver<Request<M>>,
    pub(crate) normal: mpsc::Receiver<Request<M>>,
    pub(crate) low: mpsc::Receiver<Request<M>>,
}

impl<B: Backend, M: ChainModel> Shared<B, M> {
    pub(crate) fn open(config: Config, metrics: Metrics) -> Result<Opened<B, M>, StorageError> {
        config.validate()?;
        let lock = crate::datadir::open_for_writing(&config.data_dir, B::KIND)?;
        let Stores { chain, dag, node } = Stores::<B, M>::open(|store, schema| {
            B::open_store(&config, store, schema).map_err(|source| StorageError::Open { store, source })
        })?;
        let chain = chain.with_insert_durability(Durability::Buffered).with_state_root_check(config.state.check_roots);
        let dag = dag.with_insert_durability(Durability::Buffered);
        // A bulk import (era1) stopped while committing a range: remove what it ingested of
        // that range, so the node starts from the last committed head.
        if let Some((from, to)) = chain.roll_back_pending_import()? {
            tracing::warn!(from, to, "rolled back the uncommitted range of an interrupted bulk import");
        }
        let dead_letters = deadletter::count(&node)?;
        let next_dead_letter = deadletter::next_id(&node)?;
        let caches = Caches::new(&config.caches)?;
        let history = History::open(&config.history, &config.caches.archive)?;
        let w = &config.writer;
        let (high_tx, high) = mpsc::channel(w.high_lane);
        let (normal_tx, normal) = mpsc::channel(w.normal_lane);
        let (low_tx, low) = mpsc::channel(w.low_lane);
        let breaker = Breaker::new(w.breaker_failures, Duration::from_millis(w.breaker_cooldown_ms));
        let shared = Arc::new(Shared {
            stores: Stores { chain, dag, node },
            caches,
            metrics,
            breaker,
            lanes: Lanes { high: high_tx, normal: normal_tx, low: low_tx },
            closing: AtomicBool::new(false),
            next_request: AtomicU64::new(1),
            dead_letters: AtomicU64::new(dead_letters),
            next_dead_letter: Mutex::new(next_dead_letter),
            replaying: tokio::sync::Mutex::new(()),
            last_error: Mutex::new(None),
            history,
            schedule: Mutex::default(),
            config,
            _lock: lock,
        });
        Ok(Opened { shared, high, normal, low })
    }

    pub(crate) fn request_id(&self) -> String {
        format!("{:08x}", self.next_request.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn set_last_error(&self, e: &StorageError) {
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
    }

    /// The history archive, or `Unsupported` naming the setting.
    pub(crate) fn history(&self) -> Result<&History, StorageError> {
        self.history.as_ref().ok_or_else(|| {
            StorageError::Unsupported("no history archive is configured (set `history.kind` in the config)".into())
        })
    }

    /// The stores with the archive behind them.
    pub(crate) fn through(&self) -> Through<'_, B, M> {
        Through::new(&self.stores.chain, &self.stores.dag, self.history.as_ref())
    }

    /// A block by hash, through the cache (and the archive for pruned heights).
    pub(crate) fn load_block(&self, hash: &M::Hash) -> Result<Option<Arc<Block<M>>>, StorageError> {
        let seen = self.caches.blocks.generation();
        let Some(block) = self.through().block(hash)? else { return Ok(None) };
        let block = Arc::new(block);
        self.caches.blocks.insert_at(seen, *hash, block.clone());
        Ok(Some(block))
    }

    /// The canonical hash at `number`, through the cache.
    pub(crate) fn load_canonical(&self, number: u64) -> Result<Option<M::Hash>, StorageError> {
        if let Some(h) = self.caches.canonical.get(&number) {
            return Ok(Some(h));
        }
        let seen = self.caches.canonical.generation();
        let Some(hash) = self.stores.chain.canonical_hash(number)? else { return Ok(None) };
        self.caches.canonical.insert_at(seen, number, hash);
        Ok(Some(hash))
    }

    /// A vertex by hash, through the cache (and the archive for pruned ones).
    pub(crate) fn load_vertex(&self, hash: &VertexHash) -> Result<Option<Arc<StoredVertex>>, StorageError> {
        let seen = self.caches.vertices.generation();
        let Some(v) = self.through().vertex(hash)? else { return Ok(None) };
        let v = Arc::new(v);
        self.caches.vertices.insert_at(seen, *hash, v.clone());
        Ok(Some(v))
    }

    /// Keeps a failed write in the dead-letter table.
    pub(crate) fn dead_letter(&self, request: &Request<M>, error: &StorageError) {
        let payload = match postcard::to_allocvec(&request.op) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(id = %request.id, error = %e, "cannot encode a failed write for the dead-letter table");
                return;
            }
        };
        let mut next = self.next_dead_letter.lock().unwrap_or_else(|p| p.into_inner());
        let letter = DeadLetter {
            id: *next,
            correlation_id: request.id.clone(),
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            op: request.op.name().to_owned(),
            reason: error.to_string(),
            attempts: request.attempts + 1,
            payload,
        };
        match deadletter::put(&self.stores.node, &letter) {
            Ok(()) => {
                *next += 1;
                self.dead_letters.fetch_add(1, Ordering::Relaxed);
                self.metrics.count(storage_metrics::Event::DeadLettered, 1);
                tracing::warn!(id = %request.id, dead_letter = letter.id, op = letter.op, reason = %letter.reason, "write dead-lettered");
            }
            Err(e) => {
                self.metrics.error("dead_letter");
                tracing::error!(id = %request.id, error = %e, "cannot store a failed write in the dead-letter table; it is lost");
            }
        }
    }

    pub(crate) fn poisoned(&self) -> bool {
        self.stores.engines().iter().any(|(_, store)| store.is_poisoned())
    }

    pub(crate) fn health_now(&self) -> Health {
        let breaker = self.breaker.state();
        let poisoned = self.poisoned();
        let closing = self.closing.load(Ordering::Relaxed);
        let depths = self.lanes.depths();
        let filling = depths.iter().any(|(_, d, cap)| *d * 5 >= *cap * 4);
        let status = if breaker == BreakerState::Open || poisoned || closing {
            Status::Failing
        } else if breaker == BreakerState::HalfOpen || filling {
            Status::Degraded
        } else {
            Status::Ok
        };
        let lanes: serde_json::Map<String, serde_json::Value> = depths
            .iter()
            .map(|(l, d, cap)| (l.as_str().to_owned(), serde_json::json!({ "queued": d, "capacity": cap })))
            .collect();
        let head = self.stores.chain.head().map(|h| h.number);
        Health {
            status,
            detail: serde_json::json!({
                "backend": B::KIND.to_string(),
                "lanes": lanes,
                "breaker": breaker,
                "poisoned": poisoned,
                "shutting_down": closing,
                "last_error": self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone()
                    .or_else(|| self.breaker.last_error()),
                "dead_letters": self.dead_letters.load(Ordering::Relaxed),
                "chain_head": head,
                "archive_error": self.history.as_ref().and_then(History::last_error),
            }),
        }
    }

    fn store_samples(&self, id: StoreId, store: &B, out: &mut Vec<Sample>) {
        let name = id.name();
        let path = B::store_path(&self.config.data_dir, id);
        out.push(Sample::new(Observed::DbSizeBytes, disk_usage(&path) as f64).label("store", name));
        if let Ok(tables) = store.all_table_stats() {
            for (table, s) in tables {
                out.push(
                    Sample::new(Observed::TableSizeBytes, s.approx_bytes as f64)
                        .label("store", name)
                        .label("table", table),
                );
                out.push(
                    Sample::new(Observed::TableKeys, s.approx_keys as f64).label("store", name).label("table", table),
                );
            }
        }
        store.engine_samples(id, out);
    }
}

/// The metrics' view of the shared state. Weak: the metrics live inside the shared state, so
/// a strong reference would keep the stores open forever.
pub(crate) struct MetricsSource<B: Backend, M: ChainModel>(pub(crate) Weak<Shared<B, M>>);

impl<B: Backend, M: ChainModel> Observe for MetricsSource<B, M> {
    fn observe(&self, out: &mut Vec<Sample>) {
        if let Some(s) = self.0.upgrade() {
            s.observe_into(out);
        }
    }

    fn health(&self) -> Health {
        match self.0.upgrade() {
            Some(s) => s.health_now(),
            None => Health { status: Status::Failing, detail: serde_json::json!({ "shutting_down": true }) },
        }
    }
}

impl<B: Backend, M: ChainModel> Shared<B, M> {
    fn observe_into(&self, out: &mut Vec<Sample>) {
        for (name, s) in self.caches.stats() {
            out.push(Sample::new(Observed::CacheRequests, s.hits as f64).label("cache", name).label("result", "hit"));
            out.push(
                Sample::new(Observed::CacheRequests, s.misses as f64).label("cache", name).label("result", "miss"),
            );
            out.push(
                Sample::new(Observed::CacheHitRatio, s.hit_ratio().unwrap_or(0.0))
                    .label("cache", name)
                    .label("level", "l1"),
            );
            out.push(Sample::new(Observed::CacheEntries, s.entries as f64).label("cache", name));
            out.push(Sample::new(Observed::CacheEvictions, s.evictions as f64).label("cache", name));
        }
        for (id, store) in self.stores.engines() {
            self.store_samples(id, store, out);
        }
        for (lane, depth, _) in self.lanes.depths() {
            out.push(Sample::new(Observed::LaneDepth, depth as f64).label("lane", lane.as_str()));
        }
        let breaker = match self.breaker.state() {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        out.push(Sample::new(Observed::BreakerState, breaker));
        out.push(Sample::new(Observed::Poisoned, f64::from(u8::from(self.poisoned()))));
        out.push(Sample::new(Observed::DeadLetters, self.dead_letters.load(Ordering::Relaxed) as f64));
        if let Some(head) = self.stores.chain.head() {
            out.push(Sample::new(Observed::ChainHead, head.number as f64));
        }
        let dag_final = self.stores.dag.last_finalized().ok().flatten().map(|(seq, _)| seq);
        if let Some(seq) = dag_final {
            out.push(Sample::new(Observed::DagFinalized, seq as f64));
        }
        if let Some(h) = &self.history {
            h.samples(self.stores.chain.finalized().map(|f| f.number), dag_final, out);
        }
    }
}
