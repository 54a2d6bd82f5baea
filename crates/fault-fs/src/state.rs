//! What the file system holds: a namespace in memory over data files in a backing directory,
//! and, beside the live state, what `fsync`/`fdatasync`/directory `fsync` made durable.
//!
//! The durability model is the strict one of POSIX (and of RocksDB's `FaultInjectionTestFS`):
//! * a file's bytes and length are durable as of its last successful `fsync` or `fdatasync`;
//! * a directory's entries (creates, links, renames, unlinks in it) are durable as of its last
//!   successful `fsync`; a file whose name was never made durable is lost with its data.
//!
//! A power cut replaces the live state by the durable one. Real file systems often keep more
//! (ext4's journal commits a new name with the file's `fsync`); a program that is correct here
//! is correct there.

use std::collections::{BTreeMap, HashMap};
use std::ffi::{OsStr, OsString};
use std::fs;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::fault::{Faults, Op};

mod cut;
pub use cut::{Cut, CutReport};

/// The granularity of the pre-images kept for overwritten durable bytes, and of a torn write.
pub(crate) const PAGE: u64 = 4096;

/// The root directory's inode number.
pub(crate) const ROOT: u64 = 1;

/// An errno value, the error of every operation here.
pub(crate) type Errno = i32;

/// What a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
}

/// What `stat` shows of a node.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr {
    pub(crate) ino: u64,
    pub(crate) kind: Kind,
    pub(crate) size: u64,
    pub(crate) perm: u16,
    pub(crate) nlink: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: SystemTime,
}

/// A regular file: its bytes live in the backing directory.
#[derive(Debug)]
struct File {
    data: fs::File,
    len: u64,
    durable_len: u64,
    /// Pre-images of the pages below `durable_len` changed since the last sync.
    undo: BTreeMap<u64, Vec<u8>>,
    /// The last write since the last sync (write sequence, offset, length): what a torn cut
    /// half keeps.
    last_write: Option<(u64, u64, u64)>,
    /// Live names of this file.
    links: u32,
}

/// A directory: its entries live here.
#[derive(Debug, Default)]
struct Dir {
    entries: BTreeMap<OsString, u64>,
    durable: BTreeMap<OsString, u64>,
}

#[derive(Debug)]
enum Body {
    File(File),
    Dir(Dir),
}

#[derive(Debug)]
struct Node {
    body: Body,
    perm: u16,
    uid: u32,
    gid: u32,
    mtime: SystemTime,
    /// Open handles from the kernel.
    open: u32,
}

/// The whole file system.
#[derive(Debug)]
pub(crate) struct State {
    backing: PathBuf,
    nodes: HashMap<u64, Node>,
    next_ino: u64,
    write_seq: u64,
    /// References to each node from directories' durable entries.
    durable_refs: HashMap<u64, u32>,
    pub(crate) faults: Faults,
}

