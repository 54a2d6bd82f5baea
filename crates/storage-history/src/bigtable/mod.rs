//! The Bigtable archive (crate `bigtable_rs`, TLS through rustls/ring; the emulator in tests).
//!
//! Layout (one column family `x` per table, one cell version):
//!
//! | table | row | cells |
//! |---|---|---|
//! | `<prefix>blocks` | height, 16 hex digits | `r` record (zstd), `l` bloom, `h` hash |
//! | `<prefix>tx` | tx hash, hex | `p` height ‖ index |
//! | `<prefix>bits` | section ‖ `/` ‖ bit | `v` bit vector (zstd) |
//! | `<prefix>vertices` | sequence, 16 hex digits | `r` record (zstd), `h` hash |
//! | `<prefix>vertex_index` | vertex hash, hex | `s` sequence |
//! | `<prefix>meta` | `chain`, `dag` | `w` watermark (JSON) |
//!
//! A block by height is one row, a transaction by hash two; blooms of a range are one scan of
//! the blocks table reading only `l`. Bigtable is atomic per row, so a range is written row by
//! row with fixed timestamps (a retry rewrites the same cells), read back and compared, and
//! only then does the watermark row move.

mod admin;
mod keys;
mod rows;

use std::sync::Mutex;
use std::time::Duration;

use bigtable_rs::bigtable::{BigTable, BigTableConnection};

use self::keys::{TableId, col};
use self::rows::{Cells, Mutations};
use crate::cell;
use crate::config::HistoryConfig;
use crate::error::HistoryError;
use crate::io::Io;
use crate::{
    ArchivedVertex, BitSection, ChainItem, DagItem, HistoryTier, Kind, Mark, Progress, SECTION_BITS, TierReport,
    TxPointer, Uploaded, VerifyItem, check_consecutive,
};

/// Rows per read request while verifying or scanning.
const SCAN_ROWS: u64 = 1_000;
/// Row keys per point-read request (keeps requests far below gRPC's message limit).
const KEYS_PER_READ: usize = 500;

/// The Bigtable archive.
pub struct BigtableTier {
    io: Io,
    client: BigTable,
    shown: String,
    prefix: String,
    level: i32,
    batch_blocks: u64,
    batch_vertices: u64,
    /// The last watermarks read or written, so reads below them need no round trip.
    marks: Mutex<[Option<Mark>; 2]>,
}

impl std::fmt::Debug for BigtableTier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl BigtableTier {
    /// Connects (to `bigtable.emulator`, else `BIGTABLE_EMULATOR_HOST`, else the real service
    /// with Google credentials) and creates the tables if configured to.
    pub fn open(config: &HistoryConfig) -> Result<Self, HistoryError> {
        let b = &config.bigtable;
        let io = Io::new(Duration::from_millis(config.timeout_ms))?;
        let emulator = b.emulator.clone().or_else(|| std::env::var("BIGTABLE_EMULATOR_HOST").ok());
        let shown = match &emulator {
            Some(host) => format!("bigtable://{}/{} (emulator {host})", b.project, b.instance),
            None => format!("bigtable://{}/{}", b.project, b.instance),
        };
        let (project, instance, channels) = (b.project.clone(), b.instance.clone(), b.channels);
        let timeout = Some(Duration::from_millis(config.timeout_ms));
        let connect_emulator = emulator.clone();
        let connection = io.run(&shown, "connecting", {
            let shown = shown.clone();
            async move {
                let c = match connect_emulator {
                    Some(host) => {
                        BigTableConnection::new_with_emulator(&host, &project, &instance, false, channels, timeout)
                    }
                    None => BigTableConnection::new(&project, &instance, false, channels, timeout).await,
                };
                c.map_err(|e| failed(&shown, "connecting", "", e))
            }
        })?;
        let tier = BigtableTier {
            client: connection.client(),
            io,
            shown,
            prefix: b.table_prefix.clone(),
            level: config.zstd_level,
            batch_blocks: config.bigtable_batch_blocks,
            batch_vertices: config.bigtable_batch_vertices,
            marks: Mutex::new([None, None]),
        };
        if b.create_tables {
            let admin = admin::Admin { project: b.project.clone(), instance: b.instance.clone(), emulator };
            let names: Vec<String> = TableId::ALL.iter().map(|t| tier.table_id(*t)).collect();
            let shown = tier.shown.clone();
            tier.io.run(&tier.shown, "creating tables", async move { admin.ensure_tables(&shown, &names).await })?;
        }
        Ok(tier)
    }

