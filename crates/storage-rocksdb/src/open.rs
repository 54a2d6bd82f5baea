//! Opening: options from the config, the schema check on a read-only instance, then the
//! read-write open that creates missing column families and records the schema.

use rocksdb::{BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, Options};
use std::path::Path;
use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaAction, SchemaRecord, check_schema};
use storage_api::table::{Access, META_TABLE};

use storage_api::{BackendError, BackendErrorKind, OpenError, Schema, VersionPolicy};
use tracing::{debug, info};

use crate::RocksStore;
use crate::config::{Codec, CompactionStyle, RocksConfig, TableTuning};
use crate::error::map_err;

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

/// Reads the schema record through a read-only instance whose info log goes to a scratch
/// directory, so nothing in the database directory changes.
fn read_record(config: &RocksConfig, existing: &[String]) -> Result<Option<SchemaRecord>, OpenError> {
    if !existing.iter().any(|t| t == META_TABLE) {
        return Ok(None);
    }
    let scratch = scratch_log_dir()?;
    let mut opts = Options::default();
    opts.set_db_log_dir(&scratch);
    opts.set_max_open_files(64);
    opts.set_track_and_verify_wals_in_manifest(true);
    let db = DB::open_cf_for_read_only(&opts, &config.path, existing, false).map_err(map_err)?;
    let cf = db.cf_handle(META_TABLE).expect("listed column family is open");
    let record = db.get_pinned_cf(cf, SCHEMA_RECORD_KEY).map_err(map_err)?;
    let record = record.map(|bytes| SchemaRecord::decode(&bytes)).transpose();
    drop(db);
    let _ = std::fs::remove_dir_all(&scratch);
    record
}

fn scratch_log_dir() -> Result<std::path::PathBuf, OpenError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!(
        "storage-rocksdb-check-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).map_err(|source| OpenError::Io { action: "create", path: dir.clone(), source })?;
    Ok(dir)
}

/// Refuses directories that RocksDB would silently treat as a new, empty database although they
/// hold table files: a deleted `CURRENT` file, or a MANIFEST truncated so far that it no longer
/// leads to the schema record. Opening would delete those files. (A creation interrupted
/// before the record was written has no table files yet, and is resumed.)
fn refuse_lost_tables(path: &Path, current: bool, has_record: bool) -> Result<(), OpenError> {
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

pub(crate) fn open(config: &RocksConfig, schema: Schema, policy: VersionPolicy) -> Result<RocksStore, OpenError> {
    config.validate()?;
    let path = &config.path;
    let exists = path.join("CURRENT").exists();
    let existing: Vec<String> = if exists { DB::list_cf(&Options::default(), path).map_err(map_err)? } else { vec![] };
    let record = if exists { read_record(config, &existing)? } else { None };
    refuse_lost_tables(path, exists, record.is_some())?;
    let action = check_schema(&schema, record.as_ref(), &existing, policy)?;
    debug!(path = %path.display(), ?action, "schema check passed");

    let cache = Cache::new_lru_cache(config.block_cache_size as usize);
    let mut descriptors: Vec<ColumnFamilyDescriptor> = Vec::new();
    for name in schema.physical_tables() {
        let access = schema.table(name).map_or(Access::Point, |t| t.access);
        descriptors.push(ColumnFamilyDescriptor::new(name, table_options(config, &cache, name, access)));
    }
    if existing.iter().any(|t| t == "default") {
        descriptors.push(ColumnFamilyDescriptor::new("default", Options::default()));
    }
    let options = db_options(config);
    let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(map_err)?;

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
    Ok(RocksStore {
        db,
        schema,
        stored_version,
        path: path.clone(),
        wal: config.wal,
        cache,
        statistics: config.statistics.then_some(options),
        poison: Default::default(),
    })
}
