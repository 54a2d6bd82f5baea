//! Blocks in the Portal network's history formats (SSZ containers around RLP), the form of the
//! mainnet test data: `BlockHeaderWithProof` (the header's RLP and an accumulator proof),
//! `BlockBodyLegacy` (the transactions' EIP-2718 encodings and the ommers' RLP list) and the
//! receipts list (EIP-2718 receipt encodings). Every offset is bounds-checked: bad input is an
//! error, never a panic.

use alloy_consensus::{Header, ReceiptEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_rlp::Decodable;

use crate::{EthHeader, EthReceipt, EthTx};

/// Portal data that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("portal {what}: {reason}")]
pub struct PortalError {
    /// Which structure.
    pub what: &'static str,
    /// Why.
    pub reason: String,
}

fn err(what: &'static str, reason: impl Into<String>) -> PortalError {
    PortalError { what, reason: reason.into() }
}

fn u32_at(bytes: &[u8], at: usize, what: &'static str) -> Result<usize, PortalError> {
    let b = bytes.get(at..at + 4).ok_or_else(|| err(what, format!("no offset at byte {at}")))?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
}

/// The variable-size fields of an SSZ container with `fields` of them (and no fixed ones).
fn container<'a>(bytes: &'a [u8], fields: usize, what: &'static str) -> Result<Vec<&'a [u8]>, PortalError> {
    let mut offsets: Vec<usize> = (0..fields).map(|i| u32_at(bytes, 4 * i, what)).collect::<Result<_, _>>()?;
    if offsets.first() != Some(&(4 * fields)) {
        return Err(err(what, "the first offset does not follow the offset table"));
    }
    offsets.push(bytes.len());
    offsets
        .windows(2)
        .map(|w| bytes.get(w[0]..w[1]).ok_or_else(|| err(what, format!("field bounds {}..{} are invalid", w[0], w[1]))))
        .collect()
}

/// The items of an SSZ list of variable-size items.
fn list<'a>(bytes: &'a [u8], what: &'static str) -> Result<Vec<&'a [u8]>, PortalError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let first = u32_at(bytes, 0, what)?;
    if first % 4 != 0 || first == 0 || first > bytes.len() {
        return Err(err(what, format!("first offset {first} is not a valid table length")));
    }
    let count = first / 4;
    let mut offsets: Vec<usize> = (0..count).map(|i| u32_at(bytes, 4 * i, what)).collect::<Result<_, _>>()?;
    offsets.push(bytes.len());
    offsets
        .windows(2)
        .map(|w| bytes.get(w[0]..w[1]).ok_or_else(|| err(what, format!("item bounds {}..{} are invalid", w[0], w[1]))))
        .collect()
}

/// The header of a `BlockHeaderWithProof` (the proof is not checked here).
pub fn header_with_proof(bytes: &[u8]) -> Result<EthHeader, PortalError> {
    let fields = container(bytes, 2, "header with proof")?;
    EthHeader::decode(fields[0]).map_err(|e| err("header", e))
}

/// The header of a `BlockHeaderWithProof` and its pre-merge accumulator proof: the block's
/// total difficulty, 13 siblings and the epoch's length (see
/// [`crate::accumulator::epoch_root_from_proof`]).
pub fn header_and_proof(bytes: &[u8]) -> Result<(EthHeader, [alloy_primitives::B256; 15]), PortalError> {
    let fields = container(bytes, 2, "header with proof")?;
    let header = EthHeader::decode(fields[0]).map_err(|e| err("header", e))?;
    let proof = fields[1];
    if proof.len() != 1 + 15 * 32 || proof[0] != 1 {
        return Err(err("header proof", format!("{} bytes, not a pre-merge accumulator proof", proof.len())));
    }
    let mut out = [alloy_primitives::B256::ZERO; 15];
    for (i, chunk) in proof[1..].chunks_exact(32).enumerate() {
        out[i] = alloy_primitives::B256::from_slice(chunk);
    }
    Ok((header, out))
}

/// The transactions and ommers of a `BlockBodyLegacy`.
pub fn body_legacy(bytes: &[u8]) -> Result<(Vec<EthTx>, Vec<Header>), PortalError> {
    let fields = container(bytes, 2, "block body")?;
    let txs = list(fields[0], "transactions")?
        .into_iter()
        .enumerate()
        .map(|(i, raw)| EthTx::decode(raw).map_err(|e| err("transactions", format!("transaction {i}: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let mut rest = fields[1];
    let ommers = Vec::<Header>::decode(&mut rest).map_err(|e| err("ommers", e.to_string()))?;
    if !rest.is_empty() {
        return Err(err("ommers", format!("{} trailing bytes", rest.len())));
    }
    Ok((txs, ommers))
}

/// The receipts of a block (an SSZ list of EIP-2718 receipt encodings).
pub fn receipts(bytes: &[u8]) -> Result<Vec<EthReceipt>, PortalError> {
    list(bytes, "receipts")?
        .into_iter()
        .enumerate()
        .map(|(i, mut raw)| {
            let envelope =
                ReceiptEnvelope::decode_2718(&mut raw).map_err(|e| err("receipts", format!("receipt {i}: {e}")))?;
            if !raw.is_empty() {
                return Err(err("receipts", format!("receipt {i}: {} trailing bytes", raw.len())));
            }
            Ok(EthReceipt::from_envelope(envelope))
        })
        .collect()
}