    fn table_id(&self, t: TableId) -> String {
        format!("{}{}", self.prefix, t.suffix())
    }

    fn table_name(&self, t: TableId) -> String {
        self.client.get_full_table_name(&self.table_id(t))
    }

    /// Runs `f` with a client on the archive's runtime.
    fn run<T: Send + 'static, F>(&self, action: &str, f: impl FnOnce(BigTable, String) -> F) -> Result<T, HistoryError>
    where
        F: std::future::Future<Output = Result<T, HistoryError>> + Send + 'static,
    {
        self.io.run(&self.shown, action, f(self.client.clone(), self.shown.clone()))
    }

    fn cached_mark(&self, kind: Kind) -> Option<Mark> {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())[kind as usize].clone()
    }

    fn remember(&self, kind: Kind, mark: Option<Mark>) {
        self.marks.lock().unwrap_or_else(|p| p.into_inner())[kind as usize] = mark;
    }

    /// Whether item `n` of `kind` is below the watermark (re-reading it once if the cached one
    /// does not cover `n`).
    fn covered(&self, kind: Kind, n: u64) -> Result<bool, HistoryError> {
        if let Some(m) = self.cached_mark(kind)
            && (m.first..m.next).contains(&n)
        {
            return Ok(true);
        }
        Ok(self.mark(kind)?.is_some_and(|m| (m.first..m.next).contains(&n)))
    }

    /// Writes `mark` over the watermark cell as this upload read it (`expected`: its bytes,
    /// `None` for no watermark yet), atomically: if another uploader moved it meanwhile,
    /// nothing is written and the answer is [`HistoryError::Conflict`].
    fn write_mark(&self, kind: Kind, expected: Option<Vec<u8>>, mark: &Mark) -> Result<(), HistoryError> {
        let text = serde_json::to_vec(mark).map_err(|e| HistoryError::Config(e.to_string()))?;
        let table = self.table_name(TableId::Meta);
        let written = self.run("writing the watermark", move |mut c, shown| async move {
            rows::set_if(&mut c, &shown, &table, keys::mark(kind), col::MARK, expected, text).await
        })?;
        if !written {
            self.remember(kind, None);
            return Err(HistoryError::Conflict {
                archive: self.shown.clone(),
                what: format!("the {kind} watermark row"),
            });
        }
        self.remember(kind, Some(mark.clone()));
        Ok(())
    }

    /// The watermark of `kind` and its cell's bytes as read now (what [`Self::write_mark`]
    /// expects).
    fn mark_versioned(&self, kind: Kind) -> Result<Option<(Mark, Vec<u8>)>, HistoryError> {
        let found = match self.row(TableId::Meta, keys::mark(kind), Some(col::MARK))? {
            None => None,
            Some(cells) => {
                let text = cells.get(col::MARK).ok_or_else(|| self.corrupt("the watermark row", "no cell"))?;
                let mark = serde_json::from_slice::<Mark>(text)
                    .map_err(|e| self.corrupt("the watermark row", e.to_string()))?;
                if mark.next <= mark.first {
                    return Err(self.corrupt(
                        "the watermark row",
                        format!("empty or reversed (first {}, next {})", mark.first, mark.next),
                    ));
                }
                Some((mark, text.to_vec()))
            }
        };
        self.remember(kind, found.as_ref().map(|(m, _)| m.clone()));
        Ok(found)
    }

    /// Reads `rows` back and checks every cell `sent` wrote is there with the same bytes.
    fn read_back(&self, table: TableId, sent: &Mutations, action: &'static str) -> Result<(), HistoryError> {
        let name = self.table_name(table);
        let keys = sent.row_keys();
        let found = self.run(action, move |mut c, shown| async move {
            rows::read_keys(&mut c, &shown, &name, keys, None, KEYS_PER_READ).await
        })?;
        sent.compare(&found).map_err(|reason| HistoryError::Corrupt {
            archive: self.shown.clone(),
            what: format!("table {} after upload", self.table_id(table)),
            reason,
        })
    }

    fn corrupt(&self, what: impl Into<String>, reason: impl Into<String>) -> HistoryError {
        HistoryError::Corrupt { archive: self.shown.clone(), what: what.into(), reason: reason.into() }
    }

    /// Reads one row's cells.
    fn row(&self, table: TableId, key: Vec<u8>, only: Option<&'static [u8]>) -> Result<Option<Cells>, HistoryError> {
        let name = self.table_name(table);
        let mut rows = self.run("reading", move |mut c, shown| async move {
            rows::read_keys(&mut c, &shown, &name, vec![key], only, KEYS_PER_READ).await
        })?;
        Ok(rows.pop().map(|(_, cells)| cells))
    }

    /// Scans rows `from..=to` (number keys) of `table`.
    fn scan(
        &self,
        table: TableId,
        from: u64,
        to: u64,
        only: Option<&'static [u8]>,
    ) -> Result<Vec<(Vec<u8>, Cells)>, HistoryError> {
        let name = self.table_name(table);
        self.run("scanning", move |mut c, shown| async move {
            rows::read_range(&mut c, &shown, &name, keys::number(from), keys::number(to), only).await
        })
    }

    fn unpack(&self, what: impl Fn() -> String, cells: &Cells, column: &[u8]) -> Result<Vec<u8>, HistoryError> {
        let packed = cells.get(column).ok_or_else(|| self.corrupt(what(), "a cell is missing"))?;
        cell::unpack(packed).map_err(|reason| self.corrupt(what(), reason))
    }

    /// Uploads blocks over the watermark `read` (as read, with its cell's bytes): the new
    /// watermark is written only if the archive's is still that one.
    fn upload_chain_over(
        &self,
        read: Option<(Mark, Vec<u8>)>,
        items: &[ChainItem],
        sections: &[BitSection],
    ) -> Result<Uploaded, HistoryError> {
        let (current, expected) = read.unzip();
        let (first, last) = check_consecutive(Kind::Chain, current.as_ref(), items.iter().map(|i| i.number))?;
        let (mut blocks, mut txs, mut bits) = (Mutations::default(), Mutations::default(), Mutations::default());
        for item in items {
            blocks
                .row(keys::number(item.number))
                .set(col::RECORD, cell::pack(&item.record, self.level))
                .set(col::BLOOM, item.bloom.clone())
                .set(col::HASH, item.hash.clone());
            for (index, tx) in item.tx_hashes.iter().enumerate() {
                txs.row(keys::hash(tx)).set(col::POINTER, keys::pointer(item.number, index as u32));
            }
        }
        for s in sections {
            if s.vectors.len() != SECTION_BITS {
                return Err(HistoryError::Config(format!("section {} has {} vectors", s.section, s.vectors.len())));
            }
            for (b, v) in s.vectors.iter().enumerate() {
                bits.row(keys::bit(s.section, b as u16)).set(col::VECTOR, cell::pack(v, self.level));
            }
        }
        let bytes = blocks.bytes() + txs.bytes() + bits.bytes();
        // Index rows first, blocks last: a block row is never there without its index rows.
        for (table, m) in [(TableId::Tx, &txs), (TableId::Bits, &bits), (TableId::Blocks, &blocks)] {
            let (name, m) = (self.table_name(table), m.clone());
            self.run("uploading blocks", move |mut c, shown| async move { m.send(&mut c, &shown, &name).await })?;
        }
        self.read_back(TableId::Tx, &txs, "reading back transaction rows")?;
        self.read_back(TableId::Bits, &bits, "reading back bloom-bit rows")?;
        self.read_back(TableId::Blocks, &blocks, "reading back block rows")?;
        let last_hash = items.last().map(|i| i.hash.clone()).unwrap_or_default();
        let mark = Mark { first: current.map_or(first, |m| m.first), next: last + 1, last_hash };
        self.write_mark(Kind::Chain, expected, &mark)?;
        Ok(Uploaded { mark, bytes })
    }

    /// Checks every item of `kind` below the watermark, in scans of [`SCAN_ROWS`].
    fn verify_items(
        &self,
        kind: Kind,
        progress: &dyn Progress,
        report: &mut TierReport,
        item: &mut VerifyItem<'_>,
    ) -> Result<(), HistoryError> {
        let Some(mark) = self.mark(kind)? else { return Ok(()) };
        let table = match kind {
            Kind::Chain => TableId::Blocks,
            Kind::Dag => TableId::Vertices,
        };
        progress.phase(&format!("{kind} rows"), mark.next - mark.first);
        let mut from = mark.first;
        while from < mark.next {
            let to = (from + SCAN_ROWS - 1).min(mark.next - 1);
            let mut expected = from;
            for (key, cells) in self.scan(table, from, to, None)? {
                let Some(n) = keys::parse_number(&key).filter(|n| (expected..=to).contains(n)) else {
                    report.problems.push(format!("{kind}: unexpected row key {}", String::from_utf8_lossy(&key)));
                    continue;
                };
                if n > expected {
                    report.problems.push(format!("{kind} rows {expected}..={} are missing", n - 1));
                }
                report.units += 1;
                report.bytes += cells.bytes();
                match cells.get(col::RECORD).map(cell::unpack) {
                    Some(Ok(record)) => {
                        report.items += 1;
                        if let Err(e) = item(kind, n, &record) {
                            report.problems.push(format!("{kind} {n}: {e}"));
                        }
                    }
                    Some(Err(e)) => report.problems.push(format!("{kind} {n}: record: {e}")),
                    None => report.problems.push(format!("{kind} {n}: no record cell")),
                }
                if cells.get(col::HASH).is_none() {
                    report.problems.push(format!("{kind} {n}: no hash cell"));
                }
                expected = n + 1;
            }
            if expected <= to {
                report.problems.push(format!("{kind} rows {expected}..={to} are missing"));
            }
            progress.advance(to + 1 - from);
            from = to + 1;
        }
        Ok(())
    }
}

