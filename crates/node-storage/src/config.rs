//! The facade's configuration: one serde struct, loaded from TOML and overridden by
//! `NODE_STORAGE_*` environment variables. Every field has a default; unknown keys and
//! invalid values are errors at startup that name the key.

use std::path::{Path, PathBuf};

use eth_rpc::RpcConfig;
use serde::{Deserialize, Serialize};
use storage_backup::BackupConfig;
use storage_cache::CacheConfig;
use storage_history::HistoryConfig;
use storage_metrics::MetricsConfig;

/// The configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TOML syntax, an unknown key or a wrongly typed value.
    #[error("config: {0}")]
    Parse(String),
    /// An environment override could not be applied.
    #[error("config: environment variable {var}: {reason}")]
    Env {
        /// The variable.
        var: String,
        /// Why.
        reason: String,
    },
    /// A value that parses but is not allowed.
    #[error("config: `{key}` {reason}")]
    Invalid {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// The storage engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// RocksDB (production).
    #[default]
    Rocksdb,
    /// redb (comparison).
    Redb,
    /// sled 0.34 (comparison only: weaker durability, no compaction).
    Sled,
}

impl BackendKind {
    /// Every engine.
    pub const ALL: [BackendKind; 3] = [BackendKind::Rocksdb, BackendKind::Redb, BackendKind::Sled];

    /// Where store `name` (`chain`, `dag`, `node`) of this engine lives under `data_dir`: a
    /// RocksDB directory `<name>`, a redb file `<name>.redb`, a sled directory `<name>.sled`.
    pub fn store_path(self, data_dir: &Path, name: &str) -> PathBuf {
        match self {
            BackendKind::Rocksdb => data_dir.join(name),
            BackendKind::Redb => data_dir.join(format!("{name}.redb")),
            BackendKind::Sled => data_dir.join(format!("{name}.sled")),
        }
    }

    /// Whether `path` (from [`BackendKind::store_path`]) holds a store of this engine.
    pub fn holds_store(self, path: &Path) -> bool {
        match self {
            BackendKind::Rocksdb => {
                path.join("CURRENT").exists()
                    || std::fs::read_dir(path).is_ok_and(|entries| {
                        entries.flatten().any(|e| {
                            let n = e.file_name();
                            let n = n.to_string_lossy();
                            n.ends_with(".sst") || n.starts_with("MANIFEST-")
                        })
                    })
            }
            BackendKind::Redb => path.is_file(),
            BackendKind::Sled => path.is_dir(),
        }
    }

    /// The engine named `name` (as [`Display`](std::fmt::Display) writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.to_string() == name)
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BackendKind::Rocksdb => "rocksdb",
            BackendKind::Redb => "redb",
            BackendKind::Sled => "sled",
        })
    }
}

/// The chain model: which block, transaction and receipt types the chain store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The synthetic EVM-style model (`chain_store::synthetic`): tests, benchmarks, the demo.
    /// Named `evm` in configuration files and on the command line.
    #[default]
    #[serde(rename = "evm")]
    Synthetic,
    /// Ethereum (`chain_eth`): real blocks, Keccak hashes, every root checked.
    Ethereum,
}

impl std::fmt::Display for ModelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelKind::Synthetic => "evm",
            ModelKind::Ethereum => "ethereum",
        })
    }
}

/// Everything node-storage needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// The engine.
    pub backend: BackendKind,
    /// The chain model (a store written with one is refused by the other).
    pub model: ModelKind,
    /// Directory holding the chain, DAG and node databases.
    pub data_dir: PathBuf,
    /// Engine options shared by the stores.
    pub engine: EngineConfig,
    /// The object caches in front of the stores.
    pub caches: CachesConfig,
    /// The writer: lanes, group commit, timeouts, retries, circuit breaker.
    pub writer: WriterConfig,
    /// What to keep, and how often maintenance runs.
    pub retention: RetentionConfig,
    /// Metrics, the `/metrics` endpoint and service-level thresholds.
    pub metrics: MetricsConfig,
    /// Backups: destination, compression, retention and schedule.
    pub backup: BackupConfig,
    /// The history archive (Bigtable or object-storage segments) that finalized history is
    /// uploaded to and pruned heights are read from; none by default.
    pub history: HistoryConfig,
    /// Read replicas (RocksDB secondary instances of this node's stores).
    pub replica: ReplicaConfig,
    /// The state commitment (the Merkle state trie the chain store maintains).
    pub state: StateConfig,
    /// The admin endpoint: a Unix socket through which `nodestore` operates the running node.
    pub admin: AdminConfig,
    /// The read-only Ethereum JSON-RPC endpoint (off by default).
    pub rpc: RpcConfig,
}

