//! The write side's way in: the three priority lanes' senders, and what admits a write to
//! them — the closing flag, the circuit breaker, request ids, the last engine error. The
//! writer thread holds the lanes' receivers ([`Receivers`]).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chain_store::ChainModel;
use storage_metrics::Lane;
use tokio::sync::mpsc;

use crate::breaker::Breaker;
use crate::config::WriterConfig;
use crate::error::StorageError;
use crate::request::Request;

/// The lanes' senders and the admission state, shared by every handle clone and the
/// maintenance thread.
pub(crate) struct Intake<M: ChainModel> {
    high: mpsc::Sender<Request<M>>,
    normal: mpsc::Sender<Request<M>>,
    low: mpsc::Sender<Request<M>>,
    breaker: Breaker,
    closing: AtomicBool,
    next_request: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The lanes' receiving ends, for the writer thread.
pub(crate) struct Receivers<M: ChainModel> {
    pub(crate) high: mpsc::Receiver<Request<M>>,
    pub(crate) normal: mpsc::Receiver<Request<M>>,
    pub(crate) low: mpsc::Receiver<Request<M>>,
}

impl<M: ChainModel> Intake<M> {
    /// Lanes of the configured capacities and a closed breaker.
    pub(crate) fn new(w: &WriterConfig) -> (Self, Receivers<M>) {
        let (high_tx, high) = mpsc::channel(w.high_lane);
        let (normal_tx, normal) = mpsc::channel(w.normal_lane);
        let (low_tx, low) = mpsc::channel(w.low_lane);
        let intake = Intake {
            high: high_tx,
            normal: normal_tx,
            low: low_tx,
            breaker: Breaker::new(w.breaker_failures, Duration::from_millis(w.breaker_cooldown_ms)),
            closing: AtomicBool::new(false),
            next_request: AtomicU64::new(1),
            last_error: Mutex::new(None),
        };
        (intake, Receivers { high, normal, low })
    }

    /// The sender of `lane`.
    pub(crate) fn lane(&self, lane: Lane) -> &mpsc::Sender<Request<M>> {
        match lane {
            Lane::High => &self.high,
            Lane::Normal => &self.normal,
            Lane::Low => &self.low,
        }
    }

    /// (lane, queued, capacity) for each lane.
    pub(crate) fn depths(&self) -> [(Lane, usize, usize); 3] {
        [Lane::High, Lane::Normal, Lane::Low].map(|l| {
            let s = self.lane(l);
            (l, s.max_capacity() - s.capacity(), s.max_capacity())
        })
    }

    /// A new correlation id.
    pub(crate) fn request_id(&self) -> String {
        format!("{:08x}", self.next_request.fetch_add(1, Ordering::Relaxed))
    }

    /// From now on, writes are refused ([`StorageError::ShuttingDown`]) and background tasks
    /// end.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }

    /// Whether the node is shutting down.
    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The circuit breaker.
    pub(crate) fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// Records an engine failure: the last error, and a failure for the breaker (`true` if
    /// it opened the breaker).
    pub(crate) fn engine_failed(&self, e: &StorageError) -> bool {
        let text = e.to_string();
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = Some(text.clone());
        self.breaker.failure(&text)
    }

    /// The last engine error, or the breaker's.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone().or_else(|| self.breaker.last_error())
    }
}
