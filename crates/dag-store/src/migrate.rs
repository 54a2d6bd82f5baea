//! The DAG schema's migration steps, applied by `storage-migrate`.
//!
//! | from | to | table | change |
//! |------|----|-------|--------|
//! | 1 | 2 | `vertices` | value format 1 → 2: the vertex hash (already the key) is no longer stored in the value, and the parents come first ([`VertexRecord`]) |
//!
//! [`fixture`] writes databases as older versions wrote them, for tests and rehearsals.

use serde::{Deserialize, Serialize};
use storage_api::codec::split_version;
use storage_api::migration::{EntryError, MigrationStep};
use storage_api::{PostcardValue, RawBatch, Table, ValueCodec};

use crate::model::{StoredVertex, Vertex, VertexHash, VertexRecord};
use crate::schema::Vertices;

/// Every DAG migration step, oldest first.
pub const STEPS: &[&dyn MigrationStep] = &[&VertexFormatV2];

/// Value format 1 of the `vertices` table: the whole stored vertex, its hash included. The
/// field order is the format; it must never change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexV1 {
    /// The vertex hash (equal to the key).
    pub hash: VertexHash,
    /// Application id.
    pub id: String,
    /// Creator id.
    pub creator: String,
    /// Parent hashes.
    pub parents: Vec<VertexHash>,
    /// Payload.
    #[serde(with = "serde_bytes")]
    pub payload: Vec<u8>,
    /// Creation time (ms).
    pub timestamp_ms: u64,
    /// Height.
    pub height: u64,
    /// Signature.
    #[serde(with = "serde_bytes")]
    pub signature: Vec<u8>,
}

/// The format-version byte of [`VertexV1`] values.
pub const VERTEX_V1_FORMAT: u8 = 1;

impl VertexV1 {
    /// Encodes as a format-1 value (version byte, then postcard).
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_extend(self, vec![VERTEX_V1_FORMAT]).expect("encoding into a Vec cannot fail")
    }

    /// Decodes a format-1 value.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        match split_version(bytes).map_err(|e| e.to_string())? {
            (VERTEX_V1_FORMAT, payload) => match postcard::take_from_bytes::<VertexV1>(payload) {
                Ok((v, [])) => Ok(v),
                Ok((_, rest)) => Err(format!("{} trailing bytes after a format-1 vertex", rest.len())),
                Err(e) => Err(format!("format-1 vertex does not decode: {e}")),
            },
            (v, _) => Err(format!("value format {v}, expected 1")),
        }
    }

    /// The stored vertex this value describes (its hash as stored, not checked).
    pub fn into_stored(self) -> StoredVertex {
        StoredVertex {
            vertex: Vertex {
                hash: self.hash,
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

    /// The format-1 value of `record` stored under `hash`.
    pub fn from_record(hash: VertexHash, record: VertexRecord) -> Self {
        VertexV1 {
            hash,
            id: record.id,
            creator: record.creator,
            parents: record.parents,
            payload: record.payload,
            timestamp_ms: record.timestamp_ms,
            height: record.height,
            signature: record.signature,
        }
    }
}

fn key_hash(key: &[u8]) -> Result<VertexHash, EntryError> {
    <[u8; 32]>::try_from(key)
        .map(VertexHash)
        .map_err(|_| EntryError::new(format!("key is {} bytes, not 32", key.len())))
}

/// DAG v1 → v2: rewrites every vertex from value format 1 to 2 (drops the stored hash, which
/// the key already holds: 32 bytes less per vertex; parents first for cheaper walks).
#[derive(Debug, Clone, Copy)]
pub struct VertexFormatV2;

impl MigrationStep for VertexFormatV2 {
    fn source_version(&self) -> u32 {
        1
    }

    fn description(&self) -> &'static str {
        "vertices: value format 1 -> 2 (hash no longer stored beside its key; parents first)"
    }

    fn table(&self) -> &'static str {
        Vertices::NAME
    }

    fn transform(&self, key: &[u8], value: &[u8], out: &mut dyn RawBatch) -> Result<bool, EntryError> {
        let hash = key_hash(key)?;
        let (version, _) = split_version(value).map_err(|e| EntryError::new(e.to_string()))?;
        if version == <VertexRecord as PostcardValue>::FORMAT_VERSION {
            return Ok(false); // done by an earlier, interrupted run
        }
        let old = VertexV1::decode(value).map_err(EntryError)?;
        if old.hash != hash {
            return Err(EntryError::new(format!("the stored hash {} differs from the key", old.hash)));
        }
        let stored = old.into_stored();
        if !stored.vertex.hash_is_valid() {
            return Err(EntryError::new("the vertex content does not hash to its key (corrupt before migrating)"));
        }
        let record = VertexRecord::from(stored);
        let mut bytes = Vec::with_capacity(value.len());
        record.encode_value(&mut bytes).map_err(|e| EntryError::new(e.to_string()))?;
        out.put_raw(Vertices::NAME, key, &bytes).map_err(|e| EntryError::new(e.to_string()))?;
        Ok(true)
    }

    fn verify(&self, key: &[u8], value: &[u8]) -> Result<(), EntryError> {
        let hash = key_hash(key)?;
        match split_version(value).map_err(|e| EntryError::new(e.to_string()))? {
            (v, payload) if v == <VertexRecord as PostcardValue>::FORMAT_VERSION => {
                match postcard::take_from_bytes::<VertexRecord>(payload) {
                    Ok((record, [])) => {
                        if record.into_stored(hash).vertex.hash_is_valid() {
                            Ok(())
                        } else {
                            Err(EntryError::new("the vertex content does not hash to its key"))
                        }
                    }
                    Ok((_, rest)) => Err(EntryError::new(format!("{} trailing bytes after the record", rest.len()))),
                    Err(e) => Err(EntryError::new(format!("format-2 record does not decode: {e}"))),
                }
            }
            (v, _) => Err(EntryError::new(format!("value format {v}, expected 2"))),
        }
    }
}

