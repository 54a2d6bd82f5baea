//! State shared by the handle's clones, the writer thread and the maintenance thread.

use std::sync::{Arc, Mutex, Weak};

use chain_store::{Block, ChainModel};
use dag_store::{StoredVertex, VertexHash};
use storage_api::Durability;
use storage_metrics::{Health, Metrics, Observe, Observed, Sample, Status};

use crate::backend::{Backend, disk_usage};
use crate::breaker::BreakerState;
use crate::caches::Caches;
use crate::config::Config;
use crate::deadletter::{Book, DeadLetter};
use crate::error::StorageError;
use crate::history::{History, Through};
use crate::intake::{Intake, Receivers};
use crate::request::Request;
use crate::schedule::ScheduleState;
use crate::store_id::StoreId;
use crate::stores::Stores;

/// What the handle's clones, the writer and the background threads share: the open stores and
/// what sits beside them, each part with its owner — the write side's admission ([`Intake`]),
/// the dead letters ([`Book`]), the backup schedule ([`ScheduleState`]), the archive
/// ([`History`]).
pub(crate) struct Shared<B: Backend, M: ChainModel> {
    pub(crate) config: Config,
    pub(crate) stores: Stores<B, M>,
    pub(crate) caches: Caches<M>,
    pub(crate) metrics: Metrics,
    /// The lanes and what admits writes to them.
    pub(crate) intake: Intake<M>,
    /// The dead letters' count, next id and replay turn.
    pub(crate) dead_letters: Book,
    /// The history archive, when one is configured.
    pub(crate) history: Option<History>,
    /// The backup schedule's state.
    pub(crate) schedule: Mutex<ScheduleState>,
    /// The node lock, held while the stores are open (declared last: released after them).
    _lock: crate::datadir::DataDirLock,
}

/// The shared state and the lanes' receivers (for the writer thread), as opened.
pub(crate) struct Opened<B: Backend, M: ChainModel> {
    pub(crate) shared: Arc<Shared<B, M>>,
    pub(crate) lanes: Receivers<M>,
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
        let chain = crate::stores::trie_as_configured(chain, &config.state)?;
        let dead_letters = Book::open(&node)?;
        let caches = Caches::new(&config.caches)?;
        let history = History::open(&config.history, &config.caches.archive)?;
        let (intake, lanes) = Intake::new(&config.writer);
        let shared = Arc::new(Shared {
            stores: Stores { chain, dag, node },
            caches,
            metrics,
            intake,
            dead_letters,
            history,
            schedule: Mutex::default(),
            config,
            _lock: lock,
        });
        Ok(Opened { shared, lanes })
    }

    /// The history archive, or [`StorageError::NoArchive`].
    pub(crate) fn history(&self) -> Result<&History, StorageError> {
        self.history.as_ref().ok_or(StorageError::NoArchive)
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
        let letter = DeadLetter {
            id: 0,
            correlation_id: request.id.clone(),
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            op: request.op.name().to_owned(),
            reason: error.to_string(),
            attempts: request.attempts + 1,
            payload,
        };
        match self.dead_letters.put(&self.stores.node, letter) {
            Ok(letter) => {
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
        let breaker = self.intake.breaker().state();
        let poisoned = self.poisoned();
        let closing = self.intake.is_closing();
        let depths = self.intake.depths();
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
                "last_error": self.intake.last_error(),
                "dead_letters": self.dead_letters.count(),
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
        for (lane, depth, _) in self.intake.depths() {
            out.push(Sample::new(Observed::LaneDepth, depth as f64).label("lane", lane.as_str()));
        }
        let breaker = match self.intake.breaker().state() {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        };
        out.push(Sample::new(Observed::BreakerState, breaker));
        out.push(Sample::new(Observed::Poisoned, f64::from(u8::from(self.poisoned()))));
        out.push(Sample::new(Observed::DeadLetters, self.dead_letters.count() as f64));
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
