//! Configuration and opening.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaAction, SchemaRecord, check_schema};
use storage_api::table::META_TABLE;
use storage_api::{BackendErrorKind, OpenError, Schema, VersionPolicy};

use crate::SledStore;
use crate::error::map_err;

/// Settings of the sled backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SledConfig {
    /// Database directory; created if missing. Default: `data/sled`.
    pub path: PathBuf,
    /// Page cache, bytes. Default: 256 MiB.
    pub cache_capacity: u64,
    /// Background flush interval in milliseconds (`None`: only explicit flushes). Default: 500.
    pub flush_every_ms: Option<u64>,
}

impl Default for SledConfig {
    fn default() -> Self {
        SledConfig { path: PathBuf::from("data/sled"), cache_capacity: 256 << 20, flush_every_ms: Some(500) }
    }
}

impl SledConfig {
    /// The defaults, at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        SledConfig { path: path.into(), ..SledConfig::default() }
    }
}

/// sled's own trees (its default tree), which are not storage-api tables.
fn is_internal(name: &[u8]) -> bool {
    name.starts_with(b"__sled__")
}

/// Opens sled, retrying for a while if the directory is still locked: a store dropped a moment
/// ago can hold the lock until sled's background flusher exits.
fn open_db(path: &Path, config: &SledConfig) -> Result<sled::Db, OpenError> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let result = sled::Config::new()
            .path(path)
            .cache_capacity(config.cache_capacity)
            .flush_every_ms(config.flush_every_ms)
            .open()
            .map_err(map_err);
        match result {
            Err(e) if e.kind == BackendErrorKind::Busy && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => return other.map_err(OpenError::Backend),
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

/// The table names and schema record of an open database.
fn inspect(db: &sled::Db) -> Result<(Vec<String>, Option<SchemaRecord>), OpenError> {
    let on_disk: Vec<String> =
        db.tree_names().iter().filter(|n| !is_internal(n)).map(|n| String::from_utf8_lossy(n).into_owned()).collect();
    let record = if on_disk.iter().any(|t| t == META_TABLE) {
        let meta = db.open_tree(META_TABLE).map_err(map_err)?;
        meta.get(SCHEMA_RECORD_KEY).map_err(map_err)?.map(|v| SchemaRecord::decode(&v)).transpose()?
    } else {
        None
    };
    Ok((on_disk, record))
}

/// sled writes to its files whenever it opens, so an existing database is inspected through
/// a scratch copy: a refused open leaves the real one untouched. (This makes opening an
/// existing sled database linear in its size — acceptable for a comparison backend.)
fn inspect_copy(path: &Path, config: &SledConfig) -> Result<(Vec<String>, Option<SchemaRecord>), OpenError> {
    let scratch = std::env::temp_dir().join(format!(
        "storage-sled-check-{}-{}",
        std::process::id(),
        SCRATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let io = |action, source| OpenError::Io { action, path: scratch.clone(), source };
    copy_dir(path, &scratch).map_err(|e| io("copy database to", e))?;
    let result = open_db(&scratch, config).and_then(|db| inspect(&db));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

static SCRATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

pub(crate) fn open(config: &SledConfig, schema: Schema, policy: VersionPolicy) -> Result<SledStore, OpenError> {
    let exists = config.path.join("conf").exists();
    let (on_disk, record) = if exists { inspect_copy(&config.path, config)? } else { (Vec::new(), None) };
    let action = check_schema(&schema, record.as_ref(), &on_disk, policy)?;
    let stored_version = match action {
        SchemaAction::Initialize => schema.version(),
        SchemaAction::Open { stored_version } => stored_version,
    };
    let db = open_db(&config.path, config)?;
    let names: Vec<&'static str> = schema.physical_tables().collect();
    let trees = names.iter().map(|n| db.open_tree(n).map_err(map_err)).collect::<Result<Vec<_>, _>>()?;
    let wanted = SchemaRecord { version: stored_version, ..SchemaRecord::for_schema(&schema) };
    if record.as_ref() != Some(&wanted) {
        let bytes = wanted.encode().map_err(OpenError::CorruptSchemaRecord)?;
        trees[0].insert(SCHEMA_RECORD_KEY, bytes).map_err(map_err)?;
        db.flush().map_err(map_err)?;
    }
    Ok(SledStore {
        db,
        trees,
        names,
        schema,
        stored_version,
        path: config.path.clone(),
        writer: std::sync::Mutex::new(()),
        poison: Default::default(),
    })
}
