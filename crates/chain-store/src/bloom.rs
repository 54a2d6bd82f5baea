//! Log blooms: one per canonical block, and a sectioned bit index over them.
//!
//! A block's bloom has [`BLOOM_BITS`] bits; each log address and topic sets three of them,
//! chosen by the model ([`ChainModel::bloom_positions`]). A filter item can be in a block only
//! if all three of its bits are set there. Bit `p` is bit `7 - p % 8` of byte `p / 8`, so a
//! model whose positions are Ethereum's, mirrored (`2047 - b`), gets Ethereum's 256-byte logs
//! bloom byte for byte and can use its headers' blooms as they are.
//!
//! Testing one bloom per block would read every bloom of a wide range. The bit index turns the
//! layout around: for each completed section of [`SECTION_SIZE`] blocks and each bloom bit, a
//! bit vector says which blocks of the section set that bit. A filter then reads three vectors
//! per item and section, ANDs and ORs them, and visits only the candidate blocks. Blocks after
//! the last completed section are tested against their own blooms.

use storage_api::ValueCodec;
use storage_api::codec::{CodecError, split_version};

/// Bits in a block bloom (as in the EVM).
pub const BLOOM_BITS: usize = 2048;
/// Bytes in a block bloom.
pub const BLOOM_BYTES: usize = BLOOM_BITS / 8;
/// Blocks per bloom-bit section.
pub const SECTION_SIZE: u64 = 4096;
const SECTION_BYTES: usize = SECTION_SIZE as usize / 8;
const FORMAT_VERSION: u8 = 1;

/// Bloom bits for models without a bloom of their own (the synthetic [`crate::synthetic::Synthetic`]
/// model): 11-bit slices of a 64-bit hash of the item's bytes.
///
/// The hash needs spread, not cryptographic strength (items are addresses and topics, and a
/// collision only costs a false positive), so it is a fast multiply-xorshift mix. It is part
/// of the stored format of a model that uses it.
pub fn bit_positions(item: &[u8]) -> [u16; 3] {
    let h = mix64(item);
    let bit = |shift: u32| ((h >> shift) as usize % BLOOM_BITS) as u16;
    [bit(0), bit(21), bit(42)]
}

fn mix64(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64).wrapping_mul(K) ^ 0x6a09_e667_f3bc_c908;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
        h = (h ^ v).wrapping_mul(K).rotate_left(29);
    }
    let mut tail = [0u8; 8];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    h = (h ^ u64::from_le_bytes(tail)).wrapping_mul(K);
    // Final avalanche (splitmix64).
    h = (h ^ (h >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h = (h ^ (h >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// A block's log bloom.
#[derive(Clone, PartialEq, Eq)]
pub struct Bloom(pub Box<[u8; BLOOM_BYTES]>);

impl std::fmt::Debug for Bloom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ones: u32 = self.0.iter().map(|b| b.count_ones()).sum();
        write!(f, "Bloom({ones} of {BLOOM_BITS} bits set)")
    }
}

impl Default for Bloom {
    fn default() -> Self {
        Bloom(Box::new([0; BLOOM_BYTES]))
    }
}

impl Bloom {
    /// A bloom from its 256 bytes, in the layout described above.
    pub fn from_bytes(bytes: [u8; BLOOM_BYTES]) -> Self {
        Bloom(Box::new(bytes))
    }

    /// Sets an item's three bits.
    pub fn accrue(&mut self, bits: [u16; 3]) {
        for bit in bits {
            self.set(bit);
        }
    }

    fn set(&mut self, bit: u16) {
        self.0[bit as usize / 8] |= 0x80 >> (bit % 8);
    }

    /// Whether bit `bit` is set.
    pub fn bit(&self, bit: u16) -> bool {
        self.0[bit as usize / 8] & (0x80 >> (bit % 8)) != 0
    }

    /// Whether an item with these bits may have been added (false positives possible, no
    /// false negatives).
    pub fn may_contain(&self, bits: [u16; 3]) -> bool {
        bits.iter().all(|&b| self.bit(b))
    }
}

/// Fixed-size bit arrays stored as a version byte and the raw bytes; any other length is a
/// decode error.
macro_rules! fixed_bits_value {
    ($t:ident, $bytes:expr) => {
        impl ValueCodec for $t {
            fn encode_value(&self, out: &mut Vec<u8>) -> Result<(), CodecError> {
                out.push(FORMAT_VERSION);
                out.extend_from_slice(&self.0[..]);
                Ok(())
            }
            fn decode_value(bytes: &[u8]) -> Result<Self, CodecError> {
                let payload = versioned(bytes)?;
                let arr: [u8; $bytes] =
                    payload.try_into().map_err(|_| CodecError::Length { expected: $bytes, found: payload.len() })?;
                Ok($t(Box::new(arr)))
            }
        }
    };
}
fixed_bits_value!(Bloom, BLOOM_BYTES);
fixed_bits_value!(BloomBits, SECTION_BYTES);

fn versioned(bytes: &[u8]) -> Result<&[u8], CodecError> {
    match split_version(bytes)? {
        (FORMAT_VERSION, payload) => Ok(payload),
        (v, _) => Err(CodecError::UnknownVersion { found: v, supported: FORMAT_VERSION }),
    }
}

/// One bit of the bloom across the blocks of one section: bit `j` (big-endian within bytes)
/// is set if block `section * SECTION_SIZE + j` set the bloom bit.
#[derive(Clone, PartialEq, Eq)]
pub struct BloomBits(pub Box<[u8; SECTION_BYTES]>);

impl std::fmt::Debug for BloomBits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ones: u32 = self.0.iter().map(|b| b.count_ones()).sum();
        write!(f, "BloomBits({ones} of {SECTION_SIZE} blocks)")
    }
}

