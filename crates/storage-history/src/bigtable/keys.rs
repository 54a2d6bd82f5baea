//! Row keys and cells of the Bigtable archive. Keys are readable text (as in Agave's ledger
//! tables) so `cbt lookup` shows them: heights and sequences as 16 hex digits (sorting in
//! numeric order, so a range of blocks is one scan), hashes as lowercase hex.

use crate::hex;

/// The one column family of every table.
pub(crate) const FAMILY: &str = "x";
/// Every cell is written with this timestamp, so a re-upload overwrites the same cell version
/// instead of adding one: uploads are idempotent.
pub(crate) const TIMESTAMP: i64 = 0;

/// The archive's tables, by role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TableId {
    /// Block rows: record, bloom, hash.
    Blocks,
    /// Transaction-hash rows: height and index.
    Tx,
    /// Bloom-bit vectors: section/bit rows.
    Bits,
    /// Finalized vertices by sequence: hash, record.
    Vertices,
    /// Vertex hash → sequence.
    VertexIndex,
    /// The watermark rows.
    Meta,
}

impl TableId {
    pub(crate) const ALL: [TableId; 6] =
        [TableId::Blocks, TableId::Tx, TableId::Bits, TableId::Vertices, TableId::VertexIndex, TableId::Meta];

    pub(crate) fn suffix(self) -> &'static str {
        match self {
            TableId::Blocks => "blocks",
            TableId::Tx => "tx",
            TableId::Bits => "bits",
            TableId::Vertices => "vertices",
            TableId::VertexIndex => "vertex_index",
            TableId::Meta => "meta",
        }
    }
}

/// Cell qualifiers.
pub(crate) mod col {
    /// A block's or vertex's compressed record.
    pub(crate) const RECORD: &[u8] = b"r";
    /// A block's bloom, raw.
    pub(crate) const BLOOM: &[u8] = b"l";
    /// A block's or vertex's hash, raw.
    pub(crate) const HASH: &[u8] = b"h";
    /// A transaction's pointer: height (8 bytes BE) and index (4 bytes BE).
    pub(crate) const POINTER: &[u8] = b"p";
    /// A vertex's sequence (8 bytes BE).
    pub(crate) const SEQUENCE: &[u8] = b"s";
    /// A bloom-bit vector, compressed.
    pub(crate) const VECTOR: &[u8] = b"v";
    /// A watermark (JSON).
    pub(crate) const MARK: &[u8] = b"w";
}

/// The row of height or sequence `n`.
pub(crate) fn number(n: u64) -> Vec<u8> {
    format!("{n:016x}").into_bytes()
}

/// The height or sequence a [`number`] row key holds.
pub(crate) fn parse_number(key: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(key).ok()?;
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(text, 16).ok()
}

/// The row of a hash.
pub(crate) fn hash(h: &[u8]) -> Vec<u8> {
    hex(h).into_bytes()
}

/// The row of bit `bit` of section `section`.
pub(crate) fn bit(section: u64, bit: u16) -> Vec<u8> {
    format!("{section:016x}/{bit:04x}").into_bytes()
}

/// A transaction pointer cell.
pub(crate) fn pointer(number: u64, index: u32) -> Vec<u8> {
    let mut v = number.to_be_bytes().to_vec();
    v.extend_from_slice(&index.to_be_bytes());
    v
}

/// The (height, index) of a pointer cell.
pub(crate) fn parse_pointer(cell: &[u8]) -> Option<(u64, u32)> {
    let n = u64::from_be_bytes(cell.get(..8)?.try_into().ok()?);
    let i = u32::from_be_bytes(cell.get(8..12)?.try_into().ok()?);
    (cell.len() == 12).then_some((n, i))
}

/// The row of a watermark.
pub(crate) fn mark(kind: crate::Kind) -> Vec<u8> {
    kind.as_str().as_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_keys_sort_numerically_and_parse_back() {
        let keys: Vec<Vec<u8>> = [0u64, 9, 10, 255, 4096, u64::MAX].iter().map(|n| number(*n)).collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(parse_number(&number(123_456)), Some(123_456));
        assert_eq!(parse_number(b"12"), None);
        assert_eq!(parse_pointer(&pointer(7, 3)), Some((7, 3)));
        assert_eq!(parse_pointer(&[0; 11]), None);
        assert_eq!(bit(1, 2047), b"0000000000000001/07ff".to_vec());
    }
}
