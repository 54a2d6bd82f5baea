//! The object-storage archive: immutable segment files through storage-backup's destinations
//! (local directory, S3, GCS, Azure).
//!
//! ```text
//! <kind>/<k>.seg          segment k: items k·N .. (k+1)·N (the first one may start later)
//! <kind>/<k>.keys         its hash table (transaction or vertex hashes → record, position)
//! <kind>/<k>.json         its manifest: first, count, sizes and BLAKE3 of both objects
//! chain/bits/<s>.bits     bloom-bit section s: 2,048 × 16-byte checks, then 2,048 vectors
//! <kind>/watermark.json   the layout (N) and the watermark; written last
//! ```
//!
//! (`<kind>` is `chain` or `dag`, `k` and `s` 12 digits.) A segment is uploaded whole, read back
//! and compared, its manifest written, and only then the watermark; a retry rewrites the same
//! bytes. A point read is one ranged request once the segment's footer and index are cached.

mod format;
mod keys;
mod verify;
mod view;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use storage_backup::{BackupError, Destination, DestinationError, ObjectVersion};

use self::view::{Lru, View};
use crate::config::HistoryConfig;
use crate::error::HistoryError;
use crate::io::Io;
use crate::{
    ArchivedVertex, BitSection, ChainItem, DagItem, HistoryTier, Kind, Mark, Progress, SECTION_BITS, SECTION_SIZE,
    SECTION_VECTOR_BYTES, TierReport, TxPointer, Uploaded, VerifyItem, check_consecutive,
};

/// The watermark object's format.
const WATERMARK_FORMAT: u32 = 1;
/// Largest manifest or watermark object read.
const MAX_SMALL: u64 = 64 << 10;

/// The watermark object: the layout and how far the archive goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Watermark {
    format: u32,
    kind: Kind,
    per_segment: u64,
    mark: Mark,
}

/// A segment's manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Manifest {
    format: u32,
    kind: Kind,
    segment: u64,
    first: u64,
    count: u64,
    size: u64,
    blake3: String,
    keys_size: u64,
    keys_blake3: String,
}

/// The segment archive.
pub struct SegmentTier {
    io: Io,
    dest: Destination,
    shown: String,
    level: i32,
    per_segment: [u64; 2],
    views: Mutex<Lru<(Kind, u64), Arc<View>>>,
    /// Each segment's hash-table header, filter and fences, loaded on the first lookup by hash.
    tables: Mutex<Lru<(Kind, u64), Arc<view::Table>>>,
    marks: Mutex<[Option<Mark>; 2]>,
}

impl std::fmt::Debug for SegmentTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

fn seg_key(kind: Kind, k: u64, ext: &str) -> String {
    format!("{kind}/{k:012}.{ext}")
}

fn bits_key(section: u64) -> String {
    format!("chain/bits/{section:012}.bits")
}

fn watermark_key(kind: Kind) -> String {
    format!("{kind}/watermark.json")
}

impl SegmentTier {
    /// Opens the destination `config.segments.destination` names.
    pub fn open(config: &HistoryConfig) -> Result<Self, HistoryError> {
        let s = &config.segments;
        let dest = Destination::open(&s.destination_config(config.timeout_ms)).map_err(|e| match e {
            BackupError::Destination(d) => match *d {
                DestinationError::Config { message, .. } => {
                    HistoryError::Config(format!("history.segments.destination: {message}"))
                }
                other => HistoryError::Config(other.to_string()),
            },
            other => HistoryError::Config(other.to_string()),
        })?;
        let shown = format!("segments at {}", dest.describe());
        Ok(SegmentTier {
            io: Io::new(Duration::from_millis(config.timeout_ms))?,
            dest,
            shown,
            level: config.zstd_level,
            per_segment: [s.blocks_per_segment, s.vertices_per_segment],
            views: Mutex::new(Lru::new(s.cached_segments)),
            tables: Mutex::new(Lru::new(s.cached_segments.saturating_mul(4))),
            marks: Mutex::new([None, None]),
        })
    }

    fn n(&self, kind: Kind) -> u64 {
        self.per_segment[kind as usize]
    }

