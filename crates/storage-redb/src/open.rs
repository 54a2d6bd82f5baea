//! Configuration and opening: the schema check reads a read-only instance (a file needing
//! recovery after a crash is repaired first), then the read-write open creates tables.

use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, TableHandle};
use serde::{Deserialize, Serialize};
use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaAction, SchemaRecord, check_schema};
use storage_api::table::META_TABLE;
use storage_api::{OpenError, Schema, VersionPolicy};

use crate::error::map_err;
use crate::{RawTable, RedbStore};

/// Settings of the redb backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedbConfig {
    /// The database file; created if missing. Default: `data/node.redb`.
    pub path: PathBuf,
    /// Page cache size, bytes. Default: 256 MiB.
    pub cache_size: u64,
}

impl Default for RedbConfig {
    fn default() -> Self {
        RedbConfig { path: PathBuf::from("data/node.redb"), cache_size: 256 << 20 }
    }
}

impl RedbConfig {
    /// The defaults, with the database file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        RedbConfig { path: path.into(), ..RedbConfig::default() }
    }
}

/// The stored record and table names, read without modifying the file — unless the file was
/// not closed cleanly (a crash, a failed commit): redb's read-only open refuses such a file, so
/// it is repaired first, as any read-write open would (engine recovery, like a log replay: what
/// the committed transactions hold does not change), and then inspected.
fn inspect(path: &Path) -> Result<(Option<SchemaRecord>, Vec<String>), OpenError> {
    match Database::builder().open_read_only(path) {
        Ok(db) => inspect_open(&db),
        Err(redb::DatabaseError::RepairAborted) => {
            tracing::warn!(path = %path.display(), "redb file not closed cleanly; repairing before the schema check");
            let db = Database::builder().open(path).map_err(map_err)?;
            inspect_open(&db)
        }
        Err(e) => Err(map_err(e).into()),
    }
}

/// The stored record and table names of an open database.
pub(crate) fn inspect_open(db: &impl ReadableDatabase) -> Result<(Option<SchemaRecord>, Vec<String>), OpenError> {
    let txn = db.begin_read().map_err(map_err)?;
    let tables: Vec<String> = txn.list_tables().map_err(map_err)?.map(|t| t.name().to_owned()).collect();
    let record = if tables.iter().any(|t| t == META_TABLE) {
        let table = txn.open_table(RawTable::new(META_TABLE)).map_err(map_err)?;
        let value = table.get(SCHEMA_RECORD_KEY).map_err(map_err)?;
        value.map(|v| SchemaRecord::decode(v.value())).transpose()?
    } else {
        None
    };
    Ok((record, tables))
}

pub(crate) fn open(config: &RedbConfig, schema: Schema, policy: VersionPolicy) -> Result<RedbStore, OpenError> {
    let path = &config.path;
    let exists = path.exists();
    let (record, on_disk) = if exists { inspect(path)? } else { (None, Vec::new()) };
    let action = check_schema(&schema, record.as_ref(), &on_disk, policy)?;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        storage_api::durable::create_dir_all(parent).map_err(|source| OpenError::Io {
            action: "create directory",
            path: parent.to_owned(),
            source,
        })?;
    }
    let db = Database::builder().set_cache_size(config.cache_size as usize).create(path).map_err(map_err)?;
    if !exists {
        // redb syncs the file, not the directory that names it: without this a power cut
        // after the first durable commit lost the whole file (found by the fault-fs sweeps).
        storage_api::durable::sync_parent(path).map_err(|source| OpenError::Io {
            action: "sync the directory of",
            path: path.clone(),
            source,
        })?;
    }
    let stored_version = match action {
        SchemaAction::Initialize => schema.version(),
        SchemaAction::Open { stored_version } => stored_version,
    };
    let wanted = SchemaRecord { version: stored_version, ..SchemaRecord::for_schema(&schema) };
    let names: Vec<&'static str> = schema.physical_tables().collect();
    let missing = names.iter().any(|n| !on_disk.iter().any(|t| t == n));
    if missing || record.as_ref() != Some(&wanted) {
        let txn = db.begin_write().map_err(map_err)?;
        for name in &names {
            txn.open_table(RawTable::new(name)).map_err(map_err)?;
        }
        if record.as_ref().is_none_or(|r| r.tables != wanted.tables) {
            let bytes = wanted.encode().map_err(OpenError::CorruptSchemaRecord)?;
            let mut meta = txn.open_table(RawTable::new(META_TABLE)).map_err(map_err)?;
            meta.insert(SCHEMA_RECORD_KEY, bytes.as_slice()).map_err(map_err)?;
        }
        txn.commit().map_err(map_err)?;
    }
    Ok(RedbStore {
        db: std::sync::RwLock::new(db),
        schema,
        names,
        stored_version,
        path: path.clone(),
        poison: Default::default(),
    })
}
