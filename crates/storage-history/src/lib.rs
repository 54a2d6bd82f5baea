//! The history tier: finalized, immutable chain and DAG history kept beyond one machine.
//!
//! A node uploads what it finalized, in order, to an archive and may then prune it locally;
//! reads of pruned heights are answered from the archive. Two archives implement one trait,
//! [`HistoryTier`]:
//!
//! * [`BigtableTier`] — Google Cloud Bigtable (the emulator in tests): one row per block, per
//!   transaction hash, per bloom-bit vector and per vertex, so a point read is one row and a
//!   range of blooms one scan. Bigtable is atomic per row only, so every write is idempotent
//!   (fixed cell timestamps) and a **watermark row**, written after the range was read back
//!   and compared, is what says a range is complete.
//! * [`SegmentTier`] — immutable, zstd-compressed segment files of N blocks (or vertices) in
//!   object storage (local directory, S3, GCS, Azure: storage-backup's destinations), each with
//!   an index for point reads, a sorted hash table for lookups by hash, and a BLAKE3 manifest;
//!   a watermark object written last.
//!
//! The crate knows no chain: blocks arrive as opaque records with their hash, bloom and
//! transaction hashes ([`ChainItem`]), vertices as records with their hash ([`DagItem`]). The
//! facade encodes and decodes them with the domain crates. The API is synchronous (the storage
//! stack is); each archive runs its network I/O on a small runtime of its own.

mod bigtable;
mod cell;
mod config;
mod error;
mod io;
mod segments;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use bigtable::BigtableTier;
pub use config::{BigtableConfig, HistoryConfig, SegmentConfig, TierKind};
pub use error::HistoryError;
pub use segments::SegmentTier;
use serde::{Deserialize, Serialize};

/// Bytes of a block bloom as archived.
pub const BLOOM_BYTES: usize = 256;
/// Blocks per bloom-bit section (one bit vector per bloom bit covers a section).
pub const SECTION_SIZE: u64 = 4096;
/// Bloom bits: vectors per section.
pub const SECTION_BITS: usize = BLOOM_BYTES * 8;
/// Bytes of one section bit vector.
pub const SECTION_VECTOR_BYTES: usize = SECTION_SIZE as usize / 8;

/// Which history: the linear chain's blocks or the DAG's finalized vertices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Blocks by height.
    Chain,
    /// Finalized vertices by sequence number.
    Dag,
}

impl Kind {
    /// The label in metrics, keys and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Chain => "chain",
            Kind::Dag => "dag",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One block to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainItem {
    /// Its height.
    pub number: u64,
    /// Its hash.
    pub hash: Vec<u8>,
    /// The block's record (header, body, receipts, senders), encoded by the chain store.
    pub record: Vec<u8>,
    /// Its logs bloom ([`BLOOM_BYTES`]).
    pub bloom: Vec<u8>,
    /// Its transactions' hashes, in order (the index of each is its position).
    pub tx_hashes: Vec<Vec<u8>>,
}

/// The bloom-bit vectors of one completed section: `vectors[b]` says which of the section's
/// [`SECTION_SIZE`] blocks set bloom bit `b`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitSection {
    /// The section (heights `section * SECTION_SIZE ..`).
    pub section: u64,
    /// [`SECTION_BITS`] vectors of [`SECTION_VECTOR_BYTES`] each.
    pub vectors: Vec<Vec<u8>>,
}

/// One finalized vertex to archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DagItem {
    /// Its finalization sequence number.
    pub sequence: u64,
    /// Its hash.
    pub hash: Vec<u8>,
    /// The vertex's record, encoded by the DAG store.
    pub record: Vec<u8>,
}

/// How far one history is archived: items `first..next` are stored and verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    /// The first archived height (sequence).
    pub first: u64,
    /// The next height (sequence) to archive: everything below it, from `first`, is archived.
    pub next: u64,
    /// The hash of item `next - 1`, so a node can tell the archive holds its own chain.
    #[serde(with = "hex_bytes")]
    pub last_hash: Vec<u8>,
}

/// Where a transaction is in the archived chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxPointer {
    /// The block's height.
    pub number: u64,
    /// The transaction's index in the block.
    pub index: u32,
}

/// What one upload stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// The watermark now in force.
    pub mark: Mark,
    /// Bytes sent to the archive (after compression).
    pub bytes: u64,
}

/// What a verification of the whole archive found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TierReport {
    /// Units checked (Bigtable: rows; segments: segment files).
    pub units: u64,
    /// Items read back (blocks or vertices).
    pub items: u64,
    /// Bytes read.
    pub bytes: u64,
    /// Every problem found, in order.
    pub problems: Vec<String>,
}

