//! The schema record every database stores, and the checks made against it on open.
//!
//! The record lives in [`META_TABLE`](crate::table::META_TABLE) under one key. Backends read it
//! (and list the physical tables on disk) *before* changing anything, then call
//! [`check_schema`]; only when that passes do they create missing tables and write the record.

use serde::{Deserialize, Serialize};

use crate::codec::{CodecError, PostcardValue};
use crate::error::OpenError;
use crate::table::{META_TABLE, Schema};

/// The key of the schema record in the meta table.
pub const SCHEMA_RECORD_KEY: &[u8] = b"schema";

/// What a database says about the schema that wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRecord {
    /// The schema's name.
    pub name: String,
    /// The schema version that last wrote the database.
    pub version: u32,
    /// The user tables the database holds.
    pub tables: Vec<String>,
}

impl PostcardValue for SchemaRecord {}

impl SchemaRecord {
    /// The record describing `schema`.
    pub fn for_schema(schema: &Schema) -> Self {
        SchemaRecord {
            name: schema.name().to_owned(),
            version: schema.version(),
            tables: schema.tables().iter().map(|t| t.name.to_owned()).collect(),
        }
    }

    /// Decodes a stored record, mapping failures to [`OpenError::CorruptSchemaRecord`].
    pub fn decode(bytes: &[u8]) -> Result<Self, OpenError> {
        <Self as crate::codec::ValueCodec>::decode_value(bytes).map_err(OpenError::CorruptSchemaRecord)
    }

    /// Encodes the record as a meta-table value.
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::new();
        crate::codec::ValueCodec::encode_value(self, &mut out)?;
        Ok(out)
    }
}

/// How strictly the stored schema version must match.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum VersionPolicy {
    /// The stored version must equal the schema's (the normal case).
    #[default]
    Exact,
    /// An older stored version is accepted (for migration tools, which upgrade it).
    AllowOlder,
}

/// What opening must do after a successful check.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum SchemaAction {
    /// The database is new: create every table and write the record.
    Initialize,
    /// The database matches: create any table the schema added (same version only when the
    /// table list is a superset) and leave the record.
    Open {
        /// The version stored in the database.
        stored_version: u32,
    },
}

/// Checks what is on disk against `schema`, before anything is modified.
///
/// * `record`: the stored schema record, if the meta table holds one;
/// * `on_disk`: the physical tables present (for backends that can list them; otherwise the
///   tables named by the record).
///
/// A database without a record whose tables all belong to the schema is an interrupted
/// creation and is initialised; one holding other tables and no record is refused (it was not
/// written by this schema).
pub fn check_schema(
    schema: &Schema,
    record: Option<&SchemaRecord>,
    on_disk: &[String],
    policy: VersionPolicy,
) -> Result<SchemaAction, OpenError> {
    let unknown: Vec<String> =
        on_disk.iter().filter(|t| !schema.has_physical(t) && !is_engine_internal(t)).cloned().collect();
    let Some(record) = record else {
        // No record: a new database, or one whose creation was interrupted after the engine
        // created the tables but before the record was written (every table is one of ours).
        // Anything else was not written by this schema.
        if unknown.is_empty() {
            return Ok(SchemaAction::Initialize);
        }
        let data_tables: Vec<String> =
            on_disk.iter().filter(|t| *t != META_TABLE && !is_engine_internal(t)).cloned().collect();
        return Err(OpenError::MissingSchemaRecord { tables: data_tables });
    };
    if record.name != schema.name() {
        return Err(OpenError::WrongSchema { expected: schema.name(), found: record.name.clone() });
    }
    if record.version > schema.version() {
        return Err(OpenError::NewerSchema {
            schema: schema.name(),
            found: record.version,
            supported: schema.version(),
        });
    }
    if record.version < schema.version() && policy == VersionPolicy::Exact {
        return Err(OpenError::OlderSchema {
            schema: schema.name(),
            found: record.version,
            expected: schema.version(),
        });
    }
    let mut unknown = unknown;
    for t in &record.tables {
        if schema.table(t).is_none() && !unknown.contains(t) {
            unknown.push(t.clone());
        }
    }
    if !unknown.is_empty() {
        unknown.sort();
        return Err(OpenError::UnknownTables { schema: schema.name(), tables: unknown });
    }
    Ok(SchemaAction::Open { stored_version: record.version })
}

/// Tables an engine creates for itself (RocksDB's `default` column family).
fn is_engine_internal(name: &str) -> bool {
    name == "default"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Blob;

    crate::table! {
        struct A("a"): u64 => Blob;
        struct B("b"): u64 => Blob;
    }

    fn schema() -> Schema {
        Schema::new("test", 3).with::<A>().with::<B>()
    }

    fn rec(version: u32, tables: &[&str]) -> SchemaRecord {
        SchemaRecord { name: "test".into(), version, tables: tables.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn new_database_initializes() {
        assert_eq!(check_schema(&schema(), None, &[], VersionPolicy::Exact).unwrap(), SchemaAction::Initialize);
        let disk = vec!["default".to_string()];
        assert_eq!(check_schema(&schema(), None, &disk, VersionPolicy::Exact).unwrap(), SchemaAction::Initialize);
    }

    #[test]
    fn interrupted_creation_resumes() {
        let disk = vec!["a".to_string(), META_TABLE.to_string(), "default".to_string()];
        assert_eq!(check_schema(&schema(), None, &disk, VersionPolicy::Exact).unwrap(), SchemaAction::Initialize);
    }

    #[test]
    fn version_checks() {
        let s = schema();
        let newer = check_schema(&s, Some(&rec(4, &["a", "b"])), &[], VersionPolicy::Exact).unwrap_err();
        assert!(matches!(newer, OpenError::NewerSchema { found: 4, supported: 3, .. }), "{newer}");
        let older = check_schema(&s, Some(&rec(2, &["a"])), &[], VersionPolicy::Exact).unwrap_err();
        assert!(matches!(older, OpenError::OlderSchema { found: 2, expected: 3, .. }));
        assert!(check_schema(&s, Some(&rec(2, &["a"])), &[], VersionPolicy::AllowOlder).is_ok());
    }

    #[test]
    fn unknown_tables_are_refused() {
        let s = schema();
        let disk = vec!["a".to_string(), "zzz".to_string(), META_TABLE.to_string()];
        let err = check_schema(&s, Some(&rec(3, &["a"])), &disk, VersionPolicy::Exact).unwrap_err();
        match err {
            OpenError::UnknownTables { tables, .. } => assert_eq!(tables, vec!["zzz".to_string()]),
            e => panic!("unexpected {e}"),
        }
        let err = check_schema(&s, Some(&rec(3, &["a", "old"])), &[], VersionPolicy::Exact).unwrap_err();
        assert!(err.to_string().contains("old"), "{err}");
    }

    #[test]
    fn foreign_databases_are_refused() {
        let disk = vec!["x".to_string()];
        assert!(matches!(
            check_schema(&schema(), None, &disk, VersionPolicy::Exact),
            Err(OpenError::MissingSchemaRecord { .. })
        ));
        let mut r = rec(3, &[]);
        r.name = "dag".into();
        assert!(matches!(
            check_schema(&schema(), Some(&r), &[], VersionPolicy::Exact),
            Err(OpenError::WrongSchema { .. })
        ));
    }
}
