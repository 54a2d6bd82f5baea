//! The segment file: N records, each compressed on its own so one is read with one ranged
//! request, then (chain segments) the blooms side by side so a range of them is one request,
//! the index, and a fixed footer.
//!
//! ```text
//! frame 0 … frame N-1            each cell::pack(record)
//! blooms                         N × bloom_len bytes (0 for DAG segments)
//! index                          N × (offset u64 LE, length u32 LE, BLAKE3 of the frame, 16 bytes)
//! footer (80 bytes)              magic "NSHSEG01", kind u8, 3 × 0, count u32 LE, first u64 LE,
//!                                bloom_len u32 LE, blooms offset u64 LE, index offset u64 LE,
//!                                BLAKE3 of the index (16 bytes), BLAKE3 of the blooms (16),
//!                                4 × 0
//! ```
//!
//! Every frame is checked against its index entry before it is decompressed, the index and the
//! blooms against the footer before they are used; the whole file's BLAKE3 is in the segment's
//! manifest.

use crate::{Kind, cell};

/// The footer's magic (format 1).
pub(crate) const MAGIC: &[u8; 8] = b"NSHSEG01";
/// Bytes of the footer.
pub(crate) const FOOTER: u64 = 80;
/// Bytes of an index entry.
const ENTRY: usize = 28;
/// Bytes of the truncated BLAKE3 checks.
pub(crate) const CHECK: usize = 16;

/// The first 16 bytes of `bytes`' BLAKE3.
pub(crate) fn check(bytes: &[u8]) -> [u8; CHECK] {
    let mut out = [0; CHECK];
    out.copy_from_slice(&blake3::hash(bytes).as_bytes()[..CHECK]);
    out
}

/// A segment's footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Footer {
    pub(crate) kind: Kind,
    pub(crate) count: u32,
    pub(crate) first: u64,
    pub(crate) bloom_len: u32,
    pub(crate) blooms_offset: u64,
    pub(crate) index_offset: u64,
    pub(crate) index_check: [u8; CHECK],
    pub(crate) blooms_check: [u8; CHECK],
}

/// Where one record's frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) check: [u8; CHECK],
}

/// Builds a segment of `records` (heights or sequences from `first`), with `blooms` (one per
/// record, all `bloom_len` long) for chain segments.
pub(crate) fn build(kind: Kind, first: u64, records: &[&[u8]], blooms: &[&[u8]], level: i32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut index = Vec::with_capacity(records.len() * ENTRY);
    for record in records {
        let frame = cell::pack(record, level);
        index.extend_from_slice(&(out.len() as u64).to_le_bytes());
        index.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        index.extend_from_slice(&check(&frame));
        out.extend_from_slice(&frame);
    }
    let blooms_offset = out.len() as u64;
    let bloom_len = blooms.first().map_or(0, |b| b.len()) as u32;
    for b in blooms {
        out.extend_from_slice(b);
    }
    let blooms_check = check(&out[blooms_offset as usize..]);
    let index_offset = out.len() as u64;
    let index_check = check(&index);
    out.extend_from_slice(&index);
    out.extend_from_slice(MAGIC);
    out.push(kind_byte(kind));
    out.extend_from_slice(&[0; 3]);
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    out.extend_from_slice(&first.to_le_bytes());
    out.extend_from_slice(&bloom_len.to_le_bytes());
    out.extend_from_slice(&blooms_offset.to_le_bytes());
    out.extend_from_slice(&index_offset.to_le_bytes());
    out.extend_from_slice(&index_check);
    out.extend_from_slice(&blooms_check);
    out.extend_from_slice(&[0; 4]);
    out
}

