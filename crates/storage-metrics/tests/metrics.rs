//! Instruments, exposition formats, SLO verdicts and the HTTP endpoint.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use storage_metrics::{Event, Health, Lane, Metrics, MetricsConfig, Observe, Observed, Sample, SloConfig, Status};

struct Source {
    hits: f64,
    status: Status,
}

impl Observe for Source {
    fn observe(&self, out: &mut Vec<Sample>) {
        out.push(Sample::new(Observed::CacheRequests, self.hits).label("cache", "blocks").label("result", "hit"));
        out.push(Sample::new(Observed::CacheRequests, 100.0).label("cache", "blocks").label("result", "miss"));
        out.push(Sample::new(Observed::SstFiles, 3.0).label("store", "chain").label("level", "0"));
    }
    fn health(&self) -> Health {
        Health { status: self.status, detail: serde_json::json!({ "lanes": { "high": 0 } }) }
    }
}

fn metrics(slo: SloConfig) -> Metrics {
    Metrics::new(&MetricsConfig { slo, ..MetricsConfig::default() }).unwrap()
}

#[test]
fn text_and_json_carry_the_same_figures() {
    let m = metrics(SloConfig::default());
    m.set_source(Arc::new(Source { hits: 300.0, status: Status::Ok }));
    m.count(Event::BlocksStored, 7);
    m.error("timeout");
    m.write("insert_vertex", 0.002);
    m.read("block", Instant::now());
    m.queue_wait(Lane::High, 1e-4);
    m.batch(64, 100_000);
    let text = m.render();
    for needle in [
        "node_storage_blocks_stored_total 7",
        "node_storage_errors_total{kind=\"timeout\"} 1",
        "node_storage_write_seconds_bucket{op=\"insert_vertex\",le=\"0.0025\"} 1",
        "node_storage_queue_wait_seconds_count{lane=\"high\"} 1",
        "node_storage_batch_requests_sum 64",
        "node_storage_cache_requests_total{cache=\"blocks\",result=\"hit\"} 300",
        "node_storage_rocksdb_sst_files{level=\"0\",store=\"chain\"} 3",
    ] {
        assert!(text.contains(needle), "missing `{needle}` in\n{text}");
    }
    let json = m.render_json();
    assert_eq!(json["node_storage_blocks_stored_total"]["samples"][0]["value"], 7.0);
    assert_eq!(json["node_storage_write_seconds"]["type"], "histogram");
    assert_eq!(json["node_storage_write_seconds"]["samples"][0]["count"], 1);
}

#[test]
fn slo_windows_count_violations() {
    let m = metrics(SloConfig { write_p99_ms: 10.0, min_cache_lookups: 10, ..SloConfig::default() });
    m.set_source(Arc::new(Source { hits: 50.0, status: Status::Ok }));
    for _ in 0..99 {
        m.write("w", 0.001);
    }
    m.write("w", 0.050); // p99 of 100 samples is the 99th: 1 ms
    let r = m.evaluate_slos();
    assert_eq!(r.write_p99.map(|(_, v)| v), Some(false), "{r:?}");
    // Cache: 50 hits / 150 lookups since start is below 80 %.
    assert_eq!(r.cache_hit_ratio.len(), 1);
    assert!(r.cache_hit_ratio[0].2);
    for _ in 0..10 {
        m.write("w", 0.050);
    }
    let r = m.evaluate_slos();
    assert_eq!(r.write_p99.map(|(_, v)| v), Some(true), "{r:?}");
    // The cache saw no lookups in this window, so it is not judged.
    assert!(r.cache_hit_ratio.is_empty());
    let text = m.render();
    assert!(text.contains("node_storage_slo_violations_total{slo=\"write_p99_seconds\"} 1"), "{text}");
    assert!(text.contains("node_storage_slo_violations_total{slo=\"cache_hit_ratio:blocks\"} 1"), "{text}");
}

/// The endpoint on a free loopback port.
fn loopback() -> MetricsConfig {
    MetricsConfig { listen: "127.0.0.1:0".parse().unwrap(), ..MetricsConfig::default() }
}

fn get(addr: std::net::SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let code = out[9..12].parse().unwrap();
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (code, body)
}

#[test]
fn endpoint_serves_metrics_json_and_health() {
    let m = metrics(SloConfig::default());
    m.set_source(Arc::new(Source { hits: 1.0, status: Status::Failing }));
    m.count(Event::Reorgs, 2);
    let server = m.serve(&loopback()).unwrap();
    assert!(server.addr().ip().is_loopback());
    let (code, body) = get(server.addr(), "/metrics");
    assert_eq!(code, 200);
    assert!(body.contains("node_storage_reorgs_total 2"), "{body}");
    let (code, body) = get(server.addr(), "/metrics.json");
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["node_storage_reorgs_total"]["samples"][0]["value"], 2.0);
    let (code, body) = get(server.addr(), "/health");
    assert_eq!(code, 503, "failing health is a 503");
    assert!(body.contains("\"status\":\"failing\""), "{body}");
    assert_eq!(get(server.addr(), "/nope").0, 404);
}

