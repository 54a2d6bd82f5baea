//! Header proofs from the store, on every engine: the three real London blocks' Portal proofs
//! stored and produced again byte for byte (and a tampered one refused with nothing stored);
//! a whole epoch imported from an era1 file proves each of its blocks against the file's
//! accumulator root (a synthetic chain: not mainnet's); a part of an epoch proves nothing.

use std::path::Path;

mod common;

use chain_eth::accumulator::{Accumulator, AccumulatorError};
use chain_eth::era1::{Era1Reader, Era1Writer, MAX_BLOCKS};
use chain_eth::generator::{EthShape, MAINNET_LONDON};
use chain_eth::header_proof::{EpochNodes, HeaderProofError, header_proof, store_portal_proof};
use chain_eth::import::{Era1Checks, import_file, init_from, write_generated};
use chain_eth::senders::Recovery;
use chain_eth::{Eth, portal};
use chain_store::{BulkOptions, ChainStore, NewBlock, chain_schema};
use engine_test::{Redb, Rocks, TestEngine};
use storage_api::mem::MemStore;
use storage_api::{Durability, KvIngest, KvStore, ReadExt};

use common::{LONDON, data, london_block};

fn nodes<S: KvStore>(chain: &ChainStore<S, Eth>) -> usize {
    chain.store().iter::<EpochNodes>(.., storage_api::Direction::Forward).unwrap().count()
}

fn london_on<S: KvStore>(open: impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let chain =
        ChainStore::<S, Eth>::new(open(&dir.path().join("db"))).unwrap().with_insert_durability(Durability::Buffered);
    let mut portal_files = Vec::new();
    let blocks: Vec<NewBlock<Eth>> = LONDON
        .iter()
        .map(|n| {
            let file = data(&format!("{n}-header_with_proof"));
            let (_, proof) = portal::header_and_proof(&file).unwrap();
            portal_files.push((file, proof));
            london_block(*n)
        })
        .collect();
    chain.init(&blocks[0]).unwrap();
    chain.insert_blocks(&blocks[1..]).unwrap();
    let mainnet = Accumulator::mainnet();
    // Not known yet.
    assert_eq!(header_proof(&chain, LONDON[0]).unwrap(), None);
    // A tampered proof is refused; nothing stored.
    let mut bad = portal_files[0].1;
    bad[5].0[9] ^= 4;
    let err = store_portal_proof(&chain, LONDON[0], &bad, mainnet).unwrap_err();
    assert!(
        matches!(err, HeaderProofError::Accumulator { source: AccumulatorError::Mismatch { epoch: 1836, .. }, .. }),
        "{err}"
    );
    assert_eq!(nodes(&chain), 0);
    // The real proofs, stored, come back byte for byte.
    for (n, (file, proof)) in LONDON.iter().zip(&portal_files) {
        store_portal_proof(&chain, *n, proof, mainnet).unwrap();
        let got = header_proof(&chain, *n).unwrap().expect("stored");
        assert_eq!(got.verify(mainnet), Ok(1836));
        assert!(got.portal_bytes() == *file, "block {n}: the Portal file's bytes");
    }
    // A transaction proof chained to mainnet's history through its header's proof.
    let tx = &blocks[1].block.transactions[5];
    let proof = chain_eth::inclusion::prove_in(
        &chain,
        &chain_store::Transaction::hash(tx),
        chain_eth::inclusion::Item::Transaction,
    )
    .unwrap()
    .unwrap();
    let header = header_proof(&chain, LONDON[1]).unwrap().unwrap();
    assert_eq!(proof.verify_with_header(&header, mainnet), Ok(1836));
    let other = header_proof(&chain, LONDON[2]).unwrap().unwrap();
    assert!(proof.verify_with_header(&other, mainnet).is_err(), "another block's header proof");
    // A block the store does not hold.
    assert!(matches!(
        store_portal_proof(&chain, LONDON[2] + 1, &portal_files[2].1, mainnet),
        Err(HeaderProofError::NoBlock(_))
    ));
    assert_eq!(header_proof(&chain, LONDON[2] + 1).unwrap(), None);
}

#[test]
fn london_proofs_come_back_byte_for_byte_memory() {
    london_on(|_| MemStore::new(chain_schema::<Eth>()));
}

#[test]
fn london_proofs_come_back_byte_for_byte_rocksdb() {
    london_on(|p| Rocks::open(p, chain_schema::<Eth>()).unwrap());
}

#[test]
fn london_proofs_come_back_byte_for_byte_redb() {
    london_on(|p| Redb::open(p, chain_schema::<Eth>()).unwrap());
}

