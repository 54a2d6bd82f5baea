//! `[rpc]`: the endpoint's settings (a section of node-storage's configuration).

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

/// The JSON-RPC endpoint (off by default): Ethereum's read methods over HTTP on the node's
/// handle or on a replica, with the limits an operator sets (see docs/OPERATIONS.md for the
/// error each gives).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RpcConfig {
    /// Serve the endpoint from `nodestore serve` (`--rpc` turns it on too). Default false.
    pub enabled: bool,
    /// Listen address. Default `127.0.0.1:8545` (loopback: put a proxy in front to expose it).
    pub listen: SocketAddr,
    /// The chain id `eth_chainId` answers (the store does not know it). Default 1 (mainnet).
    pub chain_id: u64,
    /// Most blocks one `eth_getLogs` range may span. Default 10,000.
    pub max_log_block_range: u64,
    /// Most logs one `eth_getLogs` may return (more is an error, never a cut list). Default
    /// 10,000.
    pub max_logs: usize,
    /// Largest request body, bytes. Default 10 MiB.
    pub max_request_bytes: u32,
    /// Largest response body, bytes. Default 64 MiB.
    pub max_response_bytes: u32,
    /// Most calls in one batch request. Default 100.
    pub max_batch: u32,
    /// Most calls being answered at once across connections; more are refused at once (code
    /// -32005) rather than queued. Default 256.
    pub max_concurrent: u32,
    /// Most open connections. Default 1,024.
    pub max_connections: u32,
    /// A call not answered within this many milliseconds fails (code -32002). Default 30,000.
    pub timeout_ms: u64,
}

impl Default for RpcConfig {
    fn default() -> Self {
        RpcConfig {
            enabled: false,
            listen: SocketAddr::from(([127, 0, 0, 1], 8545)),
            chain_id: 1,
            max_log_block_range: 10_000,
            max_logs: 10_000,
            max_request_bytes: 10 << 20,
            max_response_bytes: 64 << 20,
            max_batch: 100,
            max_concurrent: 256,
            max_connections: 1_024,
            timeout_ms: 30_000,
        }
    }
}

impl RpcConfig {
    /// The first setting out of range, as (key within `[rpc]`, reason).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let within = |key: &'static str, v: u64, lo: u64, hi: u64| {
            if (lo..=hi).contains(&v) { Ok(()) } else { Err((key, format!("must be within {lo}..={hi}, not {v}"))) }
        };
        within("max_log_block_range", self.max_log_block_range, 1, 1 << 40)?;
        within("max_logs", self.max_logs as u64, 1, 100_000_000)?;
        within("max_request_bytes", u64::from(self.max_request_bytes), 1 << 10, 1 << 31)?;
        within("max_response_bytes", u64::from(self.max_response_bytes), 1 << 10, u64::from(u32::MAX))?;
        within("max_batch", u64::from(self.max_batch), 1, 100_000)?;
        within("max_concurrent", u64::from(self.max_concurrent), 1, 1_000_000)?;
        within("max_connections", u64::from(self.max_connections), 1, 1_000_000)?;
        within("timeout_ms", self.timeout_ms, 1, 86_400_000)
    }
}
