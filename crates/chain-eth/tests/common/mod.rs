//! The shared mainnet test data: blocks 15,040,708–15,040,710 (London) in the Portal network's
//! formats (`tests/data`, zstd), decoded as the tests use them.
#![allow(dead_code)] // each test binary uses a part

use std::io::Read;
use std::path::Path;

use chain_eth::senders::{Recovery, recover_all};
use chain_eth::{Eth, EthBody, portal};
use chain_store::{Block, NewBlock};

/// The three blocks' numbers.
pub(crate) const LONDON: [u64; 3] = [15_040_708, 15_040_709, 15_040_710];

/// The decompressed bytes of `tests/data/<name>.bin.zst`.
pub(crate) fn data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(format!("{name}.bin.zst"));
    let mut out = Vec::new();
    zstd::Decoder::new(std::fs::File::open(&path).unwrap()).unwrap().read_to_end(&mut out).unwrap();
    out
}

/// Block `n` as the chain store takes it (senders recovered; no total difficulty).
pub(crate) fn london_block(n: u64) -> NewBlock<Eth> {
    let header = portal::header_with_proof(&data(&format!("{n}-header_with_proof"))).unwrap();
    let (transactions, ommers) = portal::body_legacy(&data(&format!("{n}-body"))).unwrap();
    let receipts = portal::receipts(&data(&format!("{n}-receipts"))).unwrap();
    let senders = recover_all(&transactions, Recovery::default(), 0).unwrap();
    let extra = EthBody { ommers, withdrawals: None, total_difficulty: None };
    NewBlock { block: Block { header, transactions, extra }, receipts, senders, state: Vec::new() }
}

/// The three blocks.
pub(crate) fn london() -> Vec<NewBlock<Eth>> {
    LONDON.iter().map(|n| london_block(*n)).collect()
}
