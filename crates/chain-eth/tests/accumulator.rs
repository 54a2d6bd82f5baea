//! Mainnet's published pre-merge accumulator at import: the real London blocks' Portal proofs
//! lead to the published root of their epoch; a self-consistent file of another history
//! (a synthetic chain's whole epoch 0 named as mainnet's) and a part of an epoch named as
//! mainnet's are refused with nothing stored, on every engine with the ingest path; a file
//! whose name contradicts its contents or the import's network is refused.

use std::path::{Path, PathBuf};

mod common;

use chain_eth::accumulator::{Accumulator, AccumulatorError};
use chain_eth::era1::{self, Era1Error, Era1Reader, Era1Summary, Era1Writer, MAX_BLOCKS};
use chain_eth::generator::{EthShape, MAINNET_LONDON};
use chain_eth::import::{Era1Checks, Era1ImportError, Verified, import_file, init_from, write_generated};
use chain_eth::senders::Recovery;
use chain_eth::{Eth, EthBody, portal};
use chain_store::{BulkOptions, ChainStore, chain_schema};
use engine_test::{Redb, Rocks, TestEngine};
use storage_api::mem::MemStore;
use storage_api::{KvIngest, KvStore};

use common::{LONDON, data};

#[test]
fn the_london_proofs_lead_to_the_published_root_of_their_epoch() {
    let acc = Accumulator::mainnet();
    for n in LONDON {
        let (header, proof) = portal::header_and_proof(&data(&format!("{n}-header_with_proof"))).unwrap();
        assert_eq!(acc.check_header_proof(header.hash, n, &proof), Ok(1836), "block {n}");
        // Any flipped byte of the proof, or another hash or height, leads elsewhere.
        for i in 0..15 {
            let mut bad = proof;
            bad[i].0[i] ^= 0x20;
            assert!(matches!(acc.check_header_proof(header.hash, n, &bad), Err(AccumulatorError::Mismatch { .. })));
        }
        let mut hash = header.hash;
        hash.0[0] ^= 1;
        assert!(acc.check_header_proof(hash, n, &proof).is_err());
        assert!(acc.check_header_proof(header.hash, n + 1, &proof).is_err());
        assert!(matches!(
            acc.check_header_proof(header.hash, 20_000_000, &proof),
            Err(AccumulatorError::PastHistory { .. })
        ));
    }
}

/// The London blocks as one era1 file (part of epoch 1,836) at `path`.
fn london_file(path: &Path) -> Era1Summary {
    let mut w = Era1Writer::create(path).unwrap();
    for n in LONDON {
        let (header, proof) = portal::header_and_proof(&data(&format!("{n}-header_with_proof"))).unwrap();
        let (transactions, ommers) = portal::body_legacy(&data(&format!("{n}-body"))).unwrap();
        let receipts = portal::receipts(&data(&format!("{n}-receipts"))).unwrap();
        let td = alloy_primitives::U256::from_le_bytes(proof[0].0);
        let extra = EthBody { ommers, withdrawals: None, total_difficulty: Some(td) };
        w.add(&era1::Era1Block { header, transactions, extra, receipts }).unwrap();
    }
    w.finish().unwrap()
}

fn summary(path: &Path) -> Era1Summary {
    let mut r = Era1Reader::open(path).unwrap();
    while r.next_block().unwrap().is_some() {}
    r.finish().unwrap()
}

/// `from` copied as `dir/name`.
fn named(dir: &Path, from: &Path, name: &str) -> PathBuf {
    let to = dir.join(name);
    std::fs::copy(from, &to).unwrap();
    to
}

fn checks(network: Option<&str>, skip_published: bool) -> Era1Checks {
    Era1Checks { network: network.map(str::to_owned), skip_published }
}

fn bulk_import<S: KvIngest>(
    chain: &ChainStore<S, Eth>,
    dir: &Path,
    path: &Path,
    checks: &Era1Checks,
) -> Result<chain_eth::import::FileImport, Era1ImportError> {
    let mut bulk =
        chain.bulk_import(BulkOptions { range_blocks: u64::MAX, ..BulkOptions::new(dir.join("scratch")) }).unwrap();
    let result = import_file(&mut bulk, path, Recovery::default(), checks, &mut |_| {});
    bulk.finish().unwrap();
    result
}

fn published_error(err: &Era1ImportError) -> &AccumulatorError {
    match err {
        Era1ImportError::File(Era1Error::Published { source, .. }) => source,
        other => panic!("expected a refusal by the published accumulator, got: {other}"),
    }
}

