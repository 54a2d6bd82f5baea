//! Compressed tar archives: the writer, and the one validating reader that both `verify` and
//! `restore` use. The reader trusts nothing in the archive: every entry must be a regular file
//! with a safe relative path that the manifest lists, no larger than the manifest says, seen
//! once; decompression is capped by the manifest's totals. Anything else is an error naming
//! the entry — never skipped.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};

use flate2::Compression as GzLevel;
use tar::EntryType;

use crate::config::Compression;
use crate::error::{BackupError, IntegrityError};
use crate::manifest::{FileRecord, check_path};

/// A compressing writer.
pub(crate) enum Encoder<W: Write> {
    Zstd(zstd::Encoder<'static, W>),
    Gzip(flate2::write::GzEncoder<W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    pub(crate) fn new(inner: W, compression: Compression, level: i32, workers: u32) -> std::io::Result<Self> {
        Ok(match compression {
            Compression::Zstd => {
                let mut z = zstd::Encoder::new(inner, level)?;
                if workers > 0 {
                    z.multithread(workers)?;
                }
                Encoder::Zstd(z)
            }
            Compression::Gzip => Encoder::Gzip(flate2::write::GzEncoder::new(inner, GzLevel::fast())),
            Compression::None => Encoder::None(inner),
        })
    }

    pub(crate) fn finish(self) -> std::io::Result<W> {
        match self {
            Encoder::Zstd(z) => z.finish(),
            Encoder::Gzip(g) => g.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Encoder::Zstd(z) => z.write(buf),
            Encoder::Gzip(g) => g.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Encoder::Zstd(z) => z.flush(),
            Encoder::Gzip(g) => g.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// A decompressing reader over `inner`.
pub(crate) fn decoder<'a, R: BufRead + 'a>(inner: R, compression: Compression) -> std::io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::Zstd => Box::new(zstd::Decoder::with_buffer(inner)?),
        Compression::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(inner)),
        Compression::None => Box::new(inner),
    })
}

/// A reader that fails once more than `limit` bytes have come through it.
pub(crate) struct Capped<R> {
    inner: R,
    left: u64,
    /// Set when the cap was hit, so the error is known by its kind, wherever it surfaces.
    overrun: std::rc::Rc<std::cell::Cell<bool>>,
    /// Bytes read so far, and the last 512-byte block that started on a 512-byte boundary (a
    /// tar header, when the tar reader fails on one before yielding the entry).
    pos: u64,
    block: Box<[u8; 512]>,
    block_filled: usize,
}

/// The message of a cap overrun.
const OVER_CAP: &str = "decompressed data exceeds what the manifest allows";

impl<R: Read> Capped<R> {
    pub(crate) fn new(inner: R, limit: u64) -> Self {
        Capped { inner, left: limit, overrun: Default::default(), pos: 0, block: Box::new([0; 512]), block_filled: 0 }
    }

    /// A handle telling later whether the cap was hit.
    pub(crate) fn overrun_flag(&self) -> std::rc::Rc<std::cell::Cell<bool>> {
        self.overrun.clone()
    }