impl BloomBits {
    /// No block.
    pub fn zero() -> Self {
        BloomBits(Box::new([0; SECTION_BYTES]))
    }

    /// Every block.
    pub fn ones() -> Self {
        BloomBits(Box::new([0xff; SECTION_BYTES]))
    }

    /// In place: blocks in both.
    pub fn and(&mut self, other: &BloomBits) {
        self.0.iter_mut().zip(other.0.iter()).for_each(|(a, b)| *a &= b);
    }

    /// In place: blocks in either.
    pub fn or(&mut self, other: &BloomBits) {
        self.0.iter_mut().zip(other.0.iter()).for_each(|(a, b)| *a |= b);
    }

    /// The offsets (within the section) of the blocks set, ascending.
    pub fn offsets(&self) -> impl Iterator<Item = u64> + '_ {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, b)| **b != 0)
            .flat_map(|(i, &b)| (0..8u64).filter(move |j| b & (0x80 >> j) != 0).map(move |j| i as u64 * 8 + j))
    }
}

/// Transposes a section's blooms (`blooms[j]` for block `j` of the section; `None` for heights
/// without a block) into one [`BloomBits`] per bloom bit.
pub fn transpose(blooms: &[Option<&Bloom>]) -> Vec<BloomBits> {
    let mut out: Vec<BloomBits> = (0..BLOOM_BITS).map(|_| BloomBits::zero()).collect();
    for (j, bloom) in blooms.iter().enumerate() {
        let Some(bloom) = bloom else { continue };
        let (byte, mask) = (j / 8, 0x80u8 >> (j % 8));
        for (i, &b) in bloom.0.iter().enumerate() {
            if b == 0 {
                continue;
            }
            for k in 0..8 {
                if b & (0x80 >> k) != 0 {
                    out[i * 8 + k].0[byte] |= mask;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_blooms() {
        let mut a = Bloom::default();
        a.accrue(bit_positions(b"alpha"));
        let mut b = Bloom::default();
        b.accrue(bit_positions(b"beta"));
        let bits = transpose(&[Some(&a), None, Some(&b)]);
        for bit in bit_positions(b"alpha") {
            assert!(bits[bit as usize].offsets().any(|o| o == 0));
        }
        for bit in bit_positions(b"beta") {
            assert!(bits[bit as usize].offsets().any(|o| o == 2));
        }
        assert!(bits.iter().all(|v| !v.offsets().any(|o| o == 1)));
        assert!(a.may_contain(bit_positions(b"alpha")) && !Bloom::default().may_contain(bit_positions(b"alpha")));
    }

    #[test]
    fn positions_spread() {
        // 20,000 distinct small items over 2,048 bits: every bit used, none far above the mean.
        let mut counts = vec![0u32; BLOOM_BITS];
        for i in 0..20_000u64 {
            for b in bit_positions(&i.to_be_bytes()) {
                counts[b as usize] += 1;
            }
        }
        let mean = 60_000 / BLOOM_BITS as u32;
        assert!(counts.iter().all(|&c| c > 0 && c < 3 * mean), "{:?}", counts.iter().max());
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert!(Bloom::decode_value(&[1, 0, 0]).is_err());
        assert!(BloomBits::decode_value(&[2; 513]).is_err());
        let mut out = Vec::new();
        BloomBits::ones().encode_value(&mut out).unwrap();
        assert_eq!(BloomBits::decode_value(&out).unwrap(), BloomBits::ones());
    }
}
