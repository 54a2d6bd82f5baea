//! era1: the e2store archive of pre-merge Ethereum history that geth, reth, nimbus and the
//! Portal network exchange (`eth-clients/e2store-format-specs`, `formats/era1.md`).
//!
//! A file is `Version | (header | body | receipts | total difficulty)* | Accumulator |
//! BlockIndex`: each e2store entry an 8-byte head (type, little-endian u32 length, two zero
//! bytes) and its data; header, body and receipts are snappy-framed RLP; the total difficulty
//! a little-endian u256; the accumulator the SSZ `hash_tree_root` of the blocks' (hash, total
//! difficulty) records as a list of at most 8,192; the index the first block number, each
//! block's offset relative to the index entry, and the count.
//!
//! [`Era1Reader`] streams a file block by block (memory: one block) and [`Era1Reader::finish`]
//! checks the index and the accumulator against what was read; [`Era1Writer`] writes one.
//! Every length is checked against the file before anything is allocated.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use alloy_consensus::{BlockBody, Header, ReceiptEnvelope, TxEnvelope};
use alloy_primitives::{B256, U256};

use crate::accumulator::accumulator_root;
use crate::{EthBody, EthHeader, EthReceipt, EthTx};

/// Entry types.
pub mod types {
    /// `Version`.
    pub const VERSION: [u8; 2] = [0x65, 0x32];
    /// `CompressedHeader`.
    pub const HEADER: [u8; 2] = [0x03, 0x00];
    /// `CompressedBody`.
    pub const BODY: [u8; 2] = [0x04, 0x00];
    /// `CompressedReceipts`.
    pub const RECEIPTS: [u8; 2] = [0x05, 0x00];
    /// `TotalDifficulty`.
    pub const TOTAL_DIFFICULTY: [u8; 2] = [0x06, 0x00];
    /// `Accumulator`.
    pub const ACCUMULATOR: [u8; 2] = [0x07, 0x00];
    /// `BlockIndex`.
    pub const BLOCK_INDEX: [u8; 2] = [0x66, 0x32];
}

/// Blocks per era1 file at most (the accumulator's list limit), and an epoch's length.
pub const MAX_BLOCKS: usize = crate::accumulator::EPOCH_BLOCKS;

/// The most bytes one block's entries may hold decompressed, together (a bound against
/// decompression bombs, and on the memory of the blocks an import holds in flight). A
/// pre-merge block is far below it: at 30 M gas, at most about 7.5 MB of call data and 4 MB
/// of log data.
pub const MAX_BLOCK_BYTES: u64 = 32 << 20;

/// The longest entry read, before decompression (snappy's framing adds little; the block
/// index of 8,192 blocks is 64 KiB).
pub const MAX_ENTRY_BYTES: u64 = MAX_BLOCK_BYTES + (1 << 20);

/// An era1 file that cannot be read, or that does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Era1Error {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The e2store framing is broken.
    #[error("{path}: at byte {offset}: {reason}")]
    Framing {
        /// The file.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A block's data does not decode.
    #[error("{path}: block {number}: {what}: {reason}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// The block (or the position in the file before its header decoded).
        number: u64,
        /// Which entry.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The block index does not match the blocks.
    #[error("{path}: block index: {reason}")]
    Index {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// The accumulator root recomputed from the blocks differs from the file's.
    #[error("{path}: accumulator root {claimed} in the file, {computed} computed from its blocks")]
    Accumulator {
        /// The file.
        path: PathBuf,
        /// The file's root.
        claimed: B256,
        /// The recomputed root.
        computed: B256,
    },
    /// A total difficulty is not the previous one plus the block's difficulty.
    #[error("{path}: block {number}: total difficulty {found}, expected {expected}")]
    TotalDifficulty {
        /// The file.
        path: PathBuf,
        /// The block.
        number: u64,
        /// In the file.
        found: U256,
        /// Previous plus difficulty.
        expected: U256,
    },
    /// The file is refused by the published accumulator of its network (a self-consistent
    /// file of another history, or part of an epoch only).
    #[error("{path}: {source}")]
    Published {
        /// The file.
        path: PathBuf,
        /// What differs.
        source: crate::accumulator::AccumulatorError,
    },
    /// The file's conventional name (`<network>-<epoch>-<root prefix>.era1`) does not match
    /// its contents, or names another network than the import's.
    #[error("{path}: {reason}")]
    Name {
        /// The file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A block cannot be written (the store lacks what era1 needs).
    #[error("era1 export of block {number}: {reason}")]
    Export {
        /// The block.
        number: u64,
        /// Why.
        reason: String,
    },
}

/// One block of an era1 file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Era1Block {
    /// The header (and its hash).
    pub header: EthHeader,
    /// The transactions.
    pub transactions: Vec<EthTx>,
    /// Ommers, withdrawals and the total difficulty.
    pub extra: EthBody,
    /// The receipts.
    pub receipts: Vec<EthReceipt>,
}

impl Era1Block {
    /// The block's number.
    pub fn number(&self) -> u64 {
        self.header.header.number
    }

    /// The total difficulty (every era1 block has one).
    pub fn total_difficulty(&self) -> U256 {
        self.extra.total_difficulty.unwrap_or_default()
    }
}

/// What a whole file held, once verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Era1Summary {
    /// The first block.
    pub start: u64,
    /// Blocks in the file.
    pub count: u64,
    /// The accumulator root (checked).
    pub accumulator: B256,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// An e2store entry: its type and data.
type Entry = ([u8; 2], Vec<u8>);

/// Reads an era1 file block by block.
pub struct Era1Reader {
    path: PathBuf,
    input: BufReader<File>,
    len: u64,
    offset: u64,
    /// The offset of each block's header entry.
    offsets: Vec<u64>,
    records: Vec<(B256, U256)>,
    previous_td: Option<(U256, u64)>,
    first: Option<u64>,
    end: Option<(B256, u64)>,
}

impl std::fmt::Debug for Era1Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Era1Reader({}, at {})", self.path.display(), self.offset)
    }
}