    /// Runs `f` with the destination on the archive's runtime; destination failures are mapped
    /// by kind (`failed`).
    fn run<T: Send + 'static, F>(&self, action: &str, f: impl FnOnce(Destination) -> F) -> Result<T, HistoryError>
    where
        F: std::future::Future<Output = Result<T, BackupError>> + Send + 'static,
    {
        let fut = f(self.dest.clone());
        let (shown, act) = (self.shown.clone(), action.to_owned());
        self.io.run(&self.shown, action, async move { fut.await.map_err(|e| failed(&shown, &act, e)) })
    }

    fn get(&self, key: String, range: std::ops::Range<u64>) -> Result<Bytes, HistoryError> {
        self.run("reading", move |d| async move { d.get_range(&key, range).await })
    }

    fn get_all(&self, key: String, max: u64) -> Result<Bytes, HistoryError> {
        self.run("reading", move |d| async move { d.get_bytes(&key, max).await })
    }

    /// Stores `objects` and makes them durable (a local destination fsyncs them).
    fn put(&self, objects: Vec<(String, Bytes)>) -> Result<(), HistoryError> {
        self.run("uploading", move |d| async move {
            let keys: Vec<String> = objects.iter().map(|(k, _)| k.clone()).collect();
            for (key, bytes) in objects {
                d.put_object(&key, bytes).await?;
            }
            d.sync(keys).await
        })
    }

    fn corrupt(&self, what: impl Into<String>, reason: impl Into<String>) -> HistoryError {
        HistoryError::Corrupt { archive: self.shown.clone(), what: what.into(), reason: reason.into() }
    }

