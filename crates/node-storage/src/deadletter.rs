//! The dead-letter table: writes that failed for good, with the reason, kept in the `node`
//! store so an operator can list them and replay them (for example once a missing parent
//! has arrived).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use storage_api::{Blob, Direction, Durability, KvWrite, ReadExt};

use crate::error::StorageError;
pub(crate) use crate::store_id::DeadLetters;

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

/// A dead letter without its payload: what a listing shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterSummary {
    /// Its id in the table.
    pub id: u64,
    /// The request's correlation id.
    pub correlation_id: String,
    /// When it was dead-lettered, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The operation.
    pub op: String,
    /// Why it failed (the last error).
    pub reason: String,
    /// Attempts made, including replays.
    pub attempts: u32,
    /// Bytes of the request it keeps.
    pub bytes: u64,
}

impl From<&DeadLetter> for DeadLetterSummary {
    fn from(l: &DeadLetter) -> Self {
        DeadLetterSummary {
            id: l.id,
            correlation_id: l.correlation_id.clone(),
            at_ms: l.at_ms,
            op: l.op.clone(),
            reason: l.reason.clone(),
            attempts: l.attempts,
            bytes: l.payload.len() as u64,
        }
    }
}

/// One page of the dead letters, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterPage {
    /// The dead letters of the page.
    pub letters: Vec<DeadLetterSummary>,
    /// The id to list after for the next page; `None` at the end.
    pub next_after: Option<u64>,
}

/// Up to `limit` dead letters with ids above `after`, summarised (each payload is decoded
/// and dropped in turn: memory holds one request at a time).
pub(crate) fn page<S: ReadExt>(store: &S, after: Option<u64>, limit: usize) -> Result<DeadLetterPage, StorageError> {
    let from = after.map_or(0, |a| a.saturating_add(1));
    let mut letters = Vec::new();
    let mut more = false;
    for entry in store.iter::<DeadLetters>(from.., Direction::Forward)? {
        let (id, blob) = entry?;
        if letters.len() == limit.max(1) {
            more = true;
            break;
        }
        letters.push(DeadLetterSummary::from(&decode(id, &blob)?));
    }
    let next_after = if more { letters.last().map(|l| l.id) } else { None };
    Ok(DeadLetterPage { letters, next_after })
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

pub(crate) fn decode(id: u64, blob: &Blob) -> Result<DeadLetter, StorageError> {
    postcard::from_bytes(&blob.0).map_err(|e| StorageError::CorruptDeadLetter { id, reason: e.to_string() })
}

pub(crate) fn next_id<S: ReadExt>(store: &S) -> Result<u64, StorageError> {
    Ok(store.last::<DeadLetters>()?.map_or(1, |e| e.0 + 1))
}

pub(crate) fn count<S: ReadExt>(store: &S) -> Result<u64, StorageError> {
    let mut n = 0;
    for k in store.iter_all::<DeadLetters>(Direction::Forward)?.keys() {
        k?;
        n += 1;
    }
    Ok(n)
}

pub(crate) fn put<S: KvWrite>(store: &S, letter: &DeadLetter) -> Result<(), StorageError> {
    store.put::<DeadLetters>(&letter.id, &encode(letter), Durability::Synced)?;
    Ok(())
}

/// The running node's dead-letter bookkeeping: how many there are (a gauge), the next id, and
/// the one replay allowed at a time.
pub(crate) struct Book {
    count: AtomicU64,
    next_id: Mutex<u64>,
    replaying: tokio::sync::Mutex<()>,
}

impl Book {
    /// The book of the node store `node` as it is on disk.
    pub(crate) fn open<S: ReadExt>(node: &S) -> Result<Self, StorageError> {
        Ok(Book {
            count: AtomicU64::new(count(node)?),
            next_id: Mutex::new(next_id(node)?),
            replaying: tokio::sync::Mutex::new(()),
        })
    }

    /// Dead letters in the table.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Keeps `letter` (its id assigned here) in `node`; returns it as stored.
    pub(crate) fn put<S: KvWrite>(&self, node: &S, letter: DeadLetter) -> Result<DeadLetter, StorageError> {
        let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
        let letter = DeadLetter { id: *next, ..letter };
        put(node, &letter)?;
        *next += 1;
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(letter)
    }

    /// One dead letter left the table (the gauge saturates at zero).
    pub(crate) fn removed(&self) {
        let _ = self.count.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// Held by a replay: one at a time, so an entry is removed (and counted off) once.
    pub(crate) async fn replay_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.replaying.lock().await
    }
}
