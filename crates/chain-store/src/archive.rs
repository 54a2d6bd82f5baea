//! The chain's side of the history tier: each canonical block as one self-contained record,
//! built from the values the store already keeps, and read back without the store.
//!
//! A record is the block's stored values side by side, so archiving re-encodes nothing and a
//! reader decodes an archived transaction exactly as it decodes a local one:
//!
//! ```text
//! format u8 (1), then five parts, each u32 LE length + bytes:
//!   header   (the `headers` value)        body      (the `bodies` value)
//!   txs      (the `transactions` value)   receipts  (the `receipts` value)
//!   senders  (the `senders` value; empty when the transactions carry their senders)
//! ```
//!
//! The archive itself (Bigtable, segments) lives above the domain crates; it stores the record
//! with the block's bloom and transaction hashes beside it.

use storage_api::codec::CodecError;
use storage_api::{Direction, KeyCodec, KvReader, ReadExt, Table, ValueCodec};

use crate::ChainStore;
use crate::bloom::{BLOOM_BITS, Bloom, BloomBits};
use crate::error::ChainError;
use crate::insert::validate;
use crate::logs::{LogFilter, LogMatchOf, push_matches};
use crate::model::{Block, BlockHeader, BlockRef, ChainModel, NewBlock, Transaction, hex};
use crate::packed::{item_from_bytes, unpack_bytes};
use crate::schema::{
    BloomBitsTable, Bodies, BodyRecord, Fixed, Headers, LogBloom, Receipts, Senders, Stored, Transactions, block_key,
};

/// The record format this build writes and reads.
pub const RECORD_FORMAT: u8 = 1;

/// A canonical block as the history tier archives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedBlock<H> {
    /// Its height.
    pub number: u64,
    /// Its hash.
    pub hash: H,
    /// The record (see the module documentation).
    pub record: Vec<u8>,
    /// Its logs bloom, as stored.
    pub bloom: Bloom,
    /// Its transactions' hashes, in order.
    pub tx_hashes: Vec<H>,
}

impl<S: KvReader, M: ChainModel> ChainStore<S, M> {
    /// The canonical block at `number` as the archive keeps it (read from the stored values;
    /// `Pruned` below the pruning boundary, `AboveHead` past the head).
    pub fn archive_block(&self, number: u64) -> Result<ArchivedBlock<M::Hash>, ChainError> {
        let head = self.head().ok_or(ChainError::NotInitialized)?;
        if number > head.number {
            return Err(ChainError::AboveHead { number, head: head.number });
        }
        let at = self.canonical_ref(number)?;
        let hash = at.hash;
        let key = block_key::<M>(&at).to_key_bytes();
        let raw = |table: &'static str, key: &[u8]| self.store.get_raw_with(table, key, <[u8]>::to_vec);
        let header = raw(Headers::<M>::NAME, Fixed(hash).to_key_bytes().as_slice())?
            .ok_or_else(|| self.missing::<Headers<M>>(number, &hash))?;
        let mut parts = vec![header];
        for table in [Bodies::<M>::NAME, Transactions::<M>::NAME, Receipts::<M>::NAME] {
            match raw(table, &key)? {
                Some(v) => parts.push(v),
                None if number < self.pointers().pruned_below => {
                    return Err(ChainError::Pruned { what: table, number, pruned_below: self.pointers().pruned_below });
                }
                None => return Err(ChainError::Missing { table, block: hex(hash.as_ref()), number }),
            }
        }
        parts.push(raw(Senders::<M>::NAME, &key)?.unwrap_or_default());
        let bloom =
            self.store.get::<LogBloom<M>>(&number)?.ok_or_else(|| self.missing::<LogBloom<M>>(number, &hash))?;
        let tx_hashes = self.tx_entries(&at)?.into_iter().map(|e| e.hash).collect();
        let mut record = vec![RECORD_FORMAT];
        for p in &parts {
            record.extend_from_slice(&(p.len() as u32).to_le_bytes());
            record.extend_from_slice(p);
        }
        Ok(ArchivedBlock { number, hash, record, bloom, tx_hashes })
    }

    /// Every bloom-bit vector of `section` (one per bloom bit, in bit order) if the section is
    /// built, for archiving it with its last block.
    pub fn section_vectors(&self, section: u64) -> Result<Option<Vec<BloomBits>>, ChainError> {
        if section >= self.pointers().bloom_sections {
            return Ok(None);
        }
        let mut out = vec![BloomBits::zero(); BLOOM_BITS];
        let range = (section, 0u16)..=(section, (BLOOM_BITS - 1) as u16);
        for e in self.store.iter::<BloomBitsTable<M>>(range, Direction::Forward)? {
            let ((_, bit), v) = e?;
            out[bit as usize] = v;
        }
        Ok(Some(out))
    }
}

/// A block decoded from its archived record (see the module documentation).
pub struct Unarchived<M: ChainModel> {
    number: u64,
    header: M::Header,
    body: BodyRecord<M>,
    txs: Vec<u8>,
    receipts: Vec<u8>,
    senders: Vec<u8>,
}

impl<M: ChainModel> std::fmt::Debug for Unarchived<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unarchived").field("number", &self.number).field("header", &self.header).finish()
    }
}

