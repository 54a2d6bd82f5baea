//! Metrics and service-level settings.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// Metrics settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`, `/metrics.json` and `/health` over HTTP.
    pub enabled: bool,
    /// Address of the HTTP endpoint. Loopback by default: exposing it is a deliberate choice.
    pub listen: SocketAddr,
    /// Most connections the endpoint holds open at once; further ones are closed on arrival.
    /// Default: 64 (1–10,000).
    pub max_connections: usize,
    /// Milliseconds a connection may stay open, idle or not (1 s – 1 h). Default: 10,000.
    pub connection_timeout_ms: u64,
    /// Service-level thresholds.
    pub slo: SloConfig,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_connections: 64,
            connection_timeout_ms: 10_000,
            slo: SloConfig::default(),
        }
    }
}

/// A setting out of its range: the key (relative to the metrics section) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSetting {
    /// The key, e.g. `slo.window_s`.
    pub key: &'static str,
    /// What is wrong.
    pub reason: String,
}

impl std::fmt::Display for InvalidSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "`{}` {}", self.key, self.reason)
    }
}

fn invalid(key: &'static str, reason: String) -> Result<(), InvalidSetting> {
    Err(InvalidSetting { key, reason })
}

impl MetricsConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if !(1..=10_000).contains(&self.max_connections) {
            return invalid("max_connections", format!("must be within 1..=10000, not {}", self.max_connections));
        }
        if !(1_000..=3_600_000).contains(&self.connection_timeout_ms) {
            return invalid(
                "connection_timeout_ms",
                format!("must be within 1000..=3600000, not {}", self.connection_timeout_ms),
            );
        }
        self.slo.validate()
    }
}

/// Service-level thresholds, evaluated over each window ([`crate::Metrics::evaluate_slos`]).
/// A window above a latency threshold, or below the hit-ratio floor, counts one violation in
/// `node_storage_slo_violations_total{slo=…}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SloConfig {
    /// Write latency p99 ceiling, milliseconds.
    pub write_p99_ms: f64,
    /// Read latency p99 ceiling, milliseconds.
    pub read_p99_ms: f64,
    /// Floor for each cache's hit ratio (0–1), judged once the cache has seen
    /// `min_cache_lookups` lookups in the window.
    pub cache_hit_ratio_min: f64,
    /// Lookups a cache needs in a window before its hit ratio is judged.
    pub min_cache_lookups: u64,
    /// Seconds per evaluation window.
    pub window_s: u64,
}

impl Default for SloConfig {
    fn default() -> Self {
        SloConfig {
            write_p99_ms: 10.0,
            read_p99_ms: 5.0,
            cache_hit_ratio_min: 0.8,
            min_cache_lookups: 100,
            window_s: 60,
        }
    }
}

impl SloConfig {
    /// Checks the thresholds.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (key, v) in [("slo.write_p99_ms", self.write_p99_ms), ("slo.read_p99_ms", self.read_p99_ms)] {
            if !(v > 0.0 && v <= 3_600_000.0) {
                return invalid(key, format!("must be a positive number of milliseconds up to 3600000, not {v}"));
            }
        }
        if !(0.0..=1.0).contains(&self.cache_hit_ratio_min) {
            return invalid(
                "slo.cache_hit_ratio_min",
                format!("must be between 0 and 1, not {}", self.cache_hit_ratio_min),
            );
        }
        if !(1..=86_400).contains(&self.window_s) {
            return invalid("slo.window_s", format!("must be within 1..=86400, not {}", self.window_s));
        }
        Ok(())
    }
}
