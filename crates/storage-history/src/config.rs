//! The history tier's configuration: `[history]` in node-storage's TOML. Every field has a
//! default; with no `kind` there is no archive.

use serde::{Deserialize, Serialize};
use storage_backup::{BackupConfig, Credentials};

/// Which archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TierKind {
    /// Google Cloud Bigtable (or its emulator).
    Bigtable,
    /// Immutable segment files in object storage (local, S3, GCS, Azure).
    Segments,
}

/// The history tier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HistoryConfig {
    /// The archive: `"bigtable"` or `"segments"`. Default: none (finalized history is only
    /// kept locally, and pruning deletes it).
    pub kind: Option<TierKind>,
    /// Whether this node uploads finalized history (the primary does; readers of a shared
    /// archive do not). Default true.
    pub upload: bool,
    /// Milliseconds between upload rounds when the archive has caught up. Default 1,000.
    pub upload_interval_ms: u64,
    /// Longest pause after failed uploads (they back off exponentially up to it), ms.
    /// Default 30,000.
    pub max_backoff_ms: u64,
    /// Blocks per Bigtable upload (one watermark step). Default 512.
    pub bigtable_batch_blocks: u64,
    /// Vertices per Bigtable upload. Default 4,096.
    pub bigtable_batch_vertices: u64,
    /// Reads of heights pruned locally go to the archive (through the caches). Default true.
    pub read_through: bool,
    /// zstd level of archived records (1 fastest … 19). Default 3.
    pub zstd_level: i32,
    /// Give up on one archive request after this many milliseconds. Default 30,000.
    pub timeout_ms: u64,
    /// Bigtable settings (`kind = "bigtable"`).
    pub bigtable: BigtableConfig,
    /// Segment settings (`kind = "segments"`).
    pub segments: SegmentConfig,
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            kind: None,
            upload: true,
            upload_interval_ms: 1_000,
            max_backoff_ms: 30_000,
            bigtable_batch_blocks: 512,
            bigtable_batch_vertices: 4_096,
            read_through: true,
            zstd_level: 3,
            timeout_ms: 30_000,
            bigtable: BigtableConfig::default(),
            segments: SegmentConfig::default(),
        }
    }
}

/// Where the Bigtable archive is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BigtableConfig {
    /// The Google Cloud project. Default `node-storage`.
    pub project: String,
    /// The Bigtable instance. Default `history`.
    pub instance: String,
    /// Prefix of the archive's table names (`<prefix>blocks`, `<prefix>tx`, `<prefix>bits`,
    /// `<prefix>vertices`, `<prefix>vertex_index`, `<prefix>meta`). Default `node-`.
    pub table_prefix: String,
    /// An emulator's `host:port` (plain text, no credentials). Default: the
    /// `BIGTABLE_EMULATOR_HOST` variable if set, else the real service with credentials from
    /// `GOOGLE_APPLICATION_CREDENTIALS` (or the metadata server).
    pub emulator: Option<String>,
    /// Create missing tables (admin API) when the archive opens. Default true.
    pub create_tables: bool,
    /// gRPC connections to keep open. Default 2.
    pub channels: usize,
}

impl Default for BigtableConfig {
    fn default() -> Self {
        BigtableConfig {
            project: "node-storage".into(),
            instance: "history".into(),
            table_prefix: "node-".into(),
            emulator: None,
            create_tables: true,
            channels: 2,
        }
    }
}

