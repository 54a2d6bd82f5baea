//! Vertices: content, BLAKE3 addressing, and what is stored beside them.

use std::fmt;

use serde::{Deserialize, Serialize};
use storage_api::PostcardValue;

/// A vertex's BLAKE3 hash: its address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
pub struct VertexHash(pub [u8; 32]);

storage_api::newtype_key!(VertexHash, [u8; 32]);
impl PostcardValue for VertexHash {}

impl fmt::Debug for VertexHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for VertexHash {
    /// The first 8 bytes in hex, enough to tell vertices apart in messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Domain separator and version of the canonical encoding that is hashed.
const HASH_DOMAIN: &[u8] = b"node-storage/dag-vertex/v1\0";

/// A DAG vertex. `hash` is BLAKE3 over the canonical encoding of the other fields; the
/// creator's signature is stored beside the vertex and is not part of the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vertex {
    /// The content address, as claimed (checked on insert).
    pub hash: VertexHash,
    /// Application id of the vertex.
    pub id: String,
    /// Creator (agent) id.
    pub creator: String,
    /// Parent hashes; empty for a genesis vertex.
    pub parents: Vec<VertexHash>,
    /// Opaque payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Creation time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

#[derive(Serialize)]
struct Canonical<'a> {
    id: &'a str,
    creator: &'a str,
    parents: &'a [VertexHash],
    #[serde(with = "serde_bytes")]
    payload: &'a [u8],
    timestamp_ms: u64,
}

impl Vertex {
    /// The hash of this vertex's content (what `hash` must equal).
    pub fn content_hash(&self) -> VertexHash {
        let canonical = Canonical {
            id: &self.id,
            creator: &self.creator,
            parents: &self.parents,
            payload: &self.payload,
            timestamp_ms: self.timestamp_ms,
        };
        thread_local! {
            static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        SCRATCH.with(|cell| {
            let mut buf = cell.take();
            buf.clear();
            buf.extend_from_slice(HASH_DOMAIN);
            let buf = postcard::to_extend(&canonical, buf).expect("canonical encoding is infallible");
            let hash = VertexHash(*blake3::hash(&buf).as_bytes());
            cell.replace(buf);
            hash
        })
    }

    /// Whether `hash` matches the content.
    pub fn hash_is_valid(&self) -> bool {
        self.content_hash() == self.hash
    }
}

/// Builds vertices with their hash computed.
///
/// ```
/// use dag_store::VertexBuilder;
/// let genesis = VertexBuilder::new("agent-1").id("g").payload(b"hello".to_vec()).timestamp(1).build();
/// let child = VertexBuilder::new("agent-2").id("c").parents(vec![genesis.hash]).timestamp(2).build();
/// assert!(child.hash_is_valid());
/// ```
#[derive(Debug, Clone)]
pub struct VertexBuilder {
    vertex: Vertex,
}

impl VertexBuilder {
    /// A vertex by `creator`, with no parents, empty id and payload, and timestamp 0.
    pub fn new(creator: impl Into<String>) -> Self {
        VertexBuilder {
            vertex: Vertex {
                hash: VertexHash::default(),
                id: String::new(),
                creator: creator.into(),
                parents: Vec::new(),
                payload: Vec::new(),
                timestamp_ms: 0,
            },
        }
    }

    /// Sets the id.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.vertex.id = id.into();
        self
    }

    /// Sets the parents.
    pub fn parents(mut self, parents: Vec<VertexHash>) -> Self {
        self.vertex.parents = parents;
        self
    }

    /// Sets the payload.
    pub fn payload(mut self, payload: Vec<u8>) -> Self {
        self.vertex.payload = payload;
        self
    }

    /// Sets the timestamp (ms).
    pub fn timestamp(mut self, timestamp_ms: u64) -> Self {
        self.vertex.timestamp_ms = timestamp_ms;
        self
    }

    /// The vertex, with its hash.
    pub fn build(mut self) -> Vertex {
        self.vertex.hash = self.vertex.content_hash();
        self.vertex
    }
}

