//! Schema migrations: planning, dry runs, and resumable, verified runs.
//!
//! The store must be opened with its current schema and
//! [`VersionPolicy::AllowOlder`](storage_api::VersionPolicy::AllowOlder). Every batch a run
//! writes carries the [`MigrationProgress`] record, so after a crash the next run continues
//! after the last key written; the schema version is raised (and the progress record removed)
//! in one batch, after every entry of the walked table has passed the step's verification.

use storage_api::iter::RawCursor;
use storage_api::migration::{MIGRATION_RECORD_KEY, MigrationProgress, MigrationStep};
use storage_api::schema::{SCHEMA_RECORD_KEY, SchemaRecord};
use storage_api::table::META_TABLE;
use storage_api::{Direction, Durability, KvRead, KvStats, KvStore, RawBatch, RawRange, ValueCodec};

use crate::{MigrateError, hex};

/// A step the plan will run.
#[derive(Debug, Clone)]
pub struct PlannedStep {
    /// The version it migrates from (to `from + 1`).
    pub from: u32,
    /// What it changes.
    pub description: &'static str,
    /// The table it walks.
    pub table: &'static str,
    /// Keys it will touch (the engine's estimate of the table's size).
    pub estimate: u64,
    /// Where an interrupted run of this step stopped, if one did.
    pub resume: Option<MigrationProgress>,
}

/// What [`plan`] found.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The schema.
    pub schema: String,
    /// The version on disk.
    pub stored: u32,
    /// The version this build uses.
    pub target: u32,
    /// The steps from `stored` to `target`, in order (empty: nothing to do).
    pub steps: Vec<PlannedStep>,
}

impl Plan {
    /// Whether the database is already at the build's version.
    pub fn is_current(&self) -> bool {
        self.steps.is_empty()
    }
}

/// What one step did (or, in a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    /// The schema.
    pub schema: String,
    /// The version migrated from (to `from + 1`).
    pub from: u32,
    /// What the step changes.
    pub description: &'static str,
    /// The walked table.
    pub table: &'static str,
    /// Entries walked (including those walked before a resumed run).
    pub scanned: u64,
    /// Entries rewritten (would be rewritten, in a dry run).
    pub changed: u64,
    /// Entries verified.
    pub verified: u64,
    /// Entries already walked by an interrupted run this one resumed (0: not resumed).
    pub resumed_after: u64,
}

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Entries per synced batch.
    pub batch_entries: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { batch_entries: 1_000 }
    }
}

fn record_error(schema: &str, what: impl Into<String>) -> MigrateError {
    MigrateError::Record { schema: schema.to_owned(), what: what.into() }
}

fn read_meta<S: KvRead>(store: &S, schema: &str, key: &[u8]) -> Result<Option<Vec<u8>>, MigrateError> {
    store.get_raw_with(META_TABLE, key, <[u8]>::to_vec).map_err(|source| MigrateError::Read {
        side: "source",
        store: schema.to_owned(),
        table: META_TABLE.to_owned(),
        source,
    })
}

fn progress_record<S: KvRead>(store: &S, schema: &str) -> Result<Option<MigrationProgress>, MigrateError> {
    read_meta(store, schema, MIGRATION_RECORD_KEY)?
        .map(|bytes| {
            MigrationProgress::decode_value(&bytes)
                .map_err(|e| record_error(schema, format!("the migration progress record is unreadable: {e}")))
        })
        .transpose()
}

/// Finds the steps that take `store` from the version on disk to its schema's version, and
/// whether an interrupted run left progress behind.
pub fn plan<S: KvStore + KvStats>(store: &S, steps: &[&dyn MigrationStep]) -> Result<Plan, MigrateError> {
    let schema = store.schema();
    let name = schema.name();
    let record = read_meta(store, name, SCHEMA_RECORD_KEY)?
        .ok_or_else(|| record_error(name, "the database has no schema record"))?;
    let record = SchemaRecord::decode(&record).map_err(|e| record_error(name, e.to_string()))?;
    let progress = progress_record(store, name)?;
    let mut plan = Plan { schema: name.to_owned(), stored: record.version, target: schema.version(), steps: vec![] };
    for version in record.version..schema.version() {
        let Some(step) = steps.iter().find(|s| s.source_version() == version) else {
            return Err(MigrateError::NoPath {
                schema: name.to_owned(),
                found: record.version,
                missing: version,
                first: steps.iter().map(|s| s.source_version()).min().unwrap_or(schema.version()),
                supported: schema.version(),
            });
        };
        let estimate = store
            .table_stats_raw(step.table())
            .map(|s| s.approx_keys)
            .map_err(|e| record_error(name, format!("estimating table {}: {e}", step.table())))?;
        let resume = progress.clone().filter(|p| p.from == version);
        plan.steps.push(PlannedStep {
            from: version,
            description: step.description(),
            table: step.table(),
            estimate,
            resume,
        });
    }
    if let Some(p) = &progress
        && (p.schema != name || plan.steps.first().is_none_or(|s| s.from != p.from))
    {
        return Err(record_error(
            name,
            format!(
                "a migration progress record for `{}` v{} does not match the database (schema v{}); it was not \
                 written by this database's migration",
                p.schema, p.from, record.version
            ),
        ));
    }
    Ok(plan)
}