impl State {
    /// An empty file system whose file data goes to `backing` (an empty directory).
    pub(crate) fn new(backing: &Path) -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            ROOT,
            Node {
                body: Body::Dir(Dir::default()),
                perm: 0o755,
                uid: rustix_uid(),
                gid: rustix_gid(),
                mtime: SystemTime::now(),
                open: 0,
            },
        );
        Self {
            backing: backing.to_owned(),
            nodes,
            next_ino: ROOT + 1,
            write_seq: 0,
            durable_refs: HashMap::new(),
            faults: Faults::default(),
        }
    }

    fn node(&self, ino: u64) -> Result<&Node, Errno> {
        self.nodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Node, Errno> {
        self.nodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: u64) -> Result<&Dir, Errno> {
        match &self.node(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self, ino: u64) -> Result<&mut Dir, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::Dir(d) => Ok(d),
            Body::File(_) => Err(libc::ENOTDIR),
        }
    }

    fn file_mut(&mut self, ino: u64) -> Result<&mut File, Errno> {
        match &mut self.node_mut(ino)?.body {
            Body::File(f) => Ok(f),
            Body::Dir(_) => Err(libc::EISDIR),
        }
    }

    /// Handles the kernel holds open.
    pub(crate) fn open_handles(&self) -> u32 {
        self.nodes.values().map(|n| n.open).sum()
    }

    /// What `stat` shows of `ino`.
    pub(crate) fn attr(&self, ino: u64) -> Result<Attr, Errno> {
        let node = self.node(ino)?;
        let (kind, size, nlink) = match &node.body {
            Body::File(f) => (Kind::File, f.len, f.links),
            Body::Dir(d) => (Kind::Dir, 0, 2 + d.entries.len() as u32),
        };
        Ok(Attr { ino, kind, size, perm: node.perm, nlink, uid: node.uid, gid: node.gid, mtime: node.mtime })
    }

    /// The node `name` in directory `parent`.
    pub(crate) fn lookup(&self, parent: u64, name: &OsStr) -> Result<Attr, Errno> {
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        self.attr(ino)
    }

    /// The entries of directory `ino`, in name order.
    pub(crate) fn list(&self, ino: u64) -> Result<Vec<(u64, Kind, OsString)>, Errno> {
        let dir = self.dir(ino)?;
        dir.entries.iter().map(|(name, &child)| Ok((child, self.attr(child)?.kind, name.clone()))).collect()
    }

    fn new_node(&mut self, body: Body, perm: u16, uid: u32, gid: u32) -> u64 {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(ino, Node { body, perm, uid, gid, mtime: SystemTime::now(), open: 0 });
        ino
    }

    fn data_path(&self, ino: u64) -> PathBuf {
        self.backing.join(ino.to_string())
    }

    /// Create the regular file `name` in `parent`, open once.
    pub(crate) fn create(&mut self, parent: u64, name: &OsStr, perm: u16, uid: u32, gid: u32) -> Result<Attr, Errno> {
        self.faults.check(Op::Create)?;
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let path = self.data_path(self.next_ino);
        let data = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
        let file = File { data, len: 0, durable_len: 0, undo: BTreeMap::new(), last_write: None, links: 1 };
        let ino = self.new_node(Body::File(file), perm, uid, gid);
        self.node_mut(ino)?.open = 1;
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        self.attr(ino)
    }

    /// Create the directory `name` in `parent`.
    pub(crate) fn mkdir(&mut self, parent: u64, name: &OsStr, perm: u16, uid: u32, gid: u32) -> Result<Attr, Errno> {
        self.faults.check(Op::Mkdir)?;
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        let ino = self.new_node(Body::Dir(Dir::default()), perm, uid, gid);
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        self.attr(ino)
    }

    /// Remove the file name `name` from `parent`.
    pub(crate) fn unlink(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        self.faults.check(Op::Unlink)?;
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        self.file_mut(ino)?.links -= 1;
        self.dir_mut(parent)?.entries.remove(name);
        self.collect(ino);
        Ok(())
    }

    /// Remove the empty directory `name` from `parent`.
    pub(crate) fn rmdir(&mut self, parent: u64, name: &OsStr) -> Result<(), Errno> {
        self.faults.check(Op::Unlink)?;
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        if !self.dir(ino)?.entries.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        self.dir_mut(parent)?.entries.remove(name);
        Ok(())
    }

    /// Add the name `name` in `parent` for the file `ino`.
    pub(crate) fn link(&mut self, ino: u64, parent: u64, name: &OsStr) -> Result<Attr, Errno> {
        self.faults.check(Op::Link)?;
        if self.dir(parent)?.entries.contains_key(name) {
            return Err(libc::EEXIST);
        }
        self.file_mut(ino)?.links += 1;
        self.dir_mut(parent)?.entries.insert(name.to_owned(), ino);
        self.attr(ino)
    }

    /// Move `name` in `parent` to `new_name` in `new_parent`, replacing what is there.
    pub(crate) fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
        no_replace: bool,
    ) -> Result<(), Errno> {
        self.faults.check(Op::Rename)?;
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        let moving = self.attr(ino)?.kind;
        self.dir(new_parent)?;
        if moving == Kind::Dir && self.contains(ino, new_parent) {
            return Err(libc::EINVAL); // a directory moved into itself
        }
        if let Some(&old) = self.dir(new_parent)?.entries.get(new_name) {
            if old == ino {
                return Ok(());
            }
            if no_replace {
                return Err(libc::EEXIST);
            }
            match (moving, self.attr(old)?.kind) {
                (Kind::File, Kind::Dir) => return Err(libc::EISDIR),
                (Kind::Dir, Kind::File) => return Err(libc::ENOTDIR),
                (Kind::Dir, Kind::Dir) if !self.dir(old)?.entries.is_empty() => {
                    return Err(libc::ENOTEMPTY);
                }
                (Kind::File, Kind::File) => self.file_mut(old)?.links -= 1,
                (Kind::Dir, Kind::Dir) => {}
            }
            self.dir_mut(new_parent)?.entries.remove(new_name);
            self.collect(old);
        }
        self.dir_mut(parent)?.entries.remove(name);
        self.dir_mut(new_parent)?.entries.insert(new_name.to_owned(), ino);
        Ok(())
    }

    /// Swap the nodes two names refer to (`renameat2(RENAME_EXCHANGE)`): both must exist, and
    /// neither may be a directory that would end up inside itself. Like every entry change,
    /// durable only once each directory is synced.
    pub(crate) fn exchange(
        &mut self,
        parent: u64,
        name: &OsStr,
        new_parent: u64,
        new_name: &OsStr,
    ) -> Result<(), Errno> {
        self.faults.check(Op::Rename)?;
        let a = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        let b = *self.dir(new_parent)?.entries.get(new_name).ok_or(libc::ENOENT)?;
        if a == b {
            return Ok(());
        }
        if (self.attr(a)?.kind == Kind::Dir && self.contains(a, new_parent))
            || (self.attr(b)?.kind == Kind::Dir && self.contains(b, parent))
        {
            return Err(libc::EINVAL);
        }
        self.dir_mut(parent)?.entries.insert(name.to_owned(), b);
        self.dir_mut(new_parent)?.entries.insert(new_name.to_owned(), a);
        Ok(())
    }

    /// Whether `inner` is `dir` or below it (live entries).
    fn contains(&self, dir: u64, inner: u64) -> bool {
        let mut stack = vec![dir];
        while let Some(at) = stack.pop() {
            if at == inner {
                return true;
            }
            if let Ok(d) = self.dir(at) {
                stack.extend(d.entries.values().copied().filter(|c| self.dir(*c).is_ok()));
            }
        }
        false
    }

    /// A kernel handle on `ino` opened (`trunc`: and truncated it).
    pub(crate) fn open(&mut self, ino: u64, trunc: bool) -> Result<(), Errno> {
        self.faults.check(Op::Open)?;
        if trunc {
            self.truncate(ino, 0)?;
        }
        self.node_mut(ino)?.open += 1;
        Ok(())
    }

    /// A kernel handle on `ino` closed.
    pub(crate) fn release(&mut self, ino: u64) {
        if let Some(node) = self.nodes.get_mut(&ino) {
            node.open = node.open.saturating_sub(1);
            self.collect(ino);
        }
    }

    /// Delete a file nothing names (live or durably) and nothing holds open.
    fn collect(&mut self, ino: u64) {
        let Some(node) = self.nodes.get(&ino) else {
            return;
        };
        let Body::File(file) = &node.body else {
            return;
        };
        if file.links == 0 && node.open == 0 && !self.durable_refs.contains_key(&ino) {
            self.nodes.remove(&ino);
            let _ = fs::remove_file(self.data_path(ino));
        }
    }

    /// Up to `size` bytes of `ino` from `offset`.
    pub(crate) fn read(&mut self, ino: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        self.faults.check(Op::Read)?;
        let file = self.file_mut(ino)?;
        let end = file.len.min(offset.saturating_add(u64::from(size)));
        if end <= offset {
            return Ok(Vec::new());
        }
        let mut buf = vec![0; (end - offset) as usize];
        file.data.read_exact_at(&mut buf, offset).map_err(os)?;
        Ok(buf)
    }

    /// Write `data` to `ino` at `offset`.
    pub(crate) fn write(&mut self, ino: u64, offset: u64, data: &[u8]) -> Result<u32, Errno> {
        self.faults.check(Op::Write)?;
        self.write_seq += 1;
        let seq = self.write_seq;
        let file = self.file_mut(ino)?;
        let end = offset + data.len() as u64;
        file.save_pages(offset, end.min(file.durable_len))?;
        file.data.write_all_at(data, offset).map_err(os)?;
        file.len = file.len.max(end);
        file.last_write = Some((seq, offset, data.len() as u64));
        self.node_mut(ino)?.mtime = SystemTime::now();
        Ok(data.len() as u32)
    }

    /// Set the length of `ino`.
    pub(crate) fn truncate(&mut self, ino: u64, size: u64) -> Result<(), Errno> {
        self.faults.check(Op::Truncate)?;
        let file = self.file_mut(ino)?;
        if size < file.durable_len {
            file.save_pages(size, file.durable_len)?;
        }
        file.data.set_len(size).map_err(os)?;
        file.len = size;
        self.node_mut(ino)?.mtime = SystemTime::now();
        Ok(())
    }

    /// Allocate `len` bytes of `ino` from `offset` (`keep_size`: without growing it).
    pub(crate) fn fallocate(&mut self, ino: u64, offset: u64, len: u64, keep_size: bool) -> Result<(), Errno> {
        self.faults.check(Op::Fallocate)?;
        let file = self.file_mut(ino)?;
        let flags = if keep_size { rustix::fs::FallocateFlags::KEEP_SIZE } else { rustix::fs::FallocateFlags::empty() };
        rustix::fs::fallocate(&file.data, flags, offset, len).map_err(|e| e.raw_os_error())?;
        if !keep_size {
            file.len = file.len.max(offset + len);
        }
        Ok(())
    }

    /// Set the permission bits of `ino`.
    pub(crate) fn chmod(&mut self, ino: u64, perm: u16) -> Result<(), Errno> {
        self.node_mut(ino)?.perm = perm;
        Ok(())
    }

    /// `fsync`/`fdatasync` of `ino`: its bytes and length become durable.
    pub(crate) fn fsync(&mut self, ino: u64) -> Result<(), Errno> {
        self.faults.check(Op::Fsync)?;
        // Durability is this record, not the host's disk: the backing file is not synced.
        let file = self.file_mut(ino)?;
        file.durable_len = file.len;
        file.undo.clear();
        file.last_write = None;
        Ok(())
    }

    /// `fsync` of the directory `ino`: its entries become durable.
    pub(crate) fn fsync_dir(&mut self, ino: u64) -> Result<(), Errno> {
        self.faults.check(Op::FsyncDir)?;
        let dir = self.dir_mut(ino)?;
        let old = std::mem::replace(&mut dir.durable, dir.entries.clone());
        let new: Vec<u64> = dir.durable.values().copied().collect();
        for child in new {
            *self.durable_refs.entry(child).or_default() += 1;
        }
        for child in old.into_values() {
            if let Some(n) = self.durable_refs.get_mut(&child) {
                *n -= 1;
                if *n == 0 {
                    self.durable_refs.remove(&child);
                    self.collect(child);
                }
            }
        }
        Ok(())
    }
}