impl Era1Reader {
    /// Opens `path` and checks its version entry.
    pub fn open(path: &Path) -> Result<Self, Era1Error> {
        let io = |source| Era1Error::Io { path: path.to_owned(), source };
        let file = File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut r = Era1Reader {
            path: path.to_owned(),
            input: BufReader::with_capacity(1 << 20, file),
            len,
            offset: 0,
            offsets: Vec::new(),
            records: Vec::new(),
            previous_td: None,
            first: None,
            end: None,
        };
        let (typ, data) = r.entry()?.ok_or_else(|| r.framing(0, "empty file"))?;
        if typ != types::VERSION || !data.is_empty() {
            return Err(r.framing(0, "not an era1 file (no version entry first)"));
        }
        Ok(r)
    }

    fn framing(&self, offset: u64, reason: impl Into<String>) -> Era1Error {
        Era1Error::Framing { path: self.path.clone(), offset, reason: reason.into() }
    }

    /// The next entry, `None` at the end of the file.
    fn entry(&mut self) -> Result<Option<Entry>, Era1Error> {
        if self.offset == self.len {
            return Ok(None);
        }
        let at = self.offset;
        let mut head = [0u8; 8];
        self.input.read_exact(&mut head).map_err(|_| self.framing(at, "entry header cut short"))?;
        let length = u64::from(u32::from_le_bytes([head[2], head[3], head[4], head[5]]));
        if head[6..8] != [0, 0] {
            return Err(self.framing(at, "reserved bytes of the entry header are not zero"));
        }
        if length > self.len - at - 8 {
            return Err(self.framing(at, format!("entry of {length} bytes runs past the end of the file")));
        }
        if length > MAX_ENTRY_BYTES {
            return Err(
                self.framing(at, format!("entry of {length} bytes is larger than any block's ({MAX_ENTRY_BYTES})"))
            );
        }
        let mut data = vec![0u8; length as usize];
        self.input.read_exact(&mut data).map_err(|e| Era1Error::Io { path: self.path.clone(), source: e })?;
        self.offset = at + 8 + length;
        Ok(Some(([head[0], head[1]], data)))
    }

    fn expect(&mut self, typ: [u8; 2], what: &'static str) -> Result<Vec<u8>, Era1Error> {
        let at = self.offset;
        match self.entry()? {
            Some((t, data)) if t == typ => Ok(data),
            Some((t, _)) => {
                Err(self.framing(at, format!("expected {what}, found entry type {:02x}{:02x}", t[0], t[1])))
            }
            None => Err(self.framing(at, format!("expected {what}, found the end of the file"))),
        }
    }

