//! A segment's hash table: which record (and which position in it) a transaction or vertex hash
//! is, for readers without a local index. Sorted fixed-width entries in groups, a fence key per
//! group, and a Bloom filter over all keys in front, so a reader keeps only the filters of every
//! segment in memory and reads one group of one segment per lookup.
//!
//! ```text
//! header (32 bytes)   magic "NSHKEY01", key_len u32 LE, count u64 LE, group u32 LE,
//!                     filter bytes u32 LE, BLAKE3 of everything after the header (4 bytes)
//! filter              filter bytes (FILTER_BITS_PER_KEY bits a key, FILTER_PROBES probes)
//! fences              ⌈count / group⌉ × key_len: the first key of each group
//! entries             count × (key, record u32 LE, position u32 LE), sorted by key
//! ```

use crate::segments::format::check;

const MAGIC: &[u8; 8] = b"NSHKEY01";
/// Bytes of the header.
pub(crate) const HEADER: usize = 32;
/// Entries per group (one ranged read per lookup).
const GROUP: usize = 128;
/// The most bytes of filter and fences a reader keeps of one table (a segment of a million
/// transactions needs about 1.5 MiB); a header asking for more is refused unread.
pub(crate) const MAX_HEAD_BYTES: u64 = 64 << 20;
/// The largest group a reader reads at once.
const MAX_GROUP: usize = 1 << 16;
const FILTER_BITS_PER_KEY: usize = 10;
const FILTER_PROBES: u64 = 7;

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) key_len: usize,
    pub(crate) count: u64,
    pub(crate) group: usize,
    pub(crate) filter_len: usize,
    check: [u8; 4],
}

impl Header {
    fn entry_len(&self) -> usize {
        self.key_len + 8
    }

    fn groups(&self) -> u64 {
        self.count.div_ceil(self.group as u64)
    }

    /// Where the fences start.
    pub(crate) fn fences_at(&self) -> u64 {
        (HEADER + self.filter_len) as u64
    }

    /// Bytes of the fences.
    pub(crate) fn fences_len(&self) -> u64 {
        self.groups() * self.key_len as u64
    }

    /// The byte range of group `g`'s entries.
    pub(crate) fn group_range(&self, g: u64) -> std::ops::Range<u64> {
        let start = self.fences_at() + self.fences_len() + g * (self.group * self.entry_len()) as u64;
        let n = (self.count - g * self.group as u64).min(self.group as u64);
        start..start + n * self.entry_len() as u64
    }

    /// The object's size.
    pub(crate) fn size(&self) -> u64 {
        self.fences_at() + self.fences_len() + self.count * self.entry_len() as u64
    }
}

/// Builds the table of `entries` (key, record, position); keys all `key_len` long.
pub(crate) fn build(mut entries: Vec<(Vec<u8>, u32, u32)>, key_len: usize) -> Vec<u8> {
    entries.sort();
    entries.dedup_by(|a, b| a.0 == b.0);
    let filter_len = (entries.len() * FILTER_BITS_PER_KEY).div_ceil(8).max(8);
    let mut filter = vec![0u8; filter_len];
    for (k, _, _) in &entries {
        for bit in probes(k, filter_len as u64 * 8) {
            filter[(bit / 8) as usize] |= 1 << (bit % 8);
        }
    }
    let mut body = filter;
    for g in entries.chunks(GROUP) {
        body.extend_from_slice(&g[0].0);
    }
    for (k, record, position) in &entries {
        body.extend_from_slice(k);
        body.extend_from_slice(&record.to_le_bytes());
        body.extend_from_slice(&position.to_le_bytes());
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(key_len as u32).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u64).to_le_bytes());
    out.extend_from_slice(&(GROUP as u32).to_le_bytes());
    out.extend_from_slice(&(filter_len as u32).to_le_bytes());
    out.extend_from_slice(&check(&body)[..4]);
    out.extend_from_slice(&body);
    out
}

/// Parses a header (the first [`HEADER`] bytes).
pub(crate) fn header(bytes: &[u8]) -> Result<Header, String> {
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err("not a hash table (bad magic; a newer format?)".into());
    }
    let u32_at = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
    let h = Header {
        key_len: u32_at(8),
        count: u64::from_le_bytes(bytes[12..20].try_into().unwrap_or_default()),
        group: u32_at(20),
        filter_len: u32_at(24),
        check: bytes[28..32].try_into().unwrap_or_default(),
    };
    if h.key_len == 0 || h.key_len > 64 || h.group == 0 || h.group > MAX_GROUP || h.filter_len == 0 {
        return Err("hash table header out of range".into());
    }
    // Records and positions are u32, and nothing a reader keeps may be unbounded: every size
    // the header implies is checked before it is computed anywhere else.
    let head = (HEADER as u64)
        .checked_add(h.filter_len as u64)
        .and_then(|f| f.checked_add(h.count.div_ceil(h.group as u64).checked_mul(h.key_len as u64)?));
    let size = head.and_then(|head| head.checked_add(h.count.checked_mul(h.entry_len() as u64)?));
    if h.count > u64::from(u32::MAX) || head.is_none_or(|head| head > MAX_HEAD_BYTES) || size.is_none() {
        return Err(format!("hash table header out of range ({} keys, {} filter bytes)", h.count, h.filter_len));
    }
    Ok(h)
}

