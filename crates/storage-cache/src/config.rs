//! Cache configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One cache's settings. Capacity is by entry count unless `max_bytes` is set (then entries
/// are weighed, see [`TypedCache::weighted`](crate::TypedCache::weighted)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    /// Maximum number of entries (ignored when `max_bytes` is set). 0 disables the cache in
    /// effect (nothing is kept).
    pub max_entries: u64,
    /// Maximum total weight (bytes), when set.
    pub max_bytes: Option<u64>,
    /// Entries expire this many milliseconds after insertion, when set.
    pub ttl_ms: Option<u64>,
    /// Entries expire this many milliseconds after their last read, when set.
    pub tti_ms: Option<u64>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig { max_entries: 1_000, max_bytes: None, ttl_ms: None, tti_ms: None }
    }
}

/// An invalid cache setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cache `{cache}`: `{field}` {problem}")]
pub struct ConfigError {
    /// The cache.
    pub cache: String,
    /// The setting.
    pub field: &'static str,
    /// What is wrong.
    pub problem: String,
}

/// The longest expiry accepted: ten years, in milliseconds (moka refuses far longer ones).
pub const MAX_EXPIRY_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

impl CacheConfig {
    /// A cache of `max_entries` entries without expiry.
    pub fn entries(max_entries: u64) -> Self {
        CacheConfig { max_entries, ..CacheConfig::default() }
    }

    /// Sets the time-to-live.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl_ms = Some(ttl.as_millis() as u64);
        self
    }

    /// Sets the time-to-idle.
    pub fn with_tti(mut self, tti: Duration) -> Self {
        self.tti_ms = Some(tti.as_millis() as u64);
        self
    }

    /// Time-to-live, when set.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl_ms.map(Duration::from_millis)
    }

    /// Time-to-idle, when set.
    pub fn tti(&self) -> Option<Duration> {
        self.tti_ms.map(Duration::from_millis)
    }

    /// Checks the settings of the cache named `cache`.
    pub fn validate(&self, cache: &str) -> Result<(), ConfigError> {
        let err = |field: &'static str, problem: String| Err(ConfigError { cache: cache.to_owned(), field, problem });
        for (field, value) in [("ttl_ms", self.ttl_ms), ("tti_ms", self.tti_ms)] {
            match value {
                Some(0) => return err(field, "must be positive (omit it for no expiry)".into()),
                Some(v) if v > MAX_EXPIRY_MS => {
                    return err(
                        field,
                        format!("must be at most {MAX_EXPIRY_MS} (ten years; omit it for no expiry), not {v}"),
                    );
                }
                _ => {}
            }
        }
        if self.max_bytes == Some(0) {
            return err("max_bytes", "must be positive (omit it to count entries)".into());
        }
        Ok(())
    }
}
