//! Reading a segment back whole for `archive verify`: its manifest, BLAKE3 of both objects, the
//! footer, index and blooms, every record, and the hash table's pointers.

use super::{SegmentTier, format, keys, seg_key};
use crate::error::HistoryError;
use crate::{Kind, TierReport, VerifyItem};

impl SegmentTier {
    /// Reads segment `k` whole and checks it against its manifest, calling `item` for each
    /// record.
    pub(super) fn verify_segment(
        &self,
        kind: Kind,
        k: u64,
        expect: (u64, u64),
        report: &mut TierReport,
        item: &mut VerifyItem<'_>,
    ) -> Result<(), HistoryError> {
        let m = match self.manifest(kind, k) {
            Ok(m) => m,
            Err(e @ HistoryError::Unavailable { .. }) => return Err(e),
            Err(e) => {
                report.problems.push(e.to_string());
                return Ok(());
            }
        };
        let key = seg_key(kind, k, "seg");
        let last = m.count.checked_sub(1).and_then(|c| m.first.checked_add(c));
        if (Some(m.first), last) != (Some(expect.0), Some(expect.1)) {
            report
                .problems
                .push(format!("{key}: holds {}..+{}, expected {}..={}", m.first, m.count, expect.0, expect.1));
        }
        let seg = self.get_all(key.clone(), m.size)?;
        report.units += 1;
        report.bytes += seg.len() as u64;
        if blake3::hash(&seg).to_hex().as_str() != m.blake3 {
            report.problems.push(format!("{key}: BLAKE3 differs from its manifest"));
            return Ok(());
        }
        let size = seg.len() as u64;
        let checked = format::footer(&seg[seg.len().saturating_sub(format::FOOTER as usize)..], size).and_then(|f| {
            let index = format::index(&seg[f.index_offset as usize..(size - format::FOOTER) as usize], &f)?;
            format::blooms(&seg[f.blooms_offset as usize..f.index_offset as usize], &f)?;
            Ok((f, index))
        });
        let (footer, index) = match checked {
            Ok(x) => x,
            Err(r) => {
                report.problems.push(format!("{key}: {r}"));
                return Ok(());
            }
        };
        for (i, e) in index.iter().enumerate() {
            let n = footer.first + i as u64;
            match format::record(&seg[e.offset as usize..(e.offset + u64::from(e.len)) as usize], e) {
                Ok(record) => {
                    report.items += 1;
                    if let Err(problem) = item(kind, n, &record) {
                        report.problems.push(format!("{kind} {n}: {problem}"));
                    }
                }
                Err(r) => report.problems.push(format!("{key} item {n}: {r}")),
            }
        }
        let tkey = seg_key(kind, k, "keys");
        let table = self.get_all(tkey.clone(), m.keys_size)?;
        report.bytes += table.len() as u64;
        if blake3::hash(&table).to_hex().as_str() != m.keys_blake3 {
            report.problems.push(format!("{tkey}: BLAKE3 differs from its manifest"));
        } else {
            match keys::verify(&table) {
                Ok(h) => {
                    for (_, record, _) in keys::entries(&table, &h) {
                        if u64::from(record) >= m.count {
                            report.problems.push(format!("{tkey}: an entry points past the segment"));
                            break;
                        }
                    }
                }
                Err(r) => report.problems.push(format!("{tkey}: {r}")),
            }
        }
        Ok(())
    }
}