/// Progress of a long archive operation, for progress bars. Called from worker threads.
pub trait Progress: Send + Sync {
    /// A phase begins with `total` steps.
    fn phase(&self, _name: &str, _total: u64) {}
    /// `n` more steps are done.
    fn advance(&self, _n: u64) {}
}

impl Progress for () {}

/// An archive of finalized history. Writes are idempotent and only [`HistoryTier::upload_chain`]
/// / [`HistoryTier::upload_dag`] move a watermark, after reading back what they wrote; reads
/// answer only what a watermark covers as complete. A tier that cannot be reached answers
/// [`HistoryError::Unavailable`], never "not found".
pub trait HistoryTier: Send + Sync {
    /// The archive as shown to operators (no credentials).
    fn describe(&self) -> String;

    /// The watermark of `kind`; `None` if nothing is archived yet.
    fn mark(&self, kind: Kind) -> Result<Option<Mark>, HistoryError>;

    /// The heights (sequences) the next upload of `kind` should cover, given the next one to
    /// archive and the last one final locally; `None` until a whole unit is final (segments
    /// are uploaded whole, Bigtable takes any range up to its batch size).
    fn next_unit(&self, kind: Kind, next: u64, last_final: u64) -> Option<std::ops::RangeInclusive<u64>>;

    /// Stores consecutive blocks (and any bloom-bit sections they complete), reads them back
    /// and compares, then raises the chain watermark to the last block. `items` must start at
    /// the current watermark's `next` (or anywhere when nothing is archived).
    fn upload_chain(&self, items: &[ChainItem], sections: &[BitSection]) -> Result<Uploaded, HistoryError>;

    /// Stores consecutive finalized vertices, reads them back, then raises the DAG watermark.
    fn upload_dag(&self, items: &[DagItem]) -> Result<Uploaded, HistoryError>;

    /// The record of block `number`, if archived.
    fn chain_record(&self, number: u64) -> Result<Option<Vec<u8>>, HistoryError>;

    /// The records of blocks `numbers` (each `None` if not archived), fetched together: one
    /// request on Bigtable, concurrent ranged reads (nearby ones merged) on segments.
    fn chain_records(&self, numbers: &[u64]) -> Result<Vec<Option<Vec<u8>>>, HistoryError>;

    /// Where transaction `hash` is, if archived.
    fn tx(&self, hash: &[u8]) -> Result<Option<TxPointer>, HistoryError>;

