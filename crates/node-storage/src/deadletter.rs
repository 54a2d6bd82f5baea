//! The dead-letter table: writes that failed for good, with the reason, kept in the `node`
//! store so an operator can list them and replay them (for example once a missing parent
//! has arrived).

use serde::{Deserialize, Serialize};
use storage_api::{Blob, Direction, Durability, KvWrite, ReadExt, Schema, table};

table! {
    /// Failed writes by id (ascending).
    pub struct DeadLetters("dead_letters", Range): u64 => Blob;
}

/// The schema name of the node store: the store's own name.
pub(crate) const NODE_SCHEMA: &str = crate::stores::StoreId::Node.name();

/// The node store's schema: facade-owned tables.
pub fn node_schema() -> Schema {
    Schema::new(NODE_SCHEMA, 1).with::<DeadLetters>()
}

/// A write that failed for good.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its id in the table.
    pub id: u64,
    /// The request's correlation id.
    pub correlation_id: String,
    /// When it was dead-lettered, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The operation (`insert_vertex`, `insert_block`, `set_head`, …).
    pub op: String,
    /// Why it failed (the last error).
    pub reason: String,
    /// Attempts made, including replays.
    pub attempts: u32,
    /// The request itself (postcard), replayed as-is.
    #[serde(with = "serde_bytes_compat")]
    pub payload: Vec<u8>,
}

/// Plain `Vec<u8>` serde (kept explicit so the format does not depend on serde_bytes).
mod serde_bytes_compat {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        <Vec<u8>>::deserialize(d)
    }
}

/// What replaying one dead letter did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    /// The dead letter.
    pub id: u64,
    /// Its operation.
    pub op: String,
    /// `None` if it succeeded (and was removed); otherwise the new failure (it stays, with
    /// the reason updated).
    pub error: Option<String>,
}

pub(crate) fn encode(letter: &DeadLetter) -> Blob {
    Blob(postcard::to_allocvec(letter).unwrap_or_default())
}

pub(crate) fn decode(id: u64, blob: &Blob) -> Result<DeadLetter, crate::StorageError> {
    postcard::from_bytes(&blob.0).map_err(|e| crate::StorageError::CorruptDeadLetter { id, reason: e.to_string() })
}

pub(crate) fn next_id<S: ReadExt>(store: &S) -> Result<u64, crate::StorageError> {
    Ok(store.last::<DeadLetters>()?.map_or(1, |e| e.0 + 1))
}

pub(crate) fn count<S: ReadExt>(store: &S) -> Result<u64, crate::StorageError> {
    let mut n = 0;
    for k in store.iter_all::<DeadLetters>(Direction::Forward)?.keys() {
        k?;
        n += 1;
    }
    Ok(n)
}

pub(crate) fn put<S: KvWrite>(store: &S, letter: &DeadLetter) -> Result<(), crate::StorageError> {
    store.put::<DeadLetters>(&letter.id, &encode(letter), Durability::Synced)?;
    Ok(())
}
