//! era1 with real mainnet blocks (15,040,708–15,040,710): total difficulties taken from the
//! blocks' Portal accumulator proofs (checked: the three proofs lead to one epoch root), an
//! era1 file written from them, read back, imported through the bulk path on every backend
//! with the ingest capability, exported byte-identically; damaged files refused with nothing
//! stored.

use std::path::{Path, PathBuf};

mod common;

use alloy_primitives::{B256, U256};
use chain_eth::accumulator;
use chain_eth::era1::{self, Era1Block, Era1Error, Era1Reader, Era1Writer, MAX_BLOCKS};
use chain_eth::import::{Era1Checks, Era1ImportError, export_range, import_file, init_from};
use chain_eth::senders::Recovery;
use chain_eth::{Eth, EthBody, portal};
use chain_store::{BulkOptions, ChainStore, chain_schema};
use engine_test::{Redb, Rocks, TestEngine};
use storage_api::mem::MemStore;
use storage_api::{KvIngest, KvStore};

use common::data;

const NUMBERS: [u64; 3] = [15_040_708, 15_040_709, 15_040_710];

/// The blocks with their total difficulty (from the proofs) and each proof's epoch root.
fn blocks() -> Vec<(Era1Block, B256)> {
    NUMBERS
        .iter()
        .map(|n| {
            let (header, proof) = portal::header_and_proof(&data(&format!("{n}-header_with_proof"))).unwrap();
            let (transactions, ommers) = portal::body_legacy(&data(&format!("{n}-body"))).unwrap();
            let receipts = portal::receipts(&data(&format!("{n}-receipts"))).unwrap();
            let td = U256::from_le_bytes(proof[0].0);
            let root = accumulator::epoch_root_from_proof(header.hash, (n % MAX_BLOCKS as u64) as usize, &proof);
            let extra = EthBody { ommers, withdrawals: None, total_difficulty: Some(td) };
            (Era1Block { header, transactions, extra, receipts }, root)
        })
        .collect()
}

fn write_fixture(dir: &Path) -> PathBuf {
    let path = dir.join("fixture.era1");
    let mut w = Era1Writer::create(&path).unwrap();
    for (b, _) in blocks() {
        w.add(&b).unwrap();
    }
    let summary = w.finish().unwrap();
    assert_eq!((summary.start, summary.count), (NUMBERS[0], 3));
    path
}

#[test]
fn proofs_give_total_difficulties_and_one_epoch_root() {
    let blocks = blocks();
    let root = blocks[0].1;
    assert!(blocks.iter().all(|(_, r)| *r == root), "all three proofs lead to the same epoch accumulator root");
    for w in blocks.windows(2) {
        let (a, b) = (&w[0].0, &w[1].0);
        assert_eq!(b.total_difficulty(), a.total_difficulty() + b.header.header.difficulty, "TD grows by difficulty");
    }
    // A wrong total difficulty leads elsewhere.
    let (header, mut proof) = portal::header_and_proof(&data("15040708-header_with_proof")).unwrap();
    proof[0].0[0] ^= 1;
    assert_ne!(accumulator::epoch_root_from_proof(header.hash, 15_040_708 % 8192, &proof), root);
}

#[test]
fn written_file_reads_back_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_fixture(dir.path());
    let mut r = Era1Reader::open(&path).unwrap();
    let mut read = Vec::new();
    while let Some(b) = r.next_block().unwrap() {
        read.push(b);
    }
    let summary = r.finish().unwrap();
    let expected: Vec<Era1Block> = blocks().into_iter().map(|(b, _)| b).collect();
    assert_eq!(read, expected);
    let records: Vec<(B256, U256)> = expected.iter().map(|b| (b.header.hash, b.total_difficulty())).collect();
    assert_eq!(summary.accumulator, accumulator::accumulator_root(&records));
    assert_ne!(summary.accumulator, accumulator::accumulator_root(&records[..2]));
}