    fn cached_mark(&self, kind: Kind) -> Option<Mark> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())[kind as usize].clone()
    }

    fn covered(&self, kind: Kind, n: u64) -> Result<bool, HistoryError> {
        if let Some(m) = self.cached_mark(kind)
            && (m.first..m.next).contains(&n)
        {
            return Ok(true);
        }
        Ok(self.mark(kind)?.is_some_and(|m| (m.first..m.next).contains(&n)))
    }

    /// Segment `k`'s manifest, footer and index (cached).
    fn view(&self, kind: Kind, k: u64) -> Result<Arc<View>, HistoryError> {
        if let Some(v) = self.views.lock().unwrap_or_else(|p| p.into_inner()).get(&(kind, k)) {
            return Ok(v);
        }
        let manifest = self.manifest(kind, k)?;
        let key = seg_key(kind, k, "seg");
        let tail = self.get(key.clone(), manifest.size.saturating_sub(format::FOOTER)..manifest.size)?;
        let footer = format::footer(&tail, manifest.size).map_err(|r| self.corrupt(&key, r))?;
        if footer.kind != kind || footer.first != manifest.first || u64::from(footer.count) != manifest.count {
            return Err(self.corrupt(&key, "footer disagrees with the manifest"));
        }
        if u64::from(footer.count) > self.n(kind) {
            return Err(self.corrupt(&key, format!("{} items in a segment of at most {}", footer.count, self.n(kind))));
        }
        let index = self.get(key.clone(), footer.index_offset..manifest.size - format::FOOTER)?;
        let entries = format::index(&index, &footer).map_err(|r| self.corrupt(&key, r))?;
        let v = Arc::new(View { footer, entries, key });
        self.views.lock().unwrap_or_else(|p| p.into_inner()).put((kind, k), v.clone());
        Ok(v)
    }

    fn manifest(&self, kind: Kind, k: u64) -> Result<Manifest, HistoryError> {
        let key = seg_key(kind, k, "json");
        let bytes = self.get_all(key.clone(), MAX_SMALL)?;
        let m: Manifest = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&key, e.to_string()))?;
        if m.format != WATERMARK_FORMAT {
            return Err(HistoryError::NewerFormat {
                archive: self.shown.clone(),
                what: key,
                found: m.format,
                supported: WATERMARK_FORMAT,
            });
        }
        if m.kind != kind || m.segment != k {
            return Err(self.corrupt(&key, "manifest names another segment"));
        }
        Ok(m)
    }

    /// Item `n`'s record (checked against its index entry).
    fn record(&self, kind: Kind, n: u64) -> Result<Vec<u8>, HistoryError> {
        let v = self.view(kind, n / self.n(kind))?;
        let i = n.checked_sub(v.footer.first).filter(|i| *i < u64::from(v.footer.count));
        let e =
            *i.and_then(|i| v.entries.get(i as usize)).ok_or_else(|| self.corrupt(&v.key, format!("no item {n}")))?;
        let frame = self.get(v.key.clone(), e.offset..e.offset + u64::from(e.len))?;
        format::record(&frame, &e).map_err(|r| self.corrupt(format!("{} item {n}", v.key), r))
    }

    /// Segment `k`'s hash table header, filter and fences (cached).
    fn table(&self, kind: Kind, k: u64) -> Result<Arc<view::Table>, HistoryError> {
        if let Some(t) = self.tables.lock().unwrap_or_else(|p| p.into_inner()).get(&(kind, k)) {
            return Ok(t);
        }
        let key = seg_key(kind, k, "keys");
        let head = self.get(key.clone(), 0..keys::HEADER as u64)?;
        let header = keys::header(&head).map_err(|r| self.corrupt(&key, r))?;
        let end = header.fences_at() + header.fences_len();
        let rest = self.get(key.clone(), keys::HEADER as u64..end)?;
        if rest.len() as u64 != end - keys::HEADER as u64 {
            return Err(self.corrupt(&key, "shorter than its header says"));
        }
        let (filter, fences) = rest.split_at(header.filter_len);
        let t = Arc::new(view::Table { key, header, filter: filter.to_vec(), fences: fences.to_vec() });
        self.tables.lock().unwrap_or_else(|p| p.into_inner()).put((kind, k), t.clone());
        Ok(t)
    }

    /// Which item (record, position) `hash` is in the archive of `kind`.
    fn lookup(&self, kind: Kind, hash: &[u8]) -> Result<Option<(u64, u32)>, HistoryError> {
        let Some(mark) = self.mark(kind)? else { return Ok(None) };
        let n = self.n(kind);
        for k in (mark.first / n..=(mark.next.saturating_sub(1)) / n).rev() {
            let t = self.table(kind, k)?;
            if t.header.count == 0 || t.header.key_len != hash.len() || !keys::may_contain(&t.filter, hash) {
                continue;
            }
            let Some(g) = keys::group_of(&t.fences, &t.header, hash) else { continue };
            let group = self.get(t.key.clone(), t.header.group_range(g))?;
            if let Some((record, position)) = keys::find(&group, &t.header, hash) {
                let first = (k * n).max(mark.first);
                return Ok(Some((first + u64::from(record), position)));
            }
        }
        Ok(None)
    }

    /// The watermark of `kind` with the version of its object, read now.
    fn mark_versioned(&self, kind: Kind) -> Result<Option<(Mark, ObjectVersion)>, HistoryError> {
        let key = watermark_key(kind);
        let (bytes, version) = match self.run("reading the watermark", {
            let key = key.clone();
            move |d| async move { d.get_versioned(&key, MAX_SMALL).await }
        })? {
            None => return Ok(None),
            Some(b) => b,
        };
        let w: Watermark = serde_json::from_slice(&bytes).map_err(|e| self.corrupt(&key, e.to_string()))?;
        if w.format != WATERMARK_FORMAT {
            return Err(HistoryError::NewerFormat {
                archive: self.shown.clone(),
                what: key,
                found: w.format,
                supported: WATERMARK_FORMAT,
            });
        }
        if w.kind != kind {
            return Err(self.corrupt(&key, "watermark of the other history"));
        }
        if w.mark.next <= w.mark.first {
            return Err(self.corrupt(&key, format!("empty or reversed (first {}, next {})", w.mark.first, w.mark.next)));
        }
        if w.per_segment != self.n(kind) {
            return Err(HistoryError::Layout {
                archive: self.shown.clone(),
                what: format!(
                    "its {kind} segments hold {} items each but the configuration says {}; set history.segments.{} = {} (it cannot change once segments exist)",
                    w.per_segment,
                    self.n(kind),
                    match kind {
                        Kind::Chain => "blocks_per_segment",
                        Kind::Dag => "vertices_per_segment",
                    },
                    w.per_segment
                ),
            });
        }
        self.marks.lock().unwrap_or_else(|p| p.into_inner())[kind as usize] = Some(w.mark.clone());
        Ok(Some((w.mark, version)))
    }

    /// Uploads blocks over the watermark `read` (as read, with its object's version): the new
    /// watermark is written only if the archive's is still that one.
    fn upload_chain_over(
        &self,
        read: Option<(Mark, ObjectVersion)>,
        items: &[ChainItem],
        sections: &[BitSection],
    ) -> Result<Uploaded, HistoryError> {
        let (current, version) = read.unzip();
        let numbers = check_consecutive(Kind::Chain, current.as_ref(), items.iter().map(|i| i.number))?;
        let records = items.iter().map(|i| i.record.as_slice()).collect();
        let blooms = items.iter().map(|i| i.bloom.as_slice()).collect();
        let mut table = Vec::new();
        for (r, item) in items.iter().enumerate() {
            for (p, tx) in item.tx_hashes.iter().enumerate() {
                table.push((tx.clone(), r as u32, p as u32));
            }
        }
        let last_hash = items.last().map(|i| i.hash.clone()).unwrap_or_default();
        self.upload(Unit { kind: Kind::Chain, current, version, numbers, records, blooms, table, last_hash, sections })
    }

    /// Uploads one whole segment and raises the watermark.
    fn upload(&self, unit: Unit<'_>) -> Result<Uploaded, HistoryError> {
        let Unit { kind, current, version, numbers: (first, last), records, blooms, table, last_hash, sections } = unit;
        let n = self.n(kind);
        let k = first / n;
        let expected_last = k * n + n - 1;
        if last != expected_last {
            return Err(HistoryError::NotAUnit { kind, first, last, expected_first: first, expected_last });
        }
        let key_len = table.first().map_or(32, |(key, _, _)| key.len());
        if table.iter().any(|(key, _, _)| key.len() != key_len) {
            return Err(HistoryError::Config(format!("{kind} hashes of different lengths in one segment")));
        }
        let segment = Bytes::from(format::build(kind, first, &records, &blooms, self.level));
        let hashes = Bytes::from(keys::build(table, key_len));
        let mut objects = vec![(seg_key(kind, k, "seg"), segment.clone()), (seg_key(kind, k, "keys"), hashes.clone())];
        for s in sections {
            objects.push((bits_key(s.section), Bytes::from(bits_object(s)?)));
        }
        let bytes: u64 = objects.iter().map(|(_, b)| b.len() as u64).sum();
        self.put(objects.clone())?;
        for (key, sent) in &objects {
            let back = self.get_all(key.clone(), sent.len() as u64)?;
            if blake3::hash(&back) != blake3::hash(sent) {
                return Err(self.corrupt(key, "read back after upload, it differs from what was written"));
            }
        }
        let manifest = Manifest {
            format: WATERMARK_FORMAT,
            kind,
            segment: k,
            first,
            count: last - first + 1,
            size: segment.len() as u64,
            blake3: blake3::hash(&segment).to_hex().to_string(),
            keys_size: hashes.len() as u64,
            keys_blake3: blake3::hash(&hashes).to_hex().to_string(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| HistoryError::Config(e.to_string()))?;
        self.put(vec![(seg_key(kind, k, "json"), Bytes::from(json))])?;
        let mark = Mark { first: current.map_or(first, |m| m.first), next: last + 1, last_hash };
        let w = Watermark { format: WATERMARK_FORMAT, kind, per_segment: n, mark: mark.clone() };
        let json = serde_json::to_vec_pretty(&w).map_err(|e| HistoryError::Config(e.to_string()))?;
        // Only over the watermark this upload started from: another uploader that moved it
        // meanwhile wins, and this one's segment (the same bytes, or already covered) is left.
        let key = watermark_key(kind);
        self.run("writing the watermark", move |d| async move {
            d.put_if(&key, Bytes::from(json), version.as_ref()).await
        })?;
        self.marks.lock().unwrap_or_else(|p| p.into_inner())[kind as usize] = Some(mark.clone());
        self.views.lock().unwrap_or_else(|p| p.into_inner()).remove(&(kind, k));
        self.tables.lock().unwrap_or_else(|p| p.into_inner()).remove(&(kind, k));
        Ok(Uploaded { mark, bytes })
    }
}

