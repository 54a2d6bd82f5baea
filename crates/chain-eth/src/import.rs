//! era1 files into a chain store through its bulk path, one file at a time: every block is
//! checked as it is pushed (hashes, roots, bloom, parent), senders are recovered on every
//! core, and the file's range is committed only after the file's accumulator and block index
//! verified — a bad file leaves nothing of itself behind. Blocks at or below the committed
//! head are skipped (but still count towards the accumulator), so an interrupted import
//! resumes by running it again. A file of mainnet (by its conventional name, or every file
//! when the import says so) must also be a whole epoch whose root is mainnet's published one
//! ([`Era1Checks`], [`crate::accumulator`]): a self-consistent file of another history is
//! refused. Export reads blocks back and writes era1 files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use chain_store::{Block, BulkImport, ChainError, ChainStore, CheckedBlock, NewBlock};
use storage_api::{KvIngest, KvReader};

use crate::Eth;
use crate::accumulator::Accumulator;
use crate::era1::{Era1Block, Era1Error, Era1Reader, Era1Summary, Era1Writer, FileName, MAX_BLOCKS, file_name};
use crate::senders::{Recovery, RecoveryError, recover_all};

/// An era1 import or export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Era1ImportError {
    /// The file does not read or verify.
    #[error(transparent)]
    File(#[from] Era1Error),
    /// The store refused a block or failed.
    #[error("{path}: {source}")]
    Chain {
        /// The file.
        path: PathBuf,
        /// Why.
        source: ChainError,
    },
    /// A signature does not recover.
    #[error("{path}: block {number}: {source}")]
    Senders {
        /// The file.
        path: PathBuf,
        /// The block.
        number: u64,
        /// Why.
        source: RecoveryError,
    },
    /// An export asked for blocks the store does not have.
    #[error("no canonical block {0} in the store")]
    Missing(u64),
    /// A chain-store read failed during an export.
    #[error(transparent)]
    Read(ChainError),
}

/// What an import checks each file against, beyond its own blocks (always checked).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Era1Checks {
    /// The network every file is of; `None`: each file's conventional name says it
    /// (`mainnet-00000-5ec1ffb8.era1`), and a file without one belongs to no known network. A
    /// file named for another network than this one is refused.
    pub network: Option<String>,
    /// Do not check mainnet's files against the published accumulator (for part of an epoch,
    /// such as an export of a range): each is then checked against its own blocks only.
    pub skip_published: bool,
}

/// The network whose published accumulator this crate holds.
pub const MAINNET: &str = "mainnet";

/// What a file's accumulator was verified against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    /// Mainnet's published pre-merge accumulator: the file is this epoch of mainnet's history.
    Published {
        /// The epoch.
        epoch: u64,
    },
    /// The file's own blocks only (a self-consistent file of some history).
    OwnBlocks,
}

impl std::fmt::Display for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verified::Published { epoch } => {
                write!(f, "verified against mainnet's published accumulator (epoch {epoch})")
            }
            Verified::OwnBlocks => f.write_str("verified against its own blocks only"),
        }
    }
}

impl Era1Checks {
    /// Checks the verified file at `path` (its `summary`) against its name and, for mainnet,
    /// the published accumulator.
    pub fn check(&self, path: &Path, summary: &Era1Summary) -> Result<Verified, Era1Error> {
        let name = FileName::parse(path);
        if let Some(name) = &name {
            name.check(path, summary)?;
        }
        let network = match (&self.network, &name) {
            (Some(ours), Some(name)) if *ours != name.network => {
                return Err(Era1Error::Name {
                    path: path.to_owned(),
                    reason: format!("the file is named for network {}, the import is of {ours}", name.network),
                });
            }
            (Some(ours), _) => Some(ours.as_str()),
            (None, name) => name.as_ref().map(|n| n.network.as_str()),
        };
        if network != Some(MAINNET) || self.skip_published {
            return Ok(Verified::OwnBlocks);
        }
        let epoch = Accumulator::mainnet()
            .check_epoch(summary.start, summary.count, summary.accumulator)
            .map_err(|source| Era1Error::Published { path: path.to_owned(), source })?;
        Ok(Verified::Published { epoch })
    }
}

/// What one file's import did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileImport {
    /// The verified file.
    pub summary: Era1Summary,
    /// What its accumulator was verified against.
    pub verified: Verified,
    /// Blocks stored.
    pub imported: u64,
    /// Blocks skipped (already at or below the head).
    pub skipped: u64,
}

