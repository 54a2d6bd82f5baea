//! The conformance suite every backend must pass, and the proptest model test that compares a
//! backend with the in-memory oracle. Enabled by the `testkit` feature.
//!
//! A backend describes how to open itself in a directory through a [`Harness`], then
//! instantiates everything with [`conformance_suite!`](crate::conformance_suite), saying which
//! optional capabilities it has. Tests of a capability the backend lacks are generated as
//! ignored tests whose reason names the capability, so `cargo test` lists them as skipped.

pub mod caps;
pub mod model;
pub mod suite;

use std::path::Path;

use crate::codec::Blob;
use crate::error::OpenError;
use crate::schema::VersionPolicy;
use crate::store::{KvReader, KvStore};
use crate::table::Schema;

/// How the suite opens a backend.
pub trait Harness {
    /// The store under test.
    type Store: KvStore;
    /// Whether data survives dropping and reopening the store (enables reopen and schema
    /// tests).
    const PERSISTENT: bool;
    /// Opens (creating if needed) a store for `schema` in `dir`.
    fn open(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<Self::Store, OpenError>;
}

/// How the suite opens a backend read-only (for backends with
/// [`KvOpenReadOnly`](crate::KvOpenReadOnly)).
pub trait ReadOnlyHarness: Harness {
    /// The read-only store.
    type Reader: KvReader + std::fmt::Debug;
    /// Opens the existing store in `dir` read-only.
    fn open_read_only(dir: &Path, schema: Schema, policy: VersionPolicy) -> Result<Self::Reader, OpenError>;
}

crate::table! {
    /// Suite table: integer keys, blob values, read by point.
    pub struct Items("items", Point): u32 => Blob;
    /// Suite table: composite keys, scanned by prefix.
    pub struct Pairs("pairs", Range): (u16, u16) => Blob;
    /// Suite table: postcard values.
    pub struct Records("records"): u64 => (u64, String);
    /// A table only the "extended" schema has.
    pub struct Extra("extra"): u32 => Blob;
}

/// The schema the suite runs against.
pub fn suite_schema(version: u32) -> Schema {
    Schema::new("suite", version).with::<Items>().with::<Pairs>().with::<Records>()
}

/// The suite schema plus [`Extra`].
pub fn extended_schema(version: u32) -> Schema {
    suite_schema(version).with::<Extra>()
}

/// Opens a suite store, panicking with the error on failure.
pub fn open_suite<H: Harness>(dir: &Path) -> H::Store {
    H::open(dir, suite_schema(1), VersionPolicy::Exact).unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("storage-suite-").tempdir().expect("tempdir")
}

/// Instantiates the conformance suite and the model test for a backend.
///
/// ```ignore
/// storage_api::conformance_suite! {
///     harness: RocksHarness,
///     snapshots: yes, flush: yes, compact: yes, stats: yes, checkpoint: yes, read_only: yes,
///     ingest: yes,
/// }
/// ```
#[macro_export]
macro_rules! conformance_suite {
    (
        harness: $h:ty,
        snapshots: $snap:ident, flush: $flush:ident, compact: $compact:ident,
        stats: $stats:ident, checkpoint: $ckpt:ident, read_only: $ro:ident, ingest: $ingest:ident $(,)?
    ) => {
        $crate::conformance_suite!(@core $h;
            put_get_delete, multi_get_keeps_order, batch_spans_tables, batch_applies_in_order,
            failed_batch_writes_nothing, delete_ranges, iteration_bounds_both_directions,
            prefix_iteration, corrupt_values_name_the_table, unknown_tables_are_errors,
            durability_modes, reopen_keeps_data, newer_schema_is_refused_untouched,
            unknown_tables_on_disk_are_refused, older_schema_needs_migration
        );
        $crate::conformance_suite!(@cap $snap, snapshots, $h, snapshot_isolation);
        $crate::conformance_suite!(@cap $flush, flush, $h, flush_makes_buffered_durable);
        $crate::conformance_suite!(@cap $compact, compaction, $h, compaction_keeps_live_data);
        $crate::conformance_suite!(@cap $stats, statistics, $h, statistics_count_keys);
        $crate::conformance_suite!(@cap $ckpt, checkpoints, $h, checkpoint_is_consistent_copy);
        $crate::conformance_suite!(@cap $ro, read_only_open, $h, read_only_open_changes_nothing);
        $crate::conformance_suite!(@cap $ingest, ingest, $h, ingest_sorted_entries);
        $crate::conformance_suite!(@model $snap, $h);
    };
    (@core $h:ty; $($name:ident),*) => {$(
        #[test]
        fn $name() {
            $crate::testkit::suite::$name::<$h>();
        }
    )*};
    (@cap yes, $cap:ident, $h:ty, $name:ident) => {
        #[test]
        fn $name() {
            $crate::testkit::caps::$name::<$h>();
        }
    };
    (@cap no, $cap:ident, $h:ty, $name:ident) => {
        #[test]
        #[ignore = concat!("capability absent from this backend: ", stringify!($cap))]
        fn $name() {}
    };
    (@model yes, $h:ty) => {
        #[test]
        fn model_matches_oracle() {
            $crate::testkit::model::run::<$h>(Some($crate::testkit::model::snapshot_probe::<<$h as $crate::testkit::Harness>::Store>));
        }
    };
    (@model no, $h:ty) => {
        #[test]
        fn model_matches_oracle() {
            eprintln!("model test without snapshot operations: the backend has no snapshots");
            $crate::testkit::model::run::<$h>(None);
        }
    };
}