/// One segment to upload.
struct Unit<'a> {
    kind: Kind,
    /// The watermark before, and the version of its object as read (what the new one's
    /// conditional write expects).
    current: Option<Mark>,
    version: Option<ObjectVersion>,
    /// First and last item.
    numbers: (u64, u64),
    records: Vec<&'a [u8]>,
    blooms: Vec<&'a [u8]>,
    /// (hash, record, position) of every hash the segment indexes.
    table: Vec<(Vec<u8>, u32, u32)>,
    last_hash: Vec<u8>,
    sections: &'a [BitSection],
}

/// The object of a bloom-bit section: a 16-byte check of each vector, then the vectors.
fn bits_object(s: &BitSection) -> Result<Vec<u8>, HistoryError> {
    if s.vectors.len() != SECTION_BITS || s.vectors.iter().any(|v| v.len() != SECTION_VECTOR_BYTES) {
        return Err(HistoryError::Config(format!("bloom-bit section {} is not {SECTION_BITS} vectors", s.section)));
    }
    let mut out = Vec::with_capacity(SECTION_BITS * (format::CHECK + SECTION_VECTOR_BYTES));
    for v in &s.vectors {
        out.extend_from_slice(&format::check(v));
    }
    for v in &s.vectors {
        out.extend_from_slice(v);
    }
    Ok(out)
}

