//! Header proofs of pre-merge blocks, as the Portal network carries them
//! (`BlockHeaderWithProof`): the header's RLP and the 15 hashes that lead from the block's
//! hash to its epoch's accumulator root, which [`Accumulator::check_header_proof`] compares
//! with the published root.
//!
//! The store keeps the nodes of each epoch's tree that it learned ([`EpochNodes`], a table of
//! the model's own beside the chain store's): every node of a whole epoch imported from an era1
//! file ([`store_epoch`], called by the era1 import once the file verified), or the path of one
//! block whose Portal proof was given ([`store_portal_proof`], checked against the published
//! accumulator first). A proof is then 15 point reads ([`header_proof`]); a block whose epoch
//! the store never saw whole, and whose proof it was not given, has none (`Ok(None)`).
//!
//! The nodes are written after the blocks they describe commit, in their own batch: an
//! interrupted import leaves at worst an epoch without nodes, which importing the file again
//! writes (a resumed import re-reads the whole file).

use alloy_primitives::{B256, U256};
use chain_store::{ChainError, ChainStore};
use storage_api::codec::CodecError;
use storage_api::{Durability, KvReader, KvStore, ReadExt, ValueCodec};

use crate::accumulator::{Accumulator, AccumulatorError, EPOCH_BLOCKS, header_record_root, length_chunk, sha_pair};
use crate::{Eth, EthHeader};

/// A node of an epoch's accumulator tree (32 bytes, behind a format-version byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochNode(pub B256);

impl EpochNode {
    /// The value format written by this build.
    pub const FORMAT_VERSION: u8 = 1;
}

impl ValueCodec for EpochNode {
    fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
        out.push(Self::FORMAT_VERSION);
        out.extend_from_slice(self.0.as_slice());
        Ok(())
    }

    fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
        match bytes.split_first() {
            None => Err(CodecError::Empty),
            Some((&Self::FORMAT_VERSION, node)) if node.len() == 32 => Ok(EpochNode(B256::from_slice(node))),
            Some((&Self::FORMAT_VERSION, node)) => Err(CodecError::Length { expected: 32, found: node.len() }),
            Some((&found, _)) => Err(CodecError::UnknownVersion { found, supported: Self::FORMAT_VERSION }),
        }
    }
}

storage_api::table! {
    /// The nodes of pre-merge epoch accumulator trees the store knows: (epoch, generalized
    /// index in the SSZ tree of the epoch's `List[HeaderRecord, 8192]`) → the node. Index 3 is
    /// the list's length, `16384 + i` block `i`'s record root, `2 · (16384 + i) + 1` its total
    /// difficulty.
    pub struct EpochNodes("eth_epoch_nodes"): (u64, u32) => EpochNode;
}

/// The generalized index of the record root of the block at `index` in its epoch.
fn leaf(index: usize) -> u32 {
    (2 * EPOCH_BLOCKS + index) as u32
}

/// The generalized indexes of a block's 15 proof hashes, in the proof's order: its total
/// difficulty, the 13 siblings up the epoch's tree, the list's length.
fn proof_indexes(index: usize) -> [u32; 15] {
    let mut out = [0u32; 15];
    let mut g = leaf(index);
    out[0] = 2 * g + 1;
    for slot in out.iter_mut().skip(1) {
        *slot = g ^ 1;
        g /= 2;
    }
    out
}

/// A header and its accumulator proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderProof {
    /// The header.
    pub header: EthHeader,
    /// The block's total difficulty, the 13 siblings up its epoch's tree and the epoch's
    /// length (the Portal network's `BlockProofHistoricalHashesAccumulator`).
    pub proof: [B256; 15],
}

impl HeaderProof {
    /// The epoch root the proof leads to.
    pub fn epoch_root(&self) -> B256 {
        let index = (self.header.header.number % EPOCH_BLOCKS as u64) as usize;
        crate::accumulator::epoch_root_from_proof(self.header.hash, index, &self.proof)
    }

    /// Checks the proof against `accumulator` (the header's hash is its RLP's); returns the
    /// epoch.
    pub fn verify(&self, accumulator: &Accumulator) -> Result<u64, AccumulatorError> {
        let hash = alloy_primitives::keccak256(self.header.rlp());
        accumulator.check_header_proof(hash, self.header.header.number, &self.proof)
    }

    /// The block's total difficulty (the proof's first hash).
    pub fn total_difficulty(&self) -> U256 {
        U256::from_le_bytes(self.proof[0].0)
    }

    /// The Portal network's SSZ `BlockHeaderWithProof`: two offsets, the header's RLP, then
    /// the proof (union selector 1, the 15 hashes).
    pub fn portal_bytes(&self) -> Vec<u8> {
        let rlp = self.header.rlp();
        let mut out = Vec::with_capacity(8 + rlp.len() + 1 + 15 * 32);
        out.extend_from_slice(&8u32.to_le_bytes());
        out.extend_from_slice(&((8 + rlp.len()) as u32).to_le_bytes());
        out.extend_from_slice(&rlp);
        out.push(1);
        for h in &self.proof {
            out.extend_from_slice(h.as_slice());
        }
        out
    }
}

/// A header proof that cannot be stored or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HeaderProofError {
    /// The store failed or holds a damaged node.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The proof given does not lead to the published root.
    #[error("header proof of block {number}: {source}")]
    Accumulator {
        /// The block.
        number: u64,
        /// Why.
        source: AccumulatorError,
    },
    /// The chain holds no canonical block at this height (a proof of it cannot be stored).
    #[error("no canonical block {0} in the store")]
    NoBlock(u64),
}