/// A block of a file as the chain store takes it (senders recovered on every core).
pub fn new_block(block: Era1Block, path: &Path, recovery: Recovery) -> Result<NewBlock<Eth>, Era1ImportError> {
    let number = block.number();
    let mut new = unrecovered(block);
    new.senders = recover_all(&new.block.transactions, recovery, 0).map_err(|source| Era1ImportError::Senders {
        path: path.to_owned(),
        number,
        source,
    })?;
    Ok(new)
}

/// A block of a file checked for the bulk path: its hashes and roots first, then — only if
/// they hold — its senders recovered on up to `threads` threads (a crafted body whose roots
/// do not match its header costs no recovery).
fn checked_block(block: Era1Block, path: &Path, recovery: Recovery, threads: usize) -> Result<CheckedBlock<Eth>, Step> {
    let number = block.number();
    CheckedBlock::check_recovering(unrecovered(block), |b| {
        recover_all(&b.transactions, recovery, threads)
            .map_err(|source| Step::File(Era1ImportError::Senders { path: path.to_owned(), number, source }))
    })
}

/// `block` as the chain store takes it, senders not yet recovered.
fn unrecovered(block: Era1Block) -> NewBlock<Eth> {
    NewBlock {
        block: Block { header: block.header, transactions: block.transactions, extra: block.extra },
        receipts: block.receipts,
        senders: Vec::new(),
        state: Vec::new(),
    }
}

/// Initialises an empty chain store with the first block of `path` (genesis or a trusted
/// starting point), so an import can start there. Returns that block's number. The whole file
/// is read and verified first (its blocks' hashes and roots, total difficulties, index and
/// accumulator, and `checks`): a damaged or forged file leaves the store as empty as it was.
pub fn init_from<S: storage_api::KvStore>(
    chain: &ChainStore<S, Eth>,
    path: &Path,
    recovery: Recovery,
    checks: &Era1Checks,
) -> Result<u64, Era1ImportError> {
    let mut reader = Era1Reader::open(path)?;
    let first = reader
        .next_block()?
        .ok_or_else(|| Era1Error::Index { path: path.to_owned(), reason: "the file holds no blocks".into() })?;
    let chain_err = |source| Era1ImportError::Chain { path: path.to_owned(), source };
    let first = checked_block(first, path, recovery, 0).map_err(|e| match e {
        Step::Chain(source) => chain_err(source),
        Step::File(e) => e,
    })?;
    // The rest of the file's contents (signatures are recovered when the import stores them).
    while let Some(block) = reader.next_block()? {
        CheckedBlock::check_contents(&unrecovered(block)).map_err(chain_err)?;
    }
    let summary = reader.finish()?;
    checks.check(path, &summary)?;
    let number = first.block().block.number();
    chain.init(first.block()).map_err(chain_err)?;
    Ok(number)
}

/// A failure inside the import pipeline: the store's own, or the file's.
enum Step {
    Chain(ChainError),
    File(Era1ImportError),
}

impl From<ChainError> for Step {
    fn from(e: ChainError) -> Self {
        Step::Chain(e)
    }
}

/// Imports one era1 file (see the module docs); `progress` gets the blocks read so far.
/// Blocks are read in order; their senders are recovered and their hashes and roots checked
/// on the import's worker threads while the blocks before them are stored. The file is
/// committed only once it verified, `checks` included.
pub fn import_file<S: KvIngest>(
    bulk: &mut BulkImport<'_, S, Eth>,
    path: &Path,
    recovery: Recovery,
    checks: &Era1Checks,
    progress: &mut dyn FnMut(u64),
) -> Result<FileImport, Era1ImportError> {
    let chain_err = |source| Era1ImportError::Chain { path: path.to_owned(), source };
    let mut reader = Era1Reader::open(path)?;
    let head = bulk.head().number;
    let skipped = AtomicU64::new(0);
    let blocks = std::iter::from_fn(|| reader.next_block().transpose()).filter(|b| match b {
        Ok(b) if b.number() <= head => {
            skipped.fetch_add(1, Ordering::Relaxed);
            false
        }
        _ => true,
    });
    let mut imported = 0;
    let pushed = bulk.push_all_checked(
        blocks,
        |block| checked_block(block.map_err(Era1ImportError::from).map_err(Step::File)?, path, recovery, 1),
        &mut |_| {
            imported += 1;
            progress(imported + skipped.load(Ordering::Relaxed));
        },
    );
    let records = reader.records().to_vec();
    let result = match pushed {
        Ok(_) => reader
            .finish()
            .and_then(|summary| Ok((summary, checks.check(path, &summary)?)))
            .map_err(Era1ImportError::from),
        Err(Step::Chain(e)) => Err(chain_err(e)),
        Err(Step::File(e)) => Err(e),
    };
    let skipped = skipped.into_inner();
    match result {
        Ok((summary, verified)) => {
            progress(imported + skipped);
            bulk.commit().map_err(chain_err)?;
            // A whole epoch: its accumulator tree's nodes, for header proofs (after the
            // blocks committed; a resumed import writes them again).
            let whole = matches!(verified, Verified::Published { .. })
                || (summary.start.is_multiple_of(MAX_BLOCKS as u64) && summary.count == MAX_BLOCKS as u64);
            if whole {
                crate::header_proof::store_epoch(bulk.chain(), summary.start / MAX_BLOCKS as u64, &records)
                    .map_err(chain_err)?;
            }
            Ok(FileImport { summary, verified, imported, skipped })
        }
        Err(e) => {
            bulk.discard().map_err(chain_err)?;
            Err(e)
        }
    }
}