/// Maps a destination failure by kind: the one place segment-archive errors are classified.
fn failed(archive: &str, action: &str, e: BackupError) -> HistoryError {
    let (archive, action) = (archive.to_owned(), action.to_owned());
    match e {
        BackupError::Destination(d) => match *d {
            DestinationError::Denied { hint, source, .. } => {
                HistoryError::Denied { archive, action, hint, reason: source.to_string() }
            }
            DestinationError::Conflict { key, .. } => HistoryError::Conflict { archive, what: key },
            DestinationError::NotFound { key, .. } => {
                HistoryError::Corrupt { archive, what: key, reason: "the object is missing".into() }
            }
            DestinationError::Config { message, .. } => HistoryError::Config(message),
            other => HistoryError::Unavailable { archive, action, reason: other.to_string() },
        },
        BackupError::Integrity(i) => HistoryError::Corrupt { archive, what: action, reason: i.to_string() },
        BackupError::Io { .. } => HistoryError::Unavailable { archive, action, reason: e.to_string() },
        other => HistoryError::Remote { archive, action, reason: other.to_string() },
    }
}

impl HistoryTier for SegmentTier {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn mark(&self, kind: Kind) -> Result<Option<Mark>, HistoryError> {
        Ok(self.mark_versioned(kind)?.map(|(mark, _)| mark))
    }

    fn next_unit(&self, kind: Kind, next: u64, last_final: u64) -> Option<std::ops::RangeInclusive<u64>> {
        let n = self.n(kind);
        let end = (next / n) * n + n - 1;
        (end <= last_final).then_some(next..=end)
    }

    fn upload_chain(&self, items: &[ChainItem], sections: &[BitSection]) -> Result<Uploaded, HistoryError> {
        let read = self.mark_versioned(Kind::Chain)?;
        self.upload_chain_over(read, items, sections)
    }

    fn upload_dag(&self, items: &[DagItem]) -> Result<Uploaded, HistoryError> {
        let (current, version) = self.mark_versioned(Kind::Dag)?.unzip();
        let numbers = check_consecutive(Kind::Dag, current.as_ref(), items.iter().map(|i| i.sequence))?;
        // A DAG record is the hash (length-prefixed) then the vertex's record.
        let framed: Vec<Vec<u8>> = items
            .iter()
            .map(|i| {
                let mut r = Vec::with_capacity(1 + i.hash.len() + i.record.len());
                r.push(i.hash.len() as u8);
                r.extend_from_slice(&i.hash);
                r.extend_from_slice(&i.record);
                r
            })
            .collect();
        let records = framed.iter().map(Vec::as_slice).collect();
        let table = items.iter().enumerate().map(|(r, i)| (i.hash.clone(), r as u32, 0)).collect();
        let last_hash = items.last().map(|i| i.hash.clone()).unwrap_or_default();
        let (blooms, sections) = (Vec::new(), &[]);
        self.upload(Unit { kind: Kind::Dag, current, version, numbers, records, blooms, table, last_hash, sections })
    }

