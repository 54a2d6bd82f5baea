//! Cross-backend copy of a whole node (chain, DAG and node stores): storage-migrate copies and
//! verifies; this module opens the stores on both engines.

use chain_store::{ChainModel, chain_schema};
use dag_store::dag_schema;
use storage_api::Schema;
use storage_migrate::{TableCopy, copy_tables, verify_tables};

use crate::backend::Backend;
use crate::config::Config;
use crate::deadletter::node_schema;
use crate::error::StorageError;

/// Entries per atomic batch when copying.
const COPY_BATCH: usize = 10_000;

/// What a copy did: per store, every table's verified key count and digest.
#[derive(Debug, Clone)]
pub struct CopyReport {
    /// (store, tables) in copy order.
    pub stores: Vec<(String, Vec<TableCopy>)>,
    /// Entries copied in all.
    pub entries: u64,
}

/// Copies every table of the node at `from` (engine `S`, which must not be running) into a new
/// node at `to` (engine `D`), then verifies every table entry by entry. `progress` receives the
/// store being copied and the entries copied in it so far. The target must not exist yet.
pub fn copy_node<S: Backend, D: Backend, M: ChainModel>(
    from: &Config,
    to: &Config,
    progress: &mut dyn FnMut(&str, u64),
) -> Result<CopyReport, StorageError> {
    let stores: [(&'static str, Schema); 3] =
        [("chain", chain_schema::<M>()), ("dag", dag_schema()), ("node", node_schema())];
    for (name, _) in &stores {
        let target = D::store_path(&to.data_dir, name);
        if target.exists() {
            return Err(storage_migrate::MigrateError::TargetExists(target).into());
        }
    }
    let mut report = CopyReport { stores: Vec::new(), entries: 0 };
    for (name, schema) in stores {
        let source =
            S::open_store(from, name, schema.clone()).map_err(|source| StorageError::Open { store: name, source })?;
        let target = D::open_store(to, name, schema).map_err(|source| StorageError::Open { store: name, source })?;
        let tables: Vec<&str> = source.schema().tables().iter().map(|t| t.name).collect();
        report.entries += copy_tables(name, &source, &target, &tables, COPY_BATCH, &mut |n| progress(name, n))?;
        target.flush()?;
        report.stores.push((name.to_owned(), verify_tables(name, &source, &target, &tables)?));
        tracing::info!(store = name, from = %S::KIND, to = %D::KIND, "store copied and verified");
    }
    Ok(report)
}