/// Databases as older versions of this crate wrote them, for tests and migration rehearsals.
pub mod fixture {
    use storage_api::error::Part;
    use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaRecord};
    use storage_api::table::META_TABLE;
    use storage_api::{Direction, Durability, KvStore, RawBatch, ReadExt, Table, WriteError};

    use super::VertexV1;
    use crate::error::DagError;
    use crate::schema::{SCHEMA_NAME, Vertices};

    /// Rewrites a current (v2) DAG database as DAG schema v1 wrote it: every vertex in value
    /// format 1 and the schema record at version 1. Reopen the store afterwards. Returns the
    /// vertices rewritten.
    pub fn downgrade_to_v1<S: KvStore>(store: &S) -> Result<u64, DagError> {
        if store.schema().name() != SCHEMA_NAME {
            return Err(DagError::WrongSchema(store.schema().name().to_owned()));
        }
        let entries = store.iter_all::<Vertices>(Direction::Forward)?.collect::<Result<Vec<_>, _>>()?;
        for chunk in entries.chunks(1_000) {
            let mut batch = store.raw_batch();
            for (hash, record) in chunk {
                batch.put_raw(Vertices::NAME, &hash.0, &VertexV1::from_record(*hash, record.clone()).encode())?;
            }
            store.write_raw(batch, Durability::Synced)?;
        }
        let mut record = SchemaRecord::for_schema(store.schema());
        record.version = 1;
        let bytes =
            record.encode().map_err(|source| WriteError::Encode { table: META_TABLE, part: Part::Value, source })?;
        let mut batch = store.raw_batch();
        batch.put_raw(META_TABLE, SCHEMA_RECORD_KEY, &bytes)?;
        store.write_raw(batch, Durability::Synced)?;
        Ok(entries.len() as u64)
    }
}