/// Checks a whole table (`bytes`, header included) against its header's checksum.
pub(crate) fn verify(bytes: &[u8]) -> Result<Header, String> {
    let h = header(bytes)?;
    if bytes.len() as u64 != h.size() {
        return Err(format!("hash table of {} bytes, header says {}", bytes.len(), h.size()));
    }
    if check(&bytes[HEADER..])[..4] != h.check {
        return Err("hash table does not match its checksum".into());
    }
    Ok(h)
}

/// Double hashing over the key's first 16 bytes (keys are cryptographic hashes, so their bytes
/// are already uniform; the length is mixed in for shorter keys).
fn probes(key: &[u8], bits: u64) -> impl Iterator<Item = u64> {
    let mut a = [0u8; 16];
    let n = key.len().min(16);
    a[..n].copy_from_slice(&key[..n]);
    let h1 = u64::from_le_bytes(a[..8].try_into().unwrap_or_default()) ^ key.len() as u64;
    let h2 = u64::from_le_bytes(a[8..].try_into().unwrap_or_default()) | 1;
    (0..FILTER_PROBES).map(move |i| h1.wrapping_add(i.wrapping_mul(h2)) % bits)
}

/// Whether `key` may be in the table whose filter is `filter` (no false negatives).
pub(crate) fn may_contain(filter: &[u8], key: &[u8]) -> bool {
    probes(key, filter.len() as u64 * 8).all(|bit| filter[(bit / 8) as usize] & (1 << (bit % 8)) != 0)
}

/// The group that would hold `key`, from the fences.
pub(crate) fn group_of(fences: &[u8], h: &Header, key: &[u8]) -> Option<u64> {
    let keys: Vec<&[u8]> = fences.chunks_exact(h.key_len).collect();
    match keys.partition_point(|f| *f <= key) {
        0 => None,
        g => Some(g as u64 - 1),
    }
}

/// `key`'s (record, position) in a group's entries.
pub(crate) fn find(group: &[u8], h: &Header, key: &[u8]) -> Option<(u32, u32)> {
    let entries: Vec<&[u8]> = group.chunks_exact(h.entry_len()).collect();
    let i = entries.binary_search_by(|e| e[..h.key_len].cmp(key)).ok()?;
    let e = entries[i];
    let at = h.key_len;
    let u = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]);
    Some((u(at), u(at + 4)))
}

/// Every (key, record, position) of a whole table, for verification.
pub(crate) fn entries(bytes: &[u8], h: &Header) -> Vec<(Vec<u8>, u32, u32)> {
    let start = (h.fences_at() + h.fences_len()) as usize;
    bytes[start..]
        .chunks_exact(h.entry_len())
        .map(|e| {
            let u = |o: usize| u32::from_le_bytes([e[o], e[o + 1], e[o + 2], e[o + 3]]);
            (e[..h.key_len].to_vec(), u(h.key_len), u(h.key_len + 4))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A header whose sizes overflow or ask for more than a reader keeps is refused before any
    /// size is computed from it.
    #[test]
    fn headers_out_of_range_are_refused() {
        let header = |key_len: u32, count: u64, group: u32, filter: u32| {
            let mut h = MAGIC.to_vec();
            h.extend_from_slice(&key_len.to_le_bytes());
            h.extend_from_slice(&count.to_le_bytes());
            h.extend_from_slice(&group.to_le_bytes());
            h.extend_from_slice(&filter.to_le_bytes());
            h.extend_from_slice(&[0; 4]);
            h
        };
        assert!(super::header(&header(32, 1_000, 128, 1_250)).is_ok());
        for (key_len, count, group, filter) in [
            (64, u64::MAX, 1, 8),
            (64, u64::from(u32::MAX) + 1, 128, 8),
            (32, 1_000, 128, u32::MAX),
            (32, u64::from(u32::MAX), 1, 8),
            (32, 10, 0, 8),
            (32, 10, 1 << 20, 8),
        ] {
            let err = super::header(&header(key_len, count, group, filter)).unwrap_err();
            assert!(err.contains("out of range"), "{err}");
        }
    }

    #[test]
    fn every_key_is_found_and_others_mostly_filtered_out() {
        let key = |i: u32| blake3::hash(&i.to_le_bytes()).as_bytes().to_vec();
        let entries: Vec<(Vec<u8>, u32, u32)> = (0..1_000u32).map(|i| (key(i), i / 10, i % 10)).collect();
        let table = build(entries.clone(), 32);
        let h = verify(&table).unwrap();
        assert_eq!(h.count, 1_000);
        let filter = &table[HEADER..HEADER + h.filter_len];
        let fences = &table[h.fences_at() as usize..(h.fences_at() + h.fences_len()) as usize];
        for (k, record, position) in &entries {
            assert!(may_contain(filter, k));
            let g = group_of(fences, &h, k).unwrap();
            let r = h.group_range(g);
            assert_eq!(find(&table[r.start as usize..r.end as usize], &h, k), Some((*record, *position)));
        }
        let false_positives = (1_000..11_000u32).filter(|i| may_contain(filter, &key(*i))).count();
        assert!(false_positives < 300, "{false_positives} of 10,000 absent keys pass the filter");
        let absent = key(5_000);
        if let Some(g) = group_of(fences, &h, &absent) {
            let r = h.group_range(g);
            assert_eq!(find(&table[r.start as usize..r.end as usize], &h, &absent), None);
        }
        assert_eq!(entries.len(), super::entries(&table, &h).len());
        let mut bad = table.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(verify(&bad).is_err());
        assert!(verify(&table[..table.len() - 1]).is_err());
        let empty = build(Vec::new(), 32);
        assert_eq!(verify(&empty).unwrap().count, 0);
    }
}