/// The canonical block `number` as an era1 block.
fn era1_block<S: KvReader>(chain: &ChainStore<S, Eth>, number: u64) -> Result<Era1Block, Era1ImportError> {
    let block =
        chain.block_by_number(number).map_err(Era1ImportError::Read)?.ok_or(Era1ImportError::Missing(number))?;
    let receipts =
        chain.receipts_by_number(number).map_err(Era1ImportError::Read)?.ok_or(Era1ImportError::Missing(number))?;
    Ok(Era1Block { header: block.header, transactions: block.transactions, extra: block.extra, receipts })
}

/// Writes canonical blocks `from..=to` into era1 files in `dir`, one per 8,192-block epoch
/// (the first and last may be partial), named by [`file_name`]. Returns the files written.
pub fn export_range<S: KvReader>(
    chain: &ChainStore<S, Eth>,
    from: u64,
    to: u64,
    dir: &Path,
    network: &str,
    progress: &mut dyn FnMut(u64),
) -> Result<Vec<(PathBuf, Era1Summary)>, Era1ImportError> {
    let mut files = Vec::new();
    let epoch = MAX_BLOCKS as u64;
    let mut start = from;
    let mut done = 0;
    while start <= to {
        // The epoch's last block, without overflowing near 2^64.
        let end = to.min((start / epoch).saturating_add(1).saturating_mul(epoch).saturating_sub(1));
        let partial = dir.join(format!(".{network}-{start}.era1.partial"));
        let _ = std::fs::remove_file(&partial);
        let mut w = Era1Writer::create(&partial)?;
        for n in start..=end {
            w.add(&era1_block(chain, n)?)?;
            done += 1;
            progress(done);
        }
        let summary = w.finish()?;
        let path = dir.join(file_name(network, start, summary.accumulator));
        std::fs::rename(&partial, &path).map_err(|source| Era1Error::Io { path: path.clone(), source })?;
        files.push((path, summary));
        match end.checked_add(1) {
            Some(next) => start = next,
            None => break,
        }
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(files)
}

/// Writes `files` era1 files of `per_file` consecutive generated blocks each (from genesis,
/// [`crate::generator::EthGenerator`] with `shape`), named `generated-<first block>.era1` so
/// they sort in block order; total difficulty is the sum of difficulties plus one. For tests,
/// benchmarks and rehearsals. Returns the files in order.
pub fn write_generated(
    dir: &Path,
    shape: crate::generator::EthShape,
    seed: u64,
    files: usize,
    per_file: usize,
) -> Result<Vec<PathBuf>, Era1Error> {
    let mut g = crate::generator::EthGenerator::new(shape, seed);
    let mut td = alloy_primitives::U256::from(1u64);
    let mut out = Vec::new();
    let mut next = 0u64;
    for _ in 0..files {
        let path = dir.join(format!("generated-{next:010}.era1"));
        let mut w = Era1Writer::create(&path)?;
        for _ in 0..per_file.min(MAX_BLOCKS) {
            let b = g.next_block();
            td += b.block.header.header.difficulty;
            let mut extra = b.block.extra;
            extra.total_difficulty = Some(td);
            w.add(&Era1Block {
                header: b.block.header,
                transactions: b.block.transactions,
                extra,
                receipts: b.receipts,
            })?;
            next += 1;
        }
        w.finish()?;
        out.push(path);
    }
    Ok(out)
}