fn kind_byte(kind: Kind) -> u8 {
    match kind {
        Kind::Chain => 1,
        Kind::Dag => 2,
    }
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses and checks a footer (the last [`FOOTER`] bytes of a segment of `size` bytes).
pub(crate) fn footer(bytes: &[u8], size: u64) -> Result<Footer, String> {
    if bytes.len() as u64 != FOOTER || size < FOOTER {
        return Err(format!("footer of {} bytes in a file of {size}", bytes.len()));
    }
    if &bytes[..8] != MAGIC {
        return Err("not a segment file (bad magic; a newer format?)".into());
    }
    let kind = match bytes[8] {
        1 => Kind::Chain,
        2 => Kind::Dag,
        other => return Err(format!("unknown kind {other}")),
    };
    let f = Footer {
        kind,
        count: u32_at(bytes, 12),
        first: u64_at(bytes, 16),
        bloom_len: u32_at(bytes, 24),
        blooms_offset: u64_at(bytes, 28),
        index_offset: u64_at(bytes, 36),
        index_check: bytes[44..60].try_into().unwrap_or_default(),
        blooms_check: bytes[60..76].try_into().unwrap_or_default(),
    };
    let index_len = u64::from(f.count) * ENTRY as u64;
    let blooms_len = u64::from(f.count) * u64::from(f.bloom_len);
    if f.blooms_offset.checked_add(blooms_len) != Some(f.index_offset)
        || f.index_offset.checked_add(index_len) != Some(size - FOOTER)
    {
        return Err("footer offsets do not add up to the file's size".into());
    }
    Ok(f)
}

/// Parses and checks the index (`bytes` = the index area of the segment `f` describes).
pub(crate) fn index(bytes: &[u8], f: &Footer) -> Result<Vec<Entry>, String> {
    if bytes.len() != f.count as usize * ENTRY {
        return Err(format!("index of {} bytes for {} records", bytes.len(), f.count));
    }
    if check(bytes) != f.index_check {
        return Err("index does not match its checksum in the footer".into());
    }
    let mut end = 0u64;
    let mut out = Vec::with_capacity(f.count as usize);
    for e in bytes.chunks_exact(ENTRY) {
        let entry = Entry { offset: u64_at(e, 0), len: u32_at(e, 8), check: e[12..28].try_into().unwrap_or_default() };
        if entry.offset != end {
            return Err("index entries are not contiguous".into());
        }
        end = entry.offset + u64::from(entry.len);
        out.push(entry);
    }
    if end != f.blooms_offset {
        return Err("frames do not end where the blooms begin".into());
    }
    Ok(out)
}

/// The blooms area (`bytes`) checked against the footer, split into blooms.
pub(crate) fn blooms<'a>(bytes: &'a [u8], f: &Footer) -> Result<Vec<&'a [u8]>, String> {
    if bytes.len() as u64 != u64::from(f.count) * u64::from(f.bloom_len) || check(bytes) != f.blooms_check {
        return Err("blooms do not match their checksum in the footer".into());
    }
    Ok(if f.bloom_len == 0 { Vec::new() } else { bytes.chunks_exact(f.bloom_len as usize).collect() })
}

/// The record in `frame`, checked against its index entry.
pub(crate) fn record(frame: &[u8], entry: &Entry) -> Result<Vec<u8>, String> {
    if frame.len() != entry.len as usize || check(frame) != entry.check {
        return Err("frame does not match its checksum in the index".into());
    }
    cell::unpack(frame)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_and_reads_back_every_record_and_bloom() {
        let records: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i; 100 + i as usize]).collect();
        let blooms: Vec<Vec<u8>> = (0..10u8).map(|i| vec![i ^ 0xaa; 256]).collect();
        let r: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        let b: Vec<&[u8]> = blooms.iter().map(Vec::as_slice).collect();
        let seg = build(Kind::Chain, 4096, &r, &b, 3);
        let size = seg.len() as u64;
        let tail = |s: &[u8]| s[s.len() - FOOTER as usize..].to_vec();
        let f = footer(&tail(&seg), size).unwrap();
        assert_eq!((f.kind, f.count, f.first, f.bloom_len), (Kind::Chain, 10, 4096, 256));
        let idx = index(&seg[f.index_offset as usize..(size - FOOTER) as usize], &f).unwrap();
        let stored = self::blooms(&seg[f.blooms_offset as usize..f.index_offset as usize], &f).unwrap();
        for (i, e) in idx.iter().enumerate() {
            let frame = &seg[e.offset as usize..(e.offset + u64::from(e.len)) as usize];
            assert_eq!(record(frame, e).unwrap(), records[i]);
            assert_eq!(stored[i], blooms[i].as_slice());
        }
        // Damage anywhere is caught by the footer, the index check or a frame check.
        for i in (0..seg.len()).step_by(7) {
            let mut bad = seg.clone();
            bad[i] ^= 0x01;
            let caught = footer(&tail(&bad), size)
                .and_then(|f| {
                    self::blooms(&bad[f.blooms_offset as usize..f.index_offset as usize], &f)?;
                    let idx = index(&bad[f.index_offset as usize..(size - FOOTER) as usize], &f)?;
                    for e in &idx {
                        record(&bad[e.offset as usize..(e.offset + u64::from(e.len)) as usize], e)?;
                    }
                    Ok(())
                })
                .is_err();
            let footer_at = seg.len() - FOOTER as usize;
            let in_padding = i >= seg.len() - 4 || (footer_at + 9..footer_at + 12).contains(&i);
            // The first height is checked against the segment's manifest, not here.
            let in_first = (footer_at + 16..footer_at + 24).contains(&i);
            assert!(caught || in_padding || in_first, "damage at {i} (footer at {footer_at}) went unnoticed");
        }
        let dag = build(Kind::Dag, 0, &r, &[], 3);
        let f = footer(&tail(&dag), dag.len() as u64).unwrap();
        assert_eq!((f.kind, f.bloom_len, f.blooms_offset), (Kind::Dag, 0, f.index_offset));
        assert!(self::blooms(&[], &f).unwrap().is_empty());
        assert!(footer(&tail(&dag), dag.len() as u64 + 1).is_err());
    }
}
