//! [`Collector`]: entries that arrive in any order, handed back sorted, within a memory budget.
//!
//! Keys and values are copied into one arena (no allocation per entry) until it holds
//! `budget` bytes; then the entries are sorted and written to a run file in the collector's
//! scratch directory. [`Collector::finish`] sorts what is left and merges it with every run,
//! reading each run sequentially into reused buffers; [`Merged::next_entry`] lends each entry.
//! Keys must be unique (the same key twice is an error at merge time, not silently one of
//! them). reth's ETL collector is the model.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// A collector failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CollectorError {
    /// A run file could not be written or read back.
    #[error("sorted-run file {path}: {source}")]
    Io {
        /// The run file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A run file did not hold what was written (truncated or changed underneath).
    #[error("sorted-run file {0} is damaged")]
    Damaged(PathBuf),
    /// The same key was collected twice.
    #[error("key {0} collected twice")]
    Duplicate(String),
    /// A key or value is larger than a collector takes (4 GiB).
    #[error("an entry of {0} bytes is too large to collect")]
    TooLarge(usize),
}

/// Bytes counted against the budget per entry besides its key and value (the index entry).
const ENTRY_OVERHEAD: usize = std::mem::size_of::<Slot>();

/// The largest budget: arena offsets are 32-bit.
const MAX_BUDGET: usize = u32::MAX as usize;

/// An entry of the arena: the key's first 8 bytes big-endian (most comparisons end there),
/// where the key starts, and the key's and value's lengths (the value follows the key).
#[derive(Debug, Clone, Copy)]
struct Slot {
    prefix: u64,
    at: u32,
    key: u32,
    value: u32,
}

/// Entries in any order, returned sorted; spills sorted runs to disk past its budget.
#[derive(Debug)]
pub struct Collector {
    dir: PathBuf,
    name: String,
    budget: usize,
    arena: Vec<u8>,
    slots: Vec<Slot>,
    runs: Vec<PathBuf>,
    len: u64,
    peak: usize,
}

fn prefix(key: &[u8]) -> u64 {
    let mut p = [0u8; 8];
    let n = key.len().min(8);
    p[..n].copy_from_slice(&key[..n]);
    u64::from_be_bytes(p)
}

impl Collector {
    /// A collector spilling into `dir` (which must exist) under file names starting with
    /// `name`, holding at most about `budget` bytes in memory (at least 64 KiB, at most 4 GiB).
    pub fn new(dir: &Path, name: &str, budget: usize) -> Self {
        Collector {
            dir: dir.to_owned(),
            name: name.to_owned(),
            budget: budget.clamp(1 << 16, MAX_BUDGET),
            arena: Vec::new(),
            slots: Vec::new(),
            runs: Vec::new(),
            len: 0,
            peak: 0,
        }
    }

    fn buffered(&self) -> usize {
        self.arena.len() + self.slots.len() * ENTRY_OVERHEAD
    }

    /// Adds an entry (copied).
    pub fn insert(&mut self, key: &[u8], value: &[u8]) -> Result<(), CollectorError> {
        let size = key.len() + value.len();
        let (k, v) = match (u32::try_from(key.len()), u32::try_from(value.len())) {
            (Ok(k), Ok(v)) if size < MAX_BUDGET => (k, v),
            _ => return Err(CollectorError::TooLarge(size)),
        };
        let full = self.arena.len() + size > MAX_BUDGET || self.buffered() + size + ENTRY_OVERHEAD > self.budget;
        if full && !self.slots.is_empty() {
            self.spill()?;
        }
        let at = self.arena.len() as u32;
        self.arena.extend_from_slice(key);
        self.arena.extend_from_slice(value);
        self.slots.push(Slot { prefix: prefix(key), at, key: k, value: v });
        self.len += 1;
        self.peak = self.peak.max(self.buffered());
        Ok(())
    }

    /// Entries collected.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Run files written so far.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The most bytes the buffer held (as counted against the budget).
    pub fn peak_bytes(&self) -> usize {
        self.peak
    }