    fn chain_record(&self, number: u64) -> Result<Option<Vec<u8>>, HistoryError> {
        if !self.covered(Kind::Chain, number)? {
            return Ok(None);
        }
        self.record(Kind::Chain, number).map(Some)
    }

    fn chain_records(&self, numbers: &[u64]) -> Result<Vec<Option<Vec<u8>>>, HistoryError> {
        let Some(&max) = numbers.iter().max() else { return Ok(Vec::new()) };
        self.covered(Kind::Chain, max)?;
        let Some(mark) = self.cached_mark(Kind::Chain) else { return Ok(vec![None; numbers.len()]) };
        let n = self.n(Kind::Chain);
        // Per segment: the frames wanted, fetched in one call (object_store merges nearby ranges).
        let mut by_segment: std::collections::BTreeMap<u64, Vec<(usize, u64)>> = Default::default();
        for (i, &h) in numbers.iter().enumerate() {
            if (mark.first..mark.next).contains(&h) {
                by_segment.entry(h / n).or_default().push((i, h));
            }
        }
        let mut fetches = Vec::new();
        for (k, items) in by_segment {
            let v = self.view(Kind::Chain, k)?;
            let mut entries = Vec::with_capacity(items.len());
            for (i, h) in items {
                let at = h.checked_sub(v.footer.first).and_then(|x| v.entries.get(x as usize));
                let e = *at.ok_or_else(|| self.corrupt(&v.key, format!("no item {h}")))?;
                entries.push((i, h, e));
            }
            fetches.push((v.key.clone(), entries));
        }
        let requests: Vec<(String, Vec<std::ops::Range<u64>>)> = fetches
            .iter()
            .map(|(key, entries)| {
                (key.clone(), entries.iter().map(|(_, _, e)| e.offset..e.offset + u64::from(e.len)).collect())
            })
            .collect();
        let frames = self.run("reading blocks", move |d| async move {
            let reads = requests.iter().map(|(key, ranges)| d.get_ranges(key, ranges));
            futures::future::try_join_all(reads).await
        })?;
        let mut out = vec![None; numbers.len()];
        for ((key, entries), frames) in fetches.iter().zip(frames) {
            for ((i, h, e), frame) in entries.iter().zip(frames) {
                out[*i] = Some(format::record(&frame, e).map_err(|r| self.corrupt(format!("{key} item {h}"), r))?);
            }
        }
        Ok(out)
    }

    fn tx(&self, hash: &[u8]) -> Result<Option<TxPointer>, HistoryError> {
        Ok(self.lookup(Kind::Chain, hash)?.map(|(number, index)| TxPointer { number, index }))
    }

