//! The DAG's tables and schema.

use storage_api::{Schema, table};

use crate::model::{VertexHash, VertexMeta, VertexRecord};

/// The schema name stored in every DAG database.
pub const SCHEMA_NAME: &str = "dag";
/// The current DAG schema version.
pub const SCHEMA_VERSION: u32 = 2;

/// The DAG schema versions this build can migrate from, oldest first (see [`crate::migrate`]).
/// Version 1 stored each vertex with its hash (value format 1).
pub const OLDEST_MIGRATABLE: u32 = 1;

table! {
    /// Vertex (with height and signature, without its hash: the key) by hash.
    pub struct Vertices("vertices", Point): VertexHash => VertexRecord;
    /// Edge index: parent height ‖ parent ‖ child. The leading height keeps the inserts of
    /// new edges near each other in key order (they all hang off recent parents), which makes
    /// them several times cheaper for LSM engines than inserts at random hash positions.
    pub struct Children("children", Range): (u64, VertexHash, VertexHash) => ();
    /// Height index: height ‖ hash.
    pub struct ByHeight("by_height", Range): (u64, VertexHash) => ();
    /// Time index: timestamp (ms) ‖ hash.
    pub struct ByTime("by_time", Range): (u64, VertexHash) => ();
    /// Finalized sequence: sequence number → hash.
    pub struct Finalized("finalized", Range): u64 => VertexHash;
    /// Status, height, finalization and arrival time by hash.
    pub struct VertexMetas("vertex_meta", Point): VertexHash => VertexMeta;
    /// The current tips (vertices without children).
    pub struct Tips("tips", Range): VertexHash => ();
    /// Store-wide records, by [`MetaKey`] value.
    pub struct DagMeta("dag_meta", Point): u8 => u64;
}

/// Keys of the [`DagMeta`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MetaKey {
    /// Every vertex below this height has been pruned.
    PrunedBelow = 1,
    /// A bulk import's range from this finalization sequence is being committed (see
    /// [`crate::bulk`]); removed when the range is complete.
    BulkPending = 2,
}

/// The DAG schema, to open a backend with.
pub fn dag_schema() -> Schema {
    Schema::new(SCHEMA_NAME, SCHEMA_VERSION)
        .with::<Vertices>()
        .with::<Children>()
        .with::<ByHeight>()
        .with::<ByTime>()
        .with::<Finalized>()
        .with::<VertexMetas>()
        .with::<Tips>()
        .with::<DagMeta>()
}
