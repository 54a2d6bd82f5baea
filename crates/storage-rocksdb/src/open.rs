//! Opening: options from the config, the schema check on a read-only instance, then the
//! read-write open that creates missing column families and records the schema.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, DBRecoveryMode, Options};
use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaAction, SchemaRecord, check_schema};
use storage_api::table::{Access, META_TABLE};

use storage_api::{BackendError, BackendErrorKind, OpenError, Schema, VersionPolicy};
use tracing::{debug, info, warn};

use crate::RocksStore;
use crate::acked::{self, ACKNOWLEDGED_FILE, Acked};
use crate::config::{Codec, CompactionStyle, RocksConfig, TableTuning};
use crate::error::{map_err, map_open_err};

fn codec(c: Codec) -> DBCompressionType {
    match c {
        Codec::None => DBCompressionType::None,
        Codec::Lz4 => DBCompressionType::Lz4,
        Codec::Zstd => DBCompressionType::Zstd,
    }
}

fn db_options(config: &RocksConfig) -> Options {
    let mut o = Options::default();
    o.create_if_missing(true);
    o.create_missing_column_families(true);
    o.set_max_open_files(config.max_open_files);
    o.set_max_total_wal_size(config.max_total_wal_size);
    o.set_max_background_jobs(config.background_jobs);
    o.set_keep_log_file_num(5);
    o.set_atomic_flush(!config.wal);
    // The MANIFEST records which logs are live; recovery then fails loudly when a log it needs
    // is gone (a MANIFEST cut back to an older state, or deleted logs) instead of silently
    // opening an older database.
    o.set_track_and_verify_wals_in_manifest(true);
    if config.statistics {
        o.enable_statistics();
    }
    o
}

fn table_options(config: &RocksConfig, cache: &Cache, name: &str, access: Access) -> Options {
    let default_tuning = TableTuning::default();
    let t = config.tables.get(name).unwrap_or(&default_tuning);
    let mut o = Options::default();
    o.set_write_buffer_size(t.write_buffer_size.unwrap_or(config.write_buffer_size) as usize);
    o.set_max_write_buffer_number(config.max_write_buffer_number as i32);
    let upper = codec(t.compression_upper.unwrap_or(config.compression_upper));
    let bottom = codec(t.compression_bottom.unwrap_or(config.compression_bottom));
    o.set_compression_type(upper);
    o.set_bottommost_compression_type(bottom);
    match config.compaction_style {
        CompactionStyle::Level => {
            o.set_compaction_style(rocksdb::DBCompactionStyle::Level);
            o.set_level_compaction_dynamic_level_bytes(true);
            o.set_compression_per_level(&[upper; 7]);
        }
        CompactionStyle::Universal => o.set_compaction_style(rocksdb::DBCompactionStyle::Universal),
    }
    let mut block = BlockBasedOptions::default();
    block.set_block_cache(cache);
    block.set_cache_index_and_filter_blocks(true);
    block.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let default_bloom = match access {
        Access::Range => 0.0,
        _ => config.bloom_filter_bits,
    };
    let bloom = t.bloom_filter_bits.unwrap_or(default_bloom);
    if bloom > 0.0 {
        block.set_bloom_filter(bloom, false);
        // A bloom filter over the memtable too: lookups of absent keys (the "is it already
        // stored?" checks before inserts) then skip the skiplist search.
        o.set_memtable_whole_key_filtering(true);
        o.set_memtable_prefix_bloom_ratio(0.05);
    }
    o.set_block_based_table_factory(&block);
    o
}

/// A read-only instance of an existing database: what recovery finds, before anything on disk
/// changes. Its info log goes to a scratch directory, removed when the probe is dropped.
pub(crate) struct Probe {
    pub(crate) db: DB,
    pub(crate) record: Option<SchemaRecord>,
    /// The sequence number the logs recover to.
    pub(crate) recovered: u64,
    /// The recovery mode the read-write open must use to recover the same state.
    pub(crate) mode: DBRecoveryMode,
    /// Dropped after `db`.
    pub(crate) scratch: Scratch,
}

