//! Mainnet's published pre-merge accumulator: the SSZ hash tree roots of the 1,897 epochs of
//! 8,192 blocks (the last one partial) that hold blocks 0 to 15,537,393, as the Portal network
//! and era1 files use them (`data/merge_macc.bin`, vendored with its source in
//! `data/README.md`; its own hash tree root is [`PUBLISHED_ROOT`], checked by this module's
//! tests).
//!
//! An epoch root is what a whole era1 file of that epoch carries as its accumulator, and what a
//! Portal header proof ([`epoch_root_from_proof`]) leads to: checked against this
//! list, a file or a header is known to be mainnet's, not merely self-consistent. Post-merge
//! headers are not covered (they are proven through the beacon chain's historical summaries).

use std::sync::LazyLock;

use alloy_primitives::{B256, U256, b256};
use sha2::{Digest, Sha256};

/// The published hash tree root of the epoch roots, as an SSZ `List[Bytes32, 2**17]`.
pub const PUBLISHED_ROOT: B256 = b256!("8eac399e24480dce3cfe06f4bdecba51c6e5d0c46200e3e8611a0b44a3a69ff9");

/// The last pre-merge block of mainnet (the terminal proof-of-work block).
pub const LAST_PRE_MERGE_BLOCK: u64 = 15_537_393;

/// The SSZ list limit of the epoch roots (`2**17`).
const EPOCHS_LIMIT_DEPTH: u32 = 17;

/// Blocks in an epoch, and at most in an era1 file (the epoch accumulator's list limit).
pub const EPOCH_BLOCKS: usize = 8192;

/// The depth of an epoch's tree of header records (`log2(EPOCH_BLOCKS)`).
const EPOCH_DEPTH: u32 = EPOCH_BLOCKS.trailing_zeros();

static MAINNET: LazyLock<Accumulator> = LazyLock::new(|| {
    Accumulator::from_ssz(include_bytes!("../data/merge_macc.bin"), LAST_PRE_MERGE_BLOCK)
        .expect("the vendored accumulator decodes (tested)")
});

/// The epoch roots of a history (today: mainnet's, [`Accumulator::mainnet`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accumulator {
    roots: Vec<B256>,
    last_block: u64,
}

/// A history's file or header that does not match the published accumulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccumulatorError {
    /// The epoch's root differs from the published one.
    #[error("epoch {epoch}: accumulator root {found}, but mainnet's published root of this epoch is {published}")]
    Mismatch {
        /// The epoch.
        epoch: u64,
        /// What the file or proof gives.
        found: B256,
        /// The published root.
        published: B256,
    },
    /// The blocks are past the accumulator's history (after the merge on mainnet).
    #[error("block {number} is past the published accumulator's history, which ends at block {last}")]
    PastHistory {
        /// The block.
        number: u64,
        /// The accumulator's last block.
        last: u64,
    },
    /// A file holds part of an epoch only: its root cannot be compared with the epoch's.
    #[error(
        "blocks {start}..={end} are part of epoch {epoch} (blocks {epoch_start}..={epoch_end}); only a whole epoch's root can be checked against the published accumulator"
    )]
    PartialEpoch {
        /// The epoch.
        epoch: u64,
        /// The file's first block.
        start: u64,
        /// The file's last block.
        end: u64,
        /// The epoch's first block.
        epoch_start: u64,
        /// The epoch's last block.
        epoch_end: u64,
    },
}

/// SSZ serialised accumulator that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("accumulator: {0}")]
pub struct AccumulatorDecodeError(String);

/// SHA-256 of two 32-byte nodes: an SSZ tree's inner node.
pub(crate) fn sha_pair(a: &B256, b: &B256) -> B256 {
    let mut h = Sha256::new();
    h.update(a);
    h.update(b);
    B256::from_slice(&h.finalize())
}

/// The SSZ merkle root of `leaves` padded with zero chunks to `2**depth` leaves.
fn merkleize(leaves: &[B256], depth: u32) -> B256 {
    let mut layer = leaves.to_vec();
    let mut zero = B256::ZERO;
    for _ in 0..depth {
        if layer.len() % 2 == 1 {
            layer.push(zero);
        }
        layer = layer.chunks_exact(2).map(|p| sha_pair(&p[0], &p[1])).collect();
        zero = sha_pair(&zero, &zero);
    }
    layer.first().copied().unwrap_or(zero)
}

/// The chunk of an SSZ list's length (mixed into its root).
pub(crate) fn length_chunk(len: usize) -> B256 {
    let mut length = B256::ZERO;
    length[..8].copy_from_slice(&(len as u64).to_le_bytes());
    length
}