    /// Follows `bytes`, just read: refills the block buffer from each 512-byte boundary.
    fn track(&mut self, bytes: &[u8]) {
        for (i, byte) in bytes.iter().enumerate() {
            if (self.pos + i as u64).is_multiple_of(512) {
                self.block_filled = 0;
            }
            if self.block_filled < 512 {
                self.block[self.block_filled] = *byte;
                self.block_filled += 1;
            }
        }
        self.pos += bytes.len() as u64;
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n as u64 > self.left {
            self.overrun.set(true);
            return Err(std::io::Error::other(OVER_CAP));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Reads a tar stream through a [`Capped`] reader, remembering the last header-sized block so
/// that an entry the tar reader refuses before yielding it can still be named.
struct Tracked<R> {
    inner: Capped<R>,
    last_block: std::rc::Rc<std::cell::RefCell<Vec<u8>>>,
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        // Headers are read 512 bytes at a time on 512-byte boundaries; entry data is not
        // tracked beyond the block it starts.
        if n > 0 && n <= 512 {
            self.inner.track(&buf[..n]);
            if self.inner.block_filled == 512 {
                *self.last_block.borrow_mut() = self.inner.block.to_vec();
            }
        } else {
            self.inner.pos += n as u64;
        }
        Ok(n)
    }
}

/// The name field of a tar header block (NUL-terminated, at most 100 bytes).
fn header_name(block: &[u8]) -> Option<String> {
    let name = block.get(..100)?;
    let end = name.iter().position(|b| *b == 0).unwrap_or(name.len());
    (end > 0).then(|| String::from_utf8_lossy(&name[..end]).into_owned())
}

/// A reader that hashes and counts what it yields.
pub(crate) struct Hashing<R> {
    pub(crate) inner: R,
    pub(crate) hasher: blake3::Hasher,
    pub(crate) count: u64,
}

impl<R: Read> Hashing<R> {
    pub(crate) fn new(inner: R) -> Self {
        Hashing { inner, hasher: blake3::Hasher::new(), count: 0 }
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Appends a regular file entry of `size` bytes read from `data`; returns the BLAKE3 of what
/// was written (an error if `data` does not yield exactly `size` bytes).
pub(crate) fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    path: &str,
    size: u64,
    data: impl Read,
) -> Result<blake3::Hash, BackupError> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(EntryType::Regular);
    header.set_size(size);
    header.set_mode(0o644);
    header.set_mtime(0);
    let mut reader = Hashing::new(data.take(size));
    builder.append_data(&mut header, path, &mut reader).map_err(BackupError::io("archiving", path))?;
    if reader.count != size {
        return Err(BackupError::Invalid(format!("`{path}` changed size while being archived")));
    }
    Ok(reader.hasher.finalize())
}

/// The most bytes a tar stream holding `files` can decompress to: each entry's data padded to
/// 512 bytes, its header, room for a long-name extension, and the end blocks.
fn tar_cap<'a>(files: impl Iterator<Item = &'a FileRecord>) -> u64 {
    files.map(|f| 512 + f.size.div_ceil(512) * 512 + 512 + (f.path.len() as u64).div_ceil(512) * 512).sum::<u64>()
        + 10240
}

/// Reads the archive `name` from `stored` (compressed bytes), checking every entry against
/// `expected`; `sink` receives each entry's verified-size reader and must consume it. Returns
/// only when every listed file was seen with the right size and BLAKE3.
pub(crate) fn read_archive(
    name: &str,
    stored: impl Read,
    compression: Compression,
    expected: &[&FileRecord],
    mut sink: impl FnMut(&FileRecord, &mut dyn Read) -> Result<(), BackupError>,
) -> Result<(), BackupError> {
    let malformed = |reason: String| IntegrityError::Archive { archive: name.to_owned(), reason };
    let reject = |entry: &str, reason: String| IntegrityError::Entry {
        archive: name.to_owned(),
        entry: entry.to_owned(),
        reason,
    };
    let capped = Capped::new(
        decoder(BufReader::with_capacity(1 << 20, stored), compression).map_err(|e| malformed(e.to_string()))?,
        tar_cap(expected.iter().copied()),
    );
    let overrun = capped.overrun_flag();
    let last_block = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let io_error = |e: std::io::Error| {
        if overrun.get() {
            malformed(format!("{OVER_CAP} ({} bytes)", tar_cap(expected.iter().copied())))
        } else {
            malformed(e.to_string())
        }
    };
    let mut listed: HashMap<&str, &FileRecord> = expected.iter().map(|f| (f.path.as_str(), *f)).collect();
    let mut archive = tar::Archive::new(Tracked { inner: capped, last_block: last_block.clone() });
    for entry in archive.entries().map_err(io_error)? {
        // The tar reader refuses some entries (GNU sparse files with bad sizes, say) before
        // yielding them: name the entry from its header block.
        let entry = entry.map_err(|e| match header_name(&last_block.borrow()) {
            Some(entry) if !overrun.get() => reject(&entry, format!("unreadable tar header: {e}")),
            _ => io_error(e),
        })?;
        let path_bytes = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&path_bytes).into_owned();
        let kind = entry.header().entry_type();
        let what = match kind {
            EntryType::Regular | EntryType::Continuous => None,
            EntryType::Symlink => Some(format!(
                "symbolic link to `{}`",
                entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default()
            )),
            EntryType::Link => Some(format!(
                "hard link to `{}`",
                entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned()).unwrap_or_default()
            )),
            EntryType::Char => Some("character device".into()),
            EntryType::Block => Some("block device".into()),
            EntryType::Fifo => Some("FIFO".into()),
            EntryType::Directory => Some("directory entry".into()),
            other => Some(format!("entry type {:?}", other)),
        };
        if let Some(what) = what {
            return Err(reject(&shown, format!("{what} is not allowed")).into());
        }
        let path = std::str::from_utf8(&path_bytes).map_err(|_| reject(&shown, "path is not UTF-8".into()))?;
        check_path(path).map_err(|reason| reject(&shown, reason))?;
        let Some(record) = listed.remove(path) else {
            return Err(reject(&shown, "not listed in the manifest (or listed once and seen twice)".into()).into());
        };
        let declared = entry.header().size().map_err(io_error)?;
        if declared != record.size {
            let relation = if declared > record.size { "more than" } else { "not" };
            return Err(reject(
                &shown,
                format!("declares {declared} bytes, {relation} the {} the manifest lists", record.size),
            )
            .into());
        }
        let mut reader = Hashing::new(entry.take(record.size));
        sink(record, &mut reader).map_err(|e| match e {
            BackupError::Io { action: "reading archive", source, .. } => io_error(source).into(),
            other => other,
        })?;
        let found = reader.hasher.finalize().to_hex().to_string();
        if reader.count != record.size {
            return Err(
                IntegrityError::Size { path: record.path.clone(), expected: record.size, found: reader.count }.into()
            );
        }
        if found != record.blake3 {
            return Err(
                IntegrityError::Hash { path: record.path.clone(), expected: record.blake3.clone(), found }.into()
            );
        }
    }
    if let Some(first) = listed.keys().min() {
        let (count, first) = (listed.len(), (*first).to_owned());
        return Err(IntegrityError::Missing { backup: name.to_owned(), count, first }.into());
    }
    Ok(())
}

/// Copies `reader` into `out`, mapping read failures so [`read_archive`] can classify them.
pub(crate) fn drain(reader: &mut dyn Read, mut out: impl Write, target: &std::path::Path) -> Result<(), BackupError> {
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(BackupError::Io { action: "reading archive", path: target.to_owned(), source }),
        };
        out.write_all(&buf[..n]).map_err(BackupError::io("writing", target))?;
    }
}