/// A scratch directory, removed when dropped.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A new scratch directory under `parent` (the system's temporary directory if `None`).
    pub(crate) fn new_in(parent: Option<&Path>) -> Result<Self, OpenError> {
        match parent {
            None => Ok(Scratch(scratch_log_dir()?)),
            Some(p) => {
                use std::sync::atomic::{AtomicU64, Ordering};
                static N: AtomicU64 = AtomicU64::new(0);
                let dir = p.join(format!("secondary-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
                std::fs::create_dir_all(&dir).map_err(|source| OpenError::Io {
                    action: "create",
                    path: dir.clone(),
                    source,
                })?;
                Ok(Scratch(dir))
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_only(config: &RocksConfig, existing: &[String], mode: DBRecoveryMode) -> Result<Probe, OpenError> {
    let scratch = Scratch(scratch_log_dir()?);
    let mut opts = Options::default();
    opts.set_db_log_dir(&scratch.0);
    opts.set_max_open_files(config.max_open_files.clamp(-1, 256));
    opts.set_track_and_verify_wals_in_manifest(true);
    opts.set_wal_recovery_mode(mode);
    let db = DB::open_cf_for_read_only(&opts, &config.path, existing, false).map_err(map_err)?;
    let record = match db.cf_handle(META_TABLE) {
        Some(cf) => db.get_pinned_cf(cf, SCHEMA_RECORD_KEY).map_err(map_err)?.map(|b| SchemaRecord::decode(&b)),
        None => None,
    }
    .transpose()?;
    let recovered = db.latest_sequence_number();
    Ok(Probe { db, record, recovered, mode, scratch })
}

/// Opens the existing database read-only and decides whether its logs may be recovered:
///
/// * the logs must recover at least to the acknowledged sequence (`acked`), else acknowledged
///   writes were lost (a truncated, damaged or deleted log);
/// * a damaged record anywhere in the logs is refused, unless the acknowledged sequence proves
///   that the damage lies past every acknowledged write (a torn tail of unsynced writes): then
///   the read-write open recovers up to the damage and drops the rest, as RocksDB's
///   point-in-time recovery does.
pub(crate) fn probe(config: &RocksConfig, existing: &[String], acked: Option<u64>) -> Result<Probe, OpenError> {
    let path = &config.path;
    let damaged = |detail: String, recovered: Option<u64>| OpenError::DamagedLog {
        path: path.clone(),
        detail,
        acknowledged: acked,
        recovered,
    };
    let probe = match read_only(config, existing, DBRecoveryMode::TolerateCorruptedTailRecords) {
        Ok(p) => p,
        Err(OpenError::Backend(e)) if e.kind == BackendErrorKind::Corruption => {
            let intact = read_only(config, existing, DBRecoveryMode::PointInTime)?;
            return match acked {
                Some(a) if intact.recovered >= a => {
                    warn!(
                        path = %path.display(),
                        acknowledged = a,
                        recovered = intact.recovered,
                        error = %e.message,
                        "the write-ahead log is damaged past the last acknowledged write (a torn tail of unsynced \
                         writes); recovering up to the damage"
                    );
                    Ok(intact)
                }
                Some(a) => Err(damaged(
                    format!(
                        "{}; its intact part ends at sequence {} but writes up to sequence {a} were acknowledged",
                        e.message, intact.recovered
                    ),
                    Some(intact.recovered),
                )),
                None => Err(damaged(
                    format!(
                        "{}; its intact part ends at sequence {}, and with no acknowledged-sequence record \
                         ({ACKNOWLEDGED_FILE}) the damage cannot be shown to hold only unacknowledged writes",
                        e.message, intact.recovered
                    ),
                    Some(intact.recovered),
                )),
            };
        }
        Err(e) => return Err(e),
    };
    if let Some(a) = acked
        && probe.recovered < a
    {
        return Err(damaged(
            format!(
                "the logs on disk recover to sequence {} but writes up to sequence {a} were acknowledged as durable \
                 ({} sequence numbers missing: a log file truncated, deleted or replaced)",
                probe.recovered,
                a - probe.recovered
            ),
            Some(probe.recovered),
        ));
    }
    Ok(probe)
}

/// A new private directory for the probe's logs in the system's temporary directory: created
/// here (never one that exists already, which another user could have planted), owner-only,
/// with a name nobody can predict.
fn scratch_log_dir() -> Result<PathBuf, OpenError> {
    use std::os::unix::fs::DirBuilderExt;
    let base = std::env::temp_dir();
    let mut last = None;
    for _ in 0..16 {
        let mut random = [0u8; 8];
        let urandom = Path::new("/dev/urandom");
        std::fs::File::open(urandom)
            .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
            .map_err(|source| OpenError::Io { action: "read", path: urandom.to_owned(), source })?;
        let dir =
            base.join(format!("storage-rocksdb-check-{}-{:016x}", std::process::id(), u64::from_le_bytes(random)));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((dir, e)),
            Err(source) => return Err(OpenError::Io { action: "create", path: dir, source }),
        }
    }
    let (path, source) = last.expect("the loop ran");
    Err(OpenError::Io { action: "create", path, source })
}

/// Refuses directories that RocksDB would silently treat as a new, empty database although they
/// hold table files: a deleted `CURRENT` file, or a MANIFEST truncated so far that it no longer
/// leads to the schema record. Opening would delete those files. (A creation interrupted
/// before the record was written has no table files yet, and is resumed.)
pub(crate) fn refuse_lost_tables(path: &Path, current: bool, has_record: bool) -> Result<(), OpenError> {
    if current && has_record {
        return Ok(());
    }
    let Ok(entries) = std::fs::read_dir(path) else { return Ok(()) };
    let (mut tables, mut manifests) = (0usize, 0usize);
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        tables += usize::from(name.ends_with(".sst"));
        manifests += usize::from(name.starts_with("MANIFEST-"));
    }
    let message = if !current && (tables > 0 || manifests > 0) {
        format!(
            "{} holds RocksDB files ({tables} table files) but no CURRENT file; refusing to create a new \
             database over them (restore CURRENT or the directory from a backup)",
            path.display()
        )
    } else if tables > 0 {
        format!(
            "{} holds {tables} table files but no schema record is reachable through its MANIFEST (truncated \
             or replaced MANIFEST?); refusing to open, which would delete them (restore from a backup)",
            path.display()
        )
    } else {
        return Ok(());
    };
    Err(OpenError::Backend(BackendError::new(crate::error::BACKEND, BackendErrorKind::Corruption, message)))
}

/// How the logs are recovered on a read-write open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// Refuse unless every acknowledged write is recovered (the normal open).
    Strict,
    /// Recover what the logs hold up to their first damage (an operator accepted the loss).
    AcceptLoss,
}

pub(crate) fn open(config: &RocksConfig, schema: Schema, policy: VersionPolicy) -> Result<RocksStore, OpenError> {
    open_with(config, schema, policy, Recovery::Strict)
}

pub(crate) fn open_with(
    config: &RocksConfig,
    schema: Schema,
    policy: VersionPolicy,
    recovery: Recovery,
) -> Result<RocksStore, OpenError> {
    config.validate()?;
    let path = &config.path;
    let exists = path.join("CURRENT").exists();
    let existing: Vec<String> = if exists { DB::list_cf(&Options::default(), path).map_err(map_err)? } else { vec![] };
    let probe = match (exists, recovery) {
        (false, _) => None,
        (true, Recovery::Strict) => Some(probe(config, &existing, acked::read(path)?)?),
        (true, Recovery::AcceptLoss) => Some(read_only(config, &existing, DBRecoveryMode::PointInTime)?),
    };
    let record = probe.as_ref().and_then(|p| p.record.clone());
    let mode = probe.as_ref().map_or(DBRecoveryMode::TolerateCorruptedTailRecords, |p| p.mode);
    drop(probe);
    refuse_lost_tables(path, exists, record.is_some())?;
    let action = check_schema(&schema, record.as_ref(), &existing, policy)?;
    debug!(path = %path.display(), ?action, "schema check passed");

    crate::ingest::remove_leftovers(path);
    let cache = Cache::new_lru_cache(config.block_cache_size as usize);
    let mut descriptors: Vec<ColumnFamilyDescriptor> = Vec::new();
    let mut ingest_options = Vec::new();
    for name in schema.physical_tables() {
        let access = schema.table(name).map_or(Access::Point, |t| t.access);
        descriptors.push(ColumnFamilyDescriptor::new(name, table_options(config, &cache, name, access)));
        // Bulk ingest builds its files with the table's own options (filters, block size), but
        // compresses them with the upper levels' codec: zstd at write time was a fifth of a
        // bulk import's profile, and compaction recompresses what reaches the bottom anyway.
        let mut ingest = table_options(config, &cache, name, access);
        let t = config.tables.get(name).cloned().unwrap_or_default();
        ingest.set_bottommost_compression_type(codec(t.compression_upper.unwrap_or(config.compression_upper)));
        ingest_options.push(ingest);
    }
    if existing.iter().any(|t| t == "default") {
        descriptors.push(ColumnFamilyDescriptor::new("default", Options::default()));
    }
    let mut options = db_options(config);
    options.set_wal_recovery_mode(mode);
    // RocksDB fsyncs the files it creates in the directory and the directory itself, but not
    // the directory's own name in its parent: a power cut after the first synced writes lost
    // the whole database (found by the fault-fs error sweeps).
    storage_api::durable::create_dir_all(path).map_err(|source| OpenError::Io {
        action: "create directory",
        path: path.clone(),
        source,
    })?;
    let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(|e| map_open_err(path, e))?;

    let wanted = SchemaRecord::for_schema(&schema);
    let stored_version = match action {
        SchemaAction::Initialize => {
            info!(path = %path.display(), schema = schema.name(), version = schema.version(), "created database");
            schema.version()
        }
        SchemaAction::Open { stored_version } => stored_version,
    };
    let needs_record = match &record {
        None => true,
        Some(r) => r.tables != wanted.tables,
    };
    if needs_record {
        // Keep the stored version (an older one stays older until a migration raises it);
        // record the table list the database now has.
        let new_record = SchemaRecord { version: stored_version, ..wanted };
        let bytes = new_record.encode().map_err(OpenError::CorruptSchemaRecord)?;
        let cf = db.cf_handle(META_TABLE).expect("meta column family created");
        let mut wo = rocksdb::WriteOptions::default();
        wo.set_sync(config.wal);
        wo.disable_wal(!config.wal);
        db.put_cf_opt(cf, SCHEMA_RECORD_KEY, bytes, &wo).map_err(map_err)?;
        if !config.wal {
            db.flush_cf(cf).map_err(map_err)?;
        }
    }
    // Everything recovered is durable now (RocksDB flushes what it replayed), so the record
    // starts at the recovered sequence.
    let acked = Acked::create(path, db.latest_sequence_number())?;
    Ok(RocksStore {
        db,
        schema,
        stored_version,
        path: path.clone(),
        wal: config.wal,
        cache,
        statistics: config.statistics.then_some(options),
        poison: Default::default(),
        writes: Mutex::new(acked),
        ingest_options,
    })
}

/// What a read-write open that accepted a damaged log left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalLoss {
    /// Why the normal open refused.
    pub detail: String,
    /// The highest sequence number that had been acknowledged, when recorded.
    pub acknowledged: Option<u64>,
    /// The sequence number the store now holds (everything after it is gone).
    pub recovered: u64,
    /// Where the damaged logs, MANIFEST and records were copied before recovery.
    pub kept: PathBuf,
}

/// Opens read-write; if the normal open refuses for a damaged log, keeps a copy of the log
/// files aside and recovers what the logs hold up to their first damage.
pub(crate) fn open_accepting_wal_loss(
    config: &RocksConfig,
    schema: Schema,
    policy: VersionPolicy,
) -> Result<(RocksStore, Option<WalLoss>), OpenError> {
    let (detail, acknowledged) = match open(config, schema.clone(), policy) {
        Ok(store) => return Ok((store, None)),
        Err(OpenError::DamagedLog { detail, acknowledged, .. }) => (detail, acknowledged),
        Err(e) => return Err(e),
    };
    let path = &config.path;
    let kept = keep_aside(path)?;
    warn!(path = %path.display(), kept = %kept.display(), %detail, "accepting the loss of a damaged write-ahead log");
    let store = open_with(config, schema, policy, Recovery::AcceptLoss)?;
    let recovered = store.db.latest_sequence_number();
    Ok((store, Some(WalLoss { detail, acknowledged, recovered, kept })))
}

/// Copies the files recovery reads (logs, MANIFEST, CURRENT, OPTIONS, the acknowledged record)
/// to a new sibling directory `<path>.damaged-<ms>`.
fn keep_aside(path: &Path) -> Result<PathBuf, OpenError> {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "db".into());
    let kept = path.with_file_name(format!("{name}.damaged-{ms}"));
    let io = |action: &'static str, p: &Path| {
        let p = p.to_owned();
        move |source| OpenError::Io { action, path: p, source }
    };
    std::fs::create_dir_all(&kept).map_err(io("creating", &kept))?;
    for entry in std::fs::read_dir(path).map_err(io("listing", path))? {
        let entry = entry.map_err(io("listing", path))?;
        let file = entry.file_name();
        let n = file.to_string_lossy();
        let wanted = n.ends_with(".log")
            || n.starts_with("MANIFEST-")
            || n.starts_with("OPTIONS-")
            || n == "CURRENT"
            || n == ACKNOWLEDGED_FILE;
        if wanted {
            std::fs::copy(entry.path(), kept.join(&file)).map_err(io("copying", &entry.path()))?;
        }
    }
    std::fs::File::open(&kept).and_then(|d| d.sync_all()).map_err(io("syncing", &kept))?;
    Ok(kept)
}

#[cfg(test)]
mod tests {
    /// The probe's log directory is new each time, private, and unguessable: a directory another
    /// user created under a predictable name is never used.
    #[test]
    fn probe_log_directories_are_new_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let (a, b) = (super::scratch_log_dir().unwrap(), super::scratch_log_dir().unwrap());
        assert_ne!(a, b);
        for dir in [&a, &b] {
            assert_eq!(std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, 0o700);
            std::fs::remove_dir(dir).unwrap();
        }
    }
}