    /// Decompresses `data`, of at most `budget` bytes (what the block has left of
    /// [`MAX_BLOCK_BYTES`]), which shrinks by what it took.
    fn unsnap(&self, data: &[u8], number: u64, what: &'static str, budget: &mut u64) -> Result<Vec<u8>, Era1Error> {
        let mut out = Vec::new();
        let mut decoder = snap::read::FrameDecoder::new(data).take(*budget + 1);
        decoder.read_to_end(&mut out).map_err(|e| self.decode(number, what, format!("snappy: {e}")))?;
        if out.len() as u64 > *budget {
            return Err(self.decode(
                number,
                what,
                format!("the block is larger than {MAX_BLOCK_BYTES} bytes decompressed"),
            ));
        }
        *budget -= out.len() as u64;
        Ok(out)
    }

    fn decode(&self, number: u64, what: &'static str, reason: impl Into<String>) -> Era1Error {
        Era1Error::Decode { path: self.path.clone(), number, what, reason: reason.into() }
    }

    /// The next block, or `None` after the last (then [`Era1Reader::finish`]).
    pub fn next_block(&mut self) -> Result<Option<Era1Block>, Era1Error> {
        if self.end.is_some() {
            return Ok(None);
        }
        let at = self.offset;
        let Some((typ, data)) = self.entry()? else {
            return Err(self.framing(at, "the file ends without an accumulator and block index"));
        };
        if typ == types::ACCUMULATOR {
            let root: [u8; 32] =
                data.as_slice().try_into().map_err(|_| self.framing(at, "accumulator entry is not 32 bytes"))?;
            let index_at = self.offset;
            self.end = Some((B256::from(root), index_at));
            return Ok(None);
        }
        if typ != types::HEADER {
            return Err(
                self.framing(at, format!("expected a block header, found entry type {:02x}{:02x}", typ[0], typ[1]))
            );
        }
        if self.offsets.len() == MAX_BLOCKS {
            return Err(self.framing(at, format!("more than {MAX_BLOCKS} blocks")));
        }
        let position = self.offsets.len() as u64;
        let mut budget = MAX_BLOCK_BYTES;
        let raw = self.unsnap(&data, position, "header", &mut budget)?;
        let header = EthHeader::decode(&raw).map_err(|e| self.decode(position, "header", e))?;
        let number = header.header.number;
        if number == u64::MAX {
            return Err(self.decode(number, "header", "block number 2^64 - 1 has no successor height"));
        }
        let body = self.expect(types::BODY, "a block body")?;
        let body = self.unsnap(&body, number, "body", &mut budget)?;
        let body: BlockBody<TxEnvelope, Header> = rlp_exact(&body).map_err(|e| self.decode(number, "body", e))?;
        let receipts = self.expect(types::RECEIPTS, "receipts")?;
        let receipts = self.unsnap(&receipts, number, "receipts", &mut budget)?;
        let receipts: Vec<ReceiptEnvelope> = rlp_exact(&receipts).map_err(|e| self.decode(number, "receipts", e))?;
        let td = self.expect(types::TOTAL_DIFFICULTY, "a total difficulty")?;
        let td: [u8; 32] =
            td.as_slice().try_into().map_err(|_| self.decode(number, "total difficulty", "not 32 bytes"))?;
        let td = U256::from_le_bytes(td);
        if let Some((previous, previous_number)) = self.previous_td {
            if previous_number.checked_add(1) != Some(number) {
                return Err(self.decode(number, "header", format!("follows block {previous_number}")));
            }
            let expected = previous.checked_add(header.header.difficulty).ok_or_else(|| {
                self.decode(number, "total difficulty", "the previous total plus this difficulty overflows 2^256")
            })?;
            if td != expected {
                return Err(Era1Error::TotalDifficulty { path: self.path.clone(), number, found: td, expected });
            }
        }
        self.previous_td = Some((td, number));
        self.first.get_or_insert(number);
        self.offsets.push(at);
        self.records.push((header.hash, td));
        Ok(Some(Era1Block {
            header,
            transactions: body.transactions.into_iter().map(EthTx).collect(),
            extra: EthBody { ommers: body.ommers, withdrawals: body.withdrawals, total_difficulty: Some(td) },
            receipts: receipts.into_iter().map(EthReceipt::from_envelope).collect(),
        }))
    }