fn roundtrip<S: KvIngest>(chain: ChainStore<S, Eth>, dir: &Path) {
    let fixture = write_fixture(dir);
    assert_eq!(init_from(&chain, &fixture, Recovery::default(), &Era1Checks::default()).unwrap(), NUMBERS[0]);
    let mut bulk =
        chain.bulk_import(BulkOptions { range_blocks: u64::MAX, ..BulkOptions::new(dir.join("scratch")) }).unwrap();
    let mut seen = 0;
    let report =
        import_file(&mut bulk, &fixture, Recovery::default(), &Era1Checks::default(), &mut |n| seen = n).unwrap();
    assert_eq!((report.imported, report.skipped, seen), (2, 1, 3));
    // Importing again stores nothing new.
    let again = import_file(&mut bulk, &fixture, Recovery::default(), &Era1Checks::default(), &mut |_| {}).unwrap();
    assert_eq!((again.imported, again.skipped), (0, 3));
    bulk.finish().unwrap();
    assert_eq!(chain.head().unwrap().number, NUMBERS[2]);
    assert_eq!(chain.finalized().unwrap().number, NUMBERS[2]);
    assert!(chain.check().unwrap().is_ok());
    let out = dir.join("out");
    std::fs::create_dir(&out).unwrap();
    let files = export_range(&chain, NUMBERS[0], NUMBERS[2], &out, "mainnet", &mut |_| {}).unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(
        files[0].0.file_name().unwrap().to_string_lossy(),
        era1::file_name("mainnet", NUMBERS[0], files[0].1.accumulator)
    );
    assert!(std::fs::read(&files[0].0).unwrap() == std::fs::read(&fixture).unwrap(), "export is byte-identical");
    // A block the store lacks.
    let err = export_range(&chain, NUMBERS[2], NUMBERS[2] + 1, &out, "x", &mut |_| {}).unwrap_err();
    assert!(matches!(err, Era1ImportError::Missing(n) if n == NUMBERS[2] + 1), "{err}");
}

#[test]
fn roundtrip_memory() {
    let dir = tempfile::tempdir().unwrap();
    roundtrip(ChainStore::new(MemStore::new(chain_schema::<Eth>())).unwrap(), dir.path());
}

#[test]
fn roundtrip_rocksdb() {
    let dir = tempfile::tempdir().unwrap();
    let store = Rocks::open(&dir.path().join("db"), chain_schema::<Eth>()).unwrap();
    roundtrip(ChainStore::new(store).unwrap(), dir.path());
}

#[test]
fn roundtrip_redb() {
    let dir = tempfile::tempdir().unwrap();
    let store = Redb::open(&dir.path().join("db"), chain_schema::<Eth>()).unwrap();
    roundtrip(ChainStore::new(store).unwrap(), dir.path());
}

/// The byte offset of the first entry of type `typ` at or after `from`.
fn entry_at(bytes: &[u8], typ: [u8; 2], from: usize) -> usize {
    let mut at = 0;
    loop {
        let len = u32::from_le_bytes(bytes[at + 2..at + 6].try_into().unwrap()) as usize;
        if at >= from && bytes[at..at + 2] == typ {
            return at;
        }
        at += 8 + len;
    }
}

fn damaged<S: KvStore + KvIngest>(
    chain: &ChainStore<S, Eth>,
    dir: &Path,
    damage: impl Fn(&mut Vec<u8>),
) -> Era1ImportError {
    let fixture = write_fixture(dir);
    let mut bytes = std::fs::read(&fixture).unwrap();
    damage(&mut bytes);
    let bad = dir.join("bad.era1");
    std::fs::write(&bad, &bytes).unwrap();
    let mut bulk =
        chain.bulk_import(BulkOptions { range_blocks: u64::MAX, ..BulkOptions::new(dir.join("scratch")) }).unwrap();
    let err = import_file(&mut bulk, &bad, Recovery::default(), &Era1Checks::default(), &mut |_| {}).unwrap_err();
    bulk.finish().unwrap();
    assert_eq!(chain.head().unwrap().number, NUMBERS[0], "nothing of a bad file is stored ({err})");
    assert_eq!(chain.pending_import(), None);
    std::fs::remove_file(&fixture).unwrap();
    err
}

