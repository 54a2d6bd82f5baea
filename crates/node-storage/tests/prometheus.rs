//! A real Prometheus (the Debian `prometheus` package) scrapes a live node-storage under load,
//! and every query of `docs/grafana-dashboard.json` must return data.
//!
//! Needs the `prometheus` binary on PATH; `.ci/run` installs it and runs `cargo xtask prometheus`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chain_store::generator::{ChainGenerator, GenConfig};
use chain_store::synthetic::Synthetic;
use dag_store::VertexBuilder;
use node_storage::{Config, RocksStore, StorageHandle};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default())
}

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
#[ignore = "needs the prometheus binary; run by .ci/run"]
fn every_dashboard_query_returns_data() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Config { data_dir: dir.path().join("db"), ..Config::default() };
    c.metrics.listen = "127.0.0.1:0".parse().unwrap();
    c.metrics.slo.window_s = 1;
    c.engine.write_buffer_bytes = 1 << 20;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let h: StorageHandle<RocksStore, Synthetic> = StorageHandle::open(c).unwrap();
    let metrics_addr = h.serve_metrics().unwrap();

    // Load: blocks, vertices, reads (cached and not), and one rejected write (an error and a
    // dead letter), continuously while Prometheus scrapes.
    let load = {
        let h = h.clone();
        rt.spawn(async move {
            let mut g =
                ChainGenerator::new(GenConfig { txs_per_block: 10, fork_probability: 0.0, ..GenConfig::default() });
            let genesis = g.next_blocks().remove(0);
            h.init_chain(genesis).await.unwrap();
            let orphan =
                VertexBuilder::new("x").id("orphan").parents(vec![VertexBuilder::new("y").build().hash]).build();
            let _ = h.insert_vertex(orphan, vec![]).await;
            for round in 0u64.. {
                for r in h.insert_blocks(g.generate(20)).await {
                    r.unwrap();
                }
                let vs: Vec<_> = (0..200)
                    .map(|i| {
                        (VertexBuilder::new("a").id(format!("{round}-{i}")).timestamp(round * 1000 + i).build(), vec![])
                    })
                    .collect();
                let hashes: Vec<_> = vs.iter().map(|(v, _)| v.hash).collect();
                for r in h.insert_vertices(vs).await {
                    r.unwrap();
                }
                let head = h.pointers().head.unwrap().number;
                for n in 0..50 {
                    h.block_by_number(head.saturating_sub(n % 30)).await.unwrap();
                    h.vertex(hashes[n as usize]).await.unwrap();
                    h.state(ChainGenerator::balance_key(ChainGenerator::account(n))).await.unwrap();
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let prom_port = free_port();
    let prom_addr: SocketAddr = format!("127.0.0.1:{prom_port}").parse().unwrap();
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: node-storage\n    static_configs:\n      - targets: ['{metrics_addr}']\n"),
    )
    .unwrap();
    let prom = Command::new("prometheus")
        .arg(format!("--config.file={}", conf.display()))
        .arg(format!("--storage.tsdb.path={}", dir.path().join("tsdb").display()))
        .arg(format!("--web.listen-address={prom_addr}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the prometheus binary (Debian package `prometheus`) must be installed");
    let _prom = Kill(prom);

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/grafana-dashboard.json")).unwrap(),
    )
    .unwrap();
    let exprs: Vec<String> = dashboard["panels"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["targets"].as_array().unwrap().iter().map(|t| t["expr"].as_str().unwrap().to_owned()))
        .collect();
    assert!(exprs.len() >= 20, "{} queries", exprs.len());

    // Wait until every query has data (rates need a few scrapes), for at most a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut empty: Vec<String>;
    loop {
        std::thread::sleep(Duration::from_secs(2));
        empty = Vec::new();
        for e in &exprs {
            let body = http_get(prom_addr, &format!("/api/v1/query?query={}", encode(e))).unwrap_or_default();
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let ok = v["status"] == "success" && v["data"]["result"].as_array().is_some_and(|r| !r.is_empty());
            if !ok {
                empty.push(format!("{e} -> {}", body.chars().take(200).collect::<String>()));
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            break;
        }
    }
    load.abort();
    assert!(empty.is_empty(), "dashboard queries without data:\n{}", empty.join("\n"));
    // And the scrape target is healthy in Prometheus's own view.
    let targets = http_get(prom_addr, "/api/v1/targets").unwrap();
    assert!(targets.contains("\"health\":\"up\""), "{targets}");
}
