//! RocksDB configuration: one serde struct, loadable from TOML, every field defaulted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use storage_api::OpenError;

const MIB: u64 = 1024 * 1024;

/// How RocksDB compacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CompactionStyle {
    /// Levelled compaction: lower space amplification, steadier reads. The default.
    #[default]
    Level,
    /// Universal compaction: lower write amplification, more space while compacting.
    Universal,
}

/// A compression codec. Only the codecs compiled in are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// No compression.
    None,
    /// LZ4: fast, for the upper (hot) levels.
    Lz4,
    /// Zstandard: compact, for the bottom level.
    Zstd,
}

/// Per-table overrides of the database-wide settings. Absent fields inherit them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TableTuning {
    /// Memtable size for this table, bytes.
    pub write_buffer_size: Option<u64>,
    /// Bloom filter bits per key (0 disables). Default: from the table's access hint (point
    /// and mixed tables get `bloom_filter_bits`, range-scanned tables none).
    pub bloom_filter_bits: Option<f64>,
    /// Compression of the upper levels.
    pub compression_upper: Option<Codec>,
    /// Compression of the bottom level.
    pub compression_bottom: Option<Codec>,
}

/// Settings of the RocksDB backend.
///
/// ```toml
/// path = "/var/lib/node/chain"
/// block_cache_size = 536870912
/// [tables.receipts]
/// compression_upper = "zstd"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RocksConfig {
    /// Database directory; created if missing. Default: `data/rocksdb`.
    pub path: PathBuf,
    /// Memtable size per table before it is flushed, bytes. Default: 64 MiB.
    pub write_buffer_size: u64,
    /// Memtables per table (one active, the rest flushing). Default: 3.
    pub max_write_buffer_number: u32,
    /// Files RocksDB keeps open (-1: unlimited). Default: 1024.
    pub max_open_files: i32,
    /// Shared LRU block cache for all tables, bytes. Default: 256 MiB.
    pub block_cache_size: u64,
    /// Write-ahead log. Default: on. Off, a crash loses buffered writes, and synced writes
    /// flush memtables instead (slow).
    pub wal: bool,
    /// Cap on total WAL size, bytes: when exceeded, the tables holding the oldest log are
    /// flushed so the log can be deleted. Keeps small, rarely written tables from pinning
    /// old logs (and so keeps reopen fast). Default: 128 MiB.
    pub max_total_wal_size: u64,
    /// Collect RocksDB's internal statistics (tickers and histograms), at a small cost.
    /// Default: off.
    pub statistics: bool,
    /// Compaction style. Default: `level`.
    pub compaction_style: CompactionStyle,
    /// Compression of every level but the last. Default: `lz4`.
    pub compression_upper: Codec,
    /// Compression of the bottom level, where most data lives. Default: `zstd`.
    pub compression_bottom: Codec,
    /// Bloom filter bits per key for point-read tables (0 disables). Default: 10.
    pub bloom_filter_bits: f64,
    /// Background flush and compaction threads. Default: 2.
    pub background_jobs: i32,
    /// Per-table overrides, by table name.
    pub tables: BTreeMap<String, TableTuning>,
}

impl Default for RocksConfig {
    fn default() -> Self {
        RocksConfig {
            path: PathBuf::from("data/rocksdb"),
            write_buffer_size: 64 * MIB,
            max_write_buffer_number: 3,
            max_open_files: 1024,
            block_cache_size: 256 * MIB,
            wal: true,
            max_total_wal_size: 128 * MIB,
            statistics: false,
            compaction_style: CompactionStyle::Level,
            compression_upper: Codec::Lz4,
            compression_bottom: Codec::Zstd,
            bloom_filter_bits: 10.0,
            background_jobs: 2,
            tables: BTreeMap::new(),
        }
    }
}

impl RocksConfig {
    /// The defaults, at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        RocksConfig { path: path.into(), ..RocksConfig::default() }
    }

    /// Parses a TOML document. Unknown keys are errors.
    pub fn from_toml_str(text: &str) -> Result<Self, OpenError> {
        let config: RocksConfig = toml::from_str(text).map_err(|e| OpenError::InvalidConfig(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads and parses a TOML file.
    pub fn from_toml_file(path: &Path) -> Result<Self, OpenError> {
        let text = std::fs::read_to_string(path).map_err(|source| OpenError::Io {
            action: "read config",
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text)
    }

    /// Checks every field's range.
    pub fn validate(&self) -> Result<(), OpenError> {
        let bad = |msg: String| Err(OpenError::InvalidConfig(msg));
        if self.write_buffer_size < MIB {
            return bad(format!("write_buffer_size must be at least 1 MiB, got {}", self.write_buffer_size));
        }
        if self.max_write_buffer_number < 2 {
            return bad("max_write_buffer_number must be at least 2".into());
        }
        if self.max_open_files == 0 || self.max_open_files < -1 {
            return bad(format!("max_open_files must be -1 or positive, got {}", self.max_open_files));
        }
        if self.max_total_wal_size < self.write_buffer_size {
            return bad("max_total_wal_size must be at least write_buffer_size".into());
        }
        if !(0.0..=64.0).contains(&self.bloom_filter_bits) {
            return bad(format!("bloom_filter_bits must be within 0..=64, got {}", self.bloom_filter_bits));
        }
        if self.background_jobs < 1 {
            return bad("background_jobs must be at least 1".into());
        }
        for (name, t) in &self.tables {
            if t.write_buffer_size.is_some_and(|s| s < MIB) {
                return bad(format!("tables.{name}.write_buffer_size must be at least 1 MiB"));
            }
            if t.bloom_filter_bits.is_some_and(|b| !(0.0..=64.0).contains(&b)) {
                return bad(format!("tables.{name}.bloom_filter_bits must be within 0..=64"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn toml_round_trip_and_defaults() {
        let c = RocksConfig::from_toml_str(
            "path = \"/x\"\nblock_cache_size = 1024\n[tables.receipts]\ncompression_upper = \"zstd\"\n",
        )
        .unwrap();
        assert_eq!(c.path, PathBuf::from("/x"));
        assert_eq!(c.block_cache_size, 1024);
        assert_eq!(c.write_buffer_size, 64 * MIB);
        assert_eq!(c.tables["receipts"].compression_upper, Some(Codec::Zstd));
        let text = toml::to_string(&c).unwrap();
        assert_eq!(RocksConfig::from_toml_str(&text).unwrap(), c);
    }

    #[test]
    fn bad_config_is_a_clear_error() {
        let e = RocksConfig::from_toml_str("paht = \"/x\"").unwrap_err().to_string();
        assert!(e.contains("unknown field") && e.contains("paht"), "{e}");
        let e = RocksConfig::from_toml_str("write_buffer_size = 10").unwrap_err().to_string();
        assert!(e.contains("write_buffer_size"), "{e}");
        let e = RocksConfig::from_toml_str("compression_bottom = \"snappy\"").unwrap_err().to_string();
        assert!(e.contains("snappy"), "{e}");
        let e = RocksConfig::from_toml_str("[tables.x]\nbloom_filter_bits = 100.0").unwrap_err().to_string();
        assert!(e.contains("tables.x"), "{e}");
    }
}