/// Maps a client failure: the one place Bigtable errors are classified, by their kind.
pub(crate) fn failed(archive: &str, action: &str, table: &str, e: bigtable_rs::bigtable::Error) -> HistoryError {
    use bigtable_rs::bigtable::Error as E;
    let (archive, action) = (archive.to_owned(), action.to_owned());
    let hint = "GOOGLE_APPLICATION_CREDENTIALS or the metadata server";
    match e {
        E::RpcError(status) => status_error(archive, action, table, status),
        E::TransportError(t) => HistoryError::Unavailable { archive, action, reason: t.to_string() },
        E::IoError(io) => HistoryError::Unavailable { archive, action, reason: io.to_string() },
        E::TimeoutError(secs) => {
            HistoryError::Unavailable { archive, action, reason: format!("no answer within {secs} s") }
        }
        E::AccessTokenError(reason) => HistoryError::Denied { archive, action, hint, reason },
        E::GCPAuthError(g) => HistoryError::Denied { archive, action, hint, reason: g.to_string() },
        other => HistoryError::Remote { archive, action, reason: other.to_string() },
    }
}

/// Maps a gRPC status by its code.
pub(crate) fn status_error(archive: String, action: String, table: &str, status: tonic::Status) -> HistoryError {
    use tonic::Code;
    let reason = format!("{:?}: {}", status.code(), status.message());
    // A connection that failed or broke is reported as `Unknown`, with the transport's error
    // as its source.
    if status.code() == Code::Unknown && connection_failed(&status) {
        return HistoryError::Unavailable { archive, action, reason };
    }
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled | Code::Aborted | Code::ResourceExhausted => {
            HistoryError::Unavailable { archive, action, reason }
        }
        Code::PermissionDenied | Code::Unauthenticated => {
            HistoryError::Denied { archive, action, hint: "GOOGLE_APPLICATION_CREDENTIALS", reason }
        }
        Code::NotFound if !table.is_empty() => HistoryError::NoTable { archive, table: table.to_owned() },
        _ => HistoryError::Remote { archive, action, reason },
    }
}

