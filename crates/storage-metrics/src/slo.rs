//! Service-level indicators judged per window against [`SloConfig`].

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::SloConfig;
use crate::observe::{Observed, Sample};
use crate::window::Window;

/// One window's verdicts.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SloReport {
    /// Write p99 in seconds (`None` without writes in the window) and whether it broke the
    /// threshold.
    pub write_p99: Option<(f64, bool)>,
    /// Read p99 in seconds and whether it broke the threshold.
    pub read_p99: Option<(f64, bool)>,
    /// Per cache: the window's hit ratio and whether it fell below the floor (caches with too
    /// few lookups are not judged).
    pub cache_hit_ratio: Vec<(String, f64, bool)>,
}

impl SloReport {
    /// Whether any indicator broke its threshold.
    pub fn violated(&self) -> bool {
        self.indicators().any(|(_, _, v)| v)
    }

    /// `(indicator name, value, violated)` for every judged indicator.
    pub fn indicators(&self) -> impl Iterator<Item = (String, f64, bool)> + '_ {
        let w = self.write_p99.map(|(v, b)| ("write_p99_seconds".to_owned(), v, b));
        let r = self.read_p99.map(|(v, b)| ("read_p99_seconds".to_owned(), v, b));
        let c = self.cache_hit_ratio.iter().map(|(name, v, b)| (format!("cache_hit_ratio:{name}"), *v, *b));
        w.into_iter().chain(r).chain(c)
    }
}

pub(crate) struct SloTracker {
    config: SloConfig,
    reads: Window,
    writes: Window,
    /// Cumulative (hits, misses) per cache at the last evaluation.
    last_cache: Mutex<HashMap<String, (f64, f64)>>,
}

impl SloTracker {
    pub(crate) fn new(config: SloConfig) -> Self {
        SloTracker { config, reads: Window::default(), writes: Window::default(), last_cache: Mutex::default() }
    }

    pub(crate) fn read(&self, seconds: f64) {
        self.reads.record(seconds);
    }

    pub(crate) fn write(&self, seconds: f64) {
        self.writes.record(seconds);
    }

    pub(crate) fn evaluate(&self, samples: &[Sample]) -> SloReport {
        let judge = |w: &Window, ceiling_ms: f64| w.drain_quantile(0.99).0.map(|p| (p, p * 1e3 > ceiling_ms));
        let mut report = SloReport {
            write_p99: judge(&self.writes, self.config.write_p99_ms),
            read_p99: judge(&self.reads, self.config.read_p99_ms),
            cache_hit_ratio: Vec::new(),
        };
        let mut now: HashMap<String, (f64, f64)> = HashMap::new();
        for s in samples.iter().filter(|s| s.what == Observed::CacheRequests) {
            let label = |k: &str| s.labels.iter().find(|(key, _)| *key == k).map(|(_, v)| v.as_str());
            let (Some(cache), Some(result)) = (label("cache"), label("result")) else { continue };
            let e = now.entry(cache.to_owned()).or_default();
            if result == "hit" {
                e.0 += s.value;
            } else {
                e.1 += s.value;
            }
        }
        let mut last = self.last_cache.lock().unwrap_or_else(|p| p.into_inner());
        let mut names: Vec<&String> = now.keys().collect();
        names.sort();
        for name in names {
            let (hits, misses) = now[name];
            let (h0, m0) = last.get(name).copied().unwrap_or_default();
            let (dh, dm) = ((hits - h0).max(0.0), (misses - m0).max(0.0));
            if dh + dm >= self.config.min_cache_lookups as f64 && dh + dm > 0.0 {
                let ratio = dh / (dh + dm);
                report.cache_hit_ratio.push((name.clone(), ratio, ratio < self.config.cache_hit_ratio_min));
            }
        }
        *last = now;
        report
    }
}
