//! Metrics for node-storage: instruments recorded through the OpenTelemetry API, exported in
//! the Prometheus text format, served on `/metrics` (with `/metrics.json` and `/health`), and
//! service-level thresholds with violation counters.
//!
//! Callers use only this crate's small API — [`Metrics`] with typed [`Event`]s, latency
//! recorders, and an [`Observe`] source sampled at each scrape — so the exporter behind it
//! (today `opentelemetry-prometheus`) can be swapped without touching them.
//!
//! Units are Prometheus base units: seconds and bytes. Metric names are listed in
//! `docs/OPERATIONS.md`.

mod config;
mod export;
mod instruments;
mod observe;
mod server;
mod slo;
mod window;

use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

pub use config::{InvalidSetting, MetricsConfig, SloConfig};
use instruments::Instruments;
pub use instruments::{Event, Lane};
pub use observe::{Health, Observe, Observed, Sample, Status};
pub use server::MetricsServer;
pub use slo::SloReport;

/// Setting up the exporter or the endpoint failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MetricsError {
    /// The exporter could not be built.
    #[error("metrics exporter: {0}")]
    Exporter(String),
    /// The HTTP endpoint could not listen.
    #[error("metrics endpoint: cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        reason: String,
    },
    /// An invalid setting.
    #[error("metrics config: {0}")]
    Config(String),
}

/// The metrics of one node-storage instance. Cheap to clone; every clone records into the
/// same instruments.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    instruments: Instruments,
    registry: prometheus::Registry,
    _provider: opentelemetry_sdk::metrics::SdkMeterProvider,
    source: RwLock<Option<Arc<dyn Observe>>>,
    /// The samples of the current scrape, read by the observable instruments' callbacks.
    samples: Arc<Mutex<Vec<Sample>>>,
    slo: slo::SloTracker,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// New instruments with their own registry (several instances can live in one process).
    pub fn new(config: &MetricsConfig) -> Result<Self, MetricsError> {
        config.validate().map_err(|e| MetricsError::Config(e.to_string()))?;
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .without_units()
            .without_target_info()
            .scope_info_enabled(false)
            .build()
            .map_err(|e| MetricsError::Exporter(e.to_string()))?;
        let provider = opentelemetry_sdk::metrics::SdkMeterProvider::builder().with_reader(exporter).build();
        let samples = Arc::new(Mutex::new(Vec::new()));
        let instruments = Instruments::new(&provider, samples.clone());
        Ok(Metrics {
            inner: Arc::new(Inner {
                instruments,
                registry,
                _provider: provider,
                source: RwLock::new(None),
                samples,
                slo: slo::SloTracker::new(config.slo.clone()),
            }),
        })
    }

    /// Sets what is sampled at each scrape (and asked for `/health`).
    pub fn set_source(&self, source: Arc<dyn Observe>) {
        *self.inner.source.write().unwrap_or_else(|p| p.into_inner()) = Some(source);
    }

    /// Counts `n` occurrences of `event`.
    pub fn count(&self, event: Event, n: u64) {
        self.inner.instruments.count(event, n);
    }

    /// Counts one error of `kind` (a short, stable, low-cardinality name).
    pub fn error(&self, kind: &'static str) {
        self.inner.instruments.error(kind);
    }

    /// Records a read of operation `op` that started at `started`.
    pub fn read(&self, op: &'static str, started: Instant) {
        let s = started.elapsed().as_secs_f64();
        self.inner.instruments.read(op, s);
        self.inner.slo.read(s);
    }

    /// Records a JSON-RPC request of `method` that took `seconds`, and its error code if it
    /// failed (the endpoint's own instruments: not part of the storage read latency SLO).
    pub fn rpc(&self, method: &'static str, seconds: f64, error_code: Option<i32>) {
        self.inner.instruments.rpc(method, seconds, error_code);
    }

    /// Records a write of operation `op` that took `seconds` (from submission to durable).
    pub fn write(&self, op: &'static str, seconds: f64) {
        self.inner.instruments.write(op, seconds);
        self.inner.slo.write(seconds);
    }

    /// Records how long a request waited in `lane` before the writer took it.
    pub fn queue_wait(&self, lane: Lane, seconds: f64) {
        self.inner.instruments.queue_wait(lane, seconds);
    }

    /// Records one group commit: how many requests and bytes it carried.
    pub fn batch(&self, requests: usize, bytes: usize) {
        self.inner.instruments.batch(requests, bytes);
    }

    /// Records a maintenance task's run time and whether it succeeded.
    pub fn maintenance(&self, task: &'static str, seconds: f64, ok: bool) {
        self.inner.instruments.maintenance(task, seconds, ok);
    }

    /// Records a successful backup of `kind`: its raw and stored sizes and the bytes it
    /// uploaded. (Its run time, last success and failures go through [`Metrics::maintenance`]
    /// with task `backup`.)
    pub fn backup(&self, kind: &'static str, raw_bytes: u64, stored_bytes: u64, uploaded_bytes: u64) {
        self.inner.instruments.backup(kind, raw_bytes, stored_bytes, uploaded_bytes);
    }

    /// Judges the window since the last call against the thresholds, counts violations, and
    /// starts a new window. The facade calls it every `slo.window_s` seconds.
    pub fn evaluate_slos(&self) -> SloReport {
        let mut samples = Vec::new();
        if let Some(source) = self.source() {
            source.observe(&mut samples);
        }
        let report = self.inner.slo.evaluate(&samples);
        self.inner.instruments.slo(&report);
        report
    }

    /// The Prometheus text exposition of every metric, sampling the source first.
    pub fn render(&self) -> String {
        export::text(&self.gather())
    }

    /// The same figures as [`Metrics::render`], as JSON.
    pub fn render_json(&self) -> serde_json::Value {
        export::json(&self.gather())
    }

    /// The source's health (status `ok` with no details before a source is set).
    pub fn health(&self) -> Health {
        match self.source() {
            Some(s) => s.health(),
            None => Health { status: Status::Ok, detail: serde_json::Value::Null },
        }
    }

    /// Serves `/metrics`, `/metrics.json` and `/health` on `config.listen` (port 0 picks a
    /// free port), within `config`'s connection limits, until the returned server is dropped.
    pub fn serve(&self, config: &MetricsConfig) -> Result<MetricsServer, MetricsError> {
        config.validate().map_err(|e| MetricsError::Config(e.to_string()))?;
        MetricsServer::start(self.clone(), config)
    }

    fn source(&self) -> Option<Arc<dyn Observe>> {
        self.inner.source.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        let mut fresh = Vec::new();
        if let Some(source) = self.source() {
            source.observe(&mut fresh);
        }
        // One scrape at a time: the callbacks read the samples taken for this scrape.
        let mut samples = self.inner.samples.lock().unwrap_or_else(|p| p.into_inner());
        *samples = fresh;
        drop(samples);
        self.inner.registry.gather()
    }
}