fn bad(number: u64, reason: impl Into<String>) -> ChainError {
    ChainError::BadRecord { number, reason: reason.into() }
}

impl<M: ChainModel> Unarchived<M> {
    /// Decodes the record of block `number`, checking its format, its parts and that its
    /// header is block `number`'s (and, if `hash` is given, that block's).
    pub fn decode(number: u64, record: &[u8], hash: Option<&M::Hash>) -> Result<Self, ChainError> {
        let (&format, mut rest) = record.split_first().ok_or_else(|| bad(number, "empty record"))?;
        if format != RECORD_FORMAT {
            return Err(bad(number, format!("record format {format}; this build reads {RECORD_FORMAT}")));
        }
        let mut parts = Vec::with_capacity(5);
        for _ in 0..5 {
            let len = rest.get(..4).ok_or_else(|| bad(number, "record cut short"))?;
            let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
            let part = rest.get(4..4 + len).ok_or_else(|| bad(number, "record cut short"))?;
            parts.push(part.to_vec());
            rest = &rest[4 + len..];
        }
        if !rest.is_empty() {
            return Err(bad(number, "trailing bytes after the record"));
        }
        let decode = |e: CodecError| bad(number, e.to_string());
        let header = <Stored<M::Header> as ValueCodec>::decode_value(&parts[0]).map_err(decode)?.0;
        if header.number() != number {
            return Err(bad(number, format!("holds block {} instead", header.number())));
        }
        if let Some(h) = hash
            && header.hash() != *h
        {
            return Err(bad(
                number,
                format!("holds block {} instead of {}", hex(header.hash().as_ref()), hex(h.as_ref())),
            ));
        }
        let body = BodyRecord::<M>::decode_value(&parts[1]).map_err(decode)?;
        let mut parts = parts.into_iter().skip(2);
        let (txs, receipts, senders) =
            (parts.next().unwrap_or_default(), parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
        Ok(Unarchived { number, header, body, txs, receipts, senders })
    }

    /// The header.
    pub fn header(&self) -> &M::Header {
        &self.header
    }

    /// The block's hash and height.
    pub fn block_ref(&self) -> BlockRef<M::Hash> {
        BlockRef { number: self.number, hash: self.header.hash() }
    }

    fn decode_err(&self, e: CodecError) -> ChainError {
        bad(self.number, e.to_string())
    }

    /// The whole block.
    pub fn block(&self) -> Result<Block<M>, ChainError> {
        let transactions: Vec<M::Tx> = unpack_bytes(&self.txs).map_err(|e| self.decode_err(e))?;
        if transactions.len() != self.body.tx_count as usize {
            return Err(bad(self.number, "transaction count differs from the body record"));
        }
        Ok(Block { header: self.header.clone(), transactions, extra: self.body.extra.clone() })
    }

    /// The receipts, in order.
    pub fn receipts(&self) -> Result<Vec<M::Receipt>, ChainError> {
        unpack_bytes(&self.receipts).map_err(|e| self.decode_err(e))
    }

    /// Transaction `index` (only it is decoded).
    pub fn transaction(&self, index: u32) -> Result<Option<M::Tx>, ChainError> {
        item_from_bytes(&self.txs, index as usize).map_err(|e| self.decode_err(e))
    }

    /// The receipt of transaction `index`.
    pub fn receipt(&self, index: u32) -> Result<Option<M::Receipt>, ChainError> {
        item_from_bytes(&self.receipts, index as usize).map_err(|e| self.decode_err(e))
    }

    /// The sender of transaction `index` (carried by the transaction, or as stored).
    pub fn sender(&self, index: u32) -> Result<Option<M::Address>, ChainError> {
        let Some(tx) = self.transaction(index)? else { return Ok(None) };
        if let Some(s) = tx.sender() {
            return Ok(Some(s));
        }
        item_from_bytes(&self.senders, index as usize).map_err(|e| self.decode_err(e))
    }

    /// Every check an insert makes (the model's roots and hash, receipt and sender counts, the
    /// header's bloom), plus the archived bloom against the receipts.
    pub fn verify(&self, archived_bloom: Option<&Bloom>) -> Result<(), ChainError> {
        let block = self.block()?;
        let receipts = self.receipts()?;
        let senders = if self.senders.is_empty() {
            Vec::new()
        } else {
            unpack_bytes(&self.senders).map_err(|e| self.decode_err(e))?
        };
        let new = NewBlock { block, receipts, senders, state: Vec::new() };
        let checks = validate(&new)?;
        if let Some(b) = archived_bloom
            && *b != checks.bloom
        {
            return Err(bad(self.number, "the archived bloom differs from the receipts' bloom"));
        }
        Ok(())
    }

    /// Appends the logs of this block that match `filter` (exactly), with their positions.
    pub fn match_logs(
        &self,
        filter: &LogFilter<M::Address, M::Hash>,
        out: &mut Vec<LogMatchOf<M>>,
    ) -> Result<(), ChainError> {
        let receipts = self.receipts()?;
        let tx_hash = |i: u32| {
            let tx = self.transaction(i)?.ok_or_else(|| bad(self.number, "fewer transactions than receipts"))?;
            Ok(tx.hash())
        };
        push_matches::<M>(self.block_ref(), &receipts, tx_hash, filter, out)
    }
}
