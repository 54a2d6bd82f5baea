//! Backend-neutral storage for node-storage.
//!
//! * [`table`]: typed tables ([`Table`], declared with [`table!`]) and the [`Schema`] that
//!   lists them;
//! * [`codec`]: order-preserving key encodings and versioned value encodings;
//! * [`read`], [`batch`], [`iter`], [`store`]: the capability traits a backend implements,
//!   with typed extension methods for callers;
//! * [`schema`]: the schema record stored in every database and the open-time checks;
//! * [`migration`]: what a schema migration step provides to the runner that applies it;
//! * [`error`]: one narrow error per operation and the umbrella [`Error`];
//! * [`mem`]: the in-memory backend, the oracle of the conformance suite;
//! * `testkit` (feature `testkit`): the conformance suite and the model test.
//!
//! This crate knows no engine. Backends (`storage-rocksdb`, …) implement its traits; domain
//! crates (`chain-store`, `dag-store`) are written against them, generic over the backend.
//!
//! ```
//! use storage_api::{Durability, KvWrite, ReadExt, Schema, codec::Blob, mem::MemStore, table};
//!
//! table! {
//!     /// Blobs by number.
//!     pub struct Notes("notes"): u64 => Blob;
//! }
//! let store = MemStore::new(Schema::new("example", 1).with::<Notes>());
//! let mut batch = store.batch();
//! batch.put::<Notes>(&7, &Blob(b"hello".to_vec()))?;
//! store.write(batch, Durability::Synced)?;
//! assert_eq!(store.get::<Notes>(&7)?, Some(Blob(b"hello".to_vec())));
//! # Ok::<(), storage_api::Error>(())
//! ```

pub mod batch;
pub mod codec;
pub mod durable;
pub mod error;
pub mod ingest;
pub mod iter;
pub mod mem;
pub mod migration;
pub mod read;
pub mod schema;
pub mod store;
pub mod table;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod view;

pub use batch::{Durability, KvWrite, RawBatch, WriteBatch};
pub use codec::{Blob, KeyCodec, PostcardValue, ValueCodec};
pub use error::{
    BackendError, BackendErrorKind, CheckpointError, Error, FlushError, MaintenanceError, OpenError, ReadError,
    WriteError,
};
pub use ingest::{Ingest, IngestError, IngestStats, KvIngest};
pub use iter::{Direction, RawRange};
pub use read::{KvRead, ReadExt};
pub use schema::VersionPolicy;
pub use store::{
    KvCheckpoint, KvCompact, KvFlush, KvOpen, KvOpenReadOnly, KvReader, KvSnapshots, KvStats, KvStore, TableStats,
};
pub use table::{Schema, Table};
pub use view::SnapshotView;
