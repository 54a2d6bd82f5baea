//! The OpenTelemetry instruments.

use std::sync::{Arc, Mutex};

use opentelemetry::KeyValue;
use opentelemetry::metrics::{Counter, Gauge, Histogram, Meter, MeterProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;

use crate::observe::{Observed, Sample};
use crate::slo::SloReport;

/// Things counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Event {
    /// Blocks stored (new, not already stored).
    BlocksStored,
    /// Blocks read.
    BlocksRead,
    /// Vertices stored (new).
    VerticesStored,
    /// Vertices read.
    VerticesRead,
    /// Vertices finalized.
    VerticesFinalized,
    /// Chain reorgs (head moves that removed blocks).
    Reorgs,
    /// Items removed by pruning (blocks, vertices).
    PrunedItems,
    /// Atomic batches committed by the writer.
    WriteBatches,
    /// Write attempts retried after a transient error.
    Retries,
    /// Writes moved to the dead-letter table.
    DeadLettered,
    /// Requests that timed out.
    Timeouts,
    /// Requests refused because the circuit breaker was open.
    Rejected,
}

impl Event {
    fn name(self) -> &'static str {
        match self {
            Event::BlocksStored => "node_storage_blocks_stored",
            Event::BlocksRead => "node_storage_blocks_read",
            Event::VerticesStored => "node_storage_vertices_stored",
            Event::VerticesRead => "node_storage_vertices_read",
            Event::VerticesFinalized => "node_storage_vertices_finalized",
            Event::Reorgs => "node_storage_reorgs",
            Event::PrunedItems => "node_storage_pruned_items",
            Event::WriteBatches => "node_storage_write_batches",
            Event::Retries => "node_storage_write_retries",
            Event::DeadLettered => "node_storage_dead_lettered",
            Event::Timeouts => "node_storage_timeouts",
            Event::Rejected => "node_storage_rejected",
        }
    }

    const ALL: [Event; 12] = [
        Event::BlocksStored,
        Event::BlocksRead,
        Event::VerticesStored,
        Event::VerticesRead,
        Event::VerticesFinalized,
        Event::Reorgs,
        Event::PrunedItems,
        Event::WriteBatches,
        Event::Retries,
        Event::DeadLettered,
        Event::Timeouts,
        Event::Rejected,
    ];
}

/// The writer's priority lanes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// Finalization and head updates.
    High,
    /// Blocks and vertices.
    Normal,
    /// Maintenance.
    Low,
}

impl Lane {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::High => "high",
            Lane::Normal => "normal",
            Lane::Low => "low",
        }
    }
}

/// Bucket bounds for latencies, in seconds: 1 µs .. 10 s.
const SECONDS: [f64; 22] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0,
];
const COUNTS: [f64; 12] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0];
const BYTES: [f64; 10] = [1e3, 4e3, 16e3, 64e3, 256e3, 1e6, 4e6, 16e6, 64e6, 256e6];

pub(crate) struct Instruments {
    events: Vec<Counter<u64>>,
    errors: Counter<u64>,
    read: Histogram<f64>,
    write: Histogram<f64>,
    queue_wait: Histogram<f64>,
    batch_requests: Histogram<f64>,
    batch_bytes: Histogram<f64>,
    maintenance: Histogram<f64>,
    maintenance_failures: Counter<u64>,
    maintenance_last_success: Gauge<f64>,
    slo_violations: Counter<u64>,
    slo_observed: Gauge<f64>,
    backup_uploaded: Counter<u64>,
    backup_size: Gauge<f64>,
    rpc: Histogram<f64>,
    rpc_errors: Counter<u64>,
    pre: Prebuilt,
}

/// Label sets built once, for the hot paths.
struct Prebuilt {
    lanes: [[KeyValue; 1]; 3],
}