fn mix_in_length(root: B256, len: usize) -> B256 {
    sha_pair(&root, &length_chunk(len))
}

/// SSZ `hash_tree_root` of a header record: `sha256(block_hash ‖ le256(total_difficulty))`.
pub fn header_record_root(hash: B256, total_difficulty: U256) -> B256 {
    sha_pair(&hash, &B256::from(total_difficulty.to_le_bytes::<32>()))
}

/// The epoch accumulator root of `records` (block hash, total difficulty): the SSZ
/// `hash_tree_root` of a `List[HeaderRecord, 8192]` (an era1 file's accumulator).
pub fn accumulator_root(records: &[(B256, U256)]) -> B256 {
    let leaves: Vec<B256> = records.iter().map(|(h, td)| header_record_root(*h, *td)).collect();
    mix_in_length(merkleize(&leaves, EPOCH_DEPTH), records.len())
}

/// The epoch accumulator root a Portal-network header proof leads to: `proof` is the
/// block's total difficulty, the 13 siblings up the epoch's tree and the list's length, for
/// the block at `index` (its number modulo 8,192). The total difficulty is `proof[0]`.
pub fn epoch_root_from_proof(hash: B256, index: usize, proof: &[B256; 15]) -> B256 {
    let mut gindex = (2 * EPOCH_BLOCKS + index) * 2;
    let mut node = hash;
    for sibling in proof {
        node = if gindex.is_multiple_of(2) { sha_pair(&node, sibling) } else { sha_pair(sibling, &node) };
        gindex /= 2;
    }
    node
}

