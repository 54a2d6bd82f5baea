//! Backup configuration: the destination, compression, upload limits, retention and schedule.
//! One serde struct (`[backup]` in node-storage's TOML); every field has a default. Credentials
//! never appear here: they come from the environment (see [`Destination`](crate::Destination)).

use serde::{Deserialize, Serialize};

/// How archive and object bytes are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Zstandard (the default): fast, good ratio.
    #[default]
    Zstd,
    /// gzip, for tools that cannot read zstd.
    Gzip,
    /// Stored as is.
    None,
}

impl Compression {
    /// The file-name extension of compressed objects.
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Zstd => "zst",
            Compression::Gzip => "gz",
            Compression::None => "raw",
        }
    }
}

/// What a backup captures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupKind {
    /// The engine's own files from a checkpoint (RocksDB, redb); restores into the same engine.
    /// Immutable files are content-addressed and shared between backups.
    #[default]
    Physical,
    /// Every table's entries from one consistent view, engine-independent; restores into any
    /// engine.
    Logical,
}

impl std::fmt::Display for BackupKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackupKind::Physical => "physical",
            BackupKind::Logical => "logical",
        })
    }
}

/// Which backups retention keeps (everything else is deleted by `prune`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionPolicy {
    /// The newest N backups are always kept. Default 7.
    pub keep_last: u32,
    /// Plus the newest backup of each of the last D days (UTC). Default 7.
    pub keep_daily: u32,
    /// Plus the newest backup of each of the last W ISO weeks. Default 4.
    pub keep_weekly: u32,
}

impl Default for RetentionPolicy {
    fn default() -> Self {
        RetentionPolicy { keep_last: 7, keep_daily: 7, keep_weekly: 4 }
    }
}

/// The backup configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// Where backups go, as a URL: `file:///var/backups/node` (or a plain path), `s3://bucket/prefix`,
    /// `gs://bucket/prefix`, `az://container/prefix`. Default: `backups` (a local directory
    /// relative to the working directory).
    pub destination: String,
    /// S3-compatible endpoint (MinIO, Ceph, …), e.g. `http://127.0.0.1:9000`. Default: AWS
    /// (or `AWS_ENDPOINT`). For `az://`: the account's blob service URL (Azurite:
    /// `http://127.0.0.1:10000/devstoreaccount1`). Default: `https://<account>.blob.core.windows.net`.
    /// For `gs://`: an emulator's base URL (e.g. `http://127.0.0.1:9023`), reached without
    /// OAuth; unset for Google Cloud Storage itself.
    pub endpoint: Option<String>,
    /// S3 region. Default: `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// Allow plain-HTTP endpoints (local MinIO). Default false.
    pub allow_http: bool,
    /// Compression of archives and objects. Default zstd.
    pub compression: Compression,
    /// zstd level (1 fastest … 22). Default 1: RocksDB's SSTs are already compressed, so
    /// higher levels cost throughput for little gain (see docs/BENCHMARKS.md).
    pub zstd_level: i32,
    /// zstd worker threads per stream (0: single-threaded). Default 2.
    pub zstd_workers: u32,
    /// Files uploaded concurrently. Default 4.
    pub parallel_uploads: usize,
    /// Objects above this size are uploaded in parts. Default 16 MiB.
    pub multipart_threshold_bytes: u64,
    /// Part size of multipart uploads (S3 requires ≥ 5 MiB). Default 8 MiB.
    pub part_size_bytes: u64,
    /// Retries of a failed request, with exponential backoff. Default 5.
    pub max_retries: usize,
    /// Give up retrying a request after this long. Default 120 s.
    pub retry_timeout_secs: u64,
    /// Which backups `prune` keeps.
    pub retention: RetentionPolicy,
    /// Unreferenced objects younger than this are not garbage-collected (protects a backup
    /// running concurrently in another process). Default 3600 s.
    pub gc_grace_secs: u64,
    /// Take a backup from `nodestore serve` every this many seconds (0: never). Default 0.
    pub schedule_interval_secs: u64,
    /// What scheduled backups capture. Default physical.
    pub schedule_kind: BackupKind,
    /// Prune after every scheduled backup. Default true.
    pub schedule_prune: bool,
    /// Credentials supplied by the embedding program instead of the environment (for example
    /// from a secret manager). Never read from files, never serialized, redacted in `Debug`.
    #[serde(skip)]
    pub credentials: Option<Credentials>,
}

/// An access key pair: for S3 and compatible servers the access key id and secret; for Azure
/// the storage account name and account key.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The access key id (Azure: the storage account name).
    pub access_key_id: String,
    /// The secret access key (Azure: the account key, base64).
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(redacted)")
    }
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            destination: "backups".to_owned(),
            endpoint: None,
            region: None,
            allow_http: false,
            compression: Compression::Zstd,
            zstd_level: 1,
            zstd_workers: 2,
            parallel_uploads: 4,
            multipart_threshold_bytes: 16 << 20,
            part_size_bytes: 8 << 20,
            max_retries: 5,
            retry_timeout_secs: 120,
            retention: RetentionPolicy::default(),
            gc_grace_secs: 3600,
            schedule_interval_secs: 0,
            schedule_kind: BackupKind::Physical,
            schedule_prune: true,
            credentials: None,
        }
    }
}

impl BackupConfig {
    /// A configuration backing up to the local directory `path`, other fields default.
    pub fn local(path: impl AsRef<std::path::Path>) -> Self {
        BackupConfig { destination: path.as_ref().display().to_string(), ..BackupConfig::default() }
    }

    /// Checks values that serde cannot: returns the offending key and why.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let within = |key: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) { Ok(()) } else { Err((key, format!("must be within {lo}..={hi}, not {v}"))) }
        };
        const YEAR_S: u64 = 365 * 86_400;
        if !(1..=22).contains(&self.zstd_level) {
            return Err(("zstd_level", format!("{} is outside 1..=22", self.zstd_level)));
        }
        within("zstd_workers", u64::from(self.zstd_workers), 0, 256)?;
        within("parallel_uploads", self.parallel_uploads as u64, 1, 256)?;
        if self.part_size_bytes < 5 << 20 {
            return Err(("part_size_bytes", "S3 requires parts of at least 5 MiB".into()));
        }
        // S3's largest part is 5 GiB; a part is buffered in memory while it uploads.
        within("part_size_bytes", self.part_size_bytes, 5 << 20, 5 << 30)?;
        within("multipart_threshold_bytes", self.multipart_threshold_bytes, 0, 5 << 30)?;
        within("max_retries", self.max_retries as u64, 0, 100)?;
        within("retry_timeout_secs", self.retry_timeout_secs, 0, 86_400)?;
        within("gc_grace_secs", self.gc_grace_secs, 0, 10 * YEAR_S)?;
        within("schedule_interval_secs", self.schedule_interval_secs, 0, YEAR_S)?;
        if self.destination.trim().is_empty() {
            return Err(("destination", "is empty".into()));
        }
        Ok(())
    }
}