/// The admin endpoint (off by default): a Unix socket, readable and writable by the node's own
/// user only, through which the CLI takes backups, compacts, prunes, checks and reads figures
/// of the running node. Connections from another user are refused by their peer credentials.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Listen on the admin socket while the node runs (`nodestore serve`, or an embedding
    /// application calling `StorageHandle::serve_admin`). Default false.
    pub enabled: bool,
    /// The socket's path. Default `<data_dir>/admin.sock`. A Unix socket path has at most 107
    /// bytes: set this for a deep data directory.
    pub socket: Option<PathBuf>,
}

impl Config {
    /// Where the admin socket is (configured, or `<data_dir>/admin.sock`).
    pub fn admin_socket(&self) -> PathBuf {
        self.admin.socket.clone().unwrap_or_else(|| self.data_dir.join("admin.sock"))
    }
}

/// The state commitment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Refuse a block whose state writes give another state root than its header claims (for
    /// models whose headers carry one: `ethereum`). Default false: turn it on for a node whose
    /// executor writes every block's state; leave it off for imported history. Needs the trie.
    pub check_roots: bool,
    /// Whether the chain store keeps the state trie (state roots, state proofs). Default `on`.
    /// `off` for a node that needs neither (a history-only node, an era1 importer, a DAG
    /// node's chain side): inserts and imports then do no trie work. Switching to `off` drops
    /// a built trie when the node opens; switching back to `on` builds it again with
    /// `nodestore repair state-trie` (on a running node) or `nodestore migrate`.
    pub trie: TrieSwitch,
}

/// `[state] trie`: whether the chain store keeps the state trie.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrieSwitch {
    /// Kept with every state write (the default).
    #[default]
    On,
    /// Not kept: no trie work on any write path, no state roots or proofs.
    Off,
}

impl TrieSwitch {
    /// Whether the trie is kept.
    pub fn is_on(self) -> bool {
        self == TrieSwitch::On
    }
}

/// Read replicas: a read-only handle following a running node on the same machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicaConfig {
    /// Milliseconds between catch-ups with the primary (0: only on demand). Default 200.
    pub catch_up_interval_ms: u64,
    /// Where the replica keeps its own files (RocksDB secondary logs). Default: a directory
    /// under the system's temporary directory, removed when the replica closes.
    pub scratch_dir: Option<PathBuf>,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig { catch_up_interval_ms: 200, scratch_dir: None }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendKind::default(),
            model: ModelKind::default(),
            data_dir: PathBuf::from("nodestore-data"),
            engine: EngineConfig::default(),
            caches: CachesConfig::default(),
            writer: WriterConfig::default(),
            retention: RetentionConfig::default(),
            metrics: MetricsConfig::default(),
            backup: BackupConfig::default(),
            history: HistoryConfig::default(),
            replica: ReplicaConfig::default(),
            state: StateConfig::default(),
            admin: AdminConfig::default(),
            rpc: RpcConfig::default(),
        }
    }
}

/// Engine options (mapped onto each backend's own settings).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// Engine cache per store, bytes (RocksDB block cache, redb and sled page caches).
    pub cache_bytes: u64,
    /// RocksDB memtable size per table, bytes.
    pub write_buffer_bytes: u64,
    /// Collect RocksDB statistics (needed for the engine cache hit ratio).
    pub statistics: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { cache_bytes: 128 << 20, write_buffer_bytes: 32 << 20, statistics: true }
    }
}