    /// Reads the block index and checks it and the accumulator against the blocks read.
    /// Call after [`Era1Reader::next_block`] returned `None`.
    pub fn finish(mut self) -> Result<Era1Summary, Era1Error> {
        while self.next_block()?.is_some() {}
        let (claimed, index_at) = self.end.expect("next_block returned None after the accumulator");
        let index = self.expect(types::BLOCK_INDEX, "the block index")?;
        let bad = |reason: String| Era1Error::Index { path: self.path.clone(), reason };
        let count = self.offsets.len();
        if index.len() != 16 + 8 * count {
            return Err(bad(format!("{} bytes for {count} blocks", index.len())));
        }
        let word = |i: usize| u64::from_le_bytes(index[8 * i..8 * i + 8].try_into().expect("8 bytes"));
        let start = word(0);
        if count == 0 {
            return Err(bad("the file holds no blocks".into()));
        }
        if word(count + 1) != count as u64 {
            return Err(bad(format!("count {} for {count} blocks", word(count + 1))));
        }
        if Some(start) != self.first {
            return Err(bad(format!("starts at block {start}, the first block is {:?}", self.first)));
        }
        for (i, at) in self.offsets.iter().enumerate() {
            // Offsets are relative to the index entry, as signed 64-bit numbers: compared in
            // 128 bits, so no value in the file can overflow.
            let target = i128::from(index_at) + i128::from(word(i + 1) as i64);
            if target != i128::from(*at) {
                return Err(bad(format!("offset of block {i} points to byte {target}, not {at}")));
            }
        }
        if self.entry()?.is_some() {
            return Err(self.framing(self.offset, "entries after the block index"));
        }
        let computed = accumulator_root(&self.records);
        if computed != claimed {
            return Err(Era1Error::Accumulator { path: self.path.clone(), claimed, computed });
        }
        Ok(Era1Summary { start, count: count as u64, accumulator: computed, bytes: self.len })
    }

    /// The (block hash, total difficulty) records of the blocks read so far.
    pub fn records(&self) -> &[(B256, U256)] {
        &self.records
    }

    /// Blocks read so far.
    pub fn blocks_read(&self) -> usize {
        self.offsets.len()
    }
}

fn rlp_exact<T: alloy_rlp::Decodable>(bytes: &[u8]) -> Result<T, String> {
    let mut rest = bytes;
    let value = T::decode(&mut rest).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} trailing bytes", rest.len()));
    }
    Ok(value)
}

/// Writes an era1 file.
pub struct Era1Writer {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
    start: Option<u64>,
    offsets: Vec<u64>,
    records: Vec<(B256, U256)>,
}

impl std::fmt::Debug for Era1Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Era1Writer({}, {} blocks)", self.path.display(), self.offsets.len())
    }
}

impl Era1Writer {
    /// Creates `path` (which must not exist).
    pub fn create(path: &Path) -> Result<Self, Era1Error> {
        let io = |source| Era1Error::Io { path: path.to_owned(), source };
        let file = File::options().write(true).create_new(true).open(path).map_err(io)?;
        let mut w = Era1Writer {
            path: path.to_owned(),
            out: BufWriter::with_capacity(1 << 20, file),
            written: 0,
            start: None,
            offsets: Vec::new(),
            records: Vec::new(),
        };
        w.entry(types::VERSION, &[])?;
        Ok(w)
    }

    fn entry(&mut self, typ: [u8; 2], data: &[u8]) -> Result<(), Era1Error> {
        let io = |source| Era1Error::Io { path: self.path.clone(), source };
        let len = u32::try_from(data.len()).map_err(|_| Era1Error::Export {
            number: self.start.unwrap_or_default() + self.offsets.len() as u64,
            reason: format!("an entry of {} bytes does not fit e2store's 32-bit length", data.len()),
        })?;
        let mut head = [0u8; 8];
        head[..2].copy_from_slice(&typ);
        head[2..6].copy_from_slice(&len.to_le_bytes());
        self.out.write_all(&head).map_err(io)?;
        self.out.write_all(data).map_err(io)?;
        self.written += 8 + data.len() as u64;
        Ok(())
    }

    fn snapped(&mut self, typ: [u8; 2], raw: &[u8]) -> Result<(), Era1Error> {
        let mut enc = snap::write::FrameEncoder::new(Vec::with_capacity(raw.len() / 2 + 64));
        let io = |source| Era1Error::Io { path: self.path.clone(), source };
        enc.write_all(raw).map_err(io)?;
        let data = enc.into_inner().map_err(|e| Era1Error::Io { path: self.path.clone(), source: e.into_error() })?;
        self.entry(typ, &data)
    }

