//! Benchmark workloads for node-storage, defined once and run against any backend through
//! storage-api (and, for the overhead benchmark, against raw RocksDB).
//!
//! The block shape: a 2 KiB header, 100 transactions of 200 bytes and a height-index entry,
//! written as one atomic batch. All bytes come from a seeded generator, so every run and every
//! backend sees the same data, and the data does not compress away.

pub mod backends;
pub mod chain;
pub mod dag;
pub mod measure;
pub mod report;
pub mod stats;
pub mod workloads;

use storage_api::{Blob, Schema, table};

table! {
    /// Block headers by block hash.
    pub struct Headers("headers", Point): [u8; 32] => Blob;
    /// Transactions by transaction hash.
    pub struct Txs("txs", Point): [u8; 32] => Blob;
    /// Block hash by height.
    pub struct Canonical("canonical", Range): u64 => [u8; 32];
    /// Small values (300 bytes) by random key.
    pub struct Values("values", Point): u64 => Blob;
}

/// The benchmark schema.
pub fn schema() -> Schema {
    Schema::new("bench", 1).with::<Headers>().with::<Txs>().with::<Canonical>().with::<Values>()
}

/// Transactions per block.
pub const TXS_PER_BLOCK: u32 = 100;
/// Bytes per transaction.
pub const TX_BYTES: usize = 200;
/// Bytes per header.
pub const HEADER_BYTES: usize = 2048;

/// SplitMix64: a small, fast, seeded generator.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Fills `out` with random bytes.
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// A 32-byte hash derived from `seed` (not cryptographic; unique per seed).
pub fn hash_of(seed: u64) -> [u8; 32] {
    let mut h = [0u8; 32];
    Rng::new(seed).fill(&mut h);
    h
}

/// The hash of transaction `index` of block `height`.
pub fn tx_hash(height: u64, index: u32) -> [u8; 32] {
    hash_of((height << 20) | u64::from(index) | (1 << 63))
}

/// One block of the workload.
#[derive(Debug, Clone)]
pub struct Block {
    /// Height.
    pub height: u64,
    /// Block hash.
    pub hash: [u8; 32],
    /// Encoded header.
    pub header: Blob,
    /// (hash, encoded transaction) pairs.
    pub txs: Vec<([u8; 32], Blob)>,
}

impl Block {
    /// Block `height`, generated deterministically.
    pub fn generate(height: u64) -> Self {
        let mut rng = Rng::new(height.wrapping_mul(0x2545_f491_4f6c_dd1d));
        let mut header = vec![0u8; HEADER_BYTES];
        rng.fill(&mut header);
        let txs = (0..TXS_PER_BLOCK)
            .map(|i| {
                let mut tx = vec![0u8; TX_BYTES];
                rng.fill(&mut tx);
                (tx_hash(height, i), Blob(tx))
            })
            .collect();
        Block { height, hash: hash_of(height), header: Blob(header), txs }
    }
}
