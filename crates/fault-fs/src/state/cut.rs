//! The power cut: every file and directory put back to what was made durable.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::FileExt;

use super::{Body, Errno, File, Node, PAGE, ROOT, State, os};

/// How a power cut treats the last write that was not synced.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cut {
    /// Keep a random, 512-byte-aligned prefix of the most recent unsynced write (a torn write:
    /// the disk wrote some sectors of it before the power went).
    pub tear: bool,
    /// Seed of the torn prefix's length.
    pub seed: u64,
}

/// What a power cut discarded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutReport {
    /// Files whose unsynced bytes or length were reverted.
    pub files_reverted: u64,
    /// Unsynced bytes discarded (appended bytes and overwritten pages).
    pub bytes_discarded: u64,
    /// Directory entries that existed but were not durable (creates, renames, links), dropped.
    pub entries_dropped: u64,
    /// Entries removed but not durably (unlinks, renames away), brought back.
    pub entries_restored: u64,
    /// Files and directories no durable name reaches any more, deleted.
    pub nodes_deleted: u64,
    /// Bytes of the last unsynced write that a torn cut kept.
    pub torn_bytes_kept: u64,
}

impl State {
    /// Lose everything not durable, as a power cut does. No handle may be open.
    pub(crate) fn cut(&mut self, cut: Cut) -> Result<CutReport, Errno> {
        let mut report = CutReport::default();
        // The write a torn cut half keeps: the newest unsynced one, read before reverting.
        let torn = if cut.tear {
            self.newest_unsynced_write()
                .map(|(ino, offset, len)| -> Result<_, Errno> {
                    let file = self.file_mut(ino)?;
                    // A truncate since may have cut the write short.
                    let len = len.min(file.len.saturating_sub(offset));
                    let mut bytes = vec![0; len as usize];
                    file.data.read_exact_at(&mut bytes, offset).map_err(os)?;
                    Ok((ino, offset, bytes))
                })
                .transpose()?
        } else {
            None
        };
        for node in self.nodes.values_mut() {
            node.open = 0;
            match &mut node.body {
                Body::File(file) => {
                    if file.revert(&mut report)? {
                        report.files_reverted += 1;
                    }
                }
                Body::Dir(dir) => {
                    for (name, ino) in &dir.entries {
                        if dir.durable.get(name) != Some(ino) {
                            report.entries_dropped += 1;
                        }
                    }
                    for (name, ino) in &dir.durable {
                        if dir.entries.get(name) != Some(ino) {
                            report.entries_restored += 1;
                        }
                    }
                    dir.entries = dir.durable.clone();
                }
            }
        }
        self.sweep(&mut report);
        if let Some((ino, offset, bytes)) = torn
            && let Ok(file) = self.file_mut(ino)
        {
            let keep = (splitmix(cut.seed) % (bytes.len() as u64 + 1)) / 512 * 512;
            if keep > 0 {
                file.data.write_all_at(&bytes[..keep as usize], offset).map_err(os)?;
                file.len = file.len.max(offset + keep);
                file.durable_len = file.len;
                report.torn_bytes_kept = keep;
            }
        }
        Ok(report)
    }

    fn newest_unsynced_write(&self) -> Option<(u64, u64, u64)> {
        self.nodes
            .iter()
            .filter_map(|(&ino, node)| match &node.body {
                Body::File(f) => f.last_write.map(|(seq, off, len)| (seq, ino, off, len)),
                Body::Dir(_) => None,
            })
            .max()
            .map(|(_, ino, off, len)| (ino, off, len))
    }

    /// After a cut: delete what no name reaches from the root; recount names.
    fn sweep(&mut self, report: &mut CutReport) {
        let mut links: HashMap<u64, u32> = HashMap::new();
        let mut stack = vec![ROOT];
        links.insert(ROOT, 1);
        while let Some(ino) = stack.pop() {
            if let Some(Node { body: Body::Dir(dir), .. }) = self.nodes.get(&ino) {
                for &child in dir.entries.values() {
                    let n = links.entry(child).or_default();
                    *n += 1;
                    if *n == 1 {
                        stack.push(child);
                    }
                }
            }
        }
        let dead: Vec<u64> = self.nodes.keys().copied().filter(|ino| !links.contains_key(ino)).collect();
        for ino in dead {
            if let Some(Node { body: Body::File(_), .. }) = self.nodes.remove(&ino) {
                let _ = fs::remove_file(self.data_path(ino));
            }
            report.nodes_deleted += 1;
        }
        self.durable_refs = links.clone();
        self.durable_refs.remove(&ROOT);
        for (ino, node) in &mut self.nodes {
            if let Body::File(file) = &mut node.body {
                file.links = links.get(ino).copied().unwrap_or(0);
            }
        }
    }
}

impl File {
    /// Put back the durable bytes and length; whether anything changed.
    fn revert(&mut self, report: &mut CutReport) -> Result<bool, Errno> {
        self.last_write = None;
        if self.undo.is_empty() && self.len == self.durable_len {
            return Ok(false);
        }
        report.bytes_discarded += self.len.saturating_sub(self.durable_len);
        if self.len < self.durable_len {
            self.data.set_len(self.durable_len).map_err(os)?;
        }
        for (page, bytes) in std::mem::take(&mut self.undo) {
            self.data.write_all_at(&bytes, page * PAGE).map_err(os)?;
            report.bytes_discarded += bytes.len() as u64;
        }
        self.data.set_len(self.durable_len).map_err(os)?;
        self.len = self.durable_len;
        Ok(true)
    }
}

/// A 64-bit mix of `seed` (SplitMix64), for the torn length.
fn splitmix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
