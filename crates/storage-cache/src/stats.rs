//! Cache counters.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// A cache's counters (since it was built) and current size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CacheStats {
    /// Lookups that found a value.
    pub hits: u64,
    /// Lookups that found nothing.
    pub misses: u64,
    /// Values inserted.
    pub inserts: u64,
    /// Entries evicted for capacity.
    pub evictions: u64,
    /// Entries dropped by TTL / time-to-idle.
    pub expirations: u64,
    /// Entries dropped by explicit invalidation.
    pub invalidations: u64,
    /// Late inserts refused because an invalidation happened after the value was read.
    pub stale_inserts_dropped: u64,
    /// Entries now.
    pub entries: u64,
    /// Total weight now (equals `entries` for unweighted caches).
    pub weighted_size: u64,
}

impl CacheStats {
    /// Hits / lookups, or `None` before the first lookup.
    pub fn hit_ratio(&self) -> Option<f64> {
        let lookups = self.hits + self.misses;
        (lookups > 0).then(|| self.hits as f64 / lookups as f64)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Removal {
    Evicted,
    Expired,
    Invalidated,
    Replaced,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    inserts: AtomicU64,
    evictions: AtomicU64,
    expirations: AtomicU64,
    invalidations: AtomicU64,
    stale: AtomicU64,
}

impl Counters {
    pub(crate) fn lookup(&self, hit: bool) {
        let c = if hit { &self.hits } else { &self.misses };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn inserted(&self) {
        self.inserts.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn dropped_stale(&self) {
        self.stale.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn removed(&self, why: Removal) {
        let c = match why {
            Removal::Evicted => &self.evictions,
            Removal::Expired => &self.expirations,
            Removal::Invalidated => &self.invalidations,
            Removal::Replaced => return,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> CacheStats {
        let l = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            hits: l(&self.hits),
            misses: l(&self.misses),
            inserts: l(&self.inserts),
            evictions: l(&self.evictions),
            expirations: l(&self.expirations),
            invalidations: l(&self.invalidations),
            stale_inserts_dropped: l(&self.stale),
            entries: 0,
            weighted_size: 0,
        }
    }
}
