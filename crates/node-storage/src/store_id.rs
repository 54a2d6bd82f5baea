//! The node's stores by name: [`StoreId`] names one (its schema, migration steps and place
//! under the data directory), and the `node` store's own tables are declared here. Adding a
//! store is done here, in [`crate::stores`] (the open set) and in the code that gives it
//! meaning; every loop over the stores goes through [`StoreId::ALL`] or `Stores::engines`.

use std::fmt;
use std::path::{Path, PathBuf};

use chain_store::{ChainModel, chain_schema};
use dag_store::dag_schema;
use storage_api::migration::MigrationStep;
use storage_api::{Blob, Schema, table};

use crate::config::BackendKind;

table! {
    /// Failed writes by id (ascending): the dead-letter table (see [`crate::deadletter`]).
    pub struct DeadLetters("dead_letters", Range): u64 => Blob;
}

/// The node store's schema: facade-owned tables. Its name is the store's own.
pub fn node_schema() -> Schema {
    Schema::new(StoreId::Node.name(), 1).with::<DeadLetters>()
}

/// One of the node's stores: a database of its own under the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreId {
    /// The linear chain (chain-store).
    Chain,
    /// The DAG (dag-store).
    Dag,
    /// The node's own records (the dead-letter table).
    Node,
}

impl StoreId {
    /// Every store, in the order the node opens, backs up and migrates them.
    pub const ALL: [StoreId; 3] = [StoreId::Chain, StoreId::Dag, StoreId::Node];

    /// The store's name: its file or directory name under the data directory, its label in
    /// metrics and its name in backup manifests.
    pub const fn name(self) -> &'static str {
        match self {
            StoreId::Chain => "chain",
            StoreId::Dag => "dag",
            StoreId::Node => "node",
        }
    }

    /// The store named `name` (as [`StoreId::name`] writes it).
    pub fn from_name(name: &str) -> Option<StoreId> {
        StoreId::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The schema this build uses for the store, with chain model `M`.
    pub fn schema<M: ChainModel>(self) -> Schema {
        match self {
            StoreId::Chain => chain_schema::<M>(),
            StoreId::Dag => dag_schema(),
            StoreId::Node => node_schema(),
        }
    }

    /// The store's schema migration steps for chain model `M`, oldest first.
    pub fn migration_steps<M: ChainModel>(self) -> Vec<Box<dyn MigrationStep>> {
        match self {
            StoreId::Chain => chain_store::migrate::steps::<M>(),
            StoreId::Dag => {
                dag_store::migrate::STEPS.iter().map(|s| Box::new(StaticStep(*s)) as Box<dyn MigrationStep>).collect()
            }
            // Version 1 is the only one there has been.
            StoreId::Node => Vec::new(),
        }
    }

    /// Where the store of engine `kind` lives under `data_dir`.
    pub fn path(self, kind: BackendKind, data_dir: &Path) -> PathBuf {
        kind.store_path(data_dir, self.name())
    }
}

impl fmt::Display for StoreId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A `'static` step behind a box, beside the chain's generic ones.
struct StaticStep(&'static dyn MigrationStep);

impl MigrationStep for StaticStep {
    fn source_version(&self) -> u32 {
        self.0.source_version()
    }
    fn description(&self) -> &'static str {
        self.0.description()
    }
    fn table(&self) -> &'static str {
        self.0.table()
    }
    fn transform(
        &self,
        key: &[u8],
        value: &[u8],
        out: &mut dyn storage_api::RawBatch,
    ) -> Result<bool, storage_api::migration::EntryError> {
        self.0.transform(key, value, out)
    }
    fn verify(&self, key: &[u8], value: &[u8]) -> Result<(), storage_api::migration::EntryError> {
        self.0.verify(key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_distinct() {
        for id in StoreId::ALL {
            assert_eq!(StoreId::from_name(id.name()), Some(id));
        }
        assert_eq!(StoreId::from_name("chains"), None);
        let paths: std::collections::BTreeSet<_> =
            StoreId::ALL.iter().map(|id| id.path(BackendKind::Redb, Path::new("/d"))).collect();
        assert_eq!(paths.len(), 3);
    }
}
