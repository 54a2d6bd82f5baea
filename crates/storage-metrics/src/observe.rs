//! Figures read from the running system at each scrape: gauges and cumulative counters the
//! instruments cannot count themselves (cache counters, engine internals, queue depths).

use serde::Serialize;

/// A figure sampled at each scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Observed {
    /// Cache lookups since start, labelled `cache` and `result` (`hit` / `miss`). Counter.
    CacheRequests,
    /// Cache hit ratio since start, labelled `cache` (`level` = `l1` for the object caches,
    /// `l2` for the engine's block cache).
    CacheHitRatio,
    /// Entries in a cache, labelled `cache`.
    CacheEntries,
    /// Evictions for capacity since start, labelled `cache`. Counter.
    CacheEvictions,
    /// Bytes on disk per store, labelled `store`.
    DbSizeBytes,
    /// Approximate bytes per table, labelled `store` and `table`.
    TableSizeBytes,
    /// Approximate keys per table, labelled `store` and `table`.
    TableKeys,
    /// RocksDB estimated pending compaction bytes, labelled `store`.
    PendingCompactionBytes,
    /// RocksDB memtable bytes, labelled `store`.
    MemtableBytes,
    /// RocksDB block-cache bytes in use, labelled `store`.
    BlockCacheUsageBytes,
    /// 1 while RocksDB stalls or slows writes, labelled `store`.
    WriteStall,
    /// SST files per level, labelled `store` and `level`.
    SstFiles,
    /// Requests queued per write lane, labelled `lane`.
    LaneDepth,
    /// Circuit breaker state: 0 closed, 1 half-open, 2 open.
    BreakerState,
    /// 1 once a store refused writes after a failed sync.
    Poisoned,
    /// Entries in the dead-letter table.
    DeadLetters,
    /// Canonical chain head height.
    ChainHead,
    /// Last finalized DAG sequence number.
    DagFinalized,
    /// The history archive's watermark: the next height (sequence) it will archive, labelled
    /// `history` (`chain` / `dag`).
    ArchiveWatermark,
    /// Items final locally but not archived yet, labelled `history`.
    ArchiveLag,
    /// Bytes uploaded to the history archive. Counter.
    ArchiveUploadedBytes,
    /// Failed uploads to the history archive. Counter.
    ArchiveUploadFailures,
    /// Reads answered from the history archive, labelled `result` (`ok` / `unavailable` /
    /// `error`). Counter.
    ArchiveReads,
    /// Seconds since a read replica last caught up with its primary.
    ReplicaStalenessSeconds,
}

impl Observed {
    /// Every figure, in export order.
    pub const ALL: [Observed; 24] = [
        Observed::CacheRequests,
        Observed::CacheHitRatio,
        Observed::CacheEntries,
        Observed::CacheEvictions,
        Observed::DbSizeBytes,
        Observed::TableSizeBytes,
        Observed::TableKeys,
        Observed::PendingCompactionBytes,
        Observed::MemtableBytes,
        Observed::BlockCacheUsageBytes,
        Observed::WriteStall,
        Observed::SstFiles,
        Observed::LaneDepth,
        Observed::BreakerState,
        Observed::Poisoned,
        Observed::DeadLetters,
        Observed::ChainHead,
        Observed::DagFinalized,
        Observed::ArchiveWatermark,
        Observed::ArchiveLag,
        Observed::ArchiveUploadedBytes,
        Observed::ArchiveUploadFailures,
        Observed::ArchiveReads,
        Observed::ReplicaStalenessSeconds,
    ];

