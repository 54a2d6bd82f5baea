//! Archived records read back without the store: a record is trusted for what it verifies
//! against its header, not for coming from the archive.

mod common;

use chain_store::{BlockHeader, ChainError, Unarchived};
use common::{build, generator, memory};

/// The five length-prefixed parts of a record (see `chain_store::archive`).
fn parts(record: &[u8]) -> (u8, Vec<Vec<u8>>) {
    let mut rest = &record[1..];
    let mut out = Vec::new();
    while !rest.is_empty() {
        let len = u32::from_le_bytes(rest[..4].try_into().unwrap()) as usize;
        out.push(rest[4..4 + len].to_vec());
        rest = &rest[4 + len..];
    }
    (record[0], out)
}

fn record(format: u8, parts: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![format];
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// Whoever can write the archive can pair a block's header with other transactions or
/// receipts: the header (and so the hash a reader checks first) is intact, and only the roots
/// tell. Such a record is refused; the untouched one verifies.
#[test]
fn an_archived_record_is_checked_against_its_header() {
    let fx = memory();
    let blocks = build(&fx, &mut generator(4, 11), 6);
    let (a, b) = (fx.archive_block(3).unwrap(), fx.archive_block(4).unwrap());
    let hash = blocks[3].block.header.hash();
    let good = Unarchived::<chain_store::synthetic::Synthetic>::decode(3, &a.record, Some(&hash)).unwrap();
    good.verify(Some(&a.bloom)).unwrap();

    let (format, mine) = parts(&a.record);
    let (_, theirs) = parts(&b.record);
    assert_eq!(mine.len(), 5, "header, body, transactions, receipts, senders");
    // Another block's transactions (part 2) under this block's header.
    let mut forged = mine.clone();
    forged[2] = theirs[2].clone();
    let forged = record(format, &forged);
    let u = Unarchived::<chain_store::synthetic::Synthetic>::decode(3, &forged, Some(&hash))
        .expect("the header is intact, so the record decodes");
    let err = u.verify(None).unwrap_err();
    assert!(matches!(err, ChainError::BodyMismatch { .. }), "{err}");
    // Receipts are checked by the model against the header (Ethereum: the receipts root and
    // the header's bloom; the synthetic header commits to neither), and against the bloom
    // archived beside them.
    // The archived bloom must be the receipts' bloom.
    good.verify(Some(&b.bloom)).unwrap_err();
}