#[test]
fn damaged_files_are_refused_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let chain = ChainStore::<MemStore, Eth>::new(MemStore::new(chain_schema::<Eth>())).unwrap();
    init_from(&chain, &write_fixture(dir.path()), Recovery::default(), &Era1Checks::default()).unwrap();
    std::fs::remove_file(dir.path().join("fixture.era1")).unwrap();
    // The accumulator (checked after every block verified).
    let err = damaged(&chain, dir.path(), |b| {
        let at = entry_at(b, era1::types::ACCUMULATOR, 0);
        b[at + 8] ^= 0x40;
    });
    assert!(matches!(err, Era1ImportError::File(Era1Error::Accumulator { .. })), "{err}");
    // A total difficulty that does not add up.
    let err = damaged(&chain, dir.path(), |b| {
        let first = entry_at(b, era1::types::TOTAL_DIFFICULTY, 0);
        let second = entry_at(b, era1::types::TOTAL_DIFFICULTY, first + 1);
        b[second + 8] ^= 1;
    });
    assert!(matches!(err, Era1ImportError::File(Era1Error::TotalDifficulty { number: 15_040_709, .. })), "{err}");
    // A flipped byte inside the last block's compressed receipts (snappy's checksum).
    let err = damaged(&chain, dir.path(), |b| {
        let mut at = 0;
        for _ in 0..3 {
            at = entry_at(b, era1::types::RECEIPTS, at + 1);
        }
        b[at + 100] ^= 0x10;
    });
    assert!(
        matches!(err, Era1ImportError::File(Era1Error::Decode { number: 15_040_710, what: "receipts", .. })),
        "{err}"
    );
    // Cut short, and an entry length past the end.
    let err = damaged(&chain, dir.path(), |b| b.truncate(b.len() - 5));
    assert!(matches!(err, Era1ImportError::File(Era1Error::Framing { .. })), "{err}");
    let err = damaged(&chain, dir.path(), |b| {
        let at = entry_at(b, era1::types::BODY, 0);
        b[at + 5] = 0x7f;
    });
    assert!(matches!(err, Era1ImportError::File(Era1Error::Framing { .. })), "{err}");
    // A block index that points elsewhere.
    let err = damaged(&chain, dir.path(), |b| {
        let at = entry_at(b, era1::types::BLOCK_INDEX, 0);
        b[at + 16] ^= 8;
    });
    assert!(matches!(err, Era1ImportError::File(Era1Error::Index { .. })), "{err}");
    // The intact file still imports.
    let fixture = write_fixture(dir.path());
    let mut bulk = chain.bulk_import(BulkOptions::new(dir.path().join("scratch"))).unwrap();
    import_file(&mut bulk, &fixture, Recovery::default(), &Era1Checks::default(), &mut |_| {}).unwrap();
    bulk.finish().unwrap();
    assert_eq!(chain.head().unwrap().number, NUMBERS[2]);
}

/// Writes `blocks` as an era1 file at `path` (the writer checks nothing of their contents).
fn write_blocks(path: &Path, blocks: &[Era1Block]) -> PathBuf {
    let mut w = Era1Writer::create(path).unwrap();
    for b in blocks {
        w.add(b).unwrap();
    }
    w.finish().unwrap();
    path.to_owned()
}

/// Reads `path` to its end as an import would: every error is returned, nothing panics.
fn read_all(path: &Path) -> Result<(), Era1Error> {
    let mut r = Era1Reader::open(path)?;
    while r.next_block()?.is_some() {}
    r.finish().map(drop)
}

/// Values in a file that overflow arithmetic or ask for unbounded memory are refused with an
/// error naming the file, never a panic: index offsets at the ends of the signed range, a
/// block numbered 2^64 - 1 (also as the first block of a fresh store), an entry longer than
/// any block, and a body that decompresses past the per-block bound.
#[test]
fn hostile_numbers_and_sizes_are_refused_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = write_fixture(dir.path());
    let bytes = std::fs::read(&fixture).unwrap();
    let index = entry_at(&bytes, era1::types::BLOCK_INDEX, 0);
    for offset in [i64::MAX, i64::MIN, -1, 1] {
        let mut b = bytes.clone();
        // The first block's offset: after the entry head (8) and the starting number (8).
        b[index + 16..index + 24].copy_from_slice(&offset.to_le_bytes());
        let path = dir.path().join(format!("offset{offset}.era1"));
        std::fs::write(&path, &b).unwrap();
        let err = read_all(&path).unwrap_err();
        assert!(matches!(err, Era1Error::Index { .. }), "offset {offset}: {err}");
    }

    let mut last = blocks()[0].0.clone();
    let mut header = last.header.header.clone();
    header.number = u64::MAX;
    last.header = chain_eth::EthHeader::new(header);
    let path = write_blocks(&dir.path().join("max.era1"), &[last]);
    let err = read_all(&path).unwrap_err();
    assert!(matches!(err, Era1Error::Decode { what: "header", .. }), "{err}");
    let chain = ChainStore::<MemStore, Eth>::new(MemStore::new(chain_schema::<Eth>())).unwrap();
    let err = init_from(&chain, &path, Recovery::default(), &Era1Checks::default()).unwrap_err();
    assert!(matches!(err, Era1ImportError::File(Era1Error::Decode { .. })), "{err}");
    assert_eq!(chain.head(), None);

    // An entry longer than any block (the file really is that long).
    let huge = dir.path().join("huge.era1");
    let mut b = bytes[..8].to_vec();
    let len = era1::MAX_ENTRY_BYTES + 1;
    b.extend_from_slice(&era1::types::HEADER);
    b.extend_from_slice(&(len as u32).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.resize(b.len() + len as usize, 0);
    std::fs::write(&huge, &b).unwrap();
    let err = read_all(&huge).unwrap_err();
    assert!(matches!(&err, Era1Error::Framing { reason, .. } if reason.contains("larger than any block")), "{err}");

    // A body that decompresses to more than a block may hold (a small entry, a bomb inside).
    let body = entry_at(&bytes, era1::types::BODY, 0);
    let body_len = u32::from_le_bytes(bytes[body + 2..body + 6].try_into().unwrap()) as usize;
    let mut bomb = snap::write::FrameEncoder::new(Vec::new());
    std::io::Write::write_all(&mut bomb, &vec![0u8; era1::MAX_BLOCK_BYTES as usize + 1]).unwrap();
    let bomb = bomb.into_inner().unwrap();
    assert!((bomb.len() as u64) < era1::MAX_ENTRY_BYTES);
    let mut b = bytes[..body].to_vec();
    b.extend_from_slice(&era1::types::BODY);
    b.extend_from_slice(&(bomb.len() as u32).to_le_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&bomb);
    b.extend_from_slice(&bytes[body + 8 + body_len..]);
    let path = dir.path().join("bomb.era1");
    std::fs::write(&path, &b).unwrap();
    let err = read_all(&path).unwrap_err();
    assert!(matches!(err, Era1Error::Decode { what: "body", .. }), "{err}");
}

