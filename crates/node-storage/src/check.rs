//! Integrity checks and figures as plain, serialisable summaries: what `nodestore check` and
//! `nodestore stats` print, whether they ran on the stores opened by the CLI or inside the
//! running node (through the admin endpoint). A running node checks each store on a snapshot
//! (sled: with writes paused), so blocks written meanwhile never show up as half-written; the
//! chain and DAG checks run side by side.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use chain_store::{ChainModel, ChainStore, TrieBuildReport};
use dag_store::DagStore;
use serde::{Deserialize, Serialize};
use storage_api::KvReader;

use crate::backend::ViewVisitor;
use crate::error::StorageError;
use crate::store_id::StoreId;
use chain_store::IntegrityReport as ChainReport;
use dag_store::IntegrityReport as DagReport;

/// The result of an integrity check, as printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckSummary {
    /// No problem anywhere.
    pub ok: bool,
    /// The state commitment (only when asked for: a full scan of the state).
    pub state: Option<StateCheck>,
    /// The chain store.
    pub chain: ChainCheck,
    /// The DAG store.
    pub dag: DagCheck,
}

/// The chain store's part of a [`CheckSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainCheck {
    /// Canonical blocks walked.
    pub blocks_checked: u64,
    /// Problems found.
    pub problems: u64,
    /// Problems per table.
    pub by_table: BTreeMap<String, u64>,
    /// The first problems, readable.
    pub examples: Vec<String>,
}

/// The DAG store's part of a [`CheckSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DagCheck {
    /// Vertices checked.
    pub vertices: u64,
    /// Every problem, readable.
    pub problems: Vec<String>,
}

/// The state trie's part of a [`CheckSummary`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateCheck {
    /// The stored trie gives the flat state's root.
    pub ok: bool,
    /// State entries read.
    pub keys: u64,
    /// Storage tries.
    pub storage_tries: u64,
    /// Branch nodes.
    pub nodes: u64,
    /// The flat state's root (`0x` hex).
    pub root: String,
    /// The stored trie's root (`0x` hex; `None`: no trie).
    pub stored_root: Option<String>,
}

impl CheckSummary {
    /// The summary of the checks' reports.
    pub fn new(chain: &ChainReport, dag: &DagReport, state: Option<&TrieBuildReport>) -> Self {
        let state = state.map(|t| StateCheck {
            ok: t.matches(),
            keys: t.keys,
            storage_tries: t.storage_tries,
            nodes: t.nodes,
            root: hex(&t.root),
            stored_root: t.stored_root.as_ref().map(|r| hex(r)),
        });
        CheckSummary {
            ok: chain.is_ok() && dag.is_ok() && state.as_ref().is_none_or(|s| s.ok),
            state,
            chain: ChainCheck {
                blocks_checked: chain.blocks_checked,
                problems: chain.problems,
                by_table: chain.by_table.iter().map(|(t, n)| ((*t).to_owned(), *n)).collect(),
                examples: chain.examples.iter().map(|p| format!("{p:?}")).collect(),
            },
            dag: DagCheck { vertices: dag.vertices, problems: dag.problems.iter().map(|p| format!("{p:?}")).collect() },
        }
    }
}

/// Figures of the node, as printed by `nodestore stats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStats {
    /// The engine.
    pub backend: String,
    /// Per store: disk bytes and per-table figures.
    pub stores: Vec<StoreStats>,
    /// The canonical head's height.
    pub chain_head: Option<u64>,
    /// The finalized block's height.
    pub finalized: Option<u64>,
    /// Bodies, receipts and change sets below this height are pruned.
    pub pruned_below: u64,
}

/// What `nodestore prune` did: each part that was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PruneSummary {
    /// The chain's prune (`--chain-keep`).
    pub chain: Option<chain_store::PruneReport>,
    /// The DAG's prune (`--dag-below`).
    pub dag: Option<dag_store::PruneReport>,
}

/// The chain check (and the state trie's, when `state`) on one view of the chain store.
pub(crate) struct ChainCheckOn<M> {
    pub(crate) state: bool,
    pub(crate) model: PhantomData<M>,
}

impl<M: ChainModel> ViewVisitor for ChainCheckOn<M> {
    type Output = Result<(ChainReport, Option<TrieBuildReport>), StorageError>;

    fn visit<R: KvReader>(self, view: &R) -> Self::Output {
        let chain = ChainStore::<&R, M>::new(view)?;
        let report = chain.check()?;
        let trie = if self.state { Some(chain.check_state_trie(&|_| {})?) } else { None };
        Ok((report, trie))
    }
}

/// The DAG check on one view of the DAG store.
pub(crate) struct DagCheckOn;

impl ViewVisitor for DagCheckOn {
    type Output = Result<DagReport, StorageError>;

    fn visit<R: KvReader>(self, view: &R) -> Self::Output {
        Ok(DagStore::new(view)?.check()?)
    }
}

/// `0x` and lower-case hex, as the CLI prints hashes.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::from("0x"), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Sizes and figures of one store (see [`StorageHandle::stats`](crate::StorageHandle::stats)).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StoreStats {
    /// Which store.
    pub store: StoreId,
    /// Bytes on disk.
    pub disk_bytes: u64,
    /// Per-table approximate keys and bytes.
    pub tables: Vec<(String, u64, u64)>,
}
