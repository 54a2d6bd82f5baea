//! The three open stores of a node, as one typed set: [`Stores`] opens them in
//! [`StoreId::ALL`] order and lists their engine handles.

use chain_store::{ChainModel, ChainStore};
use dag_store::DagStore;
use storage_api::{KvReader, Schema};

use crate::error::StorageError;
use crate::store_id::StoreId;

/// The three open stores of a node, each on the engine handle `S` (a [`Backend`](crate::Backend) store, or
/// its read-only [`Backend::Reader`](crate::Backend::Reader)), with chain model `M`.
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