impl Instruments {
    pub(crate) fn new(provider: &SdkMeterProvider, samples: Arc<Mutex<Vec<Sample>>>) -> Self {
        let meter = provider.meter("node-storage");
        let events =
            Event::ALL.iter().map(|e| meter.u64_counter(e.name()).with_description(format!("{e:?}")).build()).collect();
        let histogram = |name: &'static str, help: &'static str, bounds: &[f64]| {
            meter.f64_histogram(name).with_description(help).with_boundaries(bounds.to_vec()).build()
        };
        for what in Observed::ALL {
            register_observed(&meter, what, samples.clone());
        }
        Instruments {
            events,
            errors: meter.u64_counter("node_storage_errors").with_description("Errors by kind").build(),
            read: histogram("node_storage_read_seconds", "Read latency by operation", &SECONDS),
            write: histogram(
                "node_storage_write_seconds",
                "Write latency by operation, submission to durable acknowledgement",
                &SECONDS,
            ),
            queue_wait: histogram(
                "node_storage_queue_wait_seconds",
                "Time queued before the writer took a request",
                &SECONDS,
            ),
            batch_requests: histogram("node_storage_batch_requests", "Requests per group commit", &COUNTS),
            batch_bytes: histogram("node_storage_batch_bytes", "Payload bytes per group commit", &BYTES),
            maintenance: histogram("node_storage_maintenance_seconds", "Maintenance task run time", &SECONDS),
            maintenance_failures: meter
                .u64_counter("node_storage_maintenance_failures")
                .with_description("Failed maintenance runs by task")
                .build(),
            maintenance_last_success: meter
                .f64_gauge("node_storage_maintenance_last_success_timestamp_seconds")
                .with_description("Unix time of each task's last successful run")
                .build(),
            slo_violations: meter
                .u64_counter("node_storage_slo_violations")
                .with_description("Evaluation windows that broke a service-level threshold")
                .build(),
            slo_observed: meter
                .f64_gauge("node_storage_slo_observed")
                .with_description("The last window's value of each service-level indicator")
                .build(),
            backup_uploaded: meter
                .u64_counter("node_storage_backup_uploaded_bytes")
                .with_description("Bytes uploaded by backups (new objects and archives)")
                .build(),
            backup_size: meter
                .f64_gauge("node_storage_backup_last_size_bytes")
                .with_description("Raw and stored bytes of the last successful backup, by kind")
                .build(),
            rpc: histogram("node_storage_rpc_seconds", "JSON-RPC request latency by method", &SECONDS),
            rpc_errors: meter
                .u64_counter("node_storage_rpc_errors")
                .with_description("JSON-RPC error replies by method and error code")
                .build(),
            pre: Prebuilt { lanes: [Lane::High, Lane::Normal, Lane::Low].map(|l| [KeyValue::new("lane", l.as_str())]) },
        }
    }

    pub(crate) fn count(&self, event: Event, n: u64) {
        let i = Event::ALL.iter().position(|e| *e == event).expect("every event is registered");
        self.events[i].add(n, &[]);
    }

    pub(crate) fn error(&self, kind: &'static str) {
        self.errors.add(1, &[KeyValue::new("kind", kind)]);
    }

    pub(crate) fn read(&self, op: &'static str, seconds: f64) {
        self.read.record(seconds, &[KeyValue::new("op", op)]);
    }

    pub(crate) fn write(&self, op: &'static str, seconds: f64) {
        self.write.record(seconds, &[KeyValue::new("op", op)]);
    }

    pub(crate) fn queue_wait(&self, lane: Lane, seconds: f64) {
        self.queue_wait.record(seconds, &self.pre.lanes[lane as usize]);
    }

    pub(crate) fn batch(&self, requests: usize, bytes: usize) {
        self.batch_requests.record(requests as f64, &[]);
        self.batch_bytes.record(bytes as f64, &[]);
    }

    pub(crate) fn maintenance(&self, task: &'static str, seconds: f64, ok: bool) {
        let labels = [KeyValue::new("task", task)];
        self.maintenance.record(seconds, &labels);
        if ok {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            self.maintenance_last_success.record(now.as_secs_f64(), &labels);
        } else {
            self.maintenance_failures.add(1, &labels);
        }
    }

    pub(crate) fn backup(&self, kind: &'static str, raw: u64, stored: u64, uploaded: u64) {
        self.backup_uploaded.add(uploaded, &[KeyValue::new("kind", kind)]);
        self.backup_size.record(raw as f64, &[KeyValue::new("kind", kind), KeyValue::new("bytes", "raw")]);
        self.backup_size.record(stored as f64, &[KeyValue::new("kind", kind), KeyValue::new("bytes", "stored")]);
    }

    pub(crate) fn rpc(&self, method: &'static str, seconds: f64, error_code: Option<i32>) {
        let method = KeyValue::new("method", method);
        if let Some(code) = error_code {
            self.rpc_errors.add(1, &[method.clone(), KeyValue::new("code", i64::from(code))]);
        }
        self.rpc.record(seconds, &[method]);
    }

    pub(crate) fn slo(&self, report: &SloReport) {
        for (slo, value, violated) in report.indicators() {
            let labels = [KeyValue::new("slo", slo)];
            self.slo_observed.record(value, &labels);
            // Zero-adds make every SLO series exist from the first window.
            self.slo_violations.add(u64::from(violated), &labels);
        }
    }
}

fn register_observed(meter: &Meter, what: Observed, samples: Arc<Mutex<Vec<Sample>>>) {
    let read = move |emit: &mut dyn FnMut(f64, &[KeyValue])| {
        let samples = samples.lock().unwrap_or_else(|p| p.into_inner());
        for s in samples.iter().filter(|s| s.what == what) {
            let labels: Vec<KeyValue> = s.labels.iter().map(|(k, v)| KeyValue::new(*k, v.clone())).collect();
            emit(s.value, &labels);
        }
    };
    if what.is_counter() {
        meter
            .u64_observable_counter(what.name())
            .with_description(what.help())
            .with_callback(move |o| read(&mut |v, l| o.observe(v as u64, l)))
            .build();
    } else {
        meter
            .f64_observable_gauge(what.name())
            .with_description(what.help())
            .with_callback(move |o| read(&mut |v, l| o.observe(v, l)))
            .build();
    }
}
