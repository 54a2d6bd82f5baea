//! The JSON-RPC endpoint under load: 64 concurrent clients (one keep-alive HTTP/1.1
//! connection each) on loopback against a 20,000-block Ethereum store, per method, and the
//! same reads through `StorageHandle` by 64 concurrent tasks in the same run (the endpoint's
//! overhead). Writes the `json-rpc` section of `docs/BENCHMARKS.md`.
//! `cargo xtask bench --only-rpc [--quick] [--no-write]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chain_eth::Eth;
use chain_eth::generator::{EthGenerator, EthShape, MAINNET_LONDON};
use chain_store::{BlockRef, LogFilter, NewBlock};
use node_storage::{Config, ModelKind, RocksStore, StorageHandle, TrieSwitch};
use node_storage_benches::report::splice;
use node_storage_benches::stats::Summary;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

type Handle = StorageHandle<RocksStore, Eth>;

const CLIENTS: usize = 64;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// One load run's figures.
struct Load {
    rate: f64,
    latency: Summary,
    errors: usize,
    bytes: usize,
}

/// Reads one HTTP/1.1 response from `s` into `buf`: the body's length.
async fn response(s: &mut TcpStream, buf: &mut Vec<u8>) -> usize {
    buf.clear();
    let mut chunk = [0u8; 65_536];
    loop {
        let n = s.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the server closed the connection");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).expect("headers").to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .unwrap_or_else(|| panic!("no content-length: {head}"))
                .trim()
                .parse()
                .expect("length");
            while buf.len() < end + 4 + len {
                let n = s.read(&mut chunk).await.expect("read");
                assert!(n > 0, "the server closed the connection");
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.drain(..end + 4);
            return len;
        }
    }
}

/// `clients` connections, each sending `bodies` (from its own offset) one at a time for
/// `time`.
async fn load(addr: SocketAddr, bodies: Arc<Vec<String>>, clients: usize, time: Duration) -> Load {
    let started = Instant::now();
    let deadline = started + time;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let bodies = bodies.clone();
            tokio::spawn(async move {
                let mut s = TcpStream::connect(addr).await.expect("connect");
                s.set_nodelay(true).expect("nodelay");
                let (mut lat, mut errors, mut bytes, mut buf) = (Vec::new(), 0, 0, Vec::new());
                let mut i = c * 7_919;
                while Instant::now() < deadline {
                    let body = &bodies[i % bodies.len()];
                    i += 1;
                    let req = format!(
                        "POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    let t = Instant::now();
                    s.write_all(req.as_bytes()).await.expect("write");
                    bytes += response(&mut s, &mut buf).await;
                    lat.push(t.elapsed().as_nanos() as u64);
                    if buf.windows(8).any(|w| w == b"\"error\":") {
                        errors += 1;
                    }
                }
                (lat, errors, bytes)
            })
        })
        .collect();
    let (mut all, mut errors, mut bytes) = (Vec::new(), 0, 0);
    for t in tasks {
        let (lat, e, b) = t.await.expect("client");
        all.extend(lat);
        errors += e;
        bytes += b;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Load { rate: all.len() as f64 / elapsed, latency: Summary::of(&mut all), errors, bytes: bytes / all.len().max(1) }
}

