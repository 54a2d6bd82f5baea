//! [`RocksReader`]: an existing database opened read-only.

use std::path::{Path, PathBuf};

use rocksdb::DB;
use storage_api::schema::check_schema;
use storage_api::{KvReader, OpenError, Schema, VersionPolicy};

use crate::config::RocksConfig;
use crate::error::map_err;
use crate::open::{Probe, Scratch, probe, refuse_lost_tables};
use crate::{acked, read};
use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaRecord};
use storage_api::table::META_TABLE;

/// A RocksDB database opened read-only: the same reads as [`RocksStore`](crate::RocksStore),
/// no write methods. Opening runs the same checks as a read-write open (schema, damaged or
/// missing logs against the acknowledged sequence) and changes nothing on disk: RocksDB's
/// read-only mode replays the logs in memory, takes no lock and writes no file (its info log
/// goes to a scratch directory). A missing database is [`OpenError::NotFound`].
///
/// The view is the database as it was when opened; writes a running node makes later are not
/// seen — unless it was opened with [`RocksReader::open_secondary`]: a RocksDB secondary
/// instance that follows the running primary each time [`RocksReader::catch_up`] is called.
pub struct RocksReader {
    pub(crate) db: DB,
    schema: Schema,
    stored_version: u32,
    path: PathBuf,
    /// Whether this is a secondary instance (it can catch up).
    secondary: bool,
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
        Ok(RocksReader { db, schema, stored_version, path: path.clone(), secondary: false, _scratch })
    }

    /// Opens the database at `config.path`, which a running primary may be writing, as a
    /// RocksDB secondary instance: it reads the primary's files without a lock and without
    /// changing them, keeps its own info log and state in a scratch directory under `scratch`
    /// (the system's temporary directory if `None`; removed when dropped), and sees what the
    /// primary wrote when it opened and at each [`RocksReader::catch_up`].
    pub fn open_secondary(config: &RocksConfig, scratch: Option<&Path>, schema: Schema) -> Result<Self, OpenError> {
        config.validate()?;
        let path = &config.path;
        if !path.join("CURRENT").exists() {
            return Err(OpenError::NotFound(path.clone()));
        }
        let existing: Vec<String> = DB::list_cf(&rocksdb::Options::default(), path).map_err(map_err)?;
        let scratch = Scratch::new_in(scratch)?;
        let mut opts = rocksdb::Options::default();
        // A secondary must keep every table file open: the primary may delete one it still reads.
        opts.set_max_open_files(-1);
        opts.set_db_log_dir(scratch.path());
        let db = DB::open_cf_as_secondary(&opts, path.as_path(), scratch.path(), &existing).map_err(map_err)?;
        let record = match db.cf_handle(META_TABLE) {
            Some(cf) => db.get_pinned_cf(cf, SCHEMA_RECORD_KEY).map_err(map_err)?.map(|b| SchemaRecord::decode(&b)),
            None => None,
        }
        .transpose()?;
        if record.is_none() {
            return Err(OpenError::NotFound(path.clone()));
        }
        let stored_version = match check_schema(&schema, record.as_ref(), &existing, VersionPolicy::Exact)? {
            storage_api::schema::SchemaAction::Initialize => schema.version(),
            storage_api::schema::SchemaAction::Open { stored_version } => stored_version,
        };
        Ok(RocksReader { db, schema, stored_version, path: path.clone(), secondary: true, _scratch: scratch })
    }

    /// Catches up with the primary (a secondary instance; see
    /// [`RocksReader::open_secondary`]): afterwards reads see every write the primary had
    /// made durable. `Ok(false)` on a read-only reader, whose view is fixed when opened.
    pub fn catch_up(&self) -> Result<bool, storage_api::ReadError> {
        if !self.secondary {
            return Ok(false);
        }
        self.db.try_catch_up_with_primary().map_err(map_err)?;
        Ok(true)
    }

    /// Whether this reader follows a primary ([`RocksReader::open_secondary`]).
    pub fn is_secondary(&self) -> bool {
        self.secondary
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