    /// Appends a block; it must follow the previous one and carry its total difficulty.
    pub fn add(&mut self, block: &Era1Block) -> Result<(), Era1Error> {
        let number = block.number();
        let td = block.extra.total_difficulty.ok_or_else(|| Era1Error::Export {
            number,
            reason: "the store has no total difficulty for it (only blocks imported from era1 carry one)".into(),
        })?;
        match self.start {
            None => self.start = Some(number),
            Some(s) if s + self.offsets.len() as u64 != number => {
                return Err(Era1Error::Export {
                    number,
                    reason: format!("does not follow block {}", s + self.offsets.len() as u64 - 1),
                });
            }
            Some(_) => {}
        }
        if self.offsets.len() == MAX_BLOCKS {
            return Err(Era1Error::Export {
                number,
                reason: format!("an era1 file holds at most {MAX_BLOCKS} blocks"),
            });
        }
        self.offsets.push(self.written);
        self.records.push((block.header.hash, td));
        self.snapped(types::HEADER, &block.header.rlp())?;
        let body = BlockBody::<TxEnvelope, Header> {
            transactions: block.transactions.iter().map(|t| t.0.clone()).collect(),
            ommers: block.extra.ommers.clone(),
            withdrawals: block.extra.withdrawals.clone(),
        };
        self.snapped(types::BODY, &alloy_rlp::encode(&body))?;
        let receipts: Vec<ReceiptEnvelope> = block.receipts.iter().map(EthReceipt::to_envelope).collect();
        self.snapped(types::RECEIPTS, &alloy_rlp::encode(&receipts))?;
        self.entry(types::TOTAL_DIFFICULTY, &td.to_le_bytes::<32>())
    }

    /// Blocks added so far.
    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    /// Whether no block was added.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Writes the accumulator and the block index, syncs the file, and returns the summary.
    pub fn finish(mut self) -> Result<Era1Summary, Era1Error> {
        let start = self.start.ok_or_else(|| Era1Error::Export { number: 0, reason: "no blocks to write".into() })?;
        let root = accumulator_root(&self.records);
        self.entry(types::ACCUMULATOR, &root.0)?;
        let base = self.written as i64;
        let count = self.offsets.len();
        let mut index = Vec::with_capacity(16 + 8 * count);
        index.extend_from_slice(&start.to_le_bytes());
        for at in &self.offsets {
            index.extend_from_slice(&((*at as i64 - base) as u64).to_le_bytes());
        }
        index.extend_from_slice(&(count as u64).to_le_bytes());
        self.entry(types::BLOCK_INDEX, &index)?;
        let io = |source| Era1Error::Io { path: self.path.clone(), source };
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_all().map_err(io)?;
        Ok(Era1Summary { start, count: count as u64, accumulator: root, bytes: self.written })
    }
}

/// The conventional file name: `<network>-<epoch, 5 digits>-<first 8 hex digits of the root>.era1`.
pub fn file_name(network: &str, start: u64, root: B256) -> String {
    format!("{network}-{:05}-{}.era1", start / MAX_BLOCKS as u64, &alloy_primitives::hex::encode(root)[..8])
}

/// What a conventional file name ([`file_name`]) says: the network, the epoch and the root's
/// first four bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileName {
    /// The network.
    pub network: String,
    /// The epoch (the first block divided by 8,192).
    pub epoch: u64,
    /// The first four bytes of the accumulator root.
    pub root_prefix: [u8; 4],
}

impl FileName {
    /// Parses the last component of `path`; `None` if it does not follow the convention.
    pub fn parse(path: &Path) -> Option<FileName> {
        let name = path.file_name()?.to_str()?.strip_suffix(".era1")?;
        let mut parts = name.rsplitn(3, '-');
        let (hex, epoch, network) = (parts.next()?, parts.next()?, parts.next()?);
        if network.is_empty() || epoch.len() < 5 || !epoch.bytes().all(|b| b.is_ascii_digit()) || hex.len() != 8 {
            return None;
        }
        let mut root_prefix = [0u8; 4];
        alloy_primitives::hex::decode_to_slice(hex, &mut root_prefix).ok()?;
        Some(FileName { network: network.to_owned(), epoch: epoch.parse().ok()?, root_prefix })
    }

    /// Checks the name against the file's verified contents.
    pub fn check(&self, path: &Path, summary: &Era1Summary) -> Result<(), Era1Error> {
        let epoch = summary.start / MAX_BLOCKS as u64;
        let reason = if self.epoch != epoch {
            format!("the name says epoch {}, the file's first block {} is in epoch {epoch}", self.epoch, summary.start)
        } else if summary.accumulator[..4] != self.root_prefix {
            format!(
                "the name says an accumulator root starting {}, the file's is {}",
                alloy_primitives::hex::encode(self.root_prefix),
                summary.accumulator
            )
        } else {
            return Ok(());
        };
        Err(Era1Error::Name { path: path.to_owned(), reason })
    }
}