impl Accumulator {
    /// Mainnet's published pre-merge accumulator (vendored in the binary).
    pub fn mainnet() -> &'static Accumulator {
        &MAINNET
    }

    /// Decodes the SSZ form (a container with one variable field: a 4-byte offset, then the
    /// roots) of a history whose last block is `last_block`.
    pub fn from_ssz(bytes: &[u8], last_block: u64) -> Result<Self, AccumulatorDecodeError> {
        let offset = bytes.get(..4).ok_or_else(|| AccumulatorDecodeError("shorter than its offset".into()))?;
        if u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]) != 4 {
            return Err(AccumulatorDecodeError("the roots' offset is not 4".into()));
        }
        let roots = &bytes[4..];
        if !roots.len().is_multiple_of(32) {
            return Err(AccumulatorDecodeError(format!(
                "{} bytes of roots is not a whole number of roots",
                roots.len()
            )));
        }
        let roots: Vec<B256> = roots.chunks_exact(32).map(B256::from_slice).collect();
        if roots.len() as u64 != last_block / EPOCH_BLOCKS as u64 + 1 {
            return Err(AccumulatorDecodeError(format!(
                "{} roots for a history of blocks 0..={last_block}",
                roots.len()
            )));
        }
        Ok(Accumulator { roots, last_block })
    }

    /// The epoch roots, epoch 0 first.
    pub fn roots(&self) -> &[B256] {
        &self.roots
    }

    /// The history's last block.
    pub fn last_block(&self) -> u64 {
        self.last_block
    }

    /// The hash tree root of the epoch roots as an SSZ `List[Bytes32, 2**17]` (for mainnet,
    /// [`PUBLISHED_ROOT`]).
    pub fn hash_tree_root(&self) -> B256 {
        mix_in_length(merkleize(&self.roots, EPOCHS_LIMIT_DEPTH), self.roots.len())
    }

    /// The published root of the epoch holding block `number`, and the epoch.
    pub fn root_of_block(&self, number: u64) -> Result<(u64, B256), AccumulatorError> {
        if number > self.last_block {
            return Err(AccumulatorError::PastHistory { number, last: self.last_block });
        }
        let epoch = number / EPOCH_BLOCKS as u64;
        Ok((epoch, self.roots[epoch as usize]))
    }

    /// The blocks of `epoch` (the last epoch ends at the history's last block).
    pub fn epoch_blocks(&self, epoch: u64) -> std::ops::RangeInclusive<u64> {
        let start = epoch * EPOCH_BLOCKS as u64;
        start..=(start + (EPOCH_BLOCKS as u64 - 1)).min(self.last_block)
    }

    /// Checks a whole epoch's blocks `start..start + count` whose accumulator root is `root`
    /// (an era1 file's) against the published root of the epoch; returns the epoch.
    pub fn check_epoch(&self, start: u64, count: u64, root: B256) -> Result<u64, AccumulatorError> {
        let end = start.saturating_add(count.saturating_sub(1));
        let (epoch, published) = self.root_of_block(start)?;
        if end > self.last_block {
            return Err(AccumulatorError::PastHistory { number: end, last: self.last_block });
        }
        let blocks = self.epoch_blocks(epoch);
        if start != *blocks.start() || end != *blocks.end() {
            return Err(AccumulatorError::PartialEpoch {
                epoch,
                start,
                end,
                epoch_start: *blocks.start(),
                epoch_end: *blocks.end(),
            });
        }
        if root != published {
            return Err(AccumulatorError::Mismatch { epoch, found: root, published });
        }
        Ok(epoch)
    }

    /// Checks a Portal header proof (see [`epoch_root_from_proof`]) of the block
    /// `number` whose hash is `hash`: the epoch root it leads to must be the published one.
    /// Returns the epoch.
    pub fn check_header_proof(&self, hash: B256, number: u64, proof: &[B256; 15]) -> Result<u64, AccumulatorError> {
        let (epoch, published) = self.root_of_block(number)?;
        let index = (number % EPOCH_BLOCKS as u64) as usize;
        let found = epoch_root_from_proof(hash, index, proof);
        if found != published {
            return Err(AccumulatorError::Mismatch { epoch, found, published });
        }
        Ok(epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vendored_accumulator_is_the_published_one() {
        let acc = Accumulator::mainnet();
        assert_eq!(acc.roots().len(), 1897);
        assert_eq!(acc.hash_tree_root(), PUBLISHED_ROOT);
        assert!(acc.roots()[0].to_string().starts_with("0x5ec1ffb8"));
        assert!(acc.roots()[1].to_string().starts_with("0xa5364e9a"));
        assert!(acc.roots()[1896].to_string().starts_with("0xe6ebe562"));
        // EIP-7639's container form: (historical_epochs: List[Bytes32, 2048], current_epoch:
        // List[HeaderRecord, 8192], empty).
        let historical = mix_in_length(merkleize(acc.roots(), 11), acc.roots().len());
        let current = mix_in_length(merkleize(&[], 13), 0);
        assert_eq!(
            sha_pair(&historical, &current),
            b256!("ec8e040fd6c557b41ca8ddd38f7e9d58a9281918dc92bdb72342a38fb085e701")
        );
        // One changed root changes the list's root.
        let mut other = acc.clone();
        other.roots[1000].0[31] ^= 1;
        assert_ne!(other.hash_tree_root(), PUBLISHED_ROOT);
    }

    #[test]
    fn epochs_and_their_bounds() {
        let acc = Accumulator::mainnet();
        assert_eq!(acc.epoch_blocks(0), 0..=8191);
        assert_eq!(acc.epoch_blocks(1896), 15_532_032..=LAST_PRE_MERGE_BLOCK);
        let root = acc.roots()[3];
        assert_eq!(acc.check_epoch(3 * 8192, 8192, root), Ok(3));
        assert!(matches!(
            acc.check_epoch(3 * 8192, 8192, acc.roots()[4]),
            Err(AccumulatorError::Mismatch { epoch: 3, .. })
        ));
        assert!(matches!(acc.check_epoch(3 * 8192 + 1, 8191, root), Err(AccumulatorError::PartialEpoch { .. })));
        assert!(matches!(acc.check_epoch(3 * 8192, 8191, root), Err(AccumulatorError::PartialEpoch { .. })));
        assert_eq!(acc.check_epoch(15_532_032, 5362, acc.roots()[1896]), Ok(1896));
        assert!(matches!(acc.check_epoch(15_540_736, 8192, root), Err(AccumulatorError::PastHistory { .. })));
        assert!(matches!(acc.check_epoch(u64::MAX - 3, 8192, root), Err(AccumulatorError::PastHistory { .. })));
    }

    #[test]
    fn malformed_accumulators_are_refused() {
        assert!(Accumulator::from_ssz(&[], 0).is_err());
        assert!(Accumulator::from_ssz(&[5, 0, 0, 0], 0).is_err());
        assert!(Accumulator::from_ssz(&[4, 0, 0, 0, 1], 0).is_err());
        assert!(Accumulator::from_ssz(&[4, 0, 0, 0], 0).is_err(), "one epoch needs one root");
        let mut one = vec![4, 0, 0, 0];
        one.extend([7u8; 32]);
        assert_eq!(Accumulator::from_ssz(&one, 8191).unwrap().roots().len(), 1);
    }
}