/// A node embeds the endpoint from inside its own async runtime (the CLI's `serve` does): it
/// starts, serves and stops there, on either runtime flavour, and a port already taken is an
/// error there too, not a panic.
#[test]
fn endpoint_starts_and_stops_inside_a_runtime() {
    let current = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let multi = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    for runtime in [current, multi] {
        runtime.block_on(async {
            let m = metrics(SloConfig::default());
            let server = m.serve(&loopback()).unwrap();
            let addr = server.addr();
            let (code, body) = tokio::task::spawn_blocking(move || get(addr, "/metrics")).await.unwrap();
            assert_eq!(code, 200, "{body}");
            let taken = MetricsConfig { listen: addr, ..MetricsConfig::default() };
            let err = m.serve(&taken).unwrap_err();
            assert!(err.to_string().contains(&addr.to_string()), "{err}");
            drop(server);
        });
    }
}

#[test]
fn bad_thresholds_are_rejected() {
    let err = Metrics::new(&MetricsConfig {
        slo: SloConfig { cache_hit_ratio_min: 1.5, ..SloConfig::default() },
        ..MetricsConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "metrics config: `slo.cache_hit_ratio_min` must be between 0 and 1, not 1.5");
    let err = toml::from_str::<MetricsConfig>("listen = \"nowhere\"").unwrap_err().to_string();
    assert!(err.contains("invalid socket address"), "{err}");
}

/// Sends `head` (and nothing else) and returns what the server answered before closing.
fn raw(addr: std::net::SocketAddr, head: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// A declared body is never allocated or read: the answer comes, and the process lives on
/// (the old endpoint aborted the process allocating 99,999,999,999,999 bytes).
#[test]
fn declared_bodies_allocate_nothing() {
    let m = metrics(SloConfig::default());
    let server = m.serve(&loopback()).unwrap();
    for len in ["99999999999999", "1073741824", "9223372036854775807"] {
        let out = raw(server.addr(), &format!("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\n\r\n"));
        assert!(out.starts_with("HTTP/1.1 200"), "Content-Length {len}: {out}");
    }
    // Past what HTTP can express: refused, not answered.
    let out = raw(server.addr(), "GET /health HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n");
    assert!(out.starts_with("HTTP/1.1 4"), "{out}");
    // Garbage and oversized heads get an error or a closed connection, never a crash.
    let out = raw(server.addr(), &format!("GET /metrics HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(64 * 1024)));
    assert!(out.is_empty() || out.starts_with("HTTP/1.1 431") || out.starts_with("HTTP/1.1 400"), "{out}");
    let out = raw(server.addr(), "\x16\x03\x01 not http at all\r\n\r\n");
    assert!(!out.starts_with("HTTP/1.1 200"), "{out}");
    assert_eq!(get(server.addr(), "/metrics").0, 200, "still serving");
}

/// Idle connections are capped (no thread or buffer per connection) and time out.
#[test]
fn connections_are_capped_and_time_out() {
    let m = metrics(SloConfig::default());
    let config = MetricsConfig { max_connections: 8, connection_timeout_ms: 1_000, ..loopback() };
    let server = m.serve(&config).unwrap();
    let before = threads();
    let idle: Vec<TcpStream> = (0..500).map(|_| TcpStream::connect(server.addr()).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    assert!(threads() <= before + 4, "threads grew from {before} to {} with 500 idle connections", threads());
    // Past the cap, connections are closed on arrival.
    let mut closed = 0;
    for mut c in idle.into_iter().skip(8).take(50) {
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 1];
        closed += usize::from(matches!(c.read(&mut buf), Ok(0) | Err(_)));
    }
    assert_eq!(closed, 50, "connections past the cap must be closed");
    // The idle ones within the cap time out, and the endpoint serves again.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if raw(server.addr(), "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n").starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the endpoint never served again after idle connections timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn endpoint_limits_are_validated() {
    for (config, key) in [
        (MetricsConfig { max_connections: 0, ..MetricsConfig::default() }, "max_connections"),
        (MetricsConfig { connection_timeout_ms: 10, ..MetricsConfig::default() }, "connection_timeout_ms"),
        (MetricsConfig { connection_timeout_ms: u64::MAX, ..MetricsConfig::default() }, "connection_timeout_ms"),
    ] {
        let err = config.validate().unwrap_err();
        assert_eq!(err.key, key, "{err}");
    }
}
