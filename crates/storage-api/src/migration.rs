//! The contract between a domain store's schema migrations and the runner that applies them
//! (`storage-migrate`).
//!
//! A schema evolves in steps, each from version N to N+1. A [`MigrationStep`] walks one table
//! in key order and rewrites entries; the runner batches the rewrites, records its progress in
//! the [meta table](crate::table::META_TABLE) under [`MIGRATION_RECORD_KEY`] in the same atomic
//! batch as the data it covers (so a crash resumes where it stopped), verifies every entry of
//! the table afterwards, and only then raises the version in the schema record.

use serde::{Deserialize, Serialize};

use crate::batch::RawBatch;
use crate::codec::PostcardValue;

/// The key of the progress record of a running migration, in the meta table.
pub const MIGRATION_RECORD_KEY: &[u8] = b"migration";

/// Where a running migration step has got to. Written in the same batch as the rewritten
/// entries it accounts for; removed in the batch that raises the schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationProgress {
    /// The schema being migrated.
    pub schema: String,
    /// The version the running step migrates from.
    pub from: u32,
    /// The last key of the walked table already handled (`None`: none yet).
    pub last_key: Option<Vec<u8>>,
    /// Entries walked so far.
    pub scanned: u64,
    /// Entries rewritten so far.
    pub changed: u64,
}

impl PostcardValue for MigrationProgress {}

/// Why one entry could not be migrated or failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EntryError(pub String);

impl EntryError {
    /// An error with `reason`.
    pub fn new(reason: impl Into<String>) -> Self {
        EntryError(reason.into())
    }
}

/// One schema migration step, from [`MigrationStep::source_version`] to the next version.
///
/// The runner walks [`MigrationStep::table`] in key order and calls
/// [`MigrationStep::transform`] on every entry, then [`MigrationStep::verify`] on every entry
/// of the table once all are transformed.
pub trait MigrationStep: Send + Sync {
    /// The version this step upgrades from (it produces `source_version() + 1`).
    fn source_version(&self) -> u32;

    /// What the step changes, for operators (one line).
    fn description(&self) -> &'static str;

    /// The table the step walks.
    fn table(&self) -> &'static str;

    /// Queues into `out` whatever entry (`key`, `value`) needs, returning whether it changed
    /// anything. Must be idempotent: an entry already in the new form is left alone
    /// (`Ok(false)`), so a resumed run may safely see it again.
    fn transform(&self, key: &[u8], value: &[u8], out: &mut dyn RawBatch) -> Result<bool, EntryError>;

    /// Checks that an entry of the walked table is in the new form and sound.
    fn verify(&self, key: &[u8], value: &[u8]) -> Result<(), EntryError>;
}