/// Whether a status comes from the connection (a transport or I/O error among its sources).
fn connection_failed(status: &tonic::Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::transport::Error>() || e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

impl HistoryTier for BigtableTier {
    fn describe(&self) -> String {
        self.shown.clone()
    }

    fn mark(&self, kind: Kind) -> Result<Option<Mark>, HistoryError> {
        Ok(self.mark_versioned(kind)?.map(|(mark, _)| mark))
    }

    fn next_unit(&self, kind: Kind, next: u64, last_final: u64) -> Option<std::ops::RangeInclusive<u64>> {
        let batch = match kind {
            Kind::Chain => self.batch_blocks,
            Kind::Dag => self.batch_vertices,
        };
        (next <= last_final).then(|| next..=last_final.min(next.saturating_add(batch - 1)))
    }

    fn upload_chain(&self, items: &[ChainItem], sections: &[BitSection]) -> Result<Uploaded, HistoryError> {
        let read = self.mark_versioned(Kind::Chain)?;
        self.upload_chain_over(read, items, sections)
    }

    fn upload_dag(&self, items: &[DagItem]) -> Result<Uploaded, HistoryError> {
        let (current, expected) = self.mark_versioned(Kind::Dag)?.unzip();
        let (first, last) = check_consecutive(Kind::Dag, current.as_ref(), items.iter().map(|i| i.sequence))?;
        let (mut vertices, mut index) = (Mutations::default(), Mutations::default());
        for item in items {
            vertices
                .row(keys::number(item.sequence))
                .set(col::RECORD, cell::pack(&item.record, self.level))
                .set(col::HASH, item.hash.clone());
            index.row(keys::hash(&item.hash)).set(col::SEQUENCE, item.sequence.to_be_bytes().to_vec());
        }
        let bytes = vertices.bytes() + index.bytes();
        for (table, m) in [(TableId::VertexIndex, &index), (TableId::Vertices, &vertices)] {
            let (name, m) = (self.table_name(table), m.clone());
            self.run("uploading vertices", move |mut c, shown| async move { m.send(&mut c, &shown, &name).await })?;
        }
        self.read_back(TableId::VertexIndex, &index, "reading back vertex index rows")?;
        self.read_back(TableId::Vertices, &vertices, "reading back vertex rows")?;
        let last_hash = items.last().map(|i| i.hash.clone()).unwrap_or_default();
        let mark = Mark { first: current.map_or(first, |m| m.first), next: last + 1, last_hash };
        self.write_mark(Kind::Dag, expected, &mark)?;
        Ok(Uploaded { mark, bytes })
    }

    fn chain_record(&self, number: u64) -> Result<Option<Vec<u8>>, HistoryError> {
        if !self.covered(Kind::Chain, number)? {
            return Ok(None);
        }
        let what = || format!("block row {number}");
        match self.row(TableId::Blocks, keys::number(number), Some(col::RECORD))? {
            Some(cells) => Ok(Some(self.unpack(what, &cells, col::RECORD)?)),
            None => Err(self.corrupt(what(), "missing below the watermark")),
        }
    }

    fn chain_records(&self, numbers: &[u64]) -> Result<Vec<Option<Vec<u8>>>, HistoryError> {
        let Some(&max) = numbers.iter().max() else { return Ok(Vec::new()) };
        self.covered(Kind::Chain, max)?;
        let Some(mark) = self.cached_mark(Kind::Chain) else { return Ok(vec![None; numbers.len()]) };
        let wanted: Vec<u64> = numbers.iter().copied().filter(|n| (mark.first..mark.next).contains(n)).collect();
        let name = self.table_name(TableId::Blocks);
        let row_keys = wanted.iter().map(|n| keys::number(*n)).collect();
        let rows = self.run("reading blocks", move |mut c, shown| async move {
            rows::read_keys(&mut c, &shown, &name, row_keys, Some(col::RECORD), KEYS_PER_READ).await
        })?;
        let found: std::collections::HashMap<Vec<u8>, Cells> = rows.into_iter().collect();
        numbers
            .iter()
            .map(|&n| {
                if !(mark.first..mark.next).contains(&n) {
                    return Ok(None);
                }
                let what = || format!("block row {n}");
                let cells =
                    found.get(&keys::number(n)).ok_or_else(|| self.corrupt(what(), "missing below the watermark"))?;
                Ok(Some(self.unpack(what, cells, col::RECORD)?))
            })
            .collect()
    }

    fn tx(&self, hash: &[u8]) -> Result<Option<TxPointer>, HistoryError> {
        let Some(cells) = self.row(TableId::Tx, keys::hash(hash), None)? else { return Ok(None) };
        let what = || format!("transaction row {}", crate::hex(hash));
        let (number, index) = cells
            .get(col::POINTER)
            .and_then(keys::parse_pointer)
            .ok_or_else(|| self.corrupt(what(), "no valid pointer cell"))?;
        // A row written by an upload whose watermark never moved is not part of the archive.
        Ok(self.covered(Kind::Chain, number)?.then_some(TxPointer { number, index }))
    }

    fn blooms(&self, from: u64, to: u64) -> Result<Vec<(u64, Vec<u8>)>, HistoryError> {
        let cached = self.cached_mark(Kind::Chain).filter(|m| m.next > to);
        let Some(mark) = (match cached {
            Some(m) => Some(m),
            None => self.mark(Kind::Chain)?,
        }) else {
            return Ok(Vec::new());
        };
        let (from, to) = (from.max(mark.first), to.min(mark.next.saturating_sub(1)));
        if from > to || mark.next == 0 {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((to - from + 1) as usize);
        for (key, cells) in self.scan(TableId::Blocks, from, to, Some(col::BLOOM))? {
            let n = keys::parse_number(&key).ok_or_else(|| self.corrupt("a block row key", "not a height"))?;
            let bloom = cells.get(col::BLOOM).ok_or_else(|| self.corrupt(format!("block row {n}"), "no bloom"))?;
            out.push((n, bloom.to_vec()));
        }
        if out.len() as u64 != to - from + 1 {
            return Err(self.corrupt(format!("block rows {from}..={to}"), "rows are missing below the watermark"));
        }
        Ok(out)
    }

    fn section_bits(&self, section: u64, bits: &[u16]) -> Result<Option<Vec<Vec<u8>>>, HistoryError> {
        let name = self.table_name(TableId::Bits);
        let row_keys: Vec<Vec<u8>> = bits.iter().map(|b| keys::bit(section, *b)).collect();
        let found = self.run("reading bloom bits", move |mut c, shown| async move {
            rows::read_keys(&mut c, &shown, &name, row_keys, None, KEYS_PER_READ).await
        })?;
        if found.is_empty() {
            return Ok(None);
        }
        let by_key: std::collections::HashMap<Vec<u8>, Cells> = found.into_iter().collect();
        bits.iter()
            .map(|b| {
                let what = || format!("bloom bits {section}/{b}");
                let cells = by_key.get(&keys::bit(section, *b)).ok_or_else(|| self.corrupt(what(), "row missing"))?;
                self.unpack(what, cells, col::VECTOR)
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }

    fn vertex(&self, sequence: u64) -> Result<Option<ArchivedVertex>, HistoryError> {
        if !self.covered(Kind::Dag, sequence)? {
            return Ok(None);
        }
        let what = || format!("vertex row {sequence}");
        let cells = self
            .row(TableId::Vertices, keys::number(sequence), None)?
            .ok_or_else(|| self.corrupt(what(), "missing"))?;
        let hash = cells.get(col::HASH).ok_or_else(|| self.corrupt(what(), "no hash cell"))?.to_vec();
        Ok(Some((hash, self.unpack(what, &cells, col::RECORD)?)))
    }

    fn vertex_sequence(&self, hash: &[u8]) -> Result<Option<u64>, HistoryError> {
        let Some(cells) = self.row(TableId::VertexIndex, keys::hash(hash), None)? else { return Ok(None) };
        let seq = cells
            .get(col::SEQUENCE)
            .and_then(|c| Some(u64::from_be_bytes(c.try_into().ok()?)))
            .ok_or_else(|| self.corrupt(format!("vertex index row {}", crate::hex(hash)), "no valid sequence"))?;
        Ok(self.covered(Kind::Dag, seq)?.then_some(seq))
    }

    fn verify(&self, progress: &dyn Progress, item: &mut VerifyItem<'_>) -> Result<TierReport, HistoryError> {
        let mut report = TierReport::default();
        self.verify_items(Kind::Chain, progress, &mut report, item)?;
        self.verify_items(Kind::Dag, progress, &mut report, item)?;
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

    /// Uploader A reads the watermark; B moves it twice; A's upload over what it read writes
    /// its rows but not its (older) watermark: `CheckAndMutateRow` keeps the newer one.
    #[test]
    fn a_moved_watermark_is_not_overwritten() {
        let Some(emulator) = crate::testkit::Emulator::start_or_skip("conditional Bigtable watermarks") else {
            return;
        };
        let config = emulator.config("cas_");
        let (a, b) = (BigtableTier::open(&config).unwrap(), BigtableTier::open(&config).unwrap());
        let blocks = |r: std::ops::Range<u64>| r.map(block).collect::<Vec<_>>();
        b.upload_chain(&blocks(0..10), &[]).unwrap();
        let read = a.mark_versioned(Kind::Chain).unwrap();
        b.upload_chain(&blocks(10..20), &[]).unwrap();
        b.upload_chain(&blocks(20..30), &[]).unwrap();
        let err = a.upload_chain_over(read, &blocks(10..20), &[]).unwrap_err();
        assert!(matches!(err, HistoryError::Conflict { .. }), "{err}");
        assert_eq!(a.mark(Kind::Chain).unwrap().map(|m| m.next), Some(30), "the watermark stayed where B left it");
        let err = a.upload_chain_over(None, &blocks(0..10), &[]).unwrap_err();
        assert!(matches!(err, HistoryError::Conflict { .. }), "a first upload expects no watermark: {err}");
        assert_eq!(b.mark(Kind::Chain).unwrap().map(|m| m.next), Some(30));
    }
}