/// A stored vertex: the vertex, its computed height and the creator's signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredVertex {
    /// The vertex.
    pub vertex: Vertex,
    /// 0 for genesis vertices, else 1 + the highest parent's height.
    pub height: u64,
    /// The creator's signature over the vertex, as received.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl From<StoredVertex> for VertexRecord {
    /// The stored form of a vertex (everything but the hash, which is the key).
    fn from(stored: StoredVertex) -> Self {
        let v = stored.vertex;
        VertexRecord {
            parents: v.parents,
            height: stored.height,
            timestamp_ms: v.timestamp_ms,
            id: v.id,
            creator: v.creator,
            payload: v.payload,
            signature: stored.signature,
        }
    }
}

/// How a vertex is stored, value format 2 (DAG schema v2): every field but the hash, which is
/// the table's key, with the parents first so walks decode only them.
///
/// Format 1 (DAG schema v1) stored the whole [`StoredVertex`], hash included: 32 bytes more
/// per vertex. The v1 → v2 migration ([`crate::migrate`]) rewrites every vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexRecord {
    /// Parent hashes; empty for a genesis vertex.
    pub parents: Vec<VertexHash>,
    /// 0 for genesis vertices, else 1 + the highest parent's height.
    pub height: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Application id of the vertex.
    pub id: String,
    /// Creator (agent) id.
    pub creator: String,
    /// Opaque payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// The creator's signature over the vertex, as received.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl PostcardValue for VertexRecord {
    const FORMAT_VERSION: u8 = 2;
}

impl VertexRecord {
    /// The stored vertex with address `hash` (not checked: see [`Vertex::hash_is_valid`]).
    pub fn into_stored(self, hash: VertexHash) -> StoredVertex {
        StoredVertex {
            vertex: Vertex {
                hash,
                id: self.id,
                creator: self.creator,
                parents: self.parents,
                payload: self.payload,
                timestamp_ms: self.timestamp_ms,
            },
            height: self.height,
            signature: self.signature,
        }
    }

    /// The parents from an encoded record, decoding only them (they come first).
    pub(crate) fn parents_from_bytes(bytes: &[u8]) -> Result<Vec<VertexHash>, storage_api::codec::CodecError> {
        use storage_api::codec::{CodecError, split_version};
        match split_version(bytes)? {
            (v, payload) if v == <Self as PostcardValue>::FORMAT_VERSION => {
                postcard::take_from_bytes::<Vec<VertexHash>>(payload)
                    .map(|(parents, _)| parents)
                    .map_err(|e| CodecError::Corrupt(e.to_string()))
            }
            (v, _) => Err(CodecError::UnknownVersion { found: v, supported: <Self as PostcardValue>::FORMAT_VERSION }),
        }
    }
}

/// Where a vertex is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    /// Stored, not finalized.
    Pending,
    /// Finalized at the sequence number in [`VertexMeta::finalized_seq`].
    Finalized,
    /// Finalized, then pruned: only this record and the finalized-sequence entry remain.
    Pruned,
}

/// Per-vertex metadata, kept after pruning so reads can say "pruned" rather than "unknown".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexMeta {
    /// Status.
    pub status: Status,
    /// The vertex's height (kept here so parent checks need not decode whole vertices).
    pub height: u64,
    /// Finalization sequence number, once finalized.
    pub finalized_seq: Option<u64>,
    /// When this node stored the vertex (ms since the epoch).
    pub received_at_ms: u64,
}

impl PostcardValue for VertexMeta {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_covers_content_not_signature() {
        let v = VertexBuilder::new("a").id("x").payload(vec![1, 2, 3]).timestamp(5).build();
        assert!(v.hash_is_valid());
        for tamper in [
            |v: &mut Vertex| v.id.push('!'),
            |v: &mut Vertex| v.creator.push('!'),
            |v: &mut Vertex| v.payload.push(0),
            |v: &mut Vertex| v.timestamp_ms += 1,
            |v: &mut Vertex| v.parents.push(VertexHash([9; 32])),
        ] {
            let mut t = v.clone();
            tamper(&mut t);
            assert!(!t.hash_is_valid());
        }
        // Field boundaries are part of the encoding: moving a byte between fields changes it.
        let a = VertexBuilder::new("ab").id("c").build();
        let b = VertexBuilder::new("a").id("bc").build();
        assert_ne!(a.hash, b.hash);
    }
}
