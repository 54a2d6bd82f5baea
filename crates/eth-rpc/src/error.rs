//! The endpoint's errors and their JSON-RPC codes: the one place a store error becomes a
//! reply. Codes follow the clients' conventions: -32602 bad parameters, 4444 history this
//! node does not hold (EIP-4444), -32005 a limit, -32002 a timeout, -32000 a missing header
//! or state, -32603 the store failed.

use chain_store::ChainError;
use jsonrpsee::types::ErrorObjectOwned;

use crate::source::SourceError;

/// EIP-4444's code: the history asked for is not held here.
pub const HISTORY_UNAVAILABLE: i32 = 4444;
/// A limit the operator set was reached.
pub const LIMIT_EXCEEDED: i32 = -32005;
/// The call did not finish within `[rpc] timeout_ms`.
pub const TIMEOUT: i32 = -32002;
/// A header or the state asked for is not there (geth's code for both).
pub const NOT_FOUND: i32 = -32000;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// A parameter is malformed or out of range.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The block asked for is below what this node holds (pruned, or before its first block),
    /// and no archive holds it.
    #[error(
        "pruned history unavailable: block {number} is not held by this node (it serves blocks from {oldest}; \
         configure [history] to read older blocks from an archive)"
    )]
    HistoryUnavailable {
        /// The height asked for.
        number: u64,
        /// The lowest height served.
        oldest: u64,
    },
    /// A block named by tag or hash is not there.
    #[error("{0} not found")]
    HeaderNotFound(String),
    /// The state at that block cannot be served.
    #[error("state at block {number} is not available: {reason}")]
    StateUnavailable {
        /// The block.
        number: u64,
        /// Why.
        reason: String,
    },
    /// An `eth_getLogs` range wider than `[rpc] max_log_block_range`.
    #[error("block range of {span} blocks exceeds the limit of {limit} ([rpc] max_log_block_range)")]
    RangeTooLarge {
        /// Blocks asked for.
        span: u64,
        /// The limit.
        limit: u64,
    },
    /// More logs match than `[rpc] max_logs`.
    #[error("query returned more than {limit} results ([rpc] max_logs); narrow the block range or the filter")]
    TooManyLogs {
        /// The limit.
        limit: usize,
    },
    /// `[rpc] max_concurrent` calls are being answered.
    #[error("too many concurrent requests (limit {limit}, [rpc] max_concurrent); retry later")]
    Busy {
        /// The limit.
        limit: u32,
    },
    /// The call took longer than `[rpc] timeout_ms`.
    #[error("request timed out after {ms} ms ([rpc] timeout_ms)")]
    Timeout {
        /// The limit.
        ms: u64,
    },
    /// The store failed (an engine error, an archive that is down, damaged data).
    #[error("storage error: {0}")]
    Storage(String),
}

impl RpcError {
    /// The JSON-RPC error code.
    pub fn code(&self) -> i32 {
        match self {
            RpcError::InvalidParams(_) => jsonrpsee::types::error::INVALID_PARAMS_CODE,
            RpcError::HistoryUnavailable { .. } => HISTORY_UNAVAILABLE,
            RpcError::HeaderNotFound(_) | RpcError::StateUnavailable { .. } => NOT_FOUND,
            RpcError::RangeTooLarge { .. } | RpcError::TooManyLogs { .. } | RpcError::Busy { .. } => LIMIT_EXCEEDED,
            RpcError::Timeout { .. } => TIMEOUT,
            RpcError::Storage(_) => jsonrpsee::types::error::INTERNAL_ERROR_CODE,
        }
    }

    /// A store error met while reading state after block `number`: pruned state history, a
    /// height above the head or a store without a trie say the state is unavailable.
    pub(crate) fn state(number: u64, e: SourceError) -> RpcError {
        match &e {
            SourceError::Chain(ChainError::Pruned { .. } | ChainError::AboveHead { .. } | ChainError::NoStateTrie) => {
                RpcError::StateUnavailable { number, reason: e.to_string() }
            }
            _ => RpcError::from(e),
        }
    }
}

impl From<SourceError> for RpcError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Chain(ChainError::Pruned { number, pruned_below, .. }) => {
                RpcError::HistoryUnavailable { number, oldest: pruned_below }
            }
            SourceError::Chain(ChainError::TooManyLogs { cap, .. }) => RpcError::TooManyLogs { limit: cap },
            e => RpcError::Storage(e.to_string()),
        }
    }
}

impl From<RpcError> for ErrorObjectOwned {
    fn from(e: RpcError) -> Self {
        ErrorObjectOwned::owned(e.code(), e.to_string(), None::<()>)
    }
}
