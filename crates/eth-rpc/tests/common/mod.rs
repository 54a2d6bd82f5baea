//! What the endpoint's tests share: the London blocks (chain-eth's test module, included), a
//! node that stored them, and a minimal HTTP JSON-RPC client (std only, so what is tested is the
//! server, not a client library's leniency).
#![allow(dead_code)] // each test binary uses a part

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::Path;

use chain_eth::Eth;
use chain_store::NewBlock;
use node_storage::{Config, ModelKind, RocksStore, StorageHandle};
use serde_json::{Value, json};

/// chain-eth's test data (the London blocks) and its independent state root.
#[path = "../../../chain-eth/tests/common/mod.rs"]
mod london_data;
#[allow(unused_imports)] // each test binary uses a part
pub(crate) use london_data::{LONDON, london, london_block};

/// The running node's handle on RocksDB, Ethereum model.
pub(crate) type Handle = StorageHandle<RocksStore, Eth>;

/// The default configuration for the Ethereum model in `dir`, the endpoint on a free
/// loopback port.
pub(crate) fn config(dir: &Path) -> Config {
    let mut c = Config { data_dir: dir.to_owned(), model: ModelKind::Ethereum, ..Config::default() };
    c.rpc.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    c
}

/// A runtime for a test.
pub(crate) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Opens a node in `dir` and stores `blocks` (the first as its initial block).
pub(crate) async fn node_with(config: Config, blocks: &[NewBlock<Eth>]) -> Handle {
    let h = Handle::open(config).unwrap();
    h.init_chain(blocks[0].clone()).await.unwrap();
    for r in h.insert_blocks(blocks[1..].to_vec()).await {
        r.unwrap();
    }
    h
}

/// POSTs `body` to `addr` (HTTP/1.1, one request per connection): status and body.
pub(crate) fn post(addr: SocketAddr, body: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let code = text.get(9..12).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("not HTTP: {text}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    assert!(!head.to_ascii_lowercase().contains("transfer-encoding: chunked"), "{head}");
    (code, body.to_owned())
}

/// One call: the whole response object (`result` or `error`).
pub(crate) fn call(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string();
    let (code, reply) = post(addr, &body);
    assert_eq!(code, 200, "{method}: {reply}");
    serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{method}: {e}: {reply}"))
}

/// One call's result; panics on an error reply.
pub(crate) fn result(addr: SocketAddr, method: &str, params: Value) -> Value {
    let r = call(addr, method, params);
    assert!(r.get("error").is_none(), "{method}: {r}");
    r["result"].clone()
}

/// One call's error: (code, message); panics on a result.
pub(crate) fn error(addr: SocketAddr, method: &str, params: Value) -> (i64, String) {
    let r = call(addr, method, params);
    let e = r.get("error").unwrap_or_else(|| panic!("{method} succeeded: {r}"));
    (e["code"].as_i64().unwrap(), e["message"].as_str().unwrap().to_owned())
}

/// A quantity as JSON-RPC writes it.
pub(crate) fn hex(n: u64) -> Value {
    Value::String(format!("{n:#x}"))
}

/// `blocks` (a chain from the generator) with each header's state root set to the real root
/// of the state its writes make, and the parent hashes sealed again to match.
/// A contract whose slots a block writes first is given its account record in that block
/// (the generator writes contracts' slots only), so that its storage is in the state trie.
pub(crate) fn with_state_roots(mut blocks: Vec<NewBlock<Eth>>) -> Vec<NewBlock<Eth>> {
    use chain_eth::{EthStateKey, EthStateValue};
    let mut state = london_data::State::new();
    let mut parent = None;
    for b in &mut blocks {
        let mut new_contracts: Vec<alloy_primitives::Address> = Vec::new();
        for (k, _) in &b.state {
            let account = EthStateKey { address: k.address, slot: None };
            if k.slot.is_some() && !state.contains_key(&account) && !new_contracts.contains(&k.address) {
                new_contracts.push(k.address);
            }
        }
        for address in new_contracts {
            let code_hash = alloy_primitives::keccak256(address);
            b.state.push((
                EthStateKey { address, slot: None },
                Some(EthStateValue::Account { nonce: 1, balance: alloy_primitives::U256::ZERO, code_hash }),
            ));
        }
        london_data::apply(&mut state, b);
        let mut h = b.block.header.header.clone();
        h.state_root = london_data::root_of(&state);
        if let Some(p) = parent {
            h.parent_hash = p;
        }
        b.block.header = chain_eth::EthHeader::new(h);
        parent = Some(b.block.header.hash);
    }
    blocks
}
