//! Rendering gathered metric families as Prometheus text and as JSON.

use prometheus::proto::{MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};
use serde_json::{Map, Value, json};

pub(crate) fn text(families: &[MetricFamily]) -> String {
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for well-formed families.
    if let Err(e) = TextEncoder::new().encode(families, &mut out) {
        tracing::warn!(error = %e, "encoding metrics");
    }
    String::from_utf8(out).unwrap_or_default()
}

/// `{ name: { type, help, samples: [ { labels, value } | { labels, count, sum, buckets } ] } }`.
pub(crate) fn json(families: &[MetricFamily]) -> Value {
    let mut out = Map::new();
    for f in families {
        let kind = match f.type_() {
            MetricType::COUNTER => "counter",
            MetricType::GAUGE => "gauge",
            MetricType::HISTOGRAM => "histogram",
            MetricType::SUMMARY => "summary",
            MetricType::UNTYPED => "untyped",
        };
        let samples: Vec<Value> = f
            .metric
            .iter()
            .map(|m| {
                let labels: Map<String, Value> =
                    m.label.iter().map(|l| (l.name().to_owned(), json!(l.value()))).collect();
                match f.type_() {
                    MetricType::COUNTER => json!({ "labels": labels, "value": m.counter.value() }),
                    MetricType::GAUGE => json!({ "labels": labels, "value": m.gauge.value() }),
                    MetricType::HISTOGRAM => {
                        let h = &m.histogram;
                        let buckets: Vec<Value> = h
                            .bucket
                            .iter()
                            .map(|b| json!({ "le": b.upper_bound(), "count": b.cumulative_count() }))
                            .collect();
                        json!({ "labels": labels, "count": h.sample_count(), "sum": h.sample_sum(), "buckets": buckets })
                    }
                    _ => json!({ "labels": labels }),
                }
            })
            .collect();
        out.insert(f.name().to_owned(), json!({ "type": kind, "help": f.help(), "samples": samples }));
    }
    Value::Object(out)
}