    fn blooms(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, HistoryError> {
        let Some(mark) = self.mark(Kind::Chain)? else { return Ok(Vec::new()) };
        let (from, to) = (from.max(mark.first), to.min(mark.next.saturating_sub(1)));
        let n = self.n(Kind::Chain);
        let mut out = Vec::new();
        if mark.next == 0 || from > to {
            return Ok(out);
        }
        for k in from / n..=to / n {
            let v = self.view(Kind::Chain, k)?;
            let f = v.footer;
            let area = self.get(v.key.clone(), f.blooms_offset..f.index_offset)?;
            let blooms = format::blooms(&area, &f).map_err(|r| self.corrupt(&v.key, r))?;
            for (i, b) in blooms.into_iter().enumerate() {
                let h = f.first + i as u64;
                if (from..=to).contains(&h) {
                    out.push((h, b.to_vec()));
                }
            }
        }
        Ok(out)
    }

    fn section_bits(&self, section: u64, bits: &[u16]) -> Result<Option<Vec<Vec<u8>>>, HistoryError> {
        let Some(mark) = self.mark(Kind::Chain)? else { return Ok(None) };
        if (section + 1) * SECTION_SIZE > mark.next {
            return Ok(None);
        }
        let key = bits_key(section);
        let check = format::CHECK as u64;
        let area = (SECTION_BITS as u64) * check;
        let mut ranges = Vec::with_capacity(bits.len() * 2);
        for &b in bits {
            let b = u64::from(b);
            ranges.push(b * check..(b + 1) * check);
            let at = area + b * SECTION_VECTOR_BYTES as u64;
            ranges.push(at..at + SECTION_VECTOR_BYTES as u64);
        }
        let got = self.run("reading bloom bits", {
            let key = key.clone();
            move |d| async move {
                match d.get_ranges(&key, &ranges).await {
                    Ok(got) => Ok(Some(got)),
                    // A section the node had not built: filters use the blooms instead.
                    Err(BackupError::Destination(e)) if matches!(*e, DestinationError::NotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        })?;
        let Some(got) = got else { return Ok(None) };
        got.chunks_exact(2)
            .zip(bits)
            .map(|(pair, b)| {
                if pair[0].as_ref() != format::check(&pair[1]) {
                    return Err(self.corrupt(&key, format!("bit vector {b} does not match its check")));
                }
                Ok(pair[1].to_vec())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn vertex(&self, sequence: u64) -> Result<Option<ArchivedVertex>, HistoryError> {
        if !self.covered(Kind::Dag, sequence)? {
            return Ok(None);
        }
        let r = self.record(Kind::Dag, sequence)?;
        let len = *r.first().ok_or_else(|| self.corrupt(format!("vertex {sequence}"), "empty record"))? as usize;
        if r.len() < 1 + len {
            return Err(self.corrupt(format!("vertex {sequence}"), "record shorter than its hash"));
        }
        Ok(Some((r[1..1 + len].to_vec(), r[1 + len..].to_vec())))
    }

    fn vertex_sequence(&self, hash: &[u8]) -> Result<Option<u64>, HistoryError> {
        Ok(self.lookup(Kind::Dag, hash)?.map(|(seq, _)| seq))
    }

    fn verify(&self, progress: &dyn Progress, item: &mut VerifyItem<'_>) -> Result<TierReport, HistoryError> {
        let mut report = TierReport::default();
        for kind in [Kind::Chain, Kind::Dag] {
            let Some(mark) = self.mark(kind)? else { continue };
            if mark.next <= mark.first {
                continue;
            }
            let n = self.n(kind);
            let (lo, hi) = (mark.first / n, (mark.next - 1) / n);
            progress.phase(&format!("{kind} segments"), hi - lo + 1);
            for k in lo..=hi {
                let expect = ((k * n).max(mark.first), (k * n + n - 1).min(mark.next - 1));
                // The DAG's records carry the hash in front; callers see the vertex record.
                let mut strip = |kind: Kind, n: u64, r: &[u8]| match kind {
                    Kind::Chain => item(kind, n, r),
                    Kind::Dag => {
                        let len = *r.first().ok_or("empty record")? as usize;
                        item(kind, n, r.get(1 + len..).ok_or("record shorter than its hash")?)
                    }
                };
                self.verify_segment(kind, k, expect, &mut report, &mut strip)?;
                progress.advance(1);
            }
            if kind == Kind::Chain {
                let sections = mark.first.div_ceil(SECTION_SIZE)..mark.next / SECTION_SIZE;
                for s in sections {
                    let key = bits_key(s);
                    match self.run("reading bloom bits", {
                        let key = key.clone();
                        move |d| async move { d.size(&key).await }
                    })? {
                        None => continue, // a section the node had not built; filters use blooms
                        Some(size) => {
                            let bytes = self.get_all(key.clone(), size)?;
                            report.bytes += size;
                            let check = SECTION_BITS * format::CHECK;
                            let ok = bytes.len() == check + SECTION_BITS * SECTION_VECTOR_BYTES
                                && bytes[..check]
                                    .chunks_exact(format::CHECK)
                                    .zip(bytes[check..].chunks_exact(SECTION_VECTOR_BYTES))
                                    .all(|(c, v)| c == format::check(v));
                            if !ok {
                                report.problems.push(format!("{key}: vectors do not match their checks"));
                            }
                        }
                    }
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: u64) -> ChainItem {
        ChainItem {
            number: n,
            hash: blake3::hash(&n.to_le_bytes()).as_bytes().to_vec(),
            record: format!("block {n}").into_bytes(),
            bloom: vec![0; crate::BLOOM_BYTES],
            tx_hashes: vec![blake3::hash(&((n + 1) << 32).to_le_bytes()).as_bytes().to_vec()],
        }
    }

    fn blocks(range: std::ops::Range<u64>) -> Vec<ChainItem> {
        range.map(block).collect()
    }

    /// Uploader A reads the watermark; B moves it twice; A's upload over what it read writes
    /// its segment but not its (older) watermark: the archive's never goes backwards.
    fn a_moved_watermark_is_not_overwritten(config: &HistoryConfig) {
        let n = config.segments.blocks_per_segment;
        let (a, b) = (SegmentTier::open(config).unwrap(), SegmentTier::open(config).unwrap());
        b.upload_chain(&blocks(0..n), &[]).unwrap();
        let read = a.mark_versioned(Kind::Chain).unwrap();
        assert_eq!(read.as_ref().map(|(m, _)| m.next), Some(n));
        b.upload_chain(&blocks(n..2 * n), &[]).unwrap();
        b.upload_chain(&blocks(2 * n..3 * n), &[]).unwrap();
        let err = a.upload_chain_over(read, &blocks(n..2 * n), &[]).unwrap_err();
        assert!(matches!(err, HistoryError::Conflict { .. }), "{err}");
        assert_eq!(a.mark(Kind::Chain).unwrap().map(|m| m.next), Some(3 * n), "the watermark stayed where B left it");
        // A first upload expects no watermark at all.
        let c = SegmentTier::open(config).unwrap();
        let err = c.upload_chain_over(None, &blocks(0..n), &[]).unwrap_err();
        assert!(matches!(err, HistoryError::Conflict { .. }), "{err}");
        assert_eq!(b.mark(Kind::Chain).unwrap().map(|m| m.next), Some(3 * n));
    }

    /// A watermark no upload writes — empty, reversed — is refused as corrupt, before any
    /// arithmetic on it.
    #[test]
    fn empty_or_reversed_watermarks_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let config = segments(dir.path().display().to_string());
        std::fs::create_dir_all(dir.path().join("chain")).unwrap();
        for (first, next) in [(0u64, 0u64), (10, 10), (10, 3)] {
            let w = serde_json::json!({
                "format": 1, "kind": "chain", "per_segment": 8,
                "mark": { "first": first, "next": next, "last_hash": "00" },
            });
            std::fs::write(dir.path().join("chain/watermark.json"), w.to_string()).unwrap();
            let tier = SegmentTier::open(&config).unwrap();
            let err = tier.mark(Kind::Chain).unwrap_err();
            assert!(matches!(err, HistoryError::Corrupt { .. }), "{first}..{next}: {err}");
            assert!(tier.chain_record(0).is_err());
        }
    }

    fn segments(destination: String) -> HistoryConfig {
        let mut config = HistoryConfig { kind: Some(crate::TierKind::Segments), ..HistoryConfig::default() };
        config.segments.destination = destination;
        config.segments.blocks_per_segment = 8;
        config
    }

    #[test]
    fn a_moved_watermark_is_not_overwritten_on_a_local_directory() {
        let dir = tempfile::tempdir().unwrap();
        a_moved_watermark_is_not_overwritten(&segments(dir.path().display().to_string()));
    }

    #[test]
    fn a_moved_watermark_is_not_overwritten_on_s3() {
        let server = storage_backup::testkit::S3Server::start();
        let s3 = server.config("history");
        let mut config = segments(s3.destination.clone());
        config.segments.endpoint = s3.endpoint.clone();
        config.segments.region = s3.region.clone();
        config.segments.allow_http = true;
        config.segments.credentials = s3.credentials.clone();
        a_moved_watermark_is_not_overwritten(&config);
    }
}
