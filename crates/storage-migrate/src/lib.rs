//! Migrations for node-storage, engine-neutral (storage-api only); the facade opens the stores
//! and the CLI shows progress.
//!
//! * [`steps`]: **schema migrations**. A domain store lists its
//!   [`MigrationStep`](storage_api::migration::MigrationStep)s; [`plan`] finds the path from the
//!   version on disk to the build's, [`dry_run`] transforms and verifies every entry in memory
//!   without writing, and [`run`] applies the steps in synced batches that record their progress
//!   (a crash resumes where it stopped), verifies every entry and only then raises the version.
//! * [`copy`]: the **cross-backend copy**: every table of a store copied from one engine to
//!   another in bounded batches, then verified — per table, the key count and a BLAKE3 digest
//!   over the ordered entries ([`TableDigest`](storage_backup::TableDigest), the same digest
//!   logical backups record) must match on both sides, and a mismatch names the table and the
//!   first differing key.

pub mod copy;
pub mod steps;

pub use copy::{copy_tables, ingest_tables, verify_tables};
pub use steps::{Plan, PlannedStep, RunOptions, StepReport, dry_run, plan, run, stored_version};
use storage_api::{ReadError, WriteError};

/// A migration, a copy or a verification failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MigrateError {
    /// Reading the source or the target failed.
    #[error("{side} store {store}, table {table}: {source}")]
    Read {
        /// `source` or `target`.
        side: &'static str,
        /// The store.
        store: String,
        /// The table.
        table: String,
        /// The engine's error.
        #[source]
        source: ReadError,
    },
    /// Writing the target failed.
    #[error("target store {store}, table {table}: {source}")]
    Write {
        /// The store.
        store: String,
        /// The table.
        table: String,
        /// The engine's error.
        #[source]
        source: WriteError,
    },
    /// Ingesting into the target failed; nothing of the ingest became visible unless the
    /// engine ingests table by table (see `storage_api::ingest`), and the target is a new
    /// store either way.
    #[error("target store {store}: bulk ingest: {source}")]
    Ingest {
        /// The store.
        store: String,
        /// The engine's error.
        #[source]
        source: storage_api::IngestError,
    },
    /// The target store already exists (copies go into new paths only).
    #[error("the target {} already exists: copy into a new path", .0.display())]
    TargetExists(std::path::PathBuf),
    /// The target already holds data in a table (copies go into empty stores only).
    #[error("target store {store}, table {table} is not empty: copy into a new path")]
    TargetNotEmpty {
        /// The store.
        store: String,
        /// The table.
        table: String,
    },
    /// No migration path leads from the version on disk to this build's.
    #[error(
        "schema `{schema}` is at version {found} on disk and this build has no migration from version {missing} \
         (it migrates versions {first}..{supported}); nothing was changed"
    )]
    NoPath {
        /// The schema.
        schema: String,
        /// The version on disk.
        found: u32,
        /// The first version without a step.
        missing: u32,
        /// The oldest version this build migrates from.
        first: u32,
        /// The version this build uses.
        supported: u32,
    },
    /// An entry could not be transformed. The batch holding it was not written; earlier batches
    /// and their progress are kept, so a rerun resumes before this entry.
    #[error(
        "migrating schema `{schema}` v{from}→v{}: table {table}, key {key}: {reason} (the schema version was not \
         raised)", from + 1
    )]
    Entry {
        /// The schema.
        schema: String,
        /// The step's source version.
        from: u32,
        /// The walked table.
        table: String,
        /// The entry's key, hex.
        key: String,
        /// Why.
        reason: String,
    },
    /// An entry failed verification after the step; the schema version was not raised.
    #[error(
        "verifying schema `{schema}` v{from}→v{}: table {table}, key {key}: {reason} (the schema version was not \
         raised)", from + 1
    )]
    Verify {
        /// The schema.
        schema: String,
        /// The step's source version.
        from: u32,
        /// The walked table.
        table: String,
        /// The entry's key, hex.
        key: String,
        /// Why.
        reason: String,
    },
    /// The schema or progress record in the meta table could not be read.
    #[error("schema `{schema}`: {what}")]
    Record {
        /// The schema.
        schema: String,
        /// What is wrong.
        what: String,
    },
    /// The two sides differ.
    #[error("store {store}, table {table}: {what} at key {key} (source {source_keys} keys, target {target_keys} keys)")]
    Mismatch {
        /// The store.
        store: String,
        /// The table.
        table: String,
        /// The first differing key, hex.
        key: String,
        /// `value differs`, `missing in the target` or `extra in the target`.
        what: &'static str,
        /// Keys counted on the source up to the difference.
        source_keys: u64,
        /// Keys counted on the target up to the difference.
        target_keys: u64,
    },
}

/// What was copied and verified of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCopy {
    /// The table.
    pub table: String,
    /// Entries (equal on both sides).
    pub keys: u64,
    /// The BLAKE3 digest over the ordered entries (equal on both sides).
    pub digest: String,
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
