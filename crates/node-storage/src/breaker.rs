//! The circuit breaker: after `threshold` consecutive engine failures it opens and requests
//! fail fast with `Unavailable`; after the cooldown it half-opens and lets requests probe; the
//! first success closes it, a failure reopens it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::error::StorageError;

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerState {
    /// Requests flow.
    Closed,
    /// Cooling down done: requests probe the engine.
    HalfOpen,
    /// Requests are refused until the cooldown ends.
    Open,
}

#[derive(Debug)]
pub(crate) struct Breaker {
    threshold: u32,
    cooldown: Duration,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    failures: u32,
    open_until: Option<Instant>,
    half_open: bool,
    last_error: Option<String>,
    opened: u64,
}

impl Breaker {
    pub(crate) fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker { threshold, cooldown, inner: Mutex::default() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Admits a request, or refuses it while open.
    pub(crate) fn admit(&self) -> Result<(), StorageError> {
        let mut s = self.lock();
        if let Some(until) = s.open_until {
            let now = Instant::now();
            if now < until {
                return Err(StorageError::Unavailable {
                    retry_in: until - now,
                    last_error: s.last_error.clone().unwrap_or_default(),
                });
            }
            s.open_until = None;
            s.half_open = true;
            tracing::info!("circuit breaker half-open: probing the engine");
        }
        Ok(())
    }

    pub(crate) fn success(&self) {
        let mut s = self.lock();
        if s.half_open {
            tracing::info!("circuit breaker closed: the engine recovered");
        }
        s.failures = 0;
        s.half_open = false;
    }

    /// Records an engine failure; returns whether this opened the breaker.
    pub(crate) fn failure(&self, error: &str) -> bool {
        let mut s = self.lock();
        s.failures += 1;
        s.last_error = Some(error.to_owned());
        if s.open_until.is_none() && (s.half_open || s.failures >= self.threshold) {
            s.open_until = Some(Instant::now() + self.cooldown);
            s.half_open = false;
            s.opened += 1;
            tracing::warn!(failures = s.failures, error, cooldown = ?self.cooldown, "circuit breaker open");
            return true;
        }
        false
    }

    pub(crate) fn state(&self) -> BreakerState {
        let s = self.lock();
        match (s.open_until, s.half_open) {
            (Some(until), _) if Instant::now() < until => BreakerState::Open,
            (Some(_), _) | (None, true) => BreakerState::HalfOpen,
            (None, false) => BreakerState::Closed,
        }
    }

    pub(crate) fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }
}