    fn key_of<'a>(arena: &'a [u8], s: &Slot) -> &'a [u8] {
        &arena[s.at as usize..s.at as usize + s.key as usize]
    }

    fn sort(&mut self) {
        let arena = &self.arena;
        self.slots.sort_unstable_by(|a, b| {
            a.prefix.cmp(&b.prefix).then_with(|| Self::key_of(arena, a).cmp(Self::key_of(arena, b)))
        });
    }

    fn spill(&mut self) -> Result<(), CollectorError> {
        self.sort();
        let path = self.dir.join(format!("{}-{:04}.run", self.name, self.runs.len()));
        let io = |source| CollectorError::Io { path: path.clone(), source };
        let mut w = BufWriter::with_capacity(1 << 20, File::create(&path).map_err(io)?);
        for s in &self.slots {
            let mut head = [0u8; 8];
            head[..4].copy_from_slice(&s.key.to_le_bytes());
            head[4..].copy_from_slice(&s.value.to_le_bytes());
            w.write_all(&head).map_err(io)?;
            let end = s.at as usize + s.key as usize + s.value as usize;
            w.write_all(&self.arena[s.at as usize..end]).map_err(io)?;
        }
        w.flush().map_err(io)?;
        self.runs.push(path);
        self.slots.clear();
        self.arena.clear();
        Ok(())
    }

    /// Every entry in key order, through [`Merged::next_entry`]. The run files are removed
    /// when the merge is dropped.
    pub fn finish(mut self) -> Result<Merged, CollectorError> {
        self.sort();
        let mut sources: Vec<Source> = Vec::with_capacity(self.runs.len() + 1);
        for path in &self.runs {
            let file = File::open(path).map_err(|source| CollectorError::Io { path: path.clone(), source })?;
            sources.push(Source {
                run: Some((path.clone(), BufReader::with_capacity(1 << 20, file))),
                key: Vec::new(),
                value: Vec::new(),
                slot: None,
                live: false,
            });
        }
        let memory = Source { run: None, key: Vec::new(), value: Vec::new(), slot: None, live: false };
        sources.push(memory);
        let mut merged = Merged {
            sources,
            arena: std::mem::take(&mut self.arena),
            slots: std::mem::take(&mut self.slots).into_iter(),
            files: std::mem::take(&mut self.runs),
            last: Vec::new(),
            started: false,
            pending: None,
        };
        for i in 0..merged.sources.len() {
            merged.advance(i)?;
        }
        Ok(merged)
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        for path in &self.runs {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// One input of the merge: a run file (read into reused buffers) or the in-memory slots
/// (lent straight from the arena).
struct Source {
    run: Option<(PathBuf, BufReader<File>)>,
    key: Vec<u8>,
    value: Vec<u8>,
    /// The current in-memory slot (for the memory source).
    slot: Option<Slot>,
    live: bool,
}

impl Source {
    fn entry<'a>(&'a self, arena: &'a [u8]) -> (&'a [u8], &'a [u8]) {
        match &self.slot {
            Some(s) => {
                let (k, v) = (s.at as usize, s.at as usize + s.key as usize);
                (&arena[k..v], &arena[v..v + s.value as usize])
            }
            None => (&self.key, &self.value),
        }
    }
}

/// A key and value lent by [`Merged::next_entry`].
pub type Lent<'a> = (&'a [u8], &'a [u8]);

/// The merged, sorted entries of a [`Collector`].
pub struct Merged {
    sources: Vec<Source>,
    arena: Vec<u8>,
    slots: std::vec::IntoIter<Slot>,
    files: Vec<PathBuf>,
    last: Vec<u8>,
    started: bool,
    /// The source whose entry was lent last (advanced on the next call).
    pending: Option<usize>,
}

impl std::fmt::Debug for Merged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Merged({} sources)", self.sources.len())
    }
}