fn read_err(e: storage_api::ReadError) -> ChainError {
    ChainError::Read(e)
}

fn write_err(e: storage_api::WriteError) -> ChainError {
    ChainError::Write(e)
}

/// The proof of the canonical block `number`, from the nodes the store holds; `Ok(None)` if
/// there is no such block, or the store does not know its epoch's tree.
pub fn header_proof<S: KvReader>(chain: &ChainStore<S, Eth>, number: u64) -> Result<Option<HeaderProof>, ChainError> {
    let Some(header) = chain.header_by_number(number)? else { return Ok(None) };
    let epoch = number / EPOCH_BLOCKS as u64;
    let index = (number % EPOCH_BLOCKS as u64) as usize;
    let store = chain.store();
    // A store written before the table existed, opened read-only, lacks it: no nodes.
    let node = |g: u32| match store.get::<EpochNodes>(&(epoch, g)) {
        Err(storage_api::ReadError::UnknownTable(_)) => Ok(None),
        other => other.map_err(read_err),
    };
    let mut proof = [B256::ZERO; 15];
    for (slot, g) in proof.iter_mut().zip(proof_indexes(index)) {
        match node(g)? {
            Some(node) => *slot = node.0,
            None => return Ok(None),
        }
    }
    // The stored record must be this header's (a canonical block replaced since would not be).
    let stored = node(leaf(index))?;
    let record = header_record_root(header.hash, U256::from_le_bytes(proof[0].0));
    if stored.map(|n| n.0) != Some(record) {
        return Err(ChainError::BadRecord {
            number,
            reason: "the stored accumulator record is not this block's (hash or total difficulty differ)".into(),
        });
    }
    Ok(Some(HeaderProof { header, proof }))
}

/// The nodes of a whole epoch's tree: each record's total difficulty, every node of the tree
/// (record roots, zero padding past the last record, inner nodes) and the length.
fn epoch_nodes(records: &[(B256, U256)]) -> Vec<(u32, B256)> {
    let mut out = Vec::with_capacity(3 * EPOCH_BLOCKS);
    for (i, (_, td)) in records.iter().enumerate() {
        out.push((2 * leaf(i) + 1, B256::from(td.to_le_bytes::<32>())));
    }
    let mut layer: Vec<B256> = records.iter().map(|(hash, td)| header_record_root(*hash, *td)).collect();
    layer.resize(EPOCH_BLOCKS, B256::ZERO);
    let mut first = leaf(0);
    loop {
        out.extend(layer.iter().enumerate().map(|(i, node)| (first + i as u32, *node)));
        if first == 2 {
            break;
        }
        layer = layer.chunks_exact(2).map(|p| sha_pair(&p[0], &p[1])).collect();
        first /= 2;
    }
    out.push((3, length_chunk(records.len())));
    out
}

/// Stores every node of epoch `epoch`'s tree, given all its records (block hash, total
/// difficulty) in order — a whole epoch, as a verified era1 file holds it. Returns the epoch
/// root the nodes lead to.
pub fn store_epoch<S: KvStore>(
    chain: &ChainStore<S, Eth>,
    epoch: u64,
    records: &[(B256, U256)],
) -> Result<B256, ChainError> {
    assert!(!records.is_empty() && records.len() <= EPOCH_BLOCKS, "an epoch holds 1 to 8,192 blocks");
    let store = chain.store();
    let mut batch = store.batch();
    for (g, node) in epoch_nodes(records) {
        batch.put::<EpochNodes>(&(epoch, g), &EpochNode(node)).map_err(write_err)?;
    }
    store.write(batch, Durability::Synced).map_err(write_err)?;
    Ok(crate::accumulator::accumulator_root(records))
}

/// Stores the path of the canonical block `number` given by its Portal proof, after checking
/// the proof against `accumulator`; the store can then prove that block (and, where the
/// paths cover them, its neighbours).
pub fn store_portal_proof<S: KvStore>(
    chain: &ChainStore<S, Eth>,
    number: u64,
    proof: &[B256; 15],
    accumulator: &Accumulator,
) -> Result<(), HeaderProofError> {
    let header = chain.header_by_number(number)?.ok_or(HeaderProofError::NoBlock(number))?;
    let epoch = accumulator
        .check_header_proof(header.hash, number, proof)
        .map_err(|source| HeaderProofError::Accumulator { number, source })?;
    let index = (number % EPOCH_BLOCKS as u64) as usize;
    let at = proof_indexes(index);
    let store = chain.store();
    let mut batch = store.batch();
    let mut put = |g: u32, node: B256| batch.put::<EpochNodes>(&(epoch, g), &EpochNode(node)).map(drop);
    put(at[0], proof[0]).map_err(write_err)?;
    // Up the path from the record to the list's root, each sibling beside its node.
    let mut g = leaf(index);
    let mut node = header_record_root(header.hash, U256::from_le_bytes(proof[0].0));
    put(g, node).map_err(write_err)?;
    for (sibling, at) in proof.iter().zip(at).skip(1) {
        put(at, *sibling).map_err(write_err)?;
        node = if g.is_multiple_of(2) { sha_pair(&node, sibling) } else { sha_pair(sibling, &node) };
        g /= 2;
        if g >= 2 {
            put(g, node).map_err(write_err)?;
        }
    }
    store.write(batch, Durability::Synced).map_err(|e| HeaderProofError::Chain(write_err(e)))?;
    Ok(())
}
