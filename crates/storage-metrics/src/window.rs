//! A windowed latency distribution for SLO checks: log-spaced buckets of atomic counts,
//! drained at each evaluation.

use std::sync::atomic::{AtomicU64, Ordering};

/// Buckets: 1 µs × 2^(i/4), i.e. four per doubling, up to about 70 s.
const BUCKETS: usize = 104;

#[derive(Debug)]
pub(crate) struct Window {
    counts: [AtomicU64; BUCKETS],
}

impl Default for Window {
    fn default() -> Self {
        Window { counts: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

fn bucket_of(seconds: f64) -> usize {
    let micros = seconds * 1e6;
    if micros <= 1.0 {
        return 0;
    }
    ((micros.log2() * 4.0).ceil() as usize).min(BUCKETS - 1)
}

fn upper_bound(bucket: usize) -> f64 {
    2f64.powf(bucket as f64 / 4.0) / 1e6
}

impl Window {
    pub(crate) fn record(&self, seconds: f64) {
        self.counts[bucket_of(seconds)].fetch_add(1, Ordering::Relaxed);
    }

    /// The `q` quantile (upper bucket bound, within 19 %) of the samples since the last
    /// drain, and the sample count; resets the window.
    pub(crate) fn drain_quantile(&self, q: f64) -> (Option<f64>, u64) {
        let counts: Vec<u64> = self.counts.iter().map(|c| c.swap(0, Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return (None, 0);
        }
        let rank = ((total as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return (Some(upper_bound(i)), total);
            }
        }
        (Some(upper_bound(BUCKETS - 1)), total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_is_within_a_bucket_of_the_truth() {
        let w = Window::default();
        for i in 1..=1000 {
            w.record(i as f64 * 1e-5); // 10 µs .. 10 ms
        }
        let (p99, n) = w.drain_quantile(0.99);
        assert_eq!(n, 1000);
        let p99 = p99.unwrap();
        assert!((9.9e-3..=9.9e-3 * 1.19).contains(&p99), "{p99}");
        assert_eq!(w.drain_quantile(0.99), (None, 0));
    }
}