impl Merged {
    /// Loads source `i`'s next entry into its buffers.
    fn advance(&mut self, i: usize) -> Result<(), CollectorError> {
        let src = &mut self.sources[i];
        match &mut src.run {
            None => {
                src.slot = self.slots.next();
                src.live = src.slot.is_some();
            }
            Some((path, reader)) => {
                let mut head = [0u8; 8];
                match reader.read_exact(&mut head[..1]) {
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                        src.live = false;
                        return Ok(());
                    }
                    r => r.map_err(|source| CollectorError::Io { path: path.clone(), source })?,
                }
                let damaged = |_| CollectorError::Damaged(path.clone());
                reader.read_exact(&mut head[1..]).map_err(damaged)?;
                let klen = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
                let vlen = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
                src.key.resize(klen, 0);
                src.value.resize(vlen, 0);
                reader.read_exact(&mut src.key).map_err(damaged)?;
                reader.read_exact(&mut src.value).map_err(damaged)?;
                src.live = true;
            }
        }
        Ok(())
    }

    /// The next entry in key order, lent until the next call; `None` after the last.
    pub fn next_entry(&mut self) -> Result<Option<Lent<'_>>, CollectorError> {
        if let Some(i) = self.pending.take() {
            self.advance(i)?;
        }
        // Few sources (the runs plus memory): a linear scan for the smallest beats a heap.
        let arena = &self.arena;
        let mut best: Option<(usize, &[u8])> = None;
        for (i, s) in self.sources.iter().enumerate() {
            if !s.live {
                continue;
            }
            let key = s.entry(arena).0;
            if best.is_none_or(|(_, b)| key < b) {
                best = Some((i, key));
            }
        }
        let Some((i, key)) = best else { return Ok(None) };
        if self.started && key == self.last.as_slice() {
            return Err(CollectorError::Duplicate(key.iter().map(|x| format!("{x:02x}")).collect()));
        }
        self.last.clear();
        self.last.extend_from_slice(key);
        self.started = true;
        self.pending = Some(i);
        Ok(Some(self.sources[i].entry(&self.arena)))
    }
}

impl Drop for Merged {
    fn drop(&mut self) {
        for path in &self.files {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Owned = Vec<(Vec<u8>, Vec<u8>)>;

    fn drain(mut m: Merged) -> Result<Owned, CollectorError> {
        let mut out = Vec::new();
        while let Some((k, v)) = m.next_entry()? {
            out.push((k.to_vec(), v.to_vec()));
        }
        Ok(out)
    }

    #[test]
    fn spills_and_merges_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Collector::new(dir.path(), "t", 1 << 16);
        let mut keys: Vec<u32> = (0..20_000).map(|i: u32| i.wrapping_mul(2_654_435_761) % 1_000_003).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut shuffled = keys.clone();
        shuffled.reverse();
        shuffled.rotate_left(777);
        let mut seen = std::collections::HashSet::new();
        for k in &shuffled {
            // Short keys too: ordering must not depend on the 8-byte prefix alone.
            let key: Vec<u8> = if k % 7 == 0 { k.to_be_bytes()[..3].to_vec() } else { k.to_be_bytes().to_vec() };
            if seen.insert(key.clone()) {
                c.insert(&key, &[*k as u8; 7]).unwrap();
            }
        }
        let mut expect: Vec<Vec<u8>> = seen.into_iter().collect();
        expect.sort();
        assert!(c.runs() > 3, "a 64 KiB budget spills 20,000 entries: {}", c.runs());
        assert!(c.peak_bytes() <= 1 << 16, "{}", c.peak_bytes());
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        let merged = drain(c.finish().unwrap()).unwrap();
        assert_eq!(merged.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>(), expect);
        assert!(files > 3);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "run files removed");
    }

    #[test]
    fn duplicates_and_damage_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Collector::new(dir.path(), "d", 1 << 16);
        c.insert(b"a", b"1").unwrap();
        c.insert(b"b", b"1").unwrap();
        c.insert(b"a", b"2").unwrap();
        assert!(matches!(drain(c.finish().unwrap()), Err(CollectorError::Duplicate(k)) if k == "61"));

        // A duplicate across a run and memory.
        let mut c = Collector::new(dir.path(), "r", 1 << 16);
        for i in 0..5_000u32 {
            c.insert(&i.to_be_bytes(), &[0; 20]).unwrap();
        }
        c.insert(&7u32.to_be_bytes(), &[1; 20]).unwrap();
        assert!(matches!(drain(c.finish().unwrap()), Err(CollectorError::Duplicate(_))));

        let mut c = Collector::new(dir.path(), "e", 1 << 16);
        for i in 0..5_000u32 {
            c.insert(&i.to_be_bytes(), &[0; 20]).unwrap();
        }
        let run = c.runs[0].clone();
        let len = std::fs::metadata(&run).unwrap().len();
        std::fs::OpenOptions::new().write(true).open(&run).unwrap().set_len(len - 3).unwrap();
        let err = drain(c.finish().unwrap()).unwrap_err();
        assert!(matches!(err, CollectorError::Damaged(_)), "{err:?}");
    }
}