    /// The blooms of archived blocks `from..=to`, ascending.
    fn blooms(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, HistoryError>;

    /// The vectors of `bits` in bloom-bit section `section`, in the order asked; `None` if the
    /// section is not archived.
    fn section_bits(&self, section: u64, bits: &[u16]) -> Result<Option<Vec<Vec<u8>>>, HistoryError>;

    /// The vertex finalized at `sequence`: (hash, record), if archived.
    fn vertex(&self, sequence: u64) -> Result<Option<ArchivedVertex>, HistoryError>;

    /// The sequence at which vertex `hash` was finalized, if archived.
    fn vertex_sequence(&self, hash: &[u8]) -> Result<Option<u64>, HistoryError>;

    /// Reads back everything below both watermarks and checks it (presence, sizes, hashes,
    /// decompression, index entries); `item` sees each block (height, record) or vertex
    /// (sequence, record) so the caller can check the contents too.
    fn verify(&self, progress: &dyn Progress, item: &mut VerifyItem<'_>) -> Result<TierReport, HistoryError>;
}

/// What [`HistoryTier::verify`] hands the caller for each item: kind, height or sequence,
/// record; an `Err` is a problem the report counts.
pub type VerifyItem<'a> = dyn FnMut(Kind, u64, &[u8]) -> Result<(), String> + 'a;

/// An archived vertex: its hash and its stored record.
pub type ArchivedVertex = (Vec<u8>, Vec<u8>);

/// The archive a configuration names: the one place the configured kind becomes a type.
#[derive(Debug)]
pub enum Archive {
    /// Bigtable.
    Bigtable(BigtableTier),
    /// Object-storage segments.
    Segments(SegmentTier),
}

impl Archive {
    /// Opens the archive `config` names (`None` when `config.kind` is unset).
    pub fn open(config: &HistoryConfig) -> Result<Option<Self>, HistoryError> {
        config.validate().map_err(|(key, reason)| HistoryError::Config(format!("history.{key}: {reason}")))?;
        Ok(match config.kind {
            None => None,
            Some(TierKind::Bigtable) => Some(Archive::Bigtable(BigtableTier::open(config)?)),
            Some(TierKind::Segments) => Some(Archive::Segments(SegmentTier::open(config)?)),
        })
    }

    fn tier(&self) -> &dyn HistoryTier {
        match self {
            Archive::Bigtable(t) => t,
            Archive::Segments(t) => t,
        }
    }
}

/// Every method forwards to the configured archive.
impl HistoryTier for Archive {
    fn describe(&self) -> String {
        self.tier().describe()
    }
    fn mark(&self, kind: Kind) -> Result<Option<Mark>, HistoryError> {
        self.tier().mark(kind)
    }
    fn next_unit(&self, kind: Kind, next: u64, last_final: u64) -> Option<std::ops::RangeInclusive<u64>> {
        self.tier().next_unit(kind, next, last_final)
    }
    fn upload_chain(&self, items: &[ChainItem], sections: &[BitSection]) -> Result<Uploaded, HistoryError> {
        self.tier().upload_chain(items, sections)
    }
    fn upload_dag(&self, items: &[DagItem]) -> Result<Uploaded, HistoryError> {
        self.tier().upload_dag(items)
    }
    fn chain_record(&self, number: u64) -> Result<Option<Vec<u8>>, HistoryError> {
        self.tier().chain_record(number)
    }
    fn chain_records(&self, numbers: &[u64]) -> Result<Vec<Option<Vec<u8>>>, HistoryError> {
        self.tier().chain_records(numbers)
    }
    fn tx(&self, hash: &[u8]) -> Result<Option<TxPointer>, HistoryError> {
        self.tier().tx(hash)
    }
    fn blooms(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, HistoryError> {
        self.tier().blooms(from, to)
    }
    fn section_bits(&self, section: u64, bits: &[u16]) -> Result<Option<Vec<Vec<u8>>>, HistoryError> {
        self.tier().section_bits(section, bits)
    }
    fn vertex(&self, sequence: u64) -> Result<Option<ArchivedVertex>, HistoryError> {
        self.tier().vertex(sequence)
    }
    fn vertex_sequence(&self, hash: &[u8]) -> Result<Option<u64>, HistoryError> {
        self.tier().vertex_sequence(hash)
    }
    fn verify(&self, progress: &dyn Progress, item: &mut VerifyItem<'_>) -> Result<TierReport, HistoryError> {
        self.tier().verify(progress, item)
    }
}

/// Checks that `numbers` are consecutive from `expected_first` (the watermark's `next`, when
/// there is one): uploads never leave a gap or overlap the archive's end.
pub(crate) fn check_consecutive(
    kind: Kind,
    mark: Option<&Mark>,
    numbers: impl Iterator<Item = u64>,
) -> Result<(u64, u64), HistoryError> {
    let mut range: Option<(u64, u64)> = None;
    for n in numbers {
        range = match range {
            None => {
                if let Some(m) = mark
                    && n != m.next
                {
                    return Err(HistoryError::NotNext { kind, next: m.next, found: n });
                }
                Some((n, n))
            }
            Some((first, last)) if n == last + 1 => Some((first, n)),
            Some((_, last)) => return Err(HistoryError::NotNext { kind, next: last + 1, found: n }),
        };
    }
    range.ok_or(HistoryError::Empty(kind))
}

/// Lowercase hex of bytes, for keys and messages.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// `Vec<u8>` as a hex string in JSON.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::hex(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        super::unhex(&text).ok_or_else(|| serde::de::Error::custom("not hex"))
    }
}

/// Bytes from lowercase or uppercase hex.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_must_continue_the_watermark() {
        let mark = Mark { first: 0, next: 10, last_hash: vec![1] };
        assert_eq!(check_consecutive(Kind::Chain, Some(&mark), 10..13).unwrap(), (10, 12));
        assert!(matches!(
            check_consecutive(Kind::Chain, Some(&mark), 11..13),
            Err(HistoryError::NotNext { next: 10, found: 11, .. })
        ));
        assert!(matches!(
            check_consecutive(Kind::Dag, None, [4, 5, 7].into_iter()),
            Err(HistoryError::NotNext { next: 6, found: 7, .. })
        ));
        assert_eq!(check_consecutive(Kind::Dag, None, 4..5).unwrap(), (4, 4));
        assert!(matches!(check_consecutive(Kind::Dag, None, 0..0), Err(HistoryError::Empty(Kind::Dag))));
    }

    #[test]
    fn marks_round_trip_as_json() {
        let mark = Mark { first: 3, next: 99, last_hash: vec![0xab, 0x01] };
        let text = serde_json::to_string(&mark).unwrap();
        assert!(text.contains("\"ab01\""), "{text}");
        assert_eq!(serde_json::from_str::<Mark>(&text).unwrap(), mark);
        assert!(serde_json::from_str::<Mark>(r#"{"first":0,"next":1,"last_hash":"zz"}"#).is_err());
    }
}