fn step_for<'a>(steps: &[&'a dyn MigrationStep], from: u32) -> &'a dyn MigrationStep {
    *steps.iter().find(|s| s.source_version() == from).expect("planned steps exist")
}

/// An owned key and value.
type Entry = (Vec<u8>, Vec<u8>);

/// Reads up to `limit` entries of `table` after `after`.
fn chunk<S: KvRead>(
    store: &S,
    schema: &str,
    table: &str,
    after: Option<&[u8]>,
    limit: usize,
) -> Result<Vec<Entry>, MigrateError> {
    let read =
        |source| MigrateError::Read { side: "source", store: schema.to_owned(), table: table.to_owned(), source };
    // The smallest key after `k` is `k ‖ 0x00`.
    let lower = after.map(|k| [k, &[0]].concat());
    let mut cursor = store.cursor(table, RawRange { lower, upper: None }, Direction::Forward).map_err(read)?;
    let mut out = Vec::with_capacity(limit.min(4096));
    while out.len() < limit.max(1) {
        match cursor.next_entry() {
            None => break,
            Some(entry) => {
                let (k, v) = entry.map_err(read)?;
                out.push((k.to_vec(), v.to_vec()));
            }
        }
    }
    Ok(out)
}

/// Walks the table of `step` and checks every entry; returns the entries verified.
fn verify_table<S: KvRead>(
    store: &S,
    schema: &str,
    step: &dyn MigrationStep,
    progress: &mut dyn FnMut(&'static str, u64),
) -> Result<u64, MigrateError> {
    let table = step.table();
    let read =
        |source| MigrateError::Read { side: "source", store: schema.to_owned(), table: table.to_owned(), source };
    let mut cursor = store.cursor(table, RawRange::all(), Direction::Forward).map_err(read)?;
    let mut verified = 0u64;
    while let Some(entry) = cursor.next_entry() {
        let (k, v) = entry.map_err(read)?;
        step.verify(k, v).map_err(|e| MigrateError::Verify {
            schema: schema.to_owned(),
            from: step.source_version(),
            table: table.to_owned(),
            key: hex(k),
            reason: e.0,
        })?;
        verified += 1;
        if verified.is_multiple_of(10_000) {
            progress("verify", verified);
        }
    }
    progress("verify", verified);
    Ok(verified)
}

/// Transforms and verifies every entry of the first pending step **in memory**, writing
/// nothing: each rewritten value must pass the step's verification. Later steps need the
/// earlier ones applied; they are reported as planned (`scanned` 0). `progress` receives the
/// step's source version, the phase and the entries done.
pub fn dry_run<S: KvStore + KvStats>(
    store: &S,
    steps: &[&dyn MigrationStep],
    options: RunOptions,
    progress: &mut dyn FnMut(u32, &'static str, u64),
) -> Result<Vec<StepReport>, MigrateError> {
    let plan = plan(store, steps)?;
    let name = plan.schema.as_str();
    let tables: Vec<&str> = store.schema().physical_tables().collect();
    let mut reports = Vec::new();
    for (i, planned) in plan.steps.iter().enumerate() {
        let step = step_for(steps, planned.from);
        let mut report = StepReport {
            schema: name.to_owned(),
            from: planned.from,
            description: planned.description,
            table: planned.table,
            scanned: 0,
            changed: 0,
            verified: 0,
            resumed_after: 0,
        };
        if i > 0 {
            reports.push(report);
            continue;
        }
        let fail = |key: &[u8], reason: String, verify: bool| {
            let (schema, table, key) = (name.to_owned(), planned.table.to_owned(), hex(key));
            if verify {
                MigrateError::Verify { schema, from: planned.from, table, key, reason }
            } else {
                MigrateError::Entry { schema, from: planned.from, table, key, reason }
            }
        };
        let mut after: Option<Vec<u8>> = None;
        loop {
            let entries = chunk(store, name, planned.table, after.as_deref(), options.batch_entries)?;
            let Some((last, _)) = entries.last() else { break };
            after = Some(last.clone());
            for (k, v) in &entries {
                let mut scratch = storage_api::batch::OpsBatch::new(&tables);
                let changed = step.transform(k, v, &mut scratch).map_err(|e| fail(k, e.0, false))?;
                // The entry as it would be after the step: the last value put under its key.
                let new_value = scratch.ops().iter().rev().find_map(|op| match op {
                    storage_api::batch::Op::Put { table, key, value }
                        if tables[*table] == planned.table && key == k =>
                    {
                        Some(Some(value.as_slice()))
                    }
                    storage_api::batch::Op::Delete { table, key } if tables[*table] == planned.table && key == k => {
                        Some(None)
                    }
                    _ => None,
                });
                if let Some(value) = new_value.unwrap_or(Some(v.as_slice())) {
                    step.verify(k, value).map_err(|e| fail(k, e.0, true))?;
                    report.verified += 1;
                }
                report.scanned += 1;
                report.changed += u64::from(changed);
            }
            progress(planned.from, "dry-run", report.scanned);
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Runs every pending step: transforms the walked table in synced batches of
/// `options.batch_entries` entries (each with the progress record), resuming an interrupted
/// run, then verifies every entry and raises the schema version. `progress` receives the
/// step's source version, the phase (`migrate`, `verify`) and the entries done.
///
/// The store's own [`KvStore::stored_schema_version`] is stale afterwards: reopen it.
pub fn run<S: KvStore + KvStats>(
    store: &S,
    steps: &[&dyn MigrationStep],
    options: RunOptions,
    progress: &mut dyn FnMut(u32, &'static str, u64),
) -> Result<Vec<StepReport>, MigrateError> {
    let plan = plan(store, steps)?;
    let name = plan.schema.as_str();
    let mut reports = Vec::new();
    for planned in &plan.steps {
        let step = step_for(steps, planned.from);
        let table = planned.table;
        let write = |source| MigrateError::Write { store: name.to_owned(), table: table.to_owned(), source };
        let mut state = planned.resume.clone().unwrap_or(MigrationProgress {
            schema: name.to_owned(),
            from: planned.from,
            last_key: None,
            scanned: 0,
            changed: 0,
        });
        let resumed_after = state.scanned;
        if resumed_after > 0 {
            tracing::info!(
                schema = name,
                from = planned.from,
                after = resumed_after,
                "resuming an interrupted migration"
            );
        }
        loop {
            let entries = chunk(store, name, table, state.last_key.as_deref(), options.batch_entries)?;
            let Some((last, _)) = entries.last() else { break };
            let last = last.clone();
            let mut batch = store.raw_batch();
            for (k, v) in &entries {
                let changed = step.transform(k, v, &mut batch).map_err(|e| MigrateError::Entry {
                    schema: name.to_owned(),
                    from: planned.from,
                    table: table.to_owned(),
                    key: hex(k),
                    reason: e.0,
                })?;
                state.scanned += 1;
                state.changed += u64::from(changed);
            }
            state.last_key = Some(last);
            let mut record = Vec::new();
            state.encode_value(&mut record).map_err(|e| record_error(name, e.to_string()))?;
            batch.put_raw(META_TABLE, MIGRATION_RECORD_KEY, &record).map_err(write)?;
            store.write_raw(batch, Durability::Synced).map_err(write)?;
            tracing::debug!(schema = name, from = planned.from, scanned = state.scanned, "migration batch committed");
            progress(planned.from, "migrate", state.scanned);
        }
        let verified = verify_table(store, name, step, &mut |phase, n| progress(planned.from, phase, n))?;
        // Verified: raise the version and drop the progress record, atomically.
        let schema = store.schema();
        let mut record = SchemaRecord::for_schema(schema);
        record.version = planned.from + 1;
        let bytes = record.encode().map_err(|e| record_error(name, e.to_string()))?;
        let mut batch = store.raw_batch();
        batch.put_raw(META_TABLE, SCHEMA_RECORD_KEY, &bytes).map_err(write)?;
        batch.delete_raw(META_TABLE, MIGRATION_RECORD_KEY).map_err(write)?;
        store.write_raw(batch, Durability::Synced).map_err(write)?;
        tracing::info!(
            schema = name,
            from = planned.from,
            to = planned.from + 1,
            scanned = state.scanned,
            changed = state.changed,
            verified,
            "migration step committed"
        );
        reports.push(StepReport {
            schema: name.to_owned(),
            from: planned.from,
            description: planned.description,
            table,
            scanned: state.scanned,
            changed: state.changed,
            verified,
            resumed_after,
        });
    }
    Ok(reports)
}

/// The stored schema version, read from the schema record (current even after [`run`]).
pub fn stored_version<S: KvRead + KvStore>(store: &S) -> Result<u32, MigrateError> {
    let name = store.schema().name();
    let bytes = read_meta(store, name, SCHEMA_RECORD_KEY)?
        .ok_or_else(|| record_error(name, "the database has no schema record"))?;
    Ok(SchemaRecord::decode(&bytes).map_err(|e| record_error(name, e.to_string()))?.version)
}

#[cfg(test)]
mod tests {
    use storage_api::mem::MemStore;
    use storage_api::migration::EntryError;
    use storage_api::{KvOpen, KvReader, KvWrite, ReadExt, Schema, VersionPolicy, table};

    use super::*;

    table! {
        struct T("t"): u64 => storage_api::Blob;
    }

    /// v1 → v2: appends `!` to every value; verification refuses the value of key `bad`.
    struct Bang {
        bad: Option<u64>,
    }

    impl MigrationStep for Bang {
        fn source_version(&self) -> u32 {
            1
        }
        fn description(&self) -> &'static str {
            "bang"
        }
        fn table(&self) -> &'static str {
            "t"
        }
        fn transform(&self, key: &[u8], value: &[u8], out: &mut dyn RawBatch) -> Result<bool, EntryError> {
            if value.ends_with(b"!") {
                return Ok(false);
            }
            out.put_raw("t", key, &[value, b"!"].concat()).map_err(|e| EntryError::new(e.to_string()))?;
            Ok(true)
        }
        fn verify(&self, key: &[u8], value: &[u8]) -> Result<(), EntryError> {
            let bad = self.bad.map(|b| storage_api::KeyCodec::to_key_bytes(&b));
            if value.ends_with(b"!") && bad.as_deref() != Some(key) {
                Ok(())
            } else {
                Err(EntryError::new("not banged"))
            }
        }
    }

    /// A store at schema v1 holding keys 0..n (opened with the v2 schema, as migrations do).
    fn store(n: u64) -> MemStore {
        let store = MemStore::open(&(), Schema::new("toy", 2).with::<T>(), VersionPolicy::AllowOlder).unwrap();
        let mut batch = store.batch();
        for i in 0..n {
            batch.put::<T>(&i, &storage_api::Blob(vec![b'v'])).unwrap();
        }
        let mut record = SchemaRecord::for_schema(store.schema());
        record.version = 1;
        batch.raw_mut().put_raw(META_TABLE, SCHEMA_RECORD_KEY, &record.encode().unwrap()).unwrap();
        store.write(batch, Durability::Synced).unwrap();
        store
    }

    fn progress(store: &MemStore) -> Option<MigrationProgress> {
        progress_record(store, "toy").unwrap()
    }

    #[test]
    fn a_failed_verification_keeps_the_version_and_the_progress() {
        let s = store(10);
        let opts = RunOptions { batch_entries: 3 };
        let err = run(&s, &[&Bang { bad: Some(5) }], opts, &mut |_, _, _| {}).unwrap_err();
        assert!(matches!(&err, MigrateError::Verify { key, .. } if *key == "0000000000000005"), "{err}");
        assert_eq!(stored_version(&s).unwrap(), 1);
        assert_eq!(progress(&s).map(|p| (p.scanned, p.changed)), Some((10, 10)));
        // Fixed, the rerun resumes at the end (nothing left to transform) and verifies.
        let reports = run(&s, &[&Bang { bad: None }], opts, &mut |_, _, _| {}).unwrap();
        assert_eq!((reports[0].resumed_after, reports[0].changed, reports[0].verified), (10, 10, 10));
        assert_eq!(stored_version(&s).unwrap(), 2);
        assert_eq!(progress(&s), None);
    }

    #[test]
    fn a_progress_record_from_elsewhere_is_refused() {
        let s = store(3);
        let foreign = MigrationProgress { schema: "other".into(), from: 1, last_key: None, scanned: 1, changed: 1 };
        let mut bytes = Vec::new();
        foreign.encode_value(&mut bytes).unwrap();
        let mut batch = s.raw_batch();
        batch.put_raw(META_TABLE, MIGRATION_RECORD_KEY, &bytes).unwrap();
        s.write_raw(batch, Durability::Synced).unwrap();
        let err = plan(&s, &[&Bang { bad: None }]).unwrap_err();
        assert!(err.to_string().contains("does not match the database"), "{err}");
    }

    #[test]
    fn a_dry_run_writes_nothing_and_reports_what_would_change() {
        let s = store(7);
        let reports = dry_run(&s, &[&Bang { bad: None }], RunOptions { batch_entries: 2 }, &mut |_, _, _| {}).unwrap();
        assert_eq!((reports[0].scanned, reports[0].changed, reports[0].verified), (7, 7, 7));
        assert_eq!(stored_version(&s).unwrap(), 1);
        assert_eq!(progress(&s), None);
        assert_eq!(s.get::<T>(&3).unwrap(), Some(storage_api::Blob(vec![b'v'])));
        let err = dry_run(&s, &[&Bang { bad: Some(3) }], RunOptions::default(), &mut |_, _, _| {}).unwrap_err();
        assert!(matches!(err, MigrateError::Verify { .. }), "{err}");
    }
}