    /// The exported name (counters get `_total` appended by the exporter).
    pub fn name(self) -> &'static str {
        match self {
            Observed::CacheRequests => "node_storage_cache_requests",
            Observed::CacheHitRatio => "node_storage_cache_hit_ratio",
            Observed::CacheEntries => "node_storage_cache_entries",
            Observed::CacheEvictions => "node_storage_cache_evictions",
            Observed::DbSizeBytes => "node_storage_db_size_bytes",
            Observed::TableSizeBytes => "node_storage_table_size_bytes",
            Observed::TableKeys => "node_storage_table_keys",
            Observed::PendingCompactionBytes => "node_storage_rocksdb_pending_compaction_bytes",
            Observed::MemtableBytes => "node_storage_rocksdb_memtable_bytes",
            Observed::BlockCacheUsageBytes => "node_storage_rocksdb_block_cache_usage_bytes",
            Observed::WriteStall => "node_storage_rocksdb_write_stall",
            Observed::SstFiles => "node_storage_rocksdb_sst_files",
            Observed::LaneDepth => "node_storage_lane_depth",
            Observed::BreakerState => "node_storage_breaker_state",
            Observed::Poisoned => "node_storage_poisoned",
            Observed::DeadLetters => "node_storage_dead_letters",
            Observed::ChainHead => "node_storage_chain_head",
            Observed::DagFinalized => "node_storage_dag_finalized_sequence",
            Observed::ArchiveWatermark => "node_storage_archive_watermark",
            Observed::ArchiveLag => "node_storage_archive_lag",
            Observed::ArchiveUploadedBytes => "node_storage_archive_uploaded_bytes",
            Observed::ArchiveUploadFailures => "node_storage_archive_upload_failures",
            Observed::ArchiveReads => "node_storage_archive_reads",
            Observed::ReplicaStalenessSeconds => "node_storage_replica_staleness_seconds",
        }
    }

    /// One-line description.
    pub fn help(self) -> &'static str {
        match self {
            Observed::CacheRequests => "Object-cache lookups by cache and result (hit/miss)",
            Observed::CacheHitRatio => "Cache hit ratio since start, by cache and level (l1 objects, l2 engine)",
            Observed::CacheEntries => "Entries held per cache",
            Observed::CacheEvictions => "Cache evictions for capacity",
            Observed::DbSizeBytes => "Database bytes on disk per store",
            Observed::TableSizeBytes => "Approximate bytes per table",
            Observed::TableKeys => "Approximate keys per table",
            Observed::PendingCompactionBytes => "RocksDB estimated pending compaction bytes",
            Observed::MemtableBytes => "RocksDB memtable bytes (all memtables)",
            Observed::BlockCacheUsageBytes => "RocksDB block cache bytes in use",
            Observed::WriteStall => "1 while RocksDB delays or stops writes",
            Observed::SstFiles => "RocksDB SST files per level",
            Observed::LaneDepth => "Requests queued per write lane",
            Observed::BreakerState => "Circuit breaker: 0 closed, 1 half-open, 2 open",
            Observed::Poisoned => "1 once a store refused writes after a failed sync",
            Observed::DeadLetters => "Writes in the dead-letter table",
            Observed::ChainHead => "Canonical chain head height",
            Observed::DagFinalized => "Last finalized DAG sequence number",
            Observed::ArchiveWatermark => "Next height (chain) or sequence (dag) the history archive will take",
            Observed::ArchiveLag => "Items final locally but not in the history archive yet",
            Observed::ArchiveUploadedBytes => "Bytes uploaded to the history archive",
            Observed::ArchiveUploadFailures => "Failed upload rounds to the history archive",
            Observed::ArchiveReads => "Reads answered from the history archive, by result",
            Observed::ReplicaStalenessSeconds => "Seconds since this read replica last caught up with its primary",
        }
    }

    /// Whether the figure only grows (exported as a counter).
    pub fn is_counter(self) -> bool {
        matches!(
            self,
            Observed::CacheRequests
                | Observed::CacheEvictions
                | Observed::ArchiveUploadedBytes
                | Observed::ArchiveUploadFailures
                | Observed::ArchiveReads
        )
    }
}

/// One sampled value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// What it is.
    pub what: Observed,
    /// Labels.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: f64,
}

impl Sample {
    /// A sample without labels.
    pub fn new(what: Observed, value: f64) -> Self {
        Sample { what, labels: Vec::new(), value }
    }

    /// Adds a label.
    pub fn label(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((key, value.into()));
        self
    }
}

/// Overall health for `/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Serving reads and writes.
    Ok,
    /// Serving, with a problem worth a look (breaker half-open, queues filling).
    Degraded,
    /// Not accepting writes (breaker open, store poisoned, shutting down).
    Failing,
}

/// What `/health` reports: a status (HTTP 200 unless failing, then 503) and details.
#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// Overall status.
    pub status: Status,
    /// Details (lane depths, breaker, last error, …).
    pub detail: serde_json::Value,
}

/// The running system, sampled at each scrape. The facade implements it; this is the one
/// dynamic seam between the metrics crate and what it measures.
pub trait Observe: Send + Sync + 'static {
    /// Appends the current figures.
    fn observe(&self, out: &mut Vec<Sample>);
    /// The current health.
    fn health(&self) -> Health;
}