/// Where the segment archive is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SegmentConfig {
    /// The destination URL, as for backups: `file:///srv/history` (or a plain path),
    /// `s3://bucket/prefix`, `gs://bucket/prefix`, `az://container/prefix`. Default `history`.
    pub destination: String,
    /// S3-compatible endpoint (MinIO, Ceph, …). Default: AWS (or `AWS_ENDPOINT`).
    pub endpoint: Option<String>,
    /// S3 region. Default: `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints. Default false.
    pub allow_http: bool,
    /// Blocks per segment file (segments hold heights `k·N .. (k+1)·N`). Fixed once the
    /// archive has segments. Default 1,024.
    pub blocks_per_segment: u64,
    /// Finalized vertices per segment file. Default 16,384.
    pub vertices_per_segment: u64,
    /// Retries of a failed request. Default 3.
    pub max_retries: usize,
    /// Segments whose indexes are kept in memory. Default 256.
    pub cached_segments: usize,
    /// Credentials supplied by the embedding program instead of the environment. Never
    /// serialized, redacted in `Debug`.
    #[serde(skip)]
    pub credentials: Option<Credentials>,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            destination: "history".into(),
            endpoint: None,
            region: None,
            allow_http: false,
            blocks_per_segment: 1_024,
            vertices_per_segment: 16_384,
            max_retries: 3,
            cached_segments: 256,
            credentials: None,
        }
    }
}

impl SegmentConfig {
    /// The object-storage settings in storage-backup's terms (the destination code is shared).
    pub(crate) fn destination_config(&self, timeout_ms: u64) -> BackupConfig {
        BackupConfig {
            destination: self.destination.clone(),
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            allow_http: self.allow_http,
            max_retries: self.max_retries,
            retry_timeout_secs: timeout_ms.div_ceil(1000),
            credentials: self.credentials.clone(),
            ..BackupConfig::default()
        }
    }
}

impl HistoryConfig {
    /// Checks values serde cannot: the offending key (below `history.`) and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let within = |key: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) { Ok(()) } else { Err((key, format!("must be within {lo}..={hi}, not {v}"))) }
        };
        within("upload_interval_ms", self.upload_interval_ms, 1, 3_600_000)?;
        within("max_backoff_ms", self.max_backoff_ms, 1, 3_600_000)?;
        within("bigtable_batch_blocks", self.bigtable_batch_blocks, 1, 100_000)?;
        within("bigtable_batch_vertices", self.bigtable_batch_vertices, 1, 1_000_000)?;
        within("timeout_ms", self.timeout_ms, 100, 3_600_000)?;
        if !(1..=19).contains(&self.zstd_level) {
            return Err(("zstd_level", format!("{} is outside 1..=19", self.zstd_level)));
        }
        let b = &self.bigtable;
        within("bigtable.channels", b.channels as u64, 1, 64)?;
        for (key, v) in [("bigtable.project", &b.project), ("bigtable.instance", &b.instance)] {
            if v.trim().is_empty() || v.contains('/') {
                return Err((key, format!("`{v}` is not a Google Cloud name")));
            }
        }
        if !b.table_prefix.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            return Err(("bigtable.table_prefix", "may hold only letters, digits, `-`, `_` and `.`".into()));
        }
        let s = &self.segments;
        within("segments.blocks_per_segment", s.blocks_per_segment, 1, 1 << 20)?;
        within("segments.vertices_per_segment", s.vertices_per_segment, 1, 1 << 24)?;
        within("segments.max_retries", s.max_retries as u64, 0, 100)?;
        within("segments.cached_segments", s.cached_segments as u64, 1, 1 << 20)?;
        if s.destination.trim().is_empty() {
            return Err(("segments.destination", "is empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_bad_values_name_their_key() {
        HistoryConfig::default().validate().unwrap();
        let mut c = HistoryConfig::default();
        c.segments.blocks_per_segment = 0;
        assert_eq!(c.validate().unwrap_err().0, "segments.blocks_per_segment");
        let mut c = HistoryConfig::default();
        c.bigtable.table_prefix = "a/b".into();
        assert_eq!(c.validate().unwrap_err().0, "bigtable.table_prefix");
        let c = HistoryConfig { zstd_level: 40, ..HistoryConfig::default() };
        assert_eq!(c.validate().unwrap_err().0, "zstd_level");
    }
}
