//! The legacy flat layout (before typed tables): one keyspace, a one-byte record type leading
//! every key. Defined in `docs/LEGACY_FORMAT.md`; this module decodes it, writes it (for
//! fixtures), and imports it into a [`DagStore`] with the same validate / dry-run / verify
//! discipline as schema migrations.
//!
//! An import reads the source three times: **validate** decodes every record and reports
//! every undecodable one with its key (nothing is written if any is found); **import** inserts
//! the vertices in height order through [`DagStore::insert_batch`] (which checks hashes and
//! parents and derives the indexes and tips) and copies the metadata and finalized sequence;
//! **verify** checks every legacy record against the imported store, compares the entry
//! counts, and runs [`DagStore::check`].

use std::fmt;

use storage_api::iter::RawCursor;
use storage_api::{Direction, Durability, KvRead, KvStore, RawRange, ReadError, ReadExt, Table};

use crate::DagStore;
use crate::error::DagError;
use crate::model::{Status, Vertex, VertexHash, VertexMeta};
use crate::schema::{ByHeight, ByTime, Children, Finalized, VertexMetas, Vertices};

/// Record type 0x01: a vertex, `0x01 ‖ hash`.
pub const VERTEX: u8 = 0x01;
/// Record type 0x02: an edge, `0x02 ‖ parent ‖ child`.
pub const EDGE: u8 = 0x02;
/// Record type 0x03: vertex metadata, `0x03 ‖ hash`.
pub const META: u8 = 0x03;
/// Record type 0x04: the height index, `0x04 ‖ height ‖ hash`.
pub const HEIGHT: u8 = 0x04;
/// Record type 0x05: the timestamp index, `0x05 ‖ timestamp_ms ‖ hash`.
pub const TIME: u8 = 0x05;
/// Record type 0x06: the finalized sequence, `0x06 ‖ sequence`.
pub const FINALIZED: u8 = 0x06;
/// The `finalized_seq` of a metadata record whose vertex is not finalized.
pub const NOT_FINALIZED: u64 = u64::MAX;

/// Problems listed in a [`LegacyError::Corrupt`] at most (the total is always counted).
pub const MAX_REPORTED: usize = 100;

/// One decoded legacy record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegacyRecord {
    /// A vertex (its hash is checked against its content) and signature.
    Vertex(Vertex, Vec<u8>),
    /// A parent → child edge.
    Edge(VertexHash, VertexHash),
    /// A vertex's metadata.
    Meta(VertexHash, VertexMeta),
    /// A height index entry.
    Height(u64, VertexHash),
    /// A timestamp index entry.
    Time(u64, VertexHash),
    /// The vertex finalized at a sequence number.
    Finalized(u64, VertexHash),
}

/// A legacy record that does not decode, or disagrees with the rest of the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyProblem {
    /// The record's key, hex.
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for LegacyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "key {}: {}", self.key, self.reason)
    }
}

/// An import failed; nothing was committed (the caller discards the target).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LegacyError {
    /// Reading the legacy database failed.
    #[error("reading the legacy database: {0}")]
    Read(#[source] ReadError),
    /// Legacy records are corrupt.
    #[error(
        "{total} corrupt legacy record(s), nothing imported: {}{}",
        .problems.iter().take(5).map(ToString::to_string).collect::<Vec<_>>().join("; "),
        if *.total > 5 { format!("; … ({} more)", .total - 5) } else { String::new() }
    )]
    Corrupt {
        /// The first [`MAX_REPORTED`] problems, in key order.
        problems: Vec<LegacyProblem>,
        /// How many records are corrupt in all.
        total: u64,
    },
    /// The imported store does not match the legacy records.
    #[error("verification failed, nothing committed: {0}")]
    Mismatch(LegacyProblem),
    /// The target DAG store already holds vertices (imports go into new stores only).
    #[error("the target DAG store already holds vertices: import into a new data directory")]
    TargetNotEmpty,
    /// The target store failed.
    #[error("target DAG store: {0}")]
    Target(#[from] DagError),
}

