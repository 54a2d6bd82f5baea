//! Latency summaries.

use std::time::Duration;

/// Latency percentiles of a set of samples.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    /// Samples.
    pub count: usize,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Mean.
    pub mean: Duration,
}

impl Summary {
    /// Summarises nanosecond samples (sorts them).
    pub fn of(samples: &mut [u64]) -> Summary {
        assert!(!samples.is_empty(), "no samples");
        samples.sort_unstable();
        let at = |q: f64| Duration::from_nanos(samples[((samples.len() - 1) as f64 * q).round() as usize]);
        let mean = samples.iter().map(|&s| s as u128).sum::<u128>() / samples.len() as u128;
        Summary { count: samples.len(), p50: at(0.50), p99: at(0.99), mean: Duration::from_nanos(mean as u64) }
    }
}

/// Formats a duration in µs with two decimals.
pub fn micros(d: Duration) -> String {
    format!("{:.2} µs", d.as_secs_f64() * 1e6)
}
