//! The node's stores as types: [`StoreId`] names one (its schema, migration steps and place
//! under the data directory), [`Stores`] holds the three open ones. Adding a store is done here
//! and in the code that gives it meaning; every loop over the stores goes through
//! [`StoreId::ALL`] or [`Stores::engines`].

use std::fmt;
use std::path::{Path, PathBuf};

use chain_store::{ChainModel, ChainStore, chain_schema};
use dag_store::{DagStore, dag_schema};
use storage_api::migration::MigrationStep;
use storage_api::{KvReader, Schema};

#[cfg(doc)]
use crate::backend::Backend;
use crate::config::BackendKind;
use crate::deadletter::node_schema;
use crate::error::StorageError;

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

/// The three open stores of a node, each on the engine handle `S` (a [`Backend`] store, or its
/// read-only [`Backend::Reader`]), with chain model `M`.
#[derive(Debug)]
pub(crate) struct Stores<S, M: ChainModel> {
    pub(crate) chain: ChainStore<S, M>,
    pub(crate) dag: DagStore<S>,
    pub(crate) node: S,
}

impl<S: KvReader, M: ChainModel> Stores<S, M> {
    /// Opens every store with `open(id, schema)`, in [`StoreId::ALL`] order.
    pub(crate) fn open(mut open: impl FnMut(StoreId, Schema) -> Result<S, StorageError>) -> Result<Self, StorageError> {
        let mut one = |id: StoreId| open(id, id.schema::<M>());
        let chain = ChainStore::new(one(StoreId::Chain)?)?;
        let dag = DagStore::new(one(StoreId::Dag)?)?;
        let node = one(StoreId::Node)?;
        Ok(Stores { chain, dag, node })
    }

    /// Every store's engine handle, in [`StoreId::ALL`] order.
    pub(crate) fn engines(&self) -> [(StoreId, &S); 3] {
        [(StoreId::Chain, self.chain.store()), (StoreId::Dag, self.dag.store()), (StoreId::Node, &self.node)]
    }
}

/// Opens every store of `B` for `M` with `open(id, schema)`, as engine handles in
/// [`StoreId::ALL`] order (for code that works below the domain stores: backups, migrations,
/// copies).
pub(crate) fn open_each<B, M: ChainModel>(
    mut open: impl FnMut(StoreId, Schema) -> Result<B, StorageError>,
) -> Result<Vec<(StoreId, B)>, StorageError> {
    StoreId::ALL.into_iter().map(|id| Ok((id, open(id, id.schema::<M>())?))).collect()
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