/// Records of each type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LegacyCounts {
    /// 0x01 records.
    pub vertices: u64,
    /// 0x02 records.
    pub edges: u64,
    /// 0x03 records.
    pub metas: u64,
    /// 0x04 records.
    pub heights: u64,
    /// 0x05 records.
    pub times: u64,
    /// 0x06 records.
    pub finalized: u64,
}

impl LegacyCounts {
    /// All records.
    pub fn total(&self) -> u64 {
        self.vertices + self.edges + self.metas + self.heights + self.times + self.finalized
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A big-endian reader over a value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err(format!("truncated: {what} needs {n} bytes, {} left", self.0.len()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u16(&mut self, what: &str) -> Result<usize, String> {
        Ok(u16::from_be_bytes(self.take(2, what)?.try_into().expect("2 bytes")) as usize)
    }
    fn u32(&mut self, what: &str) -> Result<usize, String> {
        Ok(u32::from_be_bytes(self.take(4, what)?.try_into().expect("4 bytes")) as usize)
    }
    fn u64(&mut self, what: &str) -> Result<u64, String> {
        Ok(u64::from_be_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    fn hash(&mut self, what: &str) -> Result<VertexHash, String> {
        Ok(VertexHash(self.take(32, what)?.try_into().expect("32 bytes")))
    }
    fn string(&mut self, what: &str) -> Result<String, String> {
        let n = self.u16(what)?;
        String::from_utf8(self.take(n, what)?.to_vec()).map_err(|_| format!("{what} is not UTF-8"))
    }
    fn end(&self, what: &str) -> Result<(), String> {
        if self.0.is_empty() { Ok(()) } else { Err(format!("{} trailing bytes after the {what}", self.0.len())) }
    }
}

/// Decodes one legacy record.
pub fn decode(key: &[u8], value: &[u8]) -> Result<LegacyRecord, String> {
    let Some((&kind, rest)) = key.split_first() else { return Err("empty key".into()) };
    let mut k = Reader(rest);
    let empty_value = |what: &str| {
        if value.is_empty() {
            Ok(())
        } else {
            Err(format!("{what} record has a {}-byte value, expected none", value.len()))
        }
    };
    let record = match kind {
        VERTEX => {
            let hash = k.hash("vertex key")?;
            k.end("vertex key")?;
            let mut v = Reader(value);
            let id = v.string("id")?;
            let creator = v.string("creator")?;
            let parents = (0..v.u16("parent count")?).map(|_| v.hash("parent")).collect::<Result<Vec<_>, _>>()?;
            let len = v.u32("payload length")?;
            let payload = v.take(len, "payload")?.to_vec();
            let timestamp_ms = v.u64("timestamp")?;
            let len = v.u16("signature length")?;
            let signature = v.take(len, "signature")?.to_vec();
            v.end("vertex")?;
            let vertex = Vertex { hash, id, creator, parents, payload, timestamp_ms };
            if !vertex.hash_is_valid() {
                return Err(format!("the vertex content hashes to {}, not to its key", vertex.content_hash()));
            }
            LegacyRecord::Vertex(vertex, signature)
        }
        EDGE => {
            let (parent, child) = (k.hash("edge parent")?, k.hash("edge child")?);
            k.end("edge key")?;
            empty_value("edge")?;
            LegacyRecord::Edge(parent, child)
        }
        META => {
            let hash = k.hash("metadata key")?;
            k.end("metadata key")?;
            let mut v = Reader(value);
            let status = match v.take(1, "status")?[0] {
                0 => Status::Pending,
                1 => Status::Finalized,
                s => return Err(format!("status {s} is not 0 (pending) or 1 (finalized)")),
            };
            let height = v.u64("height")?;
            let seq = v.u64("finalized sequence")?;
            let received_at_ms = v.u64("received_at")?;
            v.end("metadata")?;
            let finalized_seq = (seq != NOT_FINALIZED).then_some(seq);
            if (status == Status::Finalized) != finalized_seq.is_some() {
                return Err(format!("status {status:?} with finalized sequence {finalized_seq:?}"));
            }
            LegacyRecord::Meta(hash, VertexMeta { status, height, finalized_seq, received_at_ms })
        }
        HEIGHT | TIME => {
            let n = k.u64("index key")?;
            let hash = k.hash("index key")?;
            k.end("index key")?;
            empty_value("index")?;
            if kind == HEIGHT { LegacyRecord::Height(n, hash) } else { LegacyRecord::Time(n, hash) }
        }
        FINALIZED => {
            let seq = k.u64("finalized key")?;
            k.end("finalized key")?;
            let mut v = Reader(value);
            let hash = v.hash("finalized value")?;
            v.end("finalized value")?;
            LegacyRecord::Finalized(seq, hash)
        }
        other => return Err(format!("unknown record type 0x{other:02x}")),
    };
    Ok(record)
}

/// Encodes one legacy record (for fixtures).
pub fn encode(record: &LegacyRecord) -> (Vec<u8>, Vec<u8>) {
    let mut key = Vec::with_capacity(65);
    let mut value = Vec::new();
    match record {
        LegacyRecord::Vertex(v, signature) => {
            key.push(VERTEX);
            key.extend_from_slice(&v.hash.0);
            for s in [&v.id, &v.creator] {
                value.extend_from_slice(&(s.len() as u16).to_be_bytes());
                value.extend_from_slice(s.as_bytes());
            }
            value.extend_from_slice(&(v.parents.len() as u16).to_be_bytes());
            v.parents.iter().for_each(|p| value.extend_from_slice(&p.0));
            value.extend_from_slice(&(v.payload.len() as u32).to_be_bytes());
            value.extend_from_slice(&v.payload);
            value.extend_from_slice(&v.timestamp_ms.to_be_bytes());
            value.extend_from_slice(&(signature.len() as u16).to_be_bytes());
            value.extend_from_slice(signature);
        }
        LegacyRecord::Edge(parent, child) => {
            key.push(EDGE);
            key.extend_from_slice(&parent.0);
            key.extend_from_slice(&child.0);
        }
        LegacyRecord::Meta(hash, meta) => {
            key.push(META);
            key.extend_from_slice(&hash.0);
            value.push(u8::from(meta.status != Status::Pending));
            value.extend_from_slice(&meta.height.to_be_bytes());
            value.extend_from_slice(&meta.finalized_seq.unwrap_or(NOT_FINALIZED).to_be_bytes());
            value.extend_from_slice(&meta.received_at_ms.to_be_bytes());
        }
        LegacyRecord::Height(n, hash) | LegacyRecord::Time(n, hash) => {
            key.push(if matches!(record, LegacyRecord::Height(..)) { HEIGHT } else { TIME });
            key.extend_from_slice(&n.to_be_bytes());
            key.extend_from_slice(&hash.0);
        }
        LegacyRecord::Finalized(seq, hash) => {
            key.push(FINALIZED);
            key.extend_from_slice(&seq.to_be_bytes());
            value.extend_from_slice(&hash.0);
        }
    }
    (key, value)
}

/// Every legacy record of a vertex (vertex, metadata, indexes, incoming edges, and its
/// finalized entry), for fixtures.
pub fn records_of(stored: &crate::StoredVertex, meta: &VertexMeta) -> Vec<LegacyRecord> {
    let v = &stored.vertex;
    let mut out = vec![
        LegacyRecord::Vertex(v.clone(), stored.signature.clone()),
        LegacyRecord::Meta(v.hash, *meta),
        LegacyRecord::Height(stored.height, v.hash),
        LegacyRecord::Time(v.timestamp_ms, v.hash),
    ];
    out.extend(v.parents.iter().map(|p| LegacyRecord::Edge(*p, v.hash)));
    out.extend(meta.finalized_seq.map(|seq| LegacyRecord::Finalized(seq, v.hash)));
    out
}

/// Called on every scanned record.
type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), LegacyError> + 'a;

fn scan<R: KvRead>(source: &R, table: &str, range: RawRange, f: &mut Visit<'_>) -> Result<(), LegacyError> {
    let mut cursor = source.cursor(table, range, Direction::Forward).map_err(LegacyError::Read)?;
    while let Some(entry) = cursor.next_entry() {
        let (k, v) = entry.map_err(LegacyError::Read)?;
        f(k, v)?;
    }
    Ok(())
}

/// Decodes every record of the legacy keyspace `table` of `source`. Returns the counts, or
/// every corrupt record (the first [`MAX_REPORTED`], with their keys). `progress` receives the
/// records read.
pub fn validate<R: KvRead>(
    source: &R,
    table: &str,
    progress: &mut dyn FnMut(&'static str, u64),
) -> Result<LegacyCounts, LegacyError> {
    let mut counts = LegacyCounts::default();
    let (mut problems, mut total) = (Vec::new(), 0u64);
    let mut seen = 0u64;
    scan(source, table, RawRange::all(), &mut |k, v| {
        seen += 1;
        match decode(k, v) {
            Ok(LegacyRecord::Vertex(..)) => counts.vertices += 1,
            Ok(LegacyRecord::Edge(..)) => counts.edges += 1,
            Ok(LegacyRecord::Meta(..)) => counts.metas += 1,
            Ok(LegacyRecord::Height(..)) => counts.heights += 1,
            Ok(LegacyRecord::Time(..)) => counts.times += 1,
            Ok(LegacyRecord::Finalized(..)) => counts.finalized += 1,
            Err(reason) => {
                total += 1;
                if problems.len() < MAX_REPORTED {
                    problems.push(LegacyProblem { key: hex(k), reason });
                }
            }
        }
        if seen.is_multiple_of(10_000) {
            progress("validate", seen);
        }
        Ok(())
    })?;
    progress("validate", seen);
    if total > 0 {
        return Err(LegacyError::Corrupt { problems, total });
    }
    Ok(counts)
}

fn corrupt(key: &[u8], reason: impl Into<String>) -> LegacyError {
    LegacyError::Corrupt { problems: vec![LegacyProblem { key: hex(key), reason: reason.into() }], total: 1 }
}

fn mismatch(key: &[u8], reason: impl Into<String>) -> LegacyError {
    LegacyError::Mismatch(LegacyProblem { key: hex(key), reason: reason.into() })
}

/// Vertices inserted per batch during an import.
const IMPORT_CHUNK: usize = 2_000;

fn hash_at(key: &[u8], at: usize) -> VertexHash {
    VertexHash(key[at..at + 32].try_into().expect("validated key length"))
}

impl<S: KvStore> DagStore<S> {
    /// Imports the legacy keyspace `table` of `source` into this store, which must be empty:
    /// validates every record, inserts, then verifies (see the [module](crate::legacy)).
    /// Vertex inserts use the store's insert durability; flush the store afterwards. On error
    /// the store may hold a partial import: discard it. `progress` receives the phase
    /// (`validate`, `import`, `verify`) and the records done.
    pub fn import_legacy<R: KvRead>(
        &self,
        source: &R,
        table: &str,
        progress: &mut dyn FnMut(&'static str, u64),
    ) -> Result<LegacyCounts, LegacyError> {
        let counts = validate(source, table, progress)?;
        if self.store.first::<Vertices>().map_err(DagError::from)?.is_some() {
            return Err(LegacyError::TargetNotEmpty);
        }
        // Vertices in height order (parents first), through the checked insert path.
        let mut pending: Vec<VertexHash> = Vec::with_capacity(IMPORT_CHUNK);
        let mut done = 0u64;
        scan(source, table, RawRange::prefix(vec![HEIGHT]), &mut |k, _| {
            pending.push(hash_at(k, 9));
            if pending.len() >= IMPORT_CHUNK {
                done += self.import_chunk(source, table, &std::mem::take(&mut pending))?;
                progress("import", done);
            }
            Ok(())
        })?;
        done += self.import_chunk(source, table, &pending)?;
        progress("import", done);
        // The finalized sequence, as recorded (the metadata came with the vertices).
        let mut batch = self.store.batch();
        scan(source, table, RawRange::prefix(vec![FINALIZED]), &mut |k, v| {
            if let Ok(LegacyRecord::Finalized(seq, hash)) = decode(k, v) {
                batch.put::<Finalized>(&seq, &hash).map_err(DagError::from)?;
            }
            Ok(())
        })?;
        self.store.write(batch, Durability::Buffered).map_err(DagError::from)?;
        self.verify_legacy(source, table, &counts, progress)?;
        Ok(counts)
    }

    /// Inserts the vertices `hashes` (all parents stored already or among them) with their
    /// legacy metadata; returns how many.
    fn import_chunk<R: KvRead>(&self, source: &R, table: &str, hashes: &[VertexHash]) -> Result<u64, LegacyError> {
        if hashes.is_empty() {
            return Ok(0);
        }
        let read = |prefix: u8| -> Result<Vec<Result<LegacyRecord, LegacyError>>, LegacyError> {
            let keys: Vec<Vec<u8>> = hashes.iter().map(|h| [&[prefix][..], &h.0].concat()).collect();
            let refs: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            let mut out = Vec::with_capacity(keys.len());
            source
                .multi_get_raw_with(table, &refs, &mut |i, value| {
                    out.push(match value {
                        Some(v) => decode(&keys[i], v).map_err(|e| corrupt(&keys[i], e)),
                        None => Err(corrupt(
                            &keys[i],
                            format!("missing: the height index lists vertex {} but it has no such record", hashes[i]),
                        )),
                    })
                })
                .map_err(LegacyError::Read)?;
            Ok(out)
        };
        let mut items = Vec::with_capacity(hashes.len());
        for record in read(VERTEX)? {
            if let LegacyRecord::Vertex(v, signature) = record? {
                items.push((v, signature));
            }
        }
        self.insert_batch(&items).map_err(|e| match e {
            DagError::MissingParents { vertex, missing } => corrupt(
                &[&[VERTEX][..], &vertex.0].concat(),
                format!("parents {missing:?} are not stored (or the height index puts them no lower than the child)"),
            ),
            e => LegacyError::Target(e),
        })?;
        let mut batch = self.store.batch();
        for record in read(META)? {
            if let LegacyRecord::Meta(hash, meta) = record? {
                batch.put::<VertexMetas>(&hash, &meta).map_err(DagError::from)?;
            }
        }
        self.store.write(batch, Durability::Buffered).map_err(DagError::from)?;
        Ok(items.len() as u64)
    }

    /// Checks every legacy record against this store, the entry counts, and the store's
    /// integrity.
    fn verify_legacy<R: KvRead>(
        &self,
        source: &R,
        table: &str,
        counts: &LegacyCounts,
        progress: &mut dyn FnMut(&'static str, u64),
    ) -> Result<(), LegacyError> {
        let store = &self.store;
        let height_of = |hash: &VertexHash| -> Result<Option<u64>, LegacyError> {
            Ok(store.get::<VertexMetas>(hash).map_err(DagError::from)?.map(|m| m.height))
        };
        let mut seen = 0u64;
        scan(source, table, RawRange::all(), &mut |k, v| {
            let record = decode(k, v).map_err(|e| corrupt(k, e))?;
            let ok = match &record {
                LegacyRecord::Vertex(vertex, signature) => match self.vertex(&vertex.hash)? {
                    Some(stored) if stored.vertex == *vertex && stored.signature == *signature => true,
                    Some(_) => return Err(mismatch(k, "the imported vertex differs")),
                    None => {
                        return Err(mismatch(k, "the vertex was not imported (is it missing from the height index?)"));
                    }
                },
                LegacyRecord::Edge(parent, child) => match height_of(parent)? {
                    Some(h) => store.contains::<Children>(&(h, *parent, *child)).map_err(DagError::from)?,
                    None => false,
                },
                LegacyRecord::Meta(hash, meta) => {
                    let imported = store.get::<Vertices>(hash).map_err(DagError::from)?.map(|r| r.height);
                    if imported != Some(meta.height) {
                        return Err(mismatch(
                            k,
                            format!("metadata height {} but the parents give {imported:?}", meta.height),
                        ));
                    }
                    store.get::<VertexMetas>(hash).map_err(DagError::from)?.as_ref() == Some(meta)
                }
                LegacyRecord::Height(h, hash) => store.contains::<ByHeight>(&(*h, *hash)).map_err(DagError::from)?,
                LegacyRecord::Time(t, hash) => store.contains::<ByTime>(&(*t, *hash)).map_err(DagError::from)?,
                LegacyRecord::Finalized(seq, hash) => {
                    let meta = store.get::<VertexMetas>(hash).map_err(DagError::from)?;
                    meta.is_some_and(|m| m.finalized_seq == Some(*seq))
                }
            };
            if !ok {
                return Err(mismatch(k, format!("not matched by the imported store: {record:?}")));
            }
            seen += 1;
            if seen.is_multiple_of(10_000) {
                progress("verify", seen);
            }
            Ok(())
        })?;
        progress("verify", seen);
        let count = |name: &str| -> Result<u64, LegacyError> {
            let mut cursor = store.cursor(name, RawRange::all(), Direction::Forward).map_err(DagError::from)?;
            let mut n = 0;
            while let Some(entry) = cursor.next_entry() {
                entry.map_err(DagError::from)?;
                n += 1;
            }
            Ok(n)
        };
        for (name, legacy, kind) in [
            (Vertices::NAME, counts.vertices, VERTEX),
            (Children::NAME, counts.edges, EDGE),
            (VertexMetas::NAME, counts.metas, META),
            (ByHeight::NAME, counts.heights, HEIGHT),
            (ByTime::NAME, counts.times, TIME),
            (Finalized::NAME, counts.finalized, FINALIZED),
        ] {
            let imported = count(name)?;
            if imported != legacy {
                return Err(mismatch(
                    &[kind],
                    format!("{legacy} legacy 0x{kind:02x} records but {imported} entries in table {name}"),
                ));
            }
        }
        let report = self.check()?;
        if !report.is_ok() {
            return Err(mismatch(&[], format!("the imported store fails its integrity check: {:?}", report.problems)));
        }
        Ok(())
    }
}

/// A synthetic legacy database's records (for fixtures): `vertices` vertices from
/// [`DagGenerator`](crate::generator::DagGenerator) with `seed`, the first `finalized` of them
/// finalized in order, with their metadata, indexes and edges.
pub fn fixture(vertices: usize, finalized: usize, seed: u64) -> Vec<LegacyRecord> {
    let mut generator = crate::generator::DagGenerator::new(seed);
    let mut heights: std::collections::HashMap<VertexHash, u64> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(vertices * 8);
    for i in 0..vertices {
        let (vertex, signature) = generator.next_vertex();
        let height = vertex.parents.iter().map(|p| heights[p] + 1).max().unwrap_or(0);
        heights.insert(vertex.hash, height);
        let finalized_seq = (i < finalized).then_some(i as u64);
        let meta = VertexMeta {
            status: if finalized_seq.is_some() { Status::Finalized } else { Status::Pending },
            height,
            finalized_seq,
            received_at_ms: vertex.timestamp_ms + 7,
        };
        let stored = crate::StoredVertex { vertex, height, signature };
        out.extend(records_of(&stored, &meta));
    }
    out
}
