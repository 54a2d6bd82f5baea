//! The engines under comparison (opened by `engine-test` with their default settings), and what
//! the comparison adds: whether each can compact and what its reopen involves.

use std::path::Path;

use storage_api::{KvCompact, OpenError, Schema};

pub use engine_test::{Redb, Rocks, Sled, TestEngine};

use crate::{Canonical, Headers, Txs, Values, schema};

/// An engine as the comparison runs it: default configuration, one directory per store.
pub trait Compared: TestEngine {
    /// Opens (creating) the store for `schema` in `dir` with the engine's defaults.
    fn open_schema(dir: &Path, schema: Schema) -> Result<Self::Store, OpenError> {
        Self::open_default(dir, schema)
    }
    /// Opens (creating) the store with the benchmark schema in `dir`.
    fn open_bench(dir: &Path) -> Result<Self::Store, OpenError> {
        Self::open_default(dir, schema())
    }
    /// Compacts every table; `false` if the engine has no manual compaction.
    fn compact(store: &Self::Store) -> bool;
    /// What opening does besides the engine's own open.
    const REOPEN_NOTE: &'static str = "";
}

fn compact_all<S: KvCompact>(s: &S) -> bool {
    s.compact_table::<Headers>().is_ok()
        && s.compact_table::<Txs>().is_ok()
        && s.compact_table::<Canonical>().is_ok()
        && s.compact_table::<Values>().is_ok()
}

impl Compared for Rocks {
    const REOPEN_NOTE: &'static str = "schema check on a read-only instance, then WAL replay";
    fn compact(store: &Self::Store) -> bool {
        compact_all(store)
    }
}

impl Compared for Redb {
    const REOPEN_NOTE: &'static str = "schema check on a read-only instance";
    fn compact(store: &Self::Store) -> bool {
        // One whole-file compaction covers every table.
        store.compact_table::<Txs>().is_ok()
    }
}

impl Compared for Sled {
    const REOPEN_NOTE: &'static str =
        "includes copying the whole directory for the schema check (sled cannot open read-only)";
    fn compact(_store: &Self::Store) -> bool {
        false
    }
}