impl File {
    /// Keep the pre-images of the durable pages in `[from, to)` not kept yet.
    fn save_pages(&mut self, from: u64, to: u64) -> Result<(), Errno> {
        if from >= to {
            return Ok(());
        }
        for page in from / PAGE..to.div_ceil(PAGE) {
            if self.undo.contains_key(&page) {
                continue;
            }
            let start = page * PAGE;
            let end = (start + PAGE).min(self.durable_len);
            let mut buf = vec![0; (end - start) as usize];
            // Bytes past the live length read as what they were: the file was cut shorter
            // only after every page below `durable_len` was saved.
            self.data.read_exact_at(&mut buf, start).map_err(os)?;
            self.undo.insert(page, buf);
        }
        Ok(())
    }
}

fn os(e: std::io::Error) -> Errno {
    e.raw_os_error().unwrap_or(libc::EIO)
}

fn rustix_uid() -> u32 {
    rustix::process::getuid().as_raw()
}

fn rustix_gid() -> u32 {
    rustix::process::getgid().as_raw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().unwrap();
        let state = State::new(dir.path());
        (dir, state)
    }

    fn read_all(s: &mut State, ino: u64) -> Vec<u8> {
        s.read(ino, 0, u32::MAX).unwrap()
    }

    #[test]
    fn synced_bytes_survive_and_unsynced_bytes_do_not() {
        let (_d, mut s) = fs();
        let f = s.create(ROOT, "a".as_ref(), 0o644, 0, 0).unwrap().ino;
        s.fsync_dir(ROOT).unwrap();
        s.write(f, 0, b"hello").unwrap();
        s.fsync(f).unwrap();
        s.write(f, 5, b" world").unwrap();
        s.write(f, 0, b"J").unwrap();
        s.release(f);
        let report = s.cut(Cut::default()).unwrap();
        assert_eq!(read_all(&mut s, f), b"hello");
        assert_eq!(report.files_reverted, 1);
        assert!(report.bytes_discarded >= 6);
    }

    #[test]
    fn a_name_never_synced_is_lost_with_its_synced_data() {
        let (_d, mut s) = fs();
        let f = s.create(ROOT, "a".as_ref(), 0o644, 0, 0).unwrap().ino;
        s.write(f, 0, b"data").unwrap();
        s.fsync(f).unwrap();
        s.release(f);
        let report = s.cut(Cut::default()).unwrap();
        assert_eq!(s.lookup(ROOT, "a".as_ref()).unwrap_err(), libc::ENOENT);
        assert_eq!(report.entries_dropped, 1);
        assert_eq!(report.nodes_deleted, 1);
    }

    #[test]
    fn an_unsynced_rename_and_unlink_are_undone() {
        let (_d, mut s) = fs();
        let a = s.create(ROOT, "a".as_ref(), 0o644, 0, 0).unwrap().ino;
        s.write(a, 0, b"old").unwrap();
        s.fsync(a).unwrap();
        s.release(a);
        let b = s.create(ROOT, "tmp".as_ref(), 0o644, 0, 0).unwrap().ino;
        s.write(b, 0, b"new").unwrap();
        s.fsync(b).unwrap();
        s.release(b);
        s.fsync_dir(ROOT).unwrap();
        // Replace "a" by "tmp", and remove nothing durably.
        s.rename(ROOT, "tmp".as_ref(), ROOT, "a".as_ref(), false).unwrap();
        let a_now = s.lookup(ROOT, "a".as_ref()).unwrap().ino;
        assert_eq!(read_all(&mut s, a_now), b"new");
        s.cut(Cut::default()).unwrap();
        let a_now = s.lookup(ROOT, "a".as_ref()).unwrap().ino;
        assert_eq!(read_all(&mut s, a_now), b"old");
        assert_eq!(s.lookup(ROOT, "tmp".as_ref()).unwrap().ino, b);
        // Now durably: the rename sticks and the old file goes.
        s.rename(ROOT, "tmp".as_ref(), ROOT, "a".as_ref(), false).unwrap();
        s.fsync_dir(ROOT).unwrap();
        s.cut(Cut::default()).unwrap();
        let a_now = s.lookup(ROOT, "a".as_ref()).unwrap().ino;
        assert_eq!(read_all(&mut s, a_now), b"new");
        assert!(s.attr(a).is_err(), "the replaced file is deleted");
    }

    #[test]
    fn a_truncated_durable_file_comes_back_whole() {
        let (_d, mut s) = fs();
        let f = s.create(ROOT, "a".as_ref(), 0o644, 0, 0).unwrap().ino;
        s.fsync_dir(ROOT).unwrap();
        let bytes: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        s.write(f, 0, &bytes).unwrap();
        s.fsync(f).unwrap();
        s.truncate(f, 100).unwrap();
        s.write(f, 50, &[0xff; 9_000]).unwrap();
        s.release(f);
        s.cut(Cut::default()).unwrap();
        assert_eq!(read_all(&mut s, f), bytes);
    }

    #[test]
    fn a_torn_cut_keeps_a_sector_aligned_prefix_of_the_last_write() {
        let (_d, mut s) = fs();
        let f = s.create(ROOT, "a".as_ref(), 0o644, 0, 0).unwrap().ino;
        s.fsync(f).unwrap();
        s.fsync_dir(ROOT).unwrap();
        s.write(f, 0, &[1; 100]).unwrap();
        s.write(f, 100, &[7; 8192]).unwrap();
        s.release(f);
        let kept = (0..64)
            .map(|seed| {
                let (_d, mut s2) = fs();
                let g = s2.create(ROOT, "a".as_ref(), 0o644, 0, 0).unwrap().ino;
                s2.fsync(g).unwrap();
                s2.fsync_dir(ROOT).unwrap();
                s2.write(g, 0, &[7; 8192]).unwrap();
                s2.release(g);
                let r = s2.cut(Cut { tear: true, seed }).unwrap();
                assert_eq!(r.torn_bytes_kept % 512, 0);
                assert_eq!(read_all(&mut s2, g), vec![7; r.torn_bytes_kept as usize]);
                r.torn_bytes_kept
            })
            .collect::<Vec<_>>();
        assert!(kept.iter().any(|&k| k > 0) && kept.iter().any(|&k| k < 8192));
        let r = s.cut(Cut { tear: true, seed: 3 }).unwrap();
        // Only the newest write is torn: the older unsynced one is gone.
        let got = read_all(&mut s, f);
        if r.torn_bytes_kept == 0 {
            assert!(got.is_empty());
        } else {
            assert_eq!(got.len() as u64, 100 + r.torn_bytes_kept);
            assert!(got[..100].iter().all(|&b| b == 0));
            assert!(got[100..].iter().all(|&b| b == 7));
        }
    }

    #[test]
    fn a_directory_cannot_move_into_itself() {
        let (_d, mut s) = fs();
        let a = s.mkdir(ROOT, "a".as_ref(), 0o755, 0, 0).unwrap().ino;
        s.mkdir(a, "b".as_ref(), 0o755, 0, 0).unwrap();
        let b = s.lookup(a, "b".as_ref()).unwrap().ino;
        assert_eq!(s.rename(ROOT, "a".as_ref(), b, "a".as_ref(), false), Err(libc::EINVAL));
        s.rename(a, "b".as_ref(), ROOT, "b".as_ref(), false).unwrap();
    }

    #[test]
    fn an_unlinked_open_file_stays_readable_until_closed() {
        let (_d, mut s) = fs();
        let f = s.create(ROOT, "a".as_ref(), 0o644, 0, 0).unwrap().ino;
        s.write(f, 0, b"x").unwrap();
        s.unlink(ROOT, "a".as_ref()).unwrap();
        assert_eq!(read_all(&mut s, f), b"x");
        s.release(f);
        assert!(s.attr(f).is_err());
    }
}
