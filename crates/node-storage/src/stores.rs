//! The three open stores of a node, as one typed set: [`Stores`] opens them in
//! [`StoreId::ALL`] order and lists their engine handles.

use chain_store::{ChainModel, ChainStore};
use dag_store::DagStore;
use storage_api::{KvReader, KvStore, Schema};

use crate::config::StateConfig;
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

/// Applies `[state] trie` to a chain store opened for writing — the one place the switch is
/// honoured, by the live node, the era1 import and migrations. `off`: a store initialised now
/// starts without a trie, and a built trie is dropped (its tables deleted, one synced batch),
/// so no write path does trie work. `on`: a store initialised now starts one; a store without
/// one (switched off before, or written before the trie existed) is left to
/// `repair state-trie` or `migrate` to build, and said so.
pub(crate) fn trie_as_configured<S: KvStore, M: ChainModel>(
    chain: ChainStore<S, M>,
    state: &StateConfig,
) -> Result<ChainStore<S, M>, StorageError> {
    let on = state.trie.is_on();
    let chain = chain.with_state_trie(on);
    if !on {
        if chain.has_state_trie()? {
            chain.drop_state_trie()?;
            tracing::warn!(
                "state trie dropped ([state] trie = \"off\"); switching it on again rebuilds it with `nodestore repair state-trie`"
            );
        }
    } else if chain.head().is_some() && !chain.has_state_trie()? {
        tracing::warn!(
            "[state] trie = \"on\", and the chain store has no state trie: build it with `nodestore repair state-trie` (running node) or `nodestore migrate`; until then there are no state roots or proofs"
        );
    }
    Ok(chain)
}