/// The object caches (decoded values; the engine's cache is the second level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CachesConfig {
    /// Blocks by hash.
    pub blocks: CacheConfig,
    /// Canonical block hash by height.
    pub canonical: CacheConfig,
    /// Receipts by block hash.
    pub receipts: CacheConfig,
    /// State values by key (with a TTL by default).
    pub state: CacheConfig,
    /// DAG vertices by hash.
    pub vertices: CacheConfig,
    /// Block records read from the history archive, by height (a transaction, receipt or log
    /// read of an archived block reads its whole record; neighbours then need no request).
    pub archive: CacheConfig,
}

impl Default for CachesConfig {
    fn default() -> Self {
        CachesConfig {
            blocks: CacheConfig::entries(1_000),
            canonical: CacheConfig::entries(10_000),
            receipts: CacheConfig::entries(5_000),
            state: CacheConfig::entries(10_000).with_ttl(std::time::Duration::from_secs(60)),
            vertices: CacheConfig::entries(10_000),
            archive: CacheConfig::entries(512),
        }
    }
}

/// The writer thread's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WriterConfig {
    /// Capacity of the high lane (finalization, head updates). Submitters wait when full.
    pub high_lane: usize,
    /// Capacity of the normal lane (blocks, vertices).
    pub normal_lane: usize,
    /// Capacity of the low lane (maintenance).
    pub low_lane: usize,
    /// Most requests one group commit takes.
    pub max_batch_requests: usize,
    /// Most payload bytes one group commit takes (a single larger request still goes alone).
    pub max_batch_bytes: usize,
    /// A request not done within this many milliseconds fails with `Timeout`.
    pub request_timeout_ms: u64,
    /// Retries of a write after a transient engine error.
    pub retries: u32,
    /// First retry delay, milliseconds (doubling each time).
    pub retry_base_ms: u64,
    /// Consecutive engine failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// Milliseconds the breaker stays open before letting a probe through.
    pub breaker_cooldown_ms: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            high_lane: 1_024,
            normal_lane: 16_384,
            low_lane: 64,
            max_batch_requests: 2_048,
            max_batch_bytes: 32 << 20,
            request_timeout_ms: 30_000,
            retries: 3,
            retry_base_ms: 10,
            breaker_failures: 5,
            breaker_cooldown_ms: 5_000,
        }
    }
}

/// Retention and the maintenance schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetentionConfig {
    /// Keep bodies, receipts and change sets of this many recent blocks (none: keep all).
    pub chain_keep_blocks: Option<u64>,
    /// Keep DAG vertices this many heights below the last finalized one (none: keep all).
    pub dag_keep_heights: Option<u64>,
    /// Seconds between pruning runs (0: never).
    pub prune_interval_s: u64,
    /// Seconds between compactions (0: never).
    pub compact_interval_s: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            chain_keep_blocks: None,
            dag_keep_heights: None,
            prune_interval_s: 600,
            compact_interval_s: 0,
        }
    }
}

/// The environment-variable prefix: `NODE_STORAGE_WRITER__RETRIES=5` sets `writer.retries`
/// (sections separated by a double underscore).
pub const ENV_PREFIX: &str = "NODE_STORAGE_";

