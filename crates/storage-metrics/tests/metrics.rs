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
    let server = m.serve("127.0.0.1:0".parse().unwrap()).unwrap();
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

#[test]
fn bad_thresholds_are_rejected() {
    let err = Metrics::new(&MetricsConfig {
        slo: SloConfig { cache_hit_ratio_min: 1.5, ..SloConfig::default() },
        ..MetricsConfig::default()
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "metrics config: slo.cache_hit_ratio_min must be between 0 and 1, not 1.5");
    let err = toml::from_str::<MetricsConfig>("listen = \"nowhere\"").unwrap_err().to_string();
    assert!(err.contains("invalid socket address"), "{err}");
}