fn epoch_on<S: KvStore + KvIngest>(open: impl Fn(&Path) -> S) {
    let dir = tempfile::tempdir().unwrap();
    let shape = EthShape { txs_per_block: 0, ..MAINNET_LONDON };
    // Epochs 0 and 1, whole.
    let files = write_generated(dir.path(), shape, 5, 2, MAX_BLOCKS).unwrap();
    let mut reader = Era1Reader::open(&files[0]).unwrap();
    while reader.next_block().unwrap().is_some() {}
    let records = reader.records().to_vec();
    let summary = reader.finish().unwrap();
    let chain = ChainStore::<S, Eth>::new(open(&dir.path().join("db"))).unwrap();
    init_from(&chain, &files[0], Recovery::default(), &Era1Checks::default()).unwrap();
    let mut bulk =
        chain.bulk_import(BulkOptions { range_blocks: u64::MAX, ..BulkOptions::new(dir.path().join("s")) }).unwrap();
    import_file(&mut bulk, &files[0], Recovery::default(), &Era1Checks::default(), &mut |_| {}).unwrap();
    bulk.finish().unwrap();
    for n in [0u64, 1, 2, 4095, 4096, 8190, 8191] {
        let proof = header_proof(&chain, n).unwrap().expect("a whole epoch proves every block");
        assert_eq!(proof.header.hash, records[n as usize].0);
        assert_eq!(proof.total_difficulty(), records[n as usize].1);
        assert_eq!(proof.epoch_root(), summary.accumulator, "block {n} leads to the file's root");
        // A synthetic chain: not mainnet's.
        assert!(matches!(proof.verify(Accumulator::mainnet()), Err(AccumulatorError::Mismatch { epoch: 0, .. })));
        // Any other hash leads elsewhere.
        let mut other = proof.clone();
        other.proof[(n % 15) as usize].0[0] ^= 1;
        assert_ne!(other.epoch_root(), summary.accumulator);
    }
    // Epoch 1 in part only (its first 100 blocks): those blocks have no proof.
    let part = dir.path().join("part.era1");
    let mut reader = Era1Reader::open(&files[1]).unwrap();
    let mut writer = Era1Writer::create(&part).unwrap();
    for _ in 0..100 {
        writer.add(&reader.next_block().unwrap().unwrap()).unwrap();
    }
    writer.finish().unwrap();
    let mut bulk =
        chain.bulk_import(BulkOptions { range_blocks: u64::MAX, ..BulkOptions::new(dir.path().join("s")) }).unwrap();
    let report = import_file(&mut bulk, &part, Recovery::default(), &Era1Checks::default(), &mut |_| {}).unwrap();
    bulk.finish().unwrap();
    assert_eq!((report.imported, chain.head().unwrap().number), (100, 8291));
    assert_eq!(header_proof(&chain, 8200).unwrap(), None, "part of an epoch proves nothing");
    assert_eq!(chain.store().get::<EpochNodes>(&(1, 3)).unwrap(), None, "nothing of epoch 1 is stored");
    assert_eq!(header_proof(&chain, 9000).unwrap(), None, "no such block");
}

#[test]
fn a_whole_epoch_proves_every_block_memory() {
    epoch_on(|_| MemStore::new(chain_schema::<Eth>()));
}

#[test]
fn a_whole_epoch_proves_every_block_rocksdb() {
    epoch_on(|p| Rocks::open(p, chain_schema::<Eth>()).unwrap());
}

#[test]
fn a_whole_epoch_proves_every_block_redb() {
    epoch_on(|p| Redb::open(p, chain_schema::<Eth>()).unwrap());
}

/// A store written before Ethereum's epoch table existed (the chain store's own tables only),
/// opened read-only by this build: the table is not there, and a header proof is "none", not an
/// error; opened for writing, the table is created and an epoch's nodes can be stored.
#[test]
fn a_store_older_than_the_epoch_table_reads_as_having_no_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let mut g = chain_eth::generator::EthGenerator::new(EthShape { txs_per_block: 1, ..MAINNET_LONDON }, 3);
    let genesis = g.next_block();
    {
        let old = ChainStore::<_, Eth>::new(Rocks::open(&path, chain_store::chain_tables::<Eth>()).unwrap()).unwrap();
        old.init(&genesis).unwrap();
    }
    let reader = Rocks::open_reader(&path, chain_schema::<Eth>()).unwrap();
    let chain = ChainStore::<_, Eth>::new(reader).unwrap();
    assert!(chain.head().is_some());
    assert_eq!(header_proof(&chain, 0).unwrap(), None);
    drop(chain);
    let chain = ChainStore::<_, Eth>::new(Rocks::open(&path, chain_schema::<Eth>()).unwrap()).unwrap();
    let td = genesis.block.header.header.difficulty;
    chain_eth::header_proof::store_epoch(&chain, 0, &[(genesis.block.header.hash, td)]).unwrap();
    assert_eq!(header_proof(&chain, 0).unwrap().unwrap().total_difficulty(), td);
}
