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
    /// Service-level thresholds.
    pub slo: SloConfig,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig { enabled: true, listen: SocketAddr::from(([127, 0, 0, 1], 9464)), slo: SloConfig::default() }
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
    /// Checks the thresholds; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.write_p99_ms > 0.0 && self.write_p99_ms.is_finite()) {
            return Err(format!("slo.write_p99_ms must be a positive number, not {}", self.write_p99_ms));
        }
        if !(self.read_p99_ms > 0.0 && self.read_p99_ms.is_finite()) {
            return Err(format!("slo.read_p99_ms must be a positive number, not {}", self.read_p99_ms));
        }
        if !(0.0..=1.0).contains(&self.cache_hit_ratio_min) {
            return Err(format!("slo.cache_hit_ratio_min must be between 0 and 1, not {}", self.cache_hit_ratio_min));
        }
        if self.window_s == 0 {
            return Err("slo.window_s must be at least 1".into());
        }
        Ok(())
    }
}
