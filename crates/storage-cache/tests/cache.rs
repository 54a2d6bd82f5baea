//! Behaviour of the typed cache: counters, capacity, expiry, invalidation, stale inserts.

use std::sync::Arc;
use std::time::Duration;

use storage_cache::{CacheConfig, TypedCache};

#[test]
fn counts_hits_misses_and_inserts() {
    let c: TypedCache<u64, Arc<String>> = TypedCache::new("t", &CacheConfig::entries(10)).unwrap();
    assert_eq!(c.get(&1), None);
    c.insert(1, Arc::new("one".into()));
    assert_eq!(c.get(&1).as_deref().map(String::as_str), Some("one"));
    let s = c.stats();
    assert_eq!((s.hits, s.misses, s.inserts, s.entries), (1, 1, 1, 1));
    assert_eq!(s.hit_ratio(), Some(0.5));
}

#[test]
fn evicts_beyond_entry_capacity_and_counts_it() {
    let c: TypedCache<u64, u64> = TypedCache::new("t", &CacheConfig::entries(50)).unwrap();
    for i in 0..500 {
        c.insert(i, i);
    }
    let s = c.stats();
    assert!(s.entries <= 50, "{s:?}");
    assert!(s.evictions >= 400, "{s:?}");
}

#[test]
fn weighs_entries_against_a_byte_capacity() {
    let config = CacheConfig { max_bytes: Some(10_000), ..CacheConfig::default() };
    let c: TypedCache<u64, Arc<Vec<u8>>> =
        TypedCache::weighted("t", &config, |_, v: &Arc<Vec<u8>>| v.len() as u32).unwrap();
    for i in 0..100 {
        c.insert(i, Arc::new(vec![0; 1_000]));
    }
    let s = c.stats();
    assert!(s.weighted_size <= 10_000, "{s:?}");
    assert!(s.entries <= 10, "{s:?}");
}

#[test]
fn expires_after_ttl() {
    let c: TypedCache<u64, u64> =
        TypedCache::new("t", &CacheConfig::entries(10).with_ttl(Duration::from_millis(50))).unwrap();
    c.insert(1, 1);
    assert_eq!(c.get(&1), Some(1));
    std::thread::sleep(Duration::from_millis(120));
    assert_eq!(c.get(&1), None);
    assert!(c.stats().expirations >= 1 || c.stats().entries == 0);
}

#[test]
fn invalidation_drops_entries() {
    let c: TypedCache<u64, u64> = TypedCache::new("t", &CacheConfig::entries(100)).unwrap();
    for i in 0..10 {
        c.insert(i, i);
    }
    c.invalidate(&3);
    assert_eq!(c.get(&3), None);
    c.invalidate_if(|k, _| *k >= 5);
    assert_eq!(c.get(&7), None);
    assert_eq!(c.get(&4), Some(4));
    c.invalidate_all();
    assert_eq!(c.get(&4), None);
}

#[test]
fn a_value_read_before_an_invalidation_is_not_cached_after_it() {
    let c: TypedCache<u64, u64> = TypedCache::new("t", &CacheConfig::entries(100)).unwrap();
    let seen = c.generation();
    // ... the reader reads the old value from the store; meanwhile a reorg invalidates ...
    c.invalidate_all();
    assert!(!c.insert_at(seen, 1, 111));
    assert_eq!(c.get(&1), None);
    assert_eq!(c.stats().stale_inserts_dropped, 1);
    // A read that started after the invalidation is cached.
    let seen = c.generation();
    assert!(c.insert_at(seen, 1, 222));
    assert_eq!(c.get(&1), Some(222));
}

#[test]
fn read_through_loads_once() {
    let c: TypedCache<u64, u64> = TypedCache::new("t", &CacheConfig::entries(100)).unwrap();
    let mut loads = 0;
    for _ in 0..3 {
        let v: Result<_, ()> = c.get_or_load(9, |k| {
            loads += 1;
            Ok(Some(k * 2))
        });
        assert_eq!(v, Ok(Some(18)));
    }
    assert_eq!(loads, 1);
    // Absent values are not cached.
    let v: Result<Option<u64>, ()> = c.get_or_load(10, |_| Ok(None));
    assert_eq!(v, Ok(None));
    assert_eq!(c.stats().entries, 1);
}

#[test]
fn config_rejects_unknown_keys_and_zero_durations() {
    let err = toml::from_str::<CacheConfig>("max_entrys = 5").unwrap_err().to_string();
    assert!(err.contains("max_entrys"), "{err}");
    let config: CacheConfig = toml::from_str("ttl_ms = 0").unwrap();
    let err = TypedCache::<u64, u64>::new("state", &config).unwrap_err().to_string();
    assert_eq!(err, "cache `state`: `ttl_ms` must be positive (omit it for no expiry)");
}
