//! The legacy flat layout imported into the DAG store (`nodestore migrate import-legacy`), and a
//! synthetic legacy database for tests and rehearsals. RocksDB builds only: the legacy database
//! is a RocksDB one.

use std::path::{Path, PathBuf};

use chain_store::ChainModel;
use dag_store::DagStore;
use dag_store::dag_schema;
use dag_store::legacy::LegacyCounts;
use storage_api::Durability;
use storage_migrate::MigrateError;
use storage_rocksdb::{FLAT_TABLE, RocksFlat};

use crate::backend::Backend;
use crate::config::Config;
use crate::error::StorageError;
use crate::store_id::StoreId;

/// What [`import_legacy`] did.
#[derive(Debug, Clone)]
pub struct LegacyImportReport {
    /// Records of each type in the legacy database (all imported and verified).
    pub counts: LegacyCounts,
    /// The DAG store written (dry run: the one that would be).
    pub target: PathBuf,
    /// Whether the import went into a scratch store that was then removed.
    pub dry_run: bool,
}

/// Imports the legacy flat RocksDB database at `from` (see `docs/LEGACY_FORMAT.md`) as the DAG
/// store of the node at `config`, which must not have one yet. The import is built and
/// verified in a staging store next to it and moved into place only when verification
/// passes; on any error, or with `dry_run`, the staging store is removed and nothing changes.
/// `progress` receives the phase (`validate`, `import`, `verify`) and the records done.
pub fn import_legacy<B: Backend, M: ChainModel>(
    config: &Config,
    from: &Path,
    dry_run: bool,
    progress: &mut dyn FnMut(&'static str, u64),
) -> Result<LegacyImportReport, StorageError> {
    let _lock = crate::datadir::open_for_writing(&config.data_dir, B::KIND)?;
    let target = B::store_path(&config.data_dir, StoreId::Dag);
    if target.exists() {
        return Err(MigrateError::TargetExists(target).into());
    }
    let source =
        RocksFlat::open_read_only(from).map_err(|source| StorageError::OpenLegacy { path: from.to_owned(), source })?;
    let staging_dir = config.data_dir.join(format!(".import-legacy-{}", storage_backup::now_ms()));
    let mut staged = config.clone();
    staged.data_dir = staging_dir.clone();
    let result = (|| -> Result<LegacyCounts, StorageError> {
        std::fs::create_dir_all(&staging_dir)
            .map_err(|e| storage_backup::BackupError::io_error("creating", &staging_dir, e))?;
        let store = B::open_store(&staged, StoreId::Dag, dag_schema())
            .map_err(|source| StorageError::Open { store: StoreId::Dag, source })?;
        let dag = DagStore::new(store)?.with_insert_durability(Durability::Buffered);
        let counts = dag.import_legacy(&source, FLAT_TABLE, progress)?;
        dag.store().flush()?;
        drop(dag);
        if !dry_run {
            std::fs::rename(B::store_path(&staging_dir, StoreId::Dag), &target)
                .map_err(|e| storage_backup::BackupError::io_error("moving the imported store to", &target, e))?;
            if let Ok(dir) = std::fs::File::open(&config.data_dir) {
                let _ = dir.sync_all();
            }
            // The rest of the node: its other stores, created empty.
            for store in StoreId::ALL.into_iter().filter(|s| *s != StoreId::Dag) {
                B::open_store(config, store, store.schema::<M>())
                    .map_err(|source| StorageError::Open { store, source })?;
            }
        }
        Ok(counts)
    })();
    let _ = std::fs::remove_dir_all(&staging_dir);
    let counts = result?;
    tracing::info!(from = %from.display(), target = %target.display(), dry_run, records = counts.total(), "legacy import verified");
    Ok(LegacyImportReport { counts, target, dry_run })
}

/// Writes a synthetic legacy flat database at `path` (which must not exist): `vertices`
/// vertices, the first `finalized` finalized, and `corrupt` vertex records damaged (one byte of
/// the timestamp flipped, so their content no longer hashes to their key). For tests and import
/// rehearsals. Returns the keys of the damaged records, hex.
pub fn write_legacy_fixture(
    path: &Path,
    vertices: usize,
    finalized: usize,
    corrupt: usize,
    seed: u64,
) -> Result<Vec<String>, StorageError> {
    let db = RocksFlat::create(path).map_err(|source| StorageError::OpenLegacy { path: path.to_owned(), source })?;
    let mut damaged = Vec::new();
    let mut chunk = Vec::with_capacity(10_000);
    for record in dag_store::legacy::fixture(vertices, finalized.min(vertices), seed) {
        let (key, mut value) = dag_store::legacy::encode(&record);
        if let dag_store::legacy::LegacyRecord::Vertex(_, signature) = &record
            && damaged.len() < corrupt
        {
            // The value ends with the timestamp (8 bytes), the signature length (2) and the
            // signature: flip the timestamp's last byte.
            let at = value.len() - 2 - signature.len() - 1;
            value[at] ^= 0x55;
            damaged.push(key.iter().map(|b| format!("{b:02x}")).collect());
        }
        chunk.push((key, value));
        if chunk.len() == 10_000 {
            db.write(&std::mem::take(&mut chunk))?;
        }
    }
    db.write(&chunk)?;
    Ok(damaged)
}
