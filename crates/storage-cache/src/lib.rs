//! Typed, instrumented in-memory caches on [moka], for decoded objects in front of a store.
//!
//! * [`CacheConfig`]: capacity by entry count or by weight (bytes, from a weigher), optional
//!   time-to-live and time-to-idle; serde-loadable, every field defaulted.
//! * [`TypedCache`]: `get` / `insert` / `invalidate` / `invalidate_all` / `invalidate_if`
//!   with hit, miss, insert, eviction, expiry and invalidation counters ([`CacheStats`]).
//! * Stale-insert protection for read-through use: a reader takes a [`Generation`] before it
//!   reads the store and inserts with [`TypedCache::insert_at`]; any invalidation in between
//!   (a reorg, a prune) bumps the generation and the late insert is dropped, so a value read
//!   before a reorg can never be served after it. [`TypedCache::get_or_load`] does this for
//!   you.
//!
//! The cache knows nothing of stores or metrics: the facade wires it in front of the domain
//! stores and exports [`CacheStats`] as metrics.

mod config;
mod stats;

use std::hash::Hash;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use config::{CacheConfig, ConfigError, MAX_EXPIRY_MS};
use moka::notification::RemovalCause;
pub use stats::CacheStats;
use stats::Counters;

/// A typed cache from `K` to `V` (values are cloned out: use `Arc<T>` for large objects).
pub struct TypedCache<K, V> {
    name: &'static str,
    inner: moka::sync::Cache<K, V>,
    counters: Arc<Counters>,
    generation: Arc<AtomicU64>,
}

impl<K, V> Clone for TypedCache<K, V> {
    fn clone(&self) -> Self {
        TypedCache {
            name: self.name,
            inner: self.inner.clone(),
            counters: self.counters.clone(),
            generation: self.generation.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for TypedCache<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TypedCache").field("name", &self.name).field("stats", &self.counters.snapshot()).finish()
    }
}

/// The invalidation generation a reader observed before reading the store
/// (see [`TypedCache::insert_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation(u64);

impl<K, V> TypedCache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache named `name` (the name labels its metrics). With
    /// [`Capacity::Bytes`](config::Capacity::Bytes) every entry weighs 1 unless built with
    /// [`TypedCache::weighted`].
    pub fn new(name: &'static str, config: &CacheConfig) -> Result<Self, ConfigError> {
        Self::build(name, config, None, false)
    }

    /// A cache that keeps the most recently used entries (least-recently-used eviction), for
    /// items fetched at a cost and read again right away — the default policy (TinyLFU) may
    /// refuse a new entry that has not been asked for before, which suits hot sets, not these.
    pub fn recent(name: &'static str, config: &CacheConfig) -> Result<Self, ConfigError> {
        Self::build(name, config, None, true)
    }

    /// A cache whose capacity counts `weigher(key, value)` units per entry (bytes, typically)
    /// when the config gives a byte capacity.
    pub fn weighted(
        name: &'static str,
        config: &CacheConfig,
        weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static,
    ) -> Result<Self, ConfigError> {
        Self::build(name, config, Some(Box::new(weigher)), false)
    }

    #[allow(clippy::type_complexity)]
    fn build(
        name: &'static str,
        config: &CacheConfig,
        weigher: Option<Box<dyn Fn(&K, &V) -> u32 + Send + Sync + 'static>>,
        lru: bool,
    ) -> Result<Self, ConfigError> {
        config.validate(name)?;
        let counters = Arc::new(Counters::default());
        let listener_counters = counters.clone();
        let mut builder = moka::sync::Cache::builder()
            .name(name)
            .support_invalidation_closures()
            .eviction_listener(move |_k, _v, cause| listener_counters.removed(cause_kind(cause)));
        match (config.max_bytes, weigher) {
            (Some(bytes), Some(w)) => builder = builder.max_capacity(bytes).weigher(move |k, v| w(k, v)),
            (Some(bytes), None) => builder = builder.max_capacity(bytes),
            (None, _) => builder = builder.max_capacity(config.max_entries),
        }
        if lru {
            builder = builder.eviction_policy(moka::policy::EvictionPolicy::lru());
        }
        if let Some(ttl) = config.ttl() {
            builder = builder.time_to_live(ttl);
        }
        if let Some(tti) = config.tti() {
            builder = builder.time_to_idle(tti);
        }
        Ok(TypedCache { name, inner: builder.build(), counters, generation: Arc::new(AtomicU64::new(0)) })
    }

    /// The cache's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The cached value of `key`, counting a hit or a miss.
    pub fn get(&self, key: &K) -> Option<V> {
        let v = self.inner.get(key);
        self.counters.lookup(v.is_some());
        v
    }

    /// Caches `value` under `key` unconditionally (for values the caller knows are current,
    /// such as those it has just written).
    pub fn insert(&self, key: K, value: V) {
        self.counters.inserted();
        self.inner.insert(key, value);
    }

    /// The current invalidation generation; take it *before* reading the store.
    pub fn generation(&self) -> Generation {
        Generation(self.generation.load(Ordering::SeqCst))
    }

    /// Caches a value read from the store after `seen` was taken, unless an invalidation
    /// happened since (then the value may be stale and is not kept). Returns whether it was
    /// kept.
    pub fn insert_at(&self, seen: Generation, key: K, value: V) -> bool {
        if self.generation() != seen {
            self.counters.dropped_stale();
            return false;
        }
        self.inner.insert(key.clone(), value);
        // An invalidation may have run between the check and the insert: it bumped the
        // generation before clearing, so either we see the bump here or its clear ran after
        // our insert.
        if self.generation() != seen {
            self.counters.dropped_stale();
            self.inner.invalidate(&key);
            return false;
        }
        self.counters.inserted();
        true
    }

    /// Read-through: the cached value, or `load()`'s value (cached when `Some`, with
    /// stale-insert protection).
    pub fn get_or_load<E>(&self, key: K, load: impl FnOnce(&K) -> Result<Option<V>, E>) -> Result<Option<V>, E> {
        if let Some(v) = self.get(&key) {
            return Ok(Some(v));
        }
        let seen = self.generation();
        let loaded = load(&key)?;
        if let Some(v) = &loaded {
            self.insert_at(seen, key, v.clone());
        }
        Ok(loaded)
    }

    /// Drops `key`.
    pub fn invalidate(&self, key: &K) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.invalidate(key);
    }

    /// Drops every entry.
    pub fn invalidate_all(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.inner.invalidate_all();
    }

    /// Drops every entry for which `predicate` holds.
    pub fn invalidate_if(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        // Only fails when closures are unsupported; they are enabled in `build`.
        if self.inner.invalidate_entries_if(predicate).is_err() {
            self.inner.invalidate_all();
        }
    }

    /// Counters and sizes now.
    pub fn stats(&self) -> CacheStats {
        self.inner.run_pending_tasks();
        let mut s = self.counters.snapshot();
        s.entries = self.inner.entry_count();
        s.weighted_size = self.inner.weighted_size();
        s
    }
}

fn cause_kind(cause: RemovalCause) -> stats::Removal {
    match cause {
        RemovalCause::Size => stats::Removal::Evicted,
        RemovalCause::Expired => stats::Removal::Expired,
        RemovalCause::Explicit => stats::Removal::Invalidated,
        RemovalCause::Replaced => stats::Removal::Replaced,
    }
}
