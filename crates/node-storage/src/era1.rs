//! era1 import and export for a stopped node: the data directory's lock is taken, the chain
//! store opened, and the model's era1 format ([`NodeModel::Era1`]: Ethereum's) run over the
//! bulk path (engines with [`KvIngest`](storage_api::KvIngest): RocksDB and redb; sled has
//! none). An import ends with the chain store's integrity check.

use std::path::{Path, PathBuf};

use chain_eth::era1::Era1Summary;
use chain_eth::import::{Era1Checks, FileImport};
use chain_eth::senders::Recovery;
use chain_store::{BulkOptions, ChainStore, IntegrityReport};
use storage_api::KvIngest;

use crate::backend::Backend;
use crate::backend::caps::{IngestVisitor, Loading};
use crate::config::Config;
use crate::error::StorageError;
use crate::model::{Era1Format, NodeModel};
use crate::store_id::StoreId;
use crate::stores::Stores;

/// What an era1 import did.
#[derive(Debug, Clone)]
pub struct Era1Import {
    /// Each file, in the order imported.
    pub files: Vec<(PathBuf, FileImport)>,
    /// The integrity check run at the end.
    pub check: IntegrityReport,
    /// Sorted-run bytes held in memory at most, and runs spilled.
    pub peak_run_bytes: usize,
    /// Runs spilled to the scratch directory.
    pub spilled_runs: u64,
}

/// Progress of an import or export: (file index, blocks done in it).
pub type Era1Progress<'a> = &'a mut dyn FnMut(usize, u64);

const IMPORT: &str = "an era1 import";
const EXPORT: &str = "an era1 export";

/// The era1 files `paths` name: files as given, directories' `*.era1` files sorted by name.
pub fn era1_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, StorageError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let read = std::fs::read_dir(p).map_err(|source| StorageError::DataDir {
                action: "reading",
                path: p.clone(),
                source,
            })?;
            let mut files: Vec<PathBuf> = read
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "era1"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Imports era1 files into the node's chain store (which it initialises from the first
/// file's first block if empty), resuming after the committed head; each file is verified with
/// `checks` (mainnet's against the published accumulator) before it is committed; memory for
/// sorted runs is bounded by `memory_budget`, and runs spill into `<data_dir>/import-scratch`. Refused before
/// anything is created for a model without era1 files or an engine without ingestion.
pub fn import_era1<B: Backend, M: NodeModel>(
    config: &Config,
    files: &[PathBuf],
    checks: &Era1Checks,
    memory_budget: usize,
    progress: Era1Progress<'_>,
) -> Result<Era1Import, StorageError> {
    M::Era1::require(IMPORT)?;
    B::Loading::require_ingest(IMPORT)?;
    // Durably: a power cut after the import must not lose the directory that holds it.
    storage_api::durable::create_dir_all(&config.data_dir).map_err(|source| StorageError::DataDir {
        action: "creating",
        path: config.data_dir.clone(),
        source,
    })?;
    let _lock = crate::datadir::open_for_writing(&config.data_dir, B::KIND)?;
    // Every store opened (created if missing, so the directory opens as a node); only the
    // chain is written.
    let Stores { chain, .. } = Stores::<B, M>::open(|store, schema| {
        B::open_store(config, store, schema).map_err(|source| StorageError::Open { store, source })
    })?;
    let run = Import::<M> { config, files, checks, memory_budget, progress, model: std::marker::PhantomData };
    B::Loading::ingesting(chain.into_inner(), run, IMPORT)?
}

/// The import, on the chain store as a bulk-ingest target.
struct Import<'a, 'p, M> {
    config: &'a Config,
    files: &'a [PathBuf],
    checks: &'a Era1Checks,
    memory_budget: usize,
    progress: Era1Progress<'p>,
    model: std::marker::PhantomData<M>,
}

impl<M: NodeModel> IngestVisitor for Import<'_, '_, M> {
    type Output = Result<Era1Import, StorageError>;

    fn visit<I: KvIngest>(self, store: I) -> Self::Output {
        let Import { config, files, checks, memory_budget, progress, .. } = self;
        let chain = crate::stores::trie_as_configured(ChainStore::<I, M>::new(store)?, &config.state)?;
        let recovery = Recovery::default();
        if chain.head().is_none()
            && let Some(first) = files.first()
        {
            M::Era1::init_from(&chain, first, recovery, checks)?;
        }
        let scratch = config.data_dir.join("import-scratch");
        let options = BulkOptions { range_blocks: u64::MAX, memory_budget, ..BulkOptions::new(scratch.clone()) };
        let mut bulk = chain.bulk_import(options)?;
        let mut done = Vec::new();
        for (i, path) in files.iter().enumerate() {
            let report = M::Era1::import_file(&mut bulk, path, recovery, checks, &mut |n| progress(i, n))?;
            done.push((path.clone(), report));
        }
        let report = bulk.finish()?;
        let _ = std::fs::remove_dir(&scratch);
        let check = chain.check()?;
        Ok(Era1Import { files: done, check, peak_run_bytes: report.peak_run_bytes, spilled_runs: report.spilled_runs })
    }
}

/// A network name as it goes into era1 file names: letters, digits, `-` and `_` only (no
/// path separators, no dots), at most 64 characters.
fn check_network_name(network: &str) -> Result<(), StorageError> {
    let ok = !network.is_empty()
        && network.len() <= 64
        && network.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        return Err(StorageError::InvalidName {
            what: "network name",
            name: network.to_owned(),
            reason: "a network name is 1 to 64 letters, digits, `-` or `_` (it goes into file names)",
        });
    }
    Ok(())
}

/// Exports canonical blocks `from..=to` of the node's chain store as era1 files into `dir`.
pub fn export_era1<B: Backend, M: NodeModel>(
    config: &Config,
    from: u64,
    to: u64,
    dir: &Path,
    network: &str,
    progress: Era1Progress<'_>,
) -> Result<Vec<(PathBuf, Era1Summary)>, StorageError> {
    M::Era1::require(EXPORT)?;
    if from > to {
        return Err(StorageError::EmptyRange { what: "blocks", from, to });
    }
    check_network_name(network)?;
    crate::datadir::open_for_reading(&config.data_dir, B::KIND)?;
    let store = B::open_reader(config, StoreId::Chain, StoreId::Chain.schema::<M>())
        .map_err(|source| StorageError::Open { store: StoreId::Chain, source })?;
    let chain = ChainStore::<_, M>::new(store)?;
    let head = chain.head().map(|h| h.number);
    if head.is_none_or(|h| to > h) {
        return Err(StorageError::AboveHead { number: to, head });
    }
    std::fs::create_dir_all(dir).map_err(|source| StorageError::DataDir {
        action: "creating",
        path: dir.to_owned(),
        source,
    })?;
    M::Era1::export_range(&chain, from, to, dir, network, &mut |n| progress(0, n))
}

#[cfg(test)]
mod tests {
    /// A network name goes into file names: path separators, dots and anything but letters,
    /// digits, `-` and `_` are refused.
    #[test]
    fn network_names_cannot_leave_the_export_directory() {
        for ok in ["mainnet", "sepolia", "my-net_2"] {
            super::check_network_name(ok).unwrap();
        }
        for bad in ["../x", "a/b", ".hidden", "", "x y", &"n".repeat(65)] {
            assert!(super::check_network_name(bad).is_err(), "{bad:?}");
        }
    }
}