/// A fresh store initialised from a damaged file stays empty: the whole file is verified before
/// its first block is stored.
#[test]
fn a_refused_first_file_leaves_a_fresh_store_empty() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(write_fixture(dir.path())).unwrap();
    let at = entry_at(&bytes, era1::types::ACCUMULATOR, 0);
    bytes[at + 8] ^= 0x40;
    let bad = dir.path().join("bad.era1");
    std::fs::write(&bad, &bytes).unwrap();
    let chain = ChainStore::<MemStore, Eth>::new(MemStore::new(chain_schema::<Eth>())).unwrap();
    let err = init_from(&chain, &bad, Recovery::default(), &Era1Checks::default()).unwrap_err();
    assert!(matches!(err, Era1ImportError::File(Era1Error::Accumulator { .. })), "{err}");
    assert_eq!(chain.head(), None, "nothing of a refused file is stored");
}

/// The cheap checks come first: a block whose transactions do not match its header's root is
/// refused for that, before any signature is recovered (here its first signature could not
/// be recovered at all).
#[test]
fn roots_are_checked_before_signatures_are_recovered() {
    use alloy_consensus::TxEnvelope;
    let dir = tempfile::tempdir().unwrap();
    let mut all: Vec<Era1Block> = blocks().into_iter().map(|(b, _)| b).collect();
    let unrecoverable = alloy_primitives::Signature::new(U256::ZERO, U256::ZERO, false);
    let forged = match all[1].transactions[0].0.clone() {
        TxEnvelope::Legacy(s) => {
            TxEnvelope::Legacy(alloy_consensus::Signed::new_unchecked(s.tx().clone(), unrecoverable, *s.hash()))
        }
        TxEnvelope::Eip2930(s) => {
            TxEnvelope::Eip2930(alloy_consensus::Signed::new_unchecked(s.tx().clone(), unrecoverable, *s.hash()))
        }
        TxEnvelope::Eip1559(s) => {
            TxEnvelope::Eip1559(alloy_consensus::Signed::new_unchecked(s.tx().clone(), unrecoverable, *s.hash()))
        }
        other => panic!("a pre-Cancun block's transaction: {other:?}"),
    };
    all[1].transactions[0] = chain_eth::EthTx(forged);
    assert!(chain_eth::senders::recover_all(&all[1].transactions, Recovery::default(), 1).is_err());
    let path = write_blocks(&dir.path().join("forged.era1"), &all);
    let chain = ChainStore::<MemStore, Eth>::new(MemStore::new(chain_schema::<Eth>())).unwrap();
    let mut first = all[..1].to_vec();
    first[0].extra.total_difficulty = all[0].extra.total_difficulty;
    init_from(
        &chain,
        &write_blocks(&dir.path().join("first.era1"), &first),
        Recovery::default(),
        &Era1Checks::default(),
    )
    .unwrap();
    let mut bulk = chain.bulk_import(BulkOptions::new(dir.path().join("scratch"))).unwrap();
    let err = import_file(&mut bulk, &path, Recovery::default(), &Era1Checks::default(), &mut |_| {}).unwrap_err();
    assert!(
        matches!(&err, Era1ImportError::Chain { source: chain_store::ChainError::BodyMismatch { .. }, .. }),
        "{err}"
    );
}