/// `clients` tasks calling `read` with inputs from `inputs` for `time`: the same reads
/// through the handle.
async fn direct<T, F, Fut>(inputs: Arc<Vec<T>>, clients: usize, time: Duration, read: F) -> Load
where
    T: Clone + Send + Sync + 'static,
    F: Fn(T) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let started = Instant::now();
    let deadline = started + time;
    let tasks: Vec<_> = (0..clients)
        .map(|c| {
            let (inputs, read) = (inputs.clone(), read.clone());
            tokio::spawn(async move {
                let mut lat = Vec::new();
                let mut i = c * 7_919;
                while Instant::now() < deadline {
                    let input = inputs[i % inputs.len()].clone();
                    i += 1;
                    let t = Instant::now();
                    read(input).await;
                    lat.push(t.elapsed().as_nanos() as u64);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed().as_secs_f64();
    Load { rate: all.len() as f64 / elapsed, latency: Summary::of(&mut all), errors: 0, bytes: 0 }
}

fn call(method: &str, params: serde_json::Value) -> String {
    serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let write = !args.iter().any(|a| a == "--no-write") && !quick;
    let (n_blocks, time) = if quick { (2_000, Duration::from_secs(1)) } else { (20_000, Duration::from_secs(5)) };
    let shape = EthShape { txs_per_block: 20, ..MAINNET_LONDON };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config { data_dir: dir.path().to_owned(), model: ModelKind::Ethereum, ..Config::default() };
    config.metrics.enabled = false;
    config.state.trie = TrieSwitch::Off; // the reads measured need no state
    config.rpc.listen = SocketAddr::from(([127, 0, 0, 1], 0));

    eprintln!("[rpc] generating and storing {n_blocks} blocks of {} transactions", shape.txs_per_block);
    let mut g = EthGenerator::new(shape.clone(), 38);
    let h = Handle::open(config.clone()).expect("open");
    let (mut txs, mut numbers_of) = (Vec::new(), Vec::new());
    let mut log_counts: std::collections::HashMap<alloy_primitives::Address, u64> = Default::default();
    rt.block_on(async {
        let first = g.next_block();
        h.init_chain(first).await.expect("init");
        let mut left = n_blocks - 1;
        while left > 0 {
            let chunk: Vec<NewBlock<Eth>> = (0..left.min(1_000)).map(|_| g.next_block()).collect();
            left -= chunk.len();
            for b in &chunk {
                for t in &b.block.transactions {
                    txs.push(t.hash());
                    numbers_of.push(b.block.header.header.number);
                }
                for l in b.receipts.iter().flat_map(|r| &r.logs) {
                    *log_counts.entry(l.0.address).or_default() += 1;
                }
            }
            for r in h.insert_blocks(chunk).await {
                r.expect("insert");
            }
        }
    });
    let head = n_blocks as u64 - 1;
    // An address with about 1,000 logs in a 10,000-block window (an indexer's typical query).
    let window = 10_000.min(n_blocks as u64);
    let per_window = |c: u64| c * window / n_blocks as u64;
    let address = *log_counts.iter().min_by_key(|(_, c)| per_window(**c).abs_diff(1_000)).expect("logs").0;
    eprintln!("[rpc] log address {address}: {} logs per {window}-block window", per_window(log_counts[&address]));

    let server = rt.block_on(node_storage::rpc::serve(h.clone(), &config.rpc, None)).expect("serve");
    let addr = server.addr();
    let mut rng = Rng(7);
    let sample_txs: Vec<alloy_primitives::B256> =
        (0..50_000).map(|_| txs[rng.below(txs.len() as u64) as usize]).collect();
    let sample_blocks: Vec<u64> = (0..20_000).map(|_| 1 + rng.below(head)).collect();
    let windows: Vec<u64> = (0..2_000).map(|_| rng.below(head + 1 - window + 1)).collect();
    let hex = |n: u64| format!("{n:#x}");
    let bodies = |f: &dyn Fn(usize) -> String, n: usize| Arc::new((0..n).map(f).collect::<Vec<_>>());
    let tx_bodies = bodies(&|i| call("eth_getTransactionByHash", serde_json::json!([sample_txs[i]])), sample_txs.len());
    let block_bodies = bodies(
        &|i| call("eth_getBlockByNumber", serde_json::json!([hex(sample_blocks[i]), true])),
        sample_blocks.len(),
    );
    let receipt_bodies =
        bodies(&|i| call("eth_getTransactionReceipt", serde_json::json!([sample_txs[i]])), sample_txs.len());
    let log_bodies = bodies(
        &|i| {
            let from = windows[i];
            call(
                "eth_getLogs",
                serde_json::json!([{"fromBlock": hex(from), "toBlock": hex(from + window - 1), "address": address}]),
            )
        },
        windows.len(),
    );

    // The handle's side: the reads each method makes, with the endpoint's senders cache.
    let senders: moka::sync::Cache<alloy_primitives::B256, Arc<Vec<alloy_primitives::Address>>> =
        moka::sync::Cache::new(4_096);
    let reads = |kind: usize| {
        let (h, senders) = (h.clone(), senders.clone());
        move |input: (alloy_primitives::B256, u64)| {
            let (h, senders) = (h.clone(), senders.clone());
            async move {
                let sent = |b: Arc<chain_store::Block<Eth>>| {
                    let (h, senders) = (h.clone(), senders.clone());
                    async move {
                        let hash = b.header.hash;
                        if let Some(s) = senders.get(&hash) {
                            return s;
                        }
                        let at = BlockRef { number: b.header.header.number, hash };
                        let s = Arc::new(h.block_senders(at).await.expect("read"));
                        senders.insert(hash, s.clone());
                        s
                    }
                };
                match kind {
                    0 | 2 => {
                        let t = h.transaction_in_block(input.0).await.expect("read").expect("tx");
                        if kind == 2 {
                            std::hint::black_box(h.receipts(t.location.block).await.expect("read"));
                        }
                        std::hint::black_box(t);
                    }
                    1 => {
                        let b = h.block_by_number(input.1).await.expect("read").expect("block");
                        std::hint::black_box(sent(b).await);
                    }
                    _ => {
                        let f = LogFilter {
                            from: input.1,
                            to: input.1 + window - 1,
                            addresses: vec![address],
                            topics: vec![],
                        };
                        std::hint::black_box(h.logs(f, 10_000).await.expect("logs"));
                    }
                }
            }
        }
    };
    let inputs: [Arc<Vec<(alloy_primitives::B256, u64)>>; 4] = [
        Arc::new(sample_txs.iter().map(|t| (*t, 0)).collect()),
        Arc::new(sample_blocks.iter().map(|n| (alloy_primitives::B256::ZERO, *n)).collect()),
        Arc::new(sample_txs.iter().map(|t| (*t, 0)).collect()),
        Arc::new(windows.iter().map(|w| (alloy_primitives::B256::ZERO, *w)).collect()),
    ];
    let log_name = format!("eth_getLogs, one address, {window} blocks");
    let cases: [(&str, Arc<Vec<String>>, u64); 4] = [
        ("eth_getTransactionByHash", tx_bodies.clone(), 15_000),
        ("eth_getBlockByNumber, full transactions", block_bodies.clone(), 3_000),
        ("eth_getTransactionReceipt", receipt_bodies, 12_000),
        (&log_name, log_bodies, 500),
    ];
    let mut rows = Vec::new();
    rt.block_on(async {
        // Warm the page cache and the object caches the way a serving node is warm.
        let _ = load(addr, tx_bodies, CLIENTS, time).await;
        let _ = load(addr, block_bodies, CLIENTS, time).await;
        for (kind, (name, bodies, goal)) in cases.into_iter().enumerate() {
            eprintln!("[rpc] {name}");
            let rpc = load(addr, bodies.clone(), CLIENTS, time).await;
            assert_eq!(rpc.errors, 0, "{name}: error replies under load");
            let handle = direct(inputs[kind].clone(), CLIENTS, time, reads(kind)).await;
            let rpc_one = load(addr, bodies, 1, time).await;
            let handle_one = direct(inputs[kind].clone(), 1, time, reads(kind)).await;
            rows.push((name, goal, rpc, handle, rpc_one, handle_one));
        }
    });
    rt.block_on(server.stop());
    rt.block_on(h.shutdown());

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let ms = |d: Duration| format!("{:.2} ms", d.as_secs_f64() * 1e3);
    let mut out = format!(
        "Measured on {cores} cores, client and server in one process sharing them, on loopback: {n_blocks} \
         Ethereum blocks of {} mainnet-shaped transactions ({} in all), keys drawn uniformly from the whole store, \
         {} s per run after a warm-up; the server at its default `[rpc]` settings. Under load: {CLIENTS} clients, one \
         keep-alive HTTP/1.1 connection each. \"Handle\": the reads the method makes (with the endpoint's senders \
         cache) by {CLIENTS} tasks on `StorageHandle`, in the same run. Overhead: one client alone, the endpoint's \
         p50 minus the handle's (HTTP, JSON-RPC, alloy's types, JSON). Command: `cargo xtask bench --only-rpc`{}.\n\n\
         | method | requests/s, {CLIENTS} clients | p50 | p99 | goal | handle reads/s, {CLIENTS} tasks | one client: endpoint p50 | handle p50 | overhead | reply |\n\
         |---|---:|---:|---:|---|---:|---:|---:|---:|---:|\n",
        shape.txs_per_block,
        txs.len(),
        time.as_secs(),
        if quick { " --quick" } else { "" }
    );
    for (name, goal, rpc, handle, rpc_one, handle_one) in &rows {
        let met = if rpc.rate >= *goal as f64 { "met" } else { "**missed**" };
        out.push_str(&format!(
            "| {name} | {:.0} | {} | {} | ≥ {goal}/s: {met} | {:.0} | {:.0} µs | {:.0} µs | {:.0} µs | {:.1} KB |\n",
            rpc.rate,
            ms(rpc.latency.p50),
            ms(rpc.latency.p99),
            handle.rate,
            us(rpc_one.latency.p50),
            us(handle_one.latency.p50),
            us(rpc_one.latency.p50) - us(handle_one.latency.p50),
            rpc.bytes as f64 / 1e3,
        ));
    }
    out.push_str(&format!(
        "\nThe log query's address has about {} logs per window.\n\n",
        per_window(log_counts[&address])
    ));
    println!("{out}");
    if write {
        let manifest_dir =
            std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| env!("CARGO_MANIFEST_DIR").into(), PathBuf::from);
        let path = manifest_dir.join("../docs/BENCHMARKS.md");
        let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n".into());
        std::fs::write(&path, splice(&doc, "json-rpc", &out)).expect("write BENCHMARKS.md");
        eprintln!("wrote {}", path.display());
    }
}