fn checked_on<S: KvStore + KvIngest>(open: impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let published = Accumulator::mainnet().roots()[0];

    // A synthetic chain's whole epoch 0: self-consistent, not mainnet's.
    let shape = EthShape { txs_per_block: 0, ..MAINNET_LONDON };
    let generated = write_generated(dir, shape, 3, 1, MAX_BLOCKS).unwrap().remove(0);
    let own = summary(&generated);
    assert_eq!((own.start, own.count), (0, MAX_BLOCKS as u64));
    let as_mainnet = named(dir, &generated, &era1::file_name("mainnet", 0, own.accumulator));

    // As the first file of a fresh store, and through the bulk path: refused, nothing stored.
    let chain = ChainStore::<S, Eth>::new(open(&dir.join("a"))).unwrap();
    let err = init_from(&chain, &as_mainnet, Recovery::default(), &Era1Checks::default()).unwrap_err();
    assert_eq!(
        published_error(&err),
        &AccumulatorError::Mismatch { epoch: 0, found: own.accumulator, published },
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("epoch 0") && text.contains(&published.to_string()), "{text}");
    assert_eq!(chain.head(), None, "a refused first file stores nothing");
    init_from(&chain, &generated, Recovery::default(), &Era1Checks::default()).unwrap();
    let err = bulk_import(&chain, dir, &as_mainnet, &Era1Checks::default()).unwrap_err();
    assert!(matches!(published_error(&err), AccumulatorError::Mismatch { epoch: 0, .. }), "{err}");
    assert_eq!(chain.head().unwrap().number, 0, "a refused file stores nothing");
    assert_eq!(chain.pending_import(), None);
    // Any name, when the import says the files are mainnet's.
    let err = bulk_import(&chain, dir, &generated, &checks(Some("mainnet"), false)).unwrap_err();
    assert!(matches!(published_error(&err), AccumulatorError::Mismatch { epoch: 0, .. }), "{err}");
    // A name that claims the published root's prefix, or another network than the import's.
    let lying = named(dir, &generated, "mainnet-00000-5ec1ffb8.era1");
    let err = bulk_import(&chain, dir, &lying, &Era1Checks::default()).unwrap_err();
    assert!(matches!(&err, Era1ImportError::File(Era1Error::Name { .. })), "{err}");
    let err = bulk_import(&chain, dir, &as_mainnet, &checks(Some("testnet"), false)).unwrap_err();
    assert!(matches!(&err, Era1ImportError::File(Era1Error::Name { .. })), "{err}");
    assert_eq!(chain.head().unwrap().number, 0);
    // The same file as what it is: checked against its own blocks, imported.
    let as_testnet = named(dir, &generated, &era1::file_name("testnet", 0, own.accumulator));
    let report = bulk_import(&chain, dir, &as_testnet, &Era1Checks::default()).unwrap();
    assert_eq!((report.imported, report.verified), (MAX_BLOCKS as u64 - 1, Verified::OwnBlocks));
    assert_eq!(chain.head().unwrap().number, MAX_BLOCKS as u64 - 1);

    // Real mainnet blocks, but part of an epoch only: their root cannot be checked.
    let london = dir.join("london.era1");
    let london_summary = london_file(&london);
    let chain = ChainStore::<S, Eth>::new(open(&dir.join("b"))).unwrap();
    let err = init_from(&chain, &london, Recovery::default(), &checks(Some("mainnet"), false)).unwrap_err();
    assert!(
        matches!(
            published_error(&err),
            AccumulatorError::PartialEpoch { epoch: 1836, start: 15_040_708, end: 15_040_710, .. }
        ),
        "{err}"
    );
    assert_eq!(chain.head(), None);
    init_from(&chain, &london, Recovery::default(), &Era1Checks::default()).unwrap();
    let as_mainnet = named(dir, &london, &era1::file_name("mainnet", LONDON[0], london_summary.accumulator));
    let err = bulk_import(&chain, dir, &as_mainnet, &Era1Checks::default()).unwrap_err();
    assert!(matches!(published_error(&err), AccumulatorError::PartialEpoch { epoch: 1836, .. }), "{err}");
    assert_eq!(chain.head().unwrap().number, LONDON[0]);
    // Imported when the operator skips the published check.
    let report = bulk_import(&chain, dir, &as_mainnet, &checks(None, true)).unwrap();
    assert_eq!((report.imported, report.verified), (2, Verified::OwnBlocks));
    assert_eq!(chain.head().unwrap().number, LONDON[2]);
    assert!(chain.check().unwrap().is_ok());
}

#[test]
fn mainnet_files_are_checked_against_the_published_accumulator_memory() {
    checked_on(|_| MemStore::new(chain_schema::<Eth>()));
}

#[test]
fn mainnet_files_are_checked_against_the_published_accumulator_rocksdb() {
    checked_on(|p| Rocks::open(p, chain_schema::<Eth>()).unwrap());
}

#[test]
fn mainnet_files_are_checked_against_the_published_accumulator_redb() {
    checked_on(|p| Redb::open(p, chain_schema::<Eth>()).unwrap());
}

#[test]
fn conventional_names_parse() {
    let parse = |s: &str| era1::FileName::parse(Path::new(s));
    let name = parse("/x/mainnet-01896-e6ebe562.era1").unwrap();
    assert_eq!((name.network.as_str(), name.epoch, name.root_prefix), ("mainnet", 1896, [0xe6, 0xeb, 0xe5, 0x62]));
    assert_eq!(parse("my-net-00001-00ff00ff.era1").unwrap().network, "my-net");
    for bad in ["generated-0000000000.era1", "mainnet-1-e6ebe562.era1", "mainnet-00001-e6ebe56.era1", "x.era1"] {
        assert_eq!(parse(bad), None, "{bad}");
    }
    assert_eq!(parse("mainnet-00001-zzzzzzzz.era1"), None);
    assert_eq!(parse("-00001-e6ebe562.era1"), None);
}