impl Config {
    /// Defaults, then `path` (TOML) if given, then `NODE_STORAGE_*` variables.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let text = match path {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| ConfigError::Read { path: p.to_owned(), reason: e.to_string() })?,
            None => String::new(),
        };
        Self::from_toml_and_env(&text, std::env::vars())
    }

    /// Parses TOML text (no environment).
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_and_env(text, std::iter::empty())
    }

    /// Parses TOML text, then applies `vars` whose names start with [`ENV_PREFIX`].
    pub fn from_toml_and_env(
        text: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut doc: toml::Table = text.parse().map_err(|e: toml::de::Error| ConfigError::Parse(e.to_string()))?;
        let mut from_env = Vec::new();
        for (name, raw) in vars {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else { continue };
            let path: Vec<String> = key.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(String::is_empty) {
                return Err(ConfigError::Env { var: name, reason: "empty key segment".into() });
            }
            set_path(&mut doc, &path, parse_env_value(&raw))
                .map_err(|reason| ConfigError::Env { var: name.clone(), reason })?;
            from_env.push(name);
        }
        let config: Config = toml::Value::Table(doc).try_into().map_err(|e: toml::de::Error| {
            let mut msg = e.to_string().trim().replace('\n', " ");
            if !from_env.is_empty() {
                msg.push_str(&format!(" (environment overrides applied: {})", from_env.join(", ")));
            }
            ConfigError::Parse(msg)
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value that parses but is out of its range; the error names the key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, why: String| Err(ConfigError::Invalid { key: key.to_owned(), reason: why });
        let within = |key: &str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) { Ok(()) } else { invalid(key, format!("must be within {lo}..={hi}, not {v}")) }
        };
        const DAY_MS: u64 = 86_400_000;
        const YEAR_S: u64 = 365 * 86_400;
        let w = &self.writer;
        for (key, v) in
            [("writer.high_lane", w.high_lane), ("writer.normal_lane", w.normal_lane), ("writer.low_lane", w.low_lane)]
        {
            within(key, v as u64, 1, 1 << 20)?;
        }
        within("writer.max_batch_requests", w.max_batch_requests as u64, 1, 1_000_000)?;
        within("writer.max_batch_bytes", w.max_batch_bytes as u64, 1, 1 << 31)?;
        within("writer.request_timeout_ms", w.request_timeout_ms, 1, DAY_MS)?;
        within("writer.retries", u64::from(w.retries), 0, 100)?;
        within("writer.retry_base_ms", w.retry_base_ms, 0, 60_000)?;
        within("writer.breaker_failures", u64::from(w.breaker_failures), 1, 1_000_000)?;
        within("writer.breaker_cooldown_ms", w.breaker_cooldown_ms, 1, DAY_MS)?;
        within("engine.cache_bytes", self.engine.cache_bytes, 1 << 20, 1 << 40)?;
        within("engine.write_buffer_bytes", self.engine.write_buffer_bytes, 1 << 20, 16 << 30)?;
        if self.state.check_roots && !self.state.trie.is_on() {
            return invalid(
                "state.check_roots",
                "needs the state trie: set `state.trie = \"on\"`, or turn the check off".into(),
            );
        }
        if self.retention.chain_keep_blocks == Some(0) {
            return invalid(
                "retention.chain_keep_blocks",
                "keeping 0 blocks is not possible; omit it to keep all".into(),
            );
        }
        within("retention.prune_interval_s", self.retention.prune_interval_s, 0, YEAR_S)?;
        within("retention.compact_interval_s", self.retention.compact_interval_s, 0, YEAR_S)?;
        let c = &self.caches;
        for (name, cache) in [
            ("blocks", &c.blocks),
            ("canonical", &c.canonical),
            ("receipts", &c.receipts),
            ("state", &c.state),
            ("vertices", &c.vertices),
            ("archive", &c.archive),
        ] {
            cache
                .validate(name)
                .map_err(|e| ConfigError::Invalid { key: format!("caches.{name}.{}", e.field), reason: e.problem })?;
        }
        self.metrics
            .validate()
            .map_err(|e| ConfigError::Invalid { key: format!("metrics.{}", e.key), reason: e.reason })?;
        self.backup
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid { key: format!("backup.{key}"), reason })?;
        self.history
            .validate()
            .map_err(|(key, reason)| ConfigError::Invalid { key: format!("history.{key}"), reason })?;
        within("replica.catch_up_interval_ms", self.replica.catch_up_interval_ms, 0, 3_600_000)?;
        self.rpc.validate().map_err(|(key, reason)| ConfigError::Invalid { key: format!("rpc.{key}"), reason })?;
        Ok(())
    }

    /// The configuration as TOML (for `nodestore config` and documentation).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }
}

/// An environment value: a TOML scalar if it parses as one (numbers, booleans, quoted
/// strings, arrays), otherwise the raw text as a string.
fn parse_env_value(raw: &str) -> toml::Value {
    match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(doc: &mut toml::Table, path: &[String], value: toml::Value) -> Result<(), String> {
    let (last, parents) = path.split_last().ok_or("empty key")?;
    let mut table = doc;
    for p in parents {
        let entry = table.entry(p.clone()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        table = entry.as_table_mut().ok_or_else(|| format!("`{p}` is not a section"))?;
    }
    table.insert(last.clone(), value);
    Ok(())
}
