//! [`RocksReader`]: an existing database opened read-only.

use std::path::{Path, PathBuf};

use rocksdb::DB;
use storage_api::schema::check_schema;
use storage_api::{KvReader, OpenError, Schema, VersionPolicy};

use crate::config::RocksConfig;
use crate::error::map_err;
use crate::open::{Probe, Scratch, probe, refuse_lost_tables};
use crate::{acked, read};

/// A RocksDB database opened read-only: the same reads as [`RocksStore`](crate::RocksStore),
/// no write methods. Opening runs the same checks as a read-write open (schema, damaged or
/// missing logs against the acknowledged sequence) and changes nothing on disk: RocksDB's
/// read-only mode replays the logs in memory, takes no lock and writes no file (its info log
/// goes to a scratch directory). A missing database is [`OpenError::NotFound`].
///
/// The view is the database as it was when opened; writes a running node makes later are not
/// seen.
pub struct RocksReader {
    pub(crate) db: DB,
    schema: Schema,
    stored_version: u32,
    path: PathBuf,
    /// The read-only instance's scratch directory, removed after `db` is dropped.
    _scratch: Scratch,
}

impl std::fmt::Debug for RocksReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RocksReader").field("path", &self.path).field("schema", &self.schema.name()).finish()
    }
}

impl RocksReader {
    /// Opens the database at `config.path` read-only for `schema`.
    pub fn open(config: &RocksConfig, schema: Schema, policy: VersionPolicy) -> Result<Self, OpenError> {
        config.validate()?;
        let path = &config.path;
        if !path.join("CURRENT").exists() {
            return Err(OpenError::NotFound(path.clone()));
        }
        let existing: Vec<String> = DB::list_cf(&rocksdb::Options::default(), path).map_err(map_err)?;
        let acked = acked::read(path)?;
        let Probe { db, record, scratch: _scratch, .. } = probe(config, &existing, acked)?;
        refuse_lost_tables(path, true, record.is_some())?;
        if record.is_none() {
            return Err(OpenError::NotFound(path.clone()));
        }
        let stored_version = match check_schema(&schema, record.as_ref(), &existing, policy)? {
            storage_api::schema::SchemaAction::Initialize => schema.version(),
            storage_api::schema::SchemaAction::Open { stored_version } => stored_version,
        };
        Ok(RocksReader { db, schema, stored_version, path: path.clone(), _scratch })
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The sequence number of the last write visible to this reader.
    pub fn sequence(&self) -> u64 {
        self.db.latest_sequence_number()
    }
}

read::read_through_db!(RocksReader);

impl KvReader for RocksReader {
    const BACKEND: &'static str = crate::error::BACKEND;

    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn stored_schema_version(&self) -> u32 {
        self.stored_version
    }
}
