//! A read-only Ethereum JSON-RPC endpoint over node-storage: what is stored — local and
//! archived history, and the state where the store holds the chain's — served the way
//! Ethereum's tools read it.
//!
//! * The server is jsonrpsee's (as reth's), HTTP only, JSON-RPC 2.0 with batches; the replies
//!   are alloy's RPC types, so a field means what it means to every client.
//! * It reads through an [`EthSource`], which node-storage implements for the running node's
//!   `StorageHandle` (its caches, the history archive behind it) and for a `ReplicaHandle`
//!   following a node from beside it; node-storage composes this crate and re-exports it as
//!   `node_storage::rpc`. Nothing here writes.
//! * A height this node does not hold — pruned with no archive behind it, or below the first
//!   block it was started from — is the EIP-4444 error (code 4444), never an empty or partial
//!   answer. State methods answer only where the store's state is the chain's (the head's
//!   state root in its trie equals the head header's).
//! * The limits of `[rpc]` ([`RpcConfig`]): concurrent calls, the per-call timeout and the
//!   `eth_getLogs` range and result count are enforced here, each with an error that names
//!   its key; request and response size, batch length and connections by the server, with
//!   jsonrpsee's standard errors (HTTP 413, -32008, -32010).
//! * Each call is timed and its errors counted by method in the node's metrics
//!   (`node_storage_rpc_seconds`, `node_storage_rpc_errors`).
//!
//! [`serve`] starts a server; [`module`] gives the methods to mount on a node's own server.

mod config;
mod convert;
mod error;
mod methods;
mod server;
mod source;

pub use config::RpcConfig;
pub use error::{HISTORY_UNAVAILABLE, LIMIT_EXCEEDED, NOT_FOUND, RpcError, TIMEOUT};
pub use methods::METHODS;
pub use server::{RpcServer, ServeError, module, serve};
pub use source::{EthSource, Read, SourceError};
